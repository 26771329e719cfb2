import Foundation
import HymbaRuntime

/// Element type of a session's key/value cache.
public enum KVCacheType: Sendable, Equatable {
    /// Half the memory of f32; keys and values rounded to binary16 when stored.
    case f16
    /// Exact.
    case f32
    /// int8 with one scale per position and head: about a quarter of f32 (within 0.1 logit of
    /// f32 on the fixtures); what the memory planner picks when f16 does not fit the budget.
    case q8

    var runtime: KVType {
        switch self {
        case .f16: return .f16
        case .f32: return .f32
        case .q8: return .q8
        }
    }

    init(_ runtime: KVType) {
        switch runtime {
        case .f16: self = .f16
        case .f32: self = .f32
        case .q8: self = .q8
        }
    }
}

/// How a session is made.
public struct SessionOptions: Sendable, Equatable {
    /// Tokens the session can hold; nil means the model's `contextLength`.
    public var contextLength: Int?
    /// nil: the model's choice (f16, or q8 when its memory plan needed it to fit the budget).
    public var kvCacheType: KVCacheType?

    public init(contextLength: Int? = nil, kvCacheType: KVCacheType? = nil) {
        self.contextLength = contextLength
        self.kvCacheType = kvCacheType
    }
}

/// How tokens are chosen, and how many. The defaults are llama.cpp's; filters run in its order:
/// repetition penalty, top-k, top-p, min-p, temperature, then a draw seeded by `seed`.
public struct Sampling: Sendable, Equatable {
    /// ≤ 0: greedy (the highest logit, no random draw).
    public var temperature: Float
    /// Keep the k most likely tokens; ≤ 0 keeps all.
    public var topK: Int
    /// Keep the most likely tokens up to this cumulative probability; 1 keeps all.
    public var topP: Float
    /// Drop tokens less likely than minP × the most likely one; 0 keeps all.
    public var minP: Float
    /// Penalty on tokens among the last `repeatLastN` the session holds; 1 disables it.
    public var repeatPenalty: Float
    public var repeatLastN: Int
    /// The same seed, model, context and parameters give the same tokens.
    public var seed: UInt64
    /// Most tokens to generate (an end-of-sequence token counts); negative: until the context is full.
    public var maxTokens: Int

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repeatPenalty: Float = 1.0, repeatLastN: Int = 64, seed: UInt64 = 0, maxTokens: Int = 256) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.seed = seed
        self.maxTokens = maxTokens
    }

    /// Argmax decoding, up to 256 tokens.
    public static let greedy = Sampling(temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1)

    var runtime: SamplingParams {
        SamplingParams(temperature: temperature, topK: topK, topP: topP, minP: minP,
                       repeatPenalty: repeatPenalty, repeatWindow: repeatLastN, seed: seed)
    }
}

/// One step of streamed output: the text a generated token completes.
public struct Piece: Sendable, Equatable {
    /// Valid UTF-8, possibly empty (text held back until a character or byte run is complete).
    public var text: String
    /// The generated token; nil for a last piece that releases held-back text at the end.
    public var token: Int32?
}

/// What the `generate` closure returns.
public enum Control: Sendable {
    case `continue`
    /// Stop after this piece; the completion's stop reason is `.cancelled`.
    case stop
}

/// Why generation ended.
public enum StopReason: Sendable, Equatable {
    /// The model produced its end-of-sequence token (not part of the text).
    case endOfSequence
    /// `maxTokens` tokens were generated.
    case maxTokens
    /// The session holds as many tokens as its context length allows.
    case contextFull
    /// The closure returned `.stop`, or the `pieces` sequence was abandoned.
    case cancelled
}

/// The outcome of `generate`.
public struct Completion: Sendable {
    /// The generated text (all pieces joined).
    public var text: String
    /// The generated tokens, an end-of-sequence token included.
    public var tokens: [Int32]
    public var stopReason: StopReason
    /// Tokens fed before generating: the prompt's, plus the last token of the previous
    /// generation when it had not been fed yet.
    public var promptTokens: Int
    public var prefillTokensPerSecond: Double
    public var decodeTokensPerSecond: Double
}

