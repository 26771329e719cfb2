import Foundation
import HymbaRuntime
import HymbaTokenizer

/// A `POST /v1/completions` or `POST /v1/chat/completions` body, checked field by field
/// (OpenAI's names and ranges, plus llama.cpp's `top_k`, `min_p`, `repeat_penalty` and `ignore_eos`).
/// Unknown fields are ignored, as OpenAI's clients send some the server has no use for.
struct CompletionRequest {
    enum Prompt: Equatable {
        case text(String)
        case tokens([Int32])
    }

    enum Kind { case completion, chat }

    var kind: Kind
    var model: String?
    /// The completion's prompt, or the chat's rendered conversation.
    var prompt: Prompt
    var stream = false
    var includeUsage = false
    /// nil: until the context is full.
    var maxTokens: Int?
    var temperature: Float = 1
    var topP: Float = 1
    var topK = 40
    var minP: Float = 0.05
    var repeatPenalty: Float = 1
    var presencePenalty: Float = 0
    var frequencyPenalty: Float = 0
    var seed: UInt64?
    var stop: [String] = []
    /// llama.cpp's `ignore_eos`: generate past the end-of-sequence token (load tests).
    var ignoreEOS = false

    /// Stop strings a request may give (OpenAI's limit).
    static let maximumStopStrings = 4
    /// Bytes a stop string may have.
    static let maximumStopBytes = 256

