import Foundation

/// A `.hymba` model file opened by memory-mapping it.
///
/// Opening validates the header, the metadata and the whole directory (every offset, length,
/// count and shape, with overflow-safe arithmetic) but touches no tensor data. Tensor data is
/// checked when first used: `tensor(_:)` verifies each chunk's checksum once, uses
/// uncompressed chunks in place from the mapping and decompresses compressed chunks once into
/// owned memory. Safe to share between threads.
public final class HymbaFile: @unchecked Sendable {
    public let path: String
    public let mapping: MappedFile
    public let header: FileHeader
    /// The metadata JSON as stored.
    public let metadataBytes: Data
    /// The metadata object (`config`, `tokenizer`, `quantization`, `provenance`, ...), parsed
    /// from `metadataBytes` on each access (keep the result when reading several keys): held
    /// parsed, the tokenizer's JSON alone would keep about 11 MB resident for the file's life.
    public var metadata: [String: Any] {
        // Parsed at open already, so it parses again.
        (try? JSONSerialization.jsonObject(with: TokenizerSpec.escapingByteOrderMarks(in: metadataBytes))) as? [String: Any] ?? [:]
    }
    public let config: HymbaConfig
    /// Directory entries in file order.
    public let tensors: [TensorEntry]
    public let verifyChecksums: Bool

    private let index: [String: Int]
    private let lock = NSLock()
    /// Tensors already checked and made usable.
    private var loaded: [String: TensorData] = [:]
    /// Owned memory of decompressed chunks, freed with the file.
    private var owned: [UnsafeMutableRawPointer] = []
    private var ownedBytes = 0

    /// Opens and validates `path`. With `verifyChecksums` false, chunk checksums are not
    /// checked on first use (header, metadata and directory checksums always are).
    public convenience init(path: String, verifyChecksums: Bool = true) throws {
        try self.init(mapping: MappedFile(path: path), verifyChecksums: verifyChecksums)
    }

