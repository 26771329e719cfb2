import HymbaFormat

/// Dot products of one encoded weight row with an fp32 vector, for every storage type. The row
/// is consumed in its stored encoding: each block is widened to fp32 in registers and
/// multiplied there; nothing is written back to memory (MODEL.md: "all arithmetic in fp32").
/// `n` is the row's element count; rows and vectors may have any length and alignment.
package enum Dot {
    @inline(__always)
    package static func row(_ type: StorageType, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        switch type {
        case .f32: return f32(w, x, n)
        case .bf16: return bf16(w, x, n)
        case .f16: return f16(w, x, n)
        case .q8: return q8(w, x, n)
        case .q4: return q4(w, x, n)
        }
    }

    @inline(__always)
    package static func f32(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            a0 += w.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += w.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self) * xr.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        if i + 8 <= n {
            a0 += w.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        var s = (a0 + a1).sum()
        while i < n { s += Float(bitPattern: UInt32(littleEndian: w.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) * x[i]; i += 1 }
        return s
    }

    @inline(__always)
    package static func bf16(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let h0 = w.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            let h1 = w.loadUnaligned(fromByteOffset: 2 * i + 16, as: SIMD8<UInt16>.self)
            a0 += VectorMath.bf16ToFloat(h0) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += VectorMath.bf16ToFloat(h1) * xr.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        if i + 8 <= n {
            a0 += VectorMath.bf16ToFloat(w.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        var s = (a0 + a1).sum()
        while i < n { s += HalfFloat.bf16ToFloat(UInt16(littleEndian: w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) * x[i]; i += 1 }
        return s
    }

    @inline(__always)
    package static func f16(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let h0 = w.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            let h1 = w.loadUnaligned(fromByteOffset: 2 * i + 16, as: SIMD8<UInt16>.self)
            a0 += VectorMath.f16ToFloat(h0) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += VectorMath.f16ToFloat(h1) * xr.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        if i + 8 <= n {
            a0 += VectorMath.f16ToFloat(w.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        var s = (a0 + a1).sum()
        while i < n { s += HalfFloat.f16ToFloat(UInt16(littleEndian: w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) * x[i]; i += 1 }
        return s
    }

    /// q8 (Q8Layout): per block of 32, Σ q·x in fp32, then scaled by the block's d.
    @inline(__always)
    package static func q8(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        var acc = SIMD8<Float>()
        let full = n / 32
        var blk = w
        for b in 0..<full {
            let d = HalfFloat.f16ToFloat(UInt16(littleEndian: blk.loadUnaligned(as: UInt16.self)))
            let xo = 128 * b
            var s = int8ToFloat(blk.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt8>.self)) * xr.loadUnaligned(fromByteOffset: xo, as: SIMD8<Float>.self)
            s += int8ToFloat(blk.loadUnaligned(fromByteOffset: 10, as: SIMD8<UInt8>.self)) * xr.loadUnaligned(fromByteOffset: xo + 32, as: SIMD8<Float>.self)
            s += int8ToFloat(blk.loadUnaligned(fromByteOffset: 18, as: SIMD8<UInt8>.self)) * xr.loadUnaligned(fromByteOffset: xo + 64, as: SIMD8<Float>.self)
            s += int8ToFloat(blk.loadUnaligned(fromByteOffset: 26, as: SIMD8<UInt8>.self)) * xr.loadUnaligned(fromByteOffset: xo + 96, as: SIMD8<Float>.self)
            acc += d * s
            blk += Q8Layout.blockBytes
        }
        var total = acc.sum()
        let rest = n - 32 * full
        if rest > 0 {
            let d = HalfFloat.f16ToFloat(UInt16(littleEndian: blk.loadUnaligned(as: UInt16.self)))
            var s: Float = 0
            for i in 0..<rest { s += Float(blk.load(fromByteOffset: 2 + i, as: Int8.self)) * x[32 * full + i] }
            total += d * s
        }
        return total
    }

    /// q4 (Q4Layout): per sub-block of 32, d·sc·Σ q·x − dmin·mn·Σ x.
    @inline(__always)
    package static func q4(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        let nsub = Q4Layout.subBlocks(length: n)
        var acc = SIMD8<Float>()
        var tail: Float = 0
        var group = w
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
                    let bytes = qs.loadUnaligned(as: SIMD16<UInt8>.self)
                    let x0 = xr.loadUnaligned(fromByteOffset: 4 * base, as: SIMD16<Float>.self)
                    let x1 = xr.loadUnaligned(fromByteOffset: 4 * base + 64, as: SIMD16<Float>.self)
                    let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bytes & 0x0F))
                    let hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bytes &>> 4))
                    let dq = lo * x0 + hi * x1
                    let sx = x0 + x1
                    let v = scale * dq - minv * sx
                    acc += v.lowHalf + v.highHalf
                } else {
                    for b in 0..<16 {
                        let byte = qs.load(fromByteOffset: b, as: UInt8.self)
                        if base + b < n { tail += (scale * Float(byte & 0xF) - minv) * x[base + b] }
                        if base + b + 16 < n { tail += (scale * Float(byte >> 4) - minv) * x[base + b + 16] }
                    }
                }
            }
            group += g.byteCount
            sub += k
        }
        return acc.sum() + tail
    }

    /// Eight int8 codes (as raw bytes) → fp32 exactly: q ^ 0x80 = q + 128 zero-extended (which
    /// x86-64's baseline SIMD does in two unpacks, where sign extension takes more), then −128.
    @inline(__always)
    static func int8ToFloat(_ bytes: SIMD8<UInt8>) -> SIMD8<Float> {
        SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: bytes ^ 0x80)) - 128
    }

    @inline(__always)
    static func nibbleToFloat(_ v: SIMD8<UInt8>) -> SIMD8<Float> {
        SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: v))
    }
}
