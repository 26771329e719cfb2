import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q4 matrix-matrix product (prefill) on `vpdpbusd`, for x86-64 CPUs with AVX-512 VNNI
/// (the AVX-512 backend's `matMul` for q4 rows; q8 rows take `IntegerMatMul`).
///
/// `vpdpbusd` multiplies 64 unsigned by signed bytes per instruction, twice the products of
/// the 16-bit `vpdpwssd`. q4's 4-bit codes fit its unsigned operand as they are, but each
/// sub-block of 32 weights has its own scale, and a lane that mixed sub-blocks could not be
/// scaled. So the weights and the inputs are laid out with one sub-block per 32-bit lane: in
/// each of a group's 8 vectors, lane j holds 4 consecutive elements of sub-block j, and a lane
/// sums all 32 products of its sub-block over the 8 vectors. Per row, token and group that is
/// 8 `vpdpbusd` and then 4 float operations on 16 lanes at once (convert, the two scales, the
/// mins), where the 16-bit product needs 16 `vpdpwssd`.
///
/// Numbers: the inputs are rounded as decoding rounds them (`Q8Activations`, as
/// `IntegerMatVec.arrangeQ4` packs them: int8 codes c per sub-block s with
/// a_s = max|x|/127), so prefill and decoding compute W·x̂ for the same x̂:
///   Σ_s d·sc_s·a_s·Σ_i q_i·c_i − dmin·Σ_s mn_s·(a_s·Σ_i c_i).
/// A lane sums 32 products of at most 15·127: no overflow.
enum Q4MatMul {
    typealias Layout = SubBlockMatrixInput

    // MARK: Activations

