/// The fixed parts of a `.hymba` file (normative text: `formats/HYMBA-FORMAT.md`).
///
///     offset 0     header (128 bytes)
///     128          metadata: UTF-8 JSON object
///     (4096-aligned) data: tensor chunks
///     (64-aligned)  directory: binary tensor and chunk table
///     file_length  end of file (= directory_offset + directory_length)
///
/// All integers are little-endian. A big-endian writer is detected by the byte-order mark.
public enum FileLayout {
    public static let magic: [UInt8] = Array("HYMBAEDG".utf8)
    public static let version: UInt32 = 1
    public static let byteOrderMark: UInt32 = 0x0A0B_0C0D
    public static let headerSize = 128
    /// Every chunk starts on a multiple of this.
    public static let chunkAlignment = 64
    /// Uncompressed chunks (and the data section) start on a multiple of this, so a
    /// page-aligned mapping can use them in place.
    public static let pageAlignment = 4096
    /// Target raw size of one chunk (whole rows; a row larger than this is one chunk).
    public static let defaultChunkBytes = 1 << 20
    /// A compressed chunk is kept only when it saves at least this share of the raw size.
    public static let minimumSaving = 0.03

    // Sanity limits a reader enforces before trusting any count.
    public static let maxRank = 8
    public static let maxNameLength = 1024
    public static let maxElements = 1 << 40
    public static let maxMetadataLength = 1 << 30

    /// `value` rounded up to a multiple of `alignment` (a power of two).
    @inline(__always)
    public static func align(_ value: Int, _ alignment: Int) -> Int { (value + alignment - 1) & ~(alignment - 1) }
}

/// The 128-byte header at offset 0.
public struct FileHeader: Equatable, Sendable {
    public var version: UInt32 = FileLayout.version
    public var metadataOffset: UInt64 = 0
    public var metadataLength: UInt64 = 0
    public var directoryOffset: UInt64 = 0
    public var directoryLength: UInt64 = 0
    public var dataOffset: UInt64 = 0
    public var dataLength: UInt64 = 0
    public var fileLength: UInt64 = 0
    public var metadataChecksum: UInt64 = 0
    public var directoryChecksum: UInt64 = 0

    public init() {}

    /// The 128 header bytes, with the header checksum over bytes 0..<120 at 120.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(FileLayout.magic)
        w.u32(version)
        w.u32(FileLayout.byteOrderMark)
        w.u64(metadataOffset); w.u64(metadataLength)
        w.u64(directoryOffset); w.u64(directoryLength)
        w.u64(dataOffset); w.u64(dataLength)
        w.u64(fileLength)
        w.u64(metadataChecksum); w.u64(directoryChecksum)
        w.bytes([UInt8](repeating: 0, count: 120 - w.data.count))
        w.u64(XXHash64.hash(w.data))
        return w.data
    }
}

/// One chunk of a tensor's encoded bytes (48 bytes in the directory).
public struct ChunkEntry: Equatable, Sendable {
    /// Absolute file offset of the stored bytes.
    public var storedOffset: UInt64
    public var storedLength: UInt64
    /// Offset of this chunk's decoded bytes within the tensor's encoded bytes.
    public var rawOffset: UInt64
    public var rawLength: UInt64
    public var codec: ChunkCodec
    /// xxHash64 of the stored bytes.
    public var checksum: UInt64

    public init(storedOffset: UInt64, storedLength: UInt64, rawOffset: UInt64, rawLength: UInt64, codec: ChunkCodec, checksum: UInt64) {
        self.storedOffset = storedOffset
        self.storedLength = storedLength
        self.rawOffset = rawOffset
        self.rawLength = rawLength
        self.codec = codec
        self.checksum = checksum
    }
}

/// One tensor's directory entry.
public struct TensorEntry: Equatable, Sendable {
    /// The checkpoint's own name (e.g. `model.layers.0.mamba.in_proj.weight`).
    public var name: String
    public var type: StorageType
    /// Outermost first, as in the checkpoint.
    public var shape: [Int]
    /// Total encoded bytes: rows × row bytes.
    public var rawLength: UInt64
    /// File offset of the first chunk and the span up to the end of the last one.
    public var dataOffset: UInt64
    public var dataLength: UInt64
    public var chunks: [ChunkEntry]

    public init(name: String, type: StorageType, shape: [Int], rawLength: UInt64, dataOffset: UInt64, dataLength: UInt64, chunks: [ChunkEntry]) {
        self.name = name
        self.type = type
        self.shape = shape
        self.rawLength = rawLength
        self.dataOffset = dataOffset
        self.dataLength = dataLength
        self.chunks = chunks
    }

    public var rowLength: Int { shape.last ?? 1 }
    public var rows: Int { shape.dropLast().reduce(1, *) }
    public var elementCount: Int { shape.reduce(1, *) }
    public var rowBytes: Int { type.rowBytes(length: rowLength) }
    public var storedBytes: UInt64 { chunks.reduce(0) { $0 + $1.storedLength } }
}

/// Encodes the directory: `u32 tensor_count, u32 0`, then every entry.
public enum DirectoryCodec {
    public static func encode(_ tensors: [TensorEntry]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(tensors.count))
        w.u32(0)
        for t in tensors {
            let name = Array(t.name.utf8)
            w.u32(UInt32(name.count)); w.bytes(name)
            w.u32(t.type.rawValue)
            w.u32(UInt32(t.type.blockSize))
            w.u32(UInt32(t.shape.count))
            for d in t.shape { w.u64(UInt64(d)) }
            w.u64(t.rawLength)
            w.u64(t.dataOffset); w.u64(t.dataLength)
            w.u32(UInt32(t.chunks.count))
            for c in t.chunks {
                w.u64(c.storedOffset); w.u64(c.storedLength)
                w.u64(c.rawOffset); w.u64(c.rawLength)
                w.u32(c.codec.rawValue); w.u32(0)
                w.u64(c.checksum)
            }
        }
        return w.data
    }
}

/// Little-endian serialization into a byte array.
public struct ByteWriter {
    public var data: [UInt8] = []
    public init() {}
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    public mutating func bytes(_ b: [UInt8]) { data.append(contentsOf: b) }
}

/// Bounds-checked little-endian reading from a byte range; every read that would pass the
/// end throws, naming the section and offset.
public struct ByteReader {
    public let base: UnsafeRawPointer
    public let count: Int
    public let section: String
    /// File offset of `base`, for messages.
    public let fileOffset: Int
    public private(set) var position = 0

    public init(base: UnsafeRawPointer, count: Int, section: String, fileOffset: Int) {
        self.base = base
        self.count = count
        self.section = section
        self.fileOffset = fileOffset
    }

    public var remaining: Int { count - position }

    private mutating func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= count - position else {
            throw HymbaFileError.truncated(section: section, offset: fileOffset + position, needed: n, what: what)
        }
    }

    public mutating func u32(_ what: String) throws -> UInt32 {
        try need(4, what)
        defer { position += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    public mutating func u64(_ what: String) throws -> UInt64 {
        try need(8, what)
        defer { position += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    public mutating func bytes(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        try need(n, what)
        defer { position += n }
        return UnsafeRawBufferPointer(start: base + position, count: n)
    }
}
