import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q4 matrix-vector product (decoding) on 256-bit integer instructions, for x86-64 CPUs
/// with AVX2 and FMA (the AVX2 backend, `AVX2Kernels`; Haswell to Zen 3).
/// Decoding reads every weight once per token, so the work per weight decides the speed:
/// here a pair of sub-blocks (64 weights, 32 code bytes) costs one load, three mask and shift
/// operations, two `vpmaddubsw` (32 unsigned × signed byte products each, summed in pairs to
/// 16 bits), one 16-bit add, one `vpmaddwd` against ones (to 32 bits) and three float
/// operations, where the portable kernel widens every code to 16 or 32 bits first.
///
/// The numbers are `IntegerMatVec`'s (the AVX-512 VNNI kernel): against the int8 activations
/// of `Q8Activations` (per sub-block s the scale a_s and codes c, the same x̂ as the portable
/// kernel), a row is
///   Σ_s d·sc_s·a_s·Σ_i q_i·c_i − dmin·Σ_s mn_s·(a_s·Σ_i c_i).
/// `vpmaddubsw` takes the 4-bit codes as its unsigned operand and the activation codes as its
/// signed one; a 16-bit lane sums 2 low-nibble and (after the add) 2 high-nibble products, at
/// most 4·15·127 = 7620, so it never saturates, and the 32-bit lanes (4 per sub-block) are
/// exact. Per group the 12-bit entries are unpacked once into 8-lane vectors of sc and mn by
/// one byte shuffle and one variable shift per half, and d·sc_s·a_s is formed as a vector;
/// each pair of sub-blocks then picks its 2 scales (4 lanes each) with one permute.
///
/// Activation layout (`ArrangedInput`'s packed buffers; the layout of `IntegerMatVec`, so one
/// description and one packing test cover both): per run r of 4 sub-blocks (sub-blocks
/// 4r…4r+3, runs never straddle groups), 128 bytes: the low halves (elements 0…15) of the 4
/// sub-blocks, then the high halves (16…31), as int8 codes; per sub-block s the float a_s
/// (`packedScales[s]`) and a_s·Σc (`packedSums[s]`), zero up to a whole group. A pair of
/// sub-blocks (2p, 2p+1) thus finds its low halves as 32 consecutive bytes, matching the low
/// nibbles of its 32 code bytes, and its high halves 64 bytes further.
enum Q4MatVecAVX2 {
    // MARK: Activations

    /// Packs `x[0..<n]` for q4 rows: per sub-block the codes and scale of
    /// `Q8Activations.quantize` (the same numbers, 8 lanes at a time).
    static func arrange(_ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        let nsub = (n + 31) / 32
        for s in 0..<nsub {
            let block = AVX2Block(x + 32 * s, count: min(32, n - 32 * s))
            let out = input.packed + 128 * (s / 4) + 16 * (s % 4)
            guard block.isFinite, block.largest > 0 else {
                // Non-finite input: codes 0 and a NaN scale (NaN products, not wrong ones).
                clearSubBlock(s, input, scale: block.isFinite ? 0 : .nan)
                continue
            }
            let codes = block.codes(scaledBy: 127 / block.largest)
            out.storeBytes(of: AVX2Block.int8(codes), as: __m128i.self)
            out.storeBytes(of: AVX2Block.int8(codes, high: true), toByteOffset: 64, as: __m128i.self)
            let a = block.largest / 127
            input.packedScales[s] = a
            input.packedSums[s] = a * Float(AVX2Block.sum(codes))
        }
        // Zero codes, scales and sums up to the end of the last group.
        for s in nsub..<((nsub + 15) / 16 * 16) { clearSubBlock(s, input, scale: 0) }
    }

    /// Sub-block s of the packed input as zero codes with scale and sum `scale`.
    @inline(__always)
    private static func clearSubBlock(_ s: Int, _ input: ArrangedInput, scale: Float) {
        let out = input.packed + 128 * (s / 4) + 16 * (s % 4)
        out.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        (out + 64).initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        input.packedScales[s] = scale
        input.packedSums[s] = scale
    }