/// One sequence over a model: the context (caches and recurrent state) that grows with every
/// token fed, and generation from it. Create as many sessions over one model as you like.
///
///     let session = try model.makeSession(SessionOptions(contextLength: 512))
///     let done = try session.generate("def fibonacci(n):", sampling: .greedy) { piece in
///         print(piece.text, terminator: ""); return .continue
///     }
///     _ = try session.generate("\n\nprint(fibonacci(10))", sampling: .greedy) { _ in .continue }  // continues
///
/// A session serves one call at a time: use it from one thread at a time, and do not call it
/// from inside its own `generate` closure; a call made while another is running throws
/// `.invalidArgument` instead of corrupting the state. Different sessions run in parallel.
///
/// What the context holds: every token fed by `eval` and `generate` (prompts and generated
/// tokens), in order, except an end-of-sequence token. Generation samples its last token
/// without running it through the model; that token is fed at the start of the next `eval`
/// or `generate` (it is counted in `tokenCount` already).
public final class Session: @unchecked Sendable {
    public let model: Model
    public let options: SessionOptions
    let generator: Generator
    /// The last generated token when it is not yet fed (see the type's documentation).
    var pending: Int32?
    private let busy = NSLock()
    /// Bytes of the model's memory budget this session holds (0 without a budget).
    private let reservedBytes: Int

    init(model: Model, options: SessionOptions) throws {
        let ctx = options.contextLength ?? model.contextLength
        guard ctx >= 1, ctx <= model.contextLength else {
            throw HymbaError(.invalidArgument, "context length \(ctx) must be in 1…\(model.contextLength) (the model's max_position_embeddings)")
        }
        self.model = model
        self.options = options
        // What the model's memory plan chose (prefill chunk, KV type; threads and budget as opened).
        var runtimeOptions = model.textModel.sessionOptions
        runtimeOptions.contextLength = ctx
        if let kv = options.kvCacheType { runtimeOptions.kvType = kv.runtime }
        reservedBytes = try model.admitSession(runtimeOptions)
        do {
            generator = try Generator(model: model.textModel, options: runtimeOptions)
        } catch {
            model.release(reservedBytes)
            throw HymbaError(classifying: error)
        }
    }

    deinit { model.release(reservedBytes) }

    /// Tokens this session can hold.
    public var contextLength: Int { generator.session.contextLength }

    /// The element type of this session's key/value cache (`SessionOptions.kvCacheType`, or the model's choice).
    public var kvCacheType: KVCacheType { KVCacheType(generator.session.options.kvType) }

    /// Threads this session's forward pass runs on (`ModelOptions.threads`, 0 resolved to the cores).
    public var threads: Int { generator.session.options.resolvedThreads }

    /// Tokens the session holds (BOS included). Like every call, not to be read while another
    /// thread uses the session (reading it from the `generate` closure is fine).
    public var tokenCount: Int { heldTokens }

    private var heldTokens: Int { generator.session.position + (pending == nil ? 0 : 1) }

    /// Empties the context (the next `generate` starts a new text, BOS first).
    public func reset() throws {
        try exclusive {
            generator.reset()
            pending = nil
        }
    }

    /// Feeds `ids` after what the session holds and returns the logits of the last position
    /// (`model.vocabularySize` values). With no ids, returns the logits of the last position
    /// already held. Throws, changing nothing, for an id outside the vocabulary
    /// (`.invalidArgument`) or when the ids do not fit (`.contextFull`).
    public func eval(_ ids: [Int32]) throws -> [Float] {
        var logits = [Float](repeating: 0, count: model.vocabularySize)
        try ids.withUnsafeBufferPointer { idsBuffer in
            try logits.withUnsafeMutableBufferPointer { try eval(idsBuffer, logits: $0) }
        }
        return logits
    }

    /// `eval` writing the logits into `logits` (at least `vocabularySize` floats) when given.
    public func eval(_ ids: UnsafeBufferPointer<Int32>, logits: UnsafeMutableBufferPointer<Float>?) throws {
        try exclusive {
            let V = model.vocabularySize
            if let logits, logits.count < V {
                throw HymbaError(.invalidArgument, "the logits buffer holds \(logits.count) floats, the vocabulary needs \(V)")
            }
            try model.checkVocabulary(ids)
            var tokens = pending.map { [$0] } ?? []
            tokens.append(contentsOf: ids)
            if tokens.isEmpty && generator.session.position == 0 && logits != nil {
                throw HymbaError(.invalidArgument, "the context is empty: there are no logits yet (feed at least one token)")
            }
            try checkRoom(for: tokens.count, what: "\(ids.count) tokens")
            if !tokens.isEmpty {
                try generator.feed(tokens)
                pending = nil
            }
            if let logits {
                logits.baseAddress!.update(from: generator.session.logits.baseAddress!, count: V)
            }
        }
    }

