import Foundation

/// Everything needed to run a model's tokenizer: a SentencePiece-style BPE as Hugging Face
/// `tokenizers` runs it from `tokenizer.json` (Llama-2 / Hymba family), plus the encoding
/// defaults and the chat template from `tokenizer_config.json`. Stored in the `.hymba` metadata
/// under `"tokenizer"`; `HymbaTokenizer.Tokenizer` runs it, `HymbaConverter` builds it.
///
/// JSON form (`jsonObject()` / `init(json:)`), every key required, `null` where noted:
///
///     {
///       "model": "bpe",
///       "vocab": ["<unk>", "<s>", ...],      // piece of every id 0..<V, added tokens included;
///                                           // pieces are non-empty and distinct (compared as
///                                           // exact Unicode scalars, never canonically)
///       "merges": [a0, b0, a1, b1, ...],     // flat id pairs; pair i has rank i (lower merges
///                                           // first) and produces the id whose piece is
///                                           // vocab[a] + vocab[b]
///       "byte_fallback": true,               // characters missing from vocab become their
///                                           // UTF-8 bytes as "<0xNN>" pieces (NN uppercase)
///       "fuse_unk": true,                    // consecutive unknown characters -> one unk_id
///       "unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": 32000,   // each an id or null
///       "add_bos": true, "add_eos": false,   // encode() defaults
///       "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, ...],
///                                           // matched verbatim in input text before
///                                           // normalization (leftmost, then longest);
///                                           // "special" ones are dropped by decode(skipSpecial:)
///       "normalizer": [{"prepend": "▁"}, {"replace": [" ", "▁"]}],
///                                           // ordered steps on each text segment between added
///                                           // tokens: prepend (only to non-empty text), replace
///                                           // every occurrence (left to right, non-overlapping)
///       "decoder": {"replace": [["▁", " "]], "byte_fallback": true, "strip_leading": 1},
///                                           // per token: the replacements in order; then runs of
///                                           // consecutive "<0xNN>" tokens become their bytes (a run
///                                           // that is not valid UTF-8 becomes one U+FFFD per byte);
///                                           // then everything is joined and up to strip_leading
///                                           // leading spaces (U+0020) are removed
///       "chat_template": "..."               // Jinja source from tokenizer_config.json, or null
///     }
///
/// Equality compares strings by their exact Unicode scalars: the Llama vocabulary holds pieces
/// that Swift's `String ==` considers equal (U+03AF "ί" and U+1F77 "ί" are ids 30207 and 30873).
public struct TokenizerSpec: Sendable {
    /// A token added on top of the BPE vocabulary (`added_tokens` in `tokenizer.json`).
    public struct AddedToken: Sendable {
        public var id: Int32
        public var content: String
        /// Dropped by `decode(skipSpecial: true)`.
        public var special: Bool
        public init(id: Int32, content: String, special: Bool) {
            self.id = id; self.content = content; self.special = special
        }
    }

    /// One normalizer step, applied in order to each segment of input text.
    public enum NormalizerStep: Sendable {
        /// Prepends `content` to a non-empty segment.
        case prepend(String)
        /// Replaces every occurrence of `pattern` (left to right, non-overlapping) by `content`.
        case replace(pattern: String, content: String)
    }

    /// A literal string replacement (decoder side).
    public struct Replacement: Sendable {
        public var pattern: String
        public var content: String
        public init(pattern: String, content: String) { self.pattern = pattern; self.content = content }
    }

    /// The decoder pipeline, always in this order: `replacements` on each token's piece,
    /// byte fallback, concatenation, then strip up to `stripLeading` leading spaces.
    public struct Decoder: Sendable {
        public var replacements: [Replacement]
        public var byteFallback: Bool
        public var stripLeading: Int
        public init(replacements: [Replacement], byteFallback: Bool, stripLeading: Int) {
            self.replacements = replacements; self.byteFallback = byteFallback; self.stripLeading = stripLeading
        }
    }

    /// A merge rule: the pieces of `left` and `right`, adjacent, become one piece.
    public struct Merge: Sendable, Hashable {
        public var left: Int32
        public var right: Int32
        public init(_ left: Int32, _ right: Int32) { self.left = left; self.right = right }
    }

