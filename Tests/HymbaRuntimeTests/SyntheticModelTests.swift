import Foundation
import HymbaFormat
import HymbaKernels
import Testing
@testable import HymbaRuntime

/// The efficient path against the scalar reference on random models of the real shapes.
@Suite("Synthetic models")
struct SyntheticModelTests {
    /// Largest |Δ| over largest |reference logit|.
    static func scaledError(_ got: [Float], _ ref: [Float]) -> Float {
        maxAbsDiff(got, ref) / max(ref.map(abs).max() ?? 1, 1e-30)
    }

    static func ids(_ n: Int, vocab: Int, seed: UInt64) -> [Int] {
        var rng = SyntheticModels.Random(seed: seed)
        return [1] + (1..<n).map { _ in Int(rng.next() % UInt64(vocab)) }
    }

    struct RealShape: CustomStringConvertible, Sendable {
        var config: String
        var layers: Int
        var global: Set<Int>
        var groups: [[Int]]
        var description: String { "\(config), \(layers) layers" }
    }

    /// 1.5B: GQA 25:5, dv = 2·dk, dt_rank 100; 125M: 8:2, dt_rank 32. Both: 128 meta tokens,
    /// W = 1024, NTK RoPE. Layer 0 global with its own cache, layer 1 a local producer, layer 2
    /// its local consumer (and for the 1.5B a second consumer, global, layer 3).
    static let shapes = [
        RealShape(config: "hymba-1.5b", layers: 4, global: [0, 3], groups: [[1, 2, 3]]),
        RealShape(config: "hymba-125m", layers: 3, global: [0], groups: [[1, 2]]),
    ]

    @Test("real shapes: efficient path = scalar reference within 1e-4 of the largest logit", arguments: shapes)
    func realShapes(_ shape: RealShape) throws {
        // Unoptimized builds divide the head size by 8 (dk 8) and use a 1000-token vocabulary.
        let optimized = runtimeIsOptimized
        let shrink = optimized ? (shape.config == "hymba-1.5b" ? 2 : 1) : 8
        // Unoptimized, the 1.5B drops its 4th layer (a global consumer of a local producer, also
        // covered by `mixedGroup`): the 128 meta rows dominate the cost there.
        let layers = optimized ? shape.layers : min(shape.layers, 3)
        let groups = shape.groups.map { $0.filter { $0 < layers } }
        let c = SyntheticModels.realConfig(shape.config, layers: layers, global: shape.global.filter { $0 < layers },
                                           groups: groups, shrink: shrink, vocab: optimized ? 32001 : 1000)
        #expect(c.numMetaTokens == 128 && c.slidingWindow == 1024 && c.valueHeadDim == 2 * c.headDim)
        let model = SyntheticModels.model(c, seed: 7)
        let ids = Self.ids(optimized ? 40 : 12, vocab: c.vocabSize, seed: 3)
        let ref = try ReferenceForward.run(model: model, ids: ids).logits
        for backend in TestBackends.names {
        let session = try HymbaSession(model: model, options: HymbaOptions(contextLength: 64, kvType: .f32, prefillChunk: 16, kernels: backend))
        for mode in [EvalMode.full, .incremental, .chunked(5)] {
            let got = try session.eval(ids: ids, mode: mode)
            let err = Self.scaledError(got, ref)
            print("[real shapes] \(backend): \(shape.config), \(c.numLayers) layers, d=\(c.hiddenSize) H=\(c.numHeads)/\(c.numKVHeads) R=\(c.dtRank) M=\(c.numMetaTokens) \(mode): max |Δ| / max |logit| = \(err)")
            #expect(err <= 1e-4, "\(backend): \(shape) \(mode): \(err)")
        }
        }
    }

    /// A local producer whose consumer is global: the producer's cache must keep every position
    /// (MODEL.md 2a: the reading layer's role decides the mask), and the ring of a purely local
    /// group must still give exact results past the window with every chunk size.
    @Test("local producer with a global consumer; rings past the window", arguments: [1, 3, 8])
    func mixedGroup(prefillChunk: Int) throws {
        var c = try HymbaConfig(jsonData: Data(contentsOf: fixturesDirectory.appendingPathComponent("tiny-hymba/config.json")))
        c.numLayers = 5
        c.globalLayers = [2]
        c.kvReuseGroups = [[1, 2], [3, 4]]
        c.slidingWindow = 6
        c.vocabSize = 300
        c.hiddenSize = 32
        c.intermediateSize = 40
        let model = SyntheticModels.model(c, seed: 11)
        let ids = Self.ids(30, vocab: c.vocabSize, seed: 5)
        let ref = try ReferenceForward.run(model: model, ids: ids).logits
        let session = try HymbaSession(model: model, options: HymbaOptions(contextLength: 40, kvType: .f32, prefillChunk: prefillChunk))
        let report = session.memoryReport
        #expect(report.kvLayers.map(\.layer) == [0, 1, 3])
        #expect(report.kvLayers.map(\.servesGlobal) == [false, true, false])
        #expect(session.caches[1]!.regularSlots == 40, "producer 1 serves global layer 2: every position")
        #expect(session.caches[3]!.regularSlots == 6 + prefillChunk, "local group: ring of W + chunk")
        #expect(session.caches[0]!.regularSlots == 6 + prefillChunk, "local layer with its own cache: ring")
        for mode in [EvalMode.full, .incremental, .chunked(4), .chunked(11)] {
            let got = try session.eval(ids: ids, mode: mode)
            let err = Self.scaledError(got, ref)
            #expect(err <= 1e-4, "chunk \(prefillChunk), \(mode): \(err)")
        }
    }

