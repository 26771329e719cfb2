import Foundation
import HymbaFormat

/// A file named on the command line, where `-` means stdin (to read) or stdout (to write),
/// as everywhere in Unix tools.
public enum FileArgument {
    public static let standardStream = "-"

    /// The bytes of `path`, or all of stdin for `-`. `what` names the content in errors.
    public static func read(_ path: String, what: String) throws -> Data {
        if path == standardStream { return FileHandle.standardInput.readDataToEndOfFile() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IOError(path: path, operation: "reading \(what)", message: "no such readable file")
        }
        return data
    }

    /// How an input `path` is named in messages: the path, or "stdin" for `-`.
    public static func name(_ path: String) -> String { path == standardStream ? "stdin" : path }

    /// How an output `path` is named in messages: the path, or "stdout" for `-`.
    public static func outputName(_ path: String) -> String { path == standardStream ? "stdout" : path }

    /// Writes `data` to `path` (whole or not at all: a temporary file renamed into place), or
    /// to stdout for `-`.
    public static func write(_ data: Data, to path: String, what: String) throws {
        if path == standardStream {
            FileHandle.standardOutput.write(data)
            return
        }
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw IOError(path: path, operation: "writing \(what)", message: "\(error.localizedDescription)")
        }
    }

    /// Runs `body` with a path to write to: `path` itself, or for `-` a temporary file whose
    /// bytes are then copied to stdout and which is removed (for writers that need a file:
    /// they rename a temporary file into place, or read back what they wrote).
    public static func writing<R>(to path: String, _ body: (String) throws -> R) throws -> R {
        guard path == standardStream else { return try body(path) }
        let temporary = NSTemporaryDirectory() + "/hymba-stdout-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let result = try body(temporary)
        guard let input = FileHandle(forReadingAtPath: temporary) else {
            throw IOError(path: temporary, operation: "reading the output back for stdout", message: "cannot open it")
        }
        defer { try? input.close() }
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            try FileHandle.standardOutput.write(contentsOf: chunk)
        }
        return result
    }

}
