#if HYMBA_AVX512VNNI && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Elementwise building blocks on SIMD vectors shared by the kernels: bit-exact half-float
/// widening, and vectorized `exp`, `log`, `softplus` and SiLU. All fp32.
package enum VectorMath {
    /// binary16 → binary32 for 8 lanes, exact for every input (normals, subnormals, ±0, inf,
    /// NaN). The 15 non-sign bits shifted into a float's position give value·2⁻¹¹² for normal
    /// and subnormal halves alike, so one multiply by 2¹¹² rescales both. Integer operations only
    /// otherwise: lane masks and `replace(with:where:)` are not vectorized by the compiler and
    /// made this 17× slower.
    @inline(__always)
    package static func f16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        // The conversion instruction of every AVX-512 CPU (F16C): one instruction, same values.
        return _mm256_cvtph_ps(unsafeBitCast(h, to: __m128i.self))
        #else
        let u = SIMD8<UInt32>(truncatingIfNeeded: h)
        let sign = (u & 0x8000) &<< 16
        let magnitude = u & 0x7FFF
        // Exponent 31 (inf/NaN): bit 15 of magnitude + 0x400 is set exactly then; it becomes an
        // extra 0x3800_0000 (bits 27–29) moving the float exponent from 143 to 255.
        let e31 = (magnitude &+ 0x0400) & 0x8000
        let adjust = (e31 &<< 12) | (e31 &<< 13) | (e31 &<< 14)
        let f = unsafeBitCast(magnitude &<< 13, to: SIMD8<Float>.self) * Float(bitPattern: 0x7780_0000) // 2^112
        return unsafeBitCast((unsafeBitCast(f, to: SIMD8<UInt32>.self) &+ adjust) | sign, to: SIMD8<Float>.self)
        #endif
    }

    /// The same widening for 16 lanes whose low 16 bits hold binary16 bits (high bits zero);
    /// no lane-width conversion, so it stays in vector registers throughout.
    @inline(__always)
    package static func f16BitsToFloat(_ u: SIMD16<UInt32>) -> SIMD16<Float> {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        // Narrow the lanes to 16 bits and convert with the instruction: two instructions.
        return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(unsafeBitCast(u, to: __m512i.self)))
        #else
        let sign = (u & 0x8000) &<< 16
        let magnitude = u & 0x7FFF
        let e31 = (magnitude &+ 0x0400) & 0x8000
        let adjust = (e31 &<< 12) | (e31 &<< 13) | (e31 &<< 14)
        let f = unsafeBitCast(magnitude &<< 13, to: SIMD16<Float>.self) * Float(bitPattern: 0x7780_0000) // 2^112
        return unsafeBitCast((unsafeBitCast(f, to: SIMD16<UInt32>.self) &+ adjust) | sign, to: SIMD16<Float>.self)
        #endif
    }

    /// bfloat16 → binary32 for 8 lanes (exact: bf16 is the upper half of a binary32).
    @inline(__always)
    package static func bf16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }

    /// 8 lanes: comparisons and `replace(with:where:)` on 16-lane vectors compile to loops over
    /// the lanes, on 8-lane ones to vector compares and blends.
    ///
    /// exp(x) (Cephes `expf` scheme: x = n·ln2 + r, |r| ≤ ln2/2, degree-6
    /// polynomial, scale by 2ⁿ through the exponent bits); within 2 ulp of the correctly rounded
    /// result for x in [−87.3, 88]. Inputs are clamped to that range, so exp(−∞) gives
    /// 1.2e−38 rather than 0, harmless wherever it is used here (scan decay, SiLU, softmax).
    @inline(__always)
    package static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var v = x
        v.replace(with: 88, where: v .> 88)
        v.replace(with: -87.33654, where: v .< -87.33654)
        // Round v·log2(e) to the nearest integer with the 1.5·2²³ trick; the low mantissa bits
        // of `k` then hold that integer in two's complement.
        let magic: Float = 12_582_912
        let k = v * 1.442_695_04 + magic
        let n = k - magic
        let r = v - n * 0.693_359_375 + n * 2.121_944_4e-4
        let z = r * r
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_9e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 1.666_666_5e-1
        p = p * r + 5.000_000_1e-1
        let y = p * z + r + 1
        let ni = unsafeBitCast(k, to: SIMD8<UInt32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: SIMD8<Float>.self)
        return y * scale
    }

    /// f applied to the two 8-lane halves of x (the 16-lane functions' portable form).
    @inline(__always)
    private static func inHalves(_ x: SIMD16<Float>, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> SIMD16<Float> {
        let (lo, hi) = unsafeBitCast(x, to: (SIMD8<Float>, SIMD8<Float>).self)
        return unsafeBitCast((f(lo), f(hi)), to: SIMD16<Float>.self)
    }

    #if HYMBA_AVX512VNNI && arch(x86_64)
    /// f applied to x as one AVX-512 register.
    @inline(__always)
    private static func inRegister(_ x: SIMD16<Float>, _ f: (__m512) -> __m512) -> SIMD16<Float> {
        unsafeBitCast(f(unsafeBitCast(x, to: __m512.self)), to: SIMD16<Float>.self)
    }
    #endif

    /// `exp` in 16 lanes, with the same bits lane for lane: one AVX-512 register
    /// (`exp16`) where the build has it, else two 8-lane halves.
    @inline(__always)
    package static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        return inRegister(x, exp16)
        #else
        return inHalves(x, exp)
        #endif
    }

    /// e^x in 16 lanes as the selective scan's decay takes it: `fusedExp16` where the build has
    /// AVX-512, else `exp` (within 1.5e-7 relative either way).
    @inline(__always)
    package static func decayExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        return inRegister(x, fusedExp16)
        #else
        return exp(x)
        #endif
    }

    #if HYMBA_AVX512VNNI && arch(x86_64)
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
    #endif

    /// ln(x) for 8 lanes for finite x > 0 (Cephes `logf`: x = m·2^e with m in [√½, √2),
    /// degree-8 polynomial in m − 1); within 2 ulp.
    @inline(__always)
    package static func log(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        // m in [0.5, 1) from the mantissa, e the unbiased exponent + 1.
        var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: SIMD8<Float>.self)
        let exponent = unsafeBitCast(((bits &>> 23) & 0xFF) | 0x4B00_0000, to: SIMD8<Float>.self) - 8_388_608 - 126
        // Below √½, use 2m and e − 1, so that m − 1 lies in [−0.29, 0.41].
        let low = m .< 0.707_106_78
        var e = exponent
        e.replace(with: exponent - 1, where: low)
        m.replace(with: m + m, where: low)
        let f = m - 1
        let z = f * f
        var p = SIMD8<Float>(repeating: 7.037_683_6e-2)
        p = p * f - 1.151_461_0e-1
        p = p * f + 1.167_699_9e-1
        p = p * f - 1.242_014_1e-1
        p = p * f + 1.424_932_3e-1
        p = p * f - 1.666_805_8e-1
        p = p * f + 2.000_071_5e-1
        p = p * f - 2.499_999_4e-1
        p = p * f + 3.333_333_1e-1
        var y = p * f * z
        y = y + e * -2.121_944_4e-4
        y = y - z * 0.5
        return f + y + e * 0.693_359_375
    }

    /// softplus(x) = ln(1 + eˣ) for 8 lanes, as max(x, 0) + ln(1 + e^−|x|): no overflow for
    /// large x, and ln(1 + y) evaluated as ln(u)·y/(u − 1) with u = 1 + y (exact to rounding
    /// even when y is tiny and u rounds to 1, where the result is y itself).
    @inline(__always)
    package static func softplus(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var negAbs = x
        negAbs.replace(with: -x, where: x .> 0)
        let y = exp(negAbs)
        let u = 1 + y
        let d = u - 1
        var l = log(u) * (y / d)
        l.replace(with: y, where: d .== 0)
        var positive = x
        positive.replace(with: 0, where: x .< 0)
        return positive + l
    }

    /// softplus in 16 lanes, with the 8-lane bits lane for lane for every non-NaN input (a NaN
    /// gives NaN): one AVX-512 register (`softplus16`) where the build has it, else two halves.
    @inline(__always)
    package static func softplus(_ x: SIMD16<Float>) -> SIMD16<Float> {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        return inRegister(x, softplus16)
        #else
        return inHalves(x, softplus)
        #endif
    }

    #if HYMBA_AVX512VNNI && arch(x86_64)
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
    #endif

    /// SiLU(x) = x·sigmoid(x) for 8 lanes.
    @inline(__always)
    package static func silu(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x / (1 + exp(-x))
    }

    /// SiLU for 16 lanes, with the 8-lane version's bits lane for lane (`exp` in 16 lanes has
    /// the 8-lane bits; the rest is elementwise).
    @inline(__always)
    package static func silu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        x / (1 + exp(-x))
    }
}
