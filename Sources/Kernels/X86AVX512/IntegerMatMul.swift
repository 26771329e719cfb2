import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q8 matrix-matrix product (prefill) on 16-bit integers, for x86-64 CPUs with AVX-512
/// VNNI (the AVX-512 backend's `matMul` for q8 rows; q4 rows take `Q4MatMul`).
/// `vpdpwssd` does 32 multiply-adds of 16-bit integers per instruction, twice what an fp32 FMA
/// does, and the operands take half the bytes; portable SIMD code cannot express it, so this
/// file uses the compiler's x86 intrinsics.
///
/// Numbers. The input is arranged as `Int16MatrixInput` says (16-bit codes per token and
/// depth block of 512 elements g, a = max|x|/8191). Weight rows become integer codes w' with
/// one float scale D per row and block: w' = round(q·d_b/D) with D = max_b|d_b|·128/8191, so
/// |w'| ≤ 8191 — the stored block scales re-expressed on one scale per 512 elements (an extra
/// rounding of at most D/2 per weight, ≤ 1/16382 of the block's largest weight scale × 128).
/// Then y += D·a·Σ w'·c. Each 32-bit lane sums 32 products of at most 8191² (< 2³¹), so the
/// integer sums cannot overflow; lanes are converted to fp32 before they are added together.
enum IntegerMatMul {
    static let codeLimit = Int16MatrixInput.codeLimit
    typealias Layout = Int16MatrixInput

    /// Rows of weights decoded at once into the thread's panel.
    static let panelRows = 32
    /// Floats of per-thread scratch `run` needs: the panel (32 rows of 512 int16 and a float
    /// scale each).
    static let panelFloats = panelRows * (1024 + 4) / 4

    // MARK: Activations

    /// Arranges one token's `layout.n` inputs at x into `out` (`layout.floats`).
    static func arrangeRow(_ x: UnsafePointer<Float>, _ layout: Layout, into out: UnsafeMutablePointer<Float>) {
        let codes = UnsafeMutableRawPointer(out)
        for g in 0..<layout.groups {
            let k = layout.subBlocks(g), pairs = (k + 1) / 2
            let start = 512 * g, count = min(512, layout.n - start), span = 64 * pairs
            // The block's elements 16 at a time, zero past its end up to whole pairs of sub-blocks
            // (masked loads: the row may end anywhere in memory).
            @inline(__always) func load16(_ i: Int) -> __m512 {
                unsafeBitCast(AVX512Vectors.load(x + start + i, count: max(0, min(16, count - i))), to: __m512.self)
            }
            var m = _mm512_setzero_ps(), poison = SIMD16<Float>()
            for i in stride(from: 0, to: span, by: 16) {
                let v = load16(i)
                poison += v * 0  // NaN if any element is NaN or infinite
                m = _mm512_max_ps(m, _mm512_abs_ps(v))
            }
            let largest = _mm512_reduce_max_ps(m)
            let finite = !horizontalSum(poison).isNaN
            let a: Float = finite ? largest / codeLimit : .nan
            // Non-finite input: codes 0 and a NaN scale, so the products come out NaN.
            let inv = _mm512_set1_ps(finite && largest > 0 ? codeLimit / largest : 0)
            for s in 0..<(2 * pairs) {
                let slot = 512 * g + 64 * (s / 2) + 16 * (s % 2)
                let lo = _mm512_cvtps_epi32(_mm512_mul_ps(load16(32 * s), inv))
                let hi = _mm512_cvtps_epi32(_mm512_mul_ps(load16(32 * s + 16), inv))
                codes.storeBytes(of: _mm512_cvtepi32_epi16(lo), toByteOffset: 2 * slot, as: __m256i.self)
                codes.storeBytes(of: _mm512_cvtepi32_epi16(hi), toByteOffset: 2 * (slot + 32), as: __m256i.self)
            }
            out[layout.scalesOffset + g] = a
        }
    }

    // MARK: Weights

    /// Row `r`'s block g (k q8 blocks, `2·pairs` sub-blocks in the pair order) as int16 codes
    /// into `tile`; returns D.
    @inline(__always)
    private static func decode(_ w: TensorData, row r: Int, group g: Int, subBlocks k: Int, pairs: Int,
                               into tile: UnsafeMutableRawPointer) -> Float {
        precondition(w.type == .q8, "integer matmul of \(w.type) rows")
        return decodeQ8(w.row(r) + 16 * g * Q8Layout.blockBytes, k, pairs, tile)
    }

