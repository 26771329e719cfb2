import ArgumentParser
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge run`: generate a continuation of a prompt, streamed to stdout.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streamed to stdout; a stats line on stderr at the end.")

    @OptionGroup var model: TextModelOptions

    @Option(name: .shortAndLong, help: "The prompt; @FILE reads it from a file, - from stdin.")
    var prompt: String

    @OptionGroup var sampling: SamplingCommandOptions

    @Flag(name: .customLong("no-echo"), help: "Print only the generated text, not the prompt before it.")
    var noEcho = false

    @OptionGroup var promptCache: PromptCacheOptions

    func run() throws {
        try runReportingErrors {
            let text = try Self.readPrompt(prompt)
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
                return .continue
            }
            let result = try cached == nil ? generator.generate(prompt: text, options: options, onEvent: onEvent)
                : generator.generate(tokens: [], continuing: true, options: options, onEvent: onEvent)
            show("")
            if isatty(1) != 0 && lineOpen { writeOut("\n") }
            let s = result.stats
            let memory = generator.session.memoryReport
            var parts = [
                cached?.statsNote ?? "prompt: \(s.promptTokens) tokens, \(Format.rate(s.prefillTokensPerSecond))",
                "generated: \(s.generatedTokens) tokens, \(Format.rate(s.decodeTokensPerSecond))",
                "stop: \(result.stopReason)",
                "peak RSS: \(Format.peakRSS)",
                "KV: \(memory.kvBytes) bytes (\(Format.mib(memory.kvBytes)), \(memory.kvType), ctx \(memory.contextLength))",
                model.threadsNote,
            ] + Format.memory(tm.memoryPlan)
            if !sampling.params(seed: seed).isGreedy { parts.append("seed: \(seed)") }
            writeErr(parts.joined(separator: " | ") + "\n")
        }
    }

    /// The prompt text: literal, `@path` (a file) or `-` (all of stdin); refused unless UTF-8.
    static func readPrompt(_ p: String) throws -> String {
        if p == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return try UTF8Text.decode(data, source: "the prompt on stdin")
        }
        if p.hasPrefix("@") {
            let path = String(p.dropFirst())
            guard let data = FileManager.default.contents(atPath: path) else {
                throw IOError(path: path, operation: "reading the prompt", message: "no such readable file")
            }
            return try UTF8Text.decode(data, source: "the prompt file \(path)")
        }
        return p
    }
}
