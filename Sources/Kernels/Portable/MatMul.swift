import HymbaKernels
import HymbaFormat

/// Matrix-matrix products for a chunk of tokens (prefill):
/// `Y[t·ldy + r] = W[r,:]·X[t,:]` for t in 0..<tokens and r in `rows`.
///
/// Blocking: the depth (input dimension) is cut into blocks of 512 elements (one q4 group,
/// sixteen q8 blocks). For each depth block, a tile of 4 weight rows is decoded to fp32 once
/// (`tile`, 8 KiB: L1-resident) and multiplied against every token's slice of the block (the
/// chunk's slices, tokens × 2 KiB, stay in L2 across the row tiles), 4 tokens at a time: 16
/// accumulators of 16 lanes in registers, each loaded weight and input vector used 4 times.
/// Partial sums of successive depth blocks are added into Y.
///
/// The inputs must be arranged for the weight type (`arrangeRows`, `InputLayout`) so that the
/// quantized tiles decode without widening conversions (the AVX-512 backend multiplies q4 and
/// q8 weights on 16-bit integers instead, `IntegerMatMul`). `rows` lets a thread pool split the
/// product; `tile` (`tileFloats`) must be private to the calling thread.
public enum MatMul {
    @inlinable public static var rowTile: Int { 4 }
    @inlinable public static var tokenTile: Int { 4 }
    @inlinable public static var depthBlock: Int { 512 }
    /// Floats of per-thread scratch `run` needs: one tile of decoded rows.
    @inlinable public static var tileFloats: Int { rowTile * depthBlock }

    /// Floats per arranged input row for rows of up to `n` elements, whatever the weight type.
    @inline(__always)
    @inlinable public static func arrangedRowFloats(_ n: Int) -> Int { InputLayout.paddedLength(.q4, n) }

    /// Arranges `tokens` rows of `n` inputs (`ldx` apart) into `out` (rows `ldo` ≥
    /// `arrangedRowFloats(n)` apart).
    @inline(__always)
    @inlinable public static func arrangeRows(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                                              into out: UnsafeMutablePointer<Float>, ldo: Int) {
        for t in 0..<tokens { InputLayout.arrange(type, x + t * ldx, n, into: out + t * ldo) }
    }

    /// The register tile `tiledProduct` runs: `kernel4x4`'s arguments in its order (weights, inputs,
    /// ldx, depth, y, ldy, accumulate). A backend with fewer or narrower registers passes its own
    /// (`MatMulTileAVX2`).
    public typealias Tile4x4 = (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>, Int, Bool) -> Void

    @inline(__always)
    @inlinable public static func run(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>,
                            tile: UnsafeMutablePointer<Float>, kernel: Tile4x4 = kernel4x4) {
        tiledProduct(depth: InputLayout.paddedLength(w.type, w.rowLength), x: xa, ldx: ldxa, tokens: tokens,
                     y: y, ldy: ldy, rows: rows, tile: tile, accumulate: false, kernel: kernel) { r, kb, depth, out in
            decode(w, row: r, block: kb, depth: depth, into: out)
        }
    }

