import Testing
import HymbaFormat

/// What formats/HYMBA-FORMAT.md §6 says about the stored bytes of compressed chunks, checked
/// on frames built byte by byte: one Zstandard frame (content size declared by our writer;
/// a content checksum, if present, is verified; no dictionaries, skippable frames or trailing
/// bytes), and one LZ4 block without a size prefix.
@Suite struct ChunkFramingTests {
    static let raw: [UInt8] = (0..<1000).map { UInt8($0 % 7 + $0 / 100) }

    static func compress(_ codec: ChunkCodec) throws -> [UInt8] {
        try #require(try raw.withUnsafeBytes { try ChunkCompressor.compress($0, codec: codec, level: 3) })
    }

    /// Decodes `stored` into exactly `raw.count` bytes; nil when refused.
    static func decode(_ stored: [UInt8], _ codec: ChunkCodec) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: raw.count)
        do {
            try stored.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try ChunkCompressor.decompress(s, codec: codec, into: $0) } }
            return out
        } catch {
            return nil
        }
    }

    @Test func zstdFrameAsWritten() throws {
        let frame = try Self.compress(.zstd)
        #expect(Array(frame[0..<4]) == [0x28, 0xB5, 0x2F, 0xFD], "RFC 8878 magic")
        let descriptor = frame[4]
        #expect(descriptor >> 6 != 0 || descriptor & 0x20 != 0, "the content size is declared")
        #expect(descriptor & 0x04 == 0, "no content checksum")
        #expect(descriptor & 0x03 == 0, "no dictionary id")
        #expect(Self.decode(frame, .zstd) == Self.raw)
    }

    @Test func zstdTrailingBytesAndSkippableFramesAreRefused() throws {
        let frame = try Self.compress(.zstd)
        #expect(Self.decode(frame + [0], .zstd) == nil, "a byte after the frame")
        #expect(Self.decode(frame + frame, .zstd) == nil, "two frames")
        let skippable: [UInt8] = [0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]
        #expect(Self.decode(skippable + frame, .zstd) == nil, "a skippable frame first")
        #expect(Self.decode(frame + skippable, .zstd) == nil, "a skippable frame after")
    }

    /// A frame with the optional content checksum (low 32 bits of XXH64 of the content) is
    /// accepted and its checksum verified.
    @Test func zstdContentChecksumIsVerified() throws {
        var frame = try Self.compress(.zstd)
        frame[4] |= 0x04
        let sum = UInt32(truncatingIfNeeded: XXHash64.hash(Self.raw))
        let good = frame + withUnsafeBytes(of: sum.littleEndian) { Array($0) }
        #expect(Self.decode(good, .zstd) == Self.raw)
        let bad = frame + withUnsafeBytes(of: (sum ^ 1).littleEndian) { Array($0) }
        #expect(Self.decode(bad, .zstd) == nil)
    }

    /// A frame that needs a dictionary cannot be decoded: files never use one.
    @Test func zstdDictionaryFramesAreRefused() throws {
        var frame = try Self.compress(.zstd)
        let singleSegment = frame[4] & 0x20 != 0
        frame[4] |= 0x01  // a 1-byte dictionary id follows the descriptor (and window byte)
        frame.insert(7, at: singleSegment ? 5 : 6)
        #expect(Self.decode(frame, .zstd) == nil)
    }

    @Test func lz4BlockHasNoSizePrefix() throws {
        let block = try Self.compress(.lz4)
        #expect(Self.decode(block, .lz4) == Self.raw)
        // Python's lz4.block.compress prepends the size unless store_size=False.
        let prefixed = withUnsafeBytes(of: UInt32(Self.raw.count).littleEndian) { Array($0) } + block
        #expect(Self.decode(prefixed, .lz4) == nil)
    }
}
