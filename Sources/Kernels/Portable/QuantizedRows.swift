import HymbaKernels
import HymbaFormat

@inline(__always)
@inlinable func half(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    HalfFloat.f16ToFloat(UInt16(littleEndian: p.load(unalignedAt: offset, as: UInt16.self)))
}

/// q4 rows (Q4Layout): against int8 activations (`Q8Activations`) for matrix-vector
/// products, decoded to fp32 for the matrix-matrix product.
public enum Q4Rows {
    /// The q4 element bias: nibble codes are unsigned.
    @inlinable public static var bias: Float { 8_388_608 }

    /// Scales (d·sc) and mins (dmin·mn) of sub-blocks 4q…4q+3 of a group, spread over 16
    /// lanes four by four: entries 4q…4q+3 are the 48 bits at byte 6q of the packed entries.
    @inline(__always)
    @inlinable public static func runScales(_ g: Q4Layout.Group, run q: Int) -> (scale: SIMD16<Float>, min: SIMD4<Float>) {
        let e = g.entries.load(unalignedAt: 6 * q, as: UInt64.self)
        @inline(__always) func field(_ shift: UInt64) -> Float { Float(UInt32(truncatingIfNeeded: e &>> shift) & 63) }
        let a = field(0), b = field(12), c = field(24), d = field(36)
        let scale = SIMD16<Float>(a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d) * g.d
        let mins = SIMD4<Float>(field(6), field(18), field(30), field(42)) * g.dmin
        return (scale, mins)
    }

    /// A run of 4 sub-blocks of int8 activations (`Q8Activations` layout): the four 32 × Int16
    /// vectors that meet nibble shifts 0, 4, 8 and 12.
    public struct ActivationRun {
        public let x0, x1, x2, x3: SIMD32<Int16>
        @inline(__always)
        @inlinable public init(_ p: UnsafeRawPointer) {
            x0 = p.load(unalignedAt: 0, as: SIMD32<Int16>.self)
            x1 = p.load(unalignedAt: 64, as: SIMD32<Int16>.self)
            x2 = p.load(unalignedAt: 128, as: SIMD32<Int16>.self)
            x3 = p.load(unalignedAt: 192, as: SIMD32<Int16>.self)
        }
    }

    /// Σ_i (code_i × activation code_i) for each lane's 8 elements of a run of 4 sub-blocks,
    /// as floats; lane L belongs to sub-block L/4. The nibbles are cut out as 16-bit values
    /// (two per 32-bit lane), multiplied and added in 16 bits (at most 4 × 15 × 127 per lane),
    /// then each 32-bit lane's two halves are sign-extended and added. Lanes are little-endian
    /// halves (x86-64 and arm64).
    @inline(__always)
    @inlinable public static func runProducts(_ codes: UnsafeRawPointer, _ x: ActivationRun) -> SIMD16<Float> {
        let v = codes.load(unalignedAt: 0, as: SIMD16<UInt32>.self)
        @inline(__always) func nibbles(_ shift: UInt32) -> SIMD32<Int16> {
            unsafeBitCast((v &>> shift) & 0x000F_000F, to: SIMD32<Int16>.self)
        }
        var p = nibbles(0) &* x.x0
        p = p &+ nibbles(4) &* x.x1
        p = p &+ nibbles(8) &* x.x2
        p = p &+ nibbles(12) &* x.x3
        let w = unsafeBitCast(p, to: SIMD16<Int32>.self)
        let sums = ((w &<< 16) &>> 16) &+ (w &>> 16)
        // |sum| < 2²² placed under the exponent of 1.5·2²³ is that float plus the sum exactly.
        return unsafeBitCast(sums &+ 0x4B40_0000, to: SIMD16<Float>.self) - 12_582_912
    }

    /// The 6-bit scales and mins of run q's sub-blocks 4q…4q+3, four lanes each: entries
    /// 4q…4q+3 are the 48 bits at byte 6q of the packed entries (the load may read into the
    /// codes, which follow the entries in every group).
    @inline(__always)
    @inlinable public static func runEntries(_ g: Q4Layout.Group, run q: Int) -> (sc: SIMD16<Float>, mn: SIMD16<Float>) {
        let e = g.entries.load(unalignedAt: 6 * q, as: UInt64.self)
        let fields = joined(SIMD8(repeating: UInt32(truncatingIfNeeded: e)), SIMD8(repeating: UInt32(truncatingIfNeeded: e &>> 24)))
            &>> SIMD16<UInt32>(0, 0, 0, 0, 12, 12, 12, 12, 0, 0, 0, 0, 12, 12, 12, 12)
        return (codesToFloat(fields, shift: 0, mask: 63, bias: 8_388_608), codesToFloat(fields, shift: 6, mask: 63, bias: 8_388_608))
    }

    /// Σ w·x̂ for one row of `n` elements against `input` arranged for q4 (`Q8Activations`):
    /// the pair kernel with the row twice (a matrix's odd last row only).
    @inline(__always)
    @inlinable public static func dot(_ row: UnsafeRawPointer, _ input: ArrangedInput, _ n: Int) -> Float {
        dotPair(row, row, input, n).0
    }