    /// The blocked fp32 product over `depth` (a multiple of 16) inputs per token: for each depth
    /// block, `decode(row, block, depth, into)` writes a row's block (`depth` floats) into the
    /// tile, which then meets every token. Adds to y when `accumulate`, else overwrites it.
    @inline(__always)
    @inlinable public static func tiledProduct(depth padded: Int, x xa: UnsafePointer<Float>, ldx ldxa: Int, tokens: Int,
                             y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>,
                             tile: UnsafeMutablePointer<Float>, accumulate initial: Bool, kernel: Tile4x4 = kernel4x4,
                             decode: (Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let blocks = (padded + depthBlock - 1) / depthBlock
        for kb in 0..<blocks {
            let start = kb * depthBlock
            let depth = min(depthBlock, padded - start)
            let accumulate = initial || kb > 0
            var r = rows.lowerBound
            while r < rows.upperBound {
                let tileRows = min(rowTile, rows.upperBound - r)
                for i in 0..<tileRows {
                    decode(r + i, kb, depth, tile + i * depthBlock)
                }
                let xs = xa + start
                var t = 0
                if tileRows == rowTile {
                    while t + tokenTile <= tokens {
                        kernel(tile, xs + t * ldxa, ldxa, depth, y + t * ldy + r, ldy, accumulate)
                        t += tokenTile
                    }
                }
                // Leftover tokens, or every token of a partial row tile: one dot product each.
                for tt in t..<tokens {
                    for i in 0..<tileRows {
                        let v = dot(tile + i * depthBlock, xs + tt * ldxa, depth)
                        let out = y + tt * ldy + r + i
                        out.pointee = accumulate ? out.pointee + v : v
                    }
                }
                r += tileRows
            }
        }
    }

    /// Row `r`'s depth block `kb` (`depth` floats, a multiple of 16) as fp32 in the arranged
    /// order; padding past the row's end is zero for float types and multiplies zero inputs
    /// for quantized ones.
    @inline(__always)
    @inlinable public static func decode(_ w: TensorData, row r: Int, block kb: Int, depth: Int, into out: UnsafeMutablePointer<Float>) {
        let n = w.rowLength
        let row = w.row(r)
        let start = kb * depthBlock
        switch w.type {
        case .q4:
            _ = Q4Rows.decodeGroup(row, n, group: kb, into: out)
        case .q8:
            Q8Rows.decodeBlocks(row, first: start / 32, count: depth / 32, into: out)
        case .f32, .bf16, .f16:
            let count = min(depth, n - start)
            RowDecode.decode(w.type, row + start * w.type.bytesPerElementForFloatTypes, count, into: out)
            (out + count).update(repeating: 0, count: depth - count)
        }
    }

    /// Σ a·b over `depth` floats (a multiple of 16).
    @inline(__always)
    @inlinable public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ depth: Int) -> Float {
        let ar = UnsafeRawPointer(a), br = UnsafeRawPointer(b)
        var acc = SIMD16<Float>()
        var i = 0
        while i < depth {
            acc = multiplyAdd(ar.load(unalignedAt: 4 * i, as: SIMD16<Float>.self), br.load(unalignedAt: 4 * i, as: SIMD16<Float>.self), acc)
            i += 16
        }
        return horizontalSum(acc)
    }

    /// The register tile: 4 weight rows (`w`, `depthBlock` apart) × 4 tokens (`x`, `ldx`
    /// apart) over `depth` floats; results to y[t·ldy + i] (added when `accumulate`).
    @inline(__always)
    @inlinable public static func kernel4x4(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                          y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let w0 = UnsafeRawPointer(w), w1 = UnsafeRawPointer(w + depthBlock), w2 = UnsafeRawPointer(w + 2 * depthBlock), w3 = UnsafeRawPointer(w + 3 * depthBlock)
        let x0 = UnsafeRawPointer(x), x1 = UnsafeRawPointer(x + ldx), x2 = UnsafeRawPointer(x + 2 * ldx), x3 = UnsafeRawPointer(x + 3 * ldx)
        var c00 = SIMD16<Float>(), c01 = SIMD16<Float>(), c02 = SIMD16<Float>(), c03 = SIMD16<Float>()
        var c10 = SIMD16<Float>(), c11 = SIMD16<Float>(), c12 = SIMD16<Float>(), c13 = SIMD16<Float>()
        var c20 = SIMD16<Float>(), c21 = SIMD16<Float>(), c22 = SIMD16<Float>(), c23 = SIMD16<Float>()
        var c30 = SIMD16<Float>(), c31 = SIMD16<Float>(), c32 = SIMD16<Float>(), c33 = SIMD16<Float>()
        var o = 0
        let end = 4 * depth
        while o < end {
            let a0 = w0.load(unalignedAt: o, as: SIMD16<Float>.self)
            let a1 = w1.load(unalignedAt: o, as: SIMD16<Float>.self)
            let a2 = w2.load(unalignedAt: o, as: SIMD16<Float>.self)
            let a3 = w3.load(unalignedAt: o, as: SIMD16<Float>.self)
            let b0 = x0.load(unalignedAt: o, as: SIMD16<Float>.self)
            c00 = multiplyAdd(a0, b0, c00); c10 = multiplyAdd(a1, b0, c10); c20 = multiplyAdd(a2, b0, c20); c30 = multiplyAdd(a3, b0, c30)
            let b1 = x1.load(unalignedAt: o, as: SIMD16<Float>.self)
            c01 = multiplyAdd(a0, b1, c01); c11 = multiplyAdd(a1, b1, c11); c21 = multiplyAdd(a2, b1, c21); c31 = multiplyAdd(a3, b1, c31)
            let b2 = x2.load(unalignedAt: o, as: SIMD16<Float>.self)
            c02 = multiplyAdd(a0, b2, c02); c12 = multiplyAdd(a1, b2, c12); c22 = multiplyAdd(a2, b2, c22); c32 = multiplyAdd(a3, b2, c32)
            let b3 = x3.load(unalignedAt: o, as: SIMD16<Float>.self)
            c03 = multiplyAdd(a0, b3, c03); c13 = multiplyAdd(a1, b3, c13); c23 = multiplyAdd(a2, b3, c23); c33 = multiplyAdd(a3, b3, c33)
            o += 64
        }
        @inline(__always) func put(_ t: Int, _ i: Int, _ c: SIMD16<Float>) {
            let out = y + t * ldy + i
            let v = horizontalSum(c)
            out.pointee = accumulate ? out.pointee + v : v
        }
        put(0, 0, c00); put(0, 1, c10); put(0, 2, c20); put(0, 3, c30)
        put(1, 0, c01); put(1, 1, c11); put(1, 2, c21); put(1, 3, c31)
        put(2, 0, c02); put(2, 1, c12); put(2, 2, c22); put(2, 3, c32)
        put(3, 0, c03); put(3, 1, c13); put(3, 2, c23); put(3, 3, c33)
    }

