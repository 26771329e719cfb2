import ArgumentParser
import Dispatch
import Foundation
import HymbaRuntime

/// `run --prompt-cache FILE` (llama.cpp's flag): the prompt's state is saved to FILE, and a
/// later prompt starting with the same tokens feeds only the rest (`PromptCache`).
struct PromptCacheOptions: ParsableArguments {
    @Option(name: .customLong("prompt-cache"), help: ArgumentHelp(
        "Reuse the state in FILE for the tokens the prompt shares with it, then save the prompt's state to FILE.",
        valueName: "file"))
    var path: String?

    @Option(name: .customLong("prompt-cache-snapshots"),
            help: "Snapshots the prompt cache keeps, so a prompt that diverges part-way resumes from the last one before it.")
    var snapshots: Int = 4

    func validate() throws {
        if snapshots < 0 || snapshots > 64 { throw ValidationError("--prompt-cache-snapshots \(snapshots): must be in 0…64") }
    }

    /// The snapshots the memory plan counts (none without a cache).
    var plannedSnapshots: Int { path == nil ? 0 : snapshots }

    /// What feeding the prompt through the cache did.
    struct Fed {
        var promptTokens: Int
        var reusedTokens: Int
        var seconds: Double
        var statsNote: String {
            let fed = promptTokens - reusedTokens
            let rate = seconds > 0 && fed > 0 ? String(format: "%.1f tok/s", Double(fed) / seconds) : "- tok/s"
            return "prompt: \(promptTokens) tokens (\(reusedTokens) reused from the prompt cache), \(rate)"
        }
    }

    /// With a cache: restores what the prompt can reuse, feeds the rest, saves the state and
    /// leaves the generator holding the prompt. nil without a cache (nothing done).
    func feedPrompt(_ text: String, generator: Generator) throws -> Fed? {
        guard let path else { return nil }
        let prompt = generator.model.encode(text).map(Int.init)
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        let session = generator.session
        guard prompt.count <= session.contextLength else {
            throw GenerationError.promptTooLong(tokens: prompt.count, available: session.contextLength, contextLength: session.contextLength)
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        var cache = try PromptCache(path: path, session: session, prompt: prompt, maximumSnapshots: snapshots)
        try cache.feed(Array(prompt[cache.reusedTokens...]), session: session)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        try cache.save(session: session)
        generator.adoptSessionTokens()
        return Fed(promptTokens: prompt.count, reusedTokens: cache.reusedTokens, seconds: seconds)
    }
}
