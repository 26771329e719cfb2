import HymbaKernels
import HymbaFormat

/// The order in which the kernels consume the elements of a row, per weight type.
///
/// Widening packed integers to fp32 lane by lane needs byte-to-word conversions that portable
/// SIMD code cannot express cheaply (Swift's generic conversions are not inlined, and x86-64
/// has no single instruction for them below AVX2). The quantized kernels therefore load codes
/// as 32-bit lanes and take them apart with shifts and masks only, which yields the elements in
/// a fixed permuted order. Since a dot product does not depend on the order of its terms, the
/// activations — shared by every row of a matrix — are put into that same order once per
/// product (`arrange`), and the weight rows are never reordered.
///
/// Layouts (in 32-element sub-blocks, which keep their position; only elements within a run
/// move). Sizes are rounded up to whole sub-blocks and the padding is zero, so the arbitrary
/// codes of a row's partial last sub-block multiply zeros.
/// - q4, runs of 4 sub-blocks (128 elements, 64 code bytes read as 16 × UInt32): position
///   `16k + L` holds element `32·(L/4) + 4·(L%4) + k/2 + 16·(k%2)`, for k (the nibble of the
///   lane, 0…7) and L (the lane, 0…15). A row's leftover sub-blocks (after the last complete
///   run of 4 in a group) use the same rule with 4 lanes: position `4k + L` holds element
///   `4L + k/2 + 16·(k%2)`.
/// - q8, runs of 2 blocks (64 elements, two 32-byte code runs read as 16 × UInt32): position
///   `16k + L` holds element `32·(L/8) + 4·(L%8) + k` (k the byte of the lane, 0…3). A
///   leftover block: position `8k + L` holds element `4L + k`.
/// - f32, f16, bf16: the natural order.
public enum InputLayout {
    /// Floats an arranged row of `n` elements occupies.
    @inline(__always)
    @inlinable public static func paddedLength(_ type: StorageType, _ n: Int) -> Int {
        switch type {
        case .q4, .q8: return (n + 31) / 32 * 32
        case .f32, .f16, .bf16: return (n + 15) / 16 * 16
        }
    }

    /// Writes `x[0..<n]` in `type`'s order into `out` (`paddedLength` floats, zero padded).
    @inline(__always)
    @inlinable public static func arrange(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        let padded = paddedLength(type, n)
        @inline(__always) func value(_ i: Int) -> Float { i < n ? x[i] : 0 }
        switch type {
        case .f32, .f16, .bf16:
            out.update(from: x, count: n)
            (out + n).update(repeating: 0, count: padded - n)
        case .q4:
            let nsub = padded / 32
            var sub = 0
            while sub < nsub {
                let k = min(Q4Layout.subBlocksPerGroup, nsub - sub)
                let runs = k / 4
                for q in 0..<runs {
                    // Lane L = 4j + m reads sub-block j of the run, elements 4m…4m+3 (low
                    // nibbles) and 4m+16…4m+19 (high nibbles).
                    let base = 32 * (sub + 4 * q)
                    for j in 0..<4 {
                        for m in 0..<4 {
                            let src = base + 32 * j + 4 * m, dst = out + base + 4 * j + m
                            for b in 0..<4 {
                                dst[32 * b] = value(src + b)
                                dst[32 * b + 16] = value(src + b + 16)
                            }
                        }
                    }
                }
                for s in (sub + 4 * runs)..<(sub + k) {
                    let base = 32 * s
                    q4Leftover({ value(base + $0) }, into: out + base)
                }
                sub += k
            }
        case .q8:
            let blocks = padded / 32
            for p in 0..<(blocks / 2) {
                // Lane L = 8h + m reads block h of the pair, elements 4m…4m+3.
                let base = 64 * p
                for h in 0..<2 {
                    for m in 0..<8 {
                        let src = base + 32 * h + 4 * m, dst = out + base + 8 * h + m
                        for b in 0..<4 { dst[16 * b] = value(src + b) }
                    }
                }
            }
            if blocks % 2 == 1 {
                let base = 32 * (blocks - 1)
                for m in 0..<8 {
                    for b in 0..<4 { out[base + 8 * b + m] = value(base + 4 * m + b) }
                }
            }
        }
    }