    /// Tokenizes `prompt` and feeds it after what the session holds (as a continuation of the
    /// text so far; a new text, BOS first, when the session is empty), then generates, handing
    /// each piece of text to `onPiece` as it is produced. An empty prompt on a non-empty
    /// session continues from its last position. Ends at the end-of-sequence token,
    /// `maxTokens`, a full context or `.stop` (see `Completion.stopReason`); throws, before
    /// feeding anything, when the prompt does not fit (`.contextFull`) or the sampling
    /// parameters are out of range (`.invalidArgument`).
    @discardableResult
    public func generate(_ prompt: String, sampling: Sampling = Sampling(),
                         onPiece: (Piece) -> Control) throws -> Completion {
        try exclusive {
            try sampling.runtime.validate()
            let fresh = heldTokens == 0
            var tokens = pending.map { [$0] } ?? []
            tokens += fresh ? model.textModel.encode(prompt) : model.textModel.encodeContinuation(prompt)
            if fresh && tokens.isEmpty {
                throw HymbaError(.invalidArgument, "the prompt is empty and so is the context: nothing to generate from")
            }
            try checkRoom(for: tokens.count, what: "the prompt's \(tokens.count) tokens")
            let options = GenerationOptions(maxTokens: sampling.maxTokens, sampling: sampling.runtime)
            let before = generator.session.position
            let result: GenerationResult
            do {
                result = try generator.generate(tokens: tokens, continuing: !fresh, options: options) { event in
                    onPiece(Piece(text: event.text, token: event.token)) == .stop ? .stop : .continue
                }
            } catch {
                if generator.session.position != before { pending = nil }
                throw error
            }
            let reason: StopReason
            switch result.stopReason {
            case .endOfSequence: reason = .endOfSequence
            case .maxTokens: reason = .maxTokens
            case .contextFull: reason = .contextFull
            case .cancelled: reason = .cancelled
            case .stopString: reason = .cancelled  // no stop strings are passed
            }
            // The last sampled token is not fed; it is fed first by the next call when its
            // text was delivered and there is room for it.
            pending = nil
            if reason == .maxTokens || reason == .cancelled, let last = result.tokens.last,
               generator.session.position < generator.session.contextLength {
                pending = last
            }
            return Completion(text: result.text, tokens: result.tokens, stopReason: reason,
                              promptTokens: result.stats.promptTokens,
                              prefillTokensPerSecond: result.stats.prefillTokensPerSecond,
                              decodeTokensPerSecond: result.stats.decodeTokensPerSecond)
        }
    }

    /// `generate` as an asynchronous sequence of non-empty text pieces. Generation runs on its
    /// own thread; abandoning the iteration (or cancelling its task) stops it after the
    /// current token. Errors are thrown from the iteration.
    ///
    ///     for try await piece in session.pieces("import os\n", sampling: .greedy) { print(piece, terminator: "") }
    public func pieces(_ prompt: String, sampling: Sampling = Sampling()) -> AsyncThrowingStream<String, Error> {
        AsyncThrowingStream { continuation in
            let stop = StopFlag()
            continuation.onTermination = { _ in stop.set() }
            let thread = Thread { [self] in
                do {
                    try generate(prompt, sampling: sampling) { piece in
                        if !piece.text.isEmpty { continuation.yield(piece.text) }
                        return stop.isSet ? .stop : .continue
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            thread.start()
        }
    }

    // MARK: Helpers

    /// Runs `body` as the only call on this session; errors come out as `HymbaError`.
    func exclusive<T>(_ body: () throws -> T) throws -> T {
        guard busy.try() else {
            throw HymbaError(.invalidArgument, "the session is busy with another call (use a session from one thread at a time, and not from inside its own generate callback)")
        }
        defer { busy.unlock() }
        do { return try body() } catch { throw HymbaError(classifying: error) }
    }

    private func checkRoom(for count: Int, what: String) throws {
        let position = generator.session.position, ctx = generator.session.contextLength
        if position + count > ctx {
            throw HymbaError(.contextFull, "context full: it holds \(heldTokens) of \(ctx) tokens; \(what) do not fit (\(ctx - position) free)")
        }
    }
}

/// Set once by the consumer of `pieces` when it stops listening.
private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
