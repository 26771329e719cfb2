import Foundation
#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// Writes a whole file so that readers see either the old contents or the new ones: the bytes
/// go to a temporary file beside `path`, are flushed to disk, and the temporary file is renamed
/// over `path` (atomic on one file system). A crash or error before the rename leaves `path`
/// as it was; the temporary file is removed on error (and at exit by `TemporaryFiles`).
public enum AtomicFileWrite {
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let temporary = (dir.isEmpty ? "" : dir + "/") + ".\(base).partial-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(path: temporary, operation: "create", errno: errno) }
        TemporaryFiles.register(temporary)
        defer { TemporaryFiles.unregister(temporary) }
        var isOpen = true
        do {
            var done = 0
            while done < bytes.count {
                let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw IOError(path: temporary, operation: "write", errno: errno) }
                done += n
            }
            guard fsync(fd) == 0 else { throw IOError(path: temporary, operation: "fsync", errno: errno) }
            isOpen = false
            guard close(fd) == 0 else { throw IOError(path: temporary, operation: "close", errno: errno) }
            guard rename(temporary, path) == 0 else { throw IOError(path: path, operation: "rename from \(temporary)", errno: errno) }
        } catch {
            if isOpen { close(fd) }
            unlink(temporary)
            throw error
        }
    }
}
