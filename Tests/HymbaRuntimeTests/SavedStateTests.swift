import Foundation
import HymbaTestSupport
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// Saved states and snapshots: restoring and continuing gives the uninterrupted session's
/// logits bit for bit; hostile state files are refused with one line and change nothing.
@Suite("Saved state")
struct SavedStateTests {
    struct Case: CustomStringConvertible, Sendable {
        var fixture: String
        var kv: KVType
        var streamed: Bool
        var description: String { "\(fixture), \(kv) KV, \(streamed ? "streamed" : "resident")" }
    }

    static let cases: [Case] = ["tiny-hymba", "tiny-hymba-untied", "tiny-code-hymba"].flatMap { f in
        KVType.allCases.flatMap { kv in [false, true].map { Case(fixture: f, kv: kv, streamed: $0) } }
    }

    static func fixture(_ name: String) -> Fixture {
        switch name {
        case "tiny-hymba": return .tiny
        case "tiny-hymba-untied": return .untied
        default: return .code
        }
    }

    /// The fixture's model: its checkpoint (resident), or converted to a `.hymba` file and streamed.
    static func model(_ c: Case) throws -> HymbaModel {
        guard c.streamed else { return fixture(c.fixture).model }
        let path = try StreamingWeightsTests.convert(c.fixture, .bf16, codec: .zstd)
        return try HymbaModel(file: HymbaFile(path: path), residency: .streaming)
    }

    /// Tokens spread over the vocabulary, deterministic.
    static func tokens(_ n: Int, seed: Int) -> [Int] { (0..<n).map { ($0 * 7919 + seed * 104_729 + 17) % 32000 + 1 } }

    /// Contexts long enough to wrap every local window several times (tiny-hymba W = 8,
    /// tiny-code-hymba W = 64) with a small chunk, so rings wrap within prefills and decodes.
    static func options(_ c: Case, chunk: Int = 16) -> HymbaOptions {
        HymbaOptions(contextLength: c.fixture == "tiny-hymba-untied" ? 128 : 256, kvType: c.kv, prefillChunk: chunk, threads: 2)
    }

    static let directory = ScratchDirectory.make("state")

    /// A session's last logits, copied while the session (which owns the buffer) is alive.
    static func lastLogits(_ s: HymbaSession) -> [Float] { Array(s.logits) }

    /// The logits after decoding `t`, copied while the session is alive.
    static func decoded(_ s: HymbaSession, _ t: Int) throws -> [Float] { Array(try s.decode(token: t)) }

    /// Decodes `next` in `a` and `b` and expects identical logits after every token.
    static func expectSameContinuation(_ a: HymbaSession, _ b: HymbaSession, _ next: [Int], _ what: String) throws {
        for (i, t) in next.enumerated() {
            let la = try Self.decoded(a, t), lb = try Self.decoded(b, t)
            #expect(la == lb, "\(what): logits after continuation token \(i) differ by \(maxAbsDiff(la, lb))")
            if la != lb { return }
        }
    }

    @Test("restore and continue gives the uninterrupted logits, bit for bit", arguments: cases)
    func bitExactContinuation(_ c: Case) throws {
        let model = try Self.model(c)
        let o = Self.options(c)
        let file = Self.directory + "/\(c.fixture)-\(c.kv)-\(c.streamed).state"
        // Saved after a full prefill, mid-decode, and after a long conversation whose context
        // wrapped the local windows (prefills and decodes interleaved).
        let long = c.fixture == "tiny-hymba-untied" ? 90 : 150
        let scenarios: [(String, [[Int]])] = [
            ("after a full prefill", [Self.tokens(37, seed: 1)]),
            ("mid-decode", [Self.tokens(20, seed: 2), [5], [77], [901], [31999]]),
            ("after the windows wrapped", [Self.tokens(45, seed: 3)] + Self.tokens(30, seed: 4).map { [$0] } + [Self.tokens(long - 75, seed: 5)]),
        ]
        for (name, feeds) in scenarios {
            let original = try HymbaSession(model: model, options: o)
            for f in feeds { if f.count == 1 { try original.decode(token: f[0]) } else { try original.prefill(tokens: f) } }
            try original.saveState(to: file)
            // Restored into a session with another prefill chunk (another ring size): the state
            // does not depend on it.
            let restored = try HymbaSession(model: model, options: Self.options(c, chunk: 5))
            try restored.loadState(from: file)
            #expect(restored.position == original.position && restored.tokens == original.tokens, "\(c) \(name)")
            let next = Self.tokens(12, seed: 9)
            // The restored state matters: a fresh session continues differently.
            let fresh = try HymbaSession(model: model, options: o)
            let freshLogits = try Self.decoded(fresh, next[0])
            let continued = try HymbaSession(model: model, options: o)
            try continued.loadState(from: file)
            #expect(try Self.decoded(continued, next[0]) != freshLogits, "\(c) \(name): the restored state made no difference")
            try Self.expectSameContinuation(original, restored, next, "\(c) \(name)")
            // A prefill after the restore (matrix-matrix path) also matches.
            let a = try HymbaSession(model: model, options: o), b = try HymbaSession(model: model, options: o)
            try a.loadState(from: file)
            for f in feeds { if f.count == 1 { try b.decode(token: f[0]) } else { try b.prefill(tokens: f) } }
            try a.prefill(tokens: next)
            try b.prefill(tokens: next)
            #expect(Self.lastLogits(a) == Self.lastLogits(b), "\(c) \(name): prefill after the restore")
        }
    }