    /// Piece of every id, added tokens included.
    public var vocab: [String]
    /// Merge rules by rank (index 0 is applied first).
    public var merges: [Merge]
    public var byteFallback: Bool
    public var fuseUnk: Bool
    public var unkID: Int32?
    public var bosID: Int32?
    public var eosID: Int32?
    public var padID: Int32?
    public var addBOS: Bool
    public var addEOS: Bool
    public var addedTokens: [AddedToken]
    public var normalizer: [NormalizerStep]
    public var decoder: Decoder
    public var chatTemplate: String?

    public init(
        vocab: [String], merges: [Merge], byteFallback: Bool, fuseUnk: Bool,
        unkID: Int32?, bosID: Int32?, eosID: Int32?, padID: Int32?, addBOS: Bool, addEOS: Bool,
        addedTokens: [AddedToken], normalizer: [NormalizerStep], decoder: Decoder, chatTemplate: String?
    ) {
        self.vocab = vocab; self.merges = merges; self.byteFallback = byteFallback; self.fuseUnk = fuseUnk
        self.unkID = unkID; self.bosID = bosID; self.eosID = eosID; self.padID = padID
        self.addBOS = addBOS; self.addEOS = addEOS; self.addedTokens = addedTokens
        self.normalizer = normalizer; self.decoder = decoder; self.chatTemplate = chatTemplate
    }

    public var vocabularySize: Int { vocab.count }
}

// MARK: - Errors

/// A tokenizer spec that is malformed or inconsistent; `field` is the JSON path of the problem.
public struct TokenizerSpecError: Error, CustomStringConvertible, Equatable {
    public var field: String
    public var message: String
    public init(field: String, _ message: String) { self.field = field; self.message = message }
    public var description: String { "tokenizer spec: \(field): \(message)" }
}

// MARK: - Exact (scalar-wise) equality

/// Strings compared by their exact UTF-8 bytes: `String ==` uses canonical equivalence,
/// which would make distinct vocabulary pieces equal.
@inline(__always)
package func exactlyEqual(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

private func exactlyEqual(_ a: String?, _ b: String?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (x?, y?): return exactlyEqual(x, y)
    default: return false
    }
}

extension TokenizerSpec.AddedToken: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        a.id == b.id && a.special == b.special && exactlyEqual(a.content, b.content)
    }
}

extension TokenizerSpec.NormalizerStep: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case let (.prepend(x), .prepend(y)): return exactlyEqual(x, y)
        case let (.replace(p1, c1), .replace(p2, c2)): return exactlyEqual(p1, p2) && exactlyEqual(c1, c2)
        default: return false
        }
    }
}

extension TokenizerSpec.Replacement: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        exactlyEqual(a.pattern, b.pattern) && exactlyEqual(a.content, b.content)
    }
}

extension TokenizerSpec.Decoder: Equatable {}

extension TokenizerSpec: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        a.vocab.count == b.vocab.count && zip(a.vocab, b.vocab).allSatisfy { exactlyEqual($0, $1) }
            && a.merges == b.merges && a.byteFallback == b.byteFallback && a.fuseUnk == b.fuseUnk
            && a.unkID == b.unkID && a.bosID == b.bosID && a.eosID == b.eosID && a.padID == b.padID
            && a.addBOS == b.addBOS && a.addEOS == b.addEOS && a.addedTokens == b.addedTokens
            && a.normalizer == b.normalizer && a.decoder == b.decoder
            && exactlyEqual(a.chatTemplate, b.chatTemplate)
    }
}

// MARK: - Validation

/// Hashes and compares a string by its exact UTF-8 bytes (see `exactlyEqual`).
package struct ExactStringKey: Hashable {
    package let string: String
    package init(_ string: String) { self.string = string }
    package static func == (a: Self, b: Self) -> Bool { exactlyEqual(a.string, b.string) }
    package func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(0xFF as UInt8)  // not a UTF-8 byte: terminates the key
    }
}

