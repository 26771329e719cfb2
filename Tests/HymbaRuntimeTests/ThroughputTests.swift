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
}
