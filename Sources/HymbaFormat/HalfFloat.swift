/// Conversions between binary32 and the 16-bit float encodings, bit-exact and portable
/// (no dependence on the host's `Float16` support).
public enum HalfFloat {
    /// bfloat16 bits to Float: exact.
    @inlinable @inline(__always)
    public static func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Float to bfloat16 bits, round-to-nearest-even; NaN stays NaN.
    @inlinable @inline(__always)
    public static func floatToBF16(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        let rounding = 0x7FFF + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }

    /// IEEE binary16 bits to Float: exact (subnormals, infinities and NaN included).
    @inlinable @inline(__always)
    public static func f16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // Subnormal: value = mant · 2^-24.
            let v = Float(mant) * Float(bitPattern: 0x3380_0000) // 2^-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// Float to IEEE binary16 bits, round-to-nearest-even, overflow to infinity.
    @inlinable @inline(__always)
    public static func floatToF16(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        let sign = UInt16((u >> 16) & 0x8000)
        let absU = u & 0x7FFF_FFFF
        if absU >= 0x7F80_0000 { // Inf or NaN
            return sign | 0x7C00 | (absU > 0x7F80_0000 ? 0x200 : 0)
        }
        if absU >= 0x4780_0000 { // >= 65536: overflow (65520 and up rounds to inf)
            return sign | 0x7C00
        }
        if absU < 0x3880_0000 { // below 2^-14: subnormal or zero
            // Round absU as a multiple of 2^-24 using float arithmetic (exact RNE).
            let v = Float(bitPattern: absU) * Float(bitPattern: 0x4B80_0000) // * 2^24
            let r = v.rounded(.toNearestOrEven)
            return sign | UInt16(r)
        }
        // Normal: rebias exponent, round mantissa to 10 bits (RNE); carry may bump exponent.
        var e = absU &- 0x3800_0000 // exponent - 112
        e = e &+ 0xFFF &+ ((e >> 13) & 1)
        let h = e >> 13
        return sign | UInt16(truncatingIfNeeded: h >= 0x7C00 ? 0x7C00 : h)
    }
}
