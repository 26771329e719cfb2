import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable

/// `MatMul`'s register tile (4 decoded weight rows × 4 tokens over one depth block) for CPUs
/// with 16 vector registers of 8 lanes (AVX2). The portable tile keeps 16 accumulators of 16
/// lanes, which here are 32 registers: the compiler kept most of them on the stack, and the
/// stores and reloads outnumbered the multiply-adds (perf annotate of a 350m q4 prefill). Here
/// the tile is two passes of 4 rows × 2 tokens: 8 accumulators, 4 weight and 1 input register,
/// 6 loads per 8 FMAs; the weight rows (8 KiB) are read twice from L1. The 8 sums of a pass
/// are reduced together by one tree of horizontal adds, and each token's 4 results written as
/// one 4-lane vector.
enum MatMulTileAVX2 {
    /// `MatMul.Tile4x4`, the contract of `MatMul.kernel4x4`: rows `w` (`MatMul.depthBlock` floats apart) ×
    /// tokens `x` (`ldx` apart) over `depth` floats (a multiple of 16); results to
    /// y[t·ldy + i] (added when `accumulate`).
    @inline(__always)
    static func kernel4x4(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ ldx: Int, _ depth: Int,
                          _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ accumulate: Bool) {
        pass(w, x, ldx: ldx, depth: depth, y: y, ldy: ldy, accumulate: accumulate)
        pass(w, x + 2 * ldx, ldx: ldx, depth: depth, y: y + 2 * ldy, ldy: ldy, accumulate: accumulate)
    }

    /// 4 rows × tokens x and x + ldx.
    @inline(__always)
    private static func pass(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                             y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let stride = 4 &* MatMul.depthBlock
        let w0 = UnsafeRawPointer(w), x0 = UnsafeRawPointer(x), x1 = UnsafeRawPointer(x + ldx)
        var c00 = _mm256_setzero_ps(), c10 = c00, c20 = c00, c30 = c00
        var c01 = c00, c11 = c00, c21 = c00, c31 = c00
        var o = 0
        let end = 4 &* depth
        while o < end {
            let a0 = w0.load(unalignedAt: o, as: __m256.self), a1 = w0.load(unalignedAt: o &+ stride, as: __m256.self)
            let a2 = w0.load(unalignedAt: o &+ 2 &* stride, as: __m256.self), a3 = w0.load(unalignedAt: o &+ 3 &* stride, as: __m256.self)
            let b0 = x0.load(unalignedAt: o, as: __m256.self)
            c00 = _mm256_fmadd_ps(a0, b0, c00); c10 = _mm256_fmadd_ps(a1, b0, c10)
            c20 = _mm256_fmadd_ps(a2, b0, c20); c30 = _mm256_fmadd_ps(a3, b0, c30)
            let b1 = x1.load(unalignedAt: o, as: __m256.self)
            c01 = _mm256_fmadd_ps(a0, b1, c01); c11 = _mm256_fmadd_ps(a1, b1, c11)
            c21 = _mm256_fmadd_ps(a2, b1, c21); c31 = _mm256_fmadd_ps(a3, b1, c31)
            o &+= 32
        }
        // Lanes 0…3: token 0's rows 0…3; lanes 4…7: token 1's.
        let sums = eightSums(c00, c10, c20, c30, c01, c11, c21, c31)
        let halves = unsafeBitCast(sums, to: (SIMD4<Float>, SIMD4<Float>).self)
        @inline(__always) func put(_ out: UnsafeMutablePointer<Float>, _ v: SIMD4<Float>) {
            let raw = UnsafeMutableRawPointer(out)
            raw.storeBytes(of: accumulate ? raw.load(unalignedAt: 0, as: SIMD4<Float>.self) + v : v, as: SIMD4<Float>.self)
        }
        put(y, halves.0)
        put(y + ldy, halves.1)
    }

    /// The lane sums of 8 vectors as one vector (lane i: Σ of vector i): two levels of
    /// `vhaddps` leave, per 128-bit half, the half-sums of the 8 vectors; one cross-half add
    /// finishes them.
    @inline(__always)
    static func eightSums(_ v0: __m256, _ v1: __m256, _ v2: __m256, _ v3: __m256,
                          _ v4: __m256, _ v5: __m256, _ v6: __m256, _ v7: __m256) -> __m256 {
        // Per 128-bit half: [v0, v1, v2, v3] partial sums (and v4…v7 in the second vector).
        let low = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3))
        let high = _mm256_hadd_ps(_mm256_hadd_ps(v4, v5), _mm256_hadd_ps(v6, v7))
        // [low.half0 | high.half0] + [low.half1 | high.half1].
        let l = unsafeBitCast(low, to: (SIMD4<Float>, SIMD4<Float>).self), h = unsafeBitCast(high, to: (SIMD4<Float>, SIMD4<Float>).self)
        return unsafeBitCast((l.0, h.0), to: __m256.self) + unsafeBitCast((l.1, h.1), to: __m256.self)
    }
}
