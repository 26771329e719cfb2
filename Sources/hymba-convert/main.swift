print("hymba-convert")
