import HymbaKernels
import HymbaFormat

/// Matrix-vector products for one token (decoding): `y[r] = W[r,:]·x` for the rows in
/// `rows`, with `W` in its stored type (`[out, in]` layout, MODEL.md "y = x·Wᵀ"). Each weight
/// row is read once, decoded in registers (`Dot`, `Q8Rows`, `Q4Rows`) against the input
/// arranged once per product (`ArrangedInput`). The row range lets a thread pool split one
/// product across threads; `y` is indexed by absolute row.
public enum MatVec {
    /// `input` must hold x arranged for `w.type` (`ArrangedInput.arrangePortable`).
    @inline(__always)
    @inlinable public static func run(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let n = w.rowLength, x = UnsafePointer(input.values)
        switch w.type {
        case .f32: w.forEachRow(in: rows) { r, row in y[r] = Dot.f32(row, x, n) }
        case .bf16: w.forEachRow(in: rows) { r, row in y[r] = Dot.bf16(row, x, n) }
        case .f16: w.forEachRow(in: rows) { r, row in y[r] = Dot.f16(row, x, n) }
        case .q8: w.forEachRow(in: rows) { r, row in y[r] = Q8Rows.dot(row, x, n) }
        case .q4:
            w.forEachRowPair(in: rows, { r, a, b in (y[r], y[r + 1]) = Q4Rows.dotPair(a, b, input, n) },
                             { r, row in y[r] = Q4Rows.dot(row, input, n) })
        }
    }

    /// The input x̂ that rows of `type` are multiplied with for `x`: q4 kernels round it to int8
    /// per 32 elements (`Q8Activations`); the others use x as it is. For tests and error bounds.
    @inline(__always)
    @inlinable public static func roundedInput(_ type: StorageType, _ x: [Float]) -> [Float] {
        type == .q4 ? Q8Activations.dequantized(x) : x
    }
}

extension TensorData {
    /// Calls `body(r, start of row r)` for every r in `rows`, walking the segments once
    /// (instead of locating each row).
    @inline(__always)
    @inlinable public func forEachRow(in rows: Range<Int>, _ body: (Int, UnsafeRawPointer) -> Void) {
        for s in segments {
            let lo = max(rows.lowerBound, s.firstRow), hi = min(rows.upperBound, s.firstRow + s.rowCount)
            if lo >= hi { continue }
            var p = s.base + (lo - s.firstRow) * rowBytes
            for r in lo..<hi {
                body(r, p)
                p += rowBytes
            }
        }
    }
}

extension TensorData {
    /// Like `forEachRow`, but hands consecutive rows of a segment over two at a time
    /// (`pair(r, row r, row r+1)`), and a segment's odd last row to `single`.
    @inline(__always)
    @inlinable public func forEachRowPair(in rows: Range<Int>, _ pair: (Int, UnsafeRawPointer, UnsafeRawPointer) -> Void,
                        _ single: (Int, UnsafeRawPointer) -> Void) {
        for s in segments {
            let lo = max(rows.lowerBound, s.firstRow), hi = min(rows.upperBound, s.firstRow + s.rowCount)
            if lo >= hi { continue }
            var p = s.base + (lo - s.firstRow) * rowBytes
            var r = lo
            while r + 2 <= hi {
                pair(r, p, p + rowBytes)
                p += 2 * rowBytes
                r += 2
            }
            if r < hi { single(r, p) }
        }
    }
}

extension TensorData {
    /// Like `forEachRow`, but hands consecutive rows of a segment over up to 16 at a time
    /// (`block(first row index, its start, count)`; the rows `rowBytes` apart).
    @inline(__always)
    @inlinable public func forEachRowBlock(in rows: Range<Int>, _ block: (Int, UnsafeRawPointer, Int) -> Void) {
        for s in segments {
            let lo = max(rows.lowerBound, s.firstRow), hi = min(rows.upperBound, s.firstRow + s.rowCount)
            var r = lo
            while r < hi {
                let count = min(16, hi - r)
                block(r, s.base + (r - s.firstRow) * rowBytes, count)
                r += count
            }
        }
    }
}

