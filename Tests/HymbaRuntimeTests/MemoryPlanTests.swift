import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// The memory planner (`MemoryPlan`) against sizes worked out by hand for the three Hymba
/// configs, and `fit`'s order of choices and its refusal.
///
/// Setting of the hand computations: q4 matrices (embedding included), everything else f32,
/// laid out as the writer does (expectedTensors order, each tensor on a 4 KiB page), context
/// 8192, prefill chunk 128, f16 KV, one thread, a 24 MiB process allowance, no tokenizer,
/// text generation (the sampler's buffers). q4 rows: groups of 16 sub-blocks of 32 take
/// 4 + 24 + 256 = 284 bytes, a last group of k sub-blocks 4 + ⌈12k/8⌉ + 16k.
@Suite("Memory plan", .enabled(if: WeightFootprint.pageSize == 4096, "the hand computations assume 4 KiB pages"))
struct MemoryPlanTests {
    static func config(_ size: String) throws -> HymbaConfig {
        try HymbaConfig(jsonData: Data(contentsOf: fixturesDirectory.appendingPathComponent("configs/hymba-\(size)/config.json")))
    }

    static let asked = HymbaOptions(contextLength: 8192, kvType: .f16, prefillChunk: 128, threads: 1)
    static let process = 24 << 20

    static func plan(_ size: String, _ options: HymbaOptions = asked, residency: WeightResidency = .resident) throws -> MemoryPlan {
        let c = try config(size)
        return MemoryPlan(config: c, footprint: WeightFootprint(config: c, matrices: .q4), options: options,
                          residency: residency, tokenizerBytes: 0, workload: .generation, processBytes: process)
    }

    static func bytes(_ plan: MemoryPlan, _ name: String) -> Int? { plan.items.first { $0.name == name }?.bytes }

    struct Expected {
        var size: String
        var mapped, smallTensors, prefix, kv, states, activations: Int
    }

    /// Per config, by hand (V = 32001, M = 128 meta tokens, W = 1024, K = 4, N = 16 everywhere):
    ///
    /// - weights, mapped: every page of the data section within fault-around reach (15 pages)
    ///   of a matrix or the meta tokens. The only gap between them longer than 30 pages is, in
    ///   each layer, dt_proj.bias, A_log, D, the three inner norms and the two pre-average
    ///   norms: 125m 1+16+1+3+2 = 23 pages (all mapped); 350m 2+24+2+3+4 = 35 pages (5 not);
    ///   1.5b 4+50+4+3+8 = 69 pages (39 not). All pages: 125m 18070, 350m 48433, 1.5b 210109.
    ///   125m: 18070·4096 = 74 014 720; 350m: (48433 − 32·5)·4096 = 197 726 208;
    ///   1.5b: (210109 − 32·39)·4096 = 855 494 656.
    /// - small tensors: f32 copies of the norms, conv taps and bias, dt bias, A_log, D (per
    ///   layer 2d + 4E + E + E + EN + E + R + 2N + 2E floats, plus the final norm d) and the
    ///   RoPE inverse frequencies (dk/2 = 32): 125m 24·(1024 + 4096 + 5·1024 + 16384 + 32 + 32) + 512 + 32
    ///   = 641 056 floats = 2 564 224 bytes; 350m 1 281 312 floats; 1.5b 2 668 256 floats.
    /// - meta-token prefix: 4·(producers·M·Hkv·(dk+dv) + L·(3E + 16E)): 125m 4·(14·128·2·192 + 24·19·1024)
    ///   = 4 620 288; 350m 4·(18·128·4·192 + 32·19·1536) = 10 813 440; 1.5b 4·(17·128·5·192 + 32·19·3200) = 16 138 240.
    /// - KV (f16, meta slots f32): producers·M·2s + globals·8192·s + rings·(1024 + 128)·s with
    ///   s = Hkv·(dk + dv)·2: 125m s = 768: 14·128·1536 + 3·8192·768 + 11·1152·768 = 31 358 976;
    ///   350m s = 1536: 18·128·3072 + 3·8192·1536 + 15·1152·1536 = 71 368 704;
    ///   1.5b s = 1920: 17·128·3840 + 3·8192·1920 + 14·1152·1920 = 86 507 520.
    /// - states: L·(3E + 16E)·4: 1 867 776; 3 735 552; 7 782 400.
    /// - activations (floats ·4): T(3d + maxIn + 5E + R + 2N + 2F) + T·dk + (3 + T)E + T·⌈F⌉32
    ///   + (⌈F⌉32 + ⌈F/32⌉ + ⌈F⌉32/2 + 32·⌈F⌉32/128 + 288·⌈F/512⌉) + (4G·(M + 8192 + dk + dv) + dk + dv + 64 + 8224), maxIn = d + Hkv(dk+dv) + 2E,
    ///   G = H/Hkv query heads per KV head (attention scratch: 4 rows), T = 128:
    ///   125m 2 167 092 floats; 350m 3 088 328; 1.5b 6 558 796.
    static let expected: [Expected] = [
        Expected(size: "125m", mapped: 74_014_720, smallTensors: 2_564_224, prefix: 4_620_288, kv: 31_358_976,
                 states: 1_867_776, activations: 8_668_368),
        Expected(size: "350m", mapped: 197_726_208, smallTensors: 5_125_248, prefix: 10_813_440, kv: 71_368_704,
                 states: 3_735_552, activations: 12_353_312),
        Expected(size: "1.5b", mapped: 855_494_656, smallTensors: 10_673_024, prefix: 16_138_240, kv: 86_507_520,
                 states: 7_782_400, activations: 26_235_184),
    ]

