import Testing
import HymbaTestSupport
import HymbaFormat

/// Encode/decode helpers over arrays.
enum Codec {
    static func encode(_ type: StorageType, _ x: [Float]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xAA, count: type.rowBytes(length: x.count)) // not zero: padding must be written
        x.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { StorageCodec.encodeRow(type: type, src.baseAddress!, length: x.count, into: $0.baseAddress!) }
        }
        return bytes
    }

    static func decode(_ type: StorageType, _ bytes: [UInt8], length: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: length + 1) // one guard element past the row
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { StorageCodec.decodeRow(type: type, raw.baseAddress!, length: length, into: $0.baseAddress!) }
        }
        #expect(out[length].isNaN, "decoder wrote past the row")
        return Array(out[0..<length])
    }
}

extension TestRandom {
    /// Approximately N(0, 1) (sum of 12 uniforms, standardized).
    mutating func normal() -> Float {
        var s: Float = 0
        for _ in 0..<6 { s += float() }
        return s * 1.4142135 // 6 uniforms on [−1, 1): variance 6/3 = 2
    }

    /// A row like a trained weight row: Gaussian with a few large outliers.
    mutating func weightRow(_ n: Int, scale: Float = 0.02) -> [Float] {
        (0..<n).map { _ in
            let v = normal() * scale
            return next() % 200 == 0 ? v * 5 : v
        }
    }
}

@Suite struct StorageRoundTripTests {
    static let lengths = [1, 31, 33, 100, 511, 513, 1600]