extension TokenizerSpec {
    /// Checks every invariant the tokenizer relies on and returns, for each merge (by rank),
    /// the id it produces. Throws `TokenizerSpecError` naming the offending field.
    @discardableResult
    package func validate() throws -> [Int32] {
        let v = vocab.count
        guard v > 0 else { throw TokenizerSpecError(field: "vocab", "is empty") }
        guard v <= Int(Int32.max) else { throw TokenizerSpecError(field: "vocab", "has \(v) pieces, more than Int32 ids allow") }
        var ids = [ExactStringKey: Int32](minimumCapacity: v)
        for (i, piece) in vocab.enumerated() {
            if piece.isEmpty {
                throw TokenizerSpecError(field: "vocab[\(i)]", "is an empty piece (if the JSON went through Foundation's JSONSerialization, see escapingByteOrderMarks: it drops a leading U+FEFF, and Hymba's piece 30143 is U+FEFF)")
            }
            if let j = ids.updateValue(Int32(i), forKey: ExactStringKey(piece)) {
                throw TokenizerSpecError(field: "vocab[\(i)]", "piece \(debugQuoted(piece)) repeats vocab[\(j)]")
            }
        }
        func checkID(_ id: Int32?, _ field: String) throws {
            if let id, id < 0 || Int(id) >= v {
                throw TokenizerSpecError(field: field, "id \(id) is outside 0..<\(v)")
            }
        }
        try checkID(unkID, "unk_id"); try checkID(bosID, "bos_id"); try checkID(eosID, "eos_id"); try checkID(padID, "pad_id")
        if addBOS && bosID == nil { throw TokenizerSpecError(field: "add_bos", "is true but bos_id is null") }
        if addEOS && eosID == nil { throw TokenizerSpecError(field: "add_eos", "is true but eos_id is null") }

        var results = [Int32]()
        results.reserveCapacity(merges.count)
        var seenPairs = [Merge: Int](minimumCapacity: merges.count)
        for (rank, m) in merges.enumerated() {
            try checkID(m.left, "merges[\(2 * rank)]"); try checkID(m.right, "merges[\(2 * rank + 1)]")
            if let earlier = seenPairs.updateValue(rank, forKey: m) {
                throw TokenizerSpecError(field: "merges[\(2 * rank)]", "pair (\(m.left), \(m.right)) repeats merge rank \(earlier)")
            }
            let joined = vocab[Int(m.left)] + vocab[Int(m.right)]
            guard let result = ids[ExactStringKey(joined)] else {
                throw TokenizerSpecError(field: "merges[\(2 * rank)]", "merge rank \(rank) produces \(debugQuoted(joined)), which is not in vocab")
            }
            results.append(result)
        }

        var addedIDs = Set<Int32>()
        for (i, t) in addedTokens.enumerated() {
            let field = "added_tokens[\(i)]"
            try checkID(t.id, "\(field).id")
            if !addedIDs.insert(t.id).inserted { throw TokenizerSpecError(field: "\(field).id", "id \(t.id) is listed twice") }
            if !exactlyEqual(vocab[Int(t.id)], t.content) {
                throw TokenizerSpecError(field: "\(field).content", "\(debugQuoted(t.content)) differs from vocab[\(t.id)] = \(debugQuoted(vocab[Int(t.id)]))")
            }
        }
        for (i, step) in normalizer.enumerated() {
            switch step {
            case .prepend(let s) where s.isEmpty:
                throw TokenizerSpecError(field: "normalizer[\(i)].prepend", "is empty")
            case .replace(let p, _) where p.isEmpty:
                throw TokenizerSpecError(field: "normalizer[\(i)].replace", "pattern is empty")
            default: break
            }
        }
        for (i, r) in decoder.replacements.enumerated() where r.pattern.isEmpty {
            throw TokenizerSpecError(field: "decoder.replace[\(i)]", "pattern is empty")
        }
        if decoder.stripLeading < 0 { throw TokenizerSpecError(field: "decoder.strip_leading", "is negative (\(decoder.stripLeading))") }
        return results
    }
}

package func debugQuoted(_ s: String) -> String {
    let escaped = s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? String($0) : $0.escaped(asASCII: true) }.joined()
    return "\"\(escaped)\""
}

// MARK: - JSON

