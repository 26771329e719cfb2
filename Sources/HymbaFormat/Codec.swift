import CLZ4
import CZstd

/// How a chunk's bytes are stored (see `formats/HYMBA-FORMAT.md`, "Chunks and compression").
/// The raw values are part of the file format.
public enum ChunkCodec: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    /// Stored as is.
    case none = 0
    /// One Zstandard frame (RFC 8878).
    case zstd = 1
    /// One LZ4 block (the raw block format, no frame header); the decoded size is the chunk's raw length.
    case lz4 = 2

    public var description: String {
        switch self {
        case .none: return "none"
        case .zstd: return "zstd"
        case .lz4: return "lz4"
        }
    }

    public init?(name: String) {
        guard let c = ChunkCodec.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = c
    }

    /// The most raw bytes one stored byte can decode to, a property of the codec's format:
    /// a Zstandard block of at least 4 bytes (3-byte header + 1 RLE byte) yields at most
    /// 128 KiB; an LZ4 sequence of 3 + e bytes yields at most 19 + 255·e bytes.
    public var maximumExpansion: UInt64 {
        switch self {
        case .none: return 1
        case .zstd: return 32768
        case .lz4: return 255
        }
    }
}

public struct CodecError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum ChunkCompressor {
    /// Compresses `src`; returns nil when the codec does not apply (for `.none`).
    /// `level` is the zstd level (1…19); LZ4 uses its default fast mode.
    public static func compress(_ src: UnsafeRawBufferPointer, codec: ChunkCodec, level: Int32) throws -> [UInt8]? {
        switch codec {
        case .none:
            return nil
        case .zstd:
            let bound = ZSTD_compressBound(src.count)
            var out = [UInt8](repeating: 0, count: bound)
            let n = out.withUnsafeMutableBytes { dst in
                ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, level)
            }
            if ZSTD_isError(n) != 0 { throw CodecError("zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))") }
            out.removeSubrange(n...)
            return out
        case .lz4:
            guard src.count <= Int(LZ4_MAX_INPUT_SIZE) else { throw CodecError("lz4: chunk of \(src.count) bytes exceeds LZ4_MAX_INPUT_SIZE") }
            let bound = Int(LZ4_compressBound(Int32(src.count)))
            var out = [UInt8](repeating: 0, count: bound)
            let n = out.withUnsafeMutableBytes { dst in
                LZ4_compress_default(src.baseAddress?.assumingMemoryBound(to: CChar.self),
                                     dst.baseAddress?.assumingMemoryBound(to: CChar.self),
                                     Int32(src.count), Int32(bound))
            }
            if n <= 0 { throw CodecError("lz4 compression failed") }
            out.removeSubrange(Int(n)...)
            return out
        }
    }

    /// Decompresses `src` into exactly `dst.count` bytes. Any other outcome (corrupt input,
    /// a frame that declares or produces a different size) is an error: the declared size is
    /// enforced, so a chunk can never expand beyond it.
    public static func decompress(_ src: UnsafeRawBufferPointer, codec: ChunkCodec, into dst: UnsafeMutableRawBufferPointer) throws {
        switch codec {
        case .none:
            guard src.count == dst.count else { throw CodecError("stored length \(src.count) != raw length \(dst.count)") }
            if let d = dst.baseAddress, let s = src.baseAddress { d.copyMemory(from: s, byteCount: src.count) }
        case .zstd:
            // Skippable frames (magic 0x184D2A50...5F) carry no data: a chunk is one real frame.
            if src.count >= 4, src.loadUnaligned(as: UInt32.self).littleEndian & 0xFFFF_FFF0 == 0x184D_2A50 {
                throw CodecError("zstd: a skippable frame (a chunk holds exactly one Zstandard frame)")
            }
            let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
            if declared == ZSTD_CONTENTSIZE_ERROR { throw CodecError("zstd: not a valid frame") }
            if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(dst.count) {
                throw CodecError("zstd: frame declares \(declared) bytes, expected \(dst.count)")
            }
            // Exactly one frame: trailing bytes (another frame, garbage) are refused.
            let frame = ZSTD_findFrameCompressedSize(src.baseAddress, src.count)
            if ZSTD_isError(frame) != 0 { throw CodecError("zstd: \(String(cString: ZSTD_getErrorName(frame)))") }
            guard frame == src.count else { throw CodecError("zstd: the frame is \(frame) bytes, the chunk \(src.count) (trailing bytes)") }
            let n = ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, src.count)
            if ZSTD_isError(n) != 0 { throw CodecError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
            guard n == dst.count else { throw CodecError("zstd: decoded \(n) bytes, expected \(dst.count)") }
        case .lz4:
            guard src.count <= Int(Int32.max), dst.count <= Int(Int32.max) else { throw CodecError("lz4: chunk too large") }
            let n = LZ4_decompress_safe(src.baseAddress?.assumingMemoryBound(to: CChar.self),
                                        dst.baseAddress?.assumingMemoryBound(to: CChar.self),
                                        Int32(src.count), Int32(dst.count))
            guard n == Int32(dst.count) else {
                throw CodecError(n < 0 ? "lz4: corrupt block" : "lz4: decoded \(n) bytes, expected \(dst.count)")
            }
        }
    }
}
