/// The rounding rule of the x86-64 integer q8 kernels' activations (`IntegerMatVec` on AVX-512
/// VNNI, `Q8MatVecAVX2` on AVX2): per block of 32 elements, codes c = round(x/a) (half to even)
/// in −32767…32767 with a = max|x|/32767, a rounding 256 times finer than the weights' own.
/// A block with a non-finite element gets codes 0 and a NaN scale. Kept apart from the kernels
/// so that tests and error bounds have the rule on every build.
public enum Int16Activations {
    public static let codeLimit: Float = 32767

    /// The values x̂ = a·c the integer q8 products multiply for `x` (tests).
    public static func dequantized(_ x: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for start in stride(from: 0, to: x.count, by: 32) {
            let block = x[start..<min(x.count, start + 32)]
            let largest = block.map(abs).max() ?? 0
            guard block.allSatisfy(\.isFinite) else {
                for i in block.indices { out[i] = .nan }
                continue
            }
            let inv = largest > 0 ? codeLimit / largest : 0, a = largest / codeLimit
            for i in block.indices { out[i] = a * (x[i] * inv).rounded(.toNearestOrEven) }
        }
        return out
    }
}
