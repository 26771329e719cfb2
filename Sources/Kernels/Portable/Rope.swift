import HymbaKernels
import Foundation

/// Rotary position embedding, rotate-half form (MODEL.md 2a), at packed positions.
public enum Rope {
    /// `1 / base^(2j/dk)` for j = 0 … dk/2−1, computed in fp32 as the reference does
    /// (`1.0 / (base ** (arange(0, dk, 2).float() / dk))`).
    @inline(__always)
    @inlinable public static func inverseFrequencies(base: Double, headDim dk: Int) -> [Float] {
        (0..<(dk / 2)).map { j in 1 / Foundation.pow(Float(base), Float(2 * j) / Float(dk)) }
    }

    /// cos θ_j and sin θ_j for θ_j = p·invFreq[j] (the product rounded to fp32, as the reference).
    @inline(__always)
    @inlinable public static func angles(position p: Int, invFreq: UnsafePointer<Float>, half: Int,
                               cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>) {
        let fp = Float(p)
        for j in 0..<half {
            let theta = fp * invFreq[j]
            c[j] = Foundation.cos(theta)
            s[j] = Foundation.sin(theta)
        }
    }

    /// Rotates `heads` consecutive heads of `dk` values in place:
    /// (x_j, x_{j+dk/2}) → (x_j cosθ_j − x_{j+dk/2} sinθ_j, x_{j+dk/2} cosθ_j + x_j sinθ_j).
    @inline(__always)
    @inlinable public static func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim dk: Int,
                              cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>) {
        let half = dk / 2
        for h in 0..<heads {
            let a = x + h * dk, b = a + half
            var j = 0
            let ar = UnsafeMutableRawPointer(a), br = UnsafeMutableRawPointer(b)
            let cr = UnsafeRawPointer(c), sr = UnsafeRawPointer(s)
            while j + 8 <= half {
                let x1 = ar.load(unalignedAt: 4 * j, as: SIMD8<Float>.self)
                let x2 = br.load(unalignedAt: 4 * j, as: SIMD8<Float>.self)
                let cv = cr.load(unalignedAt: 4 * j, as: SIMD8<Float>.self)
                let sv = sr.load(unalignedAt: 4 * j, as: SIMD8<Float>.self)
                ar.storeBytes(of: x1 * cv - x2 * sv, toByteOffset: 4 * j, as: SIMD8<Float>.self)
                br.storeBytes(of: x2 * cv + x1 * sv, toByteOffset: 4 * j, as: SIMD8<Float>.self)
                j += 8
            }
            while j < half {
                let x1 = a[j], x2 = b[j]
                a[j] = x1 * c[j] - x2 * s[j]
                b[j] = x2 * c[j] + x1 * s[j]
                j += 1
            }
        }
    }
}