    @Test(arguments: lengths) func f32IsBitExact(length n: Int) {
        var rng = TestRandom(seed: UInt64(n))
        var x = (0..<n).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) } // any bits, NaNs included
        let specials: [Float] = [-0.0, .infinity, -.infinity, .leastNonzeroMagnitude, Float(bitPattern: 0x7FA0_0001)]
        for (i, v) in specials.enumerated() where i < n { x[i] = v }
        let bytes = Codec.encode(.f32, x)
        #expect(bytes.count == 4 * n)
        let y = Codec.decode(.f32, bytes, length: n)
        #expect(y.map(\.bitPattern) == x.map(\.bitPattern))
        // Little-endian bytes.
        #expect(bytes[0] == UInt8(x[0].bitPattern & 0xFF) && bytes[3] == UInt8(x[0].bitPattern >> 24))
    }

    @Test(arguments: lengths) func bf16IsExactForRepresentableValuesAndRoundsTheRest(length n: Int) {
        var rng = TestRandom(seed: 100 + UInt64(n))
        let representable = (0..<n).map { _ in HalfFloat.bf16ToFloat(UInt16(truncatingIfNeeded: rng.next()) & 0x7F7F | 0x0100) }
        #expect(Codec.decode(.bf16, Codec.encode(.bf16, representable), length: n).map(\.bitPattern) == representable.map(\.bitPattern))
        let x = (0..<n).map { _ in rng.normal() * 3 }
        let y = Codec.decode(.bf16, Codec.encode(.bf16, x), length: n)
        for i in 0..<n {
            #expect(abs(y[i] - x[i]) <= abs(x[i]) * 0x1p-8, // half an ulp of an 8-bit significand
                     "element \(i): \(x[i]) -> \(y[i])")
            #expect(y[i] == HalfFloat.bf16ToFloat(HalfFloat.floatToBF16(x[i])))
        }
    }

    @Test(arguments: lengths) func f16IsExactForRepresentableValuesAndRoundsTheRest(length n: Int) {
        var rng = TestRandom(seed: 200 + UInt64(n))
        let representable = (0..<n).map { _ in HalfFloat.f16ToFloat(UInt16(truncatingIfNeeded: rng.next()) % 0x7C00 | (rng.next() & 1 == 0 ? 0 : 0x8000)) }
        #expect(Codec.decode(.f16, Codec.encode(.f16, representable), length: n).map(\.bitPattern) == representable.map(\.bitPattern))
        let x = (0..<n).map { _ in rng.normal() * 100 }
        let y = Codec.decode(.f16, Codec.encode(.f16, x), length: n)
        for i in 0..<n {
            // Half an ulp of binary16 (10 fraction bits); absolute 2^-25 below the normals.
            #expect(abs(y[i] - x[i]) <= max(abs(x[i]) * 0x1p-11, 0x1p-25), "element \(i): \(x[i]) -> \(y[i])")
        }
    }

    @Test(arguments: lengths) func q8ErrorIsAtMostHalfAStep(length n: Int) {
        var rng = TestRandom(seed: 300 + UInt64(n))
        var x = rng.weightRow(n)
        if n > 40 { for i in 32..<64 where i < n { x[i] = 0 } } // an all-zero block
        let bytes = Codec.encode(.q8, x)
        #expect(bytes.count == 34 * ((n + 31) / 32))
        let y = Codec.decode(.q8, bytes, length: n)
        for b in 0..<(n + 31) / 32 {
            let start = 32 * b, end = min(n, start + 32)
            let amax = x[start..<end].map { abs($0) }.max()!
            let dBits = UInt16(bytes[34 * b]) | UInt16(bytes[34 * b + 1]) << 8
            #expect(dBits == HalfFloat.floatToF16(amax / 127), "block \(b): d is f16(max|x|/127)")
            let d = HalfFloat.f16ToFloat(dBits)
            for i in start..<end {
                let q = Int8(bitPattern: bytes[34 * b + 2 + i - start])
                let expected: Float = d > 0 ? max(-127, min(127, (x[i] / d).rounded(.toNearestOrEven))) : 0
                #expect(Float(q) == expected, "element \(i): q = round_half_even(x/d)")
                #expect(abs(y[i] - x[i]) <= d / 2, "element \(i): \(x[i]) -> \(y[i]), d = \(d)")
                #expect(y[i] == d * Float(q))
            }
            for i in end..<(start + 32) { #expect(bytes[34 * b + 2 + i - start] == 0, "padding of block \(b) is zero") }
        }
    }

    @Test(arguments: lengths) func q4DecodesEncodeWithinBounds(length n: Int) {
        var rng = TestRandom(seed: 400 + UInt64(n))
        let x = rng.weightRow(n)
        let bytes = Codec.encode(.q4, x)
        #expect(bytes.count == Q4Layout.rowBytes(length: n))
        let y = Codec.decode(.q4, bytes, length: n)
        #expect(y.map(\.bitPattern) == Q4Reference.decode(bytes, length: n).map(\.bitPattern))
        // Every sub-block: no element further than one grid step of its own min/max grid
        // (range/15), and an RMSE below a third of that step. A wrong nibble, entry or
        // padding choice breaks these by far.
        // (plus the binary16 rounding of the super-scales). A sub-block holding one real
        // element has no range: its value is limited by the 6-bit min under dmin instead.
        for s in 0..<(n + 31) / 32 {
            let real = x[(32 * s)..<min(n, 32 * s + 32)]
            if real.count == 1 {
                let i = real.startIndex
                #expect(abs(y[i] - x[i]) <= abs(x[i]) * 5e-3, "lone element \(i): \(x[i]) -> \(y[i])")
                continue
            }
            let range = real.max()! - min(real.min()!, 0)
            var sq: Float = 0, worst: Float = 0, slack: Float = 0
            for i in real.indices {
                let e = abs(y[i] - x[i])
                sq += e * e
                worst = max(worst, e)
                slack = max(slack, abs(x[i]) * 1e-3)
            }
            #expect(worst <= range / 15 + slack, "sub-block \(s): max error \(worst), range \(range)")
            #expect((sq / Float(real.count)).squareRoot() <= range / 15 / 3 + slack, "sub-block \(s) RMSE")
        }
        // And clearly better than Q4_0 on the same row (where a row is long enough to compare).
        if n >= 500 {
            var cmp = Q4VersusQ4_0()
            cmp.add(row: x)
            #expect(cmp.ratio < 0.9, "q4/Q4_0 RMSE ratio \(cmp.ratio)")
        }
    }

    @Test func zeroAndConstantRows() {
        for n in [1, 33, 600] {
            #expect(Codec.decode(.q4, Codec.encode(.q4, [Float](repeating: 0, count: n)), length: n) == [Float](repeating: 0, count: n))
            #expect(Codec.decode(.q8, Codec.encode(.q8, [Float](repeating: 0, count: n)), length: n) == [Float](repeating: 0, count: n))
            // Only the binary16 super-scales and 6-bit entries limit a constant; for 1e-4 the
            // super-scale d ≈ 1e-4/15/63 is a binary16 subnormal with few significant bits.
            for (c, tolerance): (Float, Float) in [(0.37, 2e-3), (-2.5, 2e-3), (0.01, 2e-3), (-1e-4, 2e-3), (1e-4, 0.05)] {
                let y = Codec.decode(.q4, Codec.encode(.q4, [Float](repeating: c, count: n)), length: n)
                for v in y { #expect(abs(v - c) <= abs(c) * tolerance, "constant \(c), length \(n): got \(v)") }
            }
        }
    }

    @Test func encodingIsDeterministic() {
        var rng = TestRandom(seed: 5)
        let x = rng.weightRow(5504)
        #expect(Codec.encode(.q4, x) == Codec.encode(.q4, x))
        #expect(Codec.encode(.q8, x) == Codec.encode(.q8, x))
    }

    @Test func nonFiniteInputsDoNotTrapOrLeakIntoOtherGroups() {
        var rng = TestRandom(seed: 6)
        let clean = rng.weightRow(1024)
        for bad: Float in [.nan, .infinity, -.infinity, 3e38] {
            var x = clean
            x[7] = bad
            let y = Codec.decode(.q4, Codec.encode(.q4, x), length: x.count)
            // The second group (elements 512...) is encoded on its own.
            let yClean = Codec.decode(.q4, Codec.encode(.q4, clean), length: clean.count)
            #expect(Array(y[512...]) == Array(yClean[512...]))
            // q8 blocks are 32 elements with their own scale: every block but the first is
            // encoded as if the bad value were not there.
            let y8 = Codec.decode(.q8, Codec.encode(.q8, x), length: x.count)
            let y8Clean = Codec.decode(.q8, Codec.encode(.q8, clean), length: clean.count)
            #expect(Array(y8[32...]) == Array(y8Clean[32...]), "q8 with \(bad) at element 7")
        }
    }

    @Test func paddingDoesNotCountInTheSearch() {
        // A tight negative cluster alone in a row's last sub-block: counting the 29 padding
        // zeros would stretch its grid to [−3.1, 0] (step ≈ 0.2) and cost ≈ 0.05 per element.
        var rng = TestRandom(seed: 8)
        var x = rng.weightRow(32, scale: 1)
        x += [-3.1, -2.95, -2.9]
        let y = Codec.decode(.q4, Codec.encode(.q4, x), length: x.count)
        for i in 32..<35 { #expect(abs(y[i] - x[i]) <= 0.01, "element \(i): \(x[i]) -> \(y[i])") }
    }
}

/// The q4 decoder written directly from the layout text in `Q4Layout`, bit by bit.
enum Q4Reference {
    static func decode(_ bytes: [UInt8], length n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n)
        let subBlocks = (n + 31) / 32
        var offset = 0, sub = 0
        while sub < subBlocks {
            let k = min(16, subBlocks - sub)
            let d = HalfFloat.f16ToFloat(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            let dmin = HalfFloat.f16ToFloat(UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8)
            let entries = offset + 4
            let codes = entries + (12 * k + 7) / 8
            for j in 0..<k {
                var entry = 0
                for bit in 0..<12 {
                    let b = 12 * j + bit
                    entry |= Int((bytes[entries + b / 8] >> (b % 8)) & 1) << bit
                }
                let sc = Float(entry & 63), mn = Float(entry >> 6)
                for e in 0..<32 where 32 * (sub + j) + e < n {
                    let byte = bytes[codes + 16 * j + e % 16]
                    let q = e < 16 ? byte & 0x0F : byte >> 4
                    out[32 * (sub + j) + e] = (d * sc) * Float(q) - dmin * mn
                }
            }
            offset = codes + 16 * k
            sub += k
        }
        #expect(offset == bytes.count, "groups cover the row's bytes exactly")
        return out
    }
}

@Suite struct Q4LayoutTests {
    @Test func rowBytesFollowTheGroupRule() {
        // groups of 16 sub-blocks: 4 + 24 + 256 = 284 bytes; a last group of k: 4 + ⌈12k/8⌉ + 16k.
        let cases: [(Int, Int)] = [
            (1, 4 + 2 + 16), (32, 22), (33, 4 + 3 + 32), (100, 4 + 6 + 64), (132, 4 + 8 + 80),
            (512, 284), (513, 284 + 22), (1600, 3 * 284 + (4 + 3 + 32)), (3200, 6 * 284 + (4 + 6 + 64)),
            (5504, 10 * 284 + (4 + 18 + 192)), (8960, 17 * 284 + (4 + 12 + 128)),
        ]
        for (n, bytes) in cases { #expect(Q4Layout.rowBytes(length: n) == bytes, "length \(n)") }
        #expect(Q4Layout.rowBytes(length: 1600) == 891) // as in formats/HYMBA-FORMAT.md
    }

    @Test func entryBitLayout() {
        var b = [UInt8](repeating: 0, count: 3)
        b.withUnsafeMutableBytes { Q4Layout.setEntry($0.baseAddress!, 0, sc: 0x3F, mn: 0) }
        #expect(b == [0x3F, 0x00, 0x00])
        b.withUnsafeMutableBytes { Q4Layout.setEntry($0.baseAddress!, 1, sc: 1, mn: 0x20) }
        #expect(b == [0x3F, 0x10, 0x80]) // 0x801 at bits 12...23
        b.withUnsafeMutableBytes { Q4Layout.setEntry($0.baseAddress!, 0, sc: 0x2A, mn: 0x3F) }
        #expect(b == [0xEA, 0x1F, 0x80]) // 0xFEA at bits 0...11, entry 1 untouched
    }

    @Test(arguments: 1...16) func entriesRoundTripAtEveryPosition(subBlocks k: Int) {
        var rng = TestRandom(seed: UInt64(k))
        let count = Q4Layout.scaleBytes(subBlocks: k)
        var bytes = [UInt8](repeating: 0, count: count)
        var values = (0..<k).map { _ in (UInt8(rng.next() % 64), UInt8(rng.next() % 64)) }
        bytes.withUnsafeMutableBytes { p in for (j, v) in values.enumerated() { Q4Layout.setEntry(p.baseAddress!, j, sc: v.0, mn: v.1) } }
        // Rewrite in a scrambled order: each store touches only its own 12 bits.
        for j in (0..<k).reversed() where j % 3 != 1 {
            values[j] = (UInt8(rng.next() % 64), UInt8(rng.next() % 64))
            bytes.withUnsafeMutableBytes { Q4Layout.setEntry($0.baseAddress!, j, sc: values[j].0, mn: values[j].1) }
        }
        for j in 0..<k {
            let got = bytes.withUnsafeBytes { Q4Layout.entry($0.baseAddress!, j) }
            #expect(got.sc == values[j].0 && got.mn == values[j].1, "entry \(j) of \(k)")
            var bits = 0 // the same entry read bit by bit
            for i in 0..<12 { bits |= Int((bytes[(12 * j + i) / 8] >> ((12 * j + i) % 8)) & 1) << i }
            #expect(bits == Int(values[j].0) | Int(values[j].1) << 6)
        }
        if k % 2 == 1 { #expect(bytes[count - 1] & 0xF0 == 0, "the unused half byte stays zero") }
    }

    @Test func decoderFollowsTheLayoutOnArbitraryBytes() {
        var rng = TestRandom(seed: 21)
        for n in [1, 31, 33, 100, 511, 512, 513, 1600, 5504] {
            var bytes = (0..<Q4Layout.rowBytes(length: n)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Finite super-scales, so the comparison is between numbers.
            var offset = 0, sub = 0
            let subBlocks = (n + 31) / 32
            while sub < subBlocks {
                let k = min(16, subBlocks - sub)
                for i in 0..<2 {
                    let h = UInt16(truncatingIfNeeded: rng.next()) % 0x7C00 | (rng.next() & 1 == 0 ? 0 : 0x8000)
                    bytes[offset + 2 * i] = UInt8(h & 0xFF)
                    bytes[offset + 2 * i + 1] = UInt8(h >> 8)
                }
                offset += Q4Layout.groupBytes(subBlocks: k)
                sub += k
            }
            let y = Codec.decode(.q4, bytes, length: n)
            let expected = Q4Reference.decode(bytes, length: n)
            #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "length \(n)")
        }
    }

    @Test func q8DecoderFollowsTheLayoutOnArbitraryBytes() {
        var rng = TestRandom(seed: 22)
        for n in [1, 31, 33, 100, 513] {
            var bytes = (0..<Q8Layout.rowBytes(length: n)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for b in 0..<(n + 31) / 32 {
                let h = UInt16(truncatingIfNeeded: rng.next()) % 0x7C00
                bytes[34 * b] = UInt8(h & 0xFF)
                bytes[34 * b + 1] = UInt8(h >> 8)
            }
            let y = Codec.decode(.q8, bytes, length: n)
            for i in 0..<n {
                let blk = 34 * (i / 32)
                let d = HalfFloat.f16ToFloat(UInt16(bytes[blk]) | UInt16(bytes[blk + 1]) << 8)
                #expect(y[i] == d * Float(Int8(bitPattern: bytes[blk + 2 + i % 32])))
            }
        }
    }
}