extension TokenizerSpec {
    /// `json` with every raw U+FEFF inside a string written as the escape `\ufeff`.
    ///
    /// Foundation's `JSONSerialization` on Linux drops a U+FEFF that starts a string value
    /// (`["\u{FEFF}"]` parses as `[""]`), and Hymba's vocabulary has the piece U+FEFF (id 30143).
    /// Escaped, it parses correctly. Apply this to JSON bytes before `JSONSerialization` parses
    /// them (the metadata reader), and to bytes it wrote (the writer): JSON's structure is
    /// ASCII, so only string contents change, and the parsed values are the same.
    public static func escapingByteOrderMarks(in json: Data) -> Data {
        json.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Data in
            let bytes = raw.bindMemory(to: UInt8.self)
            let n = bytes.count
            var out = [UInt8]()
            var copied = 0  // bytes[..<copied] are already in `out`
            var inString = false, escaped = false
            var i = 0
            while i < n {
                let b = bytes[i]
                if inString {
                    if escaped {
                        escaped = false
                    } else if b == UInt8(ascii: "\\") {
                        escaped = true
                    } else if b == UInt8(ascii: "\"") {
                        inString = false
                    } else if b == 0xEF && i + 2 < n && bytes[i + 1] == 0xBB && bytes[i + 2] == 0xBF {
                        if out.isEmpty { out.reserveCapacity(n + 64) }
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<i]))
                        out.append(contentsOf: "\\ufeff".utf8)
                        i += 3
                        copied = i
                        continue
                    }
                } else if b == UInt8(ascii: "\"") {
                    inString = true
                }
                i += 1
            }
            if copied == 0 { return json }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<n]))
            return Data(out)
        }
    }

    /// The JSON object stored in the model file (see the type's documentation). Same spec,
    /// same content; serialize with `.sortedKeys` for byte-identical output.
    public func jsonObject() -> [String: Any] {
        func id(_ x: Int32?) -> Any { x.map { Int($0) as Any } ?? NSNull() }
        var flatMerges = [Int]()
        flatMerges.reserveCapacity(2 * merges.count)
        for m in merges { flatMerges.append(Int(m.left)); flatMerges.append(Int(m.right)) }
        let steps: [[String: Any]] = normalizer.map {
            switch $0 {
            case .prepend(let s): return ["prepend": s]
            case let .replace(p, c): return ["replace": [p, c]]
            }
        }
        return [
            "model": "bpe",
            "vocab": vocab,
            "merges": flatMerges,
            "byte_fallback": byteFallback,
            "fuse_unk": fuseUnk,
            "unk_id": id(unkID), "bos_id": id(bosID), "eos_id": id(eosID), "pad_id": id(padID),
            "add_bos": addBOS,
            "add_eos": addEOS,
            "added_tokens": addedTokens.map { ["id": Int($0.id), "content": $0.content, "special": $0.special] as [String: Any] },
            "normalizer": steps,
            "decoder": [
                "replace": decoder.replacements.map { [$0.pattern, $0.content] },
                "byte_fallback": decoder.byteFallback,
                "strip_leading": decoder.stripLeading,
            ] as [String: Any],
            "chat_template": chatTemplate.map { $0 as Any } ?? NSNull(),
        ]
    }

    /// Reads and validates the JSON object written by `jsonObject()` (as parsed by
    /// `JSONSerialization`). Throws `TokenizerSpecError` naming the bad field.
    public init(json: [String: Any]) throws {
        let r = SpecJSONReader(object: json, path: "")
        let model = try r.string("model")
        guard model == "bpe" else { throw TokenizerSpecError(field: "model", "is \(debugQuoted(model)); only \"bpe\" is supported") }
        guard let vocabAny = json["vocab"] else { throw TokenizerSpecError(field: "vocab", "is missing") }
        guard let vocabArray = vocabAny as? [Any] else { throw TokenizerSpecError(field: "vocab", "is not an array") }
        var vocab = [String]()
        vocab.reserveCapacity(vocabArray.count)
        for (i, p) in vocabArray.enumerated() {
            guard let s = p as? String else { throw TokenizerSpecError(field: "vocab[\(i)]", "is not a string") }
            vocab.append(s)
        }
        let flat = try r.intArray("merges")
        guard flat.count % 2 == 0 else { throw TokenizerSpecError(field: "merges", "has an odd number of ids (\(flat.count)); expected pairs") }
        var merges = [Merge]()
        merges.reserveCapacity(flat.count / 2)
        for i in stride(from: 0, to: flat.count, by: 2) {
            for k in i...(i + 1) where flat[k] < 0 || flat[k] >= vocab.count {
                throw TokenizerSpecError(field: "merges[\(k)]", "id \(flat[k]) is outside 0..<\(vocab.count)")
            }
            merges.append(Merge(Int32(flat[i]), Int32(flat[i + 1])))
        }

        var added = [AddedToken]()
        for (i, item) in try r.array("added_tokens").enumerated() {
            guard let obj = item as? [String: Any] else { throw TokenizerSpecError(field: "added_tokens[\(i)]", "is not an object") }
            let t = SpecJSONReader(object: obj, path: "added_tokens[\(i)].")
            added.append(AddedToken(id: try t.id("id"), content: try t.string("content"), special: try t.bool("special")))
        }

        var steps = [NormalizerStep]()
        for (i, item) in try r.array("normalizer").enumerated() {
            let field = "normalizer[\(i)]"
            guard let obj = item as? [String: Any], obj.count == 1, let (key, value) = obj.first else {
                throw TokenizerSpecError(field: field, "is not an object with exactly one key (\"prepend\" or \"replace\")")
            }
            switch key {
            case "prepend":
                guard let s = value as? String else { throw TokenizerSpecError(field: "\(field).prepend", "is not a string") }
                steps.append(.prepend(s))
            case "replace":
                guard let pair = value as? [Any], pair.count == 2, let p = pair[0] as? String, let c = pair[1] as? String else {
                    throw TokenizerSpecError(field: "\(field).replace", "is not a [pattern, content] pair of strings")
                }
                steps.append(.replace(pattern: p, content: c))
            default:
                throw TokenizerSpecError(field: field, "unknown step \(debugQuoted(key)) (supported: \"prepend\", \"replace\")")
            }
        }

        guard let decAny = json["decoder"] else { throw TokenizerSpecError(field: "decoder", "is missing") }
        guard let decObj = decAny as? [String: Any] else { throw TokenizerSpecError(field: "decoder", "is not an object") }
        let d = SpecJSONReader(object: decObj, path: "decoder.")
        var replacements = [Replacement]()
        for (i, item) in try d.array("replace").enumerated() {
            guard let pair = item as? [Any], pair.count == 2, let p = pair[0] as? String, let c = pair[1] as? String else {
                throw TokenizerSpecError(field: "decoder.replace[\(i)]", "is not a [pattern, content] pair of strings")
            }
            replacements.append(Replacement(pattern: p, content: c))
        }
        let decoder = Decoder(replacements: replacements, byteFallback: try d.bool("byte_fallback"),
                              stripLeading: try d.int("strip_leading"))

        self.init(
            vocab: vocab, merges: merges, byteFallback: try r.bool("byte_fallback"), fuseUnk: try r.bool("fuse_unk"),
            unkID: try r.optionalID("unk_id"), bosID: try r.optionalID("bos_id"), eosID: try r.optionalID("eos_id"),
            padID: try r.optionalID("pad_id"), addBOS: try r.bool("add_bos"), addEOS: try r.bool("add_eos"),
            addedTokens: added, normalizer: steps, decoder: decoder, chatTemplate: try r.optionalString("chat_template"))
        try validate()
    }
}