    /// One leftover q4 sub-block (32 elements, `value(i)` for i in 0..<32) into `out` in the
    /// 4-lane order: position `4k + L` holds element `4L + k/2 + 16·(k%2)`.
    @inline(__always)
    @inlinable public static func q4Leftover(_ value: (Int) -> Float, into out: UnsafeMutablePointer<Float>) {
        for m in 0..<4 {
            for b in 0..<4 {
                out[8 * b + m] = value(4 * m + b)
                out[8 * b + 4 + m] = value(4 * m + b + 16)
            }
        }
    }

    /// Whether q4 sub-block `s` of a row of `subBlocks` lies in a complete run of 4 (groups of
    /// 16 sub-blocks; only the last group of a row can end with 1–3 leftover sub-blocks).
    @inline(__always)
    @inlinable public static func q4InRun(subBlock s: Int, subBlocks nsub: Int) -> Bool {
        let groupStart = s / Q4Layout.subBlocksPerGroup * Q4Layout.subBlocksPerGroup
        let k = min(Q4Layout.subBlocksPerGroup, nsub - groupStart)
        return s - groupStart < k / 4 * 4
    }
}

/// The q4 matrix-vector product's activations: int8 values per 32-element sub-block.
///
/// Each sub-block of x gets a scale a = max|x|/127 and codes q = round(x/a) in −127…127; the
/// product is then W·x̂ with x̂ = a·q, computed with 16-bit integer multiplies (4-bit weight
/// code × int8 activation ≤ 1905, four of them per 16-bit lane ≤ 7620) instead of widening
/// every code to fp32. This is what makes decoding compute-light; the price is x's rounding to
/// 8 bits per sub-block (relative error ≤ 1/254 of the sub-block's largest value), the same
/// activation precision llama.cpp's q4 kernels use.
///
/// Layout of a run of 4 sub-blocks (128 elements, the 64 code bytes of the weights read as
/// 16 × UInt32 and taken apart by `(v >> 4k) & 0x000F000F` into 32 × Int16 for k = 0…3): Int16
/// position `32k + i` holds element `32·(i/8) + 2·(i%8) + (k/2) + 16·(k%2)`. Per run also 16
/// floats of scales (lane L: the scale of sub-block L/4) and 16 of sums (lane L: a quarter of
/// sub-block L/4's sum Σx̂, for the q4 mins). Sub-blocks after a row's last complete run (the
/// tail of a last group) use the float q4 layout with x̂ and `sums` (Σx̂ per sub-block).
public enum Q8Activations {
    /// Quantizes sub-block `x[0..<32]` (already zero padded); returns the scale and the codes'
    /// sum. Non-finite input gives a NaN scale, so the products come out NaN rather than wrong.
    @inline(__always)
    @inlinable public static func quantize(_ x: UnsafePointer<Float>, into q: UnsafeMutablePointer<Int16>) -> (scale: Float, codeSum: Int) {
        var m: Float = 0, finite = true
        for i in 0..<32 { m = max(m, abs(x[i])); finite = finite && x[i].isFinite }
        guard finite else {
            q.update(repeating: 0, count: 32)
            return (.nan, 0)
        }
        guard m > 0 else {
            q.update(repeating: 0, count: 32)
            return (0, 0)
        }
        let inv = 127 / m
        var total = 0
        for i in 0..<32 {
            // x·inv + 1.5·2²³ rounds to an integer (half to even) in the low mantissa bits.
            let r = (x[i] * inv + 12_582_912).bitPattern
            let c = Int16(truncatingIfNeeded: Int32(bitPattern: r) - 0x4B40_0000)
            q[i] = c
            total += Int(c)
        }
        return (m / 127, total)
    }

    /// The dequantized values x̂ of `x[0..<n]` (what the q4 matrix-vector product multiplies).
    @inline(__always)
    @inlinable public static func dequantized(_ x: [Float]) -> [Float] {
        let nsub = (x.count + 31) / 32
        var out = [Float](repeating: 0, count: x.count)
        var block = [Float](repeating: 0, count: 32), codes = [Int16](repeating: 0, count: 32)
        for s in 0..<nsub {
            for i in 0..<32 { block[i] = 32 * s + i < x.count ? x[32 * s + i] : 0 }
            let a = quantize(block, into: &codes).scale
            for i in 0..<32 where 32 * s + i < x.count { out[32 * s + i] = a * Float(codes[i]) }
        }
        return out
    }

