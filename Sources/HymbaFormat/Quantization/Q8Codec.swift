/// `q8` (bytes in `Q8Layout`): per block of 32, `d = f16(max|x| / 127)` and
/// `q = round_half_even(x / d)` clamped to [−127, 127] (`q = 0` when `d = 0`); `x' = d·q`.
///
/// Both directions work on whole blocks with SIMD vectors; a row's last, partial block goes
/// through a zero-padded copy so the vector path never reads or writes past the row.
public enum Q8Codec {
    private typealias V8 = SIMD8<Float>

    /// Encodes `length` floats into `Q8Layout.rowBytes(length:)` bytes at `dst`.
    /// Cost: one pass over the row, no allocation.
    public static func encodeRow(_ src: UnsafePointer<Float>, length: Int, into dst: UnsafeMutableRawPointer) {
        let full = length / 32
        let raw = UnsafeRawPointer(src)
        for b in 0..<full { encodeBlock(raw + 128 * b, into: dst + Q8Layout.blockBytes * b) }
        let rest = length - 32 * full
        if rest > 0 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tmp in
                let p = tmp.baseAddress!
                p.initialize(repeating: 0, count: 32)
                p.update(from: src + 32 * full, count: rest)
                encodeBlock(UnsafeRawPointer(p), into: dst + Q8Layout.blockBytes * full)
            }
        }
    }

    /// Decodes one encoded row of `length` elements into `dst` (exactly `length` floats written).
    public static func decodeRow(_ src: UnsafeRawPointer, length: Int, into dst: UnsafeMutablePointer<Float>) {
        let full = length / 32
        let out = UnsafeMutableRawPointer(dst)
        for b in 0..<full { decodeBlock(src + Q8Layout.blockBytes * b, into: out + 128 * b) }
        let rest = length - 32 * full
        if rest > 0 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tmp in
                let p = tmp.baseAddress!
                p.initialize(repeating: 0, count: 32)
                decodeBlock(src + Q8Layout.blockBytes * full, into: UnsafeMutableRawPointer(p))
                (dst + 32 * full).update(from: p, count: rest)
            }
        }
    }

    /// One block: 32 floats at `x` (unaligned) to 34 bytes at `blk`.
    @inline(__always)
    private static func encodeBlock(_ x: UnsafeRawPointer, into blk: UnsafeMutableRawPointer) {
        let v0 = x.loadUnaligned(as: V8.self), v1 = x.loadUnaligned(fromByteOffset: 32, as: V8.self)
        let v2 = x.loadUnaligned(fromByteOffset: 64, as: V8.self), v3 = x.loadUnaligned(fromByteOffset: 96, as: V8.self)
        let m = SIMDMath.max(SIMDMath.max(SIMDMath.abs(v0), SIMDMath.abs(v1)), SIMDMath.max(SIMDMath.abs(v2), SIMDMath.abs(v3)))
        let dBits = HalfFloat.floatToF16(m.max() / 127)
        let d = HalfFloat.f16ToFloat(dBits)
        blk.storeBytes(of: dBits.littleEndian, as: UInt16.self)
        // x / d (not x · (1/d)) so that the documented rounding is reproduced exactly.
        let dv = V8(repeating: d > 0 ? d : 1), keep: Float = d > 0 ? 1 : 0
        @inline(__always) func store(_ v: V8, _ i: Int) {
            let q = SIMDMath.clamp(SIMDMath.roundEven(v / dv * keep), -127, 127)
            blk.storeBytes(of: SIMDMath.lowBytes(q), toByteOffset: 2 + 8 * i, as: SIMD8<UInt8>.self)
        }
        store(v0, 0); store(v1, 1); store(v2, 2); store(v3, 3)
    }

    @inline(__always)
    private static func decodeBlock(_ blk: UnsafeRawPointer, into out: UnsafeMutableRawPointer) {
        let d = V8(repeating: HalfFloat.f16ToFloat(UInt16(littleEndian: blk.loadUnaligned(as: UInt16.self))))
        for i in 0..<4 {
            let q = blk.loadUnaligned(fromByteOffset: 2 + 8 * i, as: SIMD8<Int8>.self)
            out.storeBytes(of: d * V8(SIMD8<Int32>(truncatingIfNeeded: q)), toByteOffset: 32 * i, as: V8.self)
        }
    }
}
