import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable

/// The selective scan's state update for 16-wide states (every Hymba size) on AVX2 (the AVX2
/// backend's `scanStep`): `ScanAVX512`'s scheme on 8-lane registers. A channel's 16 states are
/// two registers and its decay two `fusedExp8`s; the per-channel sums Σ_n S·C of 8 channels are
/// added together by one transpose tree (`MatMulTileAVX2.eightSums`) instead of one horizontal
/// sum each. The decay's exp is most of the scan's work, so it is the fused one. A channel's
/// numbers do not depend on the other channels, so any split of the channels gives the same bits.
enum ScanAVX2 {
    /// y[i] = Σ_n S[i,n]·C[n] + D[i]·u[i] for i in `range`, updating S (MODEL.md 2b).
    @inline(__always)
    static func states16(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>, u: UnsafePointer<Float>,
                         delta: UnsafePointer<Float>, B: UnsafePointer<Float>, C: UnsafePointer<Float>,
                         D: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, range: Range<Int>) {
        let br = UnsafeRawPointer(B), cr = UnsafeRawPointer(C)
        let b = (br.load(unalignedAt: 0, as: __m256.self), br.load(unalignedAt: 32, as: __m256.self))
        let c = (cr.load(unalignedAt: 0, as: __m256.self), cr.load(unalignedAt: 32, as: __m256.self))
        let sr = UnsafeMutableRawPointer(state), ar = UnsafeRawPointer(A)
        @inline(__always) func channel(_ i: Int) -> __m256 {
            let dt = _mm256_set1_ps(delta[i]), du = _mm256_set1_ps(delta[i] * u[i])
            @inline(__always) func half(_ h: Int, _ b: __m256) -> __m256 {
                let offset = 64 * i + 32 * h
                let decay = fusedExp8(_mm256_mul_ps(dt, ar.load(unalignedAt: offset, as: __m256.self)))
                let s = _mm256_fmadd_ps(decay, sr.load(unalignedAt: offset, as: __m256.self), _mm256_mul_ps(du, b))
                sr.storeBytes(of: s, toByteOffset: offset, as: __m256.self)
                return s
            }
            return _mm256_fmadd_ps(half(1, b.1), c.1, _mm256_mul_ps(half(0, b.0), c.0))
        }
        var i = range.lowerBound
        while i < range.upperBound {
            let count = min(8, range.upperBound - i)
            @inline(__always) func p(_ k: Int) -> __m256 { k < count ? channel(i + k) : _mm256_setzero_ps() }
            let sums = unsafeBitCast(MatMulTileAVX2.eightSums(p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7)), to: SIMD8<Float>.self)
            for k in 0..<count { y[i + k] = sums[k] + D[i + k] * u[i + k] }
            i += count
        }
    }

    /// e^x in 8 lanes for the scan's decay: `AVX512Vectors.fusedExp16`'s reduction and
    /// polynomial (fused multiply-adds throughout, fitted for relative error on |r| ≤ ln2/2,
    /// within 1.5e-7 relative of e^x), with 2ⁿ built in the exponent bits as `VectorMath.exp`
    /// does, since AVX2 has no `vscalefps`; inputs are clamped to [−87.34, 88] as there (e^−∞
    /// gives 1.2e−38, harmless for a decay). About 16 operations where `VectorMath.exp`, with
    /// separate multiplies and adds and its compare-and-blend clamps, takes about 25.
    @inline(__always)
    static func fusedExp8(_ x: __m256) -> __m256 {
        let v = _mm256_max_ps(_mm256_set1_ps(-87.33654), _mm256_min_ps(_mm256_set1_ps(88), x))
        let magic = _mm256_set1_ps(12_582_912)
        let k = _mm256_fmadd_ps(v, _mm256_set1_ps(1.442_695_04), magic)
        let n = _mm256_sub_ps(k, magic)
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_375), v))
        var p = _mm256_set1_ps(1.383_684_6e-3)
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.374_816e-3))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_822_5e-2))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.166_664_2))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.499_999_9))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1))
        // n (an integer in the low mantissa bits of k) into the exponent field: 2ⁿ.
        let exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(k), _mm256_set1_epi32(0x4B40_0000)),
                                                          _mm256_set1_epi32(127)), 23)
        return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent))
    }
}
