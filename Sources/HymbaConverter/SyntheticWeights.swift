import Foundation
import HymbaFormat

/// Deterministic random weights for any Hymba config, spread like trained ones, for
/// `hymba-convert synthesize` (speed and memory work at the real sizes without a download).
///
/// Every row depends only on (seed, tensor name, row index), so rows can be generated in any
/// order, in parallel, and streamed without ever holding a tensor. Cost: about 2 ns per element
/// per core (vectorized counter-based hashing; the 1.5B config in about 3 s of CPU time), no
/// allocation.
///
/// Distributions (symbols as in MODEL.md), chosen so that a forward pass stays numerically
/// sane (activations of order 1, no overflow) while the matrices keep what makes trained
/// weights hard to quantize:
/// - matrices (`in_proj`, `out_proj`, `x_proj`, MLP): N(0, σ) with σ = 0.5/√fan_in, times a
///   per-row scale e^(0.2·z); about 1 column in 256 (the same for every row, like trained
///   models' outlier features) scaled by 2.5…5, and about 1 element in 1024 replaced by a
///   heavy-tailed outlier of 4…8 σ_row with a random sign;
/// - `dt_proj.0.weight`: the same with σ = 0.25/√R; `dt_proj.0.bias`: softplus⁻¹(Δ) with Δ
///   log-uniform in [0.001, 0.1] (Mamba's initialization);
/// - `embed_tokens`, `lm_head`, `memory_tokens`: N(0, 0.03) with milder row scales, outliers
///   as above;
/// - RMSNorm weights: 1 + N(0, 0.05); `D.0`: 1 + N(0, 0.1); `A_log.0[i, n]`: log(n + 1) +
///   N(0, 0.02) (S4D-real); `conv1d.weight`: U(−1/√K, 1/√K); `conv1d.bias`: N(0, 0.05).
/// Normal samples are sums of four uniform 16-bit numbers (Irwin–Hall, standardized): fast,
/// bounded at ±3.46σ, kurtosis 2.7; the explicit outliers supply the heavy tail.
public struct SyntheticWeights: Sendable {
    public let config: HymbaConfig
    public let seed: UInt64

    public init(config: HymbaConfig, seed: UInt64) {
        self.config = config
        self.seed = seed
    }

    /// What a tensor's values look like, from its name.
    public enum Kind: Equatable, Sendable {
        /// Gaussian rows with per-row scales, outlier columns and outlier elements.
        case matrix(sigma: Float, rowSpread: Float)
        /// `center + N(0, sigma)` per element.
        case normal(center: Float, sigma: Float)
        /// U(−bound, bound).
        case uniform(bound: Float)
        /// `A_log.0`: log(n + 1) + N(0, sigma) for column n.
        case aLog(sigma: Float)
        /// `dt_proj.0.bias`: softplus⁻¹ of a log-uniform Δ in [low, high].
        case inverseSoftplusOfLogUniform(low: Float, high: Float)
    }

    /// The distribution used for the tensor `name` of `shape` (outermost first).
    public static func kind(tensor name: String, shape: [Int]) -> Kind {
        let fanIn = Float(max(1, shape.last ?? 1))
        if name == "model.embed_tokens.weight" || name == "lm_head.weight" || name == "model.memory_tokens" {
            return .matrix(sigma: 0.03, rowSpread: 0.1)
        }
        if name.hasSuffix("layernorm.weight") || name.hasSuffix("layernorm1.weight") || name.hasSuffix("layernorm2.weight") {
            return .normal(center: 1, sigma: 0.05)
        }
        if name.hasSuffix(".mamba.A_log.0") { return .aLog(sigma: 0.02) }
        if name.hasSuffix(".mamba.D.0") { return .normal(center: 1, sigma: 0.1) }
        if name.hasSuffix(".mamba.conv1d.weight") { return .uniform(bound: 1 / fanIn.squareRoot()) }
        if name.hasSuffix(".mamba.conv1d.bias") { return .normal(center: 0, sigma: 0.05) }
        if name.hasSuffix(".mamba.dt_proj.0.bias") { return .inverseSoftplusOfLogUniform(low: 0.001, high: 0.1) }
        if name.hasSuffix(".mamba.dt_proj.0.weight") { return .matrix(sigma: 0.25 / fanIn.squareRoot(), rowSpread: 0.2) }
        if shape.count == 1 { return .normal(center: 0, sigma: 0.05) } // an unknown vector: bias-like
        return .matrix(sigma: 0.5 / fanIn.squareRoot(), rowSpread: 0.2)
    }

