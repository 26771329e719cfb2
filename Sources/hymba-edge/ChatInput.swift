import CEditLine
import Foundation
import HymbaRuntime

/// What the user typed at `chat`'s prompt: a message for the model, a command, or the end.
enum ChatInput: Equatable {
    case message(String)
    case command(ChatCommand)
    /// A `/word` that is no command (the text is shown in the note).
    case unknownCommand(String)
    /// A line that is not UTF-8 (the error is shown; nothing is sent).
    case invalid(String)
    case end
}

/// The commands of `chat`, each with its aliases (`/clear` as in Ollama, `/exit` and `/bye`).
enum ChatCommand: String, CaseIterable {
    case help, reset, bye

    static func named(_ word: String) -> ChatCommand? {
        switch word {
        case "/help", "/?": return .help
        case "/reset", "/clear": return .reset
        case "/bye", "/exit", "/quit": return .bye
        default: return nil
        }
    }

    /// The commands and conventions, as the banner and /help list them.
    static let summary = """
        commands: /help this list | /reset or /clear starts the conversation over | /bye or /exit quits
        a line that starts with \"\"\" begins a multi-line message, a line that ends with \"\"\" ends it
        Ctrl-C stops an answer; Ctrl-D (end of input) or Ctrl-C at the prompt quits
        """
}

/// Reads `chat`'s input: messages, commands and multi-line messages, from a line reader
/// (libedit on a terminal, plain lines otherwise). One place for input handling, so the chat
/// loop only acts on what comes back.
final class ChatInputReader {
    static let prompt = "> "
    static let continuationPrompt = "... "
    static let multiLineQuote = "\"\"\""

    private let lines: LineReader

    init(lines: LineReader) { self.lines = lines }

    /// libedit with history when stdin and stdout are terminals, plain reading otherwise.
    static func forStandardInput() -> ChatInputReader {
        ChatInputReader(lines: isatty(0) != 0 && isatty(1) != 0 ? EditLineReader() : PlainLineReader())
    }

    var isInteractive: Bool { lines.isInteractive }

    /// Puts the terminal back as it was before line editing (for an exit at the prompt).
    func restoreTerminal() { (lines as? EditLineReader)?.restoreTerminal() }

    /// The next input; blank lines are skipped.
    func next() -> ChatInput {
        while true {
            guard let first = readText(prompt: Self.prompt) else { return .end }
            if case let .failure(error) = first { return .invalid("\(error)") }
            guard case let .success(line) = first else { continue }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if trimmed.hasPrefix(Self.multiLineQuote) { return readMultiLine(opening: trimmed) }
            if trimmed.hasPrefix("/") {
                let word = String(trimmed.split(separator: " ", maxSplits: 1)[0])
                if let command = ChatCommand.named(word) { return .command(command) }
                return .unknownCommand(word)
            }
            return .message(trimmed)
        }
    }

    /// A message between `"""` lines: the text after the opening quotes and before the
    /// closing ones belongs to it; the end of input ends it too.
    private func readMultiLine(opening: String) -> ChatInput {
        var rest = String(opening.dropFirst(Self.multiLineQuote.count))
        var parts: [String] = []
        while true {
            let trimmedEnd = rest.trimmingCharacters(in: .whitespaces)
            if trimmedEnd.hasSuffix(Self.multiLineQuote) {
                parts.append(String(trimmedEnd.dropLast(Self.multiLineQuote.count)))
                break
            }
            parts.append(rest)
            guard let next = readText(prompt: Self.continuationPrompt) else { break }
            switch next {
            case let .success(line): rest = line
            case let .failure(error): return .invalid("\(error)")
            }
        }
        let text = parts.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? next() : .message(text)
    }

    private func readText(prompt: String) -> Result<String, Error>? {
        guard let bytes = lines.readLine(prompt: prompt) else { return nil }
        return Result { try UTF8Text.decode(bytes, source: "the message") }
    }
}

/// A source of input lines (without the newline, as bytes: invalid UTF-8 must be seen, not
/// repaired); nil at the end of input.
protocol LineReader: AnyObject {
    var isInteractive: Bool { get }
    func readLine(prompt: String) -> [UInt8]?
}

/// Plain lines from stdin (a pipe or a file): no prompt, no editing.
final class PlainLineReader: LineReader {
    var isInteractive: Bool { false }

    func readLine(prompt: String) -> [UInt8]? {
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
}

/// Lines edited on the terminal with libedit (arrow keys, Ctrl-A/E/W/K/U, Ctrl-R search) and
/// a history kept across sessions in `historyPath` (`HYMBA_HISTORY`, else ~/.hymba_history),
/// saved after every line so that any way of ending the session keeps it.
final class EditLineReader: LineReader {
    static let historyLimit: Int32 = 1000
    let historyPath: String?
    /// The terminal's settings before libedit changed them, restored on an abrupt exit.
    private var savedTerminal = termios()
    private let haveSavedTerminal: Bool

    var isInteractive: Bool { true }

    init() {
        let env = ProcessInfo.processInfo.environment
        historyPath = env["HYMBA_HISTORY"] ?? env["HOME"].map { $0 + "/.hymba_history" }
        haveSavedTerminal = tcgetattr(0, &savedTerminal) == 0
        // Signals stay ours: Ctrl-C is handled by `InterruptHandler`, not by libedit.
        rl_catch_signals = 0
        rl_readline_name = UnsafePointer(strdup("hymba-edge"))
        _ = rl_initialize()
        using_history()
        stifle_history(Self.historyLimit)
        if let historyPath { _ = read_history(historyPath) }
    }

    func readLine(prompt: String) -> [UInt8]? {
        guard let line = readline(prompt) else { return nil }
        defer { free(line) }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: line, count: strlen(line)))
        if !bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) {
            _ = add_history(line)
            if let historyPath { _ = write_history(historyPath) }
        }
        return bytes
    }

    /// Puts the terminal back as it was (libedit leaves it in its editing mode when the
    /// process ends inside `readline`, e.g. Ctrl-C at the prompt).
    func restoreTerminal() {
        if haveSavedTerminal { _ = tcsetattr(0, TCSANOW, &savedTerminal) }
    }
}