    @Test("no meta tokens and no window")
    func noMetaTokens() throws {
        var c = try HymbaConfig(jsonData: Data(contentsOf: fixturesDirectory.appendingPathComponent("tiny-hymba-untied/config.json")))
        c.numMetaTokens = 0
        c.vocabSize = 200
        let model = SyntheticModels.model(c, seed: 2, matrices: .f32)
        let ids = Self.ids(10, vocab: 200, seed: 9)
        let ref = try ReferenceForward.run(model: model, ids: ids).logits
        let session = try HymbaSession(model: model, options: HymbaOptions(kvType: .f32, prefillChunk: 4))
        for mode in [EvalMode.full, .incremental] {
            #expect(Self.scaledError(try session.eval(ids: ids, mode: mode), ref) <= 1e-4)
        }
    }
}

@Suite("Meta prefix")
struct MetaPrefixTests {
    static func smallModel() -> HymbaModel {
        var c = try! HymbaConfig(jsonData: Data(contentsOf: fixturesDirectory.appendingPathComponent("tiny-hymba/config.json")))
        c.vocabSize = 100
        c.numLayers = 3
        c.globalLayers = [0]
        c.kvReuseGroups = [[1, 2]]
        return SyntheticModels.model(c, seed: 4)
    }

    @Test("a prefix built from stored arrays gives the same results; a wrong one is refused or changes them")
    func storedPrefix() throws {
        let model = Self.smallModel()
        let ids = [1, 5, 9, 33, 2, 71]
        let computed = model.metaPrefix
        #expect(computed.keys[2].isEmpty && computed.values[2].isEmpty, "consumer layer 2 has no keys of its own")
        #expect(computed.keys[0].count == model.config.numMetaTokens * model.config.numKVHeads * model.config.headDim)
        let expected = try HymbaSession(model: model, options: HymbaOptions(kvType: .f32)).eval(ids: ids, mode: .full)

        // Same arrays, loaded into a second model over the same weights.
        let other = try HymbaModel(source: model.source)
        try other.setMetaPrefix(MetaPrefix(metaTokens: computed.metaTokens, keys: computed.keys, values: computed.values,
                                           convStates: computed.convStates, ssmStates: computed.ssmStates))
        #expect(other.hasMetaPrefix)
        let loaded = try HymbaSession(model: other, options: HymbaOptions(kvType: .f32)).eval(ids: ids, mode: .full)
        #expect(loaded == expected)

        // The prefix is really used: zeroed SSM states change the logits.
        let third = try HymbaModel(source: model.source)
        try third.setMetaPrefix(MetaPrefix(metaTokens: computed.metaTokens, keys: computed.keys, values: computed.values,
                                           convStates: computed.convStates, ssmStates: computed.ssmStates.map { $0.map { _ in 0 } }))
        let changed = try HymbaSession(model: third, options: HymbaOptions(kvType: .f32)).eval(ids: ids, mode: .full)
        #expect(maxAbsDiff(changed, expected) > 1e-3)

        // Wrong sizes are refused with a description.
        let bad = MetaPrefix(metaTokens: computed.metaTokens, keys: computed.keys, values: computed.values,
                             convStates: computed.convStates, ssmStates: Array(computed.ssmStates.dropLast()))
        #expect(throws: HymbaRuntimeError.self) { try other.setMetaPrefix(bad) }
        let badKeys = MetaPrefix(metaTokens: computed.metaTokens, keys: computed.keys.map { Array($0.dropLast()) }, values: computed.values,
                                 convStates: computed.convStates, ssmStates: computed.ssmStates)
        do { try other.setMetaPrefix(badKeys); Issue.record("accepted keys of the wrong size") } catch {
            #expect("\(error)".contains("layer 0 keys"))
        }
    }

