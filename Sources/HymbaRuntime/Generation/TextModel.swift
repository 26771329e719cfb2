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
/// 75 ms for Hymba's 32k vocabulary); weights are checked and decompressed as the model loads them.
public final class TextModel: @unchecked Sendable {
    public let file: HymbaFile
    public let model: HymbaModel
    public let tokenizer: Tokenizer
    public let chatFormat: ChatFormat
    /// Tokens that end generation by default: the tokenizer's EOS, else the config's.
    public let endOfSequence: [Int32]

    public init(file: HymbaFile) throws {
        guard let object = file.metadata["tokenizer"] as? [String: Any] else {
            throw GenerationError.noTokenizer(path: file.path)
        }
        let spec: TokenizerSpec
        do { spec = try TokenizerSpec(json: object) } catch {
            throw GenerationError.badTokenizer(path: file.path, reason: "\(error)")
        }
        guard spec.vocab.count <= file.config.vocabSize else {
            throw GenerationError.badTokenizer(path: file.path, reason: "the tokenizer has \(spec.vocab.count) tokens, the model's vocab_size is \(file.config.vocabSize)")
        }
        self.file = file
        tokenizer = try Tokenizer(spec: spec)
        model = try HymbaModel(file: file)
        chatFormat = ChatFormat(template: spec.chatTemplate)
        if let eos = spec.eosID {
            endOfSequence = [eos]
        } else if let eos = file.metadataConfigEOS {
            endOfSequence = [eos]
        } else {
            endOfSequence = []
        }
    }

    /// Opens `path` (see `HymbaFile(path:verifyChecksums:)`).
    public static func open(path: String, verifyChecksums: Bool = true) throws -> TextModel {
        try TextModel(file: HymbaFile(path: path, verifyChecksums: verifyChecksums))
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
    var metadataConfigEOS: Int32? {
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
