import HymbaFormat

/// The decoder pipeline of `TokenizerSpec.Decoder` as a state machine over ids, shared by
/// `Tokenizer.decode` and `StreamingDecoder` so both give the same text. It reproduces HF's
/// `Sequence[Replace, ByteFallback, Fuse, Strip]`: each token's text (replacements already
/// applied in the tables); runs of byte tokens turned into their bytes, a run that is not
/// valid UTF-8 as a whole becoming one U+FFFD per byte (HF's `ByteFallback` rule, not the
/// usual per-sequence replacement); then up to `strip_leading` leading spaces removed from
/// the joined text.
struct DetokenizerState {
    /// Bytes of the current run of byte-fallback tokens. Held until the run ends, because a
    /// later byte can make the whole run invalid and so change text that would otherwise
    /// already have been emitted.
    private(set) var pendingBytes: [UInt8] = []
    /// Leading spaces still to strip; 0 once any other character has been produced.
    private var stripRemaining: Int

    init(stripLeading: Int) { stripRemaining = stripLeading }

    /// Feeds one id; appends any text it completes to `out`. Ids outside the vocabulary are
    /// ignored (HF skips ids it cannot map to a token).
    mutating func push(_ id: Int32, _ t: Tokenizer, skipSpecial: Bool, into out: inout [UInt8]) {
        guard id >= 0 && Int(id) < t.tokenByteValue.count else { return }
        let i = Int(id)
        if skipSpecial && t.isSpecial[i] { return }
        let byte = t.tokenByteValue[i]
        if byte >= 0 {
            pendingBytes.append(UInt8(byte))
            return
        }
        endRun(into: &out)
        t.tokenBytes.withUnsafeBufferPointer { b in
            emit(UnsafeBufferPointer(rebasing: b[t.tokenStart[i]..<t.tokenStart[i + 1]]), into: &out)
        }
    }

    /// Ends a pending byte run (end of input).
    mutating func finish(into out: inout [UInt8]) { endRun(into: &out) }

    private mutating func endRun(into out: inout [UInt8]) {
        if pendingBytes.isEmpty { return }
        if isValidUTF8(pendingBytes) {
            pendingBytes.withUnsafeBufferPointer { emit($0, into: &out) }
        } else {
            let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]  // U+FFFD
            for _ in pendingBytes { replacement.withUnsafeBufferPointer { emit($0, into: &out) } }
        }
        pendingBytes.removeAll(keepingCapacity: true)
    }

    private mutating func emit(_ text: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var start = 0
        while stripRemaining > 0 && start < text.count {
            if text[start] == UInt8(ascii: " ") {
                start += 1
                stripRemaining -= 1
            } else {
                stripRemaining = 0
            }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: text[start...]))
    }
}

/// Strict UTF-8 validation (no overlongs, surrogates or values above U+10FFFF), the rule of
/// Rust's `String::from_utf8` that HF applies.
func isValidUTF8(_ bytes: [UInt8]) -> Bool {
    var iterator = bytes.makeIterator()
    var decoder = Unicode.UTF8()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}

extension Tokenizer {
    /// The text of `ids`, as HF's `decode(ids, skip_special_tokens:)` gives it: special tokens
    /// dropped when `skipSpecial`, byte-fallback tokens joined back into UTF-8, the leading
    /// space of the first piece removed. Ids outside the vocabulary are ignored, as in HF.
    /// Cost: linear in the output.
    public func decode(_ ids: [Int32], skipSpecial: Bool = true) -> String {
        var state = DetokenizerState(stripLeading: spec.decoder.stripLeading)
        var out = [UInt8]()
        out.reserveCapacity(ids.count * 4)
        for id in ids { state.push(id, self, skipSpecial: skipSpecial, into: &out) }
        state.finish(into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Turns ids into text one at a time while generating, emitting only text that full decoding
/// would also produce: the concatenation of everything `push` and `flush` return equals
/// `tokenizer.decode(allIDs, skipSpecial:)`, for any ids.
///
/// A character split across byte-fallback tokens (`<0xF0> <0x9F> <0x98> <0x80>` = 😀) is held
/// back until the run of byte tokens ends, i.e. until the next non-byte token or `flush()`:
/// HF decodes a run as a whole, and a later invalid byte turns the whole run into U+FFFD.
/// The decoder's leading-space strip applies only at the start of the sequence.
///
///     var stream = StreamingDecoder(tokenizer: tokenizer)
///     for id in generated { print(stream.push(id), terminator: "") }
///     print(stream.flush())
///
/// Cost: O(1) per id beyond the text produced. Not thread-safe (a value with mutable state).
public struct StreamingDecoder {
    public let tokenizer: Tokenizer
    public let skipSpecial: Bool
    private var state: DetokenizerState
    private var buffer: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecial: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
        state = DetokenizerState(stripLeading: tokenizer.spec.decoder.stripLeading)
    }

    /// Feeds one id; returns the text it completes (often the token's own text, empty while a
    /// byte run is pending or for a skipped special token).
    public mutating func push(_ id: Int32) -> String {
        buffer.removeAll(keepingCapacity: true)
        state.push(id, tokenizer, skipSpecial: skipSpecial, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// True while bytes of an unfinished byte-fallback run are held back.
    public var hasPendingText: Bool { !state.pendingBytes.isEmpty }

    /// Ends the sequence: returns the held-back text, and resets the decoder so the next
    /// `push` starts a new sequence (its leading space is stripped again).
    public mutating func flush() -> String {
        buffer.removeAll(keepingCapacity: true)
        state.finish(into: &buffer)
        state = DetokenizerState(stripLeading: tokenizer.spec.decoder.stripLeading)
        return String(decoding: buffer, as: UTF8.self)
    }
}