    /// Arranges one token's `layout.n` inputs at x into `out` (`layout.floats`).
    static func arrangeRow(_ x: UnsafePointer<Float>, _ layout: Layout, into out: UnsafeMutablePointer<Float>) {
        let codes = UnsafeMutableRawPointer(out)
        let shuffles = Shuffles()
        for g in 0..<layout.groups {
            let k = layout.subBlocks(g), group = codes + 512 * g
            let scales = out + layout.scalesOffset + 16 * g, sums = out + layout.sumsOffset + 16 * g
            if 512 * g + 512 <= layout.n
                && arrangeWholeGroup(UnsafeRawPointer(x + 512 * g), into: group, scales: scales, sums: sums, shuffles) { continue }
            // Only the words of present sub-blocks are written below.
            group.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
            for j in 0..<16 {
                scales[j] = 0
                sums[j] = 0
            }
            for j in 0..<k {
                let s = 16 * g + j
                let count = min(32, layout.n - 32 * s)
                let lo = unsafeBitCast(AVX512Vectors.load(x + 32 * s, count: min(16, count)), to: __m512.self)
                let hi = unsafeBitCast(AVX512Vectors.load(x + 32 * s + 16, count: max(0, count - 16)), to: __m512.self)
                let poison = _mm512_add_ps(_mm512_mul_ps(lo, _mm512_setzero_ps()), _mm512_mul_ps(hi, _mm512_setzero_ps()))
                let largest = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)))
                if _mm512_reduce_add_ps(poison).isNaN {
                    // Codes 0 and a NaN scale (the maximum cannot tell a NaN next to zeros: the poison sum does).
                    scales[j] = .nan
                    sums[j] = .nan
                    continue
                }
                if largest == 0 { continue }
                // The codes, scale and sum of `IntegerMatVec.arrangeQ4` (vcvtps2dq rounds half to even).
                let inv = _mm512_set1_ps(127 / largest)
                let cl = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)), ch = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inv))
                let low = unsafeBitCast(_mm512_cvtepi32_epi8(cl), to: SIMD4<UInt32>.self)
                let high = unsafeBitCast(_mm512_cvtepi32_epi8(ch), to: SIMD4<UInt32>.self)
                for v in 0..<4 {
                    group.storeBytes(of: low[v], toByteOffset: Layout.wordPosition(v, subBlock: j, of: k), as: UInt32.self)
                    group.storeBytes(of: high[v], toByteOffset: Layout.wordPosition(v + 4, subBlock: j, of: k), as: UInt32.self)
                }
                let a = largest / 127
                scales[j] = a
                sums[j] = a * Float(_mm512_reduce_add_epi32(_mm512_add_epi32(cl, ch)))
            }
            // A short group: every lane of sub-block j carries a_j.
            let w = Layout.width(k)
            for lane in w..<16 { scales[lane] = scales[lane % w] }
        }
    }

    /// A group of 512 inputs, all present, as `arrangeRow` arranges it one sub-block at a time
    /// (the same codes, scales and sums), with the 16 maxima and the 16 code sums each taken by
    /// one transpose tree and the words put in their lanes by `subBlockLanes`. Returns false,
    /// having written nothing, when an element is not finite.
    @inline(__always)
    private static func arrangeWholeGroup(_ x: UnsafeRawPointer, into group: UnsafeMutableRawPointer,
                                          scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>,
                                          _ shuffles: Shuffles) -> Bool {
        guard let m = IntegerMatVec.blockMaxima(x) else { return false }
        var inv = 127 / m
        inv.replace(with: 0, where: m .== 0)  // an all-zero sub-block: codes, scale and sum 0
        let a = m / 127
        // Sub-block j's low and high 16 codes at bytes 16j and 256 + 16j: vector u of each half
        // then holds sub-blocks 4u…4u+3, as `subBlockLanes` takes them.
        var staged = (SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>(),
                      SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>())
        withUnsafeMutableBytes(of: &staged) { buffer in
            let stage = buffer.baseAddress!
            @inline(__always) func codes(_ j: Int) -> __m512 {
                let scale = _mm512_permutexvar_ps(_mm512_set1_epi32(Int32(j)), inv)
                let lo = x.load(unalignedAt: 128 * j, as: __m512.self), hi = x.load(unalignedAt: 128 * j + 64, as: __m512.self)
                let cl = _mm512_cvtps_epi32(_mm512_mul_ps(lo, scale)), ch = _mm512_cvtps_epi32(_mm512_mul_ps(hi, scale))
                stage.storeBytes(of: _mm512_cvtepi32_epi8(cl), toByteOffset: 16 * j, as: __m128i.self)
                stage.storeBytes(of: _mm512_cvtepi32_epi8(ch), toByteOffset: 256 + 16 * j, as: __m128i.self)
                return _mm512_cvtepi32_ps(_mm512_add_epi32(cl, ch))
            }
            let total = Reductions512.sixteenSums(codes(0), codes(1), codes(2), codes(3), codes(4), codes(5), codes(6), codes(7),
                                                  codes(8), codes(9), codes(10), codes(11), codes(12), codes(13), codes(14), codes(15))
            UnsafeMutableRawPointer(scales).storeBytes(of: a, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(sums).storeBytes(of: a * total, as: SIMD16<Float>.self)
            for half in 0..<2 {
                @inline(__always) func staged(_ u: Int) -> __m512i { stage.load(fromByteOffset: 256 * half + 64 * u, as: __m512i.self) }
                let t = subBlockLanes(staged(0), staged(1), staged(2), staged(3), shuffles)
                group.storeBytes(of: t.0, toByteOffset: 256 * half, as: __m512i.self)
                group.storeBytes(of: t.1, toByteOffset: 256 * half + 64, as: __m512i.self)
                group.storeBytes(of: t.2, toByteOffset: 256 * half + 128, as: __m512i.self)
                group.storeBytes(of: t.3, toByteOffset: 256 * half + 192, as: __m512i.self)
            }
        }
        return true
    }

    // MARK: Weights

    /// Rows of weights decoded at once into the thread's panel.
    static let panelRows = 32
    /// A panel row: the group's 4-bit codes as bytes in the arranged rows' lane order (512),
    /// then 16 floats d·sc_j, then 16 floats −dmin·mn_j (0 for sub-blocks past the row's end).
    private static let panelRowBytes = 512 + 64 + 64
    /// Floats of per-thread scratch `run` needs.
    static let panelFloats = panelRows * panelRowBytes / 4

    /// Word indices for `_mm512_permutex2var_epi32`: from two vectors of a group's code words
    /// (sub-blocks 4u…4u+7), word v of sub-blocks 0…7 in lanes 0…7 and word v+1 in lanes 8…15.
    struct Shuffles {
        let words01: __m512i, words23: __m512i, firstHalves: __m512i, secondHalves: __m512i

        @inline(__always)
        init() {
            // Word v of sub-block j (of the pair of vectors) is word 4j + v.
            words01 = unsafeBitCast(SIMD16<Int32>(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29), to: __m512i.self)
            words23 = unsafeBitCast(SIMD16<Int32>(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31), to: __m512i.self)
            firstHalves = unsafeBitCast(SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), to: __m512i.self)
            secondHalves = unsafeBitCast(SIMD16<Int32>(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), to: __m512i.self)
        }
    }

    /// Where a group of k ≤ 8 sub-blocks (all within its first two code vectors) takes its
    /// words from, per vector of the short layout: lane ℓ holds word s of sub-block j (see
    /// `Layout`), the low nibbles of code word 4j + s for s < 4, the high nibbles of code word
    /// 4j + s − 4 otherwise. Lanes with no word read a code word of a missing sub-block (0).
    struct ShortGroup {
        var words = [__m512i](), highNibbles = [UInt16]()

        init(subBlocks k: Int) {
            precondition(k <= 8)
            let w = Layout.width(k), n = Layout.vectors(k)
            for v in 0..<n {
                var index = SIMD16<Int32>(repeating: 31), high: UInt16 = 0
                for lane in 0..<16 {
                    let j = lane % w, s = (lane / w) * n + v
                    guard s < 8 else { continue }
                    index[lane] = Int32(4 * j + s % 4)
                    if s >= 4 { high |= 1 << UInt16(lane) }
                }
                words.append(unsafeBitCast(index, to: __m512i.self))
                highNibbles.append(high)
            }
        }
    }

    /// Four vectors of 16 words, vector u holding words 0…3 of sub-blocks 4u…4u+3 (word
    /// 4(j mod 4) + s of vector ⌊j/4⌋ is word s of sub-block j), as four vectors of sub-block
    /// lanes: vector s, lane j = word s of sub-block j.
    @inline(__always)
    static func subBlockLanes(_ r0: __m512i, _ r1: __m512i, _ r2: __m512i, _ r3: __m512i,
                              _ shuffles: Shuffles) -> (__m512i, __m512i, __m512i, __m512i) {
        let a01 = _mm512_permutex2var_epi32(r0, shuffles.words01, r1), a23 = _mm512_permutex2var_epi32(r0, shuffles.words23, r1)
        let b01 = _mm512_permutex2var_epi32(r2, shuffles.words01, r3), b23 = _mm512_permutex2var_epi32(r2, shuffles.words23, r3)
        return (_mm512_permutex2var_epi32(a01, shuffles.firstHalves, b01), _mm512_permutex2var_epi32(a01, shuffles.secondHalves, b01),
                _mm512_permutex2var_epi32(a23, shuffles.firstHalves, b23), _mm512_permutex2var_epi32(a23, shuffles.secondHalves, b23))
    }

    /// Row group at p (`k` sub-blocks) into the panel row at `dst`. Byte b of sub-block j holds
    /// elements b (low nibble) and b+16 (high nibble); word v of sub-block j (bytes 4v…4v+3)
    /// therefore gives vector v (low nibbles) and vector v+4 (high nibbles) of lane j.
    /// `short` is the layout of a group of k ≤ 8 sub-blocks (nil otherwise).
    @inline(__always)
    private static func decode(_ p: UnsafeRawPointer, subBlocks k: Int, into dst: UnsafeMutableRawPointer,
                               _ entries: IntegerMatVec.Q4Constants, _ shuffles: Shuffles, short: ShortGroup?) {
        let group = Q4Layout.Group(at: p, subBlocks: k)
        let (sc, mn) = IntegerMatVec.q4Entries(p, subBlocks: k, entries)
        let rowScales = _mm512_mul_ps(_mm512_cvtepi32_ps(sc), _mm512_set1_ps(group.d))
        dst.storeBytes(of: _mm512_mul_ps(_mm512_cvtepi32_ps(mn), _mm512_set1_ps(-group.dmin)), toByteOffset: 576, as: __m512.self)
        // The codes of sub-blocks 4u…4u+3 (a short group's missing ones read as 0, never past its end).
        @inline(__always) func words(_ u: Int) -> __m512i {
            if k == 16 { return group.codes.load(unalignedAt: 64 * u, as: __m512i.self) }
            let present = max(0, min(16, 4 * k - 16 * u))
            return _mm512_maskz_loadu_epi32(UInt16(truncatingIfNeeded: (1 << present) - 1), group.codes + 64 * u)
        }
        let nibble = _mm512_set1_epi8(15)
        let r0 = words(0), r1 = words(1)
        if let short {
            // Each vector's words picked from the first 8 sub-blocks, low or high nibbles per lane;
            // every lane of sub-block j carries d·sc_j (the mins stay in lane j alone).
            for v in 0..<short.words.count {
                let picked = _mm512_permutex2var_epi32(r0, short.words[v], r1)
                let codes = _mm512_mask_blend_epi32(short.highNibbles[v], _mm512_and_si512(picked, nibble),
                                                    _mm512_and_si512(_mm512_srli_epi16(picked, 4), nibble))
                dst.storeBytes(of: codes, toByteOffset: 64 * v, as: __m512i.self)
            }
            let w = Int32(Layout.width(k))
            let lanes = unsafeBitCast(SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) & (w - 1), to: __m512i.self)
            dst.storeBytes(of: _mm512_permutexvar_ps(lanes, rowScales), toByteOffset: 512, as: __m512.self)
            return
        }
        dst.storeBytes(of: rowScales, toByteOffset: 512, as: __m512.self)
        let t = subBlockLanes(r0, r1, words(2), words(3), shuffles)
        @inline(__always) func store(_ v: Int, _ w: __m512i) {
            dst.storeBytes(of: _mm512_and_si512(w, nibble), toByteOffset: 64 * v, as: __m512i.self)
            dst.storeBytes(of: _mm512_and_si512(_mm512_srli_epi16(w, 4), nibble), toByteOffset: 64 * (v + 4), as: __m512i.self)
        }
        store(0, t.0)
        store(1, t.1)
        store(2, t.2)
        store(3, t.3)
    }

    // MARK: The product

    /// y[t·ldy + r] = W[r,:]·x̂_t for r in `rows`, from inputs arranged by `arrangeRow`;
    /// `tile` (`panelFloats`) private to the calling thread. A panel of 32 decoded rows (20 KiB)
    /// and 4 tokens' codes (2 KiB) stay in L1 while every token tile meets every row tile.
    static func run(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                    y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, tile: UnsafeMutablePointer<Float>) {
        precondition(w.type == .q4, "q4 matmul of \(w.type) rows")
        let layout = Layout(w.rowLength)
        let panel = UnsafeMutableRawPointer(tile)
        let entries = IntegerMatVec.Q4Constants(), shuffles = Shuffles()
        let groupBytes = Q4Layout.groupBytes(subBlocks: Q4Layout.subBlocksPerGroup)
        PanelSweep.run(w, rows: rows, groups: layout.groups, panelSize: panelRows, tokens: tokens, tokensPerTile: 4,
                       nextPanel: { ($0 * groupBytes, Q4Layout.groupBytes(subBlocks: layout.subBlocks($0))) },
                       setUp: { g -> (g: Int, k: Int, vectors: Int, short: ShortGroup?) in
                           let k = layout.subBlocks(g)
                           return (g, k, Layout.vectors(k), k <= 8 ? ShortGroup(subBlocks: k) : nil)
                       },
                       decode: { group, i, row in
                           let dst = panel + i * panelRowBytes
                           if let row {
                               decode(w.row(row) + group.g * groupBytes, subBlocks: group.k, into: dst, entries, shuffles, short: group.short)
                           } else {
                               dst.initializeMemory(as: UInt8.self, repeating: 0, count: panelRowBytes)
                           }
                       },
                       tile: { group, panelRows, tokenRange in
                           let t = tokenRange.lowerBound, tokenCount = tokenRange.count
                           // A short last tile repeats its first token; those lanes are not stored.
                           @inline(__always) func token(_ i: Int) -> UnsafeRawPointer { UnsafeRawPointer(xa + (t + (i < tokenCount ? i : 0)) * ldxa) }
                           let x0 = token(0), x1 = token(1), x2 = token(2), x3 = token(3)
                           for q in 0..<((panelRows.count + 3) / 4) {
                               let r = panelRows.lowerBound + 4 * q, tileRows = min(4, panelRows.count - 4 * q)
                               let v = kernel(UnsafeRawPointer(panel + 4 * q * panelRowBytes), x0, x1, x2, x3, group: group.g, vectors: group.vectors, layout)
                               OutputTile.store(v, at: y + t * ldy + r, ldy: ldy, tokens: tokenCount, rows: tileRows, accumulate: group.g > 0)
                           }
                       })
    }

    /// 4 panel rows (`rows`, `panelRowBytes` apart) × 4 tokens (arranged rows) over group g
    /// (`vectors` of it): lane 4t + r of the result is row r's product with token t.
    @inline(__always)
    private static func kernel(_ rows: UnsafeRawPointer, _ x0: UnsafeRawPointer, _ x1: UnsafeRawPointer,
                               _ x2: UnsafeRawPointer, _ x3: UnsafeRawPointer, group g: Int, vectors: Int, _ layout: Layout) -> SIMD16<Float> {
        let w0 = rows, w1 = rows + panelRowBytes, w2 = rows + 2 * panelRowBytes, w3 = rows + 3 * panelRowBytes
        let codes = 512 * g
        var c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00
        var c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00
        var o = 0
        let end = 64 * vectors
        while o < end {
            let a0 = w0.load(unalignedAt: o, as: __m512i.self), a1 = w1.load(unalignedAt: o, as: __m512i.self)
            let a2 = w2.load(unalignedAt: o, as: __m512i.self), a3 = w3.load(unalignedAt: o, as: __m512i.self)
            let b0 = x0.load(unalignedAt: codes + o, as: __m512i.self)
            c00 = _mm512_dpbusd_epi32(c00, a0, b0); c01 = _mm512_dpbusd_epi32(c01, a1, b0)
            c02 = _mm512_dpbusd_epi32(c02, a2, b0); c03 = _mm512_dpbusd_epi32(c03, a3, b0)
            let b1 = x1.load(unalignedAt: codes + o, as: __m512i.self)
            c10 = _mm512_dpbusd_epi32(c10, a0, b1); c11 = _mm512_dpbusd_epi32(c11, a1, b1)
            c12 = _mm512_dpbusd_epi32(c12, a2, b1); c13 = _mm512_dpbusd_epi32(c13, a3, b1)
            let b2 = x2.load(unalignedAt: codes + o, as: __m512i.self)
            c20 = _mm512_dpbusd_epi32(c20, a0, b2); c21 = _mm512_dpbusd_epi32(c21, a1, b2)
            c22 = _mm512_dpbusd_epi32(c22, a2, b2); c23 = _mm512_dpbusd_epi32(c23, a3, b2)
            let b3 = x3.load(unalignedAt: codes + o, as: __m512i.self)
            c30 = _mm512_dpbusd_epi32(c30, a0, b3); c31 = _mm512_dpbusd_epi32(c31, a1, b3)
            c32 = _mm512_dpbusd_epi32(c32, a2, b3); c33 = _mm512_dpbusd_epi32(c33, a3, b3)
            o += 64
        }
        // Per lane (sub-block): Σq·c · d·sc · a_s − dmin·mn · a_s·Σc.
        @inline(__always) func rowScales(_ w: UnsafeRawPointer) -> (__m512, __m512) {
            (w.load(unalignedAt: 512, as: __m512.self), w.load(unalignedAt: 576, as: __m512.self))
        }
        @inline(__always) func tokenScales(_ x: UnsafeRawPointer) -> (__m512, __m512) {
            (x.load(unalignedAt: 4 * (layout.scalesOffset + 16 * g), as: __m512.self),
             x.load(unalignedAt: 4 * (layout.sumsOffset + 16 * g), as: __m512.self))
        }
        let s0 = rowScales(w0), s1 = rowScales(w1), s2 = rowScales(w2), s3 = rowScales(w3)
        let t0 = tokenScales(x0), t1 = tokenScales(x1), t2 = tokenScales(x2), t3 = tokenScales(x3)
        @inline(__always) func f(_ c: __m512i, _ row: (__m512, __m512), _ token: (__m512, __m512)) -> __m512 {
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(row.0, token.0), _mm512_mul_ps(row.1, token.1))
        }
        return Reductions512.sixteenSums(f(c00, s0, t0), f(c01, s1, t0), f(c02, s2, t0), f(c03, s3, t0),
                                         f(c10, s0, t1), f(c11, s1, t1), f(c12, s2, t1), f(c13, s3, t1),
                                         f(c20, s0, t2), f(c21, s1, t2), f(c22, s2, t2), f(c23, s3, t2),
                                         f(c30, s0, t3), f(c31, s1, t3), f(c32, s2, t3), f(c33, s3, t3))
    }
}
