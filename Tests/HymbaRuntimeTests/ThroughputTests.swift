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

    /// Matrix-vector products one thread reads per second: a matrix that stays in the cache
    /// (the kernel's own speed) and 24 matrices of 128 MiB in all (weights streamed from
    /// memory, as in decoding a model larger than the cache).
    @Test("matrix-vector product weights per second, portable and integer kernels", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil))
    func matVecRate() {
        for type in [StorageType.q8, .q4] { matVecRate(type) }
    }

    func matVecRate(_ type: StorageType) {
        let n = 1536
        let rows = (type == .q4 ? 120 : 64) * 1024 * 1024 / type.rowBytes(length: n) / 24
        let matrices = (0..<24).map { KernelTests.encode(type, rows: $0 == 0 ? 256 : rows, length: n, seed: UInt64($0)) }
        defer { for m in matrices { m.storage.deallocate() } }
        var rng = SyntheticModels.Random(seed: 2)
        let x = rng.normals(n, std: 1)
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: ArrangedInput.floats(capacity: n))
        defer { storage.deallocate() }
        var y = [Float](repeating: 0, count: rows)
        for integer in [false, true] where !integer || MatMul.hasIntegerKernel {
            let input = ArrangedInput(storage: storage, capacity: n, integer: integer)
            input.arrange(type, x, n)
            // In cache: the first (small) matrix, many times.
            var best = Double.infinity
            for _ in 0..<5 {
                let t = Date()
                for _ in 0..<100 { MatVec.run(matrices[0].data, input, &y, rows: 0..<256) }
                best = min(best, Date().timeIntervalSince(t))
            }
            let hot = Double(100 * 256 * n) / best / 1e9
            best = .infinity
            for _ in 0..<3 {
                let t = Date()
                for m in matrices.dropFirst() { MatVec.run(m.data, input, &y, rows: 0..<rows) }
                best = min(best, Date().timeIntervalSince(t))
            }
            let bytes = Double(23 * rows * type.rowBytes(length: n))
            print("[throughput] \(type) matvec, \(integer ? "integer" : "portable") kernel, 1 thread: in cache \(String(format: "%.1f", hot)) G weights/s; streamed \(String(format: "%.1f", Double(23 * rows * n) / best / 1e9)) G weights/s (\(String(format: "%.1f", bytes / best / 1e9)) GB/s)")
            #expect(best > 0)
        }
    }
}