    @Test("the prefix does not depend on the prefill chunk")
    func chunkIndependent() throws {
        let model = Self.smallModel()
        let a = MetaPrefix(computing: model)
        // Meta rows one at a time through a session with chunk 1.
        let s = try HymbaSession(model: model, options: HymbaOptions(contextLength: 1, kvType: .f32, prefillChunk: 1), startFromPrefix: false)
        s.runMetaRows()
        let p = model.config.numMetaTokens, kd = model.config.numKVHeads * model.config.headDim
        var k = [Float](repeating: 0, count: kd), v = [Float](repeating: 0, count: model.config.numKVHeads * model.config.valueHeadDim)
        s.caches[0]!.read(position: p - 1, keys: &k, values: &v)
        #expect(maxAbsDiff(k, Array(a.keys[0][((p - 1) * kd)...])) <= 1e-5)
        #expect(maxAbsDiff(Array(UnsafeBufferPointer(start: s.ssmState[1], count: a.ssmStates[1].count)), a.ssmStates[1]) <= 1e-5)
    }
}

@Suite("Errors")
struct ErrorTests {
    @Test("context overflow, bad token ids, bad options and buffers throw readable errors")
    func inputErrors() throws {
        let model = MetaPrefixTests.smallModel()
        let V = model.config.vocabSize
        let s = try HymbaSession(model: model, options: HymbaOptions(contextLength: 10, prefillChunk: 4))
        try s.prefill(tokens: [1, 2, 3, 4, 5, 6, 7, 8])
        do { try s.prefill(tokens: [1, 2, 3]); Issue.record("overflow accepted") } catch let e as HymbaRuntimeError {
            #expect(e == .contextOverflow(position: 8, requested: 3, contextLength: 10))
            #expect(e.description.contains("context length 10"))
        }
        #expect(s.position == 8, "a refused prefill changes nothing")
        try s.decode(token: 3)
        try s.decode(token: 4)
        #expect(throws: HymbaRuntimeError.contextOverflow(position: 10, requested: 1, contextLength: 10)) { try s.decode(token: 5) }

        s.reset()
        #expect(s.position == 0)
        #expect(throws: HymbaRuntimeError.tokenOutOfVocabulary(token: V, index: 1, vocabSize: V)) { try s.prefill(tokens: [1, V]) }
        #expect(throws: HymbaRuntimeError.tokenOutOfVocabulary(token: -1, index: 0, vocabSize: V)) { try s.decode(token: -1) }
        #expect(s.position == 0)
        var small = [Float](repeating: 0, count: V)
        _ = small.withUnsafeMutableBufferPointer { buf in
            #expect(throws: HymbaRuntimeError.bufferTooSmall(what: "prefill logits", needed: 2 * V, found: V)) { try s.prefill(tokens: [1, 2], allLogits: buf) }
        }
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession(model: model, options: HymbaOptions(contextLength: 0)) }
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession(model: model, options: HymbaOptions(contextLength: model.config.maxPositionEmbeddings + 1)) }
        #expect(throws: HymbaRuntimeError.self) { try HymbaSession(model: model, options: HymbaOptions(prefillChunk: 0)) }
        #expect(throws: HymbaRuntimeError.self) { try s.eval(ids: [1, 2], mode: .chunked(0)) }
    }

    /// A weight source that hides one tensor or reports a wrong shape.
    final class BrokenSource: WeightSource {
        let inner: WeightSource
        let missing: String?
        let reshaped: String?
        init(_ inner: WeightSource, missing: String? = nil, reshaped: String? = nil) {
            self.inner = inner; self.missing = missing; self.reshaped = reshaped
        }
        var config: HymbaConfig { inner.config }
        func tensor(_ name: String) throws -> TensorData {
            if name == missing { throw HymbaRuntimeError.missingTensor(name: name, reason: "hidden by the test") }
            let t = try inner.tensor(name)
            if name == reshaped { return TensorData(name: name, type: t.type, shape: [t.rows * t.rowLength], segments: t.segments) }
            return t
        }
    }

    @Test("missing tensors and wrong shapes are named")
    func weightErrors() throws {
        let source = Fixture.untied.checkpoint
        do { _ = try HymbaModel(source: BrokenSource(source, missing: "model.layers.1.mamba.D.0")); Issue.record("accepted") } catch {
            #expect("\(error)".contains("model.layers.1.mamba.D.0"))
        }
        do { _ = try HymbaModel(source: BrokenSource(source, reshaped: "model.layers.2.mamba.x_proj.0.weight")); Issue.record("accepted") } catch let e as HymbaRuntimeError {
            #expect(e == .tensorShape(name: "model.layers.2.mamba.x_proj.0.weight", expected: [36, 96], found: [36 * 96]))
        }
        #expect(throws: (any Error).self) { try SafetensorsCheckpoint(path: fixturesDirectory.appendingPathComponent("no-such-model").path) }
    }
}
