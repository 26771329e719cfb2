import Foundation
import HymbaRuntime

/// Saving and restoring a session (formats/HYMBA-STATE.md): the tokens it holds, its KV rows
/// in use and its SSM and conv states, bound to the model, the context length and the KV type.
/// A generated token not yet fed (see `Session`) is kept in the state's text section as
/// `{"pending": id}`. The same bytes go to a file (`saveState(to:)`) or a buffer
/// (`stateData()`); restoring checks everything first and changes nothing on an error.
///
///     try session.saveState(to: "chat.state")
///     let later = try model.makeSession(session.options)
///     try later.loadState(from: "chat.state")   // continues exactly where `session` was
///
/// Cost: linear in the tokens held for the global layers' rows; the rest (windows, SSM
/// states) is constant. Like every call, from one thread at a time.
extension Session {
    /// Bytes `stateData()` returns for the session as it is now.
    public func stateSize() throws -> Int { try exclusive { encoded().count } }

    /// The session's state as bytes.
    public func stateData() throws -> [UInt8] { try exclusive { encoded() } }

    /// Restores a state `stateData` or `saveState` produced, from the same model with the
    /// same context length and KV type. Throws `.format` (not a state, truncated),
    /// `.checksum` (damaged) or `.invalidArgument` (another model, context length or KV type),
    /// changing nothing.
    public func restoreState(_ bytes: UnsafeRawBufferPointer) throws {
        try exclusive { try restore(bytes, source: "buffer of \(bytes.count) bytes") }
    }

    /// Writes the state to `path` atomically (a temporary file renamed over it).
    public func saveState(to path: String) throws {
        try exclusive { try generator.session.saveState(to: path, extras) }
    }

    /// Restores the state saved at `path` (as `restoreState`; `.io` when it cannot be read).
    public func loadState(from path: String) throws {
        try exclusive {
            var restoredPending: Int32?
            try generator.session.loadState(from: path) { restoredPending = try pendingToken(in: $0, source: path) }
            restored(pending: restoredPending)
        }
    }

    private var extras: SavedStateExtras { SavedStateExtras(text: pending.map { Array("{\"pending\":\($0)}".utf8) }) }

    private func encoded() -> [UInt8] { generator.session.encodedState(extras) }

    private func restore(_ bytes: UnsafeRawBufferPointer, source: String) throws {
        var restoredPending: Int32?
        try generator.session.restoreState(from: bytes, source: source) { restoredPending = try pendingToken(in: $0, source: source) }
        restored(pending: restoredPending)
    }

    /// The generated token not yet fed that a state's text records (nil: none); throws for a
    /// text that is not one of ours.
    private func pendingToken(in extras: SavedStateExtras, source: String) throws -> Int32? {
        guard let text = extras.text else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text)) as? [String: Any],
              let id = object["pending"] as? Int, id >= 0, id < model.vocabularySize else {
            throw StateFileError(source, "text section is not {\"pending\": token id} of this model", kind: .format)
        }
        return Int32(id)
    }

    private func restored(pending token: Int32?) {
        pending = token
        generator.adoptSessionTokens()
    }
}
