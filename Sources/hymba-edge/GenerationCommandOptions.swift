import ArgumentParser
import Foundation
import HymbaFormat
import HymbaRuntime

/// The model of `run` and `chat`: `-m FILE`, or the small model shipped in the repository.
struct TextModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The .hymba model file (default: the shipped \(DefaultModel.relativePath)).")
    var model: String?

    @OptionGroup var size: SessionSizeOptions

    var ctx: Int? { size.ctx }
    var threads: Int { size.threads }

    /// The model, loaded as its memory plan says (within `--memory-budget` when given);
    /// generators over it use `sessionOptions` of the returned model.
    func open(promptSnapshots: Int = 0) throws -> TextModel {
        let file = try HymbaFile(path: try model ?? DefaultModel.path(), verifyChecksums: !size.noVerify)
        try size.checkContext(of: file)
        var options = try size.sessionOptions()
        options.promptSnapshots = promptSnapshots
        if options.contextLength == nil { options.contextLength = file.config.maxPositionEmbeddings }
        return try TextModel(file: file, options: options)
    }

    /// The stats-line entry: the threads the kernels run on.
    var threadsNote: String { size.threadsNote }
}

/// Sampling and stopping options of `run` and `chat`.
struct SamplingCommandOptions: ParsableArguments {
    @Option(name: [.customShort("n"), .customLong("n-predict")], parsing: .unconditional,
            help: "Most tokens to generate (-1: until the context is full).")
    var maxTokens: Int = 256

    @Option(name: .customLong("temp"), help: "Temperature; 0 is greedy (argmax).")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-k"), help: "Keep the K most likely tokens (0: off).")
    var topK: Int = 40

    @Option(name: .customLong("top-p"), help: "Keep the most likely tokens up to cumulative probability P (1: off).")
    var topP: Float = 0.95

    @Option(name: .customLong("min-p"), help: "Drop tokens below P × the top token's probability (0: off).")
    var minP: Float = 0.05

    @Option(name: .customLong("repeat-penalty"), help: "Penalty on tokens in the recent window (1: off).")
    var repeatPenalty: Float = 1.0

    @Option(name: .customLong("repeat-last-n"), help: "Tokens the repetition penalty looks back over.")
    var repeatLastN: Int = 64

    @Option(name: [.customShort("s"), .long], help: "Random seed (default: a random one, printed in the stats line).")
    var seed: UInt64?

    @Option(name: .long, parsing: .singleValue, help: "Stop before this text (repeatable; \\n, \\t, \\r and \\\\ are unescaped).")
    var stop: [String] = []

    func validate() throws {
        if stop.contains("") { throw ValidationError("--stop: the stop string is empty") }
        if maxTokens < -1 { throw ValidationError("-n \(maxTokens): must be at least -1 (-1: until the context is full)") }
        if !(temperature >= 0) || !temperature.isFinite { throw ValidationError("--temp \(temperature): must be a finite number ≥ 0 (0: greedy)") }
        if topK < 0 { throw ValidationError("--top-k \(topK): must be at least 0 (0: off)") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p \(topP): must be in (0, 1] (1: off)") }
        if !(minP >= 0 && minP <= 1) { throw ValidationError("--min-p \(minP): must be in [0, 1] (0: off)") }
        if !(repeatPenalty > 0) || !repeatPenalty.isFinite { throw ValidationError("--repeat-penalty \(repeatPenalty): must be a finite number > 0 (1: off)") }
        if repeatLastN < 0 { throw ValidationError("--repeat-last-n \(repeatLastN): must be at least 0") }
        // Anything the runtime refuses beyond these, in its words.
        do { try params(seed: 0).validate() } catch let e as HymbaRuntimeError {
            throw ValidationError("\(e)")
        }
    }

    func params(seed: UInt64) -> SamplingParams {
        SamplingParams(temperature: temperature, topK: topK, topP: topP, minP: minP,
                       repeatPenalty: repeatPenalty, repeatWindow: repeatLastN, seed: seed)
    }

    /// The seed to use: the given one, else a random one.
    func resolvedSeed() -> UInt64 {
        if let seed { return seed }
        var g = SystemRandomNumberGenerator()
        return UInt64.random(in: 0...UInt64(UInt32.max), using: &g)
    }

    func generationOptions(seed: UInt64) -> GenerationOptions {
        GenerationOptions(maxTokens: maxTokens, sampling: params(seed: seed), stopStrings: stop.map(Self.unescape))
    }

    /// `\n`, `\t`, `\r`, `\\` → newline, tab, return, backslash (a stop string is usually a
    /// line break, awkward to type in a shell); other text is kept as is.
    static func unescape(_ s: String) -> String {
        var out = ""
        var escaping = false
        for c in s {
            if escaping {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "\\": out.append("\\")
                default: out.append("\\"); out.append(c)
                }
                escaping = false
            } else if c == "\\" {
                escaping = true
            } else {
                out.append(c)
            }
        }
        if escaping { out.append("\\") }
        return out
    }
}

/// The model shipped in the repository, used by `run` and `chat` without `-m`: found next to
/// this source file's checkout (repo/models/...), else under ./models of the current directory.
enum DefaultModel {
    static let relativePath = "models/tiny-code-hymba-q8.hymba"

    static func path() throws -> String {
        let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [repoRoot.appendingPathComponent(relativePath).path,
                          FileManager.default.currentDirectoryPath + "/" + relativePath]
        for c in candidates where FileManager.default.fileExists(atPath: c) { return c }
        throw ValidationError("no -m given and the default model is not at \(candidates.joined(separator: " or ")); pass -m FILE (tools/make-default-model.sh rebuilds the default)")
    }
}

/// Text formatting shared by the stats lines.
enum Format {
    static func mib(_ bytes: Int) -> String { String(format: "%.2f MiB", Double(bytes) / 1_048_576) }
    static func rate(_ perSecond: Double) -> String { perSecond > 0 ? String(format: "%.1f tok/s", perSecond) : "- tok/s" }
    static var peakRSS: String { ProcessMemory.peakResidentBytes.map(mib) ?? "unknown" }

    /// The stats-line entries of a memory plan: what was chosen, planned and measured, and
    /// the budget. A peak over the budget is said loudly (it should not happen: the plan is
    /// checked against measured runs by tools/bench/memory.sh).
    static func memory(_ plan: MemoryPlan) -> [String] {
        var s = "plan: chunk \(plan.options.prefillChunk), KV \(plan.options.kvType), weights \(plan.residency), \(mib(plan.totalBytes))"
        if !plan.adjustments.isEmpty { s += " (to fit: \(plan.adjustments.joined(separator: ", ")))" }
        var out = [s]
        if let budget = plan.budgetBytes {
            let peak = ProcessMemory.peakResidentBytes ?? 0
            out.append("budget: \(mib(budget))" + (peak > budget ? " EXCEEDED by \(mib(peak - budget))" : ""))
        }
        return out
    }
}

func writeErr(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}
