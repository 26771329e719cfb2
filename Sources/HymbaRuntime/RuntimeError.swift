/// Errors of the runtime: every one says what was wrong, with the expected and found values.
/// Nothing the caller feeds in (token ids, lengths, weights of the wrong shape) traps.
public enum HymbaRuntimeError: Error, CustomStringConvertible, Equatable {
    /// A tensor the config requires is absent from the weight source.
    case missingTensor(name: String, reason: String)
    /// A tensor has a different shape than the config implies.
    case tensorShape(name: String, expected: [Int], found: [Int])
    /// A token id is outside `0..<vocabSize`.
    case tokenOutOfVocabulary(token: Int, index: Int, vocabSize: Int)
    /// Feeding `requested` more tokens after `position` would pass the context length.
    case contextOverflow(position: Int, requested: Int, contextLength: Int)
    /// An option value is unusable (context length, chunk size, ...).
    case invalidOption(String)
    /// A buffer handed to the runtime is too small.
    case bufferTooSmall(what: String, needed: Int, found: Int)
    /// A stored meta-token prefix does not fit the model.
    case metaPrefix(String)

    public var description: String {
        switch self {
        case let .missingTensor(name, reason):
            return "weights: tensor \(name) is missing (\(reason))"
        case let .tensorShape(name, expected, found):
            return "weights: tensor \(name) has shape \(found), expected \(expected)"
        case let .tokenOutOfVocabulary(token, index, vocab):
            return "token id \(token) at input index \(index) is outside the vocabulary 0..<\(vocab)"
        case let .contextOverflow(position, requested, ctx):
            return "context full: \(position) tokens already fed, \(requested) more would exceed the context length \(ctx)"
        case let .invalidOption(message):
            return "invalid option: \(message)"
        case let .bufferTooSmall(what, needed, found):
            return "\(what): buffer holds \(found) floats, \(needed) needed"
        case let .metaPrefix(message):
            return "meta-token prefix: \(message)"
        }
    }
}
