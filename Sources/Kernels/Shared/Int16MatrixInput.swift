import HymbaFormat

/// The arranged input rows of the q8 matrix-matrix products (prefill) on 16-bit integers:
/// `IntegerMatMul` on AVX-512 VNNI and `IntegerMatMulAVX2` on AVX2 fill and read the same
/// layout with the same rounding, so one description, one size and one error bound cover both.
/// (The q4 products have a layout of their own, `SubBlockMatrixInput`.)
///
/// Numbers. Per token and depth block of 512 elements g (sixteen q8 blocks), the
/// input becomes codes c = round(x/a) (half to even) with a = max|x|/8191 over the block; a
/// block with a non-finite element gets codes 0 and a NaN scale, so its token's products come
/// out NaN.
///
/// Layout of an arranged row: int16 codes, block g at element 512g; within a block each pair of
/// 32-element sub-blocks (s0, s1) is [s0 0…15 | s1 0…15 | s0 16…31 | s1 16…31] (the weights'
/// panels use the same order). Then one float a per block. Missing elements are zero.
public struct Int16MatrixInput {
    /// The largest code: 8191 keeps a 32-bit lane of 32 products of two codes below 2³¹.
    public static let codeLimit: Float = 8191

    public let n: Int
    public let groups: Int
    /// int16 codes in the row (a multiple of 64: whole sub-block pairs).
    public let codeCount: Int

    /// Where the parts of an arranged row of `n` elements lie.
    @inlinable
    public init(_ n: Int) {
        self.n = n
        let nsub = (n + 31) / 32
        groups = (nsub + 15) / 16
        let lastPairs = (nsub - 16 * (groups - 1) + 1) / 2
        codeCount = groups == 0 ? 0 : 512 * (groups - 1) + 64 * lastPairs
    }

    /// Sub-blocks of block g (16 except in a row's last block).
    @inlinable @inline(__always) public func subBlocks(_ g: Int) -> Int { min(16, (n + 31) / 32 - 16 * g) }
    /// Floats from the row's start to the block scales, and to the end.
    @inlinable public var scalesOffset: Int { codeCount / 2 }
    @inlinable public var floats: Int { scalesOffset + groups }
    /// The int16 element where sub-block s (0…15) of block g starts (its elements 16…31 lie 32
    /// elements further).
    @inlinable @inline(__always) public static func slot(group g: Int, subBlock s: Int) -> Int { 512 * g + 64 * (s / 2) + 16 * (s % 2) }
}

/// The weights' side of the same products: q8 rows re-expressed on one scale per block of 512
/// elements, w' = round(q·d_b/D) with D = max_b|d_b|·128/8191, so |w'| ≤ 8191.
public enum Int16Weights {
    /// The f16 scale d_b of the q8 block b of a run of blocks at p.
    @inlinable @inline(__always)
    public static func q8BlockScale(_ p: UnsafeRawPointer, _ b: Int) -> Float {
        HalfFloat.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: b * Q8Layout.blockBytes, as: UInt16.self)))
    }

    /// D of the `k` q8 blocks at p: 0 if every scale is 0, NaN if one is not finite.
    @inlinable @inline(__always)
    public static func q8GroupScale(_ p: UnsafeRawPointer, blocks k: Int) -> Float {
        var largest: Float = 0, finite = true
        for b in 0..<k {
            let d = q8BlockScale(p, b)
            finite = finite && d.isFinite
            largest = max(largest, abs(d))
        }
        return finite ? largest * 128 / Int16MatrixInput.codeLimit : .nan
    }
}
