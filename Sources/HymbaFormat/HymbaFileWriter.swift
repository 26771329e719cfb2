import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a `.hymba` file in one pass, streaming: tensors are encoded chunk by chunk (whole
/// rows, about `chunkBytes` each), compressed, checksummed and appended; the directory and
/// the header come last. Everything goes to a temporary file next to the destination that is
/// renamed over it only by `finish()`; any error (or `abort()`) removes it, so a destination
/// is never left half-written.
///
/// Deterministic: the same tensors and metadata give the same bytes, whatever the thread count.
public final class HymbaFileWriter {
    /// Fills the encoded bytes of rows `rows` into `dst` (rows.count × rowBytes bytes).
    /// Called concurrently for disjoint row ranges.
    public typealias RowEncoder = @Sendable (_ rows: Range<Int>, _ dst: UnsafeMutableRawPointer) throws -> Void

    public struct Options: Sendable {
        public var codec: ChunkCodec = .zstd
        public var level: Int32 = 3
        public var chunkBytes: Int = FileLayout.defaultChunkBytes
        /// Chunks encoded and compressed at the same time.
        public var parallelChunks: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
        public init() {}
    }

    public let path: String
    public let temporaryPath: String
    public let options: Options
    private var fd: Int32
    private var offset: Int = 0
    private var entries: [TensorEntry] = []
    private var names = Set<String>()
    private let metadataLength: Int
    private let metadataChecksum: UInt64
    private let dataOffset: Int
    private var finished = false

    /// Bytes written to tensor data so far.
    public var dataBytesWritten: Int { offset - dataOffset }
    public var tensorEntries: [TensorEntry] { entries }

    public init(path: String, metadata: Data, options: Options = Options()) throws {
        self.path = path
        self.options = options
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        temporaryPath = (dir.isEmpty ? "" : dir + "/") + ".\(base).partial-\(getpid())"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(path: temporaryPath, operation: "create", errno: errno) }
        TemporaryFiles.register(temporaryPath)
        metadataLength = metadata.count
        metadataChecksum = metadata.withUnsafeBytes { XXHash64.hash($0) }
        dataOffset = FileLayout.align(FileLayout.headerSize + metadata.count, FileLayout.pageAlignment)
        do {
            try writeAll([UInt8](repeating: 0, count: FileLayout.headerSize))
            try metadata.withUnsafeBytes { try writeAll($0) }
            try pad(to: dataOffset)
        } catch {
            abort()
            throw error
        }
    }

    deinit {
        if !finished { abort() }
    }

    /// Appends one tensor. `encode` is asked for the rows chunk by chunk, possibly from
    /// several threads at once.
    public func addTensor(name: String, type: StorageType, shape: [Int], encode: RowEncoder) throws {
        do {
            try addTensorUnchecked(name: name, type: type, shape: shape, encode: encode)
        } catch {
            abort()
            throw error
        }
    }

    private func addTensorUnchecked(name: String, type: StorageType, shape: [Int], encode: RowEncoder) throws {
        precondition(!finished, "writer already finished")
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }), shape.count <= FileLayout.maxRank else {
            throw HymbaFileError.badTensor(path: path, tensor: name, message: "invalid shape \(shape)")
        }
        guard names.insert(name).inserted else { throw HymbaFileError.badTensor(path: path, tensor: name, message: "added twice") }
        let rowLength = shape.last!
        let rows = shape.dropLast().reduce(1, *)
        let rowBytes = type.rowBytes(length: rowLength)
        let rowsPerChunk = max(1, options.chunkBytes / rowBytes)
        let chunkCount = (rows + rowsPerChunk - 1) / rowsPerChunk
        var chunks: [ChunkEntry] = []
        var nextChunk = 0
        let codec = options.codec, level = options.level
        while nextChunk < chunkCount {
            let batch = min(options.parallelChunks, chunkCount - nextChunk)
            // Encode and compress a batch of chunks in parallel, then append them in order.
            let results = ResultBox<(raw: UnsafeMutableRawBufferPointer, compressed: [UInt8]?)>(count: batch)
            let first = nextChunk
            DispatchQueue.concurrentPerform(iterations: batch) { i in
                let c = first + i
                let rowRange = (c * rowsPerChunk)..<min(rows, (c + 1) * rowsPerChunk)
                let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: rowRange.count * rowBytes, alignment: 64)
                do {
                    try encode(rowRange, raw.baseAddress!)
                    var packed = try ChunkCompressor.compress(UnsafeRawBufferPointer(raw), codec: codec, level: level)
                    // Keep compression only when it saves at least 3%.
                    if let p = packed, Double(p.count) > Double(raw.count) * (1 - FileLayout.minimumSaving) { packed = nil }
                    results.set(i, .success((raw, packed)))
                } catch {
                    raw.deallocate()
                    results.set(i, .failure(error))
                }
            }
            defer { results.forEachSuccess { $0.raw.deallocate() } }
            for i in 0..<batch {
                let (raw, packed) = try results.get(i)
                let c = first + i
                let rawOffset = UInt64(c * rowsPerChunk * rowBytes)
                if let packed {
                    try pad(to: FileLayout.align(offset, FileLayout.chunkAlignment))
                    let at = offset
                    try packed.withUnsafeBytes { try writeAll($0) }
                    chunks.append(ChunkEntry(storedOffset: UInt64(at), storedLength: UInt64(packed.count), rawOffset: rawOffset,
                                             rawLength: UInt64(raw.count), codec: codec, checksum: XXHash64.hash(packed)))
                } else {
                    try pad(to: FileLayout.align(offset, FileLayout.pageAlignment))
                    let at = offset
                    try writeAll(UnsafeRawBufferPointer(raw))
                    chunks.append(ChunkEntry(storedOffset: UInt64(at), storedLength: UInt64(raw.count), rawOffset: rawOffset,
                                             rawLength: UInt64(raw.count), codec: .none, checksum: XXHash64.hash(UnsafeRawBufferPointer(raw))))
                }
            }
            nextChunk += batch
        }
        let start = chunks[0].storedOffset
        let end = chunks.last!.storedOffset + chunks.last!.storedLength
        entries.append(TensorEntry(name: name, type: type, shape: shape, rawLength: UInt64(rows * rowBytes),
                                   dataOffset: start, dataLength: end - start, chunks: chunks))
    }

    /// Writes the directory and the header, flushes, and renames the temporary file to `path`.
    public func finish() throws {
        do {
            let dataEnd = offset
            try pad(to: FileLayout.align(offset, FileLayout.chunkAlignment))
            let directory = DirectoryCodec.encode(entries)
            let directoryOffset = offset
            try writeAll(directory)
            var h = FileHeader()
            h.metadataOffset = UInt64(FileLayout.headerSize)
            h.metadataLength = UInt64(metadataLength)
            h.dataOffset = UInt64(dataOffset)
            h.dataLength = UInt64(dataEnd - dataOffset)
            h.directoryOffset = UInt64(directoryOffset)
            h.directoryLength = UInt64(directory.count)
            h.fileLength = UInt64(offset)
            h.metadataChecksum = metadataChecksum
            h.directoryChecksum = XXHash64.hash(directory)
            let bytes = h.encoded()
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            guard n == bytes.count else { throw IOError(path: temporaryPath, operation: "write header", errno: errno) }
            guard fsync(fd) == 0 else { throw IOError(path: temporaryPath, operation: "fsync", errno: errno) }
            close(fd)
            fd = -1
            guard rename(temporaryPath, path) == 0 else { throw IOError(path: path, operation: "rename from \(temporaryPath)", errno: errno) }
            TemporaryFiles.unregister(temporaryPath)
            finished = true
        } catch {
            abort()
            throw error
        }
    }

    /// Stops writing and removes the temporary file. The destination is untouched.
    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        if !finished {
            unlink(temporaryPath)
            TemporaryFiles.unregister(temporaryPath)
            finished = true
        }
    }

    // MARK: - Output

    private func writeAll(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try writeAll($0) } }

    private func writeAll(_ buf: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < buf.count {
            let n = write(fd, buf.baseAddress! + done, buf.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError(path: temporaryPath, operation: "write at offset \(offset + done)", errno: errno)
            }
            if n == 0 { throw IOError(path: temporaryPath, operation: "write at offset \(offset + done)", message: "no progress (disk full?)") }
            done += n
        }
        offset += buf.count
    }

    private func pad(to target: Int) throws {
        if target > offset { try writeAll([UInt8](repeating: 0, count: target - offset)) }
    }
}

