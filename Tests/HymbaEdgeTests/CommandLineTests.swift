import Foundation
import HymbaFormat
import HymbaTokenizer
import Testing
@testable import HymbaRuntime

/// `hymba-edge` as a user runs it: output formats, stats lines, errors.
@Suite("hymba-edge command line")
struct CommandLineTests {
    /// The executable next to the test bundle (both are in the build's bin directory).
    static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if dir.lastPathComponent == "MacOS" { dir = dir.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }
        return dir.appendingPathComponent("hymba-edge").path
    }()

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], stdin: String? = nil, directory: String? = nil) throws -> Run {
        #expect(FileManager.default.isExecutableFile(atPath: binary), "hymba-edge not built at \(binary)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        return try collect(p, stdin: stdin)
    }

    /// Runs `p` with `stdin` (nil: none) as its input and returns its status and output. Both
    /// pipes are read at once so that neither can fill up and block the child.
    static func collect(_ p: Process, stdin: String? = nil) throws -> Run {
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        // A child that exits early must not kill the tests with SIGPIPE: writes then throw.
        signal(SIGPIPE, SIG_IGN)
        if let stdin { try? input.fileHandleForWriting.write(contentsOf: Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        let errData = LockedData()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errData.append(err.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: errData.text)
    }

    static let statsPattern = #/prompt: (\d+) tokens, [\d.]+ tok/s \| generated: (\d+) tokens, [\d.]+ tok/s \| stop: ([a-z ]+) \| peak RSS: [\d.]+ MiB \| KV: (\d+) bytes \([\d.]+ MiB, f16, ctx (\d+)\) \| threads: \d+/#

    @Test("run: streams the greedy continuation (as the library generates it) and ends with a stats line")
    func runGreedy() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let prompt = fixturePrompts[0]
        let r = try Self.run(["run", "-m", file, "-p", prompt, "-n", "12", "--temp", "0", "--no-echo"])
        #expect(r.status == 0, "\(r.stderr)")
        let g = try Generator(model: try Fixtures.codeModel(.q8))
        let lib = try g.generate(prompt: prompt, options: GenerationOptions(maxTokens: 12, sampling: .greedy)) { _ in .continue }
        #expect(r.stdout == lib.text)
        let m = try #require(r.stderr.firstMatch(of: Self.statsPattern), "stats line: \(r.stderr)")
        #expect(Int(m.1) == lib.stats.promptTokens && Int(m.2) == 12 && m.3 == "token limit")
        #expect(Int(m.4) == g.session.memoryReport.kvBytes && Int(m.5) == 1024)
        #expect(!r.stderr.contains("seed:"), "greedy uses no seed")
        // With the prompt echoed (the default).
        let echoed = try Self.run(["run", "-m", file, "-p", prompt, "-n", "12", "--temp", "0"])
        #expect(echoed.stdout == prompt + lib.text)
    }

    @Test("run: -p @file and -p - read the prompt from a file and from stdin")
    func promptSources() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let promptFile = Fixtures.temporaryDirectory + "/prompt.txt"
        try fixturePrompts[1].write(toFile: promptFile, atomically: true, encoding: .utf8)
        let args = ["run", "-m", file, "-n", "8", "--temp", "0", "--no-echo"]
        let literal = try Self.run(args + ["-p", fixturePrompts[1]])
        let fromFile = try Self.run(args + ["-p", "@" + promptFile])
        let fromStdin = try Self.run(args + ["-p", "-"], stdin: fixturePrompts[1])
        #expect(literal.status == 0 && !literal.stdout.isEmpty)
        #expect(fromFile.stdout == literal.stdout && fromStdin.stdout == literal.stdout)
        let missing = try Self.run(args + ["-p", "@/nonexistent/prompt.txt"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/prompt.txt"))
    }

    @Test("run: a seed reproduces the sampled text; --stop ends before the stop string; --threads sets the kernels' threads")
    func runSampling() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let args = ["run", "-m", file, "-p", "import os\n", "-n", "40", "--no-echo", "--temp", "1.0", "--top-k", "0", "--min-p", "0"]
        let a = try Self.run(args + ["--seed", "5"]), b = try Self.run(args + ["--seed", "5"]), c = try Self.run(args + ["--seed", "6"])
        #expect(a.status == 0 && a.stdout == b.stdout && a.stdout != c.stdout)
        #expect(a.stderr.contains("| seed: 5"))
        // Stop at a piece of the seeded output.
        let text = a.stdout
        let cut = text.index(text.startIndex, offsetBy: text.count / 2)
        let stop = String(text[cut...].prefix(3))
        let firstAt = text.range(of: stop)!.lowerBound
        let s = try Self.run(args + ["--seed", "5", "--stop", stop])
        #expect(s.stdout == String(text[..<firstAt]) && s.stderr.contains("stop: stop string"))
        // "\n" typed in a shell is a newline stop string.
        let line = try Self.run(["run", "-m", file, "-p", fixturePrompts[0], "-n", "40", "--temp", "0", "--no-echo", "--stop", "\\n"])
        #expect(line.stderr.contains("stop: stop string") && !line.stdout.contains("\n") && !line.stdout.isEmpty, "\(line.stdout)")
        // Rows are split between threads, never the sums inside one: any count gives the same text.
        let greedy = ["run", "-m", file, "-p", fixturePrompts[0], "-n", "12", "--temp", "0", "--no-echo"]
        let one = try Self.run(greedy + ["--threads", "1"]), three = try Self.run(greedy + ["--threads", "3"])
        #expect(one.status == 0 && one.stdout == three.stdout && !one.stdout.isEmpty)
        #expect(one.stderr.contains("| threads: 1") && three.stderr.contains("| threads: 3"))
        for bad in ["-1", "257"] {
            let r = try Self.run(["run", "-m", file, "-p", "x", "--threads=\(bad)"])
            #expect(r.status != 0 && r.stderr.contains("--threads \(bad): must be in 0…256"), "\(r.stderr)")
        }
    }

    @Test("run: errors are one clear line")
    func runErrors() throws {
        let missing = try Self.run(["run", "-m", "/nonexistent/model.hymba", "-p", "x"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/model.hymba"))
        let file = try Fixtures.codeModelFile(.q8)
        for (option, value) in [("--top-p", "0"), ("--min-p", "1.5"), ("--repeat-penalty", "-1"), ("--ctx", "0"), ("--kv-type", "q4")] {
            let r = try Self.run(["run", "-m", file, "-p", "x", option, value])
            #expect(r.status != 0 && r.stderr.contains(option.dropFirst(2).replacingOccurrences(of: "-", with: "-")), "\(option): \(r.stderr)")
        }
        let long = try Self.run(["run", "-m", file, "-p", String(repeating: "x = 1\n", count: 400), "-n", "1"])
        #expect(long.status != 0 && long.stderr.contains("context length 1024") && long.stdout.isEmpty, "no echo before an error")
    }

    @Test("run without -m uses the shipped model, from any directory")
    func defaultModel() throws {
        let r = try Self.run(["run", "-p", "def fib", "-n", "6", "--temp", "0"], directory: NSTemporaryDirectory())
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("def fib") && r.stdout.count > "def fib".count)
        #expect(r.stderr.firstMatch(of: Self.statsPattern) != nil)
    }

    @Test("the shipped model is the q8 conversion of Tests/Fixtures/tiny-code-hymba")
    func shippedModelIsCurrent() throws {
        let shipped = try HymbaFile(path: Fixtures.repositoryRoot.appendingPathComponent("models/tiny-code-hymba-q8.hymba").path)
        let fresh = try HymbaFile(path: try Fixtures.codeModelFile(.q8))
        #expect(shipped.tensors.map(\.name) == fresh.tensors.map(\.name))
        for t in fresh.tensors {
            let a = try shipped.tensor(t.name), b = try fresh.tensor(t.name)
            #expect(a.type == b.type && a.shape == b.shape && a.decodeAll() == b.decodeAll(), "\(t.name)")
        }
        #expect(shipped.verify().isEmpty)
    }

    @Test("tokenize prints the ids as a JSON array (HF reference cases); detokenize prints the text")
    func tokenizeDetokenize() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("tokenizer-cases.json"))
        let cases = try JSONSerialization.jsonObject(with: TokenizerSpec.escapingByteOrderMarks(in: data)) as! [[String: Any]]
        for c in cases.prefix(8) {
            let text = c["text"] as! String, ids = c["ids"] as! [Int], decoded = c["decoded"] as! String
            let t = try Self.run(["tokenize", "-m", file, "--text", text])
            #expect(t.status == 0)
            let parsed = try JSONSerialization.jsonObject(with: Data(t.stdout.utf8)) as? [Int]
            #expect(parsed == ids, "\(text.debugDescription): \(t.stdout)")
            #expect(t.stdout == "[" + ids.map(String.init).joined(separator: ", ") + "]\n")
            let d = try Self.run(["detokenize", "-m", file, "--ids", ids.map(String.init).joined(separator: ",")])
            #expect(d.status == 0 && d.stdout == decoded + "\n", "\(ids)")
        }
        let noBOS = try Self.run(["tokenize", "-m", file, "--text", "Hello world", "--no-bos"])
        #expect(noBOS.stdout == "[15043, 3186]\n")
        let textFile = Fixtures.temporaryDirectory + "/t.txt"
        try "Hello world".write(toFile: textFile, atomically: true, encoding: .utf8)
        #expect(try Self.run(["tokenize", "-m", file, "--file", textFile]).stdout == "[1, 15043, 3186]\n")
        // Special tokens kept, as Hugging Face decodes them (tokenizer-extra-cases.json, "decode":
        // [1, 15043, 2, 32000, 0, 99999] → "<s> Hello</s>[PAD]<unk>", [1, 259, 15043] → "<s>   Hello").
        let special = try Self.run(["detokenize", "-m", file, "--ids", "1,15043,2", "--special"])
        #expect(special.status == 0 && special.stdout == "<s> Hello</s>\n", "\(special.stdout.debugDescription)")
        let spaces = try Self.run(["detokenize", "-m", file, "--ids", "1,259,15043", "--special"])
        #expect(spaces.status == 0 && spaces.stdout == "<s>   Hello\n", "\(spaces.stdout.debugDescription)")
        let both = try Self.run(["tokenize", "-m", file, "--text", "a", "--file", textFile])
        #expect(both.status != 0 && both.stderr.contains("exactly one"))
        let bad = try Self.run(["detokenize", "-m", file, "--ids", "1,99999"])
        #expect(bad.status != 0 && bad.stderr.contains("99999"))
    }

    @Test("perplexity shows progress and ends with mean_nll and perplexity lines")
    func perplexity() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let r = try Self.run(["perplexity", "-m", file, "-f", Fixtures.tinyCode("heldout-1024.txt"), "--ctx", "1024"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count >= 2)
        let nll = try #require(Double(lines[lines.count - 2].replacingOccurrences(of: "mean_nll: ", with: "")))
        let ppl = try #require(Double(lines[lines.count - 1].replacingOccurrences(of: "perplexity: ", with: "")))
        #expect(lines[lines.count - 2].hasPrefix("mean_nll: ") && lines[lines.count - 1].hasPrefix("perplexity: "))
        #expect(abs(exp(nll) - ppl) < 1e-3 * ppl)
        let tm = try Fixtures.codeModel(.q8)
        let session = try HymbaSession(model: tm.model, options: HymbaOptions(contextLength: 1024))
        let lib = try Perplexity.evaluate(tokens: tm.encode(try String(contentsOfFile: Fixtures.tinyCode("heldout-1024.txt"), encoding: .utf8)),
                                          session: session, window: 1024)
        #expect(abs(nll - lib.meanNLL) < 1e-5)
        #expect(r.stdout.contains("tokens: 1024") && r.stdout.contains("predictions: 1023"))
        #expect(r.stderr.contains("scoring: 100%"), "progress on stderr")
        let bad = try Self.run(["perplexity", "-m", file, "-f", Fixtures.tinyCode("heldout-1024.txt"), "--ctx", "5000"])
        #expect(bad.status != 0 && bad.stderr.contains("5000"))
    }

    @Test("chat with piped stdin: one answer per line; the second turn feeds only its new tokens")
    func chatPiped() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let r = try Self.run(["chat", "-m", file, "--system", "You write Python.", "-n", "6", "--temp", "0"],
                             stdin: "def add(a, b):\n\nclass Stack:\n")
        #expect(r.status == 0, "\(r.stderr)")
        let fed = r.stderr.matches(of: #/\[prompt: (\d+) new tokens/#).map { Int($0.1)! }
        // The same conversation through the library.
        let chat = try ChatSession(model: try Fixtures.codeModel(.q8), system: "You write Python.")
        var answers: [String] = [], counts: [Int] = []
        for message in ["def add(a, b):", "class Stack:"] {
            answers.append(try chat.respond(to: message, options: GenerationOptions(maxTokens: 6, sampling: .greedy)) { _ in .continue }.text)
            counts.append(chat.lastTurnPromptTokens)
        }
        #expect(fed == counts, "tokens fed per turn: \(fed)")
        #expect(fed.count == 2 && fed[1] < fed[0])
        #expect(r.stdout.contains(answers[0].droppingTrailingWhitespace) && r.stdout.contains(answers[1].droppingTrailingWhitespace))
        // Piped messages are shown before their answers.
        let a = try #require(r.stdout.range(of: "> def add(a, b):\n")), b = try #require(r.stdout.range(of: "> class Stack:\n"))
        #expect(a.upperBound <= b.lowerBound && r.stdout.hasPrefix("> def add(a, b):\n"))
        #expect(r.stderr.contains("turns: 2"))
    }

    @Test("chat: Ctrl-C stops the current answer, not the program; Ctrl-C at the prompt exits")
    func chatInterrupt() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["chat", "-m", file, "-n", "-1", "--temp", "0", "--stop", "never-stop-string"]
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = input
        let stdout = LockedData(), stderr = LockedData()
        out.fileHandleForReading.readabilityHandler = { stdout.append($0.availableData) }
        err.fileHandleForReading.readabilityHandler = { stderr.append($0.availableData) }
        func wait(_ what: String, _ condition: () -> Bool) {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline { if condition() { return }; Thread.sleep(forTimeInterval: 0.02) }
            Issue.record("timed out waiting for \(what)")
        }
        func turns() -> Int { stderr.text.components(separatedBy: "[prompt:").count - 1 }
        signal(SIGPIPE, SIG_IGN)
        try p.run()
        try input.fileHandleForWriting.write(contentsOf: Data("def main():\n".utf8))
        wait("the answer to start") { stdout.count > 20 }
        p.interrupt()
        wait("the first turn's stats") { turns() == 1 }
        #expect(p.isRunning, "Ctrl-C during an answer leaves chat running")
        let shown = stdout.count
        try input.fileHandleForWriting.write(contentsOf: Data("import os\n".utf8))
        // The second answer would run until the context is full: interrupt it too.
        wait("the second answer") { stdout.count > shown + 20 }
        p.interrupt()
        wait("the second turn's stats") { turns() == 2 }
        Thread.sleep(forTimeInterval: 0.2)
        p.interrupt()  // at the prompt: exits
        p.waitUntilExit()
        let errText = stderr.text
        #expect(p.terminationStatus == 0, "\(errText)")
        #expect(errText.components(separatedBy: "stop: interrupted (Ctrl-C)").count == 3, "both answers cancelled: \(errText)")
        // The session's stats line, on its own line, after Ctrl-C at the prompt.
        #expect(errText.contains("\nturns: 2 | peak RSS: "), "\(errText)")
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
    }
}

