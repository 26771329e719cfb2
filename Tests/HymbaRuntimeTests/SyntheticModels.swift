import Foundation
import HymbaFormat
@testable import HymbaRuntime

/// Deterministic random models of any config, built in memory (no file, no download).
enum SyntheticModels {
    /// A tiny deterministic generator (SplitMix64) with uniform and roughly normal draws.
    struct Random {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
        /// Sum of 4 uniforms, centred and scaled to unit variance (close enough to normal).
        mutating func normal() -> Float { ((uniform() + uniform() + uniform() + uniform()) - 2) * 1.7320508 }
        mutating func normals(_ n: Int, std: Float) -> [Float] { (0..<n).map { _ in normal() * std } }
    }

    /// fp32 values for every tensor of `config`, spread like trained weights: projections
    /// N(0, 1/sqrt(in)), norms near 1, A_log = log(1…N), D near 1, Δ bias giving Δ in
    /// [0.001, 0.1], embeddings N(0, 1).
    static func values(_ c: HymbaConfig, seed: UInt64) -> [String: (shape: [Int], values: [Float])] {
        var rng = Random(seed: seed)
        var out: [String: (shape: [Int], values: [Float])] = [:]
        for (name, shape) in c.expectedTensors {
            let count = shape.reduce(1, *)
            let n = shape.last ?? 1
            var v: [Float]
            if name.hasSuffix("A_log.0") {
                v = (0..<count).map { Float(Foundation.log(Double($0 % n + 1))) }
            } else if name.hasSuffix("dt_proj.0.bias") {
                v = (0..<count).map { _ in
                    let dt = Foundation.exp(Foundation.log(0.001) + Double(rng.uniform()) * (Foundation.log(0.1) - Foundation.log(0.001)))
                    return Float(dt + Foundation.log(-Foundation.expm1(-dt)))
                }
            } else if name.hasSuffix("D.0") || name.contains("layernorm") || name.hasSuffix("norm.weight") {
                v = (0..<count).map { _ in 1 + 0.1 * rng.normal() }
            } else if name.hasSuffix("conv1d.weight") || name.hasSuffix("conv1d.bias") {
                v = rng.normals(count, std: 0.3)
            } else if name == "model.embed_tokens.weight" || name == "model.memory_tokens" {
                v = rng.normals(count, std: 1)
            } else {
                v = rng.normals(count, std: 1 / Float(n).squareRoot())
            }
            out[name] = (shape, v)
        }
        return out
    }

    static func model(_ c: HymbaConfig, seed: UInt64 = 1, matrices: StorageType = .bf16) -> HymbaModel {
        try! HymbaModel(source: ReencodedWeights(config: c, values: values(c, seed: seed), matrices: matrices))
    }

    /// A real config (Tests/Fixtures/configs/NAME/config.json) cut to `layers` layers with the
    /// given roles. `shrink` divides the head size (and the MLP width) to keep unoptimized
    /// builds fast; every other feature (H:Hkv, dv = 2·dk, R, N, K, M, W, RoPE) is kept.
    static func realConfig(_ name: String, layers: Int, global: Set<Int>, groups: [[Int]], shrink: Int, vocab: Int) -> HymbaConfig {
        let url = fixturesDirectory.appendingPathComponent("configs/\(name)/config.json")
        var c = try! HymbaConfig(jsonData: Data(contentsOf: url))
        c.numLayers = layers
        c.globalLayers = global
        c.kvReuseGroups = groups
        c.hiddenSize /= shrink
        c.intermediateSize /= shrink
        c.vocabSize = vocab
        return c
    }
}
