import Foundation
import HymbaTokenizer

/// A conversation saved with its session's state (`hymba-edge chat --session FILE`): the
/// state file (formats/HYMBA-STATE.md) carries the transcript in its 'TEXT' section as JSON,
///
///     {"version": 1, "messages": [{"role": "user", "content": "..."}, ...],
///      "last_answer": {"shown": "...", "fed": "..."}}
///
/// (`last_answer` absent before the first answer), so a resumed chat continues exactly where
/// it stopped: the next turn feeds only its new tokens after the restored caches.
extension ChatSession {
    /// Saves the conversation and the session's state to `path` (atomically).
    public func save(to path: String) throws {
        var object: [String: Any] = [
            "version": 1,
            "messages": messages.map { ["role": $0.role.rawValue, "content": $0.content] },
        ]
        if let last = lastAnswer { object["last_answer"] = ["shown": last.shown, "fed": last.fed] }
        let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        try generator.session.saveState(to: path, SavedStateExtras(text: Array(json)))
    }

    /// Restores a conversation `save` wrote: its messages and the session's state. Throws
    /// (`StateFileError`), changing nothing, when the file is not a chat saved for this model
    /// and these session options.
    public func restore(from path: String) throws {
        var transcript: ([ChatMessage], (shown: String, fed: String)?)?
        try generator.session.loadState(from: path) { extras in transcript = try Self.transcript(extras.text, path: path) }
        messages = transcript!.0
        lastAnswer = transcript!.1
        generator.adoptSessionTokens()
    }

    static func transcript(_ text: [UInt8]?, path: String) throws -> ([ChatMessage], (shown: String, fed: String)?) {
        func fail(_ m: String) -> StateFileError { StateFileError(path, "chat transcript: \(m)") }
        guard let text else { throw fail("missing (not a chat session: no 'TEXT' section)") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text)) as? [String: Any] else { throw fail("not a JSON object") }
        guard object["version"] as? Int == 1 else { throw fail("version \(object["version"] ?? "missing"), expected 1") }
        guard let list = object["messages"] as? [[String: Any]] else { throw fail("'messages' is not a list of objects") }
        var messages: [ChatMessage] = []
        for (i, m) in list.enumerated() {
            guard let r = m["role"] as? String, let role = ChatMessage.Role(rawValue: r), let content = m["content"] as? String else {
                throw fail("message \(i) needs a role (system, user, assistant, tool) and a content string")
            }
            messages.append(ChatMessage(role: role, content: content))
        }
        var last: (shown: String, fed: String)?
        if let a = object["last_answer"] {
            guard let a = a as? [String: Any], let shown = a["shown"] as? String, let fed = a["fed"] as? String else {
                throw fail("'last_answer' needs 'shown' and 'fed' strings")
            }
            last = (shown, fed)
        }
        return (messages, last)
    }
}
