import HymbaFormat

/// Integer codes to fp32 without conversion instructions: a code c < 2²³ placed in the
/// mantissa of 2²³ (bits 0x4B00_0000) is the float 2²³ + c exactly; subtracting 2²³ leaves c.
/// Shifts, masks and one subtraction: lane operations every SIMD unit has at every width.
@inline(__always)
func codesToFloat(_ v: SIMD16<UInt32>, shift: UInt32, mask: UInt32, bias: Float) -> SIMD16<Float> {
    unsafeBitCast(((v &>> shift) & mask) | 0x4B00_0000, to: SIMD16<Float>.self) - bias
}

@inline(__always)
func codesToFloat(_ v: SIMD8<UInt32>, shift: UInt32, mask: UInt32, bias: Float) -> SIMD8<Float> {
    unsafeBitCast(((v &>> shift) & mask) | 0x4B00_0000, to: SIMD8<Float>.self) - bias
}

@inline(__always)
func codesToFloat(_ v: SIMD4<UInt32>, shift: UInt32, mask: UInt32, bias: Float) -> SIMD4<Float> {
    unsafeBitCast(((v &>> shift) & mask) | 0x4B00_0000, to: SIMD4<Float>.self) - bias
}

/// Sum of the lanes as a balanced tree (`SIMD.sum()` adds them one after another).
@inline(__always)
func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    return b[0] + b[1] + (b[2] + b[3])
}

@inline(__always)
func horizontalSum(_ v: SIMD8<Float>) -> Float {
    let b = v.lowHalf + v.highHalf
    return b[0] + b[1] + (b[2] + b[3])
}

@inline(__always)
func horizontalSum(_ v: SIMD4<Float>) -> Float { v[0] + v[1] + (v[2] + v[3]) }

