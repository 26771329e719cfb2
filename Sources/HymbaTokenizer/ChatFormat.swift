/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable {
        case system, user, assistant, tool
    }
    public var role: Role
    public var content: String
    public init(role: Role, content: String) { self.role = role; self.content = content }
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: .system, content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: .user, content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: .assistant, content: content) }
}

/// Renders a conversation into the prompt text the model was trained on, by recognising the
/// model's chat template (`chat_template` in `tokenizer_config.json`) rather than running a
/// Jinja engine.
///
/// - `.hymba`: NVIDIA Hymba's template (`hymbaTemplate`), rendered exactly as Jinja renders it
///   with no `tools` or `contexts`:
///
///       <extra_id_0>System            then, for each system message: "\n" + content
///       (blank line)                  "\n\n"
///       <extra_id_1>User              per user message:      "<extra_id_1>User\n" + content + "\n"
///       <extra_id_1>Assistant         per assistant message: "<extra_id_1>Assistant\n" + content + "\n"
///                                     per tool message:      "<extra_id_1>Tool\n" + content + "\n"
///                                     generation prompt:     "<extra_id_1>Assistant\n"
///
///   System messages are gathered first, wherever they appear; contents are trimmed with
///   Python's `str.strip()` whitespace set.
/// - `.generic`: used for any other (or no) template: each message as `Role: content` + "\n"
///   (roles "System", "User", "Assistant", "Tool"; content trimmed the same way), then
///   `Assistant:` as the generation prompt. A plain format any base model can continue; it
///   is not what an instruction-tuned model with another template expects.
///
/// `<extra_id_0>` and `<extra_id_1>` are ordinary text for Hymba's tokenizer, not added tokens.
public struct ChatFormat: Sendable, Equatable {
    public enum Style: Sendable, Equatable { case hymba, generic }

    public let style: Style

    public init(style: Style) { self.style = style }

    /// Recognises `template` (compared exactly, ignoring surrounding whitespace); nil or
    /// unrecognised templates give `.generic`.
    public init(template: String?) {
        if let template, exactlyMatches(template.pythonStripped, Self.hymbaTemplate) {
            style = .hymba
        } else {
            style = .generic
        }
    }

    /// The chat template of NVIDIA's Hymba-1.5B models' `tokenizer_config.json`.
    public static let hymbaTemplate = "{{'<extra_id_0>System'}}{% for message in messages %}{% if message['role'] == 'system' %}{{'\n' + message['content'].strip()}}{% if tools or contexts %}{{'\n'}}{% endif %}{% endif %}{% endfor %}{% if tools %}{% for tool in tools %}{{ '\n<tool> ' + tool|tojson + ' </tool>' }}{% endfor %}{% endif %}{% if contexts %}{% if tools %}{{'\n'}}{% endif %}{% for context in contexts %}{{ '\n<context> ' + context.strip() + ' </context>' }}{% endfor %}{% endif %}{{'\n\n'}}{% for message in messages %}{% if message['role'] == 'user' %}{{ '<extra_id_1>User\n' + message['content'].strip() + '\n' }}{% elif message['role'] == 'assistant' %}{{ '<extra_id_1>Assistant\n' + message['content'].strip() + '\n' }}{% elif message['role'] == 'tool' %}{{ '<extra_id_1>Tool\n' + message['content'].strip() + '\n' }}{% endif %}{% endfor %}{%- if add_generation_prompt %}{{'<extra_id_1>Assistant\n'}}{%- endif %}"

    /// The prompt text for `messages`; with `addGenerationPrompt`, ends with the header of the
    /// assistant's next turn. Encode the result with the tokenizer (BOS added as usual).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        switch style {
        case .hymba:
            out += "<extra_id_0>System"
            for m in messages where m.role == .system { out += "\n" + m.content.pythonStripped }
            out += "\n\n"
            for m in messages {
                switch m.role {
                case .system: continue
                case .user: out += "<extra_id_1>User\n"
                case .assistant: out += "<extra_id_1>Assistant\n"
                case .tool: out += "<extra_id_1>Tool\n"
                }
                out += m.content.pythonStripped + "\n"
            }
            if addGenerationPrompt { out += "<extra_id_1>Assistant\n" }
        case .generic:
            for m in messages {
                out += Self.genericRoleName(m.role) + ": " + m.content.pythonStripped + "\n"
            }
            if addGenerationPrompt { out += "Assistant:" }
        }
        return out
    }

    static func genericRoleName(_ role: ChatMessage.Role) -> String {
        switch role {
        case .system: return "System"
        case .user: return "User"
        case .assistant: return "Assistant"
        case .tool: return "Tool"
        }
    }
}

private func exactlyMatches(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

extension String {
    /// `self` without leading and trailing characters that Python's `str.isspace()` accepts
    /// (what Jinja's `.strip()` calls): U+0009...U+000D, U+001C...U+0020, U+0085, U+00A0, U+1680,
    /// U+2000...U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
    var pythonStripped: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !isPythonSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isPythonSpace($0) })!
        return String(scalars[first...last])
    }
}

/// Python 3's `str.isspace()` for one code point.
func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}