    @Test("a snapshot rewinds to its position exactly; one from another sequence is refused")
    func snapshotRewind() throws {
        for kv in KVType.allCases {
            let c = Case(fixture: "tiny-code-hymba", kv: kv, streamed: false)
            let model = try Self.model(c)
            let s = try HymbaSession(model: model, options: Self.options(c))
            let prefix = Self.tokens(96, seed: 11)
            try s.prefill(tokens: prefix)
            let snap = s.takeSnapshot()
            try s.prefill(tokens: Self.tokens(100, seed: 12))
            try s.rewind(to: snap)
            #expect(s.position == 96 && s.tokens == prefix)
            let reference = try HymbaSession(model: model, options: Self.options(c))
            try reference.prefill(tokens: prefix)
            try Self.expectSameContinuation(s, reference, Self.tokens(10, seed: 13), "rewound \(kv)")

            let other = try HymbaSession(model: model, options: Self.options(c))
            try other.prefill(tokens: Self.tokens(120, seed: 14))
            #expect(throws: StateFileError.self) { try other.rewind(to: snap) }
            #expect(other.position == 120)
        }
    }

    @Test("the saved state holds only the positions in use; snapshots and text round-trip")
    func sizesAndExtras() throws {
        let c = Case(fixture: "tiny-hymba", kv: .f16, streamed: false)
        let s = try HymbaSession(model: try Self.model(c), options: Self.options(c))
        let cfg = s.config
        let empty = s.encodedState().count
        try s.prefill(tokens: Self.tokens(20, seed: 1))
        let snap = s.takeSnapshot()
        try s.prefill(tokens: Self.tokens(40, seed: 2))
        let bytes = s.encodedState()
        // Per position: 4 token bytes and a row in each global cache; rings keep W rows.
        let report = s.memoryReport
        let perRow = report.kvLayers[0].bytesPerSlot
        let globals = report.kvLayers.filter(\.servesGlobal).count, rings = report.kvLayers.count - globals
        #expect(bytes.count - empty == 60 * (4 + globals * perRow) + rings * cfg.slidingWindow! * perRow)
        let text = Array("hello".utf8)
        let withExtras = s.encodedState(SavedStateExtras(snapshots: [snap], text: text))
        let t = try HymbaSession(model: s.model, options: Self.options(c))
        let extras = try withExtras.withUnsafeBytes { try t.restoreState(from: $0, source: "buffer") }
        #expect(extras.text == text && extras.snapshots == [snap])
        try t.rewind(to: extras.snapshots[0])
        #expect(t.position == 20)
    }

