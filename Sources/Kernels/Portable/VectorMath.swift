import HymbaKernels
/// Elementwise building blocks on SIMD vectors shared by the kernels: bit-exact half-float
/// widening, and vectorized `exp`, `log`, `softplus` and SiLU. All fp32.
public enum VectorMath {
    /// binary16 → binary32 for 8 lanes, exact for every input (normals, subnormals, ±0, inf,
    /// NaN). The 15 non-sign bits shifted into a float's position give value·2⁻¹¹² for normal
    /// and subnormal halves alike, so one multiply by 2¹¹² rescales both. Integer operations only
    /// otherwise: lane masks and `replace(with:where:)` are not vectorized by the compiler and
    /// made this 17× slower.
    @inline(__always)
    @inlinable public static func f16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        let u = SIMD8<UInt32>(truncatingIfNeeded: h)
        let sign = (u & 0x8000) &<< 16
        let magnitude = u & 0x7FFF
        // Exponent 31 (inf/NaN): bit 15 of magnitude + 0x400 is set exactly then; it becomes an
        // extra 0x3800_0000 (bits 27–29) moving the float exponent from 143 to 255.
        let e31 = (magnitude &+ 0x0400) & 0x8000
        let adjust = (e31 &<< 12) | (e31 &<< 13) | (e31 &<< 14)
        let f = unsafeBitCast(magnitude &<< 13, to: SIMD8<Float>.self) * Float(bitPattern: 0x7780_0000) // 2^112
        return unsafeBitCast((unsafeBitCast(f, to: SIMD8<UInt32>.self) &+ adjust) | sign, to: SIMD8<Float>.self)
    }

    /// The same widening for 16 lanes whose low 16 bits hold binary16 bits (high bits zero);
    /// no lane-width conversion, so it stays in vector registers throughout.
    @inline(__always)
    @inlinable public static func f16BitsToFloat(_ u: SIMD16<UInt32>) -> SIMD16<Float> {
        let sign = (u & 0x8000) &<< 16
        let magnitude = u & 0x7FFF
        let e31 = (magnitude &+ 0x0400) & 0x8000
        let adjust = (e31 &<< 12) | (e31 &<< 13) | (e31 &<< 14)
        let f = unsafeBitCast(magnitude &<< 13, to: SIMD16<Float>.self) * Float(bitPattern: 0x7780_0000) // 2^112
        return unsafeBitCast((unsafeBitCast(f, to: SIMD16<UInt32>.self) &+ adjust) | sign, to: SIMD16<Float>.self)
    }

    /// bfloat16 → binary32 for 8 lanes (exact: bf16 is the upper half of a binary32).
    @inline(__always)
    @inlinable public static func bf16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }

    /// 8 lanes: comparisons and `replace(with:where:)` on 16-lane vectors compile to loops over
    /// the lanes, on 8-lane ones to vector compares and blends.
    ///
    /// exp(x) (Cephes `expf` scheme: x = n·ln2 + r, |r| ≤ ln2/2, degree-6
    /// polynomial, scale by 2ⁿ through the exponent bits); within 2 ulp of the correctly rounded
    /// result for x in [−87.3, 88]. Inputs are clamped to that range, so exp(−∞) gives
    /// 1.2e−38 rather than 0, harmless wherever it is used here (scan decay, SiLU, softmax).
    @inline(__always)
    @inlinable public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var v = x
        v.replace(with: 88, where: v .> 88)
        v.replace(with: -87.33654, where: v .< -87.33654)
        // Round v·log2(e) to the nearest integer with the 1.5·2²³ trick; the low mantissa bits
        // of `k` then hold that integer in two's complement.
        let magic: Float = 12_582_912
        let k = v * 1.442_695_04 + magic
        let n = k - magic
        let r = v - n * 0.693_359_375 + n * 2.121_944_4e-4
        let z = r * r
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_9e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 1.666_666_5e-1
        p = p * r + 5.000_000_1e-1
        let y = p * z + r + 1
        let ni = unsafeBitCast(k, to: SIMD8<UInt32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: SIMD8<Float>.self)
        return y * scale
    }

    /// f applied to the two 8-lane halves of x (the 16-lane functions' portable form,
    /// `PortableVectors`).
    @inline(__always)
    @inlinable public static func inHalves(_ x: SIMD16<Float>, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> SIMD16<Float> {
        let (lo, hi) = unsafeBitCast(x, to: (SIMD8<Float>, SIMD8<Float>).self)
        return unsafeBitCast((f(lo), f(hi)), to: SIMD16<Float>.self)
    }

    /// ln(x) for 8 lanes for finite x > 0 (Cephes `logf`: x = m·2^e with m in [√½, √2),
    /// degree-8 polynomial in m − 1); within 2 ulp.
    @inline(__always)
    @inlinable public static func log(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        // m in [0.5, 1) from the mantissa, e the unbiased exponent + 1.
        var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: SIMD8<Float>.self)
        let exponent = unsafeBitCast(((bits &>> 23) & 0xFF) | 0x4B00_0000, to: SIMD8<Float>.self) - 8_388_608 - 126
        // Below √½, use 2m and e − 1, so that m − 1 lies in [−0.29, 0.41].
        let low = m .< 0.707_106_78
        var e = exponent
        e.replace(with: exponent - 1, where: low)
        m.replace(with: m + m, where: low)
        let f = m - 1
        let z = f * f
        var p = SIMD8<Float>(repeating: 7.037_683_6e-2)
        p = p * f - 1.151_461_0e-1
        p = p * f + 1.167_699_9e-1
        p = p * f - 1.242_014_1e-1
        p = p * f + 1.424_932_3e-1
        p = p * f - 1.666_805_8e-1
        p = p * f + 2.000_071_5e-1
        p = p * f - 2.499_999_4e-1
        p = p * f + 3.333_333_1e-1
        var y = p * f * z
        y = y + e * -2.121_944_4e-4
        y = y - z * 0.5
        return f + y + e * 0.693_359_375
    }

    /// softplus(x) = ln(1 + eˣ) for 8 lanes, as max(x, 0) + ln(1 + e^−|x|): no overflow for
    /// large x, and ln(1 + y) evaluated as ln(u)·y/(u − 1) with u = 1 + y (exact to rounding
    /// even when y is tiny and u rounds to 1, where the result is y itself).
    @inline(__always)
    @inlinable public static func softplus(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var negAbs = x
        negAbs.replace(with: -x, where: x .> 0)
        let y = exp(negAbs)
        let u = 1 + y
        let d = u - 1
        var l = log(u) * (y / d)
        l.replace(with: y, where: d .== 0)
        var positive = x
        positive.replace(with: 0, where: x .< 0)
        return positive + l
    }

    /// SiLU(x) = x·sigmoid(x) for 8 lanes.
    @inline(__always)
    @inlinable public static func silu(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x / (1 + exp(-x))
    }

}

extension VectorMath {
    /// out[i] = f(x[i]) 16 lanes at a time (n a multiple of 16): a 16-lane function over an array.
    @inlinable @inline(__always)
    public static func map16(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int,
                             _ f: (SIMD16<Float>) -> SIMD16<Float>) {
        precondition(n % 16 == 0, "\(n) is not a multiple of 16")
        let xr = UnsafeRawPointer(x), o = UnsafeMutableRawPointer(out)
        for i in stride(from: 0, to: n, by: 16) {
            o.storeBytes(of: f(xr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self)), toByteOffset: 4 * i, as: SIMD16<Float>.self)
        }
    }
}
