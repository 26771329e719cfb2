import Foundation
import HymbaFormat

/// A tokenizer file that cannot be read, or that uses a feature we do not implement.
public struct TokenizerImportError: Error, CustomStringConvertible, Equatable {
    /// Path of the file at fault.
    public var file: String
    /// JSON path of the field at fault (`model.type`, `added_tokens[3].lstrip`), or "" for the
    /// whole file.
    public var field: String
    public var message: String

    public init(file: String, field: String, _ message: String) {
        self.file = file; self.field = field; self.message = message
    }

    public var description: String { field.isEmpty ? "\(file): \(message)" : "\(file): \(field): \(message)" }
}

/// Builds a `TokenizerSpec` from a Hugging Face checkpoint's `tokenizer.json` (the model
/// itself: vocabulary, merges, normalizer, added tokens, decoder) and `tokenizer_config.json`
/// (chat template, `add_bos_token` / `add_eos_token`, the BOS/EOS/PAD token names).
///
/// Only what `HymbaTokenizer` runs exactly is accepted; anything else is refused by name
/// (another model type, a pre-tokenizer, regex patterns, unknown normalizer or decoder
/// steps, added tokens with `lstrip`/`rstrip`/`single_word`/`normalized`, truncation or
/// padding, merges whose result is not in the vocabulary).
///
/// Where the two files disagree, `tokenizer_config.json` wins for `add_bos_token`,
/// `add_eos_token`, `bos_token` and `eos_token`: that is what `transformers`' Llama tokenizer
/// does (it rebuilds the post-processor from them). Without those keys the post-processor
/// (`TemplateProcessing`) decides.
public enum TokenizerImport {
    /// Reads `tokenizer.json` and `tokenizer_config.json` from a checkpoint directory.
    public static func spec(checkpointDirectory directory: String) throws -> TokenizerSpec {
        let tokenizerPath = directory + "/tokenizer.json"
        let configPath = directory + "/tokenizer_config.json"
        return try spec(tokenizerJSON: try read(tokenizerPath), tokenizerConfig: try read(configPath),
                        tokenizerPath: tokenizerPath, configPath: configPath)
    }

    /// The `"tokenizer"` object for a model file's metadata (`TokenizerSpec.jsonObject()`), or
    /// nil when `directory` has no `tokenizer.json` (the file then carries no tokenizer). A
    /// `tokenizer.json` without `tokenizer_config.json`, or one we cannot run, throws.
    public static func metadataObject(directory: String) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: directory + "/tokenizer.json") else { return nil }
        return try spec(checkpointDirectory: directory).jsonObject()
    }

    /// The `"tokenizer"` object for a conversion that must carry a tokenizer: a directory
    /// without `tokenizer.json` is refused (a model file without a tokenizer cannot turn text
    /// into tokens), naming the option that converts the weights alone.
    public static func requiredMetadataObject(directory: String) throws -> [String: Any] {
        guard let object = try metadataObject(directory: directory) else {
            throw TokenizerImportError(file: directory + "/tokenizer.json", field: "",
                                       "missing: a model file without a tokenizer cannot generate text (pass --no-tokenizer to convert the weights alone)")
        }
        return object
    }

    /// The same from the files' contents; the paths only name the files in errors.
    public static func spec(
        tokenizerJSON: Data, tokenizerConfig: Data,
        tokenizerPath: String = "tokenizer.json", configPath: String = "tokenizer_config.json"
    ) throws -> TokenizerSpec {
        let tok = try Source(data: tokenizerJSON, path: tokenizerPath)
        let cfg = try Source(data: tokenizerConfig, path: configPath)
        return try Builder(tok: tok, cfg: cfg).build()
    }

    private static func read(_ path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TokenizerImportError(file: path, field: "", "missing (a Hugging Face checkpoint needs tokenizer.json and tokenizer_config.json)")
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TokenizerImportError(file: path, field: "", "cannot be read: \(error.localizedDescription)")
        }
    }
}

/// One parsed file and error helpers naming it.
private struct Source {
    let root: RawJSON
    let path: String

    init(data: Data, path: String) throws {
        self.path = path
        do { root = try RawJSON.parse(data) } catch {
            throw TokenizerImportError(file: path, field: "", "\(error)")
        }
        guard case .object = root else { throw TokenizerImportError(file: path, field: "", "top level is not a JSON object") }
    }

    func invalid(_ field: String, _ message: String) -> TokenizerImportError {
        TokenizerImportError(file: path, field: field, message)
    }
    func unsupported(_ field: String, _ feature: String) -> TokenizerImportError {
        TokenizerImportError(file: path, field: field, "unsupported: \(feature)")
    }

