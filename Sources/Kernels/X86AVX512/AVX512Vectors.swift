import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable

/// `VectorUnit` on AVX-512 registers: the 16-lane exp, softplus and SiLU as one register each
/// instead of two 8-lane halves (the same bits), half floats widened by `vcvtph2ps` (the same
/// values), partial vectors by one masked move, the scan's decay by `fusedExp16`, and the
/// attention scores of 64-wide f16 keys by `AttentionScores`.
public enum AVX512Vectors: VectorUnit {
    @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> { inRegister(x, exp16) }

    @inline(__always)
    public static func decayExp(_ x: SIMD16<Float>) -> SIMD16<Float> { inRegister(x, fusedExp16) }

    @inline(__always)
    public static func softplus(_ x: SIMD16<Float>) -> SIMD16<Float> { inRegister(x, softplus16) }

    /// The conversion instruction of every AVX-512 CPU (F16C): one instruction, same values.
    @inline(__always)
    public static func f16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        _mm256_cvtph_ps(unsafeBitCast(h, to: __m128i.self))
    }

    /// Narrow the lanes to 16 bits and convert with the instruction: two instructions.
    @inline(__always)
    public static func f16BitsToFloat(_ u: SIMD16<UInt32>) -> SIMD16<Float> {
        _mm512_cvtph_ps(_mm512_cvtepi32_epi16(unsafeBitCast(u, to: __m512i.self)))
    }

    @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count: Int) -> SIMD16<Float> {
        unsafeBitCast(_mm512_maskz_loadu_ps(mask(count), p), to: SIMD16<Float>.self)
    }

    @inline(__always)
    public static func store(_ v: SIMD16<Float>, to p: UnsafeMutablePointer<Float>, count: Int) {
        _mm512_mask_storeu_ps(p, mask(count), unsafeBitCast(v, to: __m512.self))
    }

    /// The lane mask of lanes 0 ..< count.
    @inline(__always)
    static func mask(_ count: Int) -> UInt16 { UInt16(truncatingIfNeeded: (1 << count) - 1) }

    public static var hasScoresF16Keys64: Bool { true }

    @inline(__always)
    public static func scoresF16Keys64(queries: Int, perRow: Int, query: (Int) -> UnsafePointer<Float>,
                                       metaKeys: UnsafePointer<Float>, metaCount: Int,
                                       regularKeys: AttentionCache.StoredRows, slots: Attention.AllowedRuns.Slots,
                                       visible: (Int) -> Range<Int>, scale: Float, scores: UnsafeMutablePointer<Float>, span: Int) {
        AttentionScores.f16Keys64(queries: queries, perRow: perRow, query: query, metaKeys: metaKeys, metaCount: metaCount,
                                  regularKeys: regularKeys, slots: slots, visible: visible, scale: scale, scores: scores, span: span)
    }

    /// f applied to x as one AVX-512 register.
    @inline(__always)
    static func inRegister(_ x: SIMD16<Float>, _ f: (__m512) -> __m512) -> SIMD16<Float> {
        unsafeBitCast(f(unsafeBitCast(x, to: __m512.self)), to: SIMD16<Float>.self)
    }

    /// e^x in 16 lanes: `exp`'s steps (clamp, Cody–Waite reduction, degree-6 polynomial,
    /// exponent bits) on one register, separate multiplies and adds as there (no fused
    /// multiply-add), so the bits are `exp`'s. The clamp's operand order keeps a NaN
    /// (`vminps`/`vmaxps` return their second operand when either is NaN), as `exp` does.
    @inline(__always)
    static func exp16(_ x: __m512) -> __m512 {
        let v = _mm512_max_ps(_mm512_set1_ps(-87.33654), _mm512_min_ps(_mm512_set1_ps(88), x))
        let magic = _mm512_set1_ps(12_582_912)
        let k = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.442_695_04)), magic)
        let n = _mm512_sub_ps(k, magic)
        let r = _mm512_add_ps(_mm512_sub_ps(v, _mm512_mul_ps(n, _mm512_set1_ps(0.693_359_375))), _mm512_mul_ps(n, _mm512_set1_ps(2.121_944_4e-4)))
        let z = _mm512_mul_ps(r, r)
        var p = _mm512_set1_ps(1.987_569_15e-4)
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.398_199_9e-3))
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.333_451_9e-3))
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.166_579_6e-2))
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.666_666_5e-1))
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.000_000_1e-1))
        let y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, z), r), _mm512_set1_ps(1))
        let ni = _mm512_sub_epi32(unsafeBitCast(k, to: __m512i.self), _mm512_set1_epi32(0x4B40_0000))
        let scale = _mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23)
        return _mm512_mul_ps(y, unsafeBitCast(scale, to: __m512.self))
    }

    /// e^x in 16 lanes in about half of `exp16`'s operations, for the selective scan's decay
    /// (one per state element; with `exp16`'s 27 operations the scan was 9% of a 125m q4
    /// prefill's samples). The same reduction x = n·ln2 + r (n the nearest integer to x·log2 e,
    /// ln 2 in two parts), but fused multiply-adds throughout, a degree-6 polynomial fitted for
    /// relative error on |r| ≤ ln2/2 (not the Taylor terms), and `vscalefps` for the 2ⁿ: 13
    /// operations. Within 1.5e-7 relative of e^x for x in [−87, 88) (7.8e-8 measured; not
    /// `exp`'s bits); below that the result falls smoothly through the subnormals to 0, above it
    /// is clamped as `exp16`'s; a NaN stays NaN.
    @inline(__always)
    static func fusedExp16(_ x: __m512) -> __m512 {
        let v = _mm512_max_ps(_mm512_set1_ps(-104), _mm512_min_ps(_mm512_set1_ps(88), x))
        let magic = _mm512_set1_ps(12_582_912)
        let n = _mm512_sub_ps(_mm512_fmadd_ps(v, _mm512_set1_ps(1.442_695_04), magic), magic)
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_375), v))
        var p = _mm512_set1_ps(1.383_684_6e-3)
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.374_816e-3))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_822_5e-2))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.166_664_2))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.499_999_9))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1))
        return _mm512_scalef_ps(p, n)
    }

    /// `log`'s steps on one register, in the same order (so the same bits). In the 8-lane code
    /// `perf annotate` put scalar multiplies and adds on the polynomial's lines (not checked in
    /// the disassembly): Δ's softplus was ~5% of a 125m q4 prefill, 1.6% this way.
    /// m < √½ is taken on the bit patterns (both are positive floats, which order like integers):
    /// the sign of their difference.
    @inline(__always)
    static func log16(_ x: __m512) -> __m512 {
        let bits = _mm512_castps_si512(x)
        var m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007F_FFFF)), _mm512_set1_epi32(0x3F00_0000)))
        let biased = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(0xFF)),
                                                         _mm512_set1_epi32(0x4B00_0000)))
        let exponent = _mm512_sub_ps(_mm512_sub_ps(biased, _mm512_set1_ps(8_388_608)), _mm512_set1_ps(126))
        let low = _mm512_movepi32_mask(_mm512_sub_epi32(_mm512_castps_si512(m), _mm512_set1_epi32(Int32(bitPattern: Float(0.707_106_78).bitPattern))))
        let e = _mm512_mask_sub_ps(exponent, low, exponent, _mm512_set1_ps(1))
        m = _mm512_mask_add_ps(m, low, m, m)
        let f = _mm512_sub_ps(m, _mm512_set1_ps(1))
        let z = _mm512_mul_ps(f, f)
        var p = _mm512_set1_ps(7.037_683_6e-2)
        p = _mm512_sub_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(1.151_461_0e-1))
        p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(1.167_699_9e-1))
        p = _mm512_sub_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(1.242_014_1e-1))
        p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(1.424_932_3e-1))
        p = _mm512_sub_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(1.666_805_8e-1))
        p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(2.000_071_5e-1))
        p = _mm512_sub_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(2.499_999_4e-1))
        p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(3.333_333_1e-1))
        var y = _mm512_mul_ps(_mm512_mul_ps(p, f), z)
        y = _mm512_add_ps(y, _mm512_mul_ps(e, _mm512_set1_ps(-2.121_944_4e-4)))
        y = _mm512_sub_ps(y, _mm512_mul_ps(z, _mm512_set1_ps(0.5)))
        return _mm512_add_ps(_mm512_add_ps(f, y), _mm512_mul_ps(e, _mm512_set1_ps(0.693_359_375)))
    }

    /// `softplus`'s steps on one register. Its lane tests read the bit pattern b as an integer
    /// (sign bits, `vpmovd2m`; the compare instructions are macros Swift cannot import): x > 0 is
    /// b > 0, the sign of ¬b ∧ −b; x < 0 is b < 0 other than −0's, the sign of b ∧ (b − 1); d = 0
    /// (d ≥ 0 here) is the sign of ¬d ∧ (d − 1). They differ from the float comparisons only for
    /// NaN, whose result is NaN either way.
    @inline(__always)
    static func softplus16(_ x: __m512) -> __m512 {
        let bits = _mm512_castps_si512(x), zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1)
        let positive = _mm512_movepi32_mask(_mm512_andnot_si512(bits, _mm512_sub_epi32(zero, bits)))
        let negative = _mm512_movepi32_mask(_mm512_and_si512(bits, _mm512_sub_epi32(bits, one)))
        // −|x|: the sign flipped where x > 0.
        let negAbs = _mm512_castsi512_ps(_mm512_mask_xor_epi32(bits, positive, bits, _mm512_set1_epi32(Int32.min)))
        let y = exp16(negAbs)
        let u = _mm512_add_ps(_mm512_set1_ps(1), y)
        let d = _mm512_sub_ps(u, _mm512_set1_ps(1))
        let dBits = _mm512_castps_si512(d)
        let l = _mm512_mask_mov_ps(_mm512_mul_ps(log16(u), _mm512_div_ps(y, d)),
                                   _mm512_movepi32_mask(_mm512_andnot_si512(dBits, _mm512_sub_epi32(dBits, one))), y)
        return _mm512_add_ps(_mm512_mask_mov_ps(x, negative, _mm512_setzero_ps()), l)
    }
}
