import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// `HymbaSession.decodeBatch` against each session's own `decode(token:)`: the batched step
/// keeps the decode arithmetic (the same per-row activation rounding, the same per-row dot
/// products), so the logits must be bit-identical, and greedy continuations equal, for every
/// weight type, with sessions at different positions joining and leaving the batch.
@Suite("Batched decoding")
struct BatchedDecodeTests {
    static func model(_ type: StorageType) -> HymbaModel {
        var c = try! HymbaConfig(jsonData: Data(contentsOf: fixturesDirectory.appendingPathComponent("tiny-hymba/config.json")))
        c.vocabSize = 200
        c.numLayers = 4
        c.globalLayers = [0, 3]
        c.kvReuseGroups = [[1, 2]]
        return SyntheticModels.model(c, seed: 9, matrices: type)
    }

    static func argmax(_ l: UnsafeBufferPointer<Float>) -> Int { l.indices.max { l[$0] < l[$1] }! }

    /// Prompts of different lengths (so the sessions sit at different positions, some past the
    /// sliding window), greedy decoding of `steps` tokens: batched (session 3 joins after 5
    /// steps, session 1 leaves after 12) and alone, logits compared at every step.
    static func compare(_ model: HymbaModel, prompts: [[Int]], steps: Int, threads: Int) throws {
        let options = HymbaOptions(contextLength: 160, kvType: .f16, prefillChunk: 8, threads: threads)
        let batched = try prompts.map { _ in try HymbaSession(model: model, options: options) }
        let alone = try prompts.map { _ in try HymbaSession(model: model, options: options) }
        var next = [Int](repeating: 0, count: prompts.count)
        for i in prompts.indices {
            try batched[i].prefill(tokens: prompts[i])
            try alone[i].prefill(tokens: prompts[i])
            next[i] = argmax(alone[i].logits)
        }
        var fed = [Int](repeating: 0, count: prompts.count)
        for step in 0..<steps {
            let active = prompts.indices.filter { i in (i != 3 || step >= 5) && (i != 1 || step < 12) }
            try HymbaSession.decodeBatch(active.map { batched[$0] }, tokens: active.map { next[$0] })
            for i in active {
                try alone[i].decode(token: next[i])
                let a = Array(alone[i].logits), b = Array(batched[i].logits)
                #expect(a == b, "\(model.config.numLayers) layers, session \(i), step \(step): batched logits differ by \(zip(a, b).map { abs($0 - $1) }.max()!)")
                #expect(batched[i].position == alone[i].position)
                next[i] = argmax(alone[i].logits)
                fed[i] += 1
            }
        }
        #expect(fed == prompts.indices.map { $0 == 3 ? max(0, steps - 5) : $0 == 1 ? min(steps, 12) : steps })
    }

    @Test("bit-identical to each session's own decode", arguments: [StorageType.f32, .bf16, .q8, .q4])
    func sameLogits(type: StorageType) throws {
        let model = Self.model(type)
        let prompts = [[1, 5, 9], Array(1...40), [3], Array((7...80).reversed())]
        try Self.compare(model, prompts: prompts, steps: 20, threads: 2)
        try Self.compare(model, prompts: prompts, steps: 6, threads: 1)
    }

    @Test("the shipped model: greedy tokens batched equal those decoded alone")
    func shippedModel() throws {
        let path = fixturesDirectory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("models/tiny-code-hymba-q8.hymba").path
        let model = try HymbaModel(file: HymbaFile(path: path))
        try Self.compare(model, prompts: [[1, 822, 18755, 29898], Array(100...170), [1], [1, 1024, 2048]], steps: 24, threads: 2)
    }

    @Test("bad batches are refused before anything changes")
    func refused() throws {
        let model = Self.model(.q8)
        let options = HymbaOptions(contextLength: 4, prefillChunk: 4, threads: 1)
        let a = try HymbaSession(model: model, options: options), b = try HymbaSession(model: model, options: options)
        let other = try HymbaSession(model: Self.model(.q8), options: options)
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession.decodeBatch([a, a], tokens: [1, 2]) }
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession.decodeBatch([a, b], tokens: [1]) }
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession.decodeBatch([a, b], tokens: [1, 200]) }
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession.decodeBatch([a, other], tokens: [1, 2]) }
        try b.prefill(tokens: [1, 2, 3, 4])
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession.decodeBatch([a, b], tokens: [1, 2]) }
        #expect(a.position == 0 && b.position == 4)
        try HymbaSession.decodeBatch([], tokens: [])
    }
}
