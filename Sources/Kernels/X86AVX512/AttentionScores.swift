import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// Attention scores for 64-wide key heads with an f16 cache, on AVX-512 (the AVX-512 backend's
/// `AVX512Vectors.scoresF16Keys64`; the other backends widen each key and dot it). The portable loop
/// ends every query·key dot product in its own horizontal sum, a chain of shuffles and adds
/// that dominated attention in `perf`; here a query stays in four registers while 16 keys are
/// widened straight from the cache (`vcvtph2ps`) and multiplied, and the 16 partial vectors
/// are summed together by one transpose-and-add tree (`Reductions512.sixteenSums`), giving 16
/// scores in one vector store.
enum AttentionScores {
    /// Scores of `queries` queries (query x at `query(x)`, natural order; row `x / perRow` of the
    /// block) over the meta keys (`metaCount` f32 keys at `metaKeys`, 64 floats apart) and the
    /// regular keys at `slots` (f16, slot s's 64 halves at `regularKeys.row(s)`),
    /// times `scale`, into `scores[x·span + j]`. Row r sees regular entries `visible(r)` (a
    /// range of j); the others get −∞.
    @inline(__always)
    static func f16Keys64(queries: Int, perRow: Int, query: (Int) -> UnsafePointer<Float>,
                          metaKeys: UnsafePointer<Float>, metaCount: Int,
                          regularKeys: AttentionCache.StoredRows, slots: Attention.AllowedRuns.Slots,
                          visible: (Int) -> Range<Int>, scale: Float, scores: UnsafeMutablePointer<Float>, span: Int) {
        let regular = span - metaCount
        // Regular entry j's key: the ring's first run, then its second (computed, not listed:
        // nothing is allocated per call).
        let firstCount = slots.first.count
        @inline(__always) func key(_ j: Int) -> UnsafeRawPointer {
            regularKeys.row(j < firstCount ? slots.first.lowerBound + j : slots.second.lowerBound + (j - firstCount))
        }
        do {
            let scaleVector = _mm512_set1_ps(scale)
            for x in 0..<queries {
                let qp = UnsafeRawPointer(query(x))
                let q0 = qp.load(unalignedAt: 0, as: __m512.self), q1 = qp.load(unalignedAt: 64, as: __m512.self)
                let q2 = qp.load(unalignedAt: 128, as: __m512.self), q3 = qp.load(unalignedAt: 192, as: __m512.self)
                let row = scores + x * span
                @inline(__always) func metaPartial(_ k: UnsafeRawPointer) -> __m512 {
                    _mm512_fmadd_ps(q3, k.load(unalignedAt: 192, as: __m512.self),
                                    _mm512_fmadd_ps(q2, k.load(unalignedAt: 128, as: __m512.self),
                                                    _mm512_fmadd_ps(q1, k.load(unalignedAt: 64, as: __m512.self),
                                                                    _mm512_mul_ps(q0, k.load(unalignedAt: 0, as: __m512.self)))))
                }
                @inline(__always) func f16Partial(_ k: UnsafeRawPointer) -> __m512 {
                    _mm512_fmadd_ps(q3, _mm512_cvtph_ps(k.load(unalignedAt: 96, as: __m256i.self)),
                                    _mm512_fmadd_ps(q2, _mm512_cvtph_ps(k.load(unalignedAt: 64, as: __m256i.self)),
                                                    _mm512_fmadd_ps(q1, _mm512_cvtph_ps(k.load(unalignedAt: 32, as: __m256i.self)),
                                                                    _mm512_mul_ps(q0, _mm512_cvtph_ps(k.load(unalignedAt: 0, as: __m256i.self))))))
                }
                // 16 entries from `start` (fewer at the end: zero vectors, lanes not stored).
                @inline(__always) func block(_ start: Int, _ count: Int, _ partial: (Int) -> __m512) -> __m512 {
                    @inline(__always) func p(_ i: Int) -> __m512 { i < count ? partial(start + i) : _mm512_setzero_ps() }
                    let sums = Reductions512.sixteenSums(p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7),
                                                         p(8), p(9), p(10), p(11), p(12), p(13), p(14), p(15))
                    return _mm512_mul_ps(sums, scaleVector)
                }
                @inline(__always) func lanes(_ count: Int) -> UInt16 { UInt16(truncatingIfNeeded: (1 << count) - 1) }
                var j = 0
                while j < metaCount {
                    let count = min(16, metaCount - j)
                    let v = block(j, count) { metaPartial(UnsafeRawPointer(metaKeys + 64 * $0)) }
                    _mm512_mask_storeu_ps(row + j, lanes(count), v)
                    j += count
                }
                let seen = visible(x / perRow)
                let minusInfinity = _mm512_set1_ps(-.infinity)
                var i = 0
                while i < regular {
                    let count = min(16, regular - i)
                    let v = block(i, count) { f16Partial(key($0)) }
                    // Lanes of entries this row must not see: −∞.
                    let lo = max(0, seen.lowerBound - metaCount - i), hi = min(count, max(0, seen.upperBound - metaCount - i))
                    let inside = hi > lo ? lanes(hi) & ~lanes(lo) : 0
                    _mm512_mask_storeu_ps(row + metaCount + i, lanes(count), _mm512_mask_blend_ps(inside, minusInfinity, v))
                    i += count
                }
            }
        }
    }
}