/// Per-index results written from concurrent workers.
final class ResultBox<T>: @unchecked Sendable {
    private var slots: [Result<T, Error>?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); slots[i] = r; lock.unlock() }
    func get(_ i: Int) throws -> T { try slots[i]!.get() }
    func forEachSuccess(_ body: (T) -> Void) {
        for s in slots { if case .success(let v)? = s { body(v) } }
    }
}

/// Temporary output files to delete if the process is interrupted (SIGINT/SIGTERM), so an
/// interrupted conversion never leaves partial files behind.
public enum TemporaryFiles {
    nonisolated(unsafe) private static var paths = Set<String>()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func register(_ p: String) { lock.lock(); paths.insert(p); lock.unlock() }
    static func unregister(_ p: String) { lock.lock(); paths.remove(p); lock.unlock() }

    /// Deletes every registered temporary file (for signal handlers and fatal paths).
    public static func removeAll() {
        lock.lock(); defer { lock.unlock() }
        for p in paths { unlink(p) }
        paths.removeAll()
    }

    /// Installs SIGINT/SIGTERM/SIGHUP handlers that remove registered temporary files and exit
    /// with 128+signal, and ignores SIGXFSZ so that passing a file-size limit (`ulimit -f`) is a
    /// write error (EFBIG), reported and cleaned up like a full disk, instead of killing the
    /// process with the partial file left behind. Call once from a command-line tool.
    public static func installSignalCleanup() {
        signal(SIGXFSZ, SIG_IGN)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {
                removeAll()
                FileHandle.standardError.write("\ninterrupted: no output file written\n".data(using: .utf8)!)
                exit(128 + sig)
            }
            src.resume()
            sources.append(src)
        }
    }
}