    /// Validates a file already mapped (or copied into memory: `MappedFile(copying:name:)`),
    /// exactly as `init(path:verifyChecksums:)` does.
    public init(mapping: MappedFile, verifyChecksums: Bool = true) throws {
        let path = mapping.path
        self.path = path
        self.verifyChecksums = verifyChecksums
        self.mapping = mapping
        let size = mapping.count
        let base = mapping.base
        guard size >= FileLayout.headerSize else { throw HymbaFileError.tooShort(path: path, size: size) }

        // Header.
        let magic = Array(UnsafeRawBufferPointer(start: base, count: 8))
        guard magic == FileLayout.magic else { throw HymbaFileError.badMagic(path: path, found: magic) }
        var r = ByteReader(base: base + 8, count: FileLayout.headerSize - 8, section: path + " header", fileOffset: 8)
        var h = FileHeader()
        h.version = try r.u32("version")
        let bom = try r.u32("byte-order mark")
        if bom == FileLayout.byteOrderMark.byteSwapped { throw HymbaFileError.bigEndian(path: path) }
        guard bom == FileLayout.byteOrderMark else {
            throw HymbaFileError.badHeader(path: path, message: "byte-order mark at offset 12 is \(hex(UInt64(bom))), expected 0x0a0b0c0d")
        }
        guard h.version == FileLayout.version else { throw HymbaFileError.unsupportedVersion(path: path, found: h.version) }
        h.metadataOffset = try r.u64("metadata offset"); h.metadataLength = try r.u64("metadata length")
        h.directoryOffset = try r.u64("directory offset"); h.directoryLength = try r.u64("directory length")
        h.dataOffset = try r.u64("data offset"); h.dataLength = try r.u64("data length")
        h.fileLength = try r.u64("file length")
        h.metadataChecksum = try r.u64("metadata checksum"); h.directoryChecksum = try r.u64("directory checksum")
        let storedHeaderSum = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 120, as: UInt64.self))
        let headerSum = XXHash64.hash(base, count: 120)
        guard storedHeaderSum == headerSum else {
            throw HymbaFileError.headerChecksum(path: path, expected: storedHeaderSum, found: headerSum)
        }
        for offset in 88..<120 where base.load(fromByteOffset: offset, as: UInt8.self) != 0 {
            throw HymbaFileError.badHeader(path: path, message: "reserved byte at offset \(offset) is not zero")
        }
        header = h

        // Section bounds: each lies inside the file, in the documented order, without overlap.
        func bad(_ m: String) -> HymbaFileError { .badHeader(path: path, message: m) }
        guard h.fileLength == UInt64(size) else {
            throw bad("file length field says \(h.fileLength) bytes, the file has \(size) (truncated or extended?)")
        }
        guard h.metadataOffset == UInt64(FileLayout.headerSize) else {
            throw bad("metadata offset \(h.metadataOffset), expected \(FileLayout.headerSize)")
        }
        guard h.metadataLength <= UInt64(FileLayout.maxMetadataLength), h.metadataLength <= h.dataOffset &- h.metadataOffset,
              h.dataOffset >= h.metadataOffset else {
            throw bad("metadata [\(h.metadataOffset), +\(h.metadataLength)) does not end before the data offset \(h.dataOffset)")
        }
        guard h.dataOffset % UInt64(FileLayout.pageAlignment) == 0 else { throw bad("data offset \(h.dataOffset) is not 4096-aligned") }
        let (dataEnd, o1) = h.dataOffset.addingReportingOverflow(h.dataLength)
        guard !o1, dataEnd <= h.directoryOffset else {
            throw bad("data section [\(h.dataOffset), +\(h.dataLength)) runs past the directory offset \(h.directoryOffset)")
        }
        let (dirEnd, o2) = h.directoryOffset.addingReportingOverflow(h.directoryLength)
        guard !o2, dirEnd == h.fileLength else {
            throw bad("directory [\(h.directoryOffset), +\(h.directoryLength)) does not end at the file length \(h.fileLength)")
        }
        guard h.directoryOffset % UInt64(FileLayout.chunkAlignment) == 0 else {
            throw bad("directory offset \(h.directoryOffset) is not a multiple of \(FileLayout.chunkAlignment)")
        }

        // Metadata.
        let metaStart = Int(h.metadataOffset), metaLen = Int(h.metadataLength)
        let metaSum = XXHash64.hash(base + metaStart, count: metaLen)
        guard metaSum == h.metadataChecksum else {
            throw HymbaFileError.sectionChecksum(path: path, section: "metadata", expected: h.metadataChecksum, found: metaSum)
        }
        metadataBytes = Data(bytes: base + metaStart, count: metaLen)
        // Escape raw U+FEFF first: Foundation drops it at the start of a string (a vocab piece).
        let parsable = TokenizerSpec.escapingByteOrderMarks(in: metadataBytes)
        guard let meta = (try? JSONSerialization.jsonObject(with: parsable)) as? [String: Any] else {
            throw HymbaFileError.badMetadata(path: path, message: "not a JSON object")
        }
        guard let configJSON = meta["config"] as? [String: Any] else {
            throw HymbaFileError.badMetadata(path: path, message: "missing \"config\" object")
        }
        do { config = try HymbaConfig(json: configJSON) } catch {
            throw HymbaFileError.badMetadata(path: path, message: "\(error)")
        }

        // Directory.
        let dirStart = Int(h.directoryOffset), dirLen = Int(h.directoryLength)
        let dirSum = XXHash64.hash(base + dirStart, count: dirLen)
        guard dirSum == h.directoryChecksum else {
            throw HymbaFileError.sectionChecksum(path: path, section: "directory", expected: h.directoryChecksum, found: dirSum)
        }
        tensors = try HymbaFile.parseDirectory(base: base + dirStart, count: dirLen, fileOffset: dirStart, header: h, path: path)
        var idx: [String: Int] = [:]
        for (i, t) in tensors.enumerated() {
            if idx[t.name] != nil { throw HymbaFileError.badDirectory(path: path, message: "tensor \(t.name) appears twice") }
            idx[t.name] = i
        }
        index = idx
    }

    deinit {
        for p in owned { free(p) }
    }

    /// 64-byte-aligned memory from the C allocator, nil when refused (Swift's allocate traps).
    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, 64, max(1, bytes)) == 0 else { return nil }
        return p
    }

    /// Directory entry of `name`, if present.
    public func entry(_ name: String) -> TensorEntry? { index[name].map { tensors[$0] } }

    /// Bytes of decompressed chunks held in owned memory so far.
    public var decompressedBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return ownedBytes
    }

    /// The tensor's encoded rows, ready for the kernels. The first call checks every chunk's
    /// checksum (unless disabled) and decompresses compressed chunks; later calls are free.
    public func tensor(_ name: String) throws -> TensorData {
        lock.lock(); defer { lock.unlock() }
        if let t = loaded[name] { return t }
        guard let i = index[name] else { throw HymbaFileError.missingTensor(path: path, name: name) }
        let t = tensors[i]
        var segments: [TensorData.Segment] = []
        let rowBytes = t.rowBytes
        for (ci, c) in t.chunks.enumerated() {
            let stored = mapping.bytes(at: Int(c.storedOffset), count: Int(c.storedLength))
            if verifyChecksums {
                let sum = XXHash64.hash(stored)
                guard sum == c.checksum else {
                    throw HymbaFileError.chunkChecksum(path: path, tensor: name, chunk: ci, offset: c.storedOffset, expected: c.checksum, found: sum)
                }
            }
            let firstRow = Int(c.rawOffset) / rowBytes, rowCount = Int(c.rawLength) / rowBytes
            if c.codec == .none {
                segments.append(.init(firstRow: firstRow, rowCount: rowCount, base: stored.baseAddress!))
            } else {
                // The raw length was bounded at open (shape and codec expansion limit); an
                // allocation the system refuses is an error, not a crash.
                guard let mem = Self.allocate(Int(c.rawLength)) else {
                    throw HymbaFileError.chunkDecode(path: path, tensor: name, chunk: ci, offset: c.storedOffset,
                                                     message: "cannot allocate \(c.rawLength) bytes for the decompressed chunk")
                }
                do {
                    try ChunkCompressor.decompress(stored, codec: c.codec, into: UnsafeMutableRawBufferPointer(start: mem, count: Int(c.rawLength)))
                } catch {
                    free(mem)
                    throw HymbaFileError.chunkDecode(path: path, tensor: name, chunk: ci, offset: c.storedOffset, message: "\(error)")
                }
                owned.append(mem)
                ownedBytes += Int(c.rawLength)
                segments.append(.init(firstRow: firstRow, rowCount: rowCount, base: UnsafeRawPointer(mem)))
            }
        }
        let data = TensorData(name: name, type: t.type, shape: t.shape, segments: segments)
        loaded[name] = data
        return data
    }

    /// A problem found by `verify()`.
    public struct ChunkProblem: CustomStringConvertible, Sendable {
        public var tensor: String
        public var chunk: Int
        public var offset: UInt64
        public var message: String
        public var description: String { "tensor \(tensor), chunk \(chunk) at file offset \(offset): \(message)" }
    }

    /// Checks every chunk's checksum and that compressed chunks decode to their declared size,
    /// without keeping anything. Returns the problems in file order (empty: the file is intact).
    public func verify(progress: ((Int, Int) -> Void)? = nil) -> [ChunkProblem] {
        var problems: [ChunkProblem] = []
        let total = tensors.reduce(0) { $0 + $1.chunks.count }
        var done = 0
        var scratch: UnsafeMutableRawPointer?
        var scratchBytes = 0
        defer { free(scratch) }
        for t in tensors {
            for (ci, c) in t.chunks.enumerated() {
                let stored = mapping.bytes(at: Int(c.storedOffset), count: Int(c.storedLength))
                let sum = XXHash64.hash(stored)
                if sum != c.checksum {
                    problems.append(.init(tensor: t.name, chunk: ci, offset: c.storedOffset,
                                          message: "checksum mismatch (stored \(hex(c.checksum)), computed \(hex(sum)))"))
                } else if c.codec != .none {
                    if scratchBytes < Int(c.rawLength) {
                        free(scratch)
                        scratch = Self.allocate(Int(c.rawLength))
                        scratchBytes = scratch == nil ? 0 : Int(c.rawLength)
                    }
                    if let buf = scratch, scratchBytes >= Int(c.rawLength) {
                        do {
                            try ChunkCompressor.decompress(stored, codec: c.codec, into: UnsafeMutableRawBufferPointer(start: buf, count: Int(c.rawLength)))
                        } catch {
                            problems.append(.init(tensor: t.name, chunk: ci, offset: c.storedOffset, message: "does not decode: \(error)"))
                        }
                    } else {
                        problems.append(.init(tensor: t.name, chunk: ci, offset: c.storedOffset,
                                              message: "cannot allocate \(c.rawLength) bytes to decode it"))
                    }
                }
                done += 1
                progress?(done, total)
            }
        }
        return problems
    }

    // MARK: - Directory parsing and validation

    static func parseDirectory(base: UnsafeRawPointer, count: Int, fileOffset: Int, header h: FileHeader, path: String) throws -> [TensorEntry] {
        var r = ByteReader(base: base, count: count, section: path + " directory", fileOffset: fileOffset)
        let n = Int(try r.u32("tensor count"))
        let reserved = try r.u32("reserved")
        guard reserved == 0 else {
            throw HymbaFileError.badDirectory(path: path, message: "reserved field at file offset \(fileOffset + 4) is \(reserved), expected 0")
        }
        // Each entry takes at least 4+1+12+8+32+4 bytes: a count beyond that is a lie.
        guard n <= count / 61 + 1 else {
            throw HymbaFileError.badDirectory(path: path, message: "tensor count \(n) cannot fit in a directory of \(count) bytes")
        }
        var out: [TensorEntry] = []
        out.reserveCapacity(n)
        let dataStart = h.dataOffset, dataEnd = h.dataOffset + h.dataLength
        var allChunks: [(start: UInt64, end: UInt64, tensor: String)] = []
        for ti in 0..<n {
            let nameLen = Int(try r.u32("tensor \(ti) name length"))
            guard nameLen > 0, nameLen <= FileLayout.maxNameLength else {
                throw HymbaFileError.badDirectory(path: path, message: "tensor \(ti) name length \(nameLen) is outside 1...\(FileLayout.maxNameLength)")
            }
            let nameBytes = try r.bytes(nameLen, "tensor \(ti) name")
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw HymbaFileError.badDirectory(path: path, message: "tensor \(ti) name is not valid UTF-8")
            }
            func bad(_ m: String) -> HymbaFileError { .badTensor(path: path, tensor: name, message: m) }
            let typeRaw = try r.u32("\(name) storage type")
            guard let type = StorageType(rawValue: typeRaw) else { throw bad("unknown storage type \(typeRaw)") }
            let block = try r.u32("\(name) block size")
            guard Int(block) == type.blockSize else { throw bad("block size \(block), \(type) uses \(type.blockSize)") }
            let rank = Int(try r.u32("\(name) rank"))
            guard rank >= 1, rank <= FileLayout.maxRank else { throw bad("rank \(rank) is outside 1...\(FileLayout.maxRank)") }
            var shape: [Int] = []
            var elements = 1
            for _ in 0..<rank {
                let d = try r.u64("\(name) dimension")
                guard d >= 1, d <= UInt64(FileLayout.maxElements) else { throw bad("dimension \(d) is outside 1...2^40") }
                let (m, o) = elements.multipliedReportingOverflow(by: Int(d))
                guard !o, m <= FileLayout.maxElements else { throw bad("shape has more than 2^40 elements") }
                elements = m
                shape.append(Int(d))
            }
            let rowLength = shape.last!, rows = elements / rowLength
            let rowBytes = type.rowBytes(length: rowLength)
            let rawLength = try r.u64("\(name) raw length")
            guard rawLength == UInt64(rows) * UInt64(rowBytes) else {
                throw bad("raw length \(rawLength), but \(rows) rows of \(rowBytes) bytes (\(type) \(shape)) make \(UInt64(rows) * UInt64(rowBytes))")
            }
            let dataOffset = try r.u64("\(name) data offset")
            let dataLength = try r.u64("\(name) data length")
            let chunkCount = Int(try r.u32("\(name) chunk count"))
            guard chunkCount >= 1, chunkCount <= r.remaining / 48 else {
                throw bad("chunk count \(chunkCount) is zero or cannot fit in the rest of the directory")
            }
            var chunks: [ChunkEntry] = []
            chunks.reserveCapacity(chunkCount)
            var expectedRaw: UInt64 = 0
            for ci in 0..<chunkCount {
                let so = try r.u64("chunk offset"), sl = try r.u64("chunk stored length")
                let ro = try r.u64("chunk raw offset"), rl = try r.u64("chunk raw length")
                let codecRaw = try r.u32("chunk codec"); let flags = try r.u32("chunk flags")
                let sum = try r.u64("chunk checksum")
                func badChunk(_ m: String) -> HymbaFileError { bad("chunk \(ci): \(m)") }
                guard let codec = ChunkCodec(rawValue: codecRaw) else { throw badChunk("unknown codec \(codecRaw)") }
                guard flags == 0 else { throw badChunk("reserved field is \(flags), expected 0") }
                guard ro == expectedRaw else { throw badChunk("raw offset \(ro), expected \(expectedRaw) (chunks must be contiguous)") }
                guard rl >= 1, rl <= rawLength - ro, rl % UInt64(rowBytes) == 0 else {
                    throw badChunk("raw length \(rl) is not a whole number of \(rowBytes)-byte rows inside the tensor")
                }
                expectedRaw = ro + rl
                let (end, o) = so.addingReportingOverflow(sl)
                guard !o, so >= dataStart, end <= dataEnd else {
                    throw badChunk("stored range [\(so), +\(sl)) lies outside the data section [\(dataStart), \(dataEnd))")
                }
                guard so % UInt64(codec == .none ? FileLayout.pageAlignment : FileLayout.chunkAlignment) == 0 else {
                    throw badChunk("offset \(so) is not \(codec == .none ? 4096 : 64)-aligned")
                }
                if codec == .none {
                    guard sl == rl else { throw badChunk("uncompressed but stored length \(sl) != raw length \(rl)") }
                } else {
                    guard sl >= 1, sl < rl else { throw badChunk("compressed to \(sl) bytes but raw length is \(rl)") }
                    // No codec expands beyond a fixed factor: a larger claim is a lie (a would-be
                    // decompression bomb), refused before anything is allocated.
                    let limit = codec.maximumExpansion
                    let (most, big) = sl.multipliedReportingOverflow(by: limit)
                    guard big || rl <= most else {
                        throw badChunk("claims \(rl) raw bytes from \(sl) stored bytes; \(codec) expands at most \(limit)-fold")
                    }
                }
                chunks.append(ChunkEntry(storedOffset: so, storedLength: sl, rawOffset: ro, rawLength: rl, codec: codec, checksum: sum))
                allChunks.append((so, end, name))
            }
            guard expectedRaw == rawLength else { throw bad("chunks cover \(expectedRaw) of \(rawLength) raw bytes") }
            let spanEnd = chunks.map { $0.storedOffset + $0.storedLength }.max()!
            guard dataOffset == chunks[0].storedOffset, dataLength == spanEnd - dataOffset else {
                throw bad("data offset/length [\(dataOffset), +\(dataLength)) do not match its chunks [\(chunks[0].storedOffset), \(spanEnd))")
            }
            out.append(TensorEntry(name: name, type: type, shape: shape, rawLength: rawLength,
                                   dataOffset: dataOffset, dataLength: dataLength, chunks: chunks))
        }
        guard r.remaining == 0 else {
            throw HymbaFileError.badDirectory(path: path, message: "\(r.remaining) unexpected bytes after the last tensor entry")
        }
        allChunks.sort { $0.start < $1.start }
        // data_length is defined as reaching exactly the end of the last chunk.
        let lastEnd = allChunks.map(\.end).max() ?? dataStart
        guard lastEnd == dataEnd else {
            throw HymbaFileError.badHeader(path: path, message: "data section [\(dataStart), \(dataEnd)) does not end where the last chunk ends (\(lastEnd))")
        }
        for i in allChunks.indices.dropFirst() where allChunks[i].start < allChunks[i - 1].end {
            throw HymbaFileError.badDirectory(path: path, message: "chunks of \(allChunks[i - 1].tensor) and \(allChunks[i].tensor) overlap at file offset \(allChunks[i].start)")
        }
        return out
    }
}
