import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge state-bench`: the saved state of a conversation of N tokens: its file size, the
/// time to save it, and the time from restoring it to the next token's logits against feeding
/// the N tokens again (tools/bench/state-bench.sh; BENCHMARKS.md "Saved state").
struct StateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state-bench",
        abstract: "Measure saved-state size, save time and restore-to-first-token against re-prefilling.",
        discussion: """
            For each --tokens N: a session of context N + 1 (N is lowered to fit the model's \
            max_position_embeddings) is fed N pseudo-random ids (prefill, \
            timed: re-prefilling is that plus one token), its state saved to a file in --dir \
            (timed, fsync included) and restored into a second session, which then decodes one \
            token (restore-to-first-token: load + decode, timed). The restored logits are checked \
            to equal the first session's for the same token. Medians of --repetitions for the \
            save and the restore; the prefill runs once per N.
            """)

    @OptionGroup var model: ModelOptions

    @Option(name: .long, parsing: .upToNextOption, help: "Tokens in context (one measurement each).")
    var tokens: [Int] = [1024, 4096, 8192]

    @Option(name: .long, help: "Threads for the kernels (0: one per core).")
    var threads: Int = 0

    @Option(name: .long, help: "Timed repetitions of save and restore; the medians are reported.")
    var repetitions: Int = 3

    @Option(name: .long, help: "Directory for the state files.")
    var dir: String = NSTemporaryDirectory()

    func validate() throws {
        if tokens.isEmpty || tokens.contains(where: { $0 < 1 }) { throw ValidationError("--tokens: each count must be at least 1") }
        if repetitions < 1 { throw ValidationError("--repetitions \(repetitions): must be at least 1") }
        if threads < 0 || threads > HymbaOptions.maximumThreads {
            throw ValidationError("--threads \(threads): must be in 0…\(HymbaOptions.maximumThreads) (0: one per core)")
        }
    }

    func run() throws {
        try runReportingErrors {
            for requested in tokens {
                var options = try model.sessionOptions()
                // Room for the next token: a full context of the model's length holds one token less.
                let maxContext = try HymbaFile(path: model.model, verifyChecksums: false).config.maxPositionEmbeddings
                let n = min(requested, maxContext - 1)
                options.contextLength = n + 1
                options.threads = threads
                let (_, plan, hymba) = try model.open(options: options, workload: .logits(rows: 0))
                let ids = Benchmark.tokenIDs(count: n + 1, vocabSize: hymba.config.vocabSize, seed: 7)
                let original = try HymbaSession(model: hymba, options: plan.options)
                let t0 = Benchmark.now()
                try original.prefill(tokens: Array(ids[..<n]))
                let prefill = Benchmark.seconds(since: t0)
                let path = (dir as NSString).appendingPathComponent("state-bench-\(getpid())-\(n).state")
                defer { try? FileManager.default.removeItem(atPath: path) }
                var saves: [Double] = [], restores: [Double] = []
                for _ in 0..<repetitions {
                    let s = Benchmark.now()
                    try original.saveState(to: path)
                    saves.append(Benchmark.seconds(since: s))
                }
                let bytes = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
                let restored = try HymbaSession(model: hymba, options: plan.options)
                var restoredLogits: [Float] = []
                for _ in 0..<repetitions {
                    restored.reset()
                    let r = Benchmark.now()
                    try restored.loadState(from: path)
                    restoredLogits = try withExtendedLifetime(restored) { Array(try restored.decode(token: ids[n])) }
                    restores.append(Benchmark.seconds(since: r))
                }
                let d = Benchmark.now()
                let expected = try withExtendedLifetime(original) { Array(try original.decode(token: ids[n])) }
                let reprefill = prefill + Benchmark.seconds(since: d)
                guard restoredLogits == expected else {
                    throw ValidationError("state-bench: the restored session's logits differ from the original's at \(n) tokens")
                }
                let save = Benchmark.median(saves), restore = Benchmark.median(restores)
                print(String(format: "tokens %d: state %d bytes (%.2f MiB), save %.1f ms, restore-to-first-token %.1f ms, re-prefill %.1f ms (%.0fx)",
                             n, bytes, Double(bytes) / 1_048_576, save * 1000, restore * 1000, reprefill * 1000, reprefill / restore)
                      + ", KV \(plan.options.kvType), threads \(plan.options.resolvedThreads)")
            }
        }
    }
}
