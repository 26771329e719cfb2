import Foundation

/// llama.cpp's `--prompt-cache FILE` for a session: the state after a prompt is saved to FILE,
/// and a later prompt that starts with the same tokens feeds only the rest.
///
/// The SSM state cannot be rewound, so a saved prompt is only reusable up to its end, unless
/// there is a snapshot (`SessionSnapshot`) at an earlier position. The cache takes one at each
/// prefill-chunk boundary while feeding, and one before the prompt's last token, and keeps at most `maximumSnapshots` of them (dropping
/// the one whose neighbours are closest, so they stay spread over the prompt and the latest is
/// kept); they are saved with the state. A prompt that shares a long prefix and then diverges
/// (the same system prompt, a new question) resumes from the last snapshot before the
/// divergence. The memory plan counts the snapshots (`HymbaOptions.promptSnapshots`).
///
///     var cache = try PromptCache(path: "sys.cache", session: s, prompt: ids, maximumSnapshots: 4)
///     try cache.feed(Array(ids[cache.reusedTokens...]), session: s)
///     try cache.save(session: s)
public struct PromptCache {
    public let path: String
    public let maximumSnapshots: Int
    /// Tokens of the prompt taken from the file (not fed again).
    public private(set) var reusedTokens = 0
    /// Snapshots of the session's sequence, by position.
    public private(set) var snapshots: [SessionSnapshot] = []

    /// Prepares `session` for `prompt`: from the state in `path` when it exists and the prompt
    /// starts with some of its tokens (rewound to the last usable point), else from the start.
    /// At least the prompt's last token is left to feed, so that the session computes its
    /// logits. Throws (`StateFileError`, the file kept as it is) when `path` exists but is not a
    /// state of this model and session options.
    public init(path: String, session: HymbaSession, prompt: [Int], maximumSnapshots: Int) throws {
        self.path = path
        self.maximumSnapshots = max(0, maximumSnapshots)
        session.reset()
        guard FileManager.default.fileExists(atPath: path) else { return }
        let extras = try session.loadState(from: path)
        let cached = session.tokens
        var common = 0
        while common < min(cached.count, prompt.count) && cached[common] == prompt[common] { common += 1 }
        let target = min(common, prompt.count - 1)
        let usable = extras.snapshots.filter { $0.position <= target }
        if target == session.position {
            snapshots = usable
        } else if let last = usable.last {
            try session.rewind(to: last)
            snapshots = usable
        } else {
            session.reset()
        }
        reusedTokens = session.position
        snapshots = Array(snapshots.suffix(self.maximumSnapshots))
    }

    /// Feeds `tokens` a prefill chunk at a time, taking a snapshot at each chunk boundary, and
    /// one before the last token, which is fed on its own: the same prompt again then resumes
    /// there and feeds only that token (its logits are not saved).
    public mutating func feed(_ tokens: [Int], session: HymbaSession) throws {
        guard maximumSnapshots > 0, tokens.count >= 2 else {
            try session.prefill(tokens: tokens)
            return
        }
        let chunk = session.options.prefillChunk
        let last = tokens.count - 1
        var start = 0
        while start < last {
            let end = min(last, start + chunk)
            try session.prefill(tokens: Array(tokens[start..<end]))
            keep(session.takeSnapshot())
            start = end
        }
        try session.prefill(tokens: [tokens[last]])
    }

    /// Adds a snapshot, dropping the one whose neighbours are closest when over the limit.
    private mutating func keep(_ snapshot: SessionSnapshot) {
        snapshots.append(snapshot)
        guard snapshots.count > maximumSnapshots else { return }
        var drop = 0, narrowest = Int.max
        for i in 0..<(snapshots.count - 1) {
            let gap = snapshots[i + 1].position - (i > 0 ? snapshots[i - 1].position : 0)
            if gap < narrowest { narrowest = gap; drop = i }
        }
        snapshots.remove(at: drop)
    }

    /// Saves the session's state with the snapshots to `path` (atomically).
    public func save(session: HymbaSession) throws {
        try session.saveState(to: path, SavedStateExtras(snapshots: snapshots.filter { $0.position < session.position }))
    }
}