/// Widening of one encoded row to fp32 with SIMD (the matmul's row tiles).
public enum RowDecode {
    @inline(__always)
    @inlinable public static func decode(_ type: StorageType, _ src: UnsafeRawPointer, _ n: Int, into dst: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(dst)
        switch type {
        case .f32:
            out.copyMemory(from: src, byteCount: 4 * n)
        case .bf16, .f16:
            var i = 0
            if type == .bf16 {
                while i + 8 <= n {
                    out.storeBytes(of: VectorMath.bf16ToFloat(src.load(unalignedAt: 2 * i, as: SIMD8<UInt16>.self)), toByteOffset: 4 * i, as: SIMD8<Float>.self)
                    i += 8
                }
                while i < n { dst[i] = HalfFloat.bf16ToFloat(UInt16(littleEndian: src.load(unalignedAt: 2 * i, as: UInt16.self))); i += 1 }
            } else {
                while i + 8 <= n {
                    out.storeBytes(of: VectorMath.f16ToFloat(src.load(unalignedAt: 2 * i, as: SIMD8<UInt16>.self)), toByteOffset: 4 * i, as: SIMD8<Float>.self)
                    i += 8
                }
                while i < n { dst[i] = HalfFloat.f16ToFloat(UInt16(littleEndian: src.load(unalignedAt: 2 * i, as: UInt16.self))); i += 1 }
            }
        case .q8:
            let full = n / 32
            var blk = src
            for b in 0..<full {
                let d = HalfFloat.f16ToFloat(UInt16(littleEndian: blk.load(unalignedAt: 0, as: UInt16.self)))
                for k in 0..<4 {
                    let q = Dot.int8ToFloat(blk.load(unalignedAt: 2 + 8 * k, as: SIMD8<UInt8>.self))
                    out.storeBytes(of: d * q, toByteOffset: 128 * b + 32 * k, as: SIMD8<Float>.self)
                }
                blk += Q8Layout.blockBytes
            }
            if n > 32 * full {
                let d = HalfFloat.f16ToFloat(UInt16(littleEndian: blk.load(unalignedAt: 0, as: UInt16.self)))
                for i in 0..<(n - 32 * full) { dst[32 * full + i] = d * Float(blk.load(fromByteOffset: 2 + i, as: Int8.self)) }
            }
        case .q4:
            let nsub = Q4Layout.subBlocks(length: n)
            var group = src
            var sub = 0
            while sub < nsub {
                let k = min(Q4Layout.subBlocksPerGroup, nsub - sub)
                let g = Q4Layout.Group(at: group, subBlocks: k)
                let quants = g.codes
                for j in 0..<k {
                    let (scale, minv) = g.scaleAndMin(j)
                    let qs = quants + 16 * j
                    let base = (sub + j) * 32
                    if base + 32 <= n {
                        let b0 = qs.load(unalignedAt: 0, as: SIMD8<UInt8>.self), b1 = qs.load(unalignedAt: 8, as: SIMD8<UInt8>.self)
                        out.storeBytes(of: scale * Dot.nibbleToFloat(b0 & 0x0F) - minv, toByteOffset: 4 * base, as: SIMD8<Float>.self)
                        out.storeBytes(of: scale * Dot.nibbleToFloat(b1 & 0x0F) - minv, toByteOffset: 4 * base + 32, as: SIMD8<Float>.self)
                        out.storeBytes(of: scale * Dot.nibbleToFloat(b0 &>> 4) - minv, toByteOffset: 4 * base + 64, as: SIMD8<Float>.self)
                        out.storeBytes(of: scale * Dot.nibbleToFloat(b1 &>> 4) - minv, toByteOffset: 4 * base + 96, as: SIMD8<Float>.self)
                    } else {
                        for b in 0..<16 {
                            let byte = qs.load(fromByteOffset: b, as: UInt8.self)
                            if base + b < n { dst[base + b] = scale * Float(byte & 0xF) - minv }
                            if base + b + 16 < n { dst[base + b + 16] = scale * Float(byte >> 4) - minv }
                        }
                    }
                }
                group += g.byteCount
                sub += k
            }
        }
    }
}
