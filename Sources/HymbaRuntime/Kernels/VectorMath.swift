/// Elementwise building blocks on SIMD vectors shared by the kernels: bit-exact half-float
/// widening and a vectorized `exp`. All fp32.
package enum VectorMath {
    /// binary16 → binary32 for 8 lanes, exact for every input (normals, subnormals, ±0, inf,
    /// NaN). The 15 non-sign bits shifted into a float's position give value·2⁻¹¹² for normal
    /// and subnormal halves alike, so one multiply by 2¹¹² rescales both. Integer operations only
    /// otherwise: lane masks and `replace(with:where:)` are not vectorized by the compiler and
    /// made this 17× slower.
    @inline(__always)
    package static func f16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
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
    package static func f16BitsToFloat(_ u: SIMD16<UInt32>) -> SIMD16<Float> {
        let sign = (u & 0x8000) &<< 16
        let magnitude = u & 0x7FFF
        let e31 = (magnitude &+ 0x0400) & 0x8000
        let adjust = (e31 &<< 12) | (e31 &<< 13) | (e31 &<< 14)
        let f = unsafeBitCast(magnitude &<< 13, to: SIMD16<Float>.self) * Float(bitPattern: 0x7780_0000) // 2^112
        return unsafeBitCast((unsafeBitCast(f, to: SIMD16<UInt32>.self) &+ adjust) | sign, to: SIMD16<Float>.self)
    }

    /// bfloat16 → binary32 for 8 lanes (exact: bf16 is the upper half of a binary32).
    @inline(__always)
    package static func bf16ToFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }

    /// exp(x) for 8 lanes (Cephes `expf` scheme: x = n·ln2 + r, |r| ≤ ln2/2, degree-6
    /// polynomial, scale by 2ⁿ through the exponent bits); within 2 ulp of the correctly rounded
    /// result for x in [−87.3, 88]. Inputs are clamped to that range, so exp(−∞) gives
    /// 1.2e−38 rather than 0, harmless wherever it is used here (scan decay, SiLU, softmax).
    @inline(__always)
    package static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
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

    /// SiLU(x) = x·sigmoid(x) for 8 lanes.
    @inline(__always)
    package static func silu(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x / (1 + exp(-x))
    }
}
