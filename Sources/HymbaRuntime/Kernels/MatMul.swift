import HymbaFormat

/// Matrix-matrix products for a chunk of tokens (prefill):
/// `Y[t·ldy + r] = W[r,:]·X[t·ldx ..< t·ldx+n]` for t in 0..<tokens and r in `rows`.
///
/// Each weight row is read from memory once per chunk: a tile of 4 rows is widened to fp32 into
/// `scratch` (4·n floats, L1/L2-resident; never the whole tensor), then every token's input is
/// multiplied against the 4 rows at once, so each input block is loaded once per tile
/// (4 accumulators in registers). `rows` lets a thread pool split the product; `scratch` must be
/// private to the caller's thread.
package enum MatMul {
    package static let tileRows = 4

    package static func run(_ w: TensorData, x: UnsafePointer<Float>, ldx: Int, tokens: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>,
                            scratch: UnsafeMutablePointer<Float>) {
        let n = w.rowLength
        var r = rows.lowerBound
        while r + tileRows <= rows.upperBound {
            let w0 = tileRow(w, r, scratch)
            let w1 = tileRow(w, r + 1, scratch + n)
            let w2 = tileRow(w, r + 2, scratch + 2 * n)
            let w3 = tileRow(w, r + 3, scratch + 3 * n)
            for t in 0..<tokens {
                let xt = UnsafeRawPointer(x + t * ldx)
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                var i = 0
                while i + 8 <= n {
                    let xv = xt.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                    a0 += w0.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * xv
                    a1 += w1.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * xv
                    a2 += w2.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * xv
                    a3 += w3.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * xv
                    i += 8
                }
                var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
                let xs = x + t * ldx
                while i < n {
                    let xv = xs[i]
                    s0 += w0.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * xv
                    s1 += w1.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * xv
                    s2 += w2.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * xv
                    s3 += w3.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * xv
                    i += 1
                }
                let yt = y + t * ldy + r
                yt[0] = s0; yt[1] = s1; yt[2] = s2; yt[3] = s3
            }
            r += tileRows
        }
        while r < rows.upperBound {
            let w0 = tileRow(w, r, scratch)
            for t in 0..<tokens { y[t * ldy + r] = Dot.f32(w0, x + t * ldx, n) }
            r += 1
        }
    }

    /// Row `r` as fp32: in place for f32 weights, else widened into `buffer`.
    @inline(__always)
    static func tileRow(_ w: TensorData, _ r: Int, _ buffer: UnsafeMutablePointer<Float>) -> UnsafeRawPointer {
        if w.type == .f32 { return w.row(r) }
        RowDecode.decode(w.type, w.row(r), w.rowLength, into: buffer)
        return UnsafeRawPointer(buffer)
    }
}
