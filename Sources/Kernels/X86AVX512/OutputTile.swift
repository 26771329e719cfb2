/// Where a 4 × 4 register tile of the AVX-512 matrix-matrix products (`Q4MatMul`,
/// `IntegerMatMul`) goes: lane 4t + r is row r's product with token t, for one depth group.
enum OutputTile {
    /// Stores (or, for every group after the first, `accumulate`s) the first `tokens` tokens' and
    /// `rows` rows' lanes of `v` at y (row r of token t at y[t·ldy + r]).
    @inline(__always)
    static func store(_ v: SIMD16<Float>, at y: UnsafeMutablePointer<Float>, ldy: Int, tokens: Int, rows: Int, accumulate: Bool) {
        let lanes = unsafeBitCast(v, to: (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>).self)
        for i in 0..<tokens {
            let out = y + i * ldy
            if rows == 4 {
                let part = i == 0 ? lanes.0 : i == 1 ? lanes.1 : i == 2 ? lanes.2 : lanes.3
                let raw = UnsafeMutableRawPointer(out)
                raw.storeBytes(of: accumulate ? raw.load(unalignedAt: 0, as: SIMD4<Float>.self) + part : part, as: SIMD4<Float>.self)
            } else {
                for j in 0..<rows { out[j] = accumulate ? out[j] + v[4 * i + j] : v[4 * i + j] }
            }
        }
    }
}
