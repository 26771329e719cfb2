import ArgumentParser
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge`: runs Hymba models from `.hymba` files. A thin shell over HymbaRuntime.
struct HymbaEdge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hymba-edge",
        abstract: "Run NVIDIA Hymba models on the CPU from .hymba files.",
        version: "\(HymbaVersion.string)\n\(KernelDispatch.summary())",
        subcommands: [Run.self, Chat.self, Tokenize.self, Detokenize.self, PerplexityCommand.self, Eval.self, Info.self, Bench.self])
}

/// Options that choose how a model is opened and how a session is sized.
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The .hymba model file.")
    var model: String

    @Option(name: .long, help: "Context length in tokens (default: the model's max_position_embeddings).")
    var ctx: Int?

    @Option(name: .customLong("kv-type"), help: "Element type of the KV cache: f16, f32 or q8.")
    var kvType: String = "f16"

    @Flag(name: .customLong("no-verify"), help: "Skip the per-chunk checksum check on first use.")
    var noVerify = false

    @Option(name: .customLong("memory-budget"), help: ArgumentHelp(memoryBudgetHelp, valueName: "size"))
    var memoryBudget: String?

    func validate() throws {
        if KVType(rawValue: kvType) == nil { throw ValidationError("--kv-type \(kvType): expected f16, f32 or q8") }
        if let ctx, ctx < 1 { throw ValidationError("--ctx \(ctx): must be at least 1") }
        _ = try parseMemoryBudget(memoryBudget)
    }

    /// The file, the memory plan for `workload` (within the budget, if any) and the model
    /// loaded as planned; sessions use `plan.options`. `options`: the session options to plan
    /// (default: `sessionOptions()`; a missing context length means max_position_embeddings).
    func open(options given: HymbaOptions? = nil, workload: MemoryPlan.Workload) throws -> (HymbaFile, MemoryPlan, HymbaModel) {
        let file = try HymbaFile(path: model, verifyChecksums: !noVerify)
        var options = try given ?? sessionOptions()
        if options.contextLength == nil { options.contextLength = file.config.maxPositionEmbeddings }
        let plan = try MemoryPlan.fit(file: file, options: options, tokenizerBytes: 0, workload: workload)
        return (file, plan, try HymbaModel(file: file, residency: plan.residency))
    }

    func sessionOptions() throws -> HymbaOptions {
        guard let kv = KVType(rawValue: kvType) else { throw ValidationError("--kv-type \(kvType): expected f16, f32 or q8") }
        if let ctx, ctx < 1 { throw ValidationError("--ctx \(ctx): must be at least 1") }
        return HymbaOptions(contextLength: ctx, kvType: kv, memoryBudgetBytes: try parseMemoryBudget(memoryBudget))
    }
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

/// Prints a library error as one clear line on stderr and exits with status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ValidationError { throw e } catch let e as ExitCode { throw e } catch {
        FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
        throw ExitCode(1)
    }
}

/// Arguments are decoded with repair by the standard library (a bad byte becomes U+FFFD), so a
/// prompt given with -p that is not UTF-8 would run as other text: refused here, before parsing.
func refuseArgumentsThatAreNotUTF8() {
    for i in 1..<Int(CommandLine.argc) {
        guard let arg = CommandLine.unsafeArgv[i] else { continue }
        let bytes = UnsafeRawBufferPointer(start: arg, count: strlen(arg))
        do { _ = try UTF8Text.decode(bytes, source: "argument \(i)") } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
    }
}

refuseArgumentsThatAreNotUTF8()
HymbaEdge.main()
