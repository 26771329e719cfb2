import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge bench`: prefill and decode speed on deterministic token ids (no tokenizer work
/// is measured), with peak RSS and KV bytes; `--json` for tools/bench/compare-llamacpp.sh.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prefill and decode tok/s (median of repetitions), peak RSS and KV bytes.",
        discussion: """
            The two tests run as llama-bench's pp and tg tests do, each from a reset session \
            (the meta tokens only) holding --depth context tokens (untimed; llama-bench's -d): \
            prefill: --prompt-tokens ids in one call; decode: --gen-tokens ids one at a time. The \
            ids are pseudo-random in the vocabulary (xoshiro256** seeded by --seed): the depth \
            ids, the prompt ids, then a fixed sequence fed to the decodes (no sampling is \
            measured, as in llama-bench). One untimed warm-up (a prefill and a decode) runs \
            first so that page faults and checksum checks are not timed. The default context is \
            depth + prompt + generated tokens, as llama-bench sizes its context.
            """)

    @OptionGroup var model: ModelOptions

    @Option(name: .customLong("prompt-tokens"), help: "Ids per prefill.")
    var promptTokens: Int = 256

    @Option(name: .customLong("gen-tokens"), help: "Single-token decodes after each prefill.")
    var genTokens: Int = 64

    @Option(name: .long, help: "Context tokens before each test (untimed), as llama-bench's -d.")
    var depth: Int = 0
    @Option(name: .long, help: "Timed repetitions; the medians are reported.")
    var repetitions: Int = 3

    @Option(name: .long, help: "Seed of the token ids.")
    var seed: UInt64 = 0

    @Option(name: .long, help: ArgumentHelp(
        "Decode N sequences together (HymbaSession.decodeBatch, as the server's slots do) and report aggregate and per-sequence decode tok/s, as llama-batched-bench.",
        discussion: "Each sequence is prefilled with its own --prompt-tokens ids (untimed), then --gen-tokens batched steps are timed."))
    var batch: Int?

    @Flag(name: .long, help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        if promptTokens < 1 { throw ValidationError("--prompt-tokens \(promptTokens): must be at least 1") }
        if genTokens < 1 { throw ValidationError("--gen-tokens \(genTokens): must be at least 1") }
        if depth < 0 { throw ValidationError("--depth \(depth): must be at least 0") }
        if repetitions < 1 { throw ValidationError("--repetitions \(repetitions): must be at least 1") }
        if let batch, batch < 1 { throw ValidationError("--batch \(batch): must be at least 1") }
        if batch != nil && depth > 0 { throw ValidationError("--batch runs without --depth (each sequence is its prompt)") }
        if let ctx = model.ctx, ctx < depth + promptTokens + genTokens {
            throw ValidationError("--ctx \(ctx): the benchmark feeds \(depth) + \(promptTokens) + \(genTokens) = \(depth + promptTokens + genTokens) tokens; give at least that")
        }
    }

    func run() throws {
        try runReportingErrors {
            var options = try model.sessionOptions()
            if options.contextLength == nil { options.contextLength = depth + promptTokens + genTokens }
            let loadStart = Benchmark.now()
            let (file, plan, hymba) = try model.open(options: options, workload: .logits(rows: 0))
            let session = try HymbaSession(model: hymba, options: plan.options)
            let loadSeconds = Benchmark.seconds(since: loadStart)
            if let batch {
                try runBatch(batch, file: file, plan: plan, first: session, loadSeconds: loadSeconds)
                return
            }
            let ids = Benchmark.tokenIDs(count: depth + promptTokens + genTokens, vocabSize: hymba.config.vocabSize, seed: seed)
            let result = try Benchmark.measure(session: session, context: Array(ids[..<depth]),
                                               prompt: Array(ids[depth..<(depth + promptTokens)]),
                                               decodes: Array(ids[(depth + promptTokens)...]), repetitions: repetitions)
            let report = BenchReport(file: file, session: session, result: result, threadsRequested: model.threads,
                                     threadsUsed: session.options.resolvedThreads, seed: seed, loadSeconds: loadSeconds,
                                     peakRSS: ProcessMemory.peakResidentBytes, plan: plan)
            if json {
                let data = try JSONSerialization.data(withJSONObject: report.jsonObject, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(report.text)
            }
        }
    }
}

extension Bench {
    /// `--batch N`: N sessions over the one model, each prefilled with its own prompt, then
    /// `genTokens` timed `decodeBatch` steps of all N, `repetitions` times.
    func runBatch(_ count: Int, file: HymbaFile, plan: MemoryPlan, first: HymbaSession, loadSeconds: Double) throws {
        var sessions = [first]
        for _ in 1..<count { sessions.append(try HymbaSession(model: first.model, options: plan.options)) }
        let vocab = first.model.config.vocabSize
        let ids = (0..<count).map { Benchmark.tokenIDs(count: promptTokens + genTokens, vocabSize: vocab, seed: seed &+ UInt64($0)) }
        func start() throws {
            for (s, seq) in zip(sessions, ids) {
                s.reset()
                try s.prefill(tokens: Array(seq[..<promptTokens]))
            }
        }
        // Untimed warm-up: the prefills and one batched step.
        try start()
        try HymbaSession.decodeBatch(sessions, tokens: ids.map { $0[promptTokens] })
        var seconds: [Double] = []
        for _ in 0..<repetitions {
            try start()
            let t0 = Benchmark.now()
            for step in 0..<genTokens {
                try HymbaSession.decodeBatch(sessions, tokens: ids.map { $0[promptTokens + step] })
            }
            seconds.append(Benchmark.seconds(since: t0))
        }
        let aggregate = seconds.map { Double(count * genTokens) / $0 }
        let perSequence = seconds.map { Double(genTokens) / $0 }
        let peak = ProcessMemory.peakResidentBytes
        let name = URL(fileURLWithPath: file.path).lastPathComponent
        if json {
            let object: [String: Any] = [
                "model": file.path, "model_name": name, "kernels": "\(first.kernelBackend)",
                "threads": first.options.resolvedThreads, "threads_requested": model.threads, "ctx": first.contextLength,
                "batch": count, "prompt_tokens": promptTokens, "gen_tokens": genTokens, "repetitions": repetitions, "seed": seed,
                "decode_input": "fixed pseudo-random ids (seeded per sequence), not the argmax",
                "decode_aggregate_tokens_per_second": Benchmark.median(aggregate),
                "decode_per_sequence_tokens_per_second": Benchmark.median(perSequence),
                "decode_aggregate_tokens_per_second_runs": aggregate, "decode_seconds_runs": seconds,
                "load_seconds": loadSeconds, "peak_rss_bytes": peak ?? -1,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            func runs(_ values: [Double]) -> String { values.map { String(format: "%.1f", $0) }.joined(separator: " ") }
            print("model:    \(name), kernels \(first.kernelBackend), threads \(first.options.resolvedThreads), ctx \(first.contextLength)")
            print("settings: batch \(count), prompt \(promptTokens) per sequence (untimed), \(genTokens) batched steps, \(repetitions) repetitions, seed \(seed)")
            print("")
            print("test".padded(to: 22) + "tok/s (median)".padded(to: 16) + "runs (tok/s)")
            print("decode aggregate".padded(to: 22) + String(format: "%.1f", Benchmark.median(aggregate)).padded(to: 16) + runs(aggregate))
            print("decode per sequence".padded(to: 22) + String(format: "%.1f", Benchmark.median(perSequence)).padded(to: 16) + runs(perSequence))
            print("")
            print("peak RSS: \(peak.map(Format.mib) ?? "unknown") | load: \(String(format: "%.2f", loadSeconds)) s")
        }
    }
}

/// The timing loop of `bench`, free of any output.
enum Benchmark {
    struct Result {
        /// Context tokens before each test.
        var depth: Int
        var promptTokens: Int
        var genTokens: Int
        /// Seconds of each timed repetition.
        var prefillSeconds: [Double]
        var decodeSeconds: [Double]
        var warmupSeconds: Double

        var prefillRates: [Double] { prefillSeconds.map { Double(promptTokens) / $0 } }
        var decodeRates: [Double] { decodeSeconds.map { Double(genTokens) / $0 } }
        var prefillRate: Double { Benchmark.median(prefillRates) }
        var decodeRate: Double { Benchmark.median(decodeRates) }
    }

    /// `count` ids uniform in 0..<vocabSize, the same for a given seed on every platform.
    static func tokenIDs(count: Int, vocabSize: Int, seed: UInt64) -> [Int] {
        var rng = Xoshiro256StarStar(seed: seed)
        return (0..<count).map { _ in Int(rng.next() % UInt64(vocabSize)) }
    }

    /// One untimed warm-up (a prefill and a decode), then `repetitions` × (timed prefill of
    /// `prompt` in one call; timed single-token decodes of `decodes`), each test from a reset
    /// session that was first fed `context` (untimed): llama-bench's pp and tg tests at depth
    /// `context.count`.
    static func measure(session: HymbaSession, context: [Int], prompt: [Int], decodes: [Int], repetitions: Int) throws -> Result {
        func start() throws {
            session.reset()
            if !context.isEmpty { try session.prefill(tokens: context) }
        }
        let warmStart = now()
        try start()
        try session.prefill(tokens: prompt)
        try session.decode(token: decodes[0])
        var r = Result(depth: context.count, promptTokens: prompt.count, genTokens: decodes.count, prefillSeconds: [],
                       decodeSeconds: [], warmupSeconds: seconds(since: warmStart))
        for _ in 0..<repetitions {
            try start()
            let t0 = now()
            try session.prefill(tokens: prompt)
            r.prefillSeconds.append(Double(now() - t0) / 1e9)
            try start()
            let t1 = now()
            for t in decodes { try session.decode(token: t) }
            r.decodeSeconds.append(Double(now() - t1) / 1e9)
        }
        return r
    }
    /// The middle value (the mean of the two middle ones for an even count).
    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func seconds(since start: UInt64) -> Double { Double(now() - start) / 1e9 }
}

/// What `bench` prints: a short table, or one JSON object.
struct BenchReport {
    let file: HymbaFile
    let session: HymbaSession
    let result: Benchmark.Result
    let threadsRequested: Int
    let threadsUsed: Int
    let seed: UInt64
    let loadSeconds: Double
    let peakRSS: Int?
    /// The memory plan the model was loaded with (`--memory-budget`: what it chose).
    let plan: MemoryPlan

    /// Per storage type: tensors, weights, encoded bytes (what the kernels read) and bytes
    /// in the file (smaller when chunks are compressed).
    struct TypeTotals {
        var type: StorageType
        var tensors = 0, weights = 0, encodedBytes = 0, fileBytes = 0
    }

    var totals: [TypeTotals] {
        var byType: [StorageType: TypeTotals] = [:]
        for t in file.tensors where HymbaFile.isWeight(t.name) {
            var e = byType[t.type] ?? TypeTotals(type: t.type)
            e.tensors += 1
            e.weights += t.elementCount
            e.encodedBytes += Int(t.rawLength)
            e.fileBytes += Int(t.storedBytes)
            byType[t.type] = e
        }
        return StorageType.allCases.compactMap { byType[$0] }
    }
    var parameters: Int { totals.reduce(0) { $0 + $1.weights } }
    /// Encoded bytes of every tensor: what one decode step reads (the tied embedding is the
    /// LM head, read whole once per token; a few small tensors are widened to f32 at load).
    var weightBytes: Int { totals.reduce(0) { $0 + $1.encodedBytes } }
    /// formats/HYMBA-FORMAT.md, "Bits per weight" (the same as `HymbaFile.bitsPerWeight`).
    var bitsPerWeight: Double { file.bitsPerWeight }
    /// The storage type holding the most bytes (the quantization of the large matrices).
    var mainType: String { totals.max { $0.encodedBytes < $1.encodedBytes }.map { $0.type.description } ?? "none" }
    var modelName: String { URL(fileURLWithPath: file.path).lastPathComponent }

    var jsonObject: [String: Any] {
        let memory = session.memoryReport
        let c = file.config
        var storage: [String: Any] = [:]
        for t in totals {
            storage[t.type.description] = ["tensors": t.tensors, "weights": t.weights, "bytes": t.encodedBytes, "file_bytes": t.fileBytes]
        }
        return [
            "model": file.path,
            "model_name": modelName,
            "params": parameters,
            "weight_bytes": weightBytes,
            "bits_per_weight": bitsPerWeight,
            "main_type": mainType,
            "storage": storage,
            "config": ["hidden_size": c.hiddenSize, "layers": c.numLayers, "heads": c.numHeads,
                       "kv_heads": c.numKVHeads, "intermediate_size": c.intermediateSize, "vocab_size": c.vocabSize],
            "kernels": "\(session.kernelBackend)",
            "threads": threadsUsed,
            "threads_requested": threadsRequested,
            "ctx": session.contextLength,
            "kv_type": "\(memory.kvType)",
            "depth": result.depth,
            "prompt_tokens": result.promptTokens,
            "gen_tokens": result.genTokens,
            "repetitions": result.prefillSeconds.count,
            "seed": seed,
            "decode_input": "fixed pseudo-random ids (seeded), not the argmax",
            "prefill_tokens_per_second": result.prefillRate,
            "decode_tokens_per_second": result.decodeRate,
            "prefill_tokens_per_second_runs": result.prefillRates,
            "decode_tokens_per_second_runs": result.decodeRates,
            "prefill_seconds_runs": result.prefillSeconds,
            "decode_seconds_runs": result.decodeSeconds,
            "decode_weight_bytes_per_second": Double(weightBytes) * result.decodeRate,
            "warmup_seconds": result.warmupSeconds,
            "load_seconds": loadSeconds,
            "peak_rss_bytes": peakRSS ?? -1,
            "memory_budget_bytes": plan.budgetBytes ?? -1,
            "memory_plan_bytes": plan.totalBytes,
            "weights": "\(plan.residency)",
            "prefill_chunk": plan.options.prefillChunk,
            "kv_bytes": memory.kvBytes,
            "state_bytes": memory.stateBytes,
            "scratch_bytes": memory.scratchBytes,
        ]
    }

    var text: String {
        let memory = session.memoryReport
        func runs(_ values: [Double]) -> String { values.map { String(format: "%.1f", $0) }.joined(separator: " ") }
        let threadNote = threadsRequested == 0 ? "\(threadsUsed) (one per core)" : "\(threadsUsed)"
        var out: [String] = []
        out.append("model:    \(modelName) (\(String(format: "%.1f", Double(parameters) / 1e6)) M weights, \(mainType), \(String(format: "%.2f", bitsPerWeight)) bits/weight, \(Format.mib(weightBytes)))")
        out.append("settings: threads \(threadNote), ctx \(session.contextLength), depth \(result.depth), KV \(memory.kvType), \(result.prefillSeconds.count) repetitions, seed \(seed)")
        out.append("")
        out.append("test".padded(to: 14) + "tok/s (median)".padded(to: 16) + "runs (tok/s)")
        out.append(("prefill \(result.promptTokens)").padded(to: 14) + String(format: "%.1f", result.prefillRate).padded(to: 16) + runs(result.prefillRates))
        out.append(("decode \(result.genTokens)").padded(to: 14) + String(format: "%.1f", result.decodeRate).padded(to: 16) + runs(result.decodeRates))
        out.append("")
        out.append("peak RSS: \(peakRSS.map(Format.mib) ?? "unknown") | KV: \(memory.kvBytes) bytes (\(Format.mib(memory.kvBytes))) | load: \(String(format: "%.2f", loadSeconds)) s | warm-up: \(String(format: "%.2f", result.warmupSeconds)) s")
        out.append(Format.memory(plan).joined(separator: " | "))
        return out.joined(separator: "\n")
    }
}
