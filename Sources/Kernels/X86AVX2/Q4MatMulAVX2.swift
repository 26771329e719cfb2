import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q4 matrix-matrix product (prefill) on byte products, for x86-64 CPUs with AVX2 (the
/// AVX2 backend's `matMul` for q4 rows; q8 rows take `IntegerMatMulAVX2`): `Q4MatMul`'s
/// layout and numbers on 256-bit registers.
///
/// Weights and inputs are laid out one 32-weight sub-block per 32-bit lane
/// (`SubBlockMatrixInput`); a 256-bit register holds 8 lanes, half a group. `vpmaddubsw`
/// multiplies the 4-bit codes (unsigned) by the int8 inputs (signed) and adds neighbours into
/// 16-bit lanes: at most 2·15·127 = 3810 each, so a group's 8 vectors add up in 16 bits (≤
/// 30480) and one `vpmaddwd` by 1 per half group widens them: 32 products for about two
/// instructions, where the 16-bit product (`IntegerMatMulAVX2`) takes four. The scales then
/// apply per lane in fp32, as in `Q4MatMul`, and the inputs are rounded as decoding rounds
/// them, so prefill and decode compute W·x̂ for the same x̂.
///
/// The register tile is 4 weight rows × 2 tokens: 8 accumulators, 4 weight registers, one
/// input and the constant 1s of the 16.
enum Q4MatMulAVX2 {
    typealias Layout = SubBlockMatrixInput

    // MARK: Activations

    /// Arranges one token's `layout.n` inputs at x into `out` (`layout.floats`): per sub-block
    /// the codes, scale and sum of `Q4MatVecAVX2.arrange`, the words in their lanes.
    static func arrangeRow(_ x: UnsafePointer<Float>, _ layout: Layout, into out: UnsafeMutablePointer<Float>) {
        let codes = UnsafeMutableRawPointer(out)
        for g in 0..<layout.groups {
            let k = layout.subBlocks(g), group = codes + 512 * g
            let scales = out + layout.scalesOffset + 16 * g, sums = out + layout.sumsOffset + 16 * g
            // Only the words of present sub-blocks are written below.
            group.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
            for j in 0..<16 {
                scales[j] = 0
                sums[j] = 0
            }
            for j in 0..<k {
                let s = 16 * g + j
                let block = AVX2Block(x + 32 * s, count: min(32, layout.n - 32 * s))
                guard block.isFinite else {
                    // Codes 0 and a NaN scale: the token's products come out NaN.
                    scales[j] = .nan
                    sums[j] = .nan
                    continue
                }
                if block.largest == 0 { continue }
                let c = block.codes(scaledBy: 127 / block.largest)
                let low = unsafeBitCast(AVX2Block.int8(c), to: SIMD4<UInt32>.self)
                let high = unsafeBitCast(AVX2Block.int8(c, high: true), to: SIMD4<UInt32>.self)
                for v in 0..<4 {
                    group.storeBytes(of: low[v], toByteOffset: Layout.wordPosition(v, subBlock: j, of: k), as: UInt32.self)
                    group.storeBytes(of: high[v], toByteOffset: Layout.wordPosition(v + 4, subBlock: j, of: k), as: UInt32.self)
                }
                let a = block.largest / 127
                scales[j] = a
                sums[j] = a * Float(AVX2Block.sum(c))
            }
            // A short group: every lane of sub-block j carries a_j.
            let w = Layout.width(k)
            for lane in w..<16 { scales[lane] = scales[lane % w] }
        }
    }

    // MARK: Weights

    /// Rows of weights decoded at once into the thread's panel: 16 rows (10 KiB) stay in a
    /// 32 KiB L1 next to the tokens' codes while every token pair meets them.
    static let panelRows = 16
    /// A panel row: the group's 4-bit codes as bytes in the arranged rows' lane order (512),
    /// then 16 floats d·sc_j (in every lane of sub-block j), then 16 floats −dmin·mn_j (lane j
    /// alone; 0 for sub-blocks past the row's end).
    private static let panelRowBytes = 512 + 64 + 64
    /// Floats of per-thread scratch `run` needs.
    static let panelFloats = panelRows * panelRowBytes / 4

    /// Row group at p (`k` sub-blocks) into the panel row at `dst`. Code word 4j + s of the
    /// group (bytes 4s…4s+3 of sub-block j, s < 4) holds elements 4s…4s+3 in its low nibbles
    /// and 16+4s… in its high nibbles: word s and word s+4 of sub-block j in the layout.
    @inline(__always)
    private static func decode(_ p: UnsafeRawPointer, subBlocks k: Int, into dst: UnsafeMutableRawPointer,
                               _ c: Q4MatVecAVX2.Constants) {
        let head = _mm_cvtph_ps(_mm_cvtsi32_si128(p.load(unalignedAt: 0, as: Int32.self)))
        let d = _mm256_set1_ps(head[0]), dmin = _mm256_set1_ps(-head[1])
        // Entries 0…7 and 8…15 (the 16 bytes from an entry always lie in the group when it has
        // that entry); lanes past the group's sub-blocks are cleared.
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
        @inline(__always) func entries(_ first: Int) -> (sc: __m256, mn: __m256) {
            guard first < k else { return (_mm256_setzero_ps(), _mm256_setzero_ps()) }
            let e = Q4MatVecAVX2.entries(p.load(unalignedAt: 4 + 3 * first / 2, as: __m128i.self), c)
            let present = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(Int32(k - first)), lane))
            return (_mm256_and_ps(e.sc, present), _mm256_and_ps(e.mn, present))
        }
        let low = entries(0), high = entries(8)
        var rowScales = (_mm256_mul_ps(low.sc, d), _mm256_mul_ps(high.sc, d))
        dst.storeBytes(of: _mm256_mul_ps(low.mn, dmin), toByteOffset: 576, as: __m256.self)
        dst.storeBytes(of: _mm256_mul_ps(high.mn, dmin), toByteOffset: 608, as: __m256.self)
        let codes = p + 4 + Q4Layout.scaleBytes(subBlocks: k)
        // The whole-group layout (one lane per sub-block) into `out`.
        @inline(__always) func wholeLayout(into out: UnsafeMutableRawPointer) {
            // Sub-blocks 8h…8h+7: code vectors m (words 8m…8m+7: sub-blocks 2m, 2m+1), missing
            // sub-blocks read as 0 (never past the group's end).
            for h in 0..<2 {
                @inline(__always) func words(_ m: Int) -> __m256i {
                    let present = 4 * k - 8 * m
                    if present >= 8 { return codes.load(unalignedAt: 32 * m, as: __m256i.self) }
                    if present <= 0 { return _mm256_setzero_si256() }
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(Int32(present)), lane)
                    return _mm256_maskload_epi32(codes.assumingMemoryBound(to: Int32.self) + 8 * m, mask)
                }
                // Per vector: word s of its two sub-blocks side by side (lanes 2s, 2s+1); then
                // the 64-bit pieces s of the four vectors into one: word s of 8 sub-blocks.
                let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)
                let q0 = _mm256_permutevar8x32_epi32(words(4 * h), order), q1 = _mm256_permutevar8x32_epi32(words(4 * h + 1), order)
                let q2 = _mm256_permutevar8x32_epi32(words(4 * h + 2), order), q3 = _mm256_permutevar8x32_epi32(words(4 * h + 3), order)
                let lo01 = _mm256_unpacklo_epi64(q0, q1), hi01 = _mm256_unpackhi_epi64(q0, q1)
                let lo23 = _mm256_unpacklo_epi64(q2, q3), hi23 = _mm256_unpackhi_epi64(q2, q3)
                @inline(__always) func join(_ a: __m256i, _ b: __m256i, upper: Bool) -> __m256i {
                    let x = unsafeBitCast(a, to: (__m128i, __m128i).self), y = unsafeBitCast(b, to: (__m128i, __m128i).self)
                    return upper ? _mm256_set_m128i(y.1, x.1) : _mm256_set_m128i(y.0, x.0)
                }
                @inline(__always) func store(_ s: Int, _ w: __m256i) {
                    out.storeBytes(of: _mm256_and_si256(w, c.nibble), toByteOffset: 64 * s + 32 * h, as: __m256i.self)
                    out.storeBytes(of: _mm256_and_si256(_mm256_srli_epi16(w, 4), c.nibble), toByteOffset: 64 * (s + 4) + 32 * h, as: __m256i.self)
                }
                store(0, join(lo01, lo23, upper: false))
                store(1, join(hi01, hi23, upper: false))
                store(2, join(lo01, lo23, upper: true))
                store(3, join(hi01, hi23, upper: true))
            }
        }
        if k == 16 {
            wholeLayout(into: dst)
        } else {
            // A short group's layout: the whole-group one staged, then each word to its place;
            // every lane of sub-block j carries d·sc_j.
            var staged = (SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>(),
                          SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>(), SIMD64<UInt8>())
            withUnsafeMutableBytes(of: &staged) { buffer in
                let out = buffer.baseAddress!
                wholeLayout(into: out)
                dst.initializeMemory(as: UInt8.self, repeating: 0, count: 64 * Layout.vectors(k))
                for j in 0..<k {
                    for s in 0..<8 {
                        dst.storeBytes(of: out.load(fromByteOffset: 64 * s + 4 * j, as: UInt32.self),
                                       toByteOffset: Layout.wordPosition(s, subBlock: j, of: k), as: UInt32.self)
                    }
                }
                let w = Int32(Layout.width(k))
                if w < 16 {
                    let spread = _mm256_and_si256(lane, _mm256_set1_epi32(w - 1))
                    rowScales.0 = _mm256_permutevar8x32_ps(rowScales.0, spread)
                    rowScales.1 = rowScales.0
                }
            }
        }
        dst.storeBytes(of: rowScales.0, toByteOffset: 512, as: __m256.self)
        dst.storeBytes(of: rowScales.1, toByteOffset: 544, as: __m256.self)
    }

    // MARK: The product

    /// y[t·ldy + r] = W[r,:]·x̂_t for r in `rows`, from inputs arranged by `arrangeRow`;
    /// `tile` (`panelFloats`) private to the calling thread.
    static func run(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                    y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, tile: UnsafeMutablePointer<Float>) {
        precondition(w.type == .q4, "q4 matmul of \(w.type) rows")
        let layout = Layout(w.rowLength)
        let panel = UnsafeMutableRawPointer(tile)
        let c = Q4MatVecAVX2.Constants()
        let groupBytes = Q4Layout.groupBytes(subBlocks: Q4Layout.subBlocksPerGroup)
        PanelSweep.run(w, rows: rows, groups: layout.groups, panelSize: panelRows, tokens: tokens, tokensPerTile: 2,
                       nextPanel: { ($0 * groupBytes, Q4Layout.groupBytes(subBlocks: layout.subBlocks($0))) },
                       setUp: { g -> (g: Int, k: Int, vectors: Int) in
                           let k = layout.subBlocks(g)
                           return (g, k, Layout.vectors(k))
                       },
                       decode: { group, i, row in
                           let dst = panel + i * panelRowBytes
                           if let row {
                               decode(w.row(row) + group.g * groupBytes, subBlocks: group.k, into: dst, c)
                           } else {
                               dst.initializeMemory(as: UInt8.self, repeating: 0, count: panelRowBytes)
                           }
                       },
                       tile: { group, panelRows, tokenRange in
                           let t = tokenRange.lowerBound, tokenCount = tokenRange.count
                           // A lone last token is paired with itself; the copy's lanes are not stored.
                           let x0 = UnsafeRawPointer(xa + t * ldxa), x1 = UnsafeRawPointer(xa + (t + tokenCount - 1) * ldxa)
                           for q in 0..<((panelRows.count + 3) / 4) {
                               let r = panelRows.lowerBound + 4 * q, tileRows = min(4, panelRows.count - 4 * q)
                               let v = unsafeBitCast(kernel(UnsafeRawPointer(panel + 4 * q * panelRowBytes), x0, x1, group: group.g,
                                                            vectors: group.vectors, layout, c), to: SIMD8<Float>.self)
                               OutputTileAVX2.store(v, at: y + t * ldy + r, ldy: ldy, tokens: tokenCount, rows: tileRows, accumulate: group.g > 0)
                           }
                       })
    }

    /// 4 panel rows (`rows`, `panelRowBytes` apart) × 2 tokens over group g (`vectors` of it):
    /// lane 4t + r of the result is row r's product with token t.
    @inline(__always)
    private static func kernel(_ rows: UnsafeRawPointer, _ x0: UnsafeRawPointer, _ x1: UnsafeRawPointer,
                               group g: Int, vectors: Int, _ layout: Layout, _ c: Q4MatVecAVX2.Constants) -> __m256 {
        let w0 = rows, w1 = rows + panelRowBytes, w2 = rows + 2 * panelRowBytes, w3 = rows + 3 * panelRowBytes
        let codes = 512 * g, end = 64 * vectors
        let scales = 4 * (layout.scalesOffset + 16 * g), sums = 4 * (layout.sumsOffset + 16 * g)
        var f00 = _mm256_setzero_ps(), f01 = f00, f02 = f00, f03 = f00, f10 = f00, f11 = f00, f12 = f00, f13 = f00
        for h in 0..<2 {
            let half = 32 * h
            var c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00
            var o = half
            while o < end {
                let a0 = w0.load(unalignedAt: o, as: __m256i.self), a1 = w1.load(unalignedAt: o, as: __m256i.self)
                let a2 = w2.load(unalignedAt: o, as: __m256i.self), a3 = w3.load(unalignedAt: o, as: __m256i.self)
                let b0 = x0.load(unalignedAt: codes + o, as: __m256i.self)
                c00 = _mm256_add_epi16(c00, _mm256_maddubs_epi16(a0, b0)); c01 = _mm256_add_epi16(c01, _mm256_maddubs_epi16(a1, b0))
                c02 = _mm256_add_epi16(c02, _mm256_maddubs_epi16(a2, b0)); c03 = _mm256_add_epi16(c03, _mm256_maddubs_epi16(a3, b0))
                let b1 = x1.load(unalignedAt: codes + o, as: __m256i.self)
                c10 = _mm256_add_epi16(c10, _mm256_maddubs_epi16(a0, b1)); c11 = _mm256_add_epi16(c11, _mm256_maddubs_epi16(a1, b1))
                c12 = _mm256_add_epi16(c12, _mm256_maddubs_epi16(a2, b1)); c13 = _mm256_add_epi16(c13, _mm256_maddubs_epi16(a3, b1))
                o &+= 64
            }
            // Per lane (sub-block): Σq·c · d·sc · a_s − dmin·mn · a_s·Σc, added over the two halves.
            @inline(__always) func row(_ w: UnsafeRawPointer) -> (__m256, __m256) {
                (w.load(unalignedAt: 512 + half, as: __m256.self), w.load(unalignedAt: 576 + half, as: __m256.self))
            }
            @inline(__always) func token(_ x: UnsafeRawPointer) -> (__m256, __m256) {
                (x.load(unalignedAt: scales + half, as: __m256.self), x.load(unalignedAt: sums + half, as: __m256.self))
            }
            let t0 = token(x0), t1 = token(x1)
            @inline(__always) func f(_ acc: __m256, _ c16: __m256i, _ r: (__m256, __m256), _ t: (__m256, __m256)) -> __m256 {
                let products = _mm256_cvtepi32_ps(_mm256_madd_epi16(c16, c.ones))
                return _mm256_fmadd_ps(products, _mm256_mul_ps(r.0, t.0), _mm256_fmadd_ps(r.1, t.1, acc))
            }
            let r0 = row(w0), r1 = row(w1), r2 = row(w2), r3 = row(w3)
            f00 = f(f00, c00, r0, t0); f01 = f(f01, c01, r1, t0); f02 = f(f02, c02, r2, t0); f03 = f(f03, c03, r3, t0)
            f10 = f(f10, c10, r0, t1); f11 = f(f11, c11, r1, t1); f12 = f(f12, c12, r2, t1); f13 = f(f13, c13, r3, t1)
        }
        return MatMulTileAVX2.eightSums(f00, f01, f02, f03, f10, f11, f12, f13)
    }
}