    /// `value[key]` treating an absent key like null.
    func optional(_ value: RawJSON, _ key: String) -> RawJSON? {
        guard let v = value[key], !v.isNull else { return nil }
        return v
    }
    func string(_ value: RawJSON, _ key: String, at field: String) throws -> String {
        guard let v = value[key] else { throw invalid(field, "is missing") }
        guard let s = v.stringValue else { throw invalid(field, "is \(v.kind), expected a string") }
        return s
    }
    func bool(_ value: RawJSON, _ key: String, at field: String, default d: Bool) throws -> Bool {
        guard let v = optional(value, key) else { return d }
        guard let b = v.boolValue else { throw invalid(field, "is \(v.kind), expected a boolean") }
        return b
    }
    func object(_ value: RawJSON, _ key: String, at field: String) throws -> RawJSON {
        guard let v = value[key] else { throw invalid(field, "is missing") }
        guard case .object = v else { throw invalid(field, "is \(v.kind), expected an object") }
        return v
    }
    func array(_ value: RawJSON, _ key: String, at field: String) throws -> [RawJSON] {
        guard let v = value[key] else { throw invalid(field, "is missing") }
        guard let a = v.arrayValue else { throw invalid(field, "is \(v.kind), expected an array") }
        return a
    }
}

private struct Builder {
    let tok: Source
    let cfg: Source