    /// Two rows at once (the same length): each activation run is loaded once for both, and
    /// the two rows' weight streams are read side by side.
    @inline(__always)
    @inlinable public static func dotPair(_ rowA: UnsafeRawPointer, _ rowB: UnsafeRawPointer, _ input: ArrangedInput, _ n: Int) -> (Float, Float) {
        let nsub = Q4Layout.subBlocks(length: n)
        var accA = SIMD16<Float>(), accB = SIMD16<Float>()
        var restA: Float = 0, restB: Float = 0
        var groupA = rowA, groupB = rowB
        var sub = 0
        while sub < nsub {
            let k = min(Q4Layout.subBlocksPerGroup, nsub - sub)
            let ga = Q4Layout.Group(at: groupA, subBlocks: k), gb = Q4Layout.Group(at: groupB, subBlocks: k)
            var scaledA = SIMD16<Float>(), minsA = SIMD16<Float>(), scaledB = SIMD16<Float>(), minsB = SIMD16<Float>()
            var j = 0
            while j + 4 <= k {
                let r = (sub + j) / 4
                let x = ActivationRun(UnsafeRawPointer(input.codes) + 256 * r)
                let scales = input.runScale(r), sums = input.runSum(r)
                let (scA, mnA) = runEntries(ga, run: j / 4), (scB, mnB) = runEntries(gb, run: j / 4)
                scaledA = multiplyAdd(scA * scales, runProducts(ga.codes + 16 * j, x), scaledA)
                scaledB = multiplyAdd(scB * scales, runProducts(gb.codes + 16 * j, x), scaledB)
                minsA = multiplyAdd(mnA, sums, minsA)
                minsB = multiplyAdd(mnB, sums, minsB)
                j += 4
            }
            accA = multiplyAdd(ga.d, scaledA, accA)
            accA = multiplyAdd(-ga.dmin, minsA, accA)
            accB = multiplyAdd(gb.d, scaledB, accB)
            accB = multiplyAdd(-gb.dmin, minsB, accB)
            if j < k {
                restA += leftovers(ga, from: j, to: k, firstSubBlock: sub, input)
                restB += leftovers(gb, from: j, to: k, firstSubBlock: sub, input)
            }
            groupA += ga.byteCount
            groupB += gb.byteCount
            sub += k
        }
        return (horizontalSum(accA) + restA, horizontalSum(accB) + restB)
    }

    /// Sub-blocks j ..< k of a row's last group, after its last complete run: the float q4
    /// layout of x̂ with its sub-block sums (`Q8Activations`).
    @inline(never)
    @inlinable public static func leftovers(_ g: Q4Layout.Group, from j0: Int, to k: Int, firstSubBlock sub: Int, _ input: ArrangedInput) -> Float {
        let xr = UnsafeRawPointer(input.values)
        var rest: Float = 0
        for j in j0..<k {
            let v = g.codes.load(unalignedAt: 16 * j, as: SIMD4<UInt32>.self)
            let xo = 128 * (sub + j)
            var t = SIMD4<Float>()
            for nib in 0..<8 {
                t = multiplyAdd(codesToFloat(v, shift: UInt32(4 * nib), mask: 0xF, bias: bias),
                                xr.load(unalignedAt: xo + 16 * nib, as: SIMD4<Float>.self), t)
            }
            let (scale, minv) = g.scaleAndMin(j)
            rest += scale * horizontalSum(t) - minv * input.sums[sub + j]
        }
        return rest
    }

    /// Decodes group `groupIndex` of a row (512 elements, fewer for a row's last group) into
    /// `out` in the q4 `InputLayout` order; returns the number of floats written (whole
    /// sub-blocks; the padding of a partial last sub-block holds arbitrary finite values,
    /// which meet zero activations).
    @inline(__always)
    @inlinable public static func decodeGroup(_ row: UnsafeRawPointer, _ n: Int, group groupIndex: Int, into out: UnsafeMutablePointer<Float>) -> Int {
        let nsub = Q4Layout.subBlocks(length: n)
        let first = groupIndex * Q4Layout.subBlocksPerGroup
        let k = min(Q4Layout.subBlocksPerGroup, nsub - first)
        let g = Q4Layout.Group(at: row + groupIndex * Q4Layout.groupBytes(subBlocks: Q4Layout.subBlocksPerGroup), subBlocks: k)
        let o = UnsafeMutableRawPointer(out)
        var j = 0
        while j + 4 <= k {
            let v = g.codes.load(unalignedAt: 16 * j, as: SIMD16<UInt32>.self)
            let (scale, mins) = runScales(g, run: j / 4)
            let minLanes = SIMD16<Float>(mins[0], mins[0], mins[0], mins[0], mins[1], mins[1], mins[1], mins[1],
                                         mins[2], mins[2], mins[2], mins[2], mins[3], mins[3], mins[3], mins[3])
            for nib in 0..<8 {
                let w = scale * codesToFloat(v, shift: UInt32(4 * nib), mask: 0xF, bias: bias) - minLanes
                o.storeBytes(of: w, toByteOffset: 128 * j + 64 * nib, as: SIMD16<Float>.self)
            }
            j += 4
        }
        while j < k {
            let v = g.codes.load(unalignedAt: 16 * j, as: SIMD4<UInt32>.self)
            let (scale, minv) = g.scaleAndMin(j)
            for nib in 0..<8 {
                let w = scale * codesToFloat(v, shift: UInt32(4 * nib), mask: 0xF, bias: bias) - minv
                o.storeBytes(of: w, toByteOffset: 128 * j + 16 * nib, as: SIMD4<Float>.self)
            }
            j += 1
        }
        return 32 * k
    }
}

