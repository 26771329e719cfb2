import ArgumentParser
import Dispatch
import Foundation
import HymbaRuntime

/// `hymba-edge chat`: an interactive chat in the model's chat format. Reads one message per
/// line from stdin; the caches persist across turns, so each turn feeds only its new tokens.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with an instruct model (one message per line; /reset starts over; Ctrl-C stops an answer, Ctrl-C at the prompt or end of input exits).")

    @OptionGroup var model: TextModelOptions

    @Option(name: .long, help: "System message.")
    var system: String?

    @OptionGroup var sampling: SamplingCommandOptions

    @OptionGroup var sessionFile: ChatSessionFileOptions

    func run() throws {
        try runReportingErrors {
            let tm = try model.open()
            let chat = try ChatSession(model: tm, system: system)
            try sessionFile.resume(chat, system: system)
            if chat.format.style == .generic {
                writeErr("note: the model has no Hymba chat template; using plain \"User: ...\" / \"Assistant:\" turns\n")
            }
            let interactive = isatty(0) != 0
            let interrupts = InterruptHandler()
            let seed = sampling.resolvedSeed()
            var turns = 0
            while true {
                if interactive { writeOut("> ") }
                guard let bytes = readLineBytes() else { break }
                let line: String
                do { line = try UTF8Text.decode(bytes, source: "the message") } catch {
                    writeErr("error: \(error); not sent\n")
                    continue
                }
                let message = line.trimmingCharacters(in: .whitespaces)
                if message.isEmpty { continue }
                // Piped input is not on the screen: show it, so the transcript reads as a dialogue.
                if !interactive { writeOut("> \(message)\n") }
                if message == "/reset" {
                    chat.reset()
                    try sessionFile.save(chat)
                    writeErr("[conversation reset]\n")
                    continue
                }
                interrupts.beginAnswer()
                var lineOpen = false
                let options = sampling.generationOptions(seed: seed &+ UInt64(turns))
                let result = try chat.respond(to: message, options: options) { event in
                    if !event.text.isEmpty {
                        writeOut(event.text)
                        lineOpen = !event.text.hasSuffix("\n")
                    }
                    return interrupts.answerCancelled ? .stop : .continue
                }
                interrupts.endAnswer()
                if lineOpen { writeOut("\n") }
                turns += 1
                try sessionFile.save(chat)
                let s = result.stats
                let session = chat.generator.session
                var stats = "[prompt: \(chat.lastTurnPromptTokens) new tokens, \(Format.rate(s.prefillTokensPerSecond))"
                if chat.lastTurnReset { stats += " (conversation fed again)" }
                stats += " | answer: \(s.generatedTokens) tokens, \(Format.rate(s.decodeTokensPerSecond)) | stop: \(result.stopReason)"
                stats += " | context: \(session.position)/\(session.contextLength)]\n"
                writeErr(stats)
            }
            let memory = chat.generator.session.memoryReport
            var parts = ["turns: \(turns)", "peak RSS: \(Format.peakRSS)",
                         "KV: \(memory.kvBytes) bytes (\(Format.mib(memory.kvBytes)), \(memory.kvType), ctx \(memory.contextLength))",
                         model.threadsNote] + Format.memory(tm.memoryPlan)
            if !sampling.params(seed: seed).isGreedy { parts.append("seed: \(seed)") }
            writeErr(parts.joined(separator: " | ") + "\n")
        }
    }
}

/// One line of stdin without its newline, as bytes (`readLine` would repair invalid UTF-8
/// into U+FFFD unseen); nil at the end of input.
func readLineBytes() -> [UInt8]? {
    var buffer: UnsafeMutablePointer<CChar>?
    var capacity = 0
    defer { free(buffer) }
    let n = getline(&buffer, &capacity, stdin)
    guard n >= 0, let buffer else { return nil }
    var bytes = [UInt8](UnsafeRawBufferPointer(start: buffer, count: n))
    if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
    if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
    return bytes
}

/// Ctrl-C handling for `chat`: during an answer it only sets a flag, checked between tokens,
/// so the answer stops and the prompt returns; at the prompt it exits. SIGINT's default action
/// is replaced (SIG_IGN) and the signal is received through a dispatch source.
final class InterruptHandler: @unchecked Sendable {
    private let lock = NSLock()
    private var generating = false
    private var cancelled = false
    private var source: DispatchSourceSignal?

    init() {
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler { [unowned self] in
            if !self.interrupt() {
                writeOut("\n")
                exit(0)
            }
        }
        s.resume()
        source = s
    }

    func beginAnswer() { lock.lock(); generating = true; cancelled = false; lock.unlock() }
    func endAnswer() { lock.lock(); generating = false; cancelled = false; lock.unlock() }

    var answerCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    /// Returns true when an answer was running (now asked to stop), false at the prompt.
    private func interrupt() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if generating { cancelled = true }
        return generating
    }
}