    func build() throws -> TokenizerSpec {
        let root = tok.root
        for key in ["truncation", "padding"] where tok.optional(root, key) != nil {
            throw tok.unsupported(key, "\(key) settings (encode must return every token, unpadded)")
        }
        if let pre = tok.optional(root, "pre_tokenizer") {
            throw tok.unsupported("pre_tokenizer", "a pre-tokenizer (\(typeName(pre) ?? pre.kind)); only SentencePiece-style BPE without one is implemented")
        }

        // The BPE model.
        let model = try tok.object(root, "model", at: "model")
        let type = try tok.string(model, "type", at: "model.type")
        guard type == "BPE" else { throw tok.unsupported("model.type", "model type \"\(type)\" (only \"BPE\")") }
        if let dropout = tok.optional(model, "dropout"), dropout.intValue != 0 {
            throw tok.unsupported("model.dropout", "BPE dropout")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = tok.optional(model, key), v.stringValue != "" { throw tok.unsupported("model.\(key)", key) }
        }
        if try tok.bool(model, "ignore_merges", at: "model.ignore_merges", default: false) {
            throw tok.unsupported("model.ignore_merges", "ignore_merges = true (whole words looked up before merging)")
        }
        let byteFallback = try tok.bool(model, "byte_fallback", at: "model.byte_fallback", default: false)
        let fuseUnk = try tok.bool(model, "fuse_unk", at: "model.fuse_unk", default: false)

        let vocabMembers = try tok.object(model, "vocab", at: "model.vocab").objectValue ?? []
        var modelPieces = [String?](repeating: nil, count: vocabMembers.count)
        var modelIDs = [ExactStringKey: Int32](minimumCapacity: vocabMembers.count)
        for (piece, idValue) in vocabMembers {
            let field = "model.vocab[\(debugQuoted(piece))]"
            guard let id = idValue.intValue else { throw tok.invalid(field, "is \(idValue.kind), expected an integer id") }
            guard id >= 0 && id < vocabMembers.count else {
                throw tok.invalid(field, "id \(id) is outside 0..<\(vocabMembers.count) (ids must be contiguous)")
            }
            if let other = modelPieces[id] { throw tok.invalid(field, "id \(id) is also the id of \(debugQuoted(other))") }
            if piece.isEmpty { throw tok.unsupported(field, "an empty vocabulary piece") }
            if modelIDs.updateValue(Int32(id), forKey: ExactStringKey(piece)) != nil { throw tok.invalid(field, "piece is listed twice") }
            modelPieces[id] = piece
        }
        var vocab = modelPieces.map { $0! }  // every slot filled: distinct ids in 0..<count
        let modelCount = vocab.count

        let unkID: Int32?
        if let unk = tok.optional(model, "unk_token") {
            guard let name = unk.stringValue else { throw tok.invalid("model.unk_token", "is \(unk.kind), expected a string") }
            guard let id = modelIDs[ExactStringKey(name)] else { throw tok.invalid("model.unk_token", "\(debugQuoted(name)) is not in model.vocab") }
            unkID = id
        } else {
            unkID = nil
        }

        // Merges: "a b" strings (older files) or ["a", "b"] pairs.
        var merges = [TokenizerSpec.Merge]()
        let mergeItems = try tok.array(model, "merges", at: "model.merges")
        merges.reserveCapacity(mergeItems.count)
        for (rank, item) in mergeItems.enumerated() {
            let field = "model.merges[\(rank)]"
            let parts: [String]
            if let s = item.stringValue {
                parts = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let a = item.arrayValue, a.allSatisfy({ $0.stringValue != nil }) {
                parts = a.map { $0.stringValue! }
            } else {
                throw tok.invalid(field, "is \(item.kind), expected \"left right\" or [left, right]")
            }
            guard parts.count == 2 else { throw tok.invalid(field, "does not name exactly two pieces") }
            guard let left = modelIDs[ExactStringKey(parts[0])] else { throw tok.invalid(field, "piece \(debugQuoted(parts[0])) is not in model.vocab") }
            guard let right = modelIDs[ExactStringKey(parts[1])] else { throw tok.invalid(field, "piece \(debugQuoted(parts[1])) is not in model.vocab") }
            guard modelIDs[ExactStringKey(parts[0] + parts[1])] != nil else {
                throw tok.unsupported(field, "a merge whose result \(debugQuoted(parts[0] + parts[1])) is not in model.vocab")
            }
            merges.append(TokenizerSpec.Merge(left, right))
        }

        // Added tokens: matched verbatim in the raw text.
        var added = [TokenizerSpec.AddedToken]()
        var addedOnly = [Int: String]()
        for (i, item) in (tok.optional(root, "added_tokens")?.arrayValue ?? []).enumerated() {
            let field = "added_tokens[\(i)]"
            guard case .object = item else { throw tok.invalid(field, "is \(item.kind), expected an object") }
            guard let idValue = item["id"], let id = idValue.intValue, id >= 0, id <= Int(Int32.max) else {
                throw tok.invalid("\(field).id", "is missing or not a non-negative integer")
            }
            let content = try tok.string(item, "content", at: "\(field).content")
            if content.isEmpty { throw tok.invalid("\(field).content", "is empty") }
            for flag in ["single_word", "lstrip", "rstrip", "normalized"] {
                if try tok.bool(item, flag, at: "\(field).\(flag)", default: false) {
                    throw tok.unsupported("\(field).\(flag)", "added token \(debugQuoted(content)) with \(flag) = true")
                }
            }
            let special = try tok.bool(item, "special", at: "\(field).special", default: false)
            if id < modelCount {
                guard exactlyEqual(vocab[id], content) else {
                    throw tok.unsupported("\(field).content", "added token \(debugQuoted(content)) takes id \(id) of model piece \(debugQuoted(vocab[id]))")
                }
            } else {
                if modelIDs[ExactStringKey(content)] != nil {
                    throw tok.unsupported("\(field).content", "added token \(debugQuoted(content)) (id \(id)) duplicates a model piece")
                }
                // BPE never produces added-only ids; a one-character one would be ambiguous
                // in our single vocabulary (the character lookup would find it).
                if content.unicodeScalars.count == 1 {
                    throw tok.unsupported("\(field).content", "one-character added token \(debugQuoted(content)) outside model.vocab")
                }
                if let other = addedOnly.updateValue(content, forKey: id), !exactlyEqual(other, content) {
                    throw tok.invalid("\(field).id", "id \(id) is also the id of added token \(debugQuoted(other))")
                }
            }
            if let previous = added.firstIndex(where: { $0.id == Int32(id) }) {
                throw tok.invalid("\(field).id", "id \(id) repeats added_tokens[\(previous)]")
            }
            added.append(TokenizerSpec.AddedToken(id: Int32(id), content: content, special: special))
        }
        for id in addedOnly.keys.sorted() {
            guard id == vocab.count else {
                throw tok.invalid("added_tokens", "ids beyond model.vocab must continue it without gaps: expected id \(vocab.count), found \(id)")
            }
            vocab.append(addedOnly[id]!)
        }
        var allIDs = modelIDs
        for (id, content) in addedOnly { allIDs[ExactStringKey(content)] = Int32(id) }

        let normalizer = try normalizerSteps(tok.optional(root, "normalizer"), field: "normalizer")
        let decoder = try decoderSpec(root)
        let template = try templateProcessing(tok.optional(root, "post_processor"))

        // tokenizer_config.json.
        let c = cfg.root
        func tokenID(_ key: String) throws -> Int32?? {
            guard let v = c[key] else { return .none }  // absent: let the caller fall back
            if v.isNull { return .some(nil) }
            let name: String
            if let s = v.stringValue { name = s } else if case .object = v, let s = v["content"]?.stringValue { name = s } else {
                throw cfg.invalid(key, "is \(v.kind), expected a token string or {\"content\": ...}")
            }
            guard let id = allIDs[ExactStringKey(name)] else { throw cfg.invalid(key, "token \(debugQuoted(name)) is not in the vocabulary of \(tok.path)") }
            return .some(id)
        }
        let bosID = try tokenID("bos_token") ?? template.bos
        let eosID = try tokenID("eos_token") ?? template.eos
        let padID = try tokenID("pad_token") ?? nil
        let addBOS = try cfg.optional(c, "add_bos_token") == nil ? template.bos != nil : cfg.bool(c, "add_bos_token", at: "add_bos_token", default: false)
        let addEOS = try cfg.optional(c, "add_eos_token") == nil ? template.eos != nil : cfg.bool(c, "add_eos_token", at: "add_eos_token", default: false)
        if addBOS && bosID == nil { throw cfg.invalid("add_bos_token", "is true but no BOS token is named (bos_token)") }
        if addEOS && eosID == nil { throw cfg.invalid("add_eos_token", "is true but no EOS token is named (eos_token)") }

        if let decoderTable = c["added_tokens_decoder"]?.objectValue {
            for (key, entry) in decoderTable {
                let field = "added_tokens_decoder[\(debugQuoted(key))]"
                guard let id = Int(key), let content = entry["content"]?.stringValue else {
                    throw cfg.invalid(field, "expected an id key and an object with \"content\"")
                }
                guard added.contains(where: { Int($0.id) == id && exactlyEqual($0.content, content) }) else {
                    throw cfg.unsupported(field, "token \(debugQuoted(content)) (id \(id)) is not among \(tok.path)'s added_tokens")
                }
            }
        }

        let chatTemplate: String?
        switch c["chat_template"] {
        case nil, .null?: chatTemplate = nil
        case .string(let s)?: chatTemplate = s
        case .array(let named)?:
            guard let d = named.first(where: { $0["name"]?.stringValue == "default" }), let s = d["template"]?.stringValue else {
                throw cfg.unsupported("chat_template", "a list of named templates without one named \"default\"")
            }
            chatTemplate = s
        case let other?: throw cfg.invalid("chat_template", "is \(other.kind), expected a string")
        }

        let spec = TokenizerSpec(
            vocab: vocab, merges: merges, byteFallback: byteFallback, fuseUnk: fuseUnk, unkID: unkID,
            bosID: bosID, eosID: eosID, padID: padID, addBOS: addBOS, addEOS: addEOS, addedTokens: added,
            normalizer: normalizer, decoder: decoder, chatTemplate: chatTemplate)
        do { try spec.validate() } catch let e as TokenizerSpecError {
            throw tok.invalid("", "inconsistent tokenizer: \(e)")
        }
        return spec
    }

    private func typeName(_ v: RawJSON) -> String? { v["type"]?.stringValue }

    private func normalizerSteps(_ value: RawJSON?, field: String) throws -> [TokenizerSpec.NormalizerStep] {
        guard let value else { return [] }
        let type = try tok.string(value, "type", at: "\(field).type")
        switch type {
        case "Sequence":
            var steps = [TokenizerSpec.NormalizerStep]()
            for (i, inner) in try tok.array(value, "normalizers", at: "\(field).normalizers").enumerated() {
                steps += try normalizerSteps(inner, field: "\(field).normalizers[\(i)]")
            }
            return steps
        case "Prepend":
            let s = try tok.string(value, "prepend", at: "\(field).prepend")
            return s.isEmpty ? [] : [.prepend(s)]
        case "Replace":
            let (pattern, content) = try replacement(value, field: field)
            return [.replace(pattern: pattern, content: content)]
        default:
            throw tok.unsupported("\(field).type", "normalizer \"\(type)\" (supported: Sequence, Prepend, Replace)")
        }
    }

    private func replacement(_ value: RawJSON, field: String) throws -> (String, String) {
        let pattern = try tok.object(value, "pattern", at: "\(field).pattern")
        guard let literal = pattern["String"]?.stringValue else {
            throw tok.unsupported("\(field).pattern", "a non-literal Replace pattern (\(pattern.objectValue?.first?.key ?? "?")); only {\"String\": ...}")
        }
        if literal.isEmpty { throw tok.unsupported("\(field).pattern", "an empty Replace pattern") }
        return (literal, try tok.string(value, "content", at: "\(field).content"))
    }

    /// Accepts `Replace* ByteFallback? Fuse? Strip?` (a Sequence or a single step), the shape
    /// `TokenizerSpec.Decoder` runs.
    private func decoderSpec(_ root: RawJSON) throws -> TokenizerSpec.Decoder {
        guard let value = tok.optional(root, "decoder") else {
            throw tok.unsupported("decoder", "no decoder (HF would join tokens with spaces)")
        }
        var steps: [(RawJSON, String)]
        if typeName(value) == "Sequence" {
            steps = try tok.array(value, "decoders", at: "decoder.decoders").enumerated().map { ($1, "decoder.decoders[\($0)]") }
        } else {
            steps = [(value, "decoder")]
        }
        var replacements = [TokenizerSpec.Replacement]()
        var byteFallback = false, fused = false
        var strip = 0
        var stage = 0  // 0 replace, 1 byte fallback seen, 2 fuse seen, 3 strip seen
        for (step, field) in steps {
            let type = try tok.string(step, "type", at: "\(field).type")
            switch type {
            case "Replace" where stage == 0:
                let (p, c) = try replacement(step, field: field)
                replacements.append(.init(pattern: p, content: c))
            case "ByteFallback" where stage < 1:
                byteFallback = true; stage = 1
            case "Fuse" where stage < 2:
                fused = true; stage = 2
            case "Strip" where stage < 3:
                let content = try tok.string(step, "content", at: "\(field).content")
                guard content == " " else { throw tok.unsupported("\(field).content", "Strip of \(debugQuoted(content)) (only \" \")") }
                guard let start = step["start"]?.intValue, start >= 0 else { throw tok.invalid("\(field).start", "is missing or negative") }
                guard step["stop"]?.intValue ?? 0 == 0 else { throw tok.unsupported("\(field).stop", "stripping trailing characters") }
                guard fused || start == 0 else { throw tok.unsupported(field, "Strip without a Fuse before it (strips every token)") }
                strip = start; stage = 3
            case "Replace", "ByteFallback", "Fuse", "Strip":
                throw tok.unsupported("\(field).type", "decoder step \(type) in this position (supported order: Replace*, ByteFallback, Fuse, Strip)")
            default:
                throw tok.unsupported("\(field).type", "decoder \"\(type)\" (supported: Sequence of Replace, ByteFallback, Fuse, Strip)")
            }
        }
        return TokenizerSpec.Decoder(replacements: replacements, byteFallback: byteFallback, stripLeading: strip)
    }

    /// BOS/EOS from a `TemplateProcessing` post-processor whose single-sequence template is
    /// `[special?] $A [special?]`.
    private func templateProcessing(_ value: RawJSON?) throws -> (bos: Int32?, eos: Int32?) {
        guard let value else { return (nil, nil) }
        let type = try tok.string(value, "type", at: "post_processor.type")
        guard type == "TemplateProcessing" else {
            throw tok.unsupported("post_processor.type", "post-processor \"\(type)\" (only TemplateProcessing)")
        }
        let items = try tok.array(value, "single", at: "post_processor.single")
        let specials = tok.optional(value, "special_tokens")
        var ids: [Int32?] = []
        var sawSequence = false
        for (i, item) in items.enumerated() {
            let field = "post_processor.single[\(i)]"
            if let seq = item["Sequence"] {
                guard !sawSequence, seq["id"]?.stringValue == "A" else { throw tok.unsupported(field, "a single-sequence template other than [special] $A [special]") }
                sawSequence = true
                ids.append(nil)
            } else if let special = item["SpecialToken"], let name = special["id"]?.stringValue {
                guard let entry = specials?[name], let list = entry["ids"]?.arrayValue, list.count == 1, let id = list[0].intValue,
                      id >= 0, id <= Int(Int32.max) else {
                    throw tok.unsupported(field, "special token \(debugQuoted(name)) not mapped to exactly one id in post_processor.special_tokens")
                }
                ids.append(Int32(id))
            } else {
                throw tok.invalid(field, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}")
            }
        }
        guard sawSequence, ids.count <= 3 else {
            throw tok.unsupported("post_processor.single", "a single-sequence template other than [special] $A [special]")
        }
        let a = ids.firstIndex(where: { $0 == nil })!
        guard a <= 1, ids.count - a - 1 <= 1 else {
            throw tok.unsupported("post_processor.single", "more than one special token on a side of $A")
        }
        return (a == 1 ? ids[0] : nil, a + 1 < ids.count ? ids[a + 1] : nil)
    }
}
