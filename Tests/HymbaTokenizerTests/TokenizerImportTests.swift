import Foundation
import HymbaConverter
import HymbaFormat
import Testing

@Suite("TokenizerImport errors")
struct TokenizerImportTests {
    static let tokenizerJSON = try! String(contentsOfFile: Fixtures.path("tokenizer-edge/tokenizer.json"), encoding: .utf8)
    static let configJSON = try! String(contentsOfFile: Fixtures.path("tokenizer-edge/tokenizer_config.json"), encoding: .utf8)

    func importing(tokenizer: String = tokenizerJSON, config: String = configJSON) throws -> TokenizerSpec {
        try TokenizerImport.spec(tokenizerJSON: Data(tokenizer.utf8), tokenizerConfig: Data(config.utf8))
    }

    /// Runs the import and returns the error it throws (nil if none).
    func importError(tokenizer: String = tokenizerJSON, config: String = configJSON) -> TokenizerImportError? {
        do { _ = try importing(tokenizer: tokenizer, config: config); return nil } catch { return error as? TokenizerImportError }
    }

    @Test("the unmodified edge fixture imports")
    func baseline() throws {
        let spec = try importing()
        #expect(spec.vocab.count == 20 && spec.merges.count == 8 && spec.addedTokens.count == 4)
        #expect(spec.addedTokens.last == .init(id: 19, content: "<tool>", special: false))
        #expect(spec.bosID == 1 && spec.eosID == 2 && spec.padID == nil && spec.addBOS)
    }

    @Test("merges written as [left, right] pairs (newer tokenizer.json) import the same")
    func mergePairs() throws {
        var text = Self.tokenizerJSON
        for merge in ["a b", "\u{2581} a", "\u{2581}a b", "ab c", "c d", "\u{2581} \u{2581}", "b c", "\u{2581} b"] {
            let parts = merge.split(separator: " ")
            let replaced = text.replacingOccurrences(of: "\"\(merge)\"", with: "[\"\(parts[0])\", \"\(parts[1])\"]")
            #expect(replaced != text, "\(merge)")
            text = replaced
        }
        #expect(try importing(tokenizer: text) == (try importing()))
    }

    @Test("a missing tokenizer.json or tokenizer_config.json is named")
    func missingFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try TokenizerImport.metadataObject(directory: dir.path) == nil)  // no tokenizer at all
        #expect { try TokenizerImport.spec(checkpointDirectory: dir.path) } throws: { error in
            let e = error as? TokenizerImportError
            return e?.file == dir.path + "/tokenizer.json" && e?.message.hasPrefix("missing") == true
        }
        try Data(Self.tokenizerJSON.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        #expect { try TokenizerImport.spec(checkpointDirectory: dir.path) } throws: { error in
            (error as? TokenizerImportError)?.file == dir.path + "/tokenizer_config.json"
        }
        #expect(throws: TokenizerImportError.self) { try TokenizerImport.metadataObject(directory: dir.path) }
        try Data(Self.configJSON.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        #expect(try TokenizerImport.spec(checkpointDirectory: dir.path).vocab.count == 20)
        let object = try #require(try TokenizerImport.metadataObject(directory: dir.path))
        #expect(try TokenizerSpec(json: object) == (try TokenizerImport.spec(checkpointDirectory: dir.path)))
    }

    @Test("unsupported features are refused by name", arguments: [
        ("\"type\": \"BPE\"", "\"type\": \"Unigram\"", "model.type"),
        ("\"pre_tokenizer\": null", "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}", "pre_tokenizer"),
        ("\"type\": \"Prepend\"", "\"type\": \"NFKC\"", "normalizer.normalizers[0].type"),
        ("{\"type\": \"Fuse\"}", "{\"type\": \"CTC\"}", "decoder.decoders[2].type"),
        ("\"pattern\": {\"String\": \" \"}", "\"pattern\": {\"Regex\": \" \"}", "normalizer.normalizers[1].pattern"),
        ("\"c d\"", "\"c a\"", "model.merges[4]"),
        ("\"lstrip\": false", "\"lstrip\": true", "added_tokens[0].lstrip"),
        ("\"truncation\": null", "\"truncation\": {\"max_length\": 8}", "truncation"),
        ("\"ignore_merges\": false", "\"ignore_merges\": true", "model.ignore_merges"),
        ("\"stop\": 0", "\"stop\": 1", "decoder.decoders[3].stop"),
    ])
    func unsupported(original: String, replacement: String, field: String) throws {
        let text = Self.tokenizerJSON.replacingOccurrences(of: original, with: replacement)
        #expect(text != Self.tokenizerJSON)
        let error = importError(tokenizer: text)
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.file == "tokenizer.json")
    }

    @Test("invalid fields are named", arguments: [
        ("\"a b\"", "\"a x\"", "tokenizer.json", "model.merges[0]"),
        ("\"unk_token\": \"<unk>\"", "\"unk_token\": \"<nope>\"", "tokenizer.json", "model.unk_token"),
        ("\"vocab\": {", "\"vocab\": 3, \"x\": {", "tokenizer.json", "model.vocab"),
    ])
    func invalidTokenizerFields(original: String, replacement: String, file: String, field: String) throws {
        let text = Self.tokenizerJSON.replacingOccurrences(of: original, with: replacement)
        let error = importError(tokenizer: text)
        #expect(error?.field == field && error?.file == file, "\(String(describing: error))")
    }

    @Test("tokenizer_config.json fields are checked")
    func configFields() throws {
        let badBOS = Self.configJSON.replacingOccurrences(of: "\"bos_token\": \"<s>\"", with: "\"bos_token\": \"<bos>\"")
        #expect(importError(config: badBOS)?.field == "bos_token")
        let noBOS = Self.configJSON.replacingOccurrences(of: "\"bos_token\": \"<s>\"", with: "\"bos_token\": null")
        #expect(importError(config: noBOS)?.field == "add_bos_token")
        let template = Self.configJSON.replacingOccurrences(of: "\"chat_template\": \"", with: "\"chat_template\": 5, \"x\": \"")
        #expect(importError(config: template)?.field == "chat_template")
        let noAdd = Self.configJSON.replacingOccurrences(of: "\"add_bos_token\": true", with: "\"add_bos_token\": false")
        #expect(try importing(config: noAdd).addBOS == false)
        #expect(importError(tokenizer: "[1, 2]")?.message == "top level is not a JSON object")
        #expect(importError(tokenizer: "{\"model\": ")?.message.hasPrefix("invalid JSON at byte") == true)
    }
}
