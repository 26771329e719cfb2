import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q8 matrix-vector product (decoding) on 256-bit integer instructions, for x86-64 CPUs
/// with AVX2 and FMA (the AVX2 backend, `AVX2Kernels`).
///
/// The numbers are `IntegerMatVec`'s: 16-bit activation codes per 32-element block (c =
/// round(x/a), a = max|x|/32767, `Int16Activations`: a rounding 256 times finer than the
/// weights' own). Each block's 32 int8 weight codes are sign-extended to 16 bits
/// (`vpmovsxbw`, 16 at a time) and meet the activation codes in two `vpmaddwd`; a 32-bit lane
/// then sums 4 products of at most 127·32767, below 2²⁴, so its conversion to float is exact.
/// The block's float scale d_b·a_b multiplies the 8 lane sums; the f16 scales of 8 blocks are
/// gathered and converted in one go.
///
/// Activation layout (`ArrangedInput`'s packed buffers, as `IntegerMatVec`'s): per block b,
/// 32 int16 codes at byte 64b; a_b at `packedScales[b]`, zero up to a whole run of 16 blocks.
enum Q8MatVecAVX2 {
    // MARK: Activations

    /// Packs `x[0..<n]` for q8 rows: 16-bit codes per block of 32.
    static func arrange(_ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        let blocks = (n + 31) / 32
        for b in 0..<blocks {
            let block = AVX2Block(x + 32 * b, count: min(32, n - 32 * b))
            let out = input.packed + 64 * b
            guard block.isFinite else {
                // Non-finite input: codes 0 and a NaN scale, so the products come out NaN.
                out.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
                input.packedScales[b] = .nan
                continue
            }
            let codes = block.codes(scaledBy: block.largest > 0 ? Int16Activations.codeLimit / block.largest : 0)
            out.storeBytes(of: AVX2Block.int16(codes), as: __m256i.self)
            out.storeBytes(of: AVX2Block.int16(codes, high: true), toByteOffset: 32, as: __m256i.self)
            input.packedScales[b] = block.largest / Int16Activations.codeLimit
        }
        for b in blocks..<((blocks + 15) / 16 * 16) {
            (input.packed + 64 * b).initializeMemory(as: UInt8.self, repeating: 0, count: 64)
            input.packedScales[b] = 0
        }
    }

    // MARK: The product

    /// y[r] = W[r,:]·x̂ for r in `rows`, x packed by `arrange` in `input`; one row after another.
    static func run(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let n = w.rowLength
        w.forEachRow(in: rows) { r, row in y[r] = dot(row, n, input) }
    }

    /// d_b·a_b of 8 blocks from `blocks` (`count` of them present, the rest 0) into `out`.
    @inline(__always)
    private static func scales(_ blocks: UnsafeRawPointer, count: Int, a: __m256, into out: UnsafeMutablePointer<Float>) {
        @inline(__always) func h(_ j: Int) -> UInt16 { blocks.load(unalignedAt: 34 * j, as: UInt16.self) }
        var halves = SIMD8<UInt16>()
        if count == 8 {
            halves = SIMD8(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7))
        } else {
            for j in 0..<count { halves[j] = h(j) }
        }
        let d = _mm256_cvtph_ps(unsafeBitCast(halves, to: __m128i.self))
        UnsafeMutableRawPointer(out).storeBytes(of: _mm256_mul_ps(d, a), as: __m256.self)
    }

    /// One row of `n` elements · x̂. Runs of 8 blocks, each unrolled with constant offsets
    /// (index arithmetic wraps: checked multiplies kept the loop rolled, with a trap branch per
    /// block).
    @inline(__always)
    private static func dot(_ row: UnsafeRawPointer, _ n: Int, _ input: ArrangedInput) -> Float {
        let blocks = (n + 31) / 32
        let aPtr = UnsafeRawPointer(input.packedScales)
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 8) { buffer in
            let s = buffer.baseAddress!
            // Two accumulators: consecutive blocks do not wait for each other's multiply-add.
            var acc0 = _mm256_setzero_ps(), acc1 = acc0
            var b0 = 0
            while b0 < blocks {
                let count = min(8, blocks &- b0)
                let chunk = row + 34 &* b0
                let xs = UnsafeRawPointer(input.packed) + 64 &* b0
                Prefetch.lines(chunk + Prefetch.q8RowDistance, bytes: 8 * Q8Layout.blockBytes)
                scales(chunk, count: count, a: aPtr.load(unalignedAt: 4 &* b0, as: __m256.self), into: s)
                @inline(__always) func block(_ j: Int, into acc: inout __m256) {
                    let x = xs + 64 &* j, w = chunk + 34 &* j
                    let lo = _mm256_cvtepi8_epi16(w.load(unalignedAt: 2, as: __m128i.self))
                    let hi = _mm256_cvtepi8_epi16(w.load(unalignedAt: 18, as: __m128i.self))
                    let p = _mm256_add_epi32(_mm256_madd_epi16(lo, x.load(unalignedAt: 0, as: __m256i.self)),
                                             _mm256_madd_epi16(hi, x.load(unalignedAt: 32, as: __m256i.self)))
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s[j]), acc)
                }
                if count == 8 {
                    for j in stride(from: 0, to: 8, by: 2) {
                        block(j, into: &acc0)
                        block(j &+ 1, into: &acc1)
                    }
                } else {
                    for j in 0..<count { block(j, into: &acc0) }
                }
                b0 &+= count
            }
            return horizontalSum(_mm256_add_ps(acc0, acc1))
        }
    }
}