    /// `kernel4x4`'s contract for vector units of 128-bit registers, the portable backend's tile
    /// (the x86-64 baseline has 16 of them, arm64 NEON 32). `kernel4x4`'s 16 accumulators of 16
    /// lanes are 64 such registers: compiled for the baseline, nearly all lived on the stack,
    /// each multiply-add between a reload and a store (perf annotate, 125m q4 prefill). Here the
    /// tile is two passes of 4 rows × 2 tokens with 4-lane accumulators: 8 accumulators, 4 weight
    /// and 1 input register, 6 loads per 8 multiply-adds; the weight rows (8 KiB) are read twice
    /// from L1 (the AVX2 backend's `MatMulTileAVX2` in portable vectors).
    @inline(__always)
    @inlinable public static func kernel4x4Narrow(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                                                  y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        narrowPass(w, x, ldx: ldx, depth: depth, y: y, ldy: ldy, accumulate: accumulate)
        narrowPass(w, x + 2 * ldx, ldx: ldx, depth: depth, y: y + 2 * ldy, ldy: ldy, accumulate: accumulate)
    }

    /// 4 rows × tokens x and x + ldx, in 4 lanes.
    @inline(__always)
    @inlinable static func narrowPass(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, ldx: Int, depth: Int,
                                      y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let w0 = UnsafeRawPointer(w), w1 = UnsafeRawPointer(w + depthBlock), w2 = UnsafeRawPointer(w + 2 * depthBlock), w3 = UnsafeRawPointer(w + 3 * depthBlock)
        let x0 = UnsafeRawPointer(x), x1 = UnsafeRawPointer(x + ldx)
        var c00 = SIMD4<Float>(), c10 = SIMD4<Float>(), c20 = SIMD4<Float>(), c30 = SIMD4<Float>()
        var c01 = SIMD4<Float>(), c11 = SIMD4<Float>(), c21 = SIMD4<Float>(), c31 = SIMD4<Float>()
        var o = 0
        let end = 4 * depth
        while o < end {
            let a0 = w0.load(unalignedAt: o, as: SIMD4<Float>.self)
            let a1 = w1.load(unalignedAt: o, as: SIMD4<Float>.self)
            let a2 = w2.load(unalignedAt: o, as: SIMD4<Float>.self)
            let a3 = w3.load(unalignedAt: o, as: SIMD4<Float>.self)
            let b0 = x0.load(unalignedAt: o, as: SIMD4<Float>.self)
            c00 = multiplyAdd(a0, b0, c00); c10 = multiplyAdd(a1, b0, c10); c20 = multiplyAdd(a2, b0, c20); c30 = multiplyAdd(a3, b0, c30)
            let b1 = x1.load(unalignedAt: o, as: SIMD4<Float>.self)
            c01 = multiplyAdd(a0, b1, c01); c11 = multiplyAdd(a1, b1, c11); c21 = multiplyAdd(a2, b1, c21); c31 = multiplyAdd(a3, b1, c31)
            o += 16
        }
        @inline(__always) func put(_ t: Int, _ i: Int, _ c: SIMD4<Float>) {
            let out = y + t * ldy + i
            let v = horizontalSum(c)
            out.pointee = accumulate ? out.pointee + v : v
        }
        put(0, 0, c00); put(0, 1, c10); put(0, 2, c20); put(0, 3, c30)
        put(1, 0, c01); put(1, 1, c11); put(1, 2, c21); put(1, 3, c31)
    }
}

extension StorageType {
    /// Bytes per element of f32, f16 and bf16 (the types whose rows can be cut anywhere).
    @inlinable public var bytesPerElementForFloatTypes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q8, .q4: preconditionFailure("\(self) rows are cut at block boundaries only")
        }
    }
}
