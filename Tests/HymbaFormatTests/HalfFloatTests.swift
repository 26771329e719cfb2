import Testing
import HymbaFormat

/// binary16 and bfloat16 conversions: exhaustive where the space is 16 bits, and the IEEE
/// rounding rules (nearest, ties to even, overflow to infinity, subnormals) at their edges.
@Suite struct HalfFloatTests {
    // MARK: binary16

    @Test func f16ToFloatToF16IsIdentityForEveryNonNaNPattern() {
        var failures = 0
        for bits in 0...UInt16.max {
            let f = HalfFloat.f16ToFloat(bits)
            let isNaN = (bits & 0x7C00) == 0x7C00 && (bits & 0x03FF) != 0
            if isNaN {
                if !f.isNaN || !HalfFloat.f16ToFloat(HalfFloat.floatToF16(f)).isNaN { failures += 1 }
            } else if HalfFloat.floatToF16(f) != bits {
                failures += 1
            }
        }
        #expect(failures == 0)
    }

    @Test func f16ToFloatDecodesTheFieldsExactly() {
        // value = (−1)^s · 2^(e−15) · (1 + m/1024), subnormals 2^−14 · m/1024.
        for bits in 0...UInt16.max where (bits & 0x7C00) != 0x7C00 {
            let sign: Double = bits & 0x8000 != 0 ? -1 : 1
            let e = Int((bits >> 10) & 0x1F), m = Double(bits & 0x3FF)
            let expected = e == 0 ? sign * m / 1024 * 0x1p-14 : sign * (1 + m / 1024) * Double(sign: .plus, exponent: e - 15, significand: 1)
            #expect(Double(HalfFloat.f16ToFloat(bits)) == expected, "bits \(String(bits, radix: 16))")
        }
        #expect(HalfFloat.f16ToFloat(0x7C00) == .infinity)
        #expect(HalfFloat.f16ToFloat(0xFC00) == -.infinity)
        #expect(HalfFloat.f16ToFloat(0x8000).sign == .minus)
    }

    @Test func floatToF16RoundsHalfwayCasesToEven() {
        // Between every two adjacent finite binary16 values of one sign, the midpoint (exact
        // in binary32) goes to the one with an even significand; anything off the midpoint
        // goes to the nearer one.
        var failures = 0
        for lower in UInt16(0)..<0x7BFF {
            let upper = lower + 1
            for sign: UInt16 in [0, 0x8000] {
                let a = HalfFloat.f16ToFloat(lower | sign), b = HalfFloat.f16ToFloat(upper | sign)
                let mid = (a + b) / 2
                let even = (lower & 1) == 0 ? lower : upper
                if HalfFloat.floatToF16(mid) != even | sign { failures += 1 }
                let towardLower = sign == 0 ? mid.nextDown : mid.nextUp
                let towardUpper = sign == 0 ? mid.nextUp : mid.nextDown
                if HalfFloat.floatToF16(towardLower) != lower | sign { failures += 1 }
                if HalfFloat.floatToF16(towardUpper) != upper | sign { failures += 1 }
            }
        }
        #expect(failures == 0)
    }

    @Test func floatToF16OverflowsToInfinity() {
        #expect(HalfFloat.floatToF16(65504) == 0x7BFF)
        #expect(HalfFloat.floatToF16(Float(65520).nextDown) == 0x7BFF) // below the midpoint to 2^16
        #expect(HalfFloat.floatToF16(65520) == 0x7C00) // the midpoint: ties to even = infinity
        #expect(HalfFloat.floatToF16(65536) == 0x7C00)
        #expect(HalfFloat.floatToF16(1e10) == 0x7C00)
        #expect(HalfFloat.floatToF16(-1e10) == 0xFC00)
        #expect(HalfFloat.floatToF16(.greatestFiniteMagnitude) == 0x7C00)
        #expect(HalfFloat.floatToF16(.infinity) == 0x7C00)
        #expect(HalfFloat.floatToF16(-.infinity) == 0xFC00)
        let nan = HalfFloat.floatToF16(.nan)
        #expect(nan & 0x7C00 == 0x7C00 && nan & 0x03FF != 0)
        // A NaN whose payload lives only in the low bits must not turn into infinity.
        let lowPayload = HalfFloat.floatToF16(Float(bitPattern: 0x7F80_0001))
        #expect(lowPayload & 0x7C00 == 0x7C00 && lowPayload & 0x03FF != 0)
    }

