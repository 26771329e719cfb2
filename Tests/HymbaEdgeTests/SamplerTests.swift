import Foundation
import Testing
@testable import HymbaRuntime

/// Logits whose softmax is `probs`.
func logits(fromProbabilities probs: [Double]) -> [Float] { probs.map { Float(log($0)) } }

/// Deterministic pseudo-random logits (a spread like a trained model's: a few high, a long tail).
func randomLogits(_ n: Int, seed: UInt64) -> [Float] {
    var g = Xoshiro256StarStar(seed: seed)
    return (0..<n).map { _ in Float(g.nextUnit() * 8 - 4) + (g.nextUnit() < 0.01 ? 6 : 0) }
}

@Suite("Sampler")
struct SamplerTests {
    func draws(_ params: SamplingParams, _ inputs: [[Float]]) throws -> [Int32] {
        let s = try Sampler(params: params, vocabularySize: inputs[0].count)
        return try inputs.map { let t = try s.sample($0); s.accept(t); return t }
    }

    @Test("the same seed and inputs give the same tokens; reset repeats the stream")
    func determinism() throws {
        let inputs = (0..<200).map { randomLogits(32001, seed: UInt64($0)) }
        let p = SamplingParams(temperature: 1.0, topK: 0, topP: 0.98, minP: 0, repeatPenalty: 1.1, seed: 1234)
        let a = try draws(p, inputs), b = try draws(p, inputs)
        #expect(a == b)
        #expect(Set(a).count > 20, "a sampled (not greedy) stream")
        let s = try Sampler(params: p, vocabularySize: 32001)
        let first = try inputs.prefix(10).map { try s.sample($0) }
        s.reset()
        #expect(try inputs.prefix(10).map { try s.sample($0) } == first)
        // Pinned values (computed independently in Python): the stream may not change between
        // versions or platforms.
        var rng = Xoshiro256StarStar(seed: 42)
        #expect((0..<3).map { _ in rng.next() } == [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1])
    }