    @Test("resident plan line by line for hymba-125m, -350m and -1.5b", arguments: expected)
    func residentLines(_ e: Expected) throws {
        let p = try Self.plan(e.size)
        let logits = 24 * 32001  // the session's row and the sampler's five arrays
        #expect(Self.bytes(p, "process") == Self.process)
        #expect(Self.bytes(p, "model file") == 0)
        #expect(Self.bytes(p, "tokenizer") == 0)
        #expect(Self.bytes(p, "weights, mapped") == e.mapped)
        #expect(Self.bytes(p, "weights, decompressed") == 0)
        #expect(Self.bytes(p, "small tensors (f32)") == e.smallTensors)
        #expect(Self.bytes(p, "meta-token prefix") == e.prefix)
        #expect(Self.bytes(p, "KV caches") == e.kv)
        #expect(Self.bytes(p, "SSM + conv states") == e.states)
        #expect(Self.bytes(p, "activations") == e.activations)
        #expect(Self.bytes(p, "logits") == logits)
        let sum = Self.process + e.mapped + e.smallTensors + e.prefix + e.kv + e.states + e.activations + logits
        #expect(p.runBytes == sum)
        #expect(p.totalBytes == sum, "at 8K context running holds more than loading")
        #expect(p.loadBytes < p.runBytes)
        #expect(p.budgetBytes == nil && p.fits && p.adjustments.isEmpty)
        print("[plan] hymba-\(e.size) resident q4, f16 KV, ctx 8192: \(MemoryPlan.mib(p.totalBytes))")
    }

    /// The activation sizes of `expected` are what a session of each config really allocates,
    /// counted buffer by buffer as `HymbaSession` allocates them (`scratchFloats` minus the
    /// logits row), not the planner's formula again. The session runs a one-layer cut of the
    /// config with a small vocabulary: a global layer with its own KV has the largest input
    /// projection and the longest cache of the full model, and the activations depend on
    /// neither the layer count nor the vocabulary.
    @Test("activations: the planned bytes are the buffers a session of each config allocates", arguments: expected)
    func activationsAsAllocated(_ e: Expected) throws {
        let c = SyntheticModels.realConfig("hymba-\(e.size)", layers: 1, global: [0], groups: [[0]], shrink: 1, vocab: 64)
        let session = try HymbaSession(model: SyntheticModels.model(c), options: Self.asked)
        #expect(4 * (session.scratchFloats - c.vocabSize) == e.activations, "hymba-\(e.size)")
        #expect(Self.bytes(try Self.plan(e.size), "activations") == 4 * (session.scratchFloats - c.vocabSize))
    }

