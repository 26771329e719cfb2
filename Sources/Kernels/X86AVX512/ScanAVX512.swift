import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The selective scan's state update for 16-wide states (every Hymba size) on AVX-512 (the AVX-512
/// backend's `scanStep`; the other backends run `SSMKernels.states`):
/// a channel's 16 states are one register, its decay one 16-lane exp, and the per-channel sums
/// Σ_n S·C of 16 channels are added together by one transpose tree
/// (`Reductions512.sixteenSums`) instead of one horizontal sum each. The decay is
/// `AVX512Vectors.fusedExp16` and the state update one fused multiply-add: with `exp16` and
/// separate operations a channel took about 33 vector operations, now about 17 (the scan was
/// 9% of a 125m q4 prefill and 0.5 ms of a 1.5b q4 token). A channel's numbers do not depend on
/// the other channels, so any split of the channels gives the same bits.
enum ScanAVX512 {
    /// y[i] = Σ_n S[i,n]·C[n] + D[i]·u[i] for i in `range`, updating S (MODEL.md 2b).
    @inline(__always)
    static func states16(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>, u: UnsafePointer<Float>,
                         delta: UnsafePointer<Float>, B: UnsafePointer<Float>, C: UnsafePointer<Float>,
                         D: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, range: Range<Int>) {
        let b = UnsafeRawPointer(B).load(unalignedAt: 0, as: __m512.self)
        let c = UnsafeRawPointer(C).load(unalignedAt: 0, as: __m512.self)
        let sr = UnsafeMutableRawPointer(state), ar = UnsafeRawPointer(A)
        @inline(__always) func channel(_ i: Int) -> __m512 {
            let dt = delta[i]
            let decay = AVX512Vectors.fusedExp16(_mm512_mul_ps(_mm512_set1_ps(dt), ar.load(unalignedAt: 64 * i, as: __m512.self)))
            let s = _mm512_fmadd_ps(decay, sr.load(unalignedAt: 64 * i, as: __m512.self), _mm512_mul_ps(_mm512_set1_ps(dt * u[i]), b))
            sr.storeBytes(of: s, toByteOffset: 64 * i, as: __m512.self)
            return _mm512_mul_ps(s, c)
        }
        var i = range.lowerBound
        while i < range.upperBound {
            let count = min(16, range.upperBound - i)
            @inline(__always) func p(_ k: Int) -> __m512 { k < count ? channel(i + k) : _mm512_setzero_ps() }
            let sums = Reductions512.sixteenSums(p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7),
                                                 p(8), p(9), p(10), p(11), p(12), p(13), p(14), p(15))
            let mask = UInt16(truncatingIfNeeded: (1 << count) - 1)
            let skip = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, D + i), _mm512_maskz_loadu_ps(mask, u + i))
            _mm512_mask_storeu_ps(y + i, mask, _mm512_add_ps(sums, skip))
            i += count
        }
    }
}
