print("hymba-edge")
