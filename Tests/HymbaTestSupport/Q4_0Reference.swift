// Test-only code shared by several test targets (the q4 yardstick).
import HymbaFormat

/// GGML's Q4_0, the yardstick for `q4` (ggml-quants.c, `quantize_row_q4_0_ref` and
/// `dequantize_row_q4_0`): blocks of 32, `d = m / −8` with m the block's value of largest
/// magnitude (signed), `q = min(15, trunc(x/d + 8.5))`, `x' = (q − 8)·d` with d stored as
/// binary16. 4.5 bits per weight. GGML needs rows of whole blocks; shorter last blocks are
/// zero-padded here, which leaves the real elements' codes unchanged.
public enum Q4_0Reference {
    /// Writes the reconstruction of `x` into `out` (same count).
    public static func roundTrip(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == out.count)
        var start = 0
        while start < x.count {
            let end = min(x.count, start + 32)
            var amax: Float = 0, m: Float = 0
            for i in start..<end where amax < abs(x[i]) {
                amax = abs(x[i])
                m = x[i]
            }
            let d = m / -8
            let id: Float = d != 0 ? 1 / d : 0
            let dStored = HalfFloat.f16ToFloat(HalfFloat.floatToF16(d))
            for i in start..<end {
                let q = min(15, Int8(x[i] * id + 8.5)) // C's (int8_t) cast truncates toward zero
                out[i] = Float(q - 8) * dStored
            }
            start = end
        }
    }
}

/// Accumulates squared errors of q4 and Q4_0 against the same source rows.
public struct Q4VersusQ4_0 {
    public init() {}
    public private(set) var q4: Double = 0
    public private(set) var q4_0: Double = 0
    public private(set) var count = 0

    /// RMSE(q4) / RMSE(Q4_0) over the rows added so far.
    public var ratio: Double { q4_0 > 0 ? (q4 / q4_0).squareRoot() : (q4 == 0 ? 0 : .infinity) }

    public mutating func add(row x: [Float]) {
        let n = x.count
        var bytes = [UInt8](repeating: 0, count: StorageType.q4.rowBytes(length: n))
        var decoded = [Float](repeating: 0, count: n), reference = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { StorageCodec.encodeRow(type: .q4, src.baseAddress!, length: n, into: $0.baseAddress!) }
            bytes.withUnsafeBytes { raw in
                decoded.withUnsafeMutableBufferPointer { StorageCodec.decodeRow(type: .q4, raw.baseAddress!, length: n, into: $0.baseAddress!) }
            }
            reference.withUnsafeMutableBufferPointer { Q4_0Reference.roundTrip(src, into: $0) }
        }
        for i in 0..<n {
            let e4 = Double(decoded[i]) - Double(x[i]), e0 = Double(reference[i]) - Double(x[i])
            q4 += e4 * e4
            q4_0 += e0 * e0
        }
        count += n
    }
}
