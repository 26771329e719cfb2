import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// The efficient path against NVIDIA's outputs (bf16 weights as stored, f32 keys/values):
/// every logit within 1e-3 (Tests/Fixtures/FIXTURES-README.md), in every feeding mode.
@Suite("Fixtures")
struct FixtureTests {
    static let modes: [EvalMode] = [.full, .incremental, .chunked(7), .chunked(16)]

    @Test("tiny-hymba logits and hidden states, bf16 weights, f32 KV", arguments: modes)
    func tinyHymba(mode: EvalMode) throws {
        try check(Fixture.tiny, mode: mode)
    }

    @Test("tiny-hymba-untied logits and hidden states, bf16 weights, f32 KV", arguments: modes)
    func tinyHymbaUntied(mode: EvalMode) throws {
        try check(Fixture.untied, mode: mode)
    }

    func check(_ fx: Fixture, mode: EvalMode) throws {
        let session = try HymbaSession(model: fx.model, options: HymbaOptions(kvType: .f32, prefillChunk: 64))
        var worst: Float = 0
        for (i, ids) in fx.sequences.enumerated() {
            let (logits, hidden) = try session.evalWithHiddenStates(ids: ids, mode: mode)
            let diff = maxAbsDiff(logits, fx.logits(i))
            worst = max(worst, diff)
            let wrong = firstWrongLayer(hidden, { fx.hidden(i, layer: $0) }, tol: 1e-3)
            #expect(wrong == nil, "\(fx.name) sequence \(i) (\(ids.count) tokens, \(mode)): hidden states first differ at layer \(wrong?.layer ?? -1) by \(wrong?.diff ?? 0)")
            #expect(diff <= 1e-3, "\(fx.name) sequence \(i) (\(ids.count) tokens, \(mode)): max logit error \(diff)")
        }
        print("[fixture] \(fx.name) \(mode) bf16 weights, f32 KV: max |Δlogit| = \(worst)")
    }
}