    @Test func floatToF16HandlesSubnormalsAndUnderflow() {
        let tiny: Float = 0x1p-24 // smallest binary16 subnormal
        #expect(HalfFloat.floatToF16(tiny) == 0x0001)
        #expect(HalfFloat.floatToF16(-tiny) == 0x8001)
        #expect(HalfFloat.floatToF16(tiny / 2) == 0x0000) // tie: to even (zero)
        #expect(HalfFloat.floatToF16((tiny / 2).nextUp) == 0x0001)
        #expect(HalfFloat.floatToF16(-tiny / 2) == 0x8000) // keeps the sign
        #expect(HalfFloat.floatToF16(tiny * 1.5) == 0x0002) // tie between 1 and 2: even
        #expect(HalfFloat.floatToF16(tiny * 2.5) == 0x0002) // tie between 2 and 3: even
        #expect(HalfFloat.floatToF16(0x1p-14 - tiny / 2) == 0x0400) // rounds up into the normals
        #expect(HalfFloat.floatToF16(0x1p-14 - tiny) == 0x03FF) // largest subnormal
        #expect(HalfFloat.floatToF16(1e-30) == 0x0000)
        #expect(HalfFloat.floatToF16(Float.leastNonzeroMagnitude) == 0x0000)
        #expect(HalfFloat.floatToF16(-0.0) == 0x8000)
    }

    @Test func floatToF16MatchesTheReferenceRoundingOnRandomFloats() {
        // Reference: round the exact binary32 value to the nearest binary16 in Double
        // arithmetic (exact: both formats embed in binary64), ties to even.
        var rng = TestRandom(seed: 7)
        var failures = 0
        for _ in 0..<200_000 {
            // Exponents around the binary16 range, including subnormals and overflow.
            let e = Int(rng.next() % 50) - 30
            let x = Float(sign: rng.next() & 1 == 0 ? .plus : .minus, exponent: e,
                          significand: 1 + Float(rng.next() >> 41) / Float(1 << 23))
            if HalfFloat.floatToF16(x) != referenceF16(x) { failures += 1 }
        }
        #expect(failures == 0)
    }

    /// Nearest binary16 by search over the candidates around `x` (slow, obviously correct).
    private func referenceF16(_ x: Float) -> UInt16 {
        let sign: UInt16 = x.sign == .minus ? 0x8000 : 0
        let a = Double(x.magnitude)
        if a >= 65520 { return sign | 0x7C00 }
        // Largest binary16 magnitude ≤ a, by binary search over the ordered bit patterns.
        var lo: UInt16 = 0, hi: UInt16 = 0x7BFF
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if Double(HalfFloat.f16ToFloat(mid)) <= a { lo = mid } else { hi = mid - 1 }
        }
        let below = Double(HalfFloat.f16ToFloat(lo))
        if below == a || lo == 0x7BFF { return sign | lo }
        let above = Double(HalfFloat.f16ToFloat(lo + 1))
        if a - below < above - a { return sign | lo }
        if a - below > above - a { return sign | (lo + 1) }
        return sign | ((lo & 1) == 0 ? lo : lo + 1)
    }

    // MARK: bfloat16

    @Test func bf16RoundTripIsIdentityForEveryNonNaNPattern() {
        var failures = 0
        for bits in 0...UInt16.max {
            let f = HalfFloat.bf16ToFloat(bits)
            if f.bitPattern != UInt32(bits) << 16 { failures += 1 }
            let isNaN = (bits & 0x7F80) == 0x7F80 && (bits & 0x007F) != 0
            if isNaN {
                if !HalfFloat.bf16ToFloat(HalfFloat.floatToBF16(f)).isNaN { failures += 1 }
            } else if HalfFloat.floatToBF16(f) != bits {
                failures += 1
            }
        }
        #expect(failures == 0)
    }

    @Test func floatToBF16RoundsToNearestEven() {
        var failures = 0
        var rng = TestRandom(seed: 11)
        for _ in 0..<100_000 {
            let hi = UInt32(rng.next() % 0x7F7F) // finite, below the largest bfloat16
            let sign: UInt32 = rng.next() & 1 == 0 ? 0 : 0x8000_0000
            let base = sign | hi << 16
            let mid = base | 0x8000 // exactly halfway to the next bfloat16
            let even = (hi & 1) == 0 ? hi : hi + 1
            if HalfFloat.floatToBF16(Float(bitPattern: mid)) != UInt16(truncatingIfNeeded: (sign >> 16) | even) { failures += 1 }
            if HalfFloat.floatToBF16(Float(bitPattern: mid - 1)) != UInt16(truncatingIfNeeded: (sign >> 16) | hi) { failures += 1 }
            if HalfFloat.floatToBF16(Float(bitPattern: mid + 1)) != UInt16(truncatingIfNeeded: (sign >> 16) | (hi + 1)) { failures += 1 }
        }
        #expect(failures == 0)
        #expect(HalfFloat.floatToBF16(.greatestFiniteMagnitude) == 0x7F80) // rounds up to infinity
        #expect(HalfFloat.floatToBF16(-.infinity) == 0xFF80)
        #expect(HalfFloat.bf16ToFloat(HalfFloat.floatToBF16(Float(bitPattern: 0x7F80_0001))).isNaN)
        #expect(HalfFloat.bf16ToFloat(HalfFloat.floatToBF16(Float(bitPattern: 0xFFFF_FFFF))).isNaN)
        #expect(HalfFloat.floatToBF16(Float(bitPattern: 0x0000_8000)) == 0x0000) // subnormal tie to even
        #expect(HalfFloat.floatToBF16(Float(bitPattern: 0x0001_8000)) == 0x0002)
    }
}
