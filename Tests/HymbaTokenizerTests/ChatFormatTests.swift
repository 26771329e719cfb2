import Foundation
import HymbaTokenizer
import Testing

@Suite("ChatFormat")
struct ChatFormatTests {
    @Test("Hymba's template is recognised from the checkpoint's tokenizer_config.json")
    func recognised() throws {
        let spec = try Fixtures.hymbaSpec()
        #expect(ChatFormat(template: spec.chatTemplate).style == .hymba)
        #expect(ChatFormat(template: nil).style == .generic)
        #expect(ChatFormat(template: "{{ messages }}").style == .generic)
    }

    @Test("renders what jinja2 renders (tools/make_tokenizer_fixtures.py), and the ids HF gives for it")
    func jinjaCases() throws {
        let tokenizer = try Fixtures.hymba()
        let format = ChatFormat(style: .hymba)
        let cases = try #require(try Fixtures.extraCases()["chat"] as? [[String: Any]])
        #expect(cases.count >= 10)
        for c in cases {
            let messages = try #require(c["messages"] as? [[String: String]]).map { m in
                ChatMessage(role: try #require(ChatMessage.Role(rawValue: m["role"] ?? "")), content: m["content"] ?? "")
            }
            let addPrompt = try #require(c["add_generation_prompt"] as? Bool)
            let rendered = format.render(messages, addGenerationPrompt: addPrompt)
            let expected = try #require(c["rendered"] as? String)
            #expect(scalars(rendered) == scalars(expected), "\(messages)")
            #expect(tokenizer.encode(rendered) == (try Fixtures.int32s(c["ids"])))
        }
    }

    @Test("a hand-computed Hymba prompt")
    func handComputed() {
        let text = ChatFormat(style: .hymba).render(
            [.system("You are helpful."), .user("  What is 2+2?\n"), .assistant("4"), .user("And 3+3?")],
            addGenerationPrompt: true)
        #expect(text == "<extra_id_0>System\nYou are helpful.\n\n<extra_id_1>User\nWhat is 2+2?\n<extra_id_1>Assistant\n4\n<extra_id_1>User\nAnd 3+3?\n<extra_id_1>Assistant\n")
        #expect(ChatFormat(style: .hymba).render([.user("Hi")], addGenerationPrompt: false) == "<extra_id_0>System\n\n<extra_id_1>User\nHi\n")
    }

    @Test("the generic fallback format")
    func generic() {
        let text = ChatFormat(template: "something else").render([.system(" Be terse. "), .user("Hi"), .assistant("Hello")], addGenerationPrompt: true)
        #expect(text == "System: Be terse.\nUser: Hi\nAssistant: Hello\nAssistant:")
    }
}