    // MARK: The product

    /// y[r] = W[r,:]·x̂ for r in `rows`, x packed by `arrange` in `input`. One row after
    /// another, each read front to back (one sequential stream for the prefetchers, as in
    /// `IntegerMatVec`).
    static func run(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let n = w.rowLength
        w.forEachRow(in: rows) { r, row in y[r] = dot(row, n, input) }
    }

    /// The constant vectors of the kernel (local values: a static's lazy accessor inside the
    /// loop makes the compiler spill registers around the call).
    struct Constants {
        /// Byte shuffle that puts, in 32-bit lane j (of 8), the 4 bytes from byte ⌊3j/2⌋ of
        /// 16 loaded entry bytes (broadcast to both 128-bit halves); a right shift by 4 in the
        /// odd lanes then leaves entry j (bits 12j…12j+11) at the bottom.
        let entryShuffle: __m256i
        let entryShift: __m256i
        let nibble: __m256i
        let ones: __m256i

        @inline(__always)
        init() {
            entryShuffle = unsafeBitCast(SIMD32<UInt8>(
                0, 1, 2, 3, 1, 2, 3, 4, 3, 4, 5, 6, 4, 5, 6, 7,
                6, 7, 8, 9, 7, 8, 9, 10, 9, 10, 11, 12, 10, 11, 12, 13), to: __m256i.self)
            entryShift = unsafeBitCast(SIMD8<UInt32>(0, 4, 0, 4, 0, 4, 0, 4), to: __m256i.self)
            nibble = _mm256_set1_epi8(15)
            ones = _mm256_set1_epi16(1)
        }
    }