    @Test("a prompt cache reuses the whole cached prompt, or resumes from the last snapshot before a divergence",
          arguments: [KVType.f16, .q8])
    func promptCache(_ kv: KVType) throws {
        let c = Case(fixture: "tiny-code-hymba", kv: kv, streamed: false)
        let model = try Self.model(c)
        let o = Self.options(c)
        let path = Self.directory + "/prompt-\(kv).cache"
        let system = Self.tokens(100, seed: 21)
        let first = system + Self.tokens(20, seed: 22)

        let s1 = try HymbaSession(model: model, options: o)
        var c1 = try PromptCache(path: path, session: s1, prompt: first, maximumSnapshots: 4)
        #expect(c1.reusedTokens == 0, "no file yet")
        try c1.feed(first, session: s1)
        try c1.save(session: s1)
        // Snapshots at chunk boundaries (16, 32, … 112) and before the last token (119),
        // thinned to 4 spread over the prompt, the latest kept.
        let positions = c1.snapshots.map(\.position)
        #expect(positions == [32, 64, 96, 119], "\(positions)")

        /// The last logits of a fresh session fed `parts` one after the other: through a prompt
        /// cache's `feed` (true) or one `prefill` (false), the splits the session under test was fed in.
        func reference(_ parts: [([Int], Bool)]) throws -> [Float] {
            let r = try HymbaSession(model: model, options: o)
            var feeder = try PromptCache(path: Self.directory + "/never-written", session: r, prompt: [1], maximumSnapshots: 4)
            for (tokens, throughCache) in parts {
                if throughCache { try feeder.feed(tokens, session: r) } else { try r.prefill(tokens: tokens) }
            }
            return Self.lastLogits(r)  // copied while the session (which owns the buffer) is alive
        }

        // The same prompt extended: everything cached is reused.
        let longer = first + Self.tokens(10, seed: 23)
        let s2 = try HymbaSession(model: model, options: o)
        var c2 = try PromptCache(path: path, session: s2, prompt: longer, maximumSnapshots: 4)
        #expect(c2.reusedTokens == first.count)
        try c2.feed(Array(longer[c2.reusedTokens...]), session: s2)
        #expect(try reference([(first, true), (Array(longer[120...]), true)]) == Self.lastLogits(s2), "\(kv): extended prompt")

        // The same prompt again: resumes before its last token and feeds only that.
        let s3 = try HymbaSession(model: model, options: o)
        var c3 = try PromptCache(path: path, session: s3, prompt: first, maximumSnapshots: 4)
        #expect(c3.reusedTokens == first.count - 1)
        try c3.feed(Array(first[c3.reusedTokens...]), session: s3)
        #expect(Self.lastLogits(s3) == Self.lastLogits(s1))

        // The same system prompt, another question: from the last snapshot at or before 100.
        let other = system + Self.tokens(25, seed: 24)
        let s4 = try HymbaSession(model: model, options: o)
        var c4 = try PromptCache(path: path, session: s4, prompt: other, maximumSnapshots: 4)
        #expect(c4.reusedTokens == 96, "reused \(c4.reusedTokens), snapshots \(positions)")
        try c4.feed(Array(other[c4.reusedTokens...]), session: s4)
        #expect(try reference([(Array(other[..<96]), false), (Array(other[96...]), true)]) == Self.lastLogits(s4),
                "\(kv): diverging prompt")
        // Diverging before the first snapshot: nothing reusable, from the start.
        let s5 = try HymbaSession(model: model, options: o)
        let c5 = try PromptCache(path: path, session: s5, prompt: Array(system[..<20]) + Self.tokens(30, seed: 25), maximumSnapshots: 4)
        #expect(c5.reusedTokens == 0 && s5.position == 0 && c5.snapshots.isEmpty)

        // A cache file of other options is refused and kept.
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let q = try HymbaSession(model: model, options: HymbaOptions(contextLength: 128, kvType: kv, prefillChunk: 16, threads: 2))
        #expect(throws: StateFileError.self) { _ = try PromptCache(path: path, session: q, prompt: first, maximumSnapshots: 4) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test("the planner counts prompt-cache snapshots at the size a snapshot has once past the windows")
    func plannedSnapshots() throws {
        let c = Case(fixture: "tiny-code-hymba", kv: .q8, streamed: false)
        let model = try Self.model(c)
        var o = Self.options(c)
        o.promptSnapshots = 3
        let s = try HymbaSession(model: model, options: o)
        try s.prefill(tokens: Self.tokens(100, seed: 1))  // past W = 64
        let report = s.memoryReport
        #expect(report.snapshotBytes == s.takeSnapshot().byteCount && report.snapshotBytes > 0)
        #expect(report.totalBytes == report.kvBytes + report.stateBytes + report.scratchBytes + 3 * report.snapshotBytes)
        let plan = MemoryPlan(config: model.config, footprint: model.weightFootprint, options: o, residency: .resident,
                              tokenizerBytes: 0, workload: .logits(rows: 0))
        #expect(plan.items.first { $0.name == "prompt-cache snapshots" }?.bytes == 3 * report.snapshotBytes)
        o.promptSnapshots = 0
        let none = MemoryPlan(config: model.config, footprint: model.weightFootprint, options: o, residency: .resident,
                              tokenizerBytes: 0, workload: .logits(rows: 0))
        #expect(none.runBytes == plan.runBytes - 3 * report.snapshotBytes)
    }

    // MARK: Hostile state files

    /// Offers `bytes` to a session holding another state and expects a one-line refusal that
    /// mentions `expected`, with the session unchanged (same position, tokens, next logits).
    static func expectRefused(_ bytes: [UInt8], _ expected: String, session s: HymbaSession, reference r: HymbaSession,
                              _ what: String) throws {
        do {
            try bytes.withUnsafeBytes { _ = try s.restoreState(from: $0, source: "hostile") }
            Issue.record("\(what): accepted")
        } catch let e as StateFileError {
            #expect(!e.description.contains("\n"), "\(what): \(e)")
            #expect(e.description.contains(expected), "\(what): '\(e)' does not mention '\(expected)'")
        }
        #expect(s.position == r.position && s.tokens == r.tokens, "\(what): the session changed")
    }

