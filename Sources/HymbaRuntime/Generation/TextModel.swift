import Foundation
import HymbaFormat
import HymbaTokenizer

/// A model for text in and text out: the `.hymba` file, the model over it, and the tokenizer
/// and chat format stored in its metadata. Immutable and shareable; each `Generator` (one
/// sequence) holds its own session.
///
///     let tm = try TextModel.open(path: "models/tiny-code-hymba-q8.hymba")
///     let generator = try Generator(model: tm)
///     let result = try generator.generate(prompt: "def fibonacci(n):", options: GenerationOptions(maxTokens: 32)) {
///         print($0.text, terminator: ""); return .continue
///     }
///
/// Opening maps the file, checks header/metadata/directory and builds the tokenizer (about
/// 75 ms for Hymba's 32k vocabulary); weights are checked and decompressed as the model loads
/// them. With a memory budget (`HymbaOptions.memoryBudgetBytes`), opening plans the run first
/// (`MemoryPlan.fit`: the tokenizer is measured, nothing large is allocated before the plan)
/// and loads the weights resident or streamed as the plan says; sessions then use
/// `sessionOptions` (the plan's prefill chunk and KV type). It throws `MemoryBudgetError`,
/// having loaded no weights, when nothing fits.
public final class TextModel: @unchecked Sendable {
    public let file: HymbaFile
    public let model: HymbaModel
    public let tokenizer: Tokenizer
    public let chatFormat: ChatFormat
    /// Tokens that end generation by default: the tokenizer's EOS, else the config's.
    public let endOfSequence: [Int32]
    /// The memory plan the model was loaded with (without a budget: the plan of the options given).
    public let memoryPlan: MemoryPlan
    /// Measured resident bytes of the tokenizer (the plan's tokenizer line).
    public let tokenizerBytes: Int

    /// The options for sessions over this model: those given to `init`, with the prefill
    /// chunk and KV type the memory plan chose. `Generator` and `ChatSession` use them by default.
    public var sessionOptions: HymbaOptions { memoryPlan.options }

    public convenience init(file: HymbaFile) throws {
        try self.init(file: file, options: HymbaOptions())
    }

    /// Builds the tokenizer, plans memory for sessions with `options` (fitting
    /// `options.memoryBudgetBytes` when set, for `workload`), then loads the weights as planned.
    public init(file: HymbaFile, options: HymbaOptions, workload: MemoryPlan.Workload = .generation) throws {
        // The tokenizer's size is measured: the resident set before reading it and after
        // building it, freed allocator memory returned first each time. Its JSON is parsed in
        // `readTokenizer` and gone before the weights load.
        let (built, bytes, configEOS) = try Self.buildTokenizer(file)
        self.file = file
        tokenizer = built
        tokenizerBytes = bytes
        let spec = built.spec
        chatFormat = ChatFormat(template: spec.chatTemplate)
        if let eos = spec.eosID {
            endOfSequence = [eos]
        } else if let eos = configEOS {
            endOfSequence = [eos]
        } else {
            endOfSequence = []
        }
        memoryPlan = try MemoryPlan.fit(file: file, options: options, tokenizerBytes: tokenizerBytes, workload: workload)
        model = try HymbaModel(file: file, residency: memoryPlan.residency)
        ProcessMemory.releaseFreedMemory()
    }

    /// The stored tokenizer, built, with its measured size in bytes (0 where the resident set
    /// cannot be read): what the memory plan's tokenizer line holds.
    public static func measuredTokenizer(of file: HymbaFile) throws -> (tokenizer: Tokenizer, bytes: Int) {
        let (t, bytes, _) = try buildTokenizer(file)
        return (t, bytes)
    }

    private static func buildTokenizer(_ file: HymbaFile) throws -> (Tokenizer, Int, Int32?) {
        ProcessMemory.releaseFreedMemory()
        let before = ProcessMemory.currentResidentBytes
        let (spec, configEOS) = try readTokenizer(file)
        let tokenizer = try Tokenizer(spec: spec)
        ProcessMemory.releaseFreedMemory()
        guard let before, let after = ProcessMemory.currentResidentBytes else { return (tokenizer, 0, configEOS) }
        return (tokenizer, max(0, after - before), configEOS)
    }

