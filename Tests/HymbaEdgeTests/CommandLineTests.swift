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
        let special = try Self.run(["detokenize", "-m", file, "--ids", "1,15043,2", "--special"])
        #expect(special.stdout == "<s> Hello</s>\n" || special.stdout.contains("<s>"))
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
        #expect(errText.components(separatedBy: "stop: cancelled").count == 3, "both answers cancelled: \(errText)")
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
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
