import Foundation
import HymbaFormat
import HymbaTestSupport
import Testing
@testable import HymbaRuntime

/// The q8 KV cache (`--kv-type q8`: int8 codes with one scale per position and head; the meta
/// positions stay f32) against NVIDIA's logits.
///
/// Within 0.1 on the trained model (tiny-code-hymba, measured 0.062) and on tiny-hymba-untied
/// (0.033). tiny-hymba's random weights make keys and values i.i.d. Gaussian-like (max/rms 2.1
/// per head, no mean or channel structure to exploit) and its logits reach ±50, so the int8
/// rounding (noise ≈ rms/200 per element, about 18× the f16 cache's) reaches 0.41 there
/// (‖Δ‖/‖ref‖ 0.0067; the f16 cache: 0.017): no 8-bit code gets it under 0.1 (an optimal
/// non-uniform one would gain 1.6×), so it is held to ‖Δ‖/‖ref‖ ≤ 0.01 and |Δ| ≤ 0.5.
/// `tools/kv-bits/run.sh` measures the bits that 0.1 would take there: per-head codes give
/// 0.41 at 8 bits, 0.25 at 9, 0.11 at 10, 0.057 at 11; clipping the scale only makes it worse.
@Suite("q8 KV cache")
struct QuantizedKVTests {
    static let modes: [EvalMode] = runtimeIsOptimized ? [.full, .incremental, .chunked(7)] : [.full]

    @Test("every logit within 0.1 (absolute) of the fixtures on the trained and untied models; tiny-hymba: relative 0.01, absolute 0.5",
          arguments: ["tiny-hymba", "tiny-hymba-untied", "tiny-code-hymba"])
    func accuracy(_ name: String) throws {
        let fx = name == "tiny-hymba" ? Fixture.tiny : name == "tiny-hymba-untied" ? Fixture.untied : Fixture.code
        let session = try HymbaSession(model: fx.model, options: HymbaOptions(kvType: .q8, prefillChunk: 16))
        let bound: Float = name == "tiny-hymba" ? 0.5 : 0.1
        var worst: Float = 0, rel: Float = 0
        TestNotes.kernel("kv \(name)", session.kernels.name.rawValue)
        if !runtimeIsOptimized { TestNotes.skipped("kv \(name)", "incremental and chunked modes (debug build: full mode only)") }
        for mode in Self.modes {
            for (i, ids) in fx.sequences.enumerated() {
                let logits = try session.eval(ids: ids, mode: mode)
                let diff = maxAbsDiff(logits, fx.logits(i))
                worst = max(worst, diff)
                rel = max(rel, relativeError(logits, reference: fx.logits(i)))
                #expect(diff <= bound, "\(name) sequence \(i) (\(ids.count) tokens, \(mode)): max |Δlogit| \(diff)")
            }
        }
        #expect(rel <= 0.01)
        print("[kv] \(name) bf16 weights, q8 KV: max |Δlogit| = \(worst), ‖Δ‖/‖ref‖ = \(rel)")
    }

    @Test("q8 slots take a quarter of f32 plus a scale per head for keys and values")
    func sizes() throws {
        let c = Fixture.tiny.model.config
        let q8 = MemoryReport(config: c, options: HymbaOptions(contextLength: 64, kvType: .q8, prefillChunk: 16))
        let f32 = MemoryReport(config: c, options: HymbaOptions(contextLength: 64, kvType: .f32, prefillChunk: 16))
        let perHead = c.headDim + c.valueHeadDim
        for (a, b) in zip(q8.kvLayers, f32.kvLayers) {
            #expect(a.bytesPerSlot == c.numKVHeads * (perHead + 8))
            #expect(b.bytesPerSlot == c.numKVHeads * perHead * 4)
            #expect(a.metaBytesPerSlot == b.metaBytesPerSlot, "meta positions stay f32")
        }
        let session = try HymbaSession(model: Fixture.tiny.model, options: HymbaOptions(contextLength: 64, kvType: .q8, prefillChunk: 16))
        #expect(session.memoryReport.kvBytes == q8.kvBytes)
    }
}