@inline(__always)
private func half(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    HalfFloat.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// q4 rows (Q4Layout) against activations in the q4 `InputLayout`.
package enum Q4Rows {
    /// The q4 element bias: nibble codes are unsigned.
    private static let bias: Float = 8_388_608

    /// Scales (d·sc) and mins (dmin·mn) of sub-blocks 4q…4q+3 of a group, spread over 16
    /// lanes four by four: entries 4q…4q+3 are the 48 bits at byte 6q of the packed entries.
    @inline(__always)
    private static func runScales(_ g: Q4Layout.Group, run q: Int) -> (scale: SIMD16<Float>, min: SIMD4<Float>) {
        let e = g.entries.loadUnaligned(fromByteOffset: 6 * q, as: UInt64.self)
        @inline(__always) func field(_ shift: UInt64) -> Float { Float(UInt32(truncatingIfNeeded: e &>> shift) & 63) }
        let a = field(0), b = field(12), c = field(24), d = field(36)
        let scale = SIMD16<Float>(a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d) * g.d
        let mins = SIMD4<Float>(field(6), field(18), field(30), field(42)) * g.dmin
        return (scale, mins)
    }

    /// Σ w·x for one row of `n` elements; `x` arranged (`InputLayout`), `sums` its sub-block sums.
    @inline(__always)
    package static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ sums: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x), sr = UnsafeRawPointer(sums)
        let nsub = Q4Layout.subBlocks(length: n)
        var acc = SIMD16<Float>(), minAcc = SIMD4<Float>()
        var rest: Float = 0
        var group = row
        var sub = 0
        while sub < nsub {
            let k = min(Q4Layout.subBlocksPerGroup, nsub - sub)
            let g = Q4Layout.Group(at: group, subBlocks: k)
            var j = 0
            while j + 4 <= k {
                let v = g.codes.loadUnaligned(fromByteOffset: 16 * j, as: SIMD16<UInt32>.self)
                let xo = 128 * (sub + j)
                var t = codesToFloat(v, shift: 0, mask: 0xF, bias: bias) * xr.loadUnaligned(fromByteOffset: xo, as: SIMD16<Float>.self)
                t = t.addingProduct(codesToFloat(v, shift: 4, mask: 0xF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 64, as: SIMD16<Float>.self))
                t = t.addingProduct(codesToFloat(v, shift: 8, mask: 0xF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 128, as: SIMD16<Float>.self))
                t = t.addingProduct(codesToFloat(v, shift: 12, mask: 0xF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 192, as: SIMD16<Float>.self))
                t = t.addingProduct(codesToFloat(v, shift: 16, mask: 0xF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 256, as: SIMD16<Float>.self))
                t = t.addingProduct(codesToFloat(v, shift: 20, mask: 0xF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 320, as: SIMD16<Float>.self))
                t = t.addingProduct(codesToFloat(v, shift: 24, mask: 0xF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 384, as: SIMD16<Float>.self))
                t = t.addingProduct(codesToFloat(v, shift: 28, mask: 0xF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 448, as: SIMD16<Float>.self))
                let (scale, mins) = runScales(g, run: j / 4)
                acc = acc.addingProduct(scale, t)
                minAcc = minAcc.addingProduct(mins, sr.loadUnaligned(fromByteOffset: 4 * (sub + j), as: SIMD4<Float>.self))
                j += 4
            }
            while j < k {
                let v = g.codes.loadUnaligned(fromByteOffset: 16 * j, as: SIMD4<UInt32>.self)
                let xo = 128 * (sub + j)
                var t = SIMD4<Float>()
                for nib in 0..<8 {
                    t = t.addingProduct(codesToFloat(v, shift: UInt32(4 * nib), mask: 0xF, bias: bias),
                                        xr.loadUnaligned(fromByteOffset: xo + 16 * nib, as: SIMD4<Float>.self))
                }
                let (scale, minv) = g.scaleAndMin(j)
                rest += scale * horizontalSum(t) - minv * sums[sub + j]
                j += 1
            }
            group += g.byteCount
            sub += k
        }
        return horizontalSum(acc) - horizontalSum(minAcc) + rest
    }

    /// Decodes group `groupIndex` of a row (512 elements, fewer for a row's last group) into
    /// `out` in the q4 `InputLayout` order; returns the number of floats written (whole
    /// sub-blocks; the padding of a partial last sub-block holds arbitrary finite values,
    /// which meet zero activations).
    @inline(__always)
    package static func decodeGroup(_ row: UnsafeRawPointer, _ n: Int, group groupIndex: Int, into out: UnsafeMutablePointer<Float>) -> Int {
        let nsub = Q4Layout.subBlocks(length: n)
        let first = groupIndex * Q4Layout.subBlocksPerGroup
        let k = min(Q4Layout.subBlocksPerGroup, nsub - first)
        let g = Q4Layout.Group(at: row + groupIndex * Q4Layout.groupBytes(subBlocks: Q4Layout.subBlocksPerGroup), subBlocks: k)
        let o = UnsafeMutableRawPointer(out)
        var j = 0
        while j + 4 <= k {
            let v = g.codes.loadUnaligned(fromByteOffset: 16 * j, as: SIMD16<UInt32>.self)
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
            let v = g.codes.loadUnaligned(fromByteOffset: 16 * j, as: SIMD4<UInt32>.self)
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
package enum Q8Rows {
    /// Codes are int8; flipping the top bit of each byte maps q to q + 128 (unsigned), so the
    /// float trick's bias is 2²³ + 128.
    private static let bias: Float = 8_388_736
    private static let flip: UInt32 = 0x8080_8080

    @inline(__always)
    private static func pairCodes(_ block: UnsafeRawPointer) -> SIMD16<UInt32> {
        let a = block.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt32>.self)
        let b = block.loadUnaligned(fromByteOffset: 2 + Q8Layout.blockBytes, as: SIMD8<UInt32>.self)
        return SIMD16<UInt32>(lowHalf: a, highHalf: b) ^ flip
    }

    @inline(__always)
    private static func pairScales(_ block: UnsafeRawPointer) -> SIMD16<Float> {
        SIMD16<Float>(lowHalf: SIMD8<Float>(repeating: half(block)), highHalf: SIMD8<Float>(repeating: half(block, Q8Layout.blockBytes)))
    }

    /// Σ w·x for one row of `n` elements; `x` arranged (`InputLayout`).
    @inline(__always)
    package static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        let blocks = (n + 31) / 32
        var acc = SIMD16<Float>()
        var b = 0
        while b + 2 <= blocks {
            let blk = row + b * Q8Layout.blockBytes
            let v = pairCodes(blk)
            let xo = 128 * b
            var t = codesToFloat(v, shift: 0, mask: 0xFF, bias: bias) * xr.loadUnaligned(fromByteOffset: xo, as: SIMD16<Float>.self)
            t = t.addingProduct(codesToFloat(v, shift: 8, mask: 0xFF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 64, as: SIMD16<Float>.self))
            t = t.addingProduct(codesToFloat(v, shift: 16, mask: 0xFF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 128, as: SIMD16<Float>.self))
            t = t.addingProduct(codesToFloat(v, shift: 24, mask: 0xFF, bias: bias), xr.loadUnaligned(fromByteOffset: xo + 192, as: SIMD16<Float>.self))
            acc = acc.addingProduct(pairScales(blk), t)
            b += 2
        }
        var total = horizontalSum(acc)
        if b < blocks {
            let blk = row + b * Q8Layout.blockBytes
            let v = blk.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt32>.self) ^ flip
            let xo = 128 * b
            var t = SIMD8<Float>()
            for byte in 0..<4 {
                t = t.addingProduct(codesToFloat(v, shift: UInt32(8 * byte), mask: 0xFF, bias: bias),
                                    xr.loadUnaligned(fromByteOffset: xo + 32 * byte, as: SIMD8<Float>.self))
            }
            total += half(blk) * horizontalSum(t)
        }
        return total
    }

    /// Decodes blocks `firstBlock ..< firstBlock + count` of a row into `out` in the q8
    /// `InputLayout` order (`firstBlock` even, so that pairs line up with the layout's).
    @inline(__always)
    package static func decodeBlocks(_ row: UnsafeRawPointer, first firstBlock: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
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
            let v = blk.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt32>.self) ^ flip
            let d = half(blk)
            for byte in 0..<4 {
                o.storeBytes(of: d * codesToFloat(v, shift: UInt32(8 * byte), mask: 0xFF, bias: bias),
                             toByteOffset: 128 * b + 32 * byte, as: SIMD8<Float>.self)
            }
        }
    }
}
