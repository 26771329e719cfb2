/// The arranged input rows of the q4 matrix-matrix products that multiply 4-bit codes by int8
/// inputs one sub-block per 32-bit lane (`Q4MatMul` on AVX-512 VNNI, `Q4MatMulAVX2` on AVX2):
/// both fill and read this layout with the rounding of decoding (`Q8Activations`), so one
/// description, one size and one error bound cover both.
///
/// An arranged row of n inputs: per group g of 512 elements, 512 bytes of int8 codes, byte
/// 64v + 4j + i holding element 4v + i of sub-block j (vector v = 0…7, lane j = 0…15, i =
/// 0…3); then 16 floats a_s per group; then 16 floats a_s·Σc per group. Sub-blocks past the
/// row's end have codes, scales and sums 0; a sub-block with a non-finite element has codes
/// 0 and a NaN scale and sum, so its token's products come out NaN.
///
/// A row's last group may have fewer sub-blocks (k): with one lane each, most lanes would
/// multiply zeros (a third of the work for rows of 768, a quarter for 1600). There, each
/// sub-block takes 16/w lanes, w = k rounded up to a power of two, and the group takes w/2
/// vectors (one for w ≤ 2): word s (elements 4s…4s+3) of sub-block j lies in vector s mod
/// (w/2), lane j + w·⌊s/(w/2)⌋ (`wordPosition`). Every lane of sub-block j holds a_j; only
/// lane j holds a_j·Σc, so the mins count once.
public struct SubBlockMatrixInput {
    public let n: Int
    public let groups: Int

    @inlinable @inline(__always)
    public init(_ n: Int) {
        self.n = n
        groups = (n + 511) / 512
    }

    /// Sub-blocks of group g (16 except in a row's last group).
    @inlinable @inline(__always) public func subBlocks(_ g: Int) -> Int { min(16, (n + 31) / 32 - 16 * g) }
    /// w: k sub-blocks rounded up to a power of two.
    @inlinable @inline(__always) public static func width(_ k: Int) -> Int { k <= 1 ? 1 : k <= 2 ? 2 : k <= 4 ? 4 : k <= 8 ? 8 : 16 }
    /// Vectors of a group of k sub-blocks.
    @inlinable @inline(__always) public static func vectors(_ k: Int) -> Int { max(1, width(k) / 2) }
    /// Byte offset, from the group's start, of word s (0…7) of sub-block j in a group of k.
    @inlinable @inline(__always) public static func wordPosition(_ s: Int, subBlock j: Int, of k: Int) -> Int {
        let w = width(k), n = vectors(k)
        return 64 * (s % n) + 4 * (j + w * (s / n))
    }
    /// Floats from the row's start to the scales a_s, the sums a_s·Σc, and the end.
    @inlinable public var scalesOffset: Int { 128 * groups }
    @inlinable public var sumsOffset: Int { 144 * groups }
    @inlinable public var floats: Int { 160 * groups }
}