/// The command line's habits: llama.cpp's short flags, `-`/`@`/`@@` for files, one exit code
/// for usage errors (64, with the command's usage line) and one for failures (1), a closed
/// stdout and Ctrl-C in `run`, and `chat`'s commands.
@Suite("hymba-edge command-line habits", .serialized)
struct CommandLineHabitsTests {
    static func run(_ args: [String], stdin: String? = nil) throws -> CommandLineTests.Run {
        try CommandLineTests.run(args, stdin: stdin)
    }

    @Test("usage errors exit 64 with the command's usage line; failures exit 1 with one error line")
    func exitCodes() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let unknown = try Self.run(["rnu", "-p", "x"])
        #expect(unknown.status == 64 && unknown.stderr.hasPrefix("Error: unknown command 'rnu' (commands: run, chat,"), "\(unknown.stderr)")
        let usage: [([String], String)] = [
            (["--top-p", "0"], "--top-p 0.0: must be in (0, 1]"), (["--top-p", "1.5"], "--top-p 1.5: must be in (0, 1]"),
            (["--top-k=-1"], "--top-k -1: must be at least 0"), (["--temp=-0.5"], "--temp -0.5: must be a finite number ≥ 0"),
            (["-n", "-2"], "-n -2: must be at least -1"), (["-c", "0"], "--ctx 0: must be at least 1"),
            (["-c", "5000"], "--ctx 5000: the model takes at most 1024 positions"), (["--threads=-1"], "--threads -1: must be in 0…"),
            (["--top-k", "-1"], "Missing value for '--top-k <top-k>'"),
            (["--min-p", "1.5"], "--min-p 1.5: must be in [0, 1]"), (["--bogus"], "Unknown option '--bogus'"),
        ]
        for (args, message) in usage {
            let r = try Self.run(["run", "-m", file, "-p", "x"] + args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.hasPrefix("Error: \(message)"), "\(args): \(r.stderr)")
            #expect(r.stderr.contains("\nUsage: hymba-edge run "), "\(args): \(r.stderr)")
        }
        let perplexity = try Self.run(["perplexity", "-m", file, "-f", Fixtures.tinyCode("heldout-1024.txt"), "-c", "1"])
        #expect(perplexity.status == 64 && perplexity.stderr.contains("Usage: hymba-edge perplexity "), "\(perplexity.stderr)")
        let ids = try Self.run(["detokenize", "-m", file, "--ids", "1,99999"])
        #expect(ids.status == 64 && ids.stderr.contains("99999") && ids.stderr.contains("Usage: hymba-edge detokenize "), "\(ids.stderr)")
        for failing in [["run", "-m", "/nonexistent/model.hymba", "-p", "x"], ["run", "-m", file, "-p", "@/nonexistent/prompt.txt"]] {
            let r = try Self.run(failing)
            #expect(r.status == 1 && r.stderr.hasPrefix("error: ") && r.stderr.components(separatedBy: "\n").count == 2, "\(r.stderr)")
        }
        // -n -1 (until the context is full) is accepted.
        let full = try Self.run(["run", "-m", file, "-p", "x", "-n", "-1", "-c", "24", "--temp", "0"])
        #expect(full.status == 0 && full.stderr.contains("stop: context full"), "\(full.stderr)")
    }

    @Test("--version: the version, the git commit and the kernels compiled in")
    func version() throws {
        let r = try Self.run(["--version"])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(r.status == 0)
        #expect(lines.count == 2, "\(r.stdout)")
        let line = try #require(lines.first)
        #expect(line.wholeMatch(of: #/0\.1\.0 \(commit ([0-9a-f]{12}(-modified)?|unknown)\)/#) != nil, "\(line)")
        // The backends compiled in (best first) and the one the CPU runs, as KernelDispatch says.
        let kernels = try #require(lines.last)
        #expect(kernels.wholeMatch(of: #/kernels: (avx512, )?(avx2, )?portable \(in use: (avx512|avx2|portable)\)/#) != nil, "\(kernels)")
        #expect(kernels == KernelDispatch.summary())
    }

    @Test("llama.cpp's short flags -c -t -s -f -n give what the long ones do")
    func shortFlags() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let promptFile = Fixtures.temporaryDirectory + "/short-flags.txt"
        try "import os\n".write(toFile: promptFile, atomically: true, encoding: .utf8)
        let long = try Self.run(["run", "-m", file, "--prompt-file", promptFile, "--n-predict", "12", "--ctx", "64", "--threads", "1", "--seed", "5",
                                 "--temp", "1", "--no-echo"])
        let short = try Self.run(["run", "-m", file, "-f", promptFile, "-n", "12", "-c", "64", "-t", "1", "-s", "5", "--temp", "1", "--no-echo"])
        #expect(long.status == 0 && short.status == 0 && !long.stdout.isEmpty, "\(long.stderr) \(short.stderr)")
        #expect(short.stdout == long.stdout)
        #expect(short.stderr.contains("| threads: 1") && short.stderr.contains("ctx 64") && short.stderr.contains("| seed: 5"))
    }

    @Test("files: -p @@ is a literal @, -f - and -p - read stdin, tokenize --file -, perplexity -f -, eval --output -")
    func standardStreams() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let greedy = ["run", "-m", file, "-n", "4", "--temp", "0"]
        let literal = try Self.run(greedy + ["-p", "@@property"])
        #expect(literal.status == 0 && literal.stdout.hasPrefix("@property"), "\(literal.stdout) \(literal.stderr)")
        let fromStdin = try Self.run(greedy + ["-f", "-"], stdin: "@property")
        #expect(fromStdin.stdout == literal.stdout)
        let both = try Self.run(greedy + ["-p", "x", "-f", "-"])
        #expect(both.status == 64 && both.stderr.contains("exactly one of -p PROMPT or -f FILE"))

        let tokenized = try Self.run(["tokenize", "-m", file, "--file", "-"], stdin: "Hello world")
        #expect(tokenized.status == 0 && tokenized.stdout == "[1, 15043, 3186]\n")

        let text = Fixtures.tinyCode("heldout-1024.txt")
        let fromFile = try Self.run(["perplexity", "-m", file, "-f", text, "-c", "256", "-t", "1"])
        let piped = try Self.run(["perplexity", "-m", file, "-f", "-", "-c", "256", "-t", "1"], stdin: try String(contentsOfFile: text, encoding: .utf8))
        #expect(fromFile.status == 0 && piped.status == 0, "\(piped.stderr)")
        #expect(fromFile.stdout.split(separator: "\n").suffix(2) == piped.stdout.split(separator: "\n").suffix(2))

        let out = Fixtures.temporaryDirectory + "/logits.f32"
        let written = try Self.run(["eval", "-m", file, "--ids", "1,15043,3186", "--output", out, "-t", "1"])
        let toStdout = try Self.run(["eval", "-m", file, "--ids", "1,15043,3186", "--output", "-", "-t", "1"])
        #expect(written.status == 0 && toStdout.status == 0, "\(toStdout.stderr)")
        #expect(Data(toStdout.stdout.utf8).count > 0)
        #expect(toStdout.stderr.contains("argmax_last: ") && toStdout.stderr.contains("logits: stdout"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)).count == 3 * 32001 * 4)
        let over = try Self.run(["eval", "-m", file, "--ids", "1", "--output", file])
        #expect(over.status == 64 && over.stderr.contains("that is the model file"))
    }

    @Test("eval --output - writes the same bytes as a file")
    func evalStdoutBytes() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let out = Fixtures.temporaryDirectory + "/logits-bytes.f32"
        _ = try Self.run(["eval", "-m", file, "--ids", "1,15043", "--output", out])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
        p.arguments = ["eval", "-m", file, "--ids", "1,15043", "--output", "-"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let bytes = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let written = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(p.terminationStatus == 0 && bytes == written)
    }

    @Test("run | head: generation stops when stdout closes, quietly, with the stats line")
    func closedPipe() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
        p.arguments = ["run", "-m", file, "-p", "import os", "-n", "-1", "--temp", "1", "-s", "1", "-t", "1"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        _ = out.fileHandleForReading.availableData  // the first piece, as head reads it
        try out.fileHandleForReading.close()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: stderr, as: UTF8.self)
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(text)")
        #expect(text.contains("stop: output closed") && !text.contains("error"), "\(text)")
        #expect(text.components(separatedBy: "\n").count == 2, "only the stats line: \(text)")
    }

    @Test("run: Ctrl-C stops generating and prints the stats line (status 130)")
    func interruptRun() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
        p.arguments = ["run", "-m", file, "-p", "import os", "-n", "-1", "--temp", "1", "-s", "1", "-t", "1", "--stop", "never-stop-string"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let stdout = LockedData(), stderr = LockedData()
        out.fileHandleForReading.readabilityHandler = { stdout.append($0.availableData) }
        err.fileHandleForReading.readabilityHandler = { stderr.append($0.availableData) }
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while stdout.count < 20 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        p.interrupt()
        p.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
        let text = stderr.text
        #expect(p.terminationStatus == 130, "\(text)")
        #expect(text.contains("stop: interrupted (Ctrl-C)") && text.contains("| peak RSS: "), "\(text)")
    }

    @Test("chat from a pipe: banner, /help, /clear, multi-line \"\"\" messages, unknown commands, /bye and the closing stats line")
    func chatCommands() throws {
        let file = try Fixtures.codeModelFile(.q8)
        let input = "/help\n\"\"\"def add(a, b):\n    return a + b\n\"\"\"\n/clear\n/nonsense\nclass Stack:\n/bye\nnot sent\n"
        let r = try Self.run(["chat", "-m", file, "-n", "4", "--temp", "0"], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        // The banner lists the commands; /help lists them again.
        #expect(r.stderr.components(separatedBy: "/reset or /clear starts the conversation over").count == 3, "\(r.stderr)")
        // The multi-line message is one turn, with its line break; /clear resets; /bye ends before "not sent".
        #expect(r.stdout.hasPrefix("> def add(a, b):\n    return a + b\n"), "\(r.stdout)")
        #expect(r.stderr.contains("[conversation reset]") && r.stderr.contains("unknown command /nonsense"))
        #expect(r.stdout.contains("> class Stack:\n") && !r.stdout.contains("not sent"))
        let fed = r.stderr.matches(of: #/\[prompt: (\d+) new tokens/#).map { Int($0.1)! }
        #expect(fed.count == 2, "\(r.stderr)")
        // After the reset, the second turn is fed as a first one: its whole rendered prompt.
        let tm = try Fixtures.codeModel(.q8)
        #expect(fed.last == tm.encode(tm.chatFormat.render([.user("class Stack:")], addGenerationPrompt: true)).count)
        #expect(r.stderr.hasSuffix("\n") && r.stderr.contains("]\nturns: 2 | peak RSS: "), "\(r.stderr)")
    }
}

/// Bytes appended from another thread (pipe readers).
final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return data.count }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
