import Foundation
import HymbaFormat
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file a conversion will write, checked before any work is done: it must not be one of
/// the files being read (by name, through a symbolic link, or as a hard link: the same device
/// and inode), and its directory must exist and be writable. Whether it replaces an existing
/// file is recorded so the summary can say so (the replace itself is atomic: a temporary file
/// renamed over it).
public struct OutputTarget: Sendable {
    public let path: String
    /// Size of the file `path` named before the conversion (nil: there was none).
    public let replacedBytes: Int?

    /// Checks `path` against `inputs` (every file the conversion reads) and its directory.
    public init(path: String, inputs: [String]) throws {
        self.path = path
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw ConversionError("output \"\(path)\": expected a file name, not a directory")
        }
        var out = stat()
        let exists = stat(path, &out) == 0
        if exists {
            if (out.st_mode & S_IFMT) == S_IFDIR {
                throw ConversionError("output \(path) is a directory; expected a file name (e.g. \(path)/model.hymba)")
            }
            for input in inputs {
                var st = stat()
                guard stat(input, &st) == 0 else { continue }
                if st.st_dev == out.st_dev && st.st_ino == out.st_ino {
                    let how = Self.resolved(path) == Self.resolved(input) ? "is" : "is the same file as (through a link)"
                    throw ConversionError("output \(path) \(how) the input \(input); refusing to overwrite a file the conversion reads (choose another output path)")
                }
            }
        }
        replacedBytes = exists ? Int(out.st_size) : nil
        let parent = (path as NSString).deletingLastPathComponent
        let dir = parent.isEmpty ? "." : parent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw ConversionError("output directory \(dir) does not exist (create it first, or choose another output path)")
        }
        guard isDir.boolValue else { throw ConversionError("output directory \(dir) is not a directory") }
        guard access(dir, W_OK) == 0 else {
            throw ConversionError("output directory \(dir) is not writable (\(String(cString: strerror(errno))))")
        }
    }

    private static func resolved(_ p: String) -> String {
        URL(fileURLWithPath: p).resolvingSymlinksInPath().standardizedFileURL.path
    }
}
