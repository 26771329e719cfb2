import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// Runtime inputs from users (SECURITY.md, "Runtime inputs"): each is a clear error or the
/// documented behaviour, and a refused input changes nothing.
@Suite("hostile runtime inputs")
struct HostileInputTests {
    // MARK: Text that is not UTF-8

    @Test("UTF8Text: valid text decodes; the first bad byte of each kind of invalid UTF-8 is named")
    func utf8Validation() throws {
        #expect(try UTF8Text.decode(Array("héllo ∑ 🙂".utf8), source: "t") == "héllo ∑ 🙂")
        #expect(try UTF8Text.decode([UInt8](), source: "t") == "")
        let cases: [([UInt8], Int, UInt8)] = [
            ([0x61, 0xFF, 0x62], 1, 0xFF),              // never in UTF-8
            ([0x61, 0x62, 0x80], 2, 0x80),              // a lone continuation byte
            ([0xC0, 0x80], 0, 0xC0),                    // overlong NUL
            ([0x61, 0xED, 0xA0, 0x80], 1, 0xED),        // a UTF-16 surrogate (U+D800)
            ([0xF4, 0x90, 0x80, 0x80], 0, 0xF4),        // past U+10FFFF
            (Array("ok ∑".utf8) + [0xE2, 0x82], 6, 0xE2), // cut off at the end
        ]
        for (bytes, offset, byte) in cases {
            #expect(UTF8Text.firstInvalidOffset(bytes) == offset, "\(bytes)")
            #expect(throws: InvalidUTF8Error(source: "the prompt", offset: offset, byte: byte)) {
                try UTF8Text.decode(bytes, source: "the prompt")
            }
        }
        let message = InvalidUTF8Error(source: "the prompt file p.txt", offset: 7, byte: 0xFF).description
        #expect(message == "the prompt file p.txt is not valid UTF-8: byte 0xFF at offset 7 does not start a valid sequence (save the text as UTF-8)")
    }

    // MARK: Prompts and token ids (library)

    @Test("empty prompt: from BOS when the tokenizer adds one (documented); no tokens at all is refused")
    func emptyPrompt() throws {
        let tm = try Fixtures.codeModel(.q8)
        let g = try Generator(model: tm, options: HymbaOptions(contextLength: 64, threads: 1))
        let options = GenerationOptions(maxTokens: 3, sampling: .greedy, stopTokens: [])
        let r = try g.generate(prompt: "", options: options) { _ in .continue }
        #expect(r.stats.promptTokens == 1 && g.history.first == Int32(tm.tokenizer.bosID!), "only BOS is fed")
        #expect(r.stats.generatedTokens == 3)
        #expect(throws: GenerationError.emptyPrompt) { try g.generate(tokens: [], continuing: false, options: options) { _ in .continue } }
        #expect(GenerationError.emptyPrompt.description.contains("the prompt is empty"))
    }

    @Test("a prompt longer than the context, or with ids outside the vocabulary, is refused before anything changes")
    func promptTooLongAndOutOfVocabulary() throws {
        let tm = try Fixtures.codeModel(.q8)
        let V = tm.config.vocabSize
        let g = try Generator(model: tm, options: HymbaOptions(contextLength: 16, threads: 1))
        let options = GenerationOptions(maxTokens: 2, sampling: .greedy, stopTokens: [])
        _ = try g.generate(tokens: [1, 5, 6], continuing: false, options: options) { _ in .continue }
        let before = (g.history, g.session.position)
        let long = [Int32](repeating: 7, count: 17)
        #expect(throws: GenerationError.promptTooLong(tokens: 17, available: 16, contextLength: 16)) {
            try g.generate(tokens: long, continuing: false, options: options) { _ in .continue }
        }
        let free = 16 - g.session.position
        #expect(throws: GenerationError.promptTooLong(tokens: free + 1, available: free, contextLength: 16)) {
            try g.generate(tokens: Array(long.prefix(free + 1)), continuing: true, options: options) { _ in .continue }
        }
        for (bad, index) in [(Int32(V), 1), (-1, 0), (Int32.max, 2)] {
            var ids: [Int32] = [1, 2, 3]
            ids[index] = bad
            #expect(throws: HymbaRuntimeError.tokenOutOfVocabulary(token: Int(bad), index: index, vocabSize: V)) {
                try g.generate(tokens: ids, continuing: true, options: options) { _ in .continue }
            }
        }
        #expect(g.history == before.0 && g.session.position == before.1, "refused inputs change nothing")
        // Exactly the context: runs, and stops when the context is full.
        let full = try g.generate(tokens: Array(long.prefix(16)), continuing: false, options: GenerationOptions(maxTokens: 5, sampling: .greedy, stopTokens: [])) { _ in .continue }
        #expect(full.stopReason == .contextFull && g.session.position == 16)
    }

    // MARK: Threads

    @Test("threads: 0 means one per core; more threads than cores work and give the same logits; < 0 and > 256 are refused")
    func threadCounts() throws {
        // Both weight types, prefill (a chunk of 5) and decoding (one row at a time).
        for type in [StorageType.q8, .q4] {
            let model = try Fixtures.codeModel(type).model
            for mode in [EvalMode.chunked(8), .incremental] {
                var logits: [[Float]] = []
                for threads in [0, 1, 3] {
                    let s = try HymbaSession(model: model, options: HymbaOptions(contextLength: 32, prefillChunk: 8, threads: threads))
                    #expect(s.options.resolvedThreads == (threads == 0 ? ThreadPool.availableCores : threads))
                    logits.append(try s.eval(ids: [1, 822, 18755, 29871, 13], mode: mode))
                }
                #expect(logits[0] == logits[1] && logits[1] == logits[2], "\(type) \(mode): rows are split between threads, never the sums inside one")
            }
        }
        let model = try Fixtures.codeModel(.q8).model
        for bad in [-1, HymbaOptions.maximumThreads + 1, Int.max] {
            #expect(throws: HymbaRuntimeError.invalidOption("threads \(bad) must be in 0…\(HymbaOptions.maximumThreads) (0: one per core)")) {
                try HymbaSession(model: model, options: HymbaOptions(threads: bad))
            }
        }
    }

    /// 256 threads where the system cannot start them: with 800 MB of address space, 255
    /// worker stacks of 8 MiB cannot all be mapped, so thread creation fails part way. The
    /// session runs on the threads that started (it used to stop the process), with the same
    /// text. Not under a sanitizer build (its shadow memory needs far more address space).
    @Test("more threads than the system will start: runs on those that started, same text",
          .enabled(if: ProcessInfo.processInfo.environment["HYMBA_SANITIZER"] == nil))
    func threadsTheSystemRefuses() throws {
        let model = try Fixtures.codeModelFile(.q8)
        let run = "\"$HYMBA_EDGE\" run -m '\(model)' -p 'def f(x):' -n 6 --temp 0 --no-echo"
        let one = try Self.shell("\(run) --threads 1")
        let limited = try Self.shell("ulimit -s 8192 && ulimit -v 800000 && \(run) --threads 256")
        #expect(one.status == 0 && !one.stdout.isEmpty, "\(one.stderr)")
        #expect(limited.status == 0, "\(limited.status): \(limited.stderr)")
        #expect(limited.stdout == one.stdout)
    }

    // MARK: Memory budgets

    @Test("budgets too small: a session over its budget and a model that cannot fit are refused with the plan; 0 and negative budgets too")
    func budgetsTooSmall() throws {
        let tm = try Fixtures.codeModel(.q8)
        for budget in [Int.min, -1, 0, 1, 1 << 20] {
            do {
                _ = try HymbaSession(model: tm.model, options: HymbaOptions(contextLength: 64, threads: 1, memoryBudgetBytes: budget))
                Issue.record("budget \(budget) accepted")
            } catch let e as MemoryBudgetError {
                guard case .exceeded = e else { Issue.record("\(budget): \(e)"); continue }
                #expect(e.description.contains("is exceeded by these session options") && e.description.contains("memory plan"), "\(e)")
            }
        }
        #expect(throws: Never.self) { try HymbaSession(model: tm.model, options: HymbaOptions(contextLength: 64, threads: 1, memoryBudgetBytes: Int.max)) }
        let file = try HymbaFile(path: try Fixtures.codeModelFile(.q8))
        #expect {
            try TextModel(file: file, options: HymbaOptions(memoryBudgetBytes: 1 << 20))
        } throws: { error in
            guard let e = error as? MemoryBudgetError, let smallest = e.smallestFittingBytes else { return false }
            return smallest > 1 << 20 && e.description.contains("the smallest budget that would fit")
        }
    }

    // MARK: The command line

    /// Runs `hymba-edge` through the shell, so that arguments and stdin can hold any bytes
    /// (`printf` escapes); returns status, stdout and stderr.
    static func shell(_ script: String) throws -> CommandLineTests.Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        var env = ProcessInfo.processInfo.environment
        env["HYMBA_EDGE"] = CommandLineTests.binary
        p.environment = env
        return try CommandLineTests.collect(p)
    }

    @Test("command line: text that is not UTF-8 is refused, naming where it came from and the byte (-p, @file, stdin, tokenize, perplexity); chat skips that message")
    func invalidUTF8OnTheCommandLine() throws {
        let model = try Fixtures.codeModelFile(.q8)
        let dir = Fixtures.temporaryDirectory + "/utf8-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bad = dir + "/bad.txt"
        _ = FileManager.default.createFile(atPath: bad, contents: Data([0x64, 0x65, 0x66, 0x20, 0xE9, 0x74, 0xE9]))  // Latin-1 "def été"
        let runs: [(String, String)] = [
            ("\"$HYMBA_EDGE\" run -m '\(model)' -n 2 -p \"$(printf 'def \\377')\"", "argument 7 is not valid UTF-8: byte 0xFF at offset 4"),
            ("\"$HYMBA_EDGE\" run -m '\(model)' -n 2 -p '@\(bad)'", "the prompt file \(bad) is not valid UTF-8: byte 0xE9 at offset 4"),
            ("printf 'x\\300\\200' | \"$HYMBA_EDGE\" run -m '\(model)' -n 2 -p -", "the prompt on stdin is not valid UTF-8: byte 0xC0 at offset 1"),
            ("\"$HYMBA_EDGE\" tokenize -m '\(model)' --file '\(bad)'", "\(bad) is not valid UTF-8: byte 0xE9 at offset 4"),
            ("\"$HYMBA_EDGE\" perplexity -m '\(model)' -f '\(bad)'", "\(bad) is not valid UTF-8: byte 0xE9 at offset 4"),
        ]
        for (script, message) in runs {
            let r = try Self.shell(script)
            #expect(r.status == 1, "\(script): \(r.status)")
            #expect(r.stderr == "error: \(message) does not start a valid sequence (save the text as UTF-8)\n", "\(script): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(script): nothing runs: \(r.stdout)")
        }
        // chat: the bad line is reported and not sent; the next one is answered.
        let chat = try Self.shell("printf 'caf\\351\\nhello\\n' | \"$HYMBA_EDGE\" chat -m '\(model)' -n 3 --temp 0")
        #expect(chat.status == 0, "\(chat.stderr)")
        #expect(chat.stderr.contains("error: the message is not valid UTF-8: byte 0xE9 at offset 3") && chat.stderr.contains("; not sent"), "\(chat.stderr)")
        #expect(!chat.stdout.contains("caf") && chat.stdout.contains("> hello"), "\(chat.stdout)")
        #expect(chat.stderr.contains("turns: 1"), "\(chat.stderr)")
    }

    @Test("command line: an empty prompt runs from BOS; ids outside the vocabulary, an empty id list and bad budgets are one-line errors")
    func emptyPromptAndBadIDsOnTheCommandLine() throws {
        let model = try Fixtures.codeModelFile(.q8)
        let empty = try Self.shell("\"$HYMBA_EDGE\" run -m '\(model)' -n 2 --temp 0 -p ''")
        #expect(empty.status == 0 && empty.stderr.contains("prompt: 1 tokens") && empty.stderr.contains("generated: 2 tokens"), "\(empty.stderr)")
        let V = try Fixtures.codeModel(.q8).config.vocabSize
        for (script, message) in [
            ("\"$HYMBA_EDGE\" run -m '\(model)' -p x --memory-budget 0", "--memory-budget \"0\": must be at least 1 byte"),
            ("\"$HYMBA_EDGE\" run -m '\(model)' -p x --memory-budget 1", "memory budget 0.00 MiB (1 bytes) is too small"),
            ("\"$HYMBA_EDGE\" run -m '\(model)' -p x --memory-budget 100000000000T", "--memory-budget \"100000000000T\": too large"),
            ("\"$HYMBA_EDGE\" run -m '\(model)' -p x --memory-budget 9223372036854775808", "too large"),
            ("\"$HYMBA_EDGE\" run -m '\(model)' -p x --memory-budget nan", "expected a number first"),
            ("\"$HYMBA_EDGE\" eval -m '\(model)' --ids 1,\(V)", "token id \(V) at input index 1 is outside the vocabulary 0..<\(V)"),
            ("\"$HYMBA_EDGE\" eval -m '\(model)' --ids=-5", "token id -5 at input index 0 is outside the vocabulary"),
            ("\"$HYMBA_EDGE\" eval -m '\(model)' --ids ''", "--ids: no token ids given"),
            ("\"$HYMBA_EDGE\" detokenize -m '\(model)' --ids 1,99999999", "entry 1 (99999999) is outside the vocabulary 0..<\(V)"),
        ] {
            let r = try Self.shell(script)
            // The message is the first line (ArgumentParser follows its own errors with usage lines).
            #expect(r.status != 0 && r.stderr.split(separator: "\n").first?.contains(message) == true, "\(script): \(r.stderr)")
        }
    }
}