    @Test("different seeds give different tokens on a flat distribution")
    func seedsDiffer() throws {
        let flat = [[Float]](repeating: [Float](repeating: 0, count: 1000), count: 50)
        let p = SamplingParams(temperature: 1, topK: 0, topP: 1, minP: 0)
        var streams = Set<[Int32]>()
        for seed in 0..<5 as Range<UInt64> {
            var q = p; q.seed = seed
            streams.insert(try draws(q, flat))
        }
        #expect(streams.count == 5)
        for s in streams { #expect(Set(s).count > 40, "flat: 50 draws over 1000 ids are nearly all distinct") }
    }

    @Test("draw frequencies match the probabilities")
    func frequencies() throws {
        let probs = [0.5, 0.25, 0.15, 0.1]
        let l = logits(fromProbabilities: probs)
        let s = try Sampler(params: SamplingParams(temperature: 1, topK: 0, topP: 1, minP: 0, seed: 7), vocabularySize: 4)
        var counts = [Int](repeating: 0, count: 4)
        let n = 40_000
        for _ in 0..<n { counts[Int(try s.sample(l))] += 1 }
        for i in 0..<4 { #expect(abs(Double(counts[i]) / Double(n) - probs[i]) < 0.01, "id \(i): \(counts[i])") }
    }

    @Test("greedy: the highest logit, lowest id on ties, NaN never chosen")
    func greedy() throws {
        let s = try Sampler(params: .greedy, vocabularySize: 5)
        #expect(try s.sample([0, 3, 1, 3, -1]) == 1)
        #expect(try s.sample([.nan, -5, .nan, -4, -6]) == 3)
        #expect(try s.distribution([0, 3, 1, 3, -1]).map(\.id) == [1])
    }

    @Test("top-k keeps exactly the k highest")
    func topK() throws {
        let l = randomLogits(32001, seed: 9)
        let s = try Sampler(params: SamplingParams(temperature: 1, topK: 40, topP: 1, minP: 0), vocabularySize: l.count)
        let d = try s.distribution(l)
        let best = l.indices.sorted { l[$0] > l[$1] || (l[$0] == l[$1] && $0 < $1) }.prefix(40).map { Int32($0) }
        #expect(Set(d.map(\.id)) == Set(best))
        // Probabilities: softmax over the 40 kept.
        let m = best.map { Double(l[Int($0)]) }.max()!
        let z = best.reduce(0.0) { $0 + exp(Double(l[Int($1)]) - m) }
        for (id, p) in d { #expect(abs(Double(p) - exp(Double(l[Int(id)]) - m) / z) < 1e-5) }
    }

    @Test("top-p keeps the most likely tokens until their cumulative probability reaches p")
    func topP() throws {
        let l = logits(fromProbabilities: [0.05, 0.5, 0.1, 0.2, 0.15])
        func kept(_ p: Float, topK: Int = 0) throws -> [Int32] {
            try Sampler(params: SamplingParams(temperature: 1, topK: topK, topP: p, minP: 0), vocabularySize: 5).distribution(l).map(\.id)
        }
        #expect(try kept(0.4) == [1])            // 0.5 ≥ 0.4
        #expect(try kept(0.65) == [1, 3])        // 0.5 + 0.2 ≥ 0.65, in descending order
        #expect(try kept(0.75) == [1, 3, 4])
        #expect(try kept(0.9) == [1, 3, 4, 2])
        #expect(try kept(0.99) == [1, 3, 4, 2, 0])
        // Measured over the top-k survivors: top-2 renormalized is 0.714 / 0.286.
        #expect(try kept(0.7, topK: 2) == [1])
        #expect(try kept(0.72, topK: 2) == [1, 3])
        let d = try Sampler(params: SamplingParams(temperature: 1, topK: 0, topP: 0.65, minP: 0), vocabularySize: 5).distribution(l)
        #expect(abs(d[0].probability - 0.5 / 0.7) < 1e-5 && abs(d[1].probability - 0.2 / 0.7) < 1e-5)
    }

    @Test("min-p drops tokens below p × the most likely token's probability")
    func minP() throws {
        let l = logits(fromProbabilities: [0.05, 0.5, 0.1, 0.2, 0.15])
        func kept(_ p: Float) throws -> Set<Int32> {
            Set(try Sampler(params: SamplingParams(temperature: 1, topK: 0, topP: 1, minP: p), vocabularySize: 5).distribution(l).map(\.id))
        }
        #expect(try kept(0.25) == [1, 3, 4])     // threshold 0.125
        #expect(try kept(0.19) == [1, 3, 4, 2])  // threshold 0.095
        #expect(try kept(0.5) == [1])            // threshold 0.25
        #expect(try kept(1) == [1])
        // With top-p: the shorter of the two prefixes.
        let both = try Sampler(params: SamplingParams(temperature: 1, topK: 0, topP: 0.65, minP: 0.19), vocabularySize: 5).distribution(l)
        #expect(both.map(\.id) == [1, 3])
    }

    @Test("temperature reshapes the kept distribution: p^(1/T), renormalized")
    func temperature() throws {
        let probs = [0.5, 0.3, 0.2]
        let d = try Sampler(params: SamplingParams(temperature: 0.5, topK: 0, topP: 1, minP: 0), vocabularySize: 3)
            .distribution(logits(fromProbabilities: probs))
        let z = probs.reduce(0) { $0 + $1 * $1 }
        for (id, p) in d { #expect(abs(Double(p) - probs[Int(id)] * probs[Int(id)] / z) < 1e-5) }
        // Filters measure at T = 1: top-p 0.75 keeps 2 tokens whatever the temperature.
        let hot = try Sampler(params: SamplingParams(temperature: 5, topK: 0, topP: 0.75, minP: 0), vocabularySize: 3)
            .distribution(logits(fromProbabilities: probs))
        #expect(hot.map(\.id) == [0, 1])
    }

    @Test("repetition penalty over the window: positive logits divided, negative multiplied, once per distinct token")
    func repetitionPenalty() throws {
        let l: [Float] = [2, -2, 1, 0.5, 0]
        let s = try Sampler(params: SamplingParams(temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 2, repeatWindow: 3),
                            vocabularySize: 5)
        for t: Int32 in [3, 0, 1, 0] { s.accept(t) }   // a window of 3 holds 0, 1, 0: token 3 has left it
        #expect(s.recentTokens == [0, 1, 0])
        let expected: [Double] = [1, -4, 1, 0.5, 0]      // 2/2, −2·2; 0 penalized once; 3 outside the window
        let z = expected.reduce(0) { $0 + exp($1) }
        let d = Dictionary(uniqueKeysWithValues: try s.distribution(l).map { ($0.id, Double($0.probability)) })
        for i in 0..<5 { #expect(abs(d[Int32(i)]! - exp(expected[i]) / z) < 1e-5, "id \(i)") }
        // Through greedy: token 0 (2 / 4 = 0.5) now loses to token 2 (1).
        let g = try Sampler(params: SamplingParams(temperature: 0, repeatPenalty: 4, repeatWindow: 8), vocabularySize: 5)
        g.accept(0)
        #expect(try g.sample(l) == 2)
        // The session's logits are not modified.
        #expect(l == [2, -2, 1, 0.5, 0])
    }

    @Test("bad inputs throw, naming the value")
    func errors() throws {
        #expect(throws: HymbaRuntimeError.self) { try Sampler(params: SamplingParams(topP: 0), vocabularySize: 10) }
        #expect(throws: HymbaRuntimeError.self) { try Sampler(params: SamplingParams(minP: 2), vocabularySize: 10) }
        #expect(throws: HymbaRuntimeError.self) { try Sampler(params: SamplingParams(repeatPenalty: 0), vocabularySize: 10) }
        #expect(throws: HymbaRuntimeError.self) { try Sampler(params: SamplingParams(temperature: .nan), vocabularySize: 10) }
        let s = try Sampler(params: SamplingParams(), vocabularySize: 10)
        #expect(throws: HymbaRuntimeError.self) { try s.sample([1, 2, 3]) }
        // All −∞: the best id, no NaN arithmetic.
        #expect(try s.sample([Float](repeating: -.infinity, count: 10)) == 0)
    }

    @Test("portableExp: within 3 ulp of exp over the range the sampler uses")
    func exponent() {
        var worst: Float = 0
        var x: Float = -87
        while x <= 20 {
            let e = Float(Foundation.exp(Double(x)))
            worst = max(worst, abs(portableExp(x) - e) / e.ulp)
            x += 0.0137
        }
        #expect(worst <= 3, "worst \(worst) ulp")
        #expect(portableExp(-100) == 0 && portableExp(0) == 1)
    }
}

/// A benchmark, not a test (it asserts nothing): run with HYMBA_BENCH=1, as the other
/// throughput measurements (`swift test -c release -Xswiftc -enable-testing --filter SamplerThroughput`).
@Suite("SamplerThroughput", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil, "a benchmark: HYMBA_BENCH=1 runs it"))
struct SamplerThroughput {
    @Test("sampling cost per token at Hymba's vocabulary (printed)")
    func cost() throws {
        let inputs = (0..<20).map { randomLogits(32001, seed: UInt64($0)) }
        for (name, p) in [("greedy", SamplingParams.greedy), ("defaults", SamplingParams()),
                          ("top-p only", SamplingParams(temperature: 1, topK: 0, topP: 0.9, minP: 0)),
                          ("penalty 1.1", SamplingParams(repeatPenalty: 1.1))] {
            let s = try Sampler(params: p, vocabularySize: 32001)
            for t in 0..<64 { s.accept(Int32(t * 31)) }
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<10 { for l in inputs { _ = try s.sample(l) } }
            let us = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / 200
            print("[sampler] \(name): \(String(format: "%.0f", us)) µs per token (V = 32001)")
        }
    }
}
