import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q4 and q8 matrix-vector products (decoding) on integer dot-product instructions, for
/// x86-64 CPUs with AVX-512 VNNI (the AVX-512 backend; `Q4Rows` and `Q8Rows` run
/// everywhere else). Decoding reads every weight once per token, so the work per weight
/// decides the speed: here a run of 128 q4 weights costs one 64-byte load, three mask and
/// shift operations, two `vpdpbusd` (64 unsigned × signed byte products each) and three float
/// operations, where the portable kernel widens every code to 16 or 32 bits first.
///
/// q4 (`Q4Layout`), against the int8 activations of `Q8Activations` (the same codes and
/// per-sub-block scales a_s as the portable kernel, so both compute W·x̂ for the same x̂):
///   Σ_s d·sc_s·a_s·Σ_i q_i·c_i − dmin·Σ_s mn_s·(a_s·Σ_i c_i).
/// The 4-bit codes are the unsigned operand of `vpdpbusd`, the activation codes the signed
/// one; each 32-bit lane sums 8 products (at most 8·15·127), a sub-block's 16 code bytes fill
/// 4 lanes. Per group (16 sub-blocks) the 12-bit entries are unpacked once into 16 lanes of sc
/// and mn by one byte shuffle and one variable shift, and d·sc_s·a_s is formed as a vector;
/// each run of 4 sub-blocks then picks its 4 scales with one permute.
///
/// q8 (`Q8Layout`), against 16-bit activation codes per 32-element block (c = round(x/a),
/// a = max|x|/32767: a rounding 256 times finer than the weights' own): each block's 32 int8
/// codes are sign-extended to 16 bits and meet the activation codes in one `vpdpwssd`; the
/// block's float scale d_b·a_b multiplies the 16 lane sums. The f16 scales of 16 blocks are
/// collected and converted in one go.
///
/// Activation layout (`ArrangedInput`'s packed buffers):
/// - q4: per run r of 4 sub-blocks (sub-blocks 4r…4r+3, runs never straddle groups), 128 bytes:
///   the low halves (elements 0…15) of the 4 sub-blocks, then the high halves (16…31), as int8
///   codes; per sub-block s the float a_s (`packedScales[s]`) and a_s·Σc (`packedSums[s]`),
///   zero up to a whole group.
/// - q8: per block b, 32 int16 codes at byte 64b; a_b at `packedScales[b]`, zero up to a whole
///   run of 16 blocks.
enum IntegerMatVec {
    static let q8CodeLimit = Int16Activations.codeLimit

    // MARK: Activations

