import Dispatch
import HymbaTokenizer

/// Generates text from a `TextModel` with one session: prompt → tokens → prefill → sample /
/// decode loop, with stop tokens, stop strings (held back while they might be forming) and a
/// token limit; the text is streamed through a callback as it is produced.
///
///     let generator = try Generator(model: try TextModel.open(path: path))
///     let r = try generator.generate(prompt: "import os\n", options: .init(maxTokens: 64)) { event in
///         print(event.text, terminator: ""); return .continue
///     }
///     print(r.stats.decodeTokensPerSecond)
///
/// The session's caches persist between calls: `generate(tokens:continuing: true)` feeds only
/// new tokens after what is already there (what `ChatSession` does each turn). The callback
/// runs before the sampled token is fed, so `session.logits` then holds the logits it was
/// sampled from. Nothing is allocated per token except the text pieces handed to the
/// callback (the sampler and session preallocate). Not thread-safe.
public final class Generator {
    public let model: TextModel
    public let session: HymbaSession
    /// Every token the session holds, in order (BOS first): prompts and fed generated tokens.
    public private(set) var history: [Int32] = []

    /// A generator with its own session; `options` nil means the model's `sessionOptions`
    /// (what its memory plan chose).
    public init(model: TextModel, options: HymbaOptions? = nil) throws {
        self.model = model
        session = try HymbaSession(model: model.model, options: options ?? model.sessionOptions)
        history.reserveCapacity(session.contextLength)
    }

    /// Starts over: empty history, session right after the meta tokens.
    public func reset() {
        session.reset()
        history.removeAll(keepingCapacity: true)
    }

    /// Takes the session's tokens as the history, after the session was fed or restored
    /// directly (a prompt cache, a saved state).
    public func adoptSessionTokens() {
        history.removeAll(keepingCapacity: true)
        history.append(contentsOf: session.tokens.lazy.map { Int32($0) })
    }

    /// Feeds `tokens` after the history without sampling (an embedder's `eval`); afterwards
    /// `session.logits` holds the last one's logits. Throws, changing nothing, on a token
    /// outside the vocabulary or when the context would overflow.
    public func feed(_ tokens: [Int32]) throws {
        try session.prefill(tokens: tokens.map(Int.init))
        history.append(contentsOf: tokens)
    }

    /// Generates from a fresh start: `prompt` is encoded (BOS first when the tokenizer adds it).
    public func generate(prompt: String, options: GenerationOptions,
                         onEvent: (GenerationEvent) throws -> GenerationControl) throws -> GenerationResult {
        try generate(tokens: model.encode(prompt), continuing: false, options: options, onEvent: onEvent)
    }

    /// Feeds `tokens` (after the history when `continuing`, else from a fresh start), then
    /// samples until a stop condition. Throws before changing anything when the tokens are
    /// outside the vocabulary or do not fit in the context.
    public func generate(tokens: [Int32], continuing: Bool, options: GenerationOptions,
                         onEvent: (GenerationEvent) throws -> GenerationControl) throws -> GenerationResult {
        try options.sampling.validate()
        let V = model.config.vocabSize
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= V }) {
            throw HymbaRuntimeError.tokenOutOfVocabulary(token: Int(tokens[bad]), index: bad, vocabSize: V)
        }
        let start = continuing ? session.position : 0
        if !continuing && tokens.isEmpty { throw GenerationError.emptyPrompt }
        if continuing && tokens.isEmpty && session.position == 0 { throw GenerationError.emptyPrompt }
        let available = session.contextLength - start
        guard tokens.count <= available else {
            throw GenerationError.promptTooLong(tokens: tokens.count, available: available, contextLength: session.contextLength)
        }
        let sampler = try Sampler(params: options.sampling, vocabularySize: V)
        if !continuing { reset() }

        var stats = GenerationStats()
        stats.promptTokens = tokens.count
        var t0 = DispatchTime.now().uptimeNanoseconds
        if !tokens.isEmpty { try session.prefill(tokens: tokens.map(Int.init)) }
        history.append(contentsOf: tokens)
        for t in history.suffix(options.sampling.repeatWindow) { sampler.accept(t) }
        var token = try sampler.sample(session.logits)
        stats.prefillSeconds = Self.seconds(since: t0)

        let stopTokens = options.stopTokens ?? model.endOfSequence
        let limit = options.maxTokens < 0 ? Int.max : options.maxTokens
        // Primed with everything held, so text continues it even when no new token was fed.
        var decoder = ContinuationDecoder(tokenizer: model.tokenizer, context: history)
        var matcher = StopStringMatcher(options.stopStrings)
        var generated: [Int32] = []
        generated.reserveCapacity(min(limit, session.contextLength - session.position + 1))
        var text = ""
        var reason = StopReason.maxTokens
        var fed = 0
        if limit > 0 {
            while true {
                generated.append(token)
                sampler.accept(token)
                if stopTokens.contains(token) { reason = .endOfSequence; break }
                let piece = matcher.feed(decoder.push(token))
                text += piece
                let control = try onEvent(GenerationEvent(token: token, index: generated.count - 1, text: piece))
                if matcher.matched != nil { reason = .stopString; break }
                if control == .stop { reason = .cancelled; break }
                if generated.count >= limit { reason = .maxTokens; break }
                if session.position >= session.contextLength { reason = .contextFull; break }
                t0 = DispatchTime.now().uptimeNanoseconds
                try session.decode(token: Int(token))
                history.append(token)
                fed += 1
                token = try sampler.sample(session.logits)
                stats.decodeSeconds += Self.seconds(since: t0)
                stats.decodedTokens += 1
            }
        }
        // Release what was held back (nothing after a stop string).
        if reason != .stopString {
            let tail = matcher.feed(decoder.finish()) + matcher.finish()
            if !tail.isEmpty {
                text += tail
                _ = try onEvent(GenerationEvent(token: nil, index: generated.count, text: tail))
            }
        }
        stats.generatedTokens = generated.count
        return GenerationResult(tokens: generated, text: text, stopReason: reason, stopString: matcher.matched,
                                fedTokens: fed, stats: stats)
    }

    static func seconds(since t0: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }
}
