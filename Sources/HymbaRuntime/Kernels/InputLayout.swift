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
package enum InputLayout {
    /// Floats an arranged row of `n` elements occupies.
    @inline(__always)
    package static func paddedLength(_ type: StorageType, _ n: Int) -> Int {
        switch type {
        case .q4, .q8: return (n + 31) / 32 * 32
        case .f32, .f16, .bf16: return (n + 15) / 16 * 16
        }
    }

    /// Writes `x[0..<n]` in `type`'s order into `out` (`paddedLength` floats, zero padded).
    package static func arrange(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
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
                    for m in 0..<4 {
                        for b in 0..<4 {
                            out[base + 8 * b + m] = value(base + 4 * m + b)
                            out[base + 8 * b + 4 + m] = value(base + 4 * m + b + 16)
                        }
                    }
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

    /// Sums of each 32-element sub-block of `x` (zero padded): the q4 kernels' min terms.
    package static func subBlockSums(_ x: UnsafePointer<Float>, _ n: Int, into sums: UnsafeMutablePointer<Float>) {
        let nsub = (n + 31) / 32
        for s in 0..<nsub {
            var acc: Float = 0
            for i in (32 * s)..<min(n, 32 * s + 32) { acc += x[i] }
            sums[s] = acc
        }
    }
}

/// An activation row arranged for one weight type (`InputLayout`), in buffers owned by the
/// caller and reused across calls. Holds room for rows of up to `capacity` elements.
package struct ArrangedInput {
    package let values: UnsafeMutablePointer<Float>
    package let sums: UnsafeMutablePointer<Float>
    package let capacity: Int

    /// Floats of storage needed for rows of up to `capacity` elements.
    package static func floats(capacity: Int) -> Int { (capacity + 31) / 32 * 32 + (capacity + 31) / 32 }

    /// Views `storage` (at least `floats(capacity:)` floats).
    package init(storage: UnsafeMutablePointer<Float>, capacity: Int) {
        self.capacity = capacity
        values = storage
        sums = storage + (capacity + 31) / 32 * 32
    }

    /// Arranges `x[0..<n]` for `type`.
    @inline(__always)
    package func arrange(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int) {
        precondition(n <= capacity, "input of \(n) elements exceeds the arranged buffer (\(capacity))")
        InputLayout.arrange(type, x, n, into: values)
        if type == .q4 { InputLayout.subBlockSums(x, n, into: sums) }
    }
}
