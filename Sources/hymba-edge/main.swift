import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge`: runs Hymba models from `.hymba` files. A thin shell over HymbaRuntime.
struct HymbaEdge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hymba-edge",
        abstract: "Run NVIDIA Hymba models on the CPU from .hymba files.",
        version: ToolVersion.text,
        subcommands: [Run.self, Chat.self, Tokenize.self, Detokenize.self, PerplexityCommand.self, Eval.self, Info.self, Bench.self,
                      Serve.self, StateBench.self])
}

/// How a session is sized and run, shared by every command that runs the model: context,
/// KV type, memory budget, checksum checks and threads. Short flags as llama.cpp's.
struct SessionSizeOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "Context length in tokens (default: the model's max_position_embeddings).")
    var ctx: Int?

    @Option(name: .customLong("kv-type"), help: "Element type of the KV cache: f16, f32 or q8.")
    var kvType: String = "f16"

    @Option(name: .customLong("memory-budget"), help: ArgumentHelp(memoryBudgetHelp, valueName: "size"))
    var memoryBudget: String?

    @Flag(name: .customLong("no-verify"), help: "Skip the per-chunk checksum check on first use.")
    var noVerify = false

    @Option(name: [.customShort("t"), .long], help: "Threads for the kernels (0: one per core).")
    var threads: Int = 0

    func validate() throws {
        if let ctx, ctx < 1 { throw ValidationError("--ctx \(ctx): must be at least 1") }
        _ = try kv()
        if threads < 0 || threads > HymbaOptions.maximumThreads {
            throw ValidationError("--threads \(threads): must be in 0…\(HymbaOptions.maximumThreads) (0: one per core)")
        }
        _ = try budget()
    }

    func kv() throws -> KVType {
        guard let kv = KVType(rawValue: kvType) else { throw ValidationError("--kv-type \(kvType): expected f16, f32 or q8") }
        return kv
    }

    /// `--memory-budget` as bytes (nil when absent).
    func budget() throws -> Int? { try parseMemoryBudget(memoryBudget) }

    /// The session options asked for; a missing context length is left nil for the caller.
    func sessionOptions() throws -> HymbaOptions {
        HymbaOptions(contextLength: ctx, kvType: try kv(), threads: threads, memoryBudgetBytes: try budget())
    }

    /// `--ctx` against the model: a usage error when the model cannot take that many positions.
    func checkContext(of file: HymbaFile) throws {
        let limit = file.config.maxPositionEmbeddings
        if let ctx, ctx > limit {
            throw ValidationError("--ctx \(ctx): the model takes at most \(limit) positions (max_position_embeddings)")
        }
    }

    /// The stats-line entry: the threads the kernels run on.
    var threadsNote: String { "threads: \(HymbaOptions(threads: threads).resolvedThreads)" }
}

/// Options that choose how a model is opened and how a session is sized (`eval`,
/// `perplexity`, `bench`: the model file is required).
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The .hymba model file.")
    var model: String

    @OptionGroup var size: SessionSizeOptions

    var ctx: Int? { size.ctx }
    var noVerify: Bool { size.noVerify }
    var threads: Int { size.threads }

    /// The file, the memory plan for `workload` (within the budget, if any) and the model
    /// loaded as planned; sessions use `plan.options`. `options`: the session options to plan
    /// (default: `sessionOptions()`; a missing context length means max_position_embeddings).
    func open(options given: HymbaOptions? = nil, workload: MemoryPlan.Workload) throws -> (HymbaFile, MemoryPlan, HymbaModel) {
        let file = try HymbaFile(path: model, verifyChecksums: !noVerify)
        try size.checkContext(of: file)
        var options = try given ?? sessionOptions()
        if options.contextLength == nil { options.contextLength = file.config.maxPositionEmbeddings }
        let plan = try MemoryPlan.fit(file: file, options: options, tokenizerBytes: 0, workload: workload)
        return (file, plan, try HymbaModel(file: file, residency: plan.residency))
    }

    func sessionOptions() throws -> HymbaOptions { try size.sessionOptions() }
}

let memoryBudgetHelp = "Most memory (peak RSS) the process may use, e.g. 900M, 1G, 512MiB or bytes (\(MemorySize.unitsHelp)); "
    + "the prefill chunk shrinks, the KV cache goes q8 and the weights stream as needed, else the run is refused."

/// `--memory-budget` as bytes (nil when absent); a usage error names the problem.
func parseMemoryBudget(_ text: String?) throws -> Int? {
    guard let text else { return nil }
    do { return try MemorySize.parse(text) } catch let e as MemorySize.ParseError {
        throw ValidationError("--memory-budget \(e)")
    }
}

// In the async context, so that `serve` (an async command) runs there.
await CommandLineEntry.main(HymbaEdge.self)
