import HymbaKernels
import HymbaFormat

/// The few operations inside the shared kernels that an instruction set does differently: the
/// 16-lane exp and softplus, half-float widening, partial vector moves and the attention
/// scores of 64-wide f16 keys. The portable kernels are generic over it (`PortableKernelBackend.Vectors`)
/// and are specialized for each backend in that backend's own target, so each calls its own
/// versions directly, inlined. Every implementation must give the portable one's results bit
/// for bit (the kernels' tests compare backends), except `decayExp` (within its stated bound).
public protocol VectorUnit {
    /// `VectorMath.exp` in 16 lanes (the same bits).
    static func exp(_ x: SIMD16<Float>) -> SIMD16<Float>
    /// e^x as the selective scan's decay takes it (within 1.5e-7 relative of e^x).
    static func decayExp(_ x: SIMD16<Float>) -> SIMD16<Float>
    /// `VectorMath.softplus` in 16 lanes (the same bits for every non-NaN input).
    static func softplus(_ x: SIMD16<Float>) -> SIMD16<Float>
    /// binary16 → binary32, 8 lanes, exact.
    static func f16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float>
    /// binary16 in the low 16 bits of each lane → binary32, 16 lanes, exact.
    static func f16BitsToFloat(_ u: SIMD16<UInt32>) -> SIMD16<Float>
    /// The first `count` (0…16) floats at p, the other lanes 0, reading nothing past them.
    static func load(_ p: UnsafePointer<Float>, count: Int) -> SIMD16<Float>
    /// Lanes 0 ..< count of v to p, writing nothing past them.
    static func store(_ v: SIMD16<Float>, to p: UnsafeMutablePointer<Float>, count: Int)
    /// Whether `scoresF16Keys64` exists (otherwise attention widens each key and dots it).
    static var hasScoresF16Keys64: Bool { get }
    /// Attention scores for 64-wide keys with an f16 cache (`AttentionScores` on AVX-512): the
    /// scores of `queries` queries over the meta keys and the regular keys at `slots`, times
    /// `scale`, into `scores[x·span + j]`; entries outside `visible(x / perRow)` get −∞.
    static func scoresF16Keys64(queries: Int, perRow: Int, query: (Int) -> UnsafePointer<Float>,
                                metaKeys: UnsafePointer<Float>, metaCount: Int,
                                regularKeys: AttentionCache.StoredRows, slots: Attention.AllowedRuns.Slots,
                                visible: (Int) -> Range<Int>, scale: Float, scores: UnsafeMutablePointer<Float>, span: Int)
}

/// `VectorUnit` in portable SIMD code (8-lane halves where that compiles better).
public enum PortableVectors: VectorUnit {
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> { VectorMath.inHalves(x, VectorMath.exp) }
    @inlinable @inline(__always)
    public static func decayExp(_ x: SIMD16<Float>) -> SIMD16<Float> { exp(x) }
    @inlinable @inline(__always)
    public static func softplus(_ x: SIMD16<Float>) -> SIMD16<Float> { VectorMath.inHalves(x, VectorMath.softplus) }
    @inlinable @inline(__always)
    public static func f16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> { VectorMath.f16ToFloat(h) }
    @inlinable @inline(__always)
    public static func f16BitsToFloat(_ u: SIMD16<UInt32>) -> SIMD16<Float> { VectorMath.f16BitsToFloat(u) }
    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count: Int) -> SIMD16<Float> { PartialVector.load(p, count: count) }
    @inlinable @inline(__always)
    public static func store(_ v: SIMD16<Float>, to p: UnsafeMutablePointer<Float>, count: Int) {
        PartialVector.store(v, to: p, count: count)
    }
    @inlinable public static var hasScoresF16Keys64: Bool { false }
    @inlinable
    public static func scoresF16Keys64(queries: Int, perRow: Int, query: (Int) -> UnsafePointer<Float>,
                                       metaKeys: UnsafePointer<Float>, metaCount: Int,
                                       regularKeys: AttentionCache.StoredRows, slots: Attention.AllowedRuns.Slots,
                                       visible: (Int) -> Range<Int>, scale: Float, scores: UnsafeMutablePointer<Float>, span: Int) {
        preconditionFailure("the portable kernels widen each key (hasScoresF16Keys64 is false)")
    }
}

extension VectorUnit {
    /// SiLU in 16 lanes through this unit's exp (the 8-lane `VectorMath.silu`'s bits lane for lane).
    @inlinable @inline(__always)
    public static func silu(_ x: SIMD16<Float>) -> SIMD16<Float> { x / (1 + exp(-x)) }
}
