// Generates a continuation of a prompt with HymbaKit: first as an AsyncSequence of text
// pieces, then a second turn on the same session with a closure.
//
//     swift run -c release generate [-m MODEL] [PROMPT]
import Foundation
import HymbaKit

var arguments = Array(CommandLine.arguments.dropFirst())
// The repository's small model unless -m is given.
var modelPath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()  // Examples/swift
    .deletingLastPathComponent().deletingLastPathComponent()                              // the repository
    .appendingPathComponent("models/tiny-code-hymba-q8.hymba").path
if arguments.count >= 2, arguments[0] == "-m" {
    modelPath = arguments[1]
    arguments.removeFirst(2)
}
let prompt = arguments.first ?? "def fibonacci(n):"

/// Writes to stdout unbuffered, so each piece shows as soon as it is generated.
func emit(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

do {
    let model = try Model(path: modelPath)                       // ModelOptions(): all cores, no budget
    let session = try model.makeSession(SessionOptions(contextLength: 512))
    var sampling = Sampling.greedy
    sampling.maxTokens = 32

    // 1. An AsyncSequence of text pieces (generation runs on its own thread).
    emit(prompt)
    for try await piece in session.pieces(prompt, sampling: sampling) {
        emit(piece)
    }

    // 2. A closure per piece; the prompt continues the text the session holds.
    let more = "\n\nprint(fibonacci(10))\n"
    emit(more)
    sampling.maxTokens = 16
    let done = try session.generate(more, sampling: sampling) { piece in
        emit(piece.text)
        return .continue
    }
    emit("\n")
    FileHandle.standardError.write(Data("""
        [\(done.tokens.count) tokens, stop: \(done.stopReason), \
        \(String(format: "%.1f", done.decodeTokensPerSecond)) tok/s; the session holds \(session.tokenCount) of \(session.contextLength)]

        """.utf8))
} catch let error as HymbaError {
    FileHandle.standardError.write(Data("error (\(error.kind)): \(error.message)\n".utf8))
    exit(1)
}
