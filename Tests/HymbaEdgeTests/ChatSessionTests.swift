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

@Suite("Saved chat sessions and prompt caches")
struct SavedSessionTests {
    @Test("a chat saved after a turn and resumed answers the next turn exactly as the uninterrupted chat")
    func resumedChat() throws {
        let tm = try Fixtures.codeModel(.bf16)
        let path = Fixtures.temporaryDirectory + "/chat.session"
        let options = GenerationOptions(maxTokens: 6, sampling: .greedy)
        let a = try ChatSession(model: tm, options: HymbaOptions(kvType: .q8), system: "You write Python.")
        _ = try a.respond(to: "def add(a, b):", options: options) { _ in .continue }
        try a.save(to: path)
        let b = try ChatSession(model: tm, options: HymbaOptions(kvType: .q8))
        try b.restore(from: path)
        #expect(b.messages == a.messages && b.generator.history == a.generator.history)
        let second = try a.respond(to: "class Stack:", options: options) { _ in .continue }
        let resumed = try b.respond(to: "class Stack:", options: options) { _ in .continue }
        #expect(resumed.tokens == second.tokens && resumed.text == second.text)
        #expect(b.lastTurnPromptTokens == a.lastTurnPromptTokens && !b.lastTurnReset, "only the new turn was fed")
        #expect(b.generator.history == a.generator.history)

        // A state without a transcript (a prompt cache) is refused and changes nothing.
        let plain = Fixtures.temporaryDirectory + "/plain.state"
        try a.generator.session.saveState(to: plain)
        let c = try ChatSession(model: tm, options: HymbaOptions(kvType: .q8), system: "x")
        #expect(throws: StateFileError.self) { try c.restore(from: plain) }
        #expect(c.messages == [.system("x")] && c.generator.session.position == 0)
    }

    @Test("chat --session resumes the conversation and saves it after every turn")
    func chatSessionCommand() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let path = Fixtures.temporaryDirectory + "/cli-chat.session"
        let args = ["chat", "-m", file, "-n", "5", "--temp", "0", "--kv-type", "q8", "--session", path]
        let first = try CommandLineTests.run(args, stdin: "def add(a, b):\n")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: path))
        let second = try CommandLineTests.run(args, stdin: "class Stack:\n")
        #expect(second.status == 0 && second.stderr.contains("1 turns restored"), "\(second.stderr)")
        // The same two turns in one process.
        let both = try CommandLineTests.run(Array(args.dropLast(2)), stdin: "def add(a, b):\nclass Stack:\n")
        let answers = both.stdout.components(separatedBy: "> class Stack:\n")
        #expect(answers.count == 2 && second.stdout == "> class Stack:\n" + answers[1], "\(both.stdout) vs \(second.stdout)")
    }

    /// The decimal number right after / right before `marker` in `text`.
    static func number(after marker: String, in text: String) -> Int? {
        guard let r = text.range(of: marker) else { return nil }
        return Int(text[r.upperBound...].prefix { $0.isNumber })
    }

    static func number(before marker: String, in text: String) -> Int? {
        guard let r = text.range(of: marker) else { return nil }
        return Int(String(text[..<r.lowerBound].reversed().prefix { $0.isNumber }.reversed()))
    }

    @Test("run --prompt-cache: the second run reuses the cached prompt and says how many tokens")
    func promptCacheCommand() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let cache = Fixtures.temporaryDirectory + "/run.cache"
        let prompt = String(repeating: "def f(x):\n    return x + 1\n", count: 12)
        let args = ["run", "-m", file, "-n", "6", "--temp", "0", "--no-echo", "--prompt-cache", cache, "-p"]
        let plain = try CommandLineTests.run(["run", "-m", file, "-n", "6", "--temp", "0", "--no-echo", "-p", prompt + "x"])
        let first = try CommandLineTests.run(args + [prompt])
        #expect(first.status == 0 && first.stderr.contains("(0 reused from the prompt cache)"), "\(first.stderr)")
        let n = try #require(Self.number(after: "prompt: ", in: first.stderr))
        let second = try CommandLineTests.run(args + [prompt + "x"])
        #expect(second.status == 0, "\(second.stderr)")
        let reused = try #require(Self.number(before: " reused from the prompt cache)", in: second.stderr))
        #expect(reused >= n - 1, "the whole first prompt (but maybe its last token, merged with 'x') is reused: \(second.stderr)")
        #expect(second.stdout == plain.stdout, "same greedy text as without the cache")
        // A cache of another context length is refused, and kept.
        let before = try Data(contentsOf: URL(fileURLWithPath: cache))
        let other = try CommandLineTests.run(["run", "-m", file, "--ctx", "512", "-n", "2", "--prompt-cache", cache, "-p", prompt])
        #expect(other.status != 0 && other.stderr.contains("context length"), "\(other.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: cache)) == before)
    }
}
