import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// Single-thread speed of the efficient path on a random model of the full Hymba-125M shape
/// (24 layers, d 512, vocabulary 32001). Off unless HYMBA_BENCH is set; run with
/// `HYMBA_BENCH=1 swift test -c release --filter ThroughputTests`.
@Suite("Throughput")
struct ThroughputTests {
    @Test("prefill and decode tokens per second, Hymba-125M shape", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil),
          arguments: [StorageType.bf16, .q8, .q4])
    func throughput(type: StorageType) throws {
        let url = fixturesDirectory.appendingPathComponent("configs/hymba-125m/config.json")
        let c = try HymbaConfig(jsonData: Data(contentsOf: url))
        let model = SyntheticModels.model(c, seed: 1, matrices: type)
        var t = Date()
        _ = model.metaPrefix
        let prefixTime = Date().timeIntervalSince(t)
        let session = try HymbaSession(model: model, options: HymbaOptions(contextLength: 2048, kvType: .f16, prefillChunk: 128))
        let ids = SyntheticModelTests.ids(256, vocab: c.vocabSize, seed: 1)
        t = Date()
        try session.prefill(tokens: ids)
        let prefill = Double(ids.count) / Date().timeIntervalSince(t)
        t = Date()
        for i in 0..<32 { try session.decode(token: ids[i]) }
        let decode = 32 / Date().timeIntervalSince(t)
        print("[throughput] hymba-125m shape, \(type) weights, f16 KV, 1 thread: meta prefix \(String(format: "%.2f", prefixTime)) s, prefill \(String(format: "%.1f", prefill)) tok/s (256 tokens, chunk 128), decode \(String(format: "%.1f", decode)) tok/s")
        #expect(prefill > 0 && decode > 0)
    }

    @Test("matrix-matrix product multiply-adds per second, fp32 and integer kernels", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil))
    func matMulRate() {
        for type in [StorageType.q8, .q4] { matMulRate(type) }
    }

    func matMulRate(_ type: StorageType) {
        let rows = 2048, n = 1536, tokens = 128
        let w = KernelTests.encode(type, rows: rows, length: n, seed: 1)
        defer { w.storage.deallocate() }
        var rng = SyntheticModels.Random(seed: 2)
        let x = rng.normals(tokens * n, std: 1)
        for integer in [false, true] where !integer || MatMul.hasIntegerKernel {
            let lda = MatMul.arrangedRowFloats(n)
            var arranged = [Float](repeating: 0, count: tokens * lda), y = [Float](repeating: 0, count: tokens * rows)
            var tile = [Float](repeating: 0, count: MatMul.tileFloats)
            var best = Double.infinity
            for _ in 0..<5 {
                let t = Date()
                MatMul.arrangeRows(type, x, ldx: n, tokens: tokens, n: n, into: &arranged, ldo: lda, integer: integer)
                MatMul.run(w.data, arranged: arranged, ldxa: lda, tokens: tokens, y: &y, ldy: rows, rows: 0..<rows, tile: &tile, integer: integer)
                best = min(best, Date().timeIntervalSince(t))
            }
            print("[throughput] \(type) matmul \(rows)x\(n) x \(tokens) tokens, \(integer ? "integer" : "fp32") kernel, 1 thread: \(String(format: "%.1f", Double(rows * n * tokens) / best / 1e9)) GMAC/s")
            #expect(best > 0)
        }
    }
}
