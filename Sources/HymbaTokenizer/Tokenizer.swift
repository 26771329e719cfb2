import HymbaFormat

/// A SentencePiece-style BPE tokenizer run exactly as Hugging Face `tokenizers` runs the
/// model's `tokenizer.json` (Llama-2 / Hymba): added tokens split out first, each remaining
/// segment normalized, then BPE by merge rank from single characters, with byte fallback.
///
///     let tokenizer = try Tokenizer(spec: spec)
///     let ids = tokenizer.encode("Hello world")      // [1, 15043, 3186]
///     tokenizer.decode(ids)                           // "Hello world"
///
/// Building one validates the spec and builds the tables once: about 75 ms for Hymba's 32k
/// vocabulary and 61k merges (release build).
/// Immutable after `init`: safe to share between threads. `encode` is O(n log n) in the text
/// length in the worst case (a long word without spaces), about linear for ordinary text.
public final class Tokenizer: Sendable {
    public let spec: TokenizerSpec

    // Encoding tables.
    let mergeTable: MergeTable
    /// Id of each single-character piece for scalars in the BMP, -1 when absent.
    let bmpCharIDs: [Int32]
    let astralCharIDs: [UInt32: Int32]
    /// HF looks up `"<0xNN>"` in the vocabulary for each byte of a character it cannot find;
    /// -1 when absent.
    let byteIDs: [Int32]
    let addedTokens: AddedTokenMatcher
    let normalizerSteps: [ScalarNormalizerStep]
    /// When set, no merge can join a symbol ending in another character to one starting with
    /// this one (checked in `init`), so a segment can be cut before each of its occurrences
    /// that follows a different character and the pieces merged separately.
    let splitScalar: UInt32?

    // Decoding tables.
    /// Each token's text after the decoder's replacements, as UTF-8, concatenated.
    let tokenBytes: [UInt8]
    /// `tokenBytes[tokenStart[id] ..< tokenStart[id + 1]]`.
    let tokenStart: [Int]
    /// The byte a byte-fallback token stands for, -1 for other tokens.
    let tokenByteValue: [Int16]
    let isSpecial: [Bool]

    /// Validates `spec` and builds the lookup tables. Throws `TokenizerSpecError`.
    public init(spec: TokenizerSpec) throws {
        let results = try spec.validate()
        self.spec = spec
        mergeTable = MergeTable(merges: spec.merges.map { ($0.left, $0.right) }, results: results)

        var bmp = [Int32](repeating: -1, count: 0x10000)
        var astral = [UInt32: Int32]()
        var bytePieces = [ExactStringKey: Int](minimumCapacity: 256)
        for b in 0..<256 { bytePieces[ExactStringKey(Self.byteTokenPiece(UInt8(b)))] = b }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for (i, piece) in spec.vocab.enumerated() {
            var scalars = piece.unicodeScalars.makeIterator()
            if let c = scalars.next(), scalars.next() == nil {
                if c.value < 0x10000 { bmp[Int(c.value)] = Int32(i) } else { astral[c.value] = Int32(i) }
            } else if piece.utf8.count == 6, let b = bytePieces[ExactStringKey(piece)] {
                byteIDs[b] = Int32(i)  // pieces are distinct, so each byte has at most one
            }
        }
        bmpCharIDs = bmp
        astralCharIDs = astral
        self.byteIDs = byteIDs
        addedTokens = AddedTokenMatcher(spec.addedTokens.map { (Array($0.content.utf8), $0.id) })
        normalizerSteps = spec.normalizer.map(ScalarNormalizerStep.init)
        splitScalar = Self.safeSplitScalar(spec)

        var bytes = [UInt8]()
        var starts = [Int]()
        var byteValues = [Int16]()
        starts.reserveCapacity(spec.vocab.count + 1)
        byteValues.reserveCapacity(spec.vocab.count)
        let replacements = spec.decoder.replacements.map {
            (Array($0.pattern.unicodeScalars.map(\.value)), Array($0.content.unicodeScalars.map(\.value)))
        }
        for piece in spec.vocab {
            var scalars = piece.unicodeScalars.map(\.value)
            for (pattern, content) in replacements { scalars = replacingAll(pattern, with: content, in: scalars) }
            let start = bytes.count
            starts.append(start)
            for v in scalars { appendUTF8(v, to: &bytes) }
            byteValues.append(spec.decoder.byteFallback ? Self.byteFallbackValue(bytes[start...]) : -1)
        }
        starts.append(bytes.count)
        tokenBytes = bytes
        tokenStart = starts
        tokenByteValue = byteValues
        var special = [Bool](repeating: false, count: spec.vocab.count)
        for t in spec.addedTokens where t.special { special[Int(t.id)] = true }
        isSpecial = special
    }

