import Foundation
import Testing
import HymbaTestSupport
import HymbaFormat

/// q4 against GGML's Q4_0 on the fixture checkpoints: on every tensor that the default recipe
/// stores as q4, q4's RMSE must be at most 0.9× Q4_0's (the claim in formats/HYMBA-FORMAT.md).
/// Rows are sampled (evenly spaced, at most `rowsPerTensor`) to keep debug runs short; set
/// HYMBA_Q4_ALL_ROWS=1 to use every row.
@Suite struct QuantizationQualityTests {
    static let rowsPerTensor = ProcessInfo.processInfo.environment["HYMBA_Q4_ALL_ROWS"] == nil ? 64 : Int.max

    /// The tensors of the default recipe's q4 set (as in the converter's QuantizationRecipe).
    static func isQ4Tensor(_ name: String) -> Bool {
        let suffixes = [
            ".mamba.in_proj.weight", ".mamba.out_proj.weight", ".mamba.x_proj.0.weight", ".mamba.dt_proj.0.weight",
            ".moe.experts.0.gate_proj.weight", ".moe.experts.0.up_proj.weight", ".moe.experts.0.down_proj.weight",
        ]
        return name == "model.embed_tokens.weight" || name == "lm_head.weight" || suffixes.contains { name.hasSuffix($0) }
    }

    /// (model directory, number of q4 tensors it must have: 7 per layer + embeddings (+ lm_head)).
    static let models: [(String, Int)] = [("tiny-hymba", 7 * 8 + 1), ("tiny-hymba-untied", 7 * 3 + 2), ("tiny-code-hymba", 7 * 4 + 1)]

    @Test(arguments: models.map(\.0)) func q4BeatsQ4_0OnEveryRecipeTensor(model: String) throws {
        let dir = TestPaths.fixtures + "/" + model
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasSuffix(".safetensors") && $0 != "expected.safetensors" }.sorted()
        var ratios: [(String, Double)] = []
        for file in files {
            let st = try SafetensorsFile(path: dir + "/" + file)
            for entry in st.entries where Self.isQ4Tensor(entry.name) {
                let t = try st.tensor(entry.name)
                var cmp = Q4VersusQ4_0()
                var row = [Float](repeating: 0, count: t.rowLength)
                let step = max(1, t.rows / min(t.rows, Self.rowsPerTensor))
                for r in stride(from: 0, to: t.rows, by: step) {
                    row.withUnsafeMutableBufferPointer { t.decodeRow(r, into: $0.baseAddress!) }
                    cmp.add(row: row)
                }
                ratios.append((entry.name, cmp.ratio))
            }
        }
        let expectedCount = Self.models.first { $0.0 == model }!.1
        #expect(ratios.count == expectedCount, "q4 tensors found in \(model)")
        for (name, r) in ratios {
            print(String(format: "q4/Q4_0 RMSE %@ %@: %.3f", model, name, r))
            #expect(r <= 0.9, "\(model) \(name): q4/Q4_0 RMSE ratio \(r)")
        }
        let values = ratios.map(\.1)
        print(String(format: "q4/Q4_0 RMSE %@: min %.3f max %.3f mean %.3f over %d tensors", model,
                     values.min() ?? 0, values.max() ?? 0, values.reduce(0, +) / Double(max(1, values.count)), values.count))
    }

    @Test func q4BeatsQ4_0OnGaussianAndHeavyTailedRows() {
        var rng = TestRandom(seed: 31)
        for n in [100, 1600, 5504] {
            var gaussian = Q4VersusQ4_0(), heavy = Q4VersusQ4_0()
            for _ in 0..<4 {
                gaussian.add(row: (0..<n).map { _ in rng.normal() })
                // Student-t-like: a Gaussian over a random scale.
                heavy.add(row: (0..<n).map { _ in rng.normal() / max(0.2, abs(rng.normal())) })
            }
            #expect(gaussian.ratio <= 0.85, "Gaussian rows of \(n): \(gaussian.ratio)")
            #expect(heavy.ratio <= 0.9, "heavy-tailed rows of \(n): \(heavy.ratio)")
        }
    }
}
