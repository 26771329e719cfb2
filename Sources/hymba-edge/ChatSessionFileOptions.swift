import ArgumentParser
import Foundation
import HymbaRuntime

/// `chat --session FILE`: the conversation (text and state) is resumed from FILE when it
/// exists and saved to it after every turn (`ChatSession.save(to:)`, atomic).
struct ChatSessionFileOptions: ParsableArguments {
    @Option(name: .customLong("session"), help: ArgumentHelp(
        "Resume the conversation saved in FILE (if it exists) and save it there after every turn.", valueName: "file"))
    var path: String?

    /// Restores the conversation from the file, if given and present; says so on stderr.
    func resume(_ chat: ChatSession, system: String?) throws {
        guard let path, FileManager.default.fileExists(atPath: path) else { return }
        try chat.restore(from: path)
        let session = chat.generator.session
        let turns = chat.messages.filter { $0.role == .user }.count
        writeErr("[session \(path): \(turns) turns restored, context \(session.position)/\(session.contextLength)]\n")
        if let system, chat.messages.first != .system(system) {
            writeErr("note: --system is ignored: the restored conversation keeps its own system message\n")
        }
    }

    /// Saves the conversation, if a file was given.
    func save(_ chat: ChatSession) throws {
        guard let path else { return }
        try chat.save(to: path)
    }
}