    /// Packs `x[0..<n]` for q4 rows: per sub-block the codes and scale of
    /// `Q8Activations.quantize` (the same numbers, computed 16 lanes at a time).
    static func arrangeQ4(_ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        let nsub = (n + 31) / 32
        let raw = UnsafeRawPointer(x)
        // Whole groups of 16 finite sub-blocks at once; the rest one sub-block at a time.
        var first = 0
        while first + 16 <= n / 32 && arrangeQ4Group(raw + 128 * first, firstSubBlock: first, into: input) { first += 16 }
        for s in first..<nsub {
            let count = min(32, n - 32 * s)
            var lo: __m512, hi: __m512
            if count == 32 {
                lo = raw.load(unalignedAt: 128 * s, as: __m512.self)
                hi = raw.load(unalignedAt: 128 * s + 64, as: __m512.self)
            } else {
                // A short last sub-block, zero padded.
                lo = unsafeBitCast(AVX512Vectors.load(x + 32 * s, count: min(16, count)), to: __m512.self)
                hi = unsafeBitCast(AVX512Vectors.load(x + 32 * s + 16, count: max(0, count - 16)), to: __m512.self)
            }
            let out = input.packed + 128 * (s / 4) + 16 * (s % 4)
            let poison = _mm512_add_ps(_mm512_mul_ps(lo, _mm512_setzero_ps()), _mm512_mul_ps(hi, _mm512_setzero_ps()))
            let largest = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)))
            let poisoned = _mm512_reduce_add_ps(poison).isNaN
            if poisoned || largest == 0 {
                // Non-finite input: codes 0 and a NaN scale (NaN products, not wrong ones). The
                // maximum cannot tell: a NaN next to zeros can leave it 0.
                clearQ4SubBlock(s, input, scale: poisoned ? .nan : 0)
                continue
            }
            // vcvtps2dq rounds half to even, as the scalar quantizer's 1.5·2²³ addition does.
            let inv = _mm512_set1_ps(127 / largest)
            let cl = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)), ch = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inv))
            out.storeBytes(of: _mm512_cvtepi32_epi8(cl), as: __m128i.self)
            out.storeBytes(of: _mm512_cvtepi32_epi8(ch), toByteOffset: 64, as: __m128i.self)
            let a = largest / 127
            input.packedScales[s] = a
            input.packedSums[s] = a * Float(_mm512_reduce_add_epi32(_mm512_add_epi32(cl, ch)))
        }
        // Zero codes, scales and sums up to the end of the last group.
        for s in nsub..<((nsub + 15) / 16 * 16) { clearQ4SubBlock(s, input, scale: 0) }
    }

    /// max|x| of each of the 16 blocks of 32 elements from `x` (512, all present), by one
    /// transpose tree; nil when an element is not finite.
    @inline(__always)
    static func blockMaxima(_ x: UnsafeRawPointer) -> SIMD16<Float>? {
        var poison = _mm512_setzero_ps()
        @inline(__always) func largest(_ b: Int) -> __m512 {
            let lo = x.load(unalignedAt: 128 * b, as: __m512.self), hi = x.load(unalignedAt: 128 * b + 64, as: __m512.self)
            poison = _mm512_add_ps(poison, _mm512_add_ps(_mm512_mul_ps(lo, _mm512_setzero_ps()), _mm512_mul_ps(hi, _mm512_setzero_ps())))
            return _mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi))
        }
        let m = Reductions512.sixteenReductions({ _mm512_max_ps($0, $1) },
                                                largest(0), largest(1), largest(2), largest(3), largest(4), largest(5), largest(6), largest(7),
                                                largest(8), largest(9), largest(10), largest(11), largest(12), largest(13), largest(14), largest(15))
        return _mm512_reduce_add_ps(poison).isNaN ? nil : m
    }

    /// Sub-blocks `firstSubBlock ..< firstSubBlock + 16` (512 elements from `x`, all present) as
    /// `arrangeQ4` packs them one by one, with the 16 maxima and the 16 code sums each taken by
    /// one transpose tree and the scales by one vector division, where one sub-block at a time
    /// took three horizontal reductions and two scalar divisions each (the packing was 2% of
    /// 1.5b q4 decoding, on one thread while the other waited). Returns false, having written
    /// nothing, when an element is not finite: `arrangeQ4`'s per-sub-block path handles that.
    @inline(__always)
    private static func arrangeQ4Group(_ x: UnsafeRawPointer, firstSubBlock first: Int, into input: ArrangedInput) -> Bool {
        guard let m = blockMaxima(x) else { return false }
        // 127/max per sub-block (0 for an all-zero one: its codes, scale and sum are then 0).
        var inv = 127 / m
        inv.replace(with: 0, where: m .== 0)
        let a = m / 127
        // Sub-block s's codes, stored; returns their sum in every lane's share (exact: integers).
        @inline(__always) func codes(_ s: Int) -> __m512 {
            let scale = _mm512_permutexvar_ps(_mm512_set1_epi32(Int32(s)), inv)
            let lo = x.load(unalignedAt: 128 * s, as: __m512.self), hi = x.load(unalignedAt: 128 * s + 64, as: __m512.self)
            // vcvtps2dq rounds half to even, as the scalar quantizer's 1.5·2²³ addition does.
            let cl = _mm512_cvtps_epi32(_mm512_mul_ps(lo, scale)), ch = _mm512_cvtps_epi32(_mm512_mul_ps(hi, scale))
            let out = input.packed + 128 * ((first + s) / 4) + 16 * (s % 4)
            out.storeBytes(of: _mm512_cvtepi32_epi8(cl), as: __m128i.self)
            out.storeBytes(of: _mm512_cvtepi32_epi8(ch), toByteOffset: 64, as: __m128i.self)
            return _mm512_cvtepi32_ps(_mm512_add_epi32(cl, ch))
        }
        let sums = Reductions512.sixteenSums(codes(0), codes(1), codes(2), codes(3), codes(4), codes(5), codes(6), codes(7),
                                             codes(8), codes(9), codes(10), codes(11), codes(12), codes(13), codes(14), codes(15))
        UnsafeMutableRawPointer(input.packedScales + first).storeBytes(of: a, as: __m512.self)
        UnsafeMutableRawPointer(input.packedSums + first).storeBytes(of: _mm512_mul_ps(a, sums), as: __m512.self)
        return true
    }

    /// Sub-block s of the packed q4 input as zero codes with scale and sum `scale`.
    @inline(__always)
    private static func clearQ4SubBlock(_ s: Int, _ input: ArrangedInput, scale: Float) {
        let out = input.packed + 128 * (s / 4) + 16 * (s % 4)
        out.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        (out + 64).initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        input.packedScales[s] = scale
        input.packedSums[s] = scale
    }

    /// Packs `x[0..<n]` for q8 rows: 16-bit codes per block of 32.
    static func arrangeQ8(_ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        let blocks = (n + 31) / 32
        let raw = UnsafeRawPointer(x)
        // Runs of 16 whole, finite blocks at once; the rest one block at a time.
        var first = 0
        while first + 16 <= n / 32 && arrangeQ8Run(raw + 128 * first, firstBlock: first, into: input) { first += 16 }
        for b in first..<blocks {
            let count = min(32, n - 32 * b)
            let out = input.packed + 64 * b
            if count < 32 {
                // A short last block: through a zero-padded copy.
                var tail = (SIMD16<Float>(), SIMD16<Float>())
                withUnsafeMutableBytes(of: &tail) { t in
                    t.baseAddress!.copyMemory(from: raw + 128 * b, byteCount: 4 * count)
                }
                input.packedScales[b] = quantizeQ8Block(tail.0, tail.1, into: out)
            } else {
                input.packedScales[b] = quantizeQ8Block(raw.load(unalignedAt: 128 * b, as: SIMD16<Float>.self),
                                                        raw.load(unalignedAt: 128 * b + 64, as: SIMD16<Float>.self), into: out)
            }
        }
        let padded = (blocks + 15) / 16 * 16
        for b in blocks..<padded {
            (input.packed + 64 * b).initializeMemory(as: UInt8.self, repeating: 0, count: 64)
            input.packedScales[b] = 0
        }
    }

    /// Blocks `firstBlock ..< firstBlock + 16` (512 elements from `x`, all present) as
    /// `quantizeQ8Block` packs them one by one, with the 16 maxima taken by one transpose tree
    /// and the scales by one vector division (one block at a time, the packing was 1.6% of 1.5b
    /// q8 decoding, on one thread while the other waited). Returns false, having written
    /// nothing, when an element is not finite: the per-block path handles that.
    @inline(__always)
    private static func arrangeQ8Run(_ x: UnsafeRawPointer, firstBlock first: Int, into input: ArrangedInput) -> Bool {
        guard let m = blockMaxima(x) else { return false }
        var inv = q8CodeLimit / m  // 0 for an all-zero block: its codes and scale are then 0
        inv.replace(with: 0, where: m .== 0)
        for b in 0..<16 {
            let scale = _mm512_set1_ps(inv[b])
            let lo = x.load(unalignedAt: 128 * b, as: __m512.self), hi = x.load(unalignedAt: 128 * b + 64, as: __m512.self)
            // vcvtps2dq rounds to nearest even, like the other activation codes.
            let out = input.packed + 64 * (first + b)
            out.storeBytes(of: _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(lo, scale))), as: __m256i.self)
            out.storeBytes(of: _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(hi, scale))), toByteOffset: 32, as: __m256i.self)
        }
        UnsafeMutableRawPointer(input.packedScales + first).storeBytes(of: m / q8CodeLimit, as: SIMD16<Float>.self)
        return true
    }

    /// One block's 16-bit codes into `out` (64 bytes); returns its scale a. Non-finite input:
    /// codes 0 and a NaN scale, so the products come out NaN rather than wrong.
    @inline(__always)
    private static func quantizeQ8Block(_ lo: SIMD16<Float>, _ hi: SIMD16<Float>, into out: UnsafeMutableRawPointer) -> Float {
        let poison = lo * 0 + hi * 0  // NaN lanes where an element is NaN or infinite
        let largest = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)))
        guard !horizontalSum(poison).isNaN else {
            out.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
            return .nan
        }
        let inv = _mm512_set1_ps(largest > 0 ? q8CodeLimit / largest : 0)
        // vcvtps2dq rounds to nearest even, like the other activation codes.
        let a = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)))
        let b = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(hi, inv)))
        out.storeBytes(of: a, as: __m256i.self)
        out.storeBytes(of: b, toByteOffset: 32, as: __m256i.self)
        return largest / q8CodeLimit
    }

    // MARK: The products

    /// y[r] = W[r,:]·x̂ for r in `rows`, x packed for `w.type` (q4 or q8) in `input`.
    ///
    /// One row after another, each read front to back: the weights stream from memory as one
    /// sequential run of bytes. Interleaving 4 rows (each activation load serving 4 rows) was
    /// faster in cache but streamed at half the rate (125m-sized matrices, one thread: 16 against
    /// 36 G weights/s): the hardware prefetchers follow one stream far better than four.
    static func run(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let n = w.rowLength
        switch w.type {
        case .q4 where n <= 128:
            // Rows of at most 4 sub-blocks (dt_proj's): 16 at a time. At 512 wide (125m's
            // hidden size) the batched rows were no faster in an alternating A/B.
            w.forEachRowBlock(in: rows) { r, first, count in q4SingleGroupRows(first, count: count, rowBytes: w.rowBytes, n, input, y + r) }
        case .q4: w.forEachRow(in: rows) { r, row in y[r] = q4Row(row, n, input) }
        case .q8: w.forEachRow(in: rows) { r, row in y[r] = q8Row(row, n, input) }
        default: preconditionFailure("integer matrix-vector product of \(w.type) rows")
        }
    }

    /// The constant vectors of the q4 kernel. Local values, not static properties: a static is
    /// initialized lazily, and its accessor call inside the loop made the compiler spill every
    /// vector register around it.
    struct Q4Constants {
        /// Byte shuffle that puts, in 32-bit lane j, the 4 bytes from byte ⌊3j/2⌋ of a group's
        /// entries (lanes 0…7 from entries[0..<16] in 128-bit lanes 0 and 1, lanes 8…15 from
        /// entries[12..<28] in 128-bit lanes 2 and 3); a right shift by 4 in the odd lanes then
        /// leaves entry j (bits 12j…12j+11) at the bottom.
        let entryShuffle: __m512i
        let entryShift: __m512i
        /// Lane L of run 0 reads sub-block L/4's scale.
        let runLanes: __m512i

        @inline(__always)
        init() {
            entryShuffle = unsafeBitCast(SIMD64<UInt8>(
                0, 1, 2, 3, 1, 2, 3, 4, 3, 4, 5, 6, 4, 5, 6, 7,
                6, 7, 8, 9, 7, 8, 9, 10, 9, 10, 11, 12, 10, 11, 12, 13,
                0, 1, 2, 3, 1, 2, 3, 4, 3, 4, 5, 6, 4, 5, 6, 7,
                6, 7, 8, 9, 7, 8, 9, 10, 9, 10, 11, 12, 10, 11, 12, 13), to: __m512i.self)
            entryShift = unsafeBitCast(SIMD16<UInt32>(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4), to: __m512i.self)
            runLanes = unsafeBitCast(SIMD16<Int32>(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), to: __m512i.self)
        }
    }

    /// The lanes of `v` that a mask of `bytes` leading bytes keeps (a load that cannot fault
    /// past the end of a row: a partial last group may end anywhere in the mapping).
    @inline(__always)
    static func byteMask(_ bytes: Int) -> UInt64 { bytes >= 64 ? ~0 : (1 << UInt64(bytes)) &- 1 }

    /// A q4 group's 16 entries as 32-bit lanes of sc and of mn (lane j: sub-block j; lanes
    /// j ≥ k are 0). Reads only the group's own bytes (`k` sub-blocks: a short last group may
    /// end anywhere in the mapping).
    @inline(__always)
    static func q4Entries(_ group: UnsafeRawPointer, subBlocks k: Int, _ c: Q4Constants) -> (sc: __m512i, mn: __m512i) {
        let entries = group + 4
        let lo: __m128i, hi: __m128i
        if k == 16 {
            lo = entries.load(unalignedAt: 0, as: __m128i.self)
            hi = entries.load(unalignedAt: 12, as: __m128i.self)
        } else {
            // Entries and codes of a short group end at entries + available.
            let available = Q4Layout.scaleBytes(subBlocks: k) + 16 * k
            lo = _mm_maskz_loadu_epi8(UInt16(truncatingIfNeeded: byteMask(available)), entries)
            hi = _mm_maskz_loadu_epi8(UInt16(truncatingIfNeeded: available > 12 ? byteMask(available - 12) : 0), entries + 12)
        }
        let both = unsafeBitCast((_mm256_broadcastsi128_si256(lo), _mm256_broadcastsi128_si256(hi)), to: __m512i.self)
        let e = _mm512_srlv_epi32(_mm512_shuffle_epi8(both, c.entryShuffle), c.entryShift)
        let six = _mm512_set1_epi32(63)
        let present = UInt16(truncatingIfNeeded: (1 << k) - 1)
        return (_mm512_maskz_and_epi32(present, e, six), _mm512_maskz_and_epi32(present, _mm512_srli_epi32(e, 6), six))
    }

    /// A q4 group's d and dmin (both halves converted by one `vcvtph2ps`).
    @inline(__always)
    static func q4SuperScales(_ group: UnsafeRawPointer) -> (d: Float, dmin: Float) {
        let both = _mm_cvtph_ps(_mm_cvtsi32_si128(group.load(unalignedAt: 0, as: Int32.self)))
        return (both[0], both[1])
    }

    /// One row's group: its d·sc_s·a_s for the 16 sub-blocks (0 past the last), and the mins
    /// term dmin·Σ_s mn_s·a_s·Σc_s as 16 lanes to be added up later.
    @inline(__always)
    private static func q4GroupScales(_ group: UnsafeRawPointer, subBlocks k: Int, a: __m512, sums: __m512,
                                      _ c: Q4Constants) -> (scales: __m512, mins: __m512) {
        let (d, dmin) = q4SuperScales(group)
        let (sc, mn) = q4Entries(group, subBlocks: k, c)
        return (_mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sc), a), _mm512_set1_ps(d)),
                _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(mn), sums), _mm512_set1_ps(dmin)))
    }

    /// Σ over 4 sub-blocks of q·c for one run of 64 code bytes: 16 lanes, 4 per sub-block.
    @inline(__always)
    private static func q4Run(_ v: __m512i, _ xlo: __m512i, _ xhi: __m512i) -> __m512 {
        let nibble = _mm512_set1_epi8(15)
        let p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v, nibble), xlo)
        return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(p, _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble), xhi))
    }

    /// One group of a q4 row (`k` sub-blocks from `group`) against the packed activations of
    /// group g: the scaled code sums as 16 lanes added to `acc`, and the mins term as 16 lanes
    /// added to `mins` (both summed up by the caller).
    @inline(__always)
    static func q4Group(_ group: UnsafeRawPointer, subBlocks k: Int, index g: Int, _ input: ArrangedInput,
                                _ constants: Q4Constants, acc: inout __m512, mins: inout __m512) {
        let a = UnsafeRawPointer(input.packedScales).load(unalignedAt: 64 * g, as: __m512.self)
        let t = UnsafeRawPointer(input.packedSums).load(unalignedAt: 64 * g, as: __m512.self)
        let (scales, groupMins) = q4GroupScales(group, subBlocks: k, a: a, sums: t, constants)
        mins = _mm512_add_ps(mins, groupMins)
        let codes = group + 4 + Q4Layout.scaleBytes(subBlocks: k)
        let x = UnsafeRawPointer(input.packed) + 512 &* g
        // Run q: lane L takes sub-block 4q + L/4's scale.
        var sum = acc
        @inline(__always) func run(_ q: Int, _ v: __m512i) {
            let xlo = x.load(unalignedAt: 128 &* q, as: __m512i.self), xhi = x.load(unalignedAt: 128 &* q &+ 64, as: __m512i.self)
            let lanes = _mm512_add_epi32(constants.runLanes, _mm512_set1_epi32(Int32(truncatingIfNeeded: 4 &* q)))
            sum = _mm512_fmadd_ps(q4Run(v, xlo, xhi), _mm512_permutexvar_ps(lanes, scales), sum)
        }
        if k == 16 {
            // A full group (every row's groups but maybe the last): four runs, no bounds.
            run(0, codes.load(unalignedAt: 0, as: __m512i.self))
            run(1, codes.load(unalignedAt: 64, as: __m512i.self))
            run(2, codes.load(unalignedAt: 128, as: __m512i.self))
            run(3, codes.load(unalignedAt: 192, as: __m512i.self))
        } else {
            // A short group: only its own code bytes (the activations past them are 0).
            for q in 0..<((k + 3) / 4) {
                run(q, _mm512_maskz_loadu_epi8(byteMask(16 * (k - 4 * q)), codes + 64 * q))
            }
        }
        acc = sum
    }

    /// One q4 row of `n` elements · x̂.
    @inline(__always)
    private static func q4Row(_ row: UnsafeRawPointer, _ n: Int, _ input: ArrangedInput) -> Float {
        let nsub = (n + 31) / 32
        let groups = (nsub + 15) / 16
        let fullGroupBytes = Q4Layout.groupBytes(subBlocks: 16)
        let constants = Q4Constants()
        var acc = _mm512_setzero_ps(), mins = acc
        for g in 0..<groups {
            let group = row + g * fullGroupBytes
            Prefetch.lines(group + Prefetch.q4RowDistance, bytes: fullGroupBytes)
            q4Group(group, subBlocks: min(16, nsub - 16 * g), index: g, input, constants, acc: &acc, mins: &mins)
        }
        return _mm512_reduce_add_ps(_mm512_sub_ps(acc, mins))
    }

    /// `count` (1…16) consecutive q4 rows of one group each (n ≤ 512; `rowBytes` apart from
    /// `first`) · x̂, into y[0..<count]. Row by row (`q4Row`), rows this short each ended in a
    /// horizontal sum and a scalar store and prefetched a whole 512-wide group's bytes ahead
    /// (dt_proj, 100 wide: 0.48 ms of a 1.5b q4 token; 0.30 ms this way, timed around the
    /// call). Here the 16 rows' lanes are summed by one transpose tree into one vector store,
    /// and the prefetch covers the block's own bytes once. A row's lane of the tree depends only
    /// on that row, so a short block (the other lanes zero) gives the same bits: results do not
    /// depend on how the rows are split.
    @inline(__always)
    private static func q4SingleGroupRows(_ first: UnsafeRawPointer, count: Int, rowBytes: Int, _ n: Int,
                                          _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>) {
        let k = (n + 31) / 32
        let constants = Q4Constants()
        Prefetch.lines(first + Prefetch.q4RowDistance, bytes: 16 * rowBytes)
        @inline(__always) func row(_ i: Int) -> __m512 {
            guard i < count else { return _mm512_setzero_ps() }
            var acc = _mm512_setzero_ps(), mins = acc
            q4Group(first + i * rowBytes, subBlocks: k, index: 0, input, constants, acc: &acc, mins: &mins)
            return _mm512_sub_ps(acc, mins)
        }
        let sums = Reductions512.sixteenSums(row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7),
                                             row(8), row(9), row(10), row(11), row(12), row(13), row(14), row(15))
        _mm512_mask_storeu_ps(y, UInt16(truncatingIfNeeded: (1 << count) - 1), unsafeBitCast(sums, to: __m512.self))
    }

    /// d_b·a_b of up to 16 blocks from `blocks` (the rest 0), into `out`.
    @inline(__always)
    private static func q8Scales(_ blocks: UnsafeRawPointer, count: Int, a: __m512, into out: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(out).storeBytes(of: _mm512_mul_ps(q8BlockScales(blocks, count: count), a), as: __m512.self)
    }

    /// d_b of up to 16 blocks from `blocks` (the rest 0), converted from f16 in one go.
    @inline(__always)
    static func q8BlockScales(_ blocks: UnsafeRawPointer, count: Int) -> __m512 {
        @inline(__always) func h(_ j: Int) -> UInt16 { blocks.load(unalignedAt: 34 * j, as: UInt16.self) }
        var halves = SIMD16<UInt16>()
        if count == 16 {
            halves = SIMD16(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7), h(8), h(9), h(10), h(11), h(12), h(13), h(14), h(15))
        } else {
            for j in 0..<count { halves[j] = h(j) }
        }
        return _mm512_cvtph_ps(unsafeBitCast(halves, to: __m256i.self))
    }

    /// One q8 row of `n` elements · x̂.
    @inline(__always)
    private static func q8Row(_ row: UnsafeRawPointer, _ n: Int, _ input: ArrangedInput) -> Float {
        let blocks = (n + 31) / 32
        let xs = UnsafeRawPointer(input.packed)
        let aPtr = UnsafeRawPointer(input.packedScales)
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { buffer in
            let scales = buffer.baseAddress!
            // Two accumulators: consecutive blocks do not wait for each other's multiply-add.
            var acc0 = _mm512_setzero_ps(), acc1 = acc0
            var b0 = 0
            while b0 < blocks {
                let count = min(16, blocks - b0)
                let chunk = row + 34 * b0
                Prefetch.lines(chunk + Prefetch.q8RowDistance, bytes: 34 * count)
                q8Scales(chunk, count: count, a: aPtr.load(unalignedAt: 4 * b0, as: __m512.self), into: scales)
                var j = 0
                @inline(__always) func block(_ j: Int) -> __m512 {
                    let c = _mm512_cvtepi8_epi16(chunk.load(unalignedAt: 34 * j + 2, as: __m256i.self))
                    let p = _mm512_dpwssd_epi32(_mm512_setzero_si512(), c, xs.load(unalignedAt: 64 * (b0 + j), as: __m512i.self))
                    return _mm512_cvtepi32_ps(p)
                }
                while j + 2 <= count {
                    acc0 = _mm512_fmadd_ps(block(j), _mm512_set1_ps(scales[j]), acc0)
                    acc1 = _mm512_fmadd_ps(block(j + 1), _mm512_set1_ps(scales[j + 1]), acc1)
                    j += 2
                }
                if j < count { acc0 = _mm512_fmadd_ps(block(j), _mm512_set1_ps(scales[j]), acc0) }
                b0 += count
            }
            return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
        }
    }
}