    /// Fills `input`'s q4 buffers from `x[0..<n]`.
    @inline(__always)
    @inlinable public static func arrange(_ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        let nsub = (n + 31) / 32
        var block = (SIMD32<Float>(), SIMD32<Int16>())
        withUnsafeMutableBytes(of: &block) { raw in
            let xs = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            let qs = (raw.baseAddress! + 128).assumingMemoryBound(to: Int16.self)
            for s in 0..<nsub {
                let count = min(32, n - 32 * s)
                xs.update(from: x + 32 * s, count: count)
                (xs + count).update(repeating: 0, count: 32 - count)
                let (a, codeSum) = quantize(xs, into: qs)
                let sum = a * Float(codeSum)
                if InputLayout.q4InRun(subBlock: s, subBlocks: nsub) {
                    let r = s / 4, j = s % 4
                    let codes = input.codes + 128 * r
                    for e in 0..<32 {
                        let k = 2 * (e % 2) + e / 16, i = 8 * j + (e % 16) / 2
                        codes[32 * k + i] = qs[e]
                    }
                    for m in 0..<4 {
                        input.runScales[16 * r + 4 * j + m] = a
                        input.runSums[16 * r + 4 * j + m] = sum / 4
                    }
                } else {
                    // The float q4 layout's rule for leftover sub-blocks, with x̂.
                    InputLayout.q4Leftover({ a * Float(qs[$0]) }, into: input.values + 32 * s)
                    input.sums[s] = sum
                }
            }
        }
    }
}

/// The portable kernels' arrangement of an `ArrangedInput` (q4 rows: `Q8Activations`; the
/// other types: `InputLayout`).
extension ArrangedInput {
    /// Floats of storage the portable arrangement needs for rows of up to `capacity` elements:
    /// the padded row, the sub-block sums, the Int16 codes (half a float each) and 32 floats per
    /// run of 128.
    @inlinable
    public static func portableFloats(capacity: Int) -> Int {
        let padded = (capacity + 31) / 32 * 32, runs = padded / 128
        return padded + padded / 32 + padded / 2 + 32 * runs
    }

    @inlinable var paddedCapacity: Int { (capacity + 31) / 32 * 32 }
    @inlinable var runCapacity: Int { paddedCapacity / 128 }

    /// fp32 values in the type's order (q4: only the sub-blocks after the last complete run).
    @inlinable public var values: UnsafeMutablePointer<Float> { storage }
    /// q4: Σx̂ of each sub-block outside the runs.
    @inlinable public var sums: UnsafeMutablePointer<Float> { storage + paddedCapacity }
    /// q4: per run, 16 lanes of sub-block scales and 16 of quarter sums.
    @inlinable public var runScales: UnsafeMutablePointer<Float> { sums + paddedCapacity / 32 }
    @inlinable public var runSums: UnsafeMutablePointer<Float> { runScales + 16 * runCapacity }
    /// q4: the int8 activations of each run of 4 sub-blocks as Int16, 128 per run.
    @inlinable public var codes: UnsafeMutablePointer<Int16> {
        UnsafeMutableRawPointer(runSums + 16 * runCapacity).assumingMemoryBound(to: Int16.self)
    }

    /// Run r's 16 lanes of sub-block scales and of quarter sums.
    @inlinable @inline(__always)
    func runScale(_ r: Int) -> SIMD16<Float> { UnsafeRawPointer(runScales).load(unalignedAt: 64 * r, as: SIMD16<Float>.self) }
    @inlinable @inline(__always)
    func runSum(_ r: Int) -> SIMD16<Float> { UnsafeRawPointer(runSums).load(unalignedAt: 64 * r, as: SIMD16<Float>.self) }

    /// Arranges `x[0..<n]` for `type` in the portable order.
    @inlinable @inline(__always)
    public func arrangePortable(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int) {
        precondition(n <= capacity, "input of \(n) elements exceeds the arranged buffer (\(capacity))")
        if type == .q4 {
            Q8Activations.arrange(x, n, into: self)
        } else {
            InputLayout.arrange(type, x, n, into: values)
        }
    }
}