    /// Sixteen (or k) q8 blocks: w' = round(q·d_b/D) on one scale D.
    @inline(__always)
    private static func decodeQ8(_ p: UnsafeRawPointer, _ k: Int, _ pairs: Int, _ tile: UnsafeMutableRawPointer) -> Float {
        let D = Int16Weights.q8GroupScale(p, blocks: k)
        for s in 0..<(2 * pairs) {
            let slot = 2 * (64 * (s / 2) + 16 * (s % 2))
            var lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256()
            if s < k && D > 0 {  // not for a NaN D: codes 0
                let f = _mm512_set1_ps(Int16Weights.q8BlockScale(p, s) / D)
                let blk = p + s * Q8Layout.blockBytes + 2
                @inline(__always) func codes(_ o: Int) -> __m256i {
                    let q = _mm512_cvtepi8_epi32(unsafeBitCast(blk.load(unalignedAt: o, as: SIMD16<Int8>.self), to: __m128i.self))
                    return _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(q), f)))
                }
                lo = codes(0)
                hi = codes(16)
            }
            tile.storeBytes(of: lo, toByteOffset: slot, as: __m256i.self)
            tile.storeBytes(of: hi, toByteOffset: slot + 64, as: __m256i.self)
        }
        return D
    }

    // MARK: The product

    /// The weight panel (`panelRows` rows of one block, in the thread's tile buffer):
    /// int16 rows 1024 bytes apart; then each row's D. A panel of 32 rows (34 KiB)
    /// and a tile of 4 tokens' codes (4 KiB) stay in L1 while every token tile meets every row
    /// tile of the panel: each loaded input vector serves 32 rows, not 4.
    private static let tileRowBytes = 1024
    private static let panelScalesOffset = panelRows * tileRowBytes

    /// y[t·ldy + r] = W[r,:]·x̂_t for r in `rows`, from inputs arranged by `arrangeRow`;
    /// `tile` (`panelFloats`) private to the calling thread.
    static func run(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>,
                            tile: UnsafeMutablePointer<Float>) {
        let layout = Layout(w.rowLength)
        let tileRaw = UnsafeMutableRawPointer(tile)
        let scales = (tileRaw + panelScalesOffset).assumingMemoryBound(to: Float.self)
        PanelSweep.run(w, rows: rows, groups: layout.groups, panelSize: panelRows, tokens: tokens, tokensPerTile: 4,
                       nextPanel: { (16 * $0 * Q8Layout.blockBytes, layout.subBlocks($0) * Q8Layout.blockBytes) },
                       setUp: { g -> (g: Int, k: Int, pairs: Int) in
                           let k = layout.subBlocks(g)
                           return (g, k, (k + 1) / 2)
                       },
                       decode: { group, i, row in
                           let dst = tileRaw + i * tileRowBytes
                           if let row {
                               scales[i] = decode(w, row: row, group: group.g, subBlocks: group.k, pairs: group.pairs, into: dst)
                           } else {
                               dst.initializeMemory(as: UInt8.self, repeating: 0, count: 128 * group.pairs)
                               scales[i] = 0
                           }
                       },
                       tile: { group, panelRows, tokenRange in
                           let g = group.g, t = tokenRange.lowerBound, tokenCount = tokenRange.count
                           // A short last tile repeats its first token; those lanes are not stored.
                           @inline(__always) func token(_ i: Int) -> UnsafePointer<Float> { xa + (t + (i < tokenCount ? i : 0)) * ldxa }
                           let x0 = token(0), x1 = token(1), x2 = token(2), x3 = token(3)
                           let a0 = x0[layout.scalesOffset + g], a1 = x1[layout.scalesOffset + g]
                           let a2 = x2[layout.scalesOffset + g], a3 = x3[layout.scalesOffset + g]
                           let tokenScales = SIMD16<Float>(a0, a0, a0, a0, a1, a1, a1, a1, a2, a2, a2, a2, a3, a3, a3, a3)
                           @inline(__always) func codes(_ x: UnsafePointer<Float>) -> UnsafeRawPointer { UnsafeRawPointer(x) + 1024 * g }
                           for q in 0..<((panelRows.count + 3) / 4) {
                               let r = panelRows.lowerBound + 4 * q, tileRows = min(4, panelRows.count - 4 * q)
                               let wt = UnsafeRawPointer(tileRaw + 4 * q * tileRowBytes)
                               let D = UnsafeRawPointer(scales + 4 * q).load(unalignedAt: 0, as: SIMD4<Float>.self)
                               let v = kernel(wt, codes(x0), codes(x1), codes(x2), codes(x3), steps: 2 * group.pairs, D: D) * tokenScales
                               OutputTile.store(v, at: y + t * ldy + r, ldy: ldy, tokens: tokenCount, rows: tileRows, accumulate: g > 0)
                           }
                       })
    }

    /// 4 weight rows (`tile`, 1024 bytes apart) × 4 tokens over `steps` × 32 int16 codes, each
    /// integer dot product times its row's D: lane 4t + r, still to be multiplied by token t's a.
    @inline(__always)
    private static func kernel(_ tile: UnsafeRawPointer, _ x0: UnsafeRawPointer, _ x1: UnsafeRawPointer,
                               _ x2: UnsafeRawPointer, _ x3: UnsafeRawPointer, steps: Int, D: SIMD4<Float>) -> SIMD16<Float> {
        let w0 = tile, w1 = tile + tileRowBytes, w2 = tile + 2 * tileRowBytes, w3 = tile + 3 * tileRowBytes
        var c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00
        var c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00
        var o = 0
        let end = 64 * steps
        while o < end {
            let a0 = w0.load(unalignedAt: o, as: __m512i.self), a1 = w1.load(unalignedAt: o, as: __m512i.self)
            let a2 = w2.load(unalignedAt: o, as: __m512i.self), a3 = w3.load(unalignedAt: o, as: __m512i.self)
            let b0 = x0.load(unalignedAt: o, as: __m512i.self)
            c00 = _mm512_dpwssd_epi32(c00, a0, b0); c01 = _mm512_dpwssd_epi32(c01, a1, b0)
            c02 = _mm512_dpwssd_epi32(c02, a2, b0); c03 = _mm512_dpwssd_epi32(c03, a3, b0)
            let b1 = x1.load(unalignedAt: o, as: __m512i.self)
            c10 = _mm512_dpwssd_epi32(c10, a0, b1); c11 = _mm512_dpwssd_epi32(c11, a1, b1)
            c12 = _mm512_dpwssd_epi32(c12, a2, b1); c13 = _mm512_dpwssd_epi32(c13, a3, b1)
            let b2 = x2.load(unalignedAt: o, as: __m512i.self)
            c20 = _mm512_dpwssd_epi32(c20, a0, b2); c21 = _mm512_dpwssd_epi32(c21, a1, b2)
            c22 = _mm512_dpwssd_epi32(c22, a2, b2); c23 = _mm512_dpwssd_epi32(c23, a3, b2)
            let b3 = x3.load(unalignedAt: o, as: __m512i.self)
            c30 = _mm512_dpwssd_epi32(c30, a0, b3); c31 = _mm512_dpwssd_epi32(c31, a1, b3)
            c32 = _mm512_dpwssd_epi32(c32, a2, b3); c33 = _mm512_dpwssd_epi32(c33, a3, b3)
            o += 64
        }
        let d0 = _mm512_set1_ps(D[0]), d1 = _mm512_set1_ps(D[1]), d2 = _mm512_set1_ps(D[2]), d3 = _mm512_set1_ps(D[3])
        @inline(__always) func f(_ c: __m512i, _ d: __m512) -> __m512 { _mm512_mul_ps(_mm512_cvtepi32_ps(c), d) }
        return Reductions512.sixteenSums(f(c00, d0), f(c01, d1), f(c02, d2), f(c03, d3), f(c10, d0), f(c11, d1), f(c12, d2), f(c13, d3),
                           f(c20, d0), f(c21, d1), f(c22, d2), f(c23, d3), f(c30, d0), f(c31, d1), f(c32, d2), f(c33, d3))
    }
}
