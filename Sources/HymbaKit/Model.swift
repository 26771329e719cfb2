import HymbaRuntime

/// How a model is opened.
public struct ModelOptions: Sendable, Equatable {
    /// Threads each session's forward pass runs on (the calling thread and `threads` − 1
    /// workers the session starts); 0 means one per core. At most 256.
    public var threads: Int
    /// Most bytes the model and its sessions may hold; 0 means no budget.
    public var memoryBudgetBytes: UInt64
    /// Check every chunk's checksum as its tensor loads (a corrupt file is refused by name).
    public var verifyChecksums: Bool

    public init(threads: Int = 0, memoryBudgetBytes: UInt64 = 0, verifyChecksums: Bool = true) {
        self.threads = threads
        self.memoryBudgetBytes = memoryBudgetBytes
        self.verifyChecksums = verifyChecksums
    }
}

/// A `.hymba` model file opened for text generation: the weights (memory-mapped), the
/// tokenizer stored in the file, and the options every session of it uses.
///
///     let model = try Model(path: "models/tiny-code-hymba-q8.hymba")
///     let session = try model.makeSession()
///     for try await piece in session.pieces("def fibonacci(n):", sampling: .greedy) {
///         print(piece, terminator: "")
///     }
///
/// Immutable once opened: share one model among many sessions, on any threads. A session
/// keeps its model alive, so a model may be released before its sessions.
public final class Model: @unchecked Sendable {
    public let options: ModelOptions
    /// The runtime's model: file, weights, tokenizer and chat format (for what this API lacks).
    public let textModel: TextModel

    /// Opens and checks the file at `path` (header, metadata, directory, every tensor's shape;
    /// chunk checksums unless `verifyChecksums` is off). Throws a `HymbaError`.
    public init(path: String, options: ModelOptions = ModelOptions()) throws {
        runtimeOptions = try Self.runtimeOptions(options)
        self.options = options
        do {
            textModel = try TextModel.open(path: path, verifyChecksums: options.verifyChecksums)
        } catch {
            throw HymbaError(classifying: error)
        }
    }

    /// The runtime's options every session of this model starts from (its own context length
    /// and KV type set on top).
    let runtimeOptions: HymbaOptions

    /// `options` checked and translated, in this one place, into the runtime's.
    static func runtimeOptions(_ options: ModelOptions) throws -> HymbaOptions {
        guard options.threads >= 0, options.threads <= HymbaOptions.maximumThreads else {
            throw HymbaError(.invalidArgument, "threads \(options.threads) must be in 0…\(HymbaOptions.maximumThreads) (0: all cores)")
        }
        guard options.memoryBudgetBytes <= UInt64(Int.max) else {
            throw HymbaError(.invalidArgument, "memory budget \(options.memoryBudgetBytes) bytes is more than \(Int.max), the most the runtime counts")
        }
        // The memory planner (HymbaOptions.memoryBudgetBytes, MemoryPlan) is not in this
        // runtime yet: a budget is refused rather than silently exceeded.
        guard options.memoryBudgetBytes == 0 else {
            throw HymbaError(.unsupported, "memory budget \(options.memoryBudgetBytes) bytes: this build of the runtime has no memory planner, so it cannot keep to a budget (use 0: no budget)")
        }
        return HymbaOptions(threads: options.threads)
    }

    /// Token ids run from 0 to `vocabularySize` − 1 (the size of the logits).
    public var vocabularySize: Int { textModel.config.vocabSize }

    /// The longest context the model supports (max_position_embeddings).
    public var contextLength: Int { textModel.config.maxPositionEmbeddings }

    /// Token ids of `text`, with the tokenizer's beginning-of-sequence token first when `addBOS`.
    public func tokenize(_ text: String, addBOS: Bool = true) -> [Int32] {
        textModel.encode(text, addBOS: addBOS)
    }

    /// The text of `ids` (special tokens such as BOS/EOS give no text). Throws for an id
    /// outside `0..<vocabularySize`, naming its index.
    public func detokenize(_ ids: [Int32]) throws -> String {
        try checkVocabulary(ids)
        return textModel.tokenizer.decode(ids)
    }

    /// A new session (an empty context) over this model.
    public func makeSession(_ options: SessionOptions = SessionOptions()) throws -> Session {
        try Session(model: self, options: options)
    }

    func checkVocabulary<C: Collection>(_ ids: C) throws where C.Element == Int32 {
        let V = vocabularySize
        for (i, id) in ids.enumerated() where id < 0 || Int(id) >= V {
            throw HymbaError(.invalidArgument, "token id \(id) at index \(i) is outside the vocabulary 0..<\(V)")
        }
    }
}
