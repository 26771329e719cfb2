/// The version of hymba-edge (converter, runtime and library), recorded in every file it writes.
public enum HymbaVersion {
    public static let string = "0.1.0"
}