    /// The stored tokenizer's spec and the config's EOS, from one parse of the metadata.
    private static func readTokenizer(_ file: HymbaFile) throws -> (TokenizerSpec, Int32?) {
        let metadata = file.metadata
        guard let object = metadata["tokenizer"] as? [String: Any] else {
            throw GenerationError.noTokenizer(path: file.path)
        }
        let spec: TokenizerSpec
        do { spec = try TokenizerSpec(json: object) } catch {
            throw GenerationError.badTokenizer(path: file.path, reason: "\(error)")
        }
        guard spec.vocab.count <= file.config.vocabSize else {
            throw GenerationError.badTokenizer(path: file.path, reason: "the tokenizer has \(spec.vocab.count) tokens, the model's vocab_size is \(file.config.vocabSize)")
        }
        return (spec, file.metadataConfigEOS(metadata))
    }

    /// Opens `path` (see `HymbaFile(path:verifyChecksums:)`).
    public static func open(path: String, verifyChecksums: Bool = true) throws -> TextModel {
        try TextModel(file: HymbaFile(path: path, verifyChecksums: verifyChecksums))
    }

    /// Opens `path` for sessions with `options`, within `options.memoryBudgetBytes` when set
    /// (see `init(file:options:workload:)`); then `Generator(model:)` uses `sessionOptions`.
    public static func open(path: String, verifyChecksums: Bool = true, options: HymbaOptions,
                            workload: MemoryPlan.Workload = .generation) throws -> TextModel {
        try TextModel(file: HymbaFile(path: path, verifyChecksums: verifyChecksums), options: options, workload: workload)
    }

    public var config: HymbaConfig { model.config }

    /// Token ids of a whole text (BOS first when the tokenizer adds one).
    public func encode(_ text: String, addBOS: Bool? = nil) -> [Int32] {
        tokenizer.encode(text, addBOS: addBOS)
    }

    /// Token ids of `text` as it continues a text already fed, without BOS and without the
    /// meta-space the normalizer puts at the start of a whole text: encoded behind a newline
    /// (which Hymba's tokenizer writes as the byte token `<0x0A>`, joined by no merge) whose
    /// tokens are then removed. Falls back to a plain encode if the tokenizer splits that
    /// newline differently.
    public func encodeContinuation(_ text: String) -> [Int32] {
        if text.isEmpty { return [] }
        let anchor = tokenizer.encode("\n", addBOS: false, addEOS: false)
        let both = tokenizer.encode("\n" + text, addBOS: false, addEOS: false)
        if !anchor.isEmpty, both.starts(with: anchor), let last = anchor.last,
           let piece = tokenizer.piece(for: last), ContinuationDecoder.isBytePiece(piece) {
            return Array(both[anchor.count...])
        }
        return tokenizer.encode(text, addBOS: false, addEOS: false)
    }
}

extension HymbaFile {
    /// `eos_token_id` of the stored config.json (an int, or the first of a list).
    func metadataConfigEOS(_ metadata: [String: Any]) -> Int32? {
        let c = metadata["config"] as? [String: Any]
        if let v = c?["eos_token_id"] as? Int { return Int32(v) }
        if let v = (c?["eos_token_id"] as? [Int])?.first { return Int32(v) }
        return nil
    }
}

/// Why generation could not start or continue. Each case says what to change.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    /// The file was converted without a tokenizer.
    case noTokenizer(path: String)
    case badTokenizer(path: String, reason: String)
    /// The prompt tokenizes to nothing (no BOS either).
    case emptyPrompt
    /// The prompt alone does not fit in the session's context.
    case promptTooLong(tokens: Int, available: Int, contextLength: Int)

    public var description: String {
        switch self {
        case let .noTokenizer(path):
            return "\(path): the model file has no tokenizer (it was converted from a checkpoint without tokenizer.json); text generation needs one"
        case let .badTokenizer(path, reason):
            return "\(path): the stored tokenizer is unusable: \(reason)"
        case .emptyPrompt:
            return "the prompt is empty (it gives no tokens, not even BOS)"
        case let .promptTooLong(tokens, available, ctx):
            return "the prompt has \(tokens) tokens but only \(available) of the context length \(ctx) are free; use a larger --ctx (up to max_position_embeddings) or a shorter prompt"
        }
    }
}

extension TextModel {
    /// The tokenizer stored in a model file, without loading the weights (for tokenize /
    /// detokenize).
    public static func tokenizer(of file: HymbaFile) throws -> Tokenizer {
        guard let object = file.metadata["tokenizer"] as? [String: Any] else {
            throw GenerationError.noTokenizer(path: file.path)
        }
        do { return try Tokenizer(spec: TokenizerSpec(json: object)) } catch {
            throw GenerationError.badTokenizer(path: file.path, reason: "\(error)")
        }
    }
}
