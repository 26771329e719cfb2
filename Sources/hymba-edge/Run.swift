import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge run`: generate a continuation of a prompt, streamed to stdout.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streamed to stdout; a stats line on stderr at the end.",
        discussion: "Ctrl-C stops generating and prints the stats line; so does closing stdout (run | head).")

    @OptionGroup var model: TextModelOptions

    @Option(name: .shortAndLong, help: "The prompt; @FILE reads it from a file, - from stdin, @@ starts a prompt with a literal @.")
    var prompt: String?

    @Option(name: [.customShort("f"), .customLong("prompt-file")], help: "Read the prompt from this file (- for stdin).")
    var promptFile: String?

    @OptionGroup var sampling: SamplingCommandOptions

    @Flag(name: .customLong("no-echo"), help: "Print only the generated text, not the prompt before it.")
    var noEcho = false

    @OptionGroup var promptCache: PromptCacheOptions

    func validate() throws {
        if (prompt == nil) == (promptFile == nil) { throw ValidationError("give exactly one of -p PROMPT or -f FILE") }
    }

    func run() throws {
        try runReportingErrors {
            let text = try promptFile.map { try Self.readPromptFile($0) } ?? Self.readPrompt(prompt ?? "")
            let interrupts = InterruptHandler()
            let tm = try model.open(promptSnapshots: promptCache.plannedSnapshots)
            let generator = try Generator(model: tm)
            let cached = try promptCache.feedPrompt(text, generator: generator)
            let seed = sampling.resolvedSeed()
            // The prompt is echoed once generation has started (not before an error), and on a
            // terminal the output ends with a newline so the stats line starts on its own.
            var lineOpen = false
            var echoPending = !noEcho
            func show(_ s: String) {
                if echoPending { echoPending = false; show(text) }
                guard !s.isEmpty else { return }
                writeOut(s)
                lineOpen = !s.hasSuffix("\n")
            }
            let options = sampling.generationOptions(seed: seed)
            let onEvent: (GenerationEvent) throws -> GenerationControl = { event in
                show(event.text)
                return interrupts.cancelRequested || StandardOutput.closed ? .stop : .continue
            }
            interrupts.beginGenerating()
            let result = try cached == nil ? generator.generate(prompt: text, options: options, onEvent: onEvent)
                : generator.generate(tokens: [], continuing: true, options: options, onEvent: onEvent)
            interrupts.endGenerating()
            show("")
            if isatty(1) != 0 && lineOpen { writeOut("\n") }
            let s = result.stats
            let memory = generator.session.memoryReport
            var parts = [
                cached?.statsNote ?? "prompt: \(s.promptTokens) tokens, \(Format.rate(s.prefillTokensPerSecond))",
                "generated: \(s.generatedTokens) tokens, \(Format.rate(s.decodeTokensPerSecond))",
                "stop: \(Self.stopText(result.stopReason, interrupted: interrupts.cancelRequested))",
                "peak RSS: \(Format.peakRSS)",
                "KV: \(memory.kvBytes) bytes (\(Format.mib(memory.kvBytes)), \(memory.kvType), ctx \(memory.contextLength))",
                model.threadsNote,
            ] + Format.memory(tm.memoryPlan)
            if !sampling.params(seed: seed).isGreedy { parts.append("seed: \(seed)") }
            writeErr(parts.joined(separator: " | ") + "\n")
            if interrupts.cancelRequested { throw ExitCode(InterruptHandler.exitStatus) }
        }
    }

    /// Why generation stopped, in words; a cancel says who asked for it.
    static func stopText(_ reason: StopReason, interrupted: Bool) -> String {
        guard reason == .cancelled else { return reason.description }
        if interrupted { return "interrupted (Ctrl-C)" }
        if StandardOutput.closed { return "output closed" }
        return reason.description
    }

    /// The text of `-p`: literal; `@path`, a file; `-`, all of stdin; `@@text`, the literal `@text`.
    static func readPrompt(_ p: String) throws -> String {
        if p.hasPrefix("@@") { return String(p.dropFirst()) }
        if p == FileArgument.standardStream || p.hasPrefix("@") { return try readPromptFile(p == "-" ? p : String(p.dropFirst())) }
        return p
    }

    /// The prompt in a file (`-`: stdin); refused unless UTF-8.
    static func readPromptFile(_ path: String) throws -> String {
        let data = try FileArgument.read(path, what: "the prompt")
        return try UTF8Text.decode(data, source: path == "-" ? "the prompt on stdin" : "the prompt file \(path)")
    }
}