    @Test("hostile state files are refused with one clear line and change nothing")
    func hostileFiles() throws {
        let c = Case(fixture: "tiny-hymba", kv: .q8, streamed: false)
        let model = try Self.model(c)
        let source = try HymbaSession(model: model, options: Self.options(c))
        try source.prefill(tokens: Self.tokens(30, seed: 3))
        let snap = source.takeSnapshot()
        try source.prefill(tokens: Self.tokens(10, seed: 4))
        let good = source.encodedState(SavedStateExtras(snapshots: [snap], text: Array("hi".utf8)))
        let victim = try HymbaSession(model: model, options: Self.options(c)), reference = try HymbaSession(model: model, options: Self.options(c))
        for s in [victim, reference] { try s.prefill(tokens: Self.tokens(7, seed: 5)) }

        // Truncated anywhere.
        for n in [0, 10, 79, 80, 90, 104, good.count / 2, good.count - 1] {
            try Self.expectRefused(Array(good[..<n]), n < 80 ? "shorter than" : "truncated", session: victim, reference: reference, "truncated to \(n)")
        }
        // Any flipped byte: the header or a section checksum catches it.
        for i in stride(from: 0, to: good.count, by: max(1, good.count / 97)) {
            var bad = good
            bad[i] ^= 0x20
            do {
                try bad.withUnsafeBytes { _ = try victim.restoreState(from: $0, source: "flipped") }
                Issue.record("byte \(i) flipped: accepted")
            } catch let e as StateFileError {
                #expect(!e.description.contains("\n"))
            }
            #expect(victim.position == reference.position && victim.tokens == reference.tokens, "byte \(i) flipped: the session changed")
        }
        // Header fields changed with a valid header checksum.
        func patched(_ offset: Int, _ value: UInt64, width: Int) -> [UInt8] {
            var b = good
            withUnsafeBytes(of: value.littleEndian) { for k in 0..<width { b[offset + k] = $0[k] } }
            let sum = b.withUnsafeBytes { XXHash64.hash($0.baseAddress!, count: 72) }
            withUnsafeBytes(of: sum.littleEndian) { for k in 0..<8 { b[72 + k] = $0[k] } }
            return b
        }
        try Self.expectRefused(patched(48, 1 << 40, width: 8), "exceeds the context length", session: victim, reference: reference, "absurd position")
        try Self.expectRefused(patched(56, 1 << 31, width: 4), "sections", session: victim, reference: reference, "absurd section count")
        try Self.expectRefused(patched(8, 2, width: 4), "version 2", session: victim, reference: reference, "future version")
        try Self.expectRefused(patched(44, 9, width: 4), "KV type code 9", session: victim, reference: reference, "unknown KV type")
        // Absurd section length (its checksum cannot be reached).
        var huge = good
        withUnsafeBytes(of: UInt64(1 << 60).littleEndian) { for k in 0..<8 { huge[80 + 8 + k] = $0[k] } }
        try Self.expectRefused(huge, "declares", session: victim, reference: reference, "absurd section length")

        // Another context length, KV type, model.
        for (o, expected) in [(HymbaOptions(contextLength: 200, kvType: .q8, prefillChunk: 16, threads: 2), "context length 256"),
                              (HymbaOptions(contextLength: 256, kvType: .f16, prefillChunk: 16, threads: 2), "q8 KV")] {
            let other = try HymbaSession(model: model, options: o)
            let ref = try HymbaSession(model: model, options: o)
            try Self.expectRefused(good, expected, session: other, reference: ref, "options \(o)")
        }
        let untied = try HymbaSession(model: Fixture.untied.model, options: HymbaOptions(contextLength: 128, kvType: .q8, threads: 2))
        try Self.expectRefused(good, "another model config", session: untied, reference: untied, "another config")
        let sameConfig = try HymbaModel(file: HymbaFile(path: StreamingWeightsTests.convert("tiny-hymba", .bf16, codec: .none)))
        let converted = try HymbaSession(model: sameConfig, options: Self.options(c))
        try Self.expectRefused(good, "another model (", session: converted, reference: converted, "same config, other weights file")

        // The state file survives as it was when a save fails half-way: the temporary file is
        // written beside it and renamed only when complete.
        let path = Self.directory + "/atomic.state"
        try source.saveState(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let blocker = Self.directory + "/.atomic.state.partial-\(getpid())"
        try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: true)
        #expect(throws: IOError.self) { try victim.saveState(to: path) }
        try FileManager.default.removeItem(atPath: blocker)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        // The good bytes are accepted, and the victim then holds the source's state.
        try good.withUnsafeBytes { _ = try victim.restoreState(from: $0, source: "good") }
        #expect(victim.tokens == source.tokens)
    }
}