    @Test("loading: reading the weights, then the one-time session that computes the meta-token prefix (hymba-125m)")
    func loadPhase() throws {
        let p = try Self.plan("125m")
        #expect(p.loadItems.map(\.name) == ["process", "model file", "tokenizer", "weights, mapped", "weights, decompressed",
                                            "small tensors (f32)", "meta-token prefix"])
        #expect(p.loadTransients.map(\.name) == ["reading the weights", "prefix computation"])
        // Reading: the pages of the f32 tensors (per layer 1 + 4 + 1 + 1 + 16 + 1 + 3 + 2 + 1 = 30,
        // and the final norm's: 721 pages) and three f32 arrays of the largest (A_log, 16384 floats).
        #expect(p.loadTransients[0].bytes == 721 * 4096 + 3 * 4 * 16384)
        // The prefix: f32 KV at context 1: 14 producers × (128 meta + 1) slots × 2·192·4 bytes;
        // the states; activations at chunk 128 with a ring of 1 (2 022 420 floats + per
        // thread 4·4·(129 + 192) + 256 attention scratch and an 8224-float tile, threads: one per
        // core, as MetaPrefix runs it); one row of logits.
        let threads = ThreadPool.availableCores
        #expect(p.loadTransients[1].bytes == 14 * 129 * 2 * 192 * 4 + 1_867_776 + 4 * (2_022_420 + 13616 * threads) + 4 * 32001)
        #expect(p.loadBytes == p.loadItems.reduce(0) { $0 + $1.bytes } + p.loadTransients[1].bytes)
    }

    /// Streaming hymba-1.5b: the largest unit is the head (the tied embedding table, 32001 rows
    /// × 891 bytes = 28 512 891 bytes → 6962 pages, plus the 15 pages fault-around can map
    /// after it; nothing before it: the data section starts there) = 6977·4096 = 28 577 792,
    /// larger than any layer (6470 pages). The meta tokens' pages (128·1600·4 = 200 pages)
    /// join the small tensors. With q8 KV (s = 5·(64 + 128 + 8) = 1000 bytes per slot):
    /// 17·128·3840 + 3·8192·1000 + 14·(1024 + 16)·1000 = 47 491 840; activations at chunk 16:
    /// 995 980 floats.
    @Test("streaming plan for hymba-1.5b, q8 KV, chunk 16")
    func streamingLines() throws {
        var o = Self.asked
        o.kvType = .q8
        o.prefillChunk = 16
        let p = try Self.plan("1.5b", o, residency: .streaming)
        #expect(Self.bytes(p, "weights, mapped") == 28_577_792)
        #expect(p.items.first { $0.name == "weights, mapped" }!.detail.contains("the largest is head"))
        #expect(Self.bytes(p, "weights, decompressed") == 0)
        #expect(Self.bytes(p, "small tensors (f32)") == 10_673_024 + 200 * 4096)
        #expect(Self.bytes(p, "KV caches") == 47_491_840)
        #expect(Self.bytes(p, "activations") == 4 * 995_980)
        #expect(p.runBytes == Self.process + 28_577_792 + 10_673_024 + 819_200 + 16_138_240 + 47_491_840 + 7_782_400
            + 3_983_920 + 24 * 32001)
        #expect(p.runBytes == 141_400_264)
    }

    @Test("a session's buffers are what the planner counts", arguments: [1, 3])
    func sessionMatchesPlan(threads: Int) throws {
        let model = Fixture.tiny.model
        let c = model.config
        let options = HymbaOptions(contextLength: 200, kvType: .q8, prefillChunk: 16, threads: threads)
        let session = try HymbaSession(model: model, options: options)
        let report = session.memoryReport
        let ring = report.kvLayers.map(\.regularSlots).max()!
        #expect(session.scratchFloats == MemoryPlan.activationFloats(c, chunk: 16, largestRing: ring, threads: threads, kernels: session.kernels) + c.vocabSize)
        #expect(report.kvBytes == session.caches.compactMap { $0 }.reduce(0) { $0 + $1.bytes })
    }

    // MARK: fit

    static func fit(_ size: String, budget: Int) throws -> MemoryPlan {
        let c = try config(size)
        var o = asked
        o.memoryBudgetBytes = budget
        return try MemoryPlan.fit(config: c, footprint: WeightFootprint(config: c, matrices: .q4), options: o,
                                  tokenizerBytes: 0, workload: .generation, processBytes: process)
    }

    /// hymba-1.5b asks for 980.4 MiB (resident, f16 KV, chunk 128). Smaller budgets, in order:
    /// a smaller chunk (activations 24.35 MiB at 128, about half at 64); then q8 KV too (KV
    /// 82.5 → 45.3 MiB); then streamed weights (808 → 27 MiB), first with the KV as asked and
    /// the full chunk (512 MiB: q8 KV and a small chunk would fit too, but are not needed),
    /// as the README's "Memory budget" section says.
    @Test("fit: the chunk shrinks first, then the KV goes q8, then the weights stream with as little else given up as fits")
    func fitOrder() throws {
        let cases: [(Int, [String], Int, KVType, WeightResidency)] = [
            (1 << 30, [], 128, .f16, .resident),
            (970 << 20, ["prefill chunk 128 → 64"], 64, .f16, .resident),
            (940 << 20, ["prefill chunk 128 → 64", "KV f16 → q8"], 64, .q8, .resident),
            (512 << 20, ["weights streamed"], 128, .f16, .streaming),
            (135 << 20, ["prefill chunk 128 → 16", "KV f16 → q8", "weights streamed"], 16, .q8, .streaming),
        ]
        for (budget, adjustments, chunk, kv, residency) in cases {
            let p = try Self.fit("1.5b", budget: budget)
            // Nothing is given up that a plan earlier in the order did not need: the plan with
            // the same KV and residency and the next larger chunk does not fit.
            if chunk < 128 {
                var larger = Self.asked
                larger.kvType = kv
                larger.prefillChunk = chunk * 2
                let c = try Self.config("1.5b")
                let bigger = MemoryPlan(config: c, footprint: WeightFootprint(config: c, matrices: .q4), options: larger,
                                        residency: residency, tokenizerBytes: 0, workload: .generation, processBytes: Self.process)
                #expect(bigger.totalBytes > budget, "budget \(budget >> 20) MiB: chunk \(chunk * 2) would fit")
            }
            #expect(p.adjustments == adjustments, "budget \(budget >> 20) MiB")
            #expect(p.options.prefillChunk == chunk && p.options.kvType == kv && p.residency == residency, "budget \(budget >> 20) MiB")
            #expect(p.fits && p.totalBytes <= budget)
            #expect(p.description.contains("budget \(budget >> 20).00 MiB (\(budget) bytes): fits"))
        }
    }

    @Test("fit refuses below the smallest plan, naming the breakdown and the smallest budget that fits")
    func refusal() throws {
        // The smallest plan of hymba-1.5b is 141 400 264 bytes (134.85 MiB): 135 MiB fits, 134 does not.
        #expect(throws: Never.self) { try Self.fit("1.5b", budget: 135 << 20) }
        do {
            _ = try Self.fit("1.5b", budget: 134 << 20)
            Issue.record("134 MiB should be refused")
        } catch let e as MemoryBudgetError {
            #expect(e.smallestFittingBytes == 135 << 20)
        }
        do {
            _ = try Self.fit("1.5b", budget: 100 << 20)
            Issue.record("100 MiB should be refused")
        } catch let e as MemoryBudgetError {
            let text = e.description
            #expect(text.hasPrefix("memory budget 100.00 MiB (104857600 bytes) is too small: as asked the run needs 981.11 MiB, "
                + "and even with prefill chunk 16, q8 KV and streaming weights it needs 134.85 MiB.\n"))
            #expect(text.hasSuffix("the smallest budget that would fit: 135MiB (--memory-budget 135MiB); or use a smaller --ctx"))
            // The breakdown of the smallest plan, line by line.
            for line in ["memory plan (streaming weights, KV q8, context 8192, prefill chunk 16):",
                         "  weights, mapped           27.25 MiB", "  KV caches                 45.29 MiB",
                         "  running                  134.85 MiB  (141400264 bytes)",
                         "peak: 134.85 MiB (141400264 bytes), budget 100.00 MiB (104857600 bytes): does not fit"] {
                #expect(text.contains(line), "missing \(line)")
            }
        }
        #expect(throws: MemoryBudgetError.self) { try Self.fit("125m", budget: 1) }
    }

    @Test("a session created over its budget is refused with the plan")
    func sessionOverBudget() throws {
        let model = Fixture.tiny.model
        var o = HymbaOptions(prefillChunk: 16, threads: 1)
        o.memoryBudgetBytes = 8 << 20  // below the 24 MiB process allowance alone
        do {
            _ = try HymbaSession(model: model, options: o)
            Issue.record("expected a refusal")
        } catch let MemoryBudgetError.exceeded(plan) {
            #expect(plan.budgetBytes == 8 << 20 && !plan.fits)
        }
        o.memoryBudgetBytes = 1 << 30
        #expect(throws: Never.self) { try HymbaSession(model: model, options: o) }
    }

    @Test("the Llama-3.2-3B-style cache: 28 layers × 8 heads × (128 + 128) × 2 bytes per token")
    func llamaComparison() {
        #expect(MemoryPlan.llama3BStyleKVBytes(context: 1) == 114_688)
        #expect(MemoryPlan.llama3BStyleKVBytes(context: 8192) == 896 << 20)
    }
}

