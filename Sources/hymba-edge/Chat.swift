import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaRuntime

/// `hymba-edge chat`: an interactive chat in the model's chat format. Input comes from
/// `ChatInputReader` (line editing and history on a terminal, multi-line messages, commands);
/// the caches persist across turns, so each turn feeds only its new tokens.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with an instruct model (line editing and history on a terminal; /help lists the commands).",
        discussion: ChatCommand.summary + "\nThe history is kept in $HYMBA_HISTORY, else ~/.hymba_history.")

    @OptionGroup var model: TextModelOptions

    @Option(name: .long, help: "System message.")
    var system: String?

    @OptionGroup var sampling: SamplingCommandOptions

    @OptionGroup var sessionFile: ChatSessionFileOptions

    func run() throws {
        try runReportingErrors {
            let interrupts = InterruptHandler()
            let tm = try model.open()
            let chat = try ChatSession(model: tm, system: system)
            try sessionFile.resume(chat, system: system)
            if chat.format.style == .generic {
                writeErr("note: the model has no Hymba chat template; using plain \"User: ...\" / \"Assistant:\" turns\n")
            }
            let input = ChatInputReader.forStandardInput()
            let seed = sampling.resolvedSeed()
            var turns = 0
            // The closing stats line, whatever ends the session: end of input, /bye, or Ctrl-C at
            // the prompt (from the interrupt handler's thread, while the main one waits for input).
            let summary = {
                let memory = chat.generator.session.memoryReport
                var parts = ["turns: \(turns)", "peak RSS: \(Format.peakRSS)",
                             "KV: \(memory.kvBytes) bytes (\(Format.mib(memory.kvBytes)), \(memory.kvType), ctx \(memory.contextLength))",
                             model.threadsNote] + Format.memory(tm.memoryPlan)
                if !sampling.params(seed: seed).isGreedy { parts.append("seed: \(seed)") }
                return parts.joined(separator: " | ")
            }
            interrupts.onIdle {
                input.restoreTerminal()
                writeErr("\n" + summary() + "\n")
                Foundation.exit(0)
            }
            writeErr("hymba-edge chat: \(tm.file.path), context \(chat.generator.session.contextLength) tokens\n\(ChatCommand.summary)\n")
            session: while true {
                let message: String
                switch input.next() {
                case .end:
                    if input.isInteractive { writeOut("\n") }
                    break session
                case .command(.bye):
                    break session
                case .command(.help):
                    writeErr(ChatCommand.summary + "\n")
                    continue
                case .command(.reset):
                    chat.reset()
                    try sessionFile.save(chat)
                    writeErr("[conversation reset]\n")
                    continue
                case let .unknownCommand(word):
                    writeErr("unknown command \(word): not sent (/help lists the commands)\n")
                    continue
                case let .invalid(error):
                    writeErr("error: \(error); not sent\n")
                    continue
                case let .message(text):
                    message = text
                }
                // Piped input is not on the screen: show it, so the transcript reads as a dialogue.
                if !input.isInteractive { writeOut("> \(message)\n") }
                interrupts.beginGenerating()
                var lineOpen = false
                let options = sampling.generationOptions(seed: seed &+ UInt64(turns))
                let result = try chat.respond(to: message, options: options) { event in
                    if !event.text.isEmpty {
                        writeOut(event.text)
                        lineOpen = !event.text.hasSuffix("\n")
                    }
                    return interrupts.cancelRequested || StandardOutput.closed ? .stop : .continue
                }
                interrupts.endGenerating()
                if lineOpen { writeOut("\n") }
                turns += 1
                try sessionFile.save(chat)
                let s = result.stats
                let session = chat.generator.session
                var stats = "[prompt: \(chat.lastTurnPromptTokens) new tokens, \(Format.rate(s.prefillTokensPerSecond))"
                if chat.lastTurnReset { stats += " (conversation fed again)" }
                let stop = Run.stopText(result.stopReason, interrupted: interrupts.cancelRequested)
                stats += " | answer: \(s.generatedTokens) tokens, \(Format.rate(s.decodeTokensPerSecond)) | stop: \(stop)"
                stats += " | context: \(session.position)/\(session.contextLength)]\n"
                writeErr(stats)
                if StandardOutput.closed { break session }
            }
            writeErr(summary() + "\n")
        }
    }
}
