import HymbaTokenizer

/// A conversation with an instruct model in its chat format (`ChatFormat`: Hymba's
/// `<extra_id_0>System` / `<extra_id_1>User` / `<extra_id_1>Assistant` turns), keeping the
/// session's caches across turns so each turn feeds only its new tokens.
///
/// The first turn feeds the rendered conversation. After it, the cache holds the answer's
/// tokens as they were sampled and fed (every sampled token but the last, which generation
/// never feeds). A later turn appends text after them: the rest of the answer (its last
/// token, up to the answer without trailing whitespace) and "\n", then the new user turn and
/// the assistant header exactly as the template renders them (`TextModel.encodeContinuation`).
/// When the cache already holds more than that (e.g. whitespace or the start of a stop
/// string), the user turn follows after a "\n". Unlike a full re-rendering, answers keep
/// any leading whitespace they were generated with (the template strips it): that text is
/// already in the cache. Only when a turn would overflow the context does the session start
/// over, from the system message and that turn (`lastTurnReset` tells).
///
///     let chat = try ChatSession(model: tm, system: "You are helpful.")
///     let r = try chat.respond(to: "Hi!", options: GenerationOptions(maxTokens: 128)) { e in
///         print(e.text, terminator: ""); return .continue
///     }
public final class ChatSession {
    public let generator: Generator
    public let format: ChatFormat
    /// The conversation: system message (if any), then user and assistant turns.
    public internal(set) var messages: [ChatMessage]
    /// Tokens fed before generating in the last turn.
    public private(set) var lastTurnPromptTokens = 0
    /// Whether the last turn had to start over (context overflow) instead of continuing.
    public private(set) var lastTurnReset = false
    /// The last answer: its text as shown, and the text of its tokens fed to the cache.
    var lastAnswer: (shown: String, fed: String)?

    public init(model: TextModel, options: HymbaOptions? = nil, system: String? = nil) throws {
        generator = try Generator(model: model, options: options)
        format = model.chatFormat
        messages = system.map { [.system($0)] } ?? []
    }

    public var model: TextModel { generator.model }

    /// Stop strings that end an answer in this format: the next turn's header.
    public var turnStopStrings: [String] {
        switch format.style {
        case .hymba: return ["<extra_id_1>"]
        case .generic: return ["\nUser:"]
        }
    }

    /// Adds the user's message, generates the answer (streamed through `onEvent`) and adds it
    /// to the conversation. `options.stopStrings` are used in addition to `turnStopStrings`.
    public func respond(to user: String, options: GenerationOptions,
                        onEvent: (GenerationEvent) throws -> GenerationControl) throws -> GenerationResult {
        var conversation = messages + [.user(user)]
        let session = generator.session
        var tokens: [Int32] = []
        var continuing = false
        if let last = lastAnswer, let turn = newTurnText(after: messages, user: user) {
            tokens = model.encodeContinuation(Self.continuation(answer: last.shown, fed: last.fed, turn: turn))
            continuing = session.position + tokens.count <= session.contextLength
        }
        if !continuing {
            tokens = model.encode(format.render(conversation, addGenerationPrompt: true))
            if lastAnswer != nil && tokens.count > session.contextLength {
                // Too long with the history: start over from the system message and this turn.
                conversation = messages.filter { $0.role == .system } + [.user(user)]
                tokens = model.encode(format.render(conversation, addGenerationPrompt: true))
            }
        }
        var opts = options
        opts.stopStrings = turnStopStrings + options.stopStrings.filter { !turnStopStrings.contains($0) }
        let result = try generator.generate(tokens: tokens, continuing: continuing, options: opts, onEvent: onEvent)

        lastTurnReset = lastAnswer != nil && !continuing
        lastTurnPromptTokens = tokens.count
        var decoder = ContinuationDecoder(tokenizer: model.tokenizer, context: tokens)
        var fed = ""
        for t in result.tokens.prefix(result.fedTokens) { fed += decoder.push(t) }
        fed += decoder.finish()
        lastAnswer = (result.text, fed)
        messages = conversation + [.assistant(result.text)]
        return result
    }

    /// Forgets the conversation (keeping the system message) and the caches.
    public func reset() {
        messages = messages.filter { $0.role == .system }
        generator.reset()
        lastAnswer = nil
    }

    /// The template's text for a new user turn and the assistant header, after `history`
    /// (which ends with an answer): render(history + user, header) minus render(history).
    func newTurnText(after history: [ChatMessage], user: String) -> String? {
        let before = format.render(history, addGenerationPrompt: false)
        let after = format.render(history + [.user(user)], addGenerationPrompt: true)
        guard after.utf8.starts(with: before.utf8) else { return nil }
        return String(decoding: after.utf8.dropFirst(before.utf8.count), as: UTF8.self)
    }

    /// The text to feed after an answer whose fed tokens read `fed`: the rest of the answer
    /// without trailing whitespace, "\n" (what the template puts after an answer), then `turn`,
    /// minus whatever of that the cache already holds (e.g. the start of the next header when
    /// a stop string ended the answer). When the cache holds other text (trailing whitespace),
    /// `turn` follows it after a "\n".
    static func continuation(answer shown: String, fed: String, turn: String) -> String {
        let target = shown.droppingTrailingWhitespace + "\n" + turn
        if target.utf8.starts(with: fed.utf8) {
            return String(decoding: target.utf8.dropFirst(fed.utf8.count), as: UTF8.self)
        }
        return (fed.hasSuffix("\n") ? "" : "\n") + turn
    }
}

extension String {
    /// Without trailing characters Python's `str.isspace()` accepts (the template's strip).
    var droppingTrailingWhitespace: String {
        var s = unicodeScalars[...]
        while let c = s.last, Self.isPythonSpace(c) { s = s.dropLast() }
        return String(String.UnicodeScalarView(s))
    }

    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
}