@Suite("Memory sizes")
struct MemorySizeTests {
    @Test("sizes as people write them")
    func parse() throws {
        #expect(try MemorySize.parse("900M") == 900 << 20)
        #expect(try MemorySize.parse("1G") == 1 << 30)
        #expect(try MemorySize.parse("1g") == 1 << 30)
        #expect(try MemorySize.parse("512MiB") == 512 << 20)
        #expect(try MemorySize.parse("1.5GiB") == 3 << 29)
        #expect(try MemorySize.parse("900MB") == 900_000_000)
        #expect(try MemorySize.parse("64K") == 65536)
        #expect(try MemorySize.parse("2000000000") == 2_000_000_000)
        #expect(try MemorySize.parse("4096B") == 4096)
    }

    @Test("bad sizes say what is wrong")
    func errors() {
        let cases: [(String, String)] = [
            ("", "empty"), ("-1G", "must be positive"), ("G", "expected a number first"), ("1.2.3M", "is not a number"),
            ("12X", "unknown unit \"X\""), ("1.5", "whole number"), ("0", "at least 1 byte"), ("99999999T", "too large"),
        ]
        for (text, reason) in cases {
            do {
                _ = try MemorySize.parse(text)
                Issue.record("\"\(text)\" parsed")
            } catch {
                #expect("\(error)".contains(reason), "\"\(text)\": \(error)")
            }
        }
    }
}