    /// Fills `out` (exactly `shape.last` elements) with row `row` of tensor `name`.
    /// `row` counts over all but the last dimension (0 ..< product of the others).
    public func fillRow(tensor name: String, shape: [Int], row: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let n = shape.last ?? 1
        precondition(out.count == n, "SyntheticWeights.fillRow: \(name) rows have \(n) elements, buffer has \(out.count)")
        guard n > 0, let p = out.baseAddress else { return }
        let tensorKey = Self.mix(seed ^ Self.fnv1a(name))
        let rowKey = Self.mix(tensorKey &+ UInt64(truncatingIfNeeded: row) &* 0x9E37_79B9_7F4A_7C15)
        var rng = SplitMix64(state: rowKey)
        switch Self.kind(tensor: name, shape: shape) {
        case let .matrix(sigma, rowSpread):
            let rowScale = sigma * Float(exp(Double(rowSpread * rng.normal())))
            Self.fillNormal(p, count: n, key: rowKey, scale: rowScale, offset: 0)
            Self.addOutliers(p, count: n, tensorKey: tensorKey, rowScale: rowScale, rng: &rng)
        case let .normal(center, sigma):
            Self.fillNormal(p, count: n, key: rowKey, scale: sigma, offset: center)
        case let .uniform(bound):
            for j in 0..<n { p[j] = bound * (2 * rng.uniform() - 1) }
        case let .aLog(sigma):
            Self.fillNormal(p, count: n, key: rowKey, scale: sigma, offset: 0)
            for j in 0..<n { p[j] += Float(log(Double(j + 1))) }
        case let .inverseSoftplusOfLogUniform(low, high):
            let lo = log(Double(low)), hi = log(Double(high))
            for j in 0..<n {
                let dt = exp(lo + (hi - lo) * Double(rng.uniform()))
                p[j] = Float(log(expm1(dt))) // softplus(p) = log(1 + e^p) = dt
            }
        }
    }

    // MARK: Generation

    /// `out[j] = offset + scale·z_j` with z_j ≈ N(0, 1) from counter-based hashes of (key, j).
    private static func fillNormal(_ out: UnsafeMutablePointer<Float>, count n: Int, key: UInt64, scale: Float, offset: Float) {
        typealias U8 = SIMD8<UInt32>
        let k1 = UInt32(truncatingIfNeeded: key), k2 = UInt32(truncatingIfNeeded: key >> 32)
        // Sum of 4 uniform 16-bit numbers: mean 2·65535, standard deviation
        // √(4·(65536² − 1)/12) = 37837.23; exact in Float (< 2²⁴).
        let a = scale / 37837.23, b = offset - 131_070 * a
        let lanes = U8(0, 1, 2, 3, 4, 5, 6, 7)
        @inline(__always) func normals(_ j: Int) -> SIMD8<Float> {
            let index = U8(repeating: UInt32(truncatingIfNeeded: j)) &+ lanes
            let h1 = hash(index, k1, k2), h2 = hash(index, k2, k1 ^ 0x5BD1_E995)
            let sum = (h1 & 0xFFFF) &+ (h1 &>> 16) &+ (h2 & 0xFFFF) &+ (h2 &>> 16)
            return SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: sum)) * a + b
        }
        let raw = UnsafeMutableRawPointer(out)
        var j = 0
        while j + 8 <= n {
            raw.storeBytes(of: normals(j), toByteOffset: 4 * j, as: SIMD8<Float>.self)
            j += 8
        }
        if j < n {
            let v = normals(j)
            for i in 0..<(n - j) { out[j + i] = v[i] }
        }
    }

    /// A 32-bit integer hash (Wellons' "lowbias32") of the element index, keyed per row.
    @inline(__always)
    private static func hash(_ index: SIMD8<UInt32>, _ k1: UInt32, _ k2: UInt32) -> SIMD8<UInt32> {
        var x = index &* 0x9E37_79B9 &+ k1
        x ^= x &>> 16
        x &*= 0x7FEB_352D
        x ^= k2
        x ^= x &>> 15
        x &*= 0x846C_A68B
        x ^= x &>> 16
        return x
    }

    /// Outlier columns (fixed per tensor) and outlier elements (per row).
    private static func addOutliers(_ p: UnsafeMutablePointer<Float>, count n: Int, tensorKey: UInt64, rowScale: Float,
                                    rng: inout SplitMix64) {
        var columns = SplitMix64(state: tensorKey ^ 0xC01C_0FFE_E000_0001)
        for _ in 0..<(n + 255) / 256 {
            let c = Int(columns.next() % UInt64(n))
            p[c] *= 2.5 + 2.5 * columns.uniform()
        }
        // About n/1024 per row: the integer part always, the fraction with its probability.
        let expected = Float(n) / 1024
        var k = Int(expected)
        if rng.uniform() < expected - Float(k) { k += 1 }
        for _ in 0..<k {
            let j = Int(rng.next() % UInt64(n))
            let magnitude = rowScale * (4 + 4 * rng.uniform())
            p[j] = rng.next() & 1 == 0 ? magnitude : -magnitude
        }
    }

    /// FNV-1a over the UTF-8 bytes.
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// SplitMix64's finalizer: a bijective 64-bit mix.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Vigna's SplitMix64: the scalar stream for per-row choices.
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in [0, 1).
        mutating func uniform() -> Float { Float(next() >> 40) * (1 / 16_777_216) }
        /// Approximately N(0, 1) (Irwin–Hall of 4 uniforms, standardized).
        mutating func normal() -> Float {
            (uniform() + uniform() + uniform() + uniform() - 2) * 1.732_050_8
        }
    }
}
