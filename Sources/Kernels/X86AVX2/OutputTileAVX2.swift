/// Where a 4 × 2 register tile of the AVX2 matrix-matrix products (`Q4MatMulAVX2`,
/// `IntegerMatMulAVX2`) goes: lane 4t + r is row r's product with token t, for one depth group.
enum OutputTileAVX2 {
    /// Stores (or, for every group after the first, `accumulate`s) the first `tokens` tokens' and
    /// `rows` rows' lanes of `v` at y (row r of token t at y[t·ldy + r]).
    @inline(__always)
    static func store(_ v: SIMD8<Float>, at y: UnsafeMutablePointer<Float>, ldy: Int, tokens: Int, rows: Int, accumulate: Bool) {
        for i in 0..<tokens {
            let out = y + i * ldy, part = i == 0 ? v.lowHalf : v.highHalf
            if rows == 4 {
                let raw = UnsafeMutableRawPointer(out)
                raw.storeBytes(of: accumulate ? raw.load(unalignedAt: 0, as: SIMD4<Float>.self) + part : part, as: SIMD4<Float>.self)
            } else {
                for j in 0..<rows { out[j] = accumulate ? out[j] + part[j] : part[j] }
            }
        }
    }
}
