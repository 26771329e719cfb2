/// Row encoders and decoders for every storage type (bit layouts in `formats/HYMBA-FORMAT.md`).
/// These are the reference (scalar) implementations; the runtime's kernels consume the same
/// bytes directly.
public enum StorageCodec {
    /// Encodes `length` floats into `dst`, which has room for `type.rowBytes(length:)` bytes.
    public static func encodeRow(type: StorageType, _ src: UnsafePointer<Float>, length: Int, into dst: UnsafeMutableRawPointer) {
        switch type {
        case .f32:
            for i in 0..<length { dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<length { dst.storeBytes(of: HalfFloat.floatToF16(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<length { dst.storeBytes(of: HalfFloat.floatToBF16(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q8:
            Q8Codec.encodeRow(src, length: length, into: dst)
        case .q4:
            Q4Codec.encodeRow(src, length: length, into: dst)
        }
    }

    /// Decodes one encoded row of `length` elements into `dst`.
    public static func decodeRow(type: StorageType, _ src: UnsafeRawPointer, length: Int, into dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            for i in 0..<length { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<length { dst[i] = HalfFloat.f16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16:
            for i in 0..<length { dst[i] = HalfFloat.bf16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .q8:
            Q8Codec.decodeRow(src, length: length, into: dst)
        case .q4:
            Q4Codec.decodeRow(src, length: length, into: dst)
        }
    }
}