/// q8 rows (Q8Layout) against activations in the q8 `InputLayout`.
public enum Q8Rows {
    /// Codes are int8; flipping the top bit of each byte maps q to q + 128 (unsigned), so the
    /// float trick's bias is 2²³ + 128.
    @inlinable public static var bias: Float { 8_388_736 }
    public static let flip: UInt32 = 0x8080_8080

    @inline(__always)
    @inlinable public static func pairCodes(_ block: UnsafeRawPointer) -> SIMD16<UInt32> {
        let a = block.load(unalignedAt: 2, as: SIMD8<UInt32>.self)
        let b = block.load(unalignedAt: 2 + Q8Layout.blockBytes, as: SIMD8<UInt32>.self)
        return joined(a, b) ^ flip
    }

    @inline(__always)
    @inlinable public static func pairScales(_ block: UnsafeRawPointer) -> SIMD16<Float> {
        joined(SIMD8<Float>(repeating: half(block)), SIMD8<Float>(repeating: half(block, Q8Layout.blockBytes)))
    }

    /// Σ w·x for one row of `n` elements; `x` arranged (`InputLayout`).
    @inline(__always)
    @inlinable public static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        let blocks = (n + 31) / 32
        var acc = SIMD16<Float>()
        var b = 0
        while b + 2 <= blocks {
            let blk = row + b * Q8Layout.blockBytes
            let v = pairCodes(blk)
            let xo = 128 * b
            var t = codesToFloat(v, shift: 0, mask: 0xFF, bias: bias) * xr.load(unalignedAt: xo, as: SIMD16<Float>.self)
            t = multiplyAdd(codesToFloat(v, shift: 8, mask: 0xFF, bias: bias), xr.load(unalignedAt: xo + 64, as: SIMD16<Float>.self), t)
            t = multiplyAdd(codesToFloat(v, shift: 16, mask: 0xFF, bias: bias), xr.load(unalignedAt: xo + 128, as: SIMD16<Float>.self), t)
            t = multiplyAdd(codesToFloat(v, shift: 24, mask: 0xFF, bias: bias), xr.load(unalignedAt: xo + 192, as: SIMD16<Float>.self), t)
            acc = multiplyAdd(pairScales(blk), t, acc)
            b += 2
        }
        var total = horizontalSum(acc)
        if b < blocks {
            let blk = row + b * Q8Layout.blockBytes
            let v = blk.load(unalignedAt: 2, as: SIMD8<UInt32>.self) ^ flip
            let xo = 128 * b
            var t = SIMD8<Float>()
            for byte in 0..<4 {
                t = multiplyAdd(codesToFloat(v, shift: UInt32(8 * byte), mask: 0xFF, bias: bias),
                                xr.load(unalignedAt: xo + 32 * byte, as: SIMD8<Float>.self), t)
            }
            total += half(blk) * horizontalSum(t)
        }
        return total
    }

    /// Decodes blocks `firstBlock ..< firstBlock + count` of a row into `out` in the q8
    /// `InputLayout` order (`firstBlock` even, so that pairs line up with the layout's).
    @inline(__always)
    @inlinable public static func decodeBlocks(_ row: UnsafeRawPointer, first firstBlock: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        let o = UnsafeMutableRawPointer(out)
        var b = 0
        while b + 2 <= count {
            let blk = row + (firstBlock + b) * Q8Layout.blockBytes
            let v = pairCodes(blk)
            let scale = pairScales(blk)
            for byte in 0..<4 {
                o.storeBytes(of: scale * codesToFloat(v, shift: UInt32(8 * byte), mask: 0xFF, bias: bias),
                             toByteOffset: 128 * b + 64 * byte, as: SIMD16<Float>.self)
            }
            b += 2
        }
        if b < count {
            let blk = row + (firstBlock + b) * Q8Layout.blockBytes
            let v = blk.load(unalignedAt: 2, as: SIMD8<UInt32>.self) ^ flip
            let d = half(blk)
            for byte in 0..<4 {
                o.storeBytes(of: d * codesToFloat(v, shift: UInt32(8 * byte), mask: 0xFF, bias: bias),
                             toByteOffset: 128 * b + 32 * byte, as: SIMD8<Float>.self)
            }
        }
    }
}
