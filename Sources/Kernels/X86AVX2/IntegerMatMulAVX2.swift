import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q8 matrix-matrix product (prefill) on 16-bit integers, for x86-64 CPUs with AVX2 (the
/// AVX2 backend's `matMul` for q8 rows; q4 rows take `Q4MatMulAVX2`); `IntegerMatMul`'s design
/// and numbers on 256-bit registers. `vpmaddwd` multiplies 16 pairs of 16-bit integers and adds
/// neighbours into 8 32-bit lanes; with the `vpaddd` that accumulates them that is 16
/// multiply-adds in two instructions that run on more ports than an FMA, on operands of half
/// the bytes, and the weights are decoded once per tile instead of widened to floats.
///
/// Numbers: the input as `Int16MatrixInput` (codes c per token and block of 512, a =
/// max|x|/8191), the weights as `IntegerMatMul` re-expresses them (w' = round(q·d_b/D), D =
/// max_b|d_b|·128/8191), so the same values and the same error bound as the AVX-512 kernel. A
/// 32-bit lane here takes 2 of every 16 products: only half a block (32 products of at most
/// 8191²) fits, so lanes are converted to fp32 every 256 elements.
///
/// The register tile is 4 weight rows × 2 tokens: 8 accumulators, 4 weight registers, one
/// input and one product register of the 16; 6 loads per 8 `vpmaddwd`.
enum IntegerMatMulAVX2 {
    typealias Layout = Int16MatrixInput

    /// Rows of weights decoded at once into the thread's panel: 16 rows of one block (16 KiB)
    /// stay in a 32 KiB L1 next to the tokens' codes while every token pair meets them.
    static let panelRows = 16
    /// Floats of per-thread scratch `run` needs: the panel (rows of 512 int16 and a float scale
    /// each).
    static let panelFloats = panelRows * (tileRowBytes + 4) / 4

    // MARK: Activations

    /// Arranges one token's `layout.n` inputs at x into `out` (`layout.floats`).
    static func arrangeRow(_ x: UnsafePointer<Float>, _ layout: Layout, into out: UnsafeMutablePointer<Float>) {
        let codes = UnsafeMutableRawPointer(out)
        for g in 0..<layout.groups {
            let k = layout.subBlocks(g), span = 2 * ((k + 1) / 2)
            let start = 512 * g, count = min(512, layout.n - start)
            // Sub-block s of the block, zero past the row's end up to whole pairs of sub-blocks.
            @inline(__always) func block(_ s: Int) -> AVX2Block {
                AVX2Block(x + start + 32 * s, count: max(0, min(32, count - 32 * s)))
            }
            var largest: Float = 0, finite = true
            for s in 0..<span {
                let b = block(s)
                finite = finite && b.isFinite
                largest = max(largest, b.largest)
            }
            if finite {
                let inv = largest > 0 ? Layout.codeLimit / largest : 0
                for s in 0..<span {
                    let c = block(s).codes(scaledBy: inv)
                    let slot = 2 * Layout.slot(group: g, subBlock: s)
                    codes.storeBytes(of: AVX2Block.int16(c), toByteOffset: slot, as: __m256i.self)
                    codes.storeBytes(of: AVX2Block.int16(c, high: true), toByteOffset: slot + 64, as: __m256i.self)
                }
            } else {
                // Non-finite input: codes 0 and a NaN scale, so the token's products come out NaN.
                for s in 0..<span {
                    let slot = 2 * Layout.slot(group: g, subBlock: s)
                    codes.storeBytes(of: _mm256_setzero_si256(), toByteOffset: slot, as: __m256i.self)
                    codes.storeBytes(of: _mm256_setzero_si256(), toByteOffset: slot + 64, as: __m256i.self)
                }
            }
            out[layout.scalesOffset + g] = finite ? largest / Layout.codeLimit : .nan
        }
    }

    // MARK: Weights

    /// The bytes of row `r`'s block g (`k` q8 blocks) and their count.
    @inline(__always)
    private static func block(_ w: TensorData, row r: Int, group g: Int, subBlocks k: Int) -> (UnsafeRawPointer, Int) {
        (w.row(r) + 16 * g * Q8Layout.blockBytes, k * Q8Layout.blockBytes)
    }

    /// Sixteen (or k) q8 blocks: w' = round(q·d_b/D) on one scale D.
    @inline(__always)
    private static func decodeQ8(_ p: UnsafeRawPointer, _ k: Int, _ pairs: Int, _ tile: UnsafeMutableRawPointer) -> Float {
        let D = Int16Weights.q8GroupScale(p, blocks: k)
        for s in 0..<(2 * pairs) {
            let slot = 2 * Layout.slot(group: 0, subBlock: s)
            var lo = _mm256_setzero_si256(), hi = lo
            if s < k && D > 0 {  // not for a NaN D: codes 0
                let f = _mm256_set1_ps(Int16Weights.q8BlockScale(p, s) / D)
                let blk = p + s * Q8Layout.blockBytes + 2
                @inline(__always) func eight(_ o: Int) -> __m256i {
                    let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(UnsafeRawPointer(blk + o).assumingMemoryBound(to: __m128i.self)))
                    return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(q), f))
                }
                let c = (eight(0), eight(8), eight(16), eight(24))
                lo = AVX2Block.int16(c)
                hi = AVX2Block.int16(c, high: true)
            }
            tile.storeBytes(of: lo, toByteOffset: slot, as: __m256i.self)
            tile.storeBytes(of: hi, toByteOffset: slot + 64, as: __m256i.self)
        }
        return D
    }

    // MARK: The product

    /// The weight panel (`panelRows` rows of one block, in the thread's scratch): int16 rows
    /// 1024 bytes apart; then each row's D.
    private static let tileRowBytes = 1024
    /// How many rows ahead of the one being decoded the weights are asked for.
    private static let prefetchRows = 4
    private static let panelScalesOffset = panelRows * tileRowBytes

    /// y[t·ldy + r] = W[r,:]·x̂_t for r in `rows`, from inputs arranged by `arrangeRow`;
    /// `tile` (`panelFloats`) private to the calling thread.
    static func run(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                    y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, tile: UnsafeMutablePointer<Float>) {
        precondition(w.type == .q8, "integer matmul of \(w.type) rows")
        let layout = Layout(w.rowLength)
        let tileRaw = UnsafeMutableRawPointer(tile)
        let scales = (tileRaw + panelScalesOffset).assumingMemoryBound(to: Float.self)
        // Bytes of codes whose products a 32-bit lane can hold (see the type's description).
        let chunkBytes = 512
        PanelSweep.run(w, rows: rows, groups: layout.groups, panelSize: panelRows, tokens: tokens, tokensPerTile: 2,
                       nextPanel: nil,
                       setUp: { g -> (g: Int, k: Int, pairs: Int, codeBytes: Int) in
                           let k = layout.subBlocks(g), pairs = (k + 1) / 2
                           return (g, k, pairs, 128 * pairs)
                       },
                       decode: { group, i, row in
                           let dst = tileRaw + i * tileRowBytes
                           let ahead = (row ?? rows.upperBound) + prefetchRows
                           if ahead < rows.upperBound {
                               // A block of a row lies a row's bytes from the previous row's: a stride
                               // the hardware prefetchers did not follow (the first load of each row
                               // took half of `decode`'s samples in a 350m q8 prefill profile).
                               let (bytes, count) = block(w, row: ahead, group: group.g, subBlocks: group.k)
                               Prefetch.lines(bytes, bytes: count)
                           }
                           if let row {
                               let (bytes, _) = block(w, row: row, group: group.g, subBlocks: group.k)
                               scales[i] = decodeQ8(bytes, group.k, group.pairs, dst)
                           } else {
                               dst.initializeMemory(as: UInt8.self, repeating: 0, count: group.codeBytes)
                               scales[i] = 0
                           }
                       },
                       tile: { group, panelRows, tokenRange in
                           let g = group.g, t = tokenRange.lowerBound, tokenCount = tokenRange.count
                           // A lone last token is paired with itself; the copy's lanes are not stored.
                           let x0 = xa + t * ldxa, x1 = xa + (t + tokenCount - 1) * ldxa
                           let a0 = x0[layout.scalesOffset + g], a1 = x1[layout.scalesOffset + g]
                           let tokenScales = _mm256_setr_ps(a0, a0, a0, a0, a1, a1, a1, a1)
                           let c0 = UnsafeRawPointer(x0) + 1024 * g, c1 = UnsafeRawPointer(x1) + 1024 * g
                           for q in 0..<((panelRows.count + 3) / 4) {
                               let r = panelRows.lowerBound + 4 * q, tileRows = min(4, panelRows.count - 4 * q)
                               let wt = UnsafeRawPointer(tileRaw + 4 * q * tileRowBytes)
                               var sums = _mm256_setzero_ps()
                               var o = 0
                               while o < group.codeBytes {
                                   sums = _mm256_add_ps(sums, products(wt, c0, c1, from: o, to: min(group.codeBytes, o + chunkBytes)))
                                   o += chunkBytes
                               }
                               let D = UnsafeRawPointer(scales + 4 * q).load(unalignedAt: 0, as: SIMD4<Float>.self)
                               let v = _mm256_mul_ps(sums, unsafeBitCast((D, D), to: __m256.self))
                               OutputTileAVX2.store(unsafeBitCast(_mm256_mul_ps(v, tokenScales), to: SIMD8<Float>.self), at: y + t * ldy + r,
                                                    ldy: ldy, tokens: tokenCount, rows: tileRows, accumulate: g > 0)
                           }
                       })
    }

    /// Σ w'·c of 4 weight rows (`tile`, 1024 bytes apart) × 2 tokens' codes over bytes
    /// `start..<end` of the block, as floats: lane i is token i/4's row i%4.
    @inline(__always)
    private static func products(_ tile: UnsafeRawPointer, _ x0: UnsafeRawPointer, _ x1: UnsafeRawPointer,
                                 from start: Int, to end: Int) -> __m256 {
        let w0 = tile, w1 = tile + tileRowBytes, w2 = tile + 2 * tileRowBytes, w3 = tile + 3 * tileRowBytes
        var c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00
        var o = start
        while o < end {
            let a0 = w0.load(unalignedAt: o, as: __m256i.self), a1 = w1.load(unalignedAt: o, as: __m256i.self)
            let a2 = w2.load(unalignedAt: o, as: __m256i.self), a3 = w3.load(unalignedAt: o, as: __m256i.self)
            let b0 = x0.load(unalignedAt: o, as: __m256i.self)
            c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(a0, b0)); c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(a1, b0))
            c02 = _mm256_add_epi32(c02, _mm256_madd_epi16(a2, b0)); c03 = _mm256_add_epi32(c03, _mm256_madd_epi16(a3, b0))
            let b1 = x1.load(unalignedAt: o, as: __m256i.self)
            c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(a0, b1)); c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(a1, b1))
            c12 = _mm256_add_epi32(c12, _mm256_madd_epi16(a2, b1)); c13 = _mm256_add_epi32(c13, _mm256_madd_epi16(a3, b1))
            o &+= 32
        }
        @inline(__always) func f(_ c: __m256i) -> __m256 { _mm256_cvtepi32_ps(c) }
        return MatMulTileAVX2.eightSums(f(c00), f(c01), f(c02), f(c03), f(c10), f(c11), f(c12), f(c13))
    }
}