    /// Entries j…j+7 (16 bytes from `bytes`, the first at byte 0) as 8 lanes of sc and mn.
    @inline(__always)
    static func entries(_ bytes: __m128i, _ c: Constants) -> (sc: __m256, mn: __m256) {
        let e = _mm256_srlv_epi32(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), c.entryShuffle), c.entryShift)
        let six = _mm256_set1_epi32(63)
        return (_mm256_cvtepi32_ps(_mm256_and_si256(e, six)), _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(e, 6), six)))
    }

    /// Σ q·c over sub-blocks 2p and 2p+1 (32 code bytes `v`, activations `x` of the pair's low
    /// halves, the high halves 64 bytes on): 8 lanes, 4 per sub-block.
    @inline(__always)
    static func pair(_ v: __m256i, _ x: UnsafeRawPointer, _ c: Constants) -> __m256 {
        pair(low: _mm256_and_si256(v, c.nibble), high: _mm256_and_si256(_mm256_srli_epi16(v, 4), c.nibble), x, c)
    }

    /// `pair` from the code bytes' low and high nibbles, already split (the batched product
    /// splits them once for all its inputs).
    @inline(__always)
    static func pair(low lo: __m256i, high hi: __m256i, _ x: UnsafeRawPointer, _ c: Constants) -> __m256 {
        let products = _mm256_add_epi16(_mm256_maddubs_epi16(lo, x.load(unalignedAt: 0, as: __m256i.self)),
                                        _mm256_maddubs_epi16(hi, x.load(unalignedAt: 64, as: __m256i.self)))
        return _mm256_cvtepi32_ps(_mm256_madd_epi16(products, c.ones))
    }

    /// One group of a row (`k` sub-blocks from `group`) against the packed activations of group
    /// g: the scaled code sums added to `acc`, the mins term dmin·Σ mn_s·a_s·Σc_s to `mins`
    /// (8 lanes each, summed up by the caller). Reads only the group's own bytes (a row's short
    /// last group may end anywhere in the mapping): the 16 entry bytes from the start of the
    /// entries lie in the group for every k ≥ 1 (2 + 16 bytes at least), those from entry 8 on
    /// for every k ≥ 9; lanes past the group's entries meet activation scales and sums of 0.
    @inline(__always)
    private static func group(_ group: UnsafeRawPointer, subBlocks k: Int, index g: Int, _ input: ArrangedInput,
                              _ c: Constants, acc: inout (__m256, __m256), mins: inout __m256) {
        let half = _mm_cvtph_ps(_mm_cvtsi32_si128(group.load(unalignedAt: 0, as: Int32.self)))
        let d = _mm256_set1_ps(half[0]), dmin = _mm256_set1_ps(half[1])
        let scales = UnsafeRawPointer(input.packedScales + 16 * g), sums = UnsafeRawPointer(input.packedSums + 16 * g)
        let first = entries(group.load(unalignedAt: 4, as: __m128i.self), c)
        let second = k > 8 ? entries(group.load(unalignedAt: 16, as: __m128i.self), c) : (sc: _mm256_setzero_ps(), mn: _mm256_setzero_ps())
        let s0 = _mm256_mul_ps(_mm256_mul_ps(first.sc, scales.load(unalignedAt: 0, as: __m256.self)), d)
        let s1 = _mm256_mul_ps(_mm256_mul_ps(second.sc, scales.load(unalignedAt: 32, as: __m256.self)), d)
        let m = _mm256_fmadd_ps(first.mn, sums.load(unalignedAt: 0, as: __m256.self),
                                _mm256_mul_ps(second.mn, sums.load(unalignedAt: 32, as: __m256.self)))
        mins = _mm256_fmadd_ps(m, dmin, mins)
        let codes = group + 4 + Q4Layout.scaleBytes(subBlocks: k)
        let x = UnsafeRawPointer(input.packed) + 512 &* g
        // Pair p: lanes 0…3 take sub-block 2p's scale, lanes 4…7 sub-block 2p+1's.
        @inline(__always) func add(_ p: Int, _ v: __m256i, into sum: inout __m256) {
            let lanes = _mm256_add_epi32(_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_set1_epi32(Int32(truncatingIfNeeded: 2 &* (p & 3))))
            let scale = _mm256_permutevar8x32_ps(p < 4 ? s0 : s1, lanes)
            sum = _mm256_fmadd_ps(pair(v, x + 128 &* (p >> 1) + 32 &* (p & 1), c), scale, sum)
        }
        if k == 16 {
            // A full group (every row's groups but maybe the last): eight pairs, no bounds.
            for p in stride(from: 0, to: 8, by: 2) {
                add(p, codes.load(unalignedAt: 32 &* p, as: __m256i.self), into: &acc.0)
                add(p + 1, codes.load(unalignedAt: 32 &* p &+ 32, as: __m256i.self), into: &acc.1)
            }
        } else {
            for p in 0..<(k / 2) { add(p, codes.load(unalignedAt: 32 * p, as: __m256i.self), into: &acc.0) }
            if k % 2 == 1 {
                // The odd last sub-block: its 16 bytes, the other half zero.
                let last = codes.load(unalignedAt: 16 * (k - 1), as: __m128i.self)
                add(k / 2, unsafeBitCast((last, _mm_setzero_si128()), to: __m256i.self), into: &acc.1)
            }
        }
    }

    /// One row of `n` elements · x̂.
    @inline(__always)
    private static func dot(_ row: UnsafeRawPointer, _ n: Int, _ input: ArrangedInput) -> Float {
        let nsub = (n + 31) / 32
        let groups = (nsub + 15) / 16
        let fullGroupBytes = Q4Layout.groupBytes(subBlocks: 16)
        let c = Constants()
        var acc = (_mm256_setzero_ps(), _mm256_setzero_ps()), mins = _mm256_setzero_ps()
        for g in 0..<groups {
            let start = row + g * fullGroupBytes
            Prefetch.lines(start + Prefetch.q4RowDistance, bytes: fullGroupBytes)
            group(start, subBlocks: min(16, nsub - 16 * g), index: g, input, c, acc: &acc, mins: &mins)
        }
        return horizontalSum(_mm256_sub_ps(_mm256_add_ps(acc.0, acc.1), mins))
    }
}
