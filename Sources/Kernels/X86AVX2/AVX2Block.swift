import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable

/// One block of 32 activations in four 8-lane registers, and the steps the AVX2 kernels'
/// activation packing takes on it (`Q4MatVecAVX2.arrange`, `Q8MatVecAVX2.arrange`): the
/// largest magnitude, whether every element is finite, the codes round(x·scale) and their
/// narrowing to int8 or int16 in element order.
struct AVX2Block {
    let lanes: (__m256, __m256, __m256, __m256)
    /// max|x| (meaningless when `isFinite` is false: a NaN next to zeros can leave it 0).
    let largest: Float
    let isFinite: Bool

    /// The `count` (1…32) floats at x, zero padded (a short block through a stack copy: the
    /// row may end anywhere in memory).
    @inline(__always)
    init(_ x: UnsafePointer<Float>, count: Int) {
        if count == 32 {
            let raw = UnsafeRawPointer(x)
            lanes = (raw.load(unalignedAt: 0, as: __m256.self), raw.load(unalignedAt: 32, as: __m256.self),
                     raw.load(unalignedAt: 64, as: __m256.self), raw.load(unalignedAt: 96, as: __m256.self))
        } else {
            var copy = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps())
            withUnsafeMutableBytes(of: &copy) { $0.baseAddress!.copyMemory(from: x, byteCount: 4 * count) }
            lanes = copy
        }
        let zero = _mm256_setzero_ps()
        // x·0 is NaN exactly where x is NaN or infinite.
        let poison = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(lanes.0, zero), _mm256_mul_ps(lanes.1, zero)),
                                   _mm256_add_ps(_mm256_mul_ps(lanes.2, zero), _mm256_mul_ps(lanes.3, zero)))
        isFinite = !horizontalSum(poison).isNaN
        let signless = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF))
        let m8 = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(lanes.0, signless), _mm256_and_ps(lanes.1, signless)),
                               _mm256_max_ps(_mm256_and_ps(lanes.2, signless), _mm256_and_ps(lanes.3, signless)))
        let halves = unsafeBitCast(m8, to: (SIMD4<Float>, SIMD4<Float>).self)
        let m4 = _mm_max_ps(halves.0, halves.1)
        largest = Swift.max(Swift.max(m4[0], m4[1]), Swift.max(m4[2], m4[3]))
    }

    /// round(x·scale) as int32 lanes; `vcvtps2dq` rounds half to even, as the scalar
    /// quantizer's 1.5·2²³ addition does.
    @inline(__always)
    func codes(scaledBy scale: Float) -> (__m256i, __m256i, __m256i, __m256i) {
        let s = _mm256_set1_ps(scale)
        return (_mm256_cvtps_epi32(_mm256_mul_ps(lanes.0, s)), _mm256_cvtps_epi32(_mm256_mul_ps(lanes.1, s)),
                _mm256_cvtps_epi32(_mm256_mul_ps(lanes.2, s)), _mm256_cvtps_epi32(_mm256_mul_ps(lanes.3, s)))
    }

    /// `vpackssdw` interleaves its two sources per 128-bit half; this permute of 32-bit lanes
    /// puts the four 64-bit pieces back in element order.
    @inline(__always)
    private static var packOrder: __m256i { _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7) }

    /// Codes (each within int16) of elements 0…15 (or 16…31, `high`) as int16, in order.
    @inline(__always)
    static func int16(_ c: (__m256i, __m256i, __m256i, __m256i), high: Bool = false) -> __m256i {
        let packed = high ? _mm256_packs_epi32(c.2, c.3) : _mm256_packs_epi32(c.0, c.1)
        return _mm256_permutevar8x32_epi32(packed, packOrder)
    }

    /// Codes (each within int8) of elements 0…15 (or 16…31, `high`) as int8, in order.
    @inline(__always)
    static func int8(_ c: (__m256i, __m256i, __m256i, __m256i), high: Bool = false) -> __m128i {
        let words = int16(c, high: high)
        let halves = unsafeBitCast(words, to: (__m128i, __m128i).self)
        return _mm_packs_epi16(halves.0, halves.1)
    }

    /// The sum of the 32 codes.
    @inline(__always)
    static func sum(_ c: (__m256i, __m256i, __m256i, __m256i)) -> Int32 {
        let s = unsafeBitCast(_mm256_add_epi32(_mm256_add_epi32(c.0, c.1), _mm256_add_epi32(c.2, c.3)), to: SIMD8<Int32>.self)
        return (s[0] &+ s[1]) &+ (s[2] &+ s[3]) &+ ((s[4] &+ s[5]) &+ (s[6] &+ s[7]))
    }
}