/// Typed access to one JSON object of the spec, with errors naming the field's path.
private struct SpecJSONReader {
    let object: [String: Any]
    let path: String

    func value(_ key: String) throws -> Any {
        guard let v = object[key] else { throw TokenizerSpecError(field: path + key, "is missing") }
        return v
    }
    func string(_ key: String) throws -> String {
        guard let s = try value(key) as? String else { throw TokenizerSpecError(field: path + key, "is not a string") }
        return s
    }
    func optionalString(_ key: String) throws -> String? {
        let v = try value(key)
        if v is NSNull { return nil }
        guard let s = v as? String else { throw TokenizerSpecError(field: path + key, "is not a string or null") }
        return s
    }
    func bool(_ key: String) throws -> Bool {
        guard let b = try value(key) as? Bool else { throw TokenizerSpecError(field: path + key, "is not a boolean") }
        return b
    }
    func int(_ key: String) throws -> Int {
        guard let n = Self.integer(try value(key)) else { throw TokenizerSpecError(field: path + key, "is not an integer") }
        return n
    }
    func id(_ key: String) throws -> Int32 {
        let n = try int(key)
        guard let id = Int32(exactly: n), id >= 0 else { throw TokenizerSpecError(field: path + key, "id \(n) is out of range") }
        return id
    }
    func optionalID(_ key: String) throws -> Int32? {
        if try value(key) is NSNull { return nil }
        return try id(key)
    }
    func array(_ key: String) throws -> [Any] {
        guard let a = try value(key) as? [Any] else { throw TokenizerSpecError(field: path + key, "is not an array") }
        return a
    }
    func intArray(_ key: String) throws -> [Int] {
        let a = try array(key)
        if let ints = a as? [Int] { return ints }
        var out = [Int]()
        out.reserveCapacity(a.count)
        for (i, x) in a.enumerated() {
            guard let n = Self.integer(x) else { throw TokenizerSpecError(field: "\(path)\(key)[\(i)]", "is not an integer") }
            out.append(n)
        }
        return out
    }
    static func integer(_ v: Any) -> Int? {
        if let n = v as? Int { return n }
        if let d = v as? Double, let n = Int(exactly: d) { return n }
        return nil
    }
}
