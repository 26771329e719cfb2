/// What to generate and when to stop.
public struct GenerationOptions: Sendable {
    /// Most tokens to generate (the end-of-sequence token counts as one); negative means until
    /// the context is full.
    public var maxTokens: Int
    public var sampling: SamplingParams
    /// Generation ends before the first occurrence of any of these (matched across tokens;
    /// the stop string and anything after it are not returned).
    public var stopStrings: [String]
    /// Tokens that end generation (not emitted as text); nil means the model's end-of-sequence.
    public var stopTokens: [Int32]?

    public init(maxTokens: Int = 256, sampling: SamplingParams = SamplingParams(), stopStrings: [String] = [],
                stopTokens: [Int32]? = nil) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopTokens = stopTokens
    }
}

/// One step of streamed output.
public struct GenerationEvent: Sendable {
    /// The token just sampled; nil for the last event, which releases text held back until the
    /// end (an unfinished byte run, or text that could have begun a stop string).
    public let token: Int32?
    /// 0-based index of `token` among the generated tokens.
    public let index: Int
    /// Text released by this step: possibly empty (held back, or a token without text).
    public let text: String
}

/// Returned by the event callback.
public enum GenerationControl: Sendable {
    case `continue`
    /// Stop after this token (as Ctrl-C does in `chat`).
    case stop
}

/// Why generation ended.
public enum StopReason: String, Sendable, CustomStringConvertible {
    case endOfSequence = "end of sequence"
    case stopString = "stop string"
    case maxTokens = "token limit"
    case contextFull = "context full"
    case cancelled = "cancelled"

    public var description: String { rawValue }
}

/// Token counts and times of one generation.
public struct GenerationStats: Sendable, Equatable {
    /// Tokens fed before generating (BOS included).
    public var promptTokens = 0
    /// Time to feed them and sample the first token.
    public var prefillSeconds: Double = 0
    /// Tokens sampled (an end-of-sequence token included).
    public var generatedTokens = 0
    /// Single-token forward passes of the loop (each followed by a sample): generatedTokens − 1
    /// at most, since the last sampled token is never fed.
    public var decodedTokens = 0
    public var decodeSeconds: Double = 0

    public init() {}

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(decodedTokens) / decodeSeconds : 0 }
}

/// The outcome of `Generator.generate`.
public struct GenerationResult: Sendable {
    /// Every sampled token, in order (an end-of-sequence token included).
    public var tokens: [Int32]
    /// The text streamed through the callback, concatenated.
    public var text: String
    public var stopReason: StopReason
    /// The stop string that ended generation, if one did.
    public var stopString: String?
    /// How many of `tokens` were fed to the session (all but the last: a sampled token is fed
    /// only when generation goes on).
    public var fedTokens: Int
    public var stats: GenerationStats
}
