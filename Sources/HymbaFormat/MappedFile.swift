import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file. The mapping lives as long as this object.
/// `init(copying:name:)` makes one from bytes in memory instead (fuzzing and tests: the copy
/// is exactly as long as the bytes, so a sanitizer sees any read past the end).
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer
    public let count: Int
    /// True when `base` is owned heap memory rather than an mmap.
    private let owned: Bool

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError(path: path, operation: "stat", errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw IOError(path: path, operation: "open", message: "is a directory") }
        let size = Int(st.st_size)
        count = size
        if size == 0 {
            // mmap of length 0 fails; give empty files a valid dummy pointer.
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            owned = true
            return
        }
        owned = false
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw IOError(path: path, operation: "mmap", errno: errno)
        }
        base = UnsafeRawPointer(p)
    }

    /// A copy of `bytes` in page-aligned memory, named `name` in messages.
    public init(copying bytes: UnsafeRawBufferPointer, name: String) {
        path = name
        count = bytes.count
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 4096)
        if let src = bytes.baseAddress, bytes.count > 0 { p.copyMemory(from: src, byteCount: bytes.count) }
        base = UnsafeRawPointer(p)
        owned = true
    }

    deinit {
        if owned {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        }
    }

    /// Bytes `[offset, offset+length)`; the caller has checked the range.
    public func bytes(at offset: Int, count length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: length)
    }

    /// Advises the kernel about the expected access pattern of a range (page-rounded).
    public func advise(offset: Int, length: Int, _ advice: Int32) {
        guard !owned, count > 0, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let end = min(count, offset + length)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, advice)
    }

    /// Asks the kernel to drop the file's cached pages over a range (`posix_fadvise`
    /// DONTNEED; Linux only, a no-op elsewhere). The page cache is not in the process's
    /// resident set, but a memory-capped cgroup is charged for it: a converter that reads each
    /// byte once drops what it has read. Pages still mapped by a process are kept.
    public func dropFromPageCache(offset: Int, length: Int) {
        #if os(Linux)
        guard !owned, count > 0, length > 0 else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = posix_fadvise(fd, off_t(offset), off_t(length), POSIX_FADV_DONTNEED)
        close(fd)
        #endif
    }
}

/// An operating-system error with the file and operation that failed.
public struct IOError: Error, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var message: String

    public init(path: String, operation: String, errno code: Int32) {
        self.path = path
        self.operation = operation
        self.message = String(cString: strerror(code))
    }

    public init(path: String, operation: String, message: String) {
        self.path = path
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(path): \(operation) failed: \(message)" }
}
