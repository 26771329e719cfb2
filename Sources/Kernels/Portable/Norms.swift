import HymbaKernels
import Foundation

/// RMSNorm and the elementwise activations (MODEL.md, "Symbols": RMSNorm, SiLU, softplus).
public enum Norms {
    /// Σ x[i]² over n elements.
    @inline(__always)
    @inlinable public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let raw = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let v0 = raw.load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            let v1 = raw.load(unalignedAt: 4 * i + 32, as: SIMD8<Float>.self)
            a0 += v0 * v0
            a1 += v1 * v1
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < n { s += x[i] * x[i]; i += 1 }
        return s
    }

    /// out = w ⊙ x / sqrt(mean(x²) + eps). `out` may be `x` (in place).
    @inline(__always)
    @inlinable public static func rmsNorm(_ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, count n: Int, eps: Float,
                                out: UnsafeMutablePointer<Float>) {
        let inv = 1 / (sumOfSquares(x, n) / Float(n) + eps).squareRoot()
        let xr = UnsafeRawPointer(x), wr = UnsafeRawPointer(w), o = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 8 <= n {
            let v = xr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self) * inv
            o.storeBytes(of: wr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self) * v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { out[i] = w[i] * (x[i] * inv); i += 1 }
    }

    /// x[i] = SiLU(x[i]) · y[i] (the MLP's gate, MODEL.md 2c).
    @inline(__always)
    @inlinable public static func siluMul<V: VectorUnit>(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int, vectors: V.Type) {
        let xr = UnsafeMutableRawPointer(x), yr = UnsafeRawPointer(y)
        var i = 0
        // 16 lanes (one AVX-512 exp on that backend), then 8, then one at a time: the
        // 16-lane SiLU has the 8-lane one's bits, so results depend only on n mod 8, as before.
        while i + 16 <= n {
            let v = xr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self)
            let m = yr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self)
            xr.storeBytes(of: V.silu(v) * m, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i + 8 <= n {
            let v = xr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            let m = yr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            xr.storeBytes(of: VectorMath.silu(v) * m, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { x[i] = silu(x[i]) * y[i]; i += 1 }
    }

    /// x[i] = SiLU(x[i]).
    @inline(__always)
    @inlinable public static func siluInPlace<V: VectorUnit>(_ x: UnsafeMutablePointer<Float>, _ n: Int, vectors: V.Type) {
        let xr = UnsafeMutableRawPointer(x)
        var i = 0
        while i + 16 <= n {  // 16, 8, then 1 lane at a time, as `siluMul`
            let v = xr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self)
            xr.storeBytes(of: V.silu(v), toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i + 8 <= n {
            let v = xr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            xr.storeBytes(of: VectorMath.silu(v), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { x[i] = silu(x[i]); i += 1 }
    }

    /// x[i] = softplus(x[i] + bias[i]) (Δ of MODEL.md 2b). Like torch, softplus(v) = v above 20.
    @inline(__always)
    @inlinable public static func softplusBias<V: VectorUnit>(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, _ n: Int, vectors: V.Type) {
        let xr = UnsafeMutableRawPointer(x), br = UnsafeRawPointer(bias)
        var i = 0
        while i + 16 <= n {  // 16, 8, then 1 lane at a time: the 16-lane softplus has the 8-lane bits
            let v = xr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self) + br.load(unalignedAt: 4 * i, as: SIMD16<Float>.self)
            xr.storeBytes(of: V.softplus(v), toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i + 8 <= n {
            let v = xr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self) + br.load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            xr.storeBytes(of: VectorMath.softplus(v), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { x[i] = softplus(x[i] + bias[i]); i += 1 }
    }

    @inline(__always)
    @inlinable public static func silu(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) }

    @inline(__always)
    @inlinable public static func softplus(_ x: Float) -> Float { x > 20 ? x : Foundation.log1p(Foundation.exp(x)) }

    /// y[i] += x[i].
    @inline(__always)
    @inlinable public static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        let yr = UnsafeMutableRawPointer(y), xr = UnsafeRawPointer(x)
        var i = 0
        while i + 8 <= n {
            let s = yr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self) + xr.load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            yr.storeBytes(of: s, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += x[i]; i += 1 }
    }
}
