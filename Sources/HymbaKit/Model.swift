import Foundation
import HymbaRuntime

/// How a model is opened.
public struct ModelOptions: Sendable, Equatable {
    /// Threads each session's forward pass runs on (the calling thread and `threads` − 1
    /// workers the session starts); 0 means one per core. At most 256.
    public var threads: Int
    /// Most bytes the process may hold for this model and its sessions (peak resident set, as
    /// the runtime's `MemoryPlan` counts it: a measured allowance for the process, the
    /// tokenizer, the weights, and each session's caches, states, activations and logits; not
    /// the embedding program's own memory); 0 means no budget. See `Model.init`.
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
    /// The runtime's model: file, weights, tokenizer, chat format and the memory plan it was
    /// loaded with (for what this API lacks).
    public let textModel: TextModel

    /// Opens and checks the file at `path` (header, metadata, directory, every tensor's shape;
    /// chunk checksums unless `verifyChecksums` is off). Throws a `HymbaError`.
    ///
    /// With a memory budget, the runtime plans before loading any weight, for one session of
    /// the model's full `contextLength` (the default of `makeSession`): if that does not fit it
    /// shrinks the prefill chunk, stores the KV cache in q8, then streams the weights from the
    /// file layer by layer (same output, slower), and otherwise throws `.memoryBudget` with the
    /// plan's breakdown and the smallest budget that would fit. Each session is then admitted
    /// against the same budget together with the sessions still alive (see `makeSession`).
    public init(path: String, options: ModelOptions = ModelOptions()) throws {
        let runtimeOptions = try Self.runtimeOptions(options)
        self.options = options
        do {
            textModel = try TextModel.open(path: path, verifyChecksums: options.verifyChecksums, options: runtimeOptions)
        } catch {
            throw HymbaError(classifying: error)
        }
        footprint = runtimeOptions.memoryBudgetBytes == nil ? nil : textModel.model.weightFootprint
    }

    /// `options` checked and translated, in this one place, into the runtime's.
    static func runtimeOptions(_ options: ModelOptions) throws -> HymbaOptions {
        guard options.threads >= 0, options.threads <= HymbaOptions.maximumThreads else {
            throw HymbaError(.invalidArgument, "threads \(options.threads) must be in 0…\(HymbaOptions.maximumThreads) (0: all cores)")
        }
        guard options.memoryBudgetBytes <= UInt64(Int.max) else {
            throw HymbaError(.invalidArgument, "memory budget \(options.memoryBudgetBytes) bytes is more than \(Int.max), the most the runtime counts")
        }
        let budget = options.memoryBudgetBytes
        return HymbaOptions(threads: options.threads, memoryBudgetBytes: budget == 0 ? nil : Int(budget))
    }

    // MARK: The budget's sessions

    /// The weights' footprint the session plans count (only with a budget).
    private let footprint: WeightFootprint?
    private let ledger = NSLock()
    /// What the live sessions hold (caches, states, activations, logits), and how many they are.
    private var liveSessionBytes = 0
    private var liveSessions = 0

    /// Admits a session with runtime `options` within the budget, counting the sessions still
    /// alive: the plan of the model with this session (`MemoryPlan`, as the model was planned)
    /// plus what the others hold. Returns the bytes reserved for it (0 without a budget), to
    /// hand back with `release(_:)` when the session goes. Throws `.memoryBudget` otherwise.
    func admitSession(_ options: HymbaOptions) throws -> Int {
        guard let footprint, let budget = textModel.sessionOptions.memoryBudgetBytes else { return 0 }
        let plan = MemoryPlan(config: textModel.config, footprint: footprint, options: options,
                              residency: textModel.model.residency, tokenizerBytes: textModel.tokenizerBytes,
                              workload: .generation)
        // The plan's lines after the loaded model's (KV caches, states, activations, logits).
        let own = plan.runBytes - plan.loadItems.reduce(0) { $0 + $1.bytes }
        ledger.lock()
        defer { ledger.unlock() }
        // Loading and opening are over once a session exists; the running lines add up.
        let total = max(plan.totalBytes, plan.runBytes + liveSessionBytes)
        guard total <= budget else {
            let session = "a session of \(plan.session.contextLength) tokens (KV \(options.kvType), prefill chunk \(options.prefillChunk)) holds \(Self.mib(own))"
            var message = "memory budget \(Self.mib(budget)) (\(budget) bytes) is exceeded: \(session)"
            if liveSessions == 0 {
                message += ", and with the model the plan below needs \(Self.mib(total)); use a smaller context length or q8 KV.\n"
            } else {
                let others = liveSessions == 1 ? "the 1 session (context) still alive" : "the \(liveSessions) sessions (contexts) still alive"
                message += ", and with the model and \(others) (\(Self.mib(liveSessionBytes))) the total would be \(Self.mib(total)); "
                    + "free a session, or use a smaller context length or q8 KV.\nthe model with this session alone:\n"
            }
            throw HymbaError(.memoryBudget, message + plan.description)
        }
        liveSessionBytes += own
        liveSessions += 1
        return own
    }

    /// Hands back what `admitSession` reserved (a session ended).
    func release(_ bytes: Int) {
        guard footprint != nil else { return }
        ledger.lock()
        liveSessionBytes -= bytes
        liveSessions -= 1
        ledger.unlock()
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.2f MiB", Double(bytes) / 1_048_576) }

    /// Token ids run from 0 to `vocabularySize` − 1 (the size of the logits).
    public var vocabularySize: Int { textModel.config.vocabSize }

    /// The kernel backend models run on in this process ("portable", "avx2" or "avx512": the
    /// best this CPU can run, or `HYMBA_BACKEND`'s); nil when `HYMBA_BACKEND` names one this
    /// CPU or build lacks (opening a model then fails with that reason).
    public static var kernelBackend: String? { try? KernelDispatch.selected().rawValue }

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

    /// A new session (an empty context) over this model; its caches are allocated now. With a
    /// memory budget it must fit together with the model and the sessions still alive (a
    /// session's memory is handed back when it is released), else `.memoryBudget` is thrown
    /// with the plan; `SessionOptions()` takes the context length, KV type and prefill chunk
    /// the model was planned with.
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
