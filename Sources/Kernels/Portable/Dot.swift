import HymbaKernels
import HymbaFormat

/// Dot products of one float-type weight row (f32, bf16, f16) with an fp32 vector. The row is
/// consumed in its stored encoding: each piece is widened to fp32 in registers and multiplied
/// there with fused multiply-adds (MODEL.md: "all arithmetic in fp32"). `n` is the row's
/// element count; rows and vectors may have any length and alignment. Quantized rows have
/// their own kernels (`Q8Rows`, `Q4Rows`).
public enum Dot {
    @inline(__always)
    @inlinable public static func f32(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            a0 = multiplyAdd(w.load(unalignedAt: 4 * i, as: SIMD16<Float>.self), xr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self), a0)
            a1 = multiplyAdd(w.load(unalignedAt: 4 * i + 64, as: SIMD16<Float>.self), xr.load(unalignedAt: 4 * i + 64, as: SIMD16<Float>.self), a1)
            i += 32
        }
        if i + 16 <= n {
            a0 = multiplyAdd(w.load(unalignedAt: 4 * i, as: SIMD16<Float>.self), xr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self), a0)
            i += 16
        }
        var s = horizontalSum(a0 + a1)
        while i < n { s += Float(bitPattern: UInt32(littleEndian: w.load(unalignedAt: 4 * i, as: UInt32.self))) * x[i]; i += 1 }
        return s
    }

    @inline(__always)
    @inlinable public static func bf16(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        halfWidth(w, x, n, widen: VectorMath.bf16ToFloat, widenOne: HalfFloat.bf16ToFloat)
    }

    @inline(__always)
    @inlinable public static func f16(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        halfWidth(w, x, n, widen: VectorMath.f16ToFloat, widenOne: HalfFloat.f16ToFloat)
    }

    /// A row of 16-bit floats (bf16 or f16: `widen` turns 8 codes into fp32, `widenOne` the
    /// tail's single codes) · x, 16 elements per step on two accumulators.
    @inline(__always)
    @inlinable static func halfWidth(_ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int,
                                     widen: (SIMD8<UInt16>) -> SIMD8<Float>, widenOne: (UInt16) -> Float) -> Float {
        let xr = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let h0 = w.load(unalignedAt: 2 * i, as: SIMD8<UInt16>.self)
            let h1 = w.load(unalignedAt: 2 * i + 16, as: SIMD8<UInt16>.self)
            a0 = multiplyAdd(widen(h0), xr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self), a0)
            a1 = multiplyAdd(widen(h1), xr.load(unalignedAt: 4 * i + 32, as: SIMD8<Float>.self), a1)
            i += 16
        }
        if i + 8 <= n {
            a0 = multiplyAdd(widen(w.load(unalignedAt: 2 * i, as: SIMD8<UInt16>.self)), xr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self), a0)
            i += 8
        }
        var s = horizontalSum(a0 + a1)
        while i < n { s += widenOne(UInt16(littleEndian: w.load(unalignedAt: 2 * i, as: UInt16.self))) * x[i]; i += 1 }
        return s
    }

    /// Eight int8 codes (as raw bytes) → fp32 exactly: q ^ 0x80 = q + 128 zero-extended, then
    /// −128 (natural-order row decoding; the product kernels avoid this widening).
    @inline(__always)
    @inlinable public static func int8ToFloat(_ bytes: SIMD8<UInt8>) -> SIMD8<Float> {
        SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: bytes ^ 0x80)) - 128
    }

    @inline(__always)
    @inlinable public static func nibbleToFloat(_ v: SIMD8<UInt8>) -> SIMD8<Float> {
        SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: v))
    }
}