    /// Parses a request body (JSON bytes) for `kind`; chat messages are rendered with `format`.
    init(body: [UInt8], kind: Kind, format: ChatFormat) throws {
        guard !body.isEmpty else { throw APIError.invalid("the request body is empty; expected a JSON object", code: "invalid_json") }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(body)) } catch {
            throw APIError.invalid("the request body is not valid JSON: \(Self.reason(error))", code: "invalid_json")
        }
        guard let o = parsed as? [String: Any] else {
            throw APIError.invalid("the request body must be a JSON object, found \(JSONValue.describe(parsed))", code: "invalid_json")
        }
        self.kind = kind
        let fields = Fields(object: o)
        model = try fields.string("model")
        switch kind {
        case .completion:
            prompt = try Self.completionPrompt(o["prompt"])
        case .chat:
            prompt = .text(format.render(try Self.messages(o["messages"]), addGenerationPrompt: true))
        }
        stream = try fields.bool("stream") ?? false
        if let options = o["stream_options"], !(options is NSNull) {
            guard let object = options as? [String: Any] else {
                throw APIError.wrongType("stream_options", expected: "an object", found: options)
            }
            includeUsage = try Fields(object: object, prefix: "stream_options.").bool("include_usage") ?? false
        }
        let maxKey = kind == .chat && o["max_completion_tokens"] != nil ? "max_completion_tokens" : "max_tokens"
        maxTokens = try fields.integer(maxKey, in: 1...Int(Int32.max), "an integer ≥ 1")
        temperature = try fields.float("temperature", in: 0...2, "in [0, 2]") ?? temperature
        topP = try fields.float("top_p", in: 0...1, "in [0, 1]") ?? topP
        topK = try fields.integer("top_k", in: 0...Int(Int32.max), "an integer ≥ 0 (0: off)") ?? topK
        minP = try fields.float("min_p", in: 0...1, "in [0, 1]") ?? minP
        repeatPenalty = try fields.float("repeat_penalty", in: 0.0001...100, "in (0, 100] (1: off)") ?? repeatPenalty
        presencePenalty = try fields.float("presence_penalty", in: -2...2, "in [-2, 2]") ?? presencePenalty
        frequencyPenalty = try fields.float("frequency_penalty", in: -2...2, "in [-2, 2]") ?? frequencyPenalty
        if let s = try fields.integer("seed", in: Int(Int64.min)...Int(Int64.max), "an integer") { seed = UInt64(bitPattern: Int64(s)) }
        if let n = try fields.integer("n", in: 1...Int(Int32.max), "1") , n != 1 {
            throw APIError.outOfRange("n", n, "1 (one choice per request)")
        }
        stop = try Self.stopStrings(o["stop"])
        ignoreEOS = try fields.bool("ignore_eos") ?? false
    }

    /// Sampling as the runtime takes it: `top_p` 0 means the single most likely token.
    var sampling: SamplingParams {
        SamplingParams(temperature: temperature, topK: topP == 0 ? 1 : topK, topP: topP == 0 ? 1 : topP, minP: minP,
                       repeatPenalty: repeatPenalty, repeatWindow: 64, seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)))
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    private static func completionPrompt(_ value: Any?) throws -> Prompt {
        guard let value, !(value is NSNull) else { throw APIError.missing("prompt", "a string or an array of token ids") }
        if let s = value as? String { return .text(s) }
        if let list = value as? [Any] {
            if list.count == 1, let s = list[0] as? String { return .text(s) }
            if list.count > 1, list.allSatisfy({ $0 is String }) {
                throw APIError.invalid("'prompt' has \(list.count) strings; this server takes one prompt per request", param: "prompt", code: "invalid_value")
            }
            var ids: [Int32] = []
            ids.reserveCapacity(list.count)
            for (i, v) in list.enumerated() {
                guard let id = JSONValue.integer(v), id >= 0, id <= Int(Int32.max) else {
                    throw APIError.wrongType("prompt[\(i)]", expected: "a token id (an integer ≥ 0)", found: v)
                }
                ids.append(Int32(id))
            }
            return .tokens(ids)
        }
        throw APIError.wrongType("prompt", expected: "a string or an array of token ids", found: value)
    }

    private static func messages(_ value: Any?) throws -> [ChatMessage] {
        guard let value, !(value is NSNull) else { throw APIError.missing("messages", "an array of {role, content}") }
        guard let list = value as? [Any] else { throw APIError.wrongType("messages", expected: "an array", found: value) }
        guard !list.isEmpty else { throw APIError.invalid("'messages' is empty; at least one message is needed", param: "messages", code: "invalid_value") }
        return try list.enumerated().map { i, item in
            let name = "messages[\(i)]"
            guard let m = item as? [String: Any] else { throw APIError.wrongType(name, expected: "an object", found: item) }
            guard let roleValue = m["role"] else { throw APIError.missing("\(name).role", "system, user or assistant") }
            guard let role = roleValue as? String else { throw APIError.wrongType("\(name).role", expected: "a string", found: roleValue) }
            let content = try Self.content(m["content"], field: "\(name).content")
            switch role {
            case "system", "developer": return .system(content)
            case "user": return .user(content)
            case "assistant": return .assistant(content)
            default:
                throw APIError.invalid("'\(name).role' is \"\(role)\"; expected system, user or assistant", param: "\(name).role", code: "invalid_value")
            }
        }
    }

    /// A message's content: a string, or an array of text parts (`{"type": "text", "text": …}`).
    private static func content(_ value: Any?, field: String) throws -> String {
        guard let value, !(value is NSNull) else { throw APIError.missing(field, "a string") }
        if let s = value as? String { return s }
        if let parts = value as? [Any] {
            return try parts.enumerated().map { i, part in
                guard let p = part as? [String: Any], p["type"] as? String == "text", let text = p["text"] as? String else {
                    throw APIError.invalid("'\(field)[\(i)]' must be a text part {\"type\": \"text\", \"text\": …}; this model reads text only",
                                           param: "\(field)[\(i)]", code: "invalid_value")
                }
                return text
            }.joined()
        }
        throw APIError.wrongType(field, expected: "a string or an array of text parts", found: value)
    }

    private static func stopStrings(_ value: Any?) throws -> [String] {
        guard let value, !(value is NSNull) else { return [] }
        let list: [Any]
        if let s = value as? String { list = [s] } else if let l = value as? [Any] { list = l } else {
            throw APIError.wrongType("stop", expected: "a string or an array of strings", found: value)
        }
        guard list.count <= maximumStopStrings else {
            throw APIError.invalid("'stop' has \(list.count) strings; at most \(maximumStopStrings) are allowed", param: "stop", code: "invalid_value")
        }
        return try list.enumerated().map { i, v in
            guard let s = v as? String else { throw APIError.wrongType("stop[\(i)]", expected: "a string", found: v) }
            guard !s.isEmpty, s.utf8.count <= maximumStopBytes else {
                throw APIError.invalid("'stop[\(i)]' has \(s.utf8.count) bytes; it must have 1…\(maximumStopBytes)", param: "stop", code: "invalid_value")
            }
            return s
        }
    }
}

/// Typed access to the fields of one JSON object; absent and null fields read as nil, any
/// other type is an `APIError` naming the field.
struct Fields {
    let object: [String: Any]
    var prefix = ""

    private func value(_ key: String) -> Any? {
        guard let v = object[key], !(v is NSNull) else { return nil }
        return v
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v as? String else { throw APIError.wrongType(prefix + key, expected: "a string", found: v) }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard JSONValue.isBool(v), let b = v as? Bool else { throw APIError.wrongType(prefix + key, expected: "true or false", found: v) }
        return b
    }

    func integer(_ key: String, in range: ClosedRange<Int>, _ expected: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = JSONValue.integer(v) else { throw APIError.wrongType(prefix + key, expected: expected, found: v) }
        guard range.contains(i) else { throw APIError.outOfRange(prefix + key, i, expected) }
        return i
    }

    func float(_ key: String, in range: ClosedRange<Double>, _ expected: String) throws -> Float? {
        guard let v = value(key) else { return nil }
        guard let d = JSONValue.number(v) else { throw APIError.wrongType(prefix + key, expected: "a number", found: v) }
        guard range.contains(d) else { throw APIError.outOfRange(prefix + key, d, expected) }
        return Float(d)
    }
}