    /// Number of ids (added tokens included).
    public var vocabularySize: Int { spec.vocab.count }
    public var bosID: Int32? { spec.bosID }
    public var eosID: Int32? { spec.eosID }
    public var padID: Int32? { spec.padID }
    public var unkID: Int32? { spec.unkID }

    /// The vocabulary piece of `id` (e.g. `"▁Hello"`, `"<0x0A>"`, `"<s>"`), nil outside the vocabulary.
    public func piece(for id: Int32) -> String? {
        id >= 0 && Int(id) < spec.vocab.count ? spec.vocab[Int(id)] : nil
    }

    /// True for added tokens marked special (`<s>`, `</s>`, ...): `decode` drops them by default.
    public func isSpecialToken(_ id: Int32) -> Bool {
        id >= 0 && Int(id) < isSpecial.count && isSpecial[Int(id)]
    }

    /// HF's byte-fallback piece for a byte: `format!("<{b:#04X}>")`, e.g. `<0x0A>`.
    static func byteTokenPiece(_ b: UInt8) -> String {
        let hex = Array("0123456789ABCDEF")
        return "<0x\(hex[Int(b >> 4)])\(hex[Int(b & 15)])>"
    }

    /// HF's `ByteFallback` decoder test: a token of exactly 6 bytes, `<0x` + 2 bytes + `>`,
    /// whose 2 middle bytes parse with Rust's `u8::from_str_radix(_, 16)` (which also takes a
    /// leading `+`). Returns the byte, or -1.
    static func byteFallbackValue(_ token: ArraySlice<UInt8>) -> Int16 {
        guard token.count == 6 else { return -1 }
        let t = Array(token)
        guard t[0] == UInt8(ascii: "<"), t[1] == UInt8(ascii: "0"), t[2] == UInt8(ascii: "x"), t[5] == UInt8(ascii: ">") else { return -1 }
        func hexDigit(_ c: UInt8) -> Int16? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int16(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int16(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int16(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        if t[3] == UInt8(ascii: "+") { return hexDigit(t[4]) ?? -1 }
        guard let hi = hexDigit(t[3]), let lo = hexDigit(t[4]) else { return -1 }
        return hi * 16 + lo
    }

    /// The scalar before which segments may be cut (see `splitScalar`), or nil when the
    /// vocabulary does not allow it. The candidate is the prepended meta-space (`▁`).
    static func safeSplitScalar(_ spec: TokenizerSpec) -> UInt32? {
        var candidate: Unicode.Scalar?
        for step in spec.normalizer {
            if case .prepend(let s) = step, s.unicodeScalars.count == 1 { candidate = s.unicodeScalars.first; break }
        }
        guard let m = candidate else { return nil }
        // The boundary's right symbol must be the vocabulary piece `m` itself (not byte
        // fallback or unk), and the left symbol's piece must not end in `m`: then any merge
        // across the boundary has a left piece not ending in `m` and a right piece starting
        // with `m`. If no merge has that shape, no merge crosses the boundary, and BPE (whose
        // choices only compare pairs inside the word) gives the same ids on the pieces.
        guard spec.vocab.contains(where: { exactlyEqual($0, String(m)) }) else { return nil }
        if let unk = spec.unkID, spec.vocab[Int(unk)].unicodeScalars.last == m { return nil }
        for merge in spec.merges {
            let left = spec.vocab[Int(merge.left)].unicodeScalars, right = spec.vocab[Int(merge.right)].unicodeScalars
            if right.first == m && left.last != m { return nil }
        }
        return m.value
    }
}

/// Appends the UTF-8 encoding of a valid scalar value.
@inline(__always)
func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
    switch v {
    case 0..<0x80:
        out.append(UInt8(v))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
    default:
        out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | v >> 12 & 0x3F))
        out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
    }
}

/// Replaces every occurrence of `pattern` in `text`, scanning left to right without overlap
/// (Rust's `str::match_indices`, which HF's `Replace` uses for string patterns).
func replacingAll(_ pattern: [UInt32], with content: [UInt32], in text: [UInt32]) -> [UInt32] {
    guard !pattern.isEmpty, text.count >= pattern.count else { return text }
    var out = [UInt32]()
    out.reserveCapacity(text.count)
    var i = 0
    let last = text.count - pattern.count
    while i < text.count {
        if i <= last && text[i] == pattern[0] && text[i..<(i + pattern.count)].elementsEqual(pattern) {
            out.append(contentsOf: content)
            i += pattern.count
        } else {
            out.append(text[i])
            i += 1
        }
    }
    return out
}
