import Foundation
import HymbaFormat
import HymbaTokenizer
import Testing
@testable import HymbaRuntime

@Suite("Chat session")
struct ChatSessionTests {
    @Test("turns keep the caches: the second turn feeds only its new tokens, and the cache equals a fresh run")
    func secondTurnFeedsOnlyNewTokens() throws {
        let tm = try Fixtures.codeModel(.bf16)
        #expect(tm.chatFormat.style == .hymba, "tiny-code-hymba carries Hymba's chat template")
        let chat = try ChatSession(model: tm, options: HymbaOptions(kvType: .f32), system: "You write Python.")
        let options = GenerationOptions(maxTokens: 6, sampling: .greedy)
        let first = try chat.respond(to: "def add(a, b):", options: options) { _ in .continue }
        let firstPrompt = tm.encode(tm.chatFormat.render([.system("You write Python."), .user("def add(a, b):")], addGenerationPrompt: true))
        #expect(chat.lastTurnPromptTokens == firstPrompt.count && !chat.lastTurnReset)
        #expect(chat.generator.history == firstPrompt + first.tokens.prefix(first.fedTokens))
        let afterFirst = chat.generator.session.position

        let second = try chat.respond(to: "class Stack:", options: options) { _ in .continue }
        // New tokens: the rest of the first answer (its unfed last token) and "\n", then the
        // user turn and the assistant header as the template renders them.
        var d = ContinuationDecoder(tokenizer: tm.tokenizer, context: firstPrompt)
        let fedAnswer = first.tokens.prefix(first.fedTokens).map { d.push($0) }.joined() + d.finish()
        let closed = first.text.droppingTrailingWhitespace + "\n"
        #expect(closed.hasPrefix(fedAnswer), "the limit stopped the answer: all but its last token were fed")
        let expectedNew = tm.encodeContinuation(String(closed.dropFirst(fedAnswer.count)) + "<extra_id_1>User\nclass Stack:\n<extra_id_1>Assistant\n")
        #expect(chat.lastTurnPromptTokens == expectedNew.count && !chat.lastTurnReset)
        #expect(chat.generator.history == firstPrompt + first.tokens.prefix(first.fedTokens) + expectedNew + second.tokens.prefix(second.fedTokens))
        let whole = tm.encode(tm.chatFormat.render(Array(chat.messages.dropLast()), addGenerationPrompt: true))
        #expect(chat.lastTurnPromptTokens * 2 < whole.count, "only the new turn: \(chat.lastTurnPromptTokens) of \(whole.count) tokens")
        #expect(chat.generator.session.position == afterFirst + expectedNew.count + second.fedTokens)
        // The continuation closes an answer whose tokens were fed, or that ended in whitespace or a stop string.
        let turn = "<extra_id_1>User\nhi\n<extra_id_1>Assistant\n"
        #expect(ChatSession.continuation(answer: "x = 1  \n", fed: "x = ", turn: turn) == "1\n" + turn)
        #expect(ChatSession.continuation(answer: "x = 1\n", fed: "x = 1\n<extra_id_1", turn: turn) == ">User\nhi\n<extra_id_1>Assistant\n")
        #expect(ChatSession.continuation(answer: "x = 1\n\n", fed: "x = 1\n\n", turn: turn) == turn)
        #expect(ChatSession.continuation(answer: "x = 1 ", fed: "x = 1 ", turn: turn) == "\n" + turn)
        #expect(chat.messages.map(\.role) == [.system, .user, .assistant, .user, .assistant])

        // The continued cache gives the logits of a fresh session fed the same tokens.
        let fresh = try HymbaSession(model: tm.model, options: HymbaOptions(kvType: .f32))
        try fresh.prefill(tokens: chat.generator.history.map(Int.init))
        let continued = chat.generator.session.logits
        var worst: Float = 0
        for i in 0..<continued.count { worst = max(worst, abs(continued[i] - fresh.logits[i])) }
        #expect(worst < 1e-3, "max |Δlogit| \(worst)")

        chat.reset()
        #expect(chat.messages == [.system("You write Python.")] && chat.generator.session.position == 0)
    }

    @Test("a turn that would overflow the context starts over with the system message and that turn")
    func overflowStartsOver() throws {
        let tm = try Fixtures.codeModel(.q8)
        let firstPrompt = tm.encode(tm.chatFormat.render([.user("import os")], addGenerationPrompt: true))
        let chat = try ChatSession(model: tm, options: HymbaOptions(contextLength: firstPrompt.count + 12))
        let options = GenerationOptions(maxTokens: 6, sampling: .greedy)
        _ = try chat.respond(to: "import os", options: options) { _ in .continue }
        #expect(!chat.lastTurnReset)
        _ = try chat.respond(to: "import sys", options: options) { _ in .continue }
        let restarted = tm.encode(tm.chatFormat.render([.user("import sys")], addGenerationPrompt: true))
        #expect(chat.lastTurnReset && chat.lastTurnPromptTokens == restarted.count)
        #expect(chat.generator.history.starts(with: restarted))
        #expect(chat.messages.map(\.role) == [.user, .assistant] && chat.messages[0].content == "import sys")
    }
}
