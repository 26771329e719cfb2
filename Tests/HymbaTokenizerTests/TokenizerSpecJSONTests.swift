import Foundation
import HymbaFormat
import HymbaTokenizer
import Testing

@Suite("TokenizerSpec JSON")
struct TokenizerSpecJSONTests {
    /// Through bytes, as the model file stores it.
    func roundTrip(_ spec: TokenizerSpec) throws -> (TokenizerSpec, Data) {
        let data = TokenizerSpec.escapingByteOrderMarks(
            in: try JSONSerialization.data(withJSONObject: spec.jsonObject(), options: [.sortedKeys]))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (try TokenizerSpec(json: object), data)
    }

    @Test("Hymba's spec survives jsonObject -> bytes -> init(json:) exactly, deterministically")
    func hymbaRoundTrip() throws {
        let spec = try Fixtures.hymbaSpec()
        let (back, data) = try roundTrip(spec)
        #expect(back == spec)
        #expect(back.vocab[30873].unicodeScalars.map(\.value) == [0x1F77])
        let (_, again) = try roundTrip(back)
        #expect(again == data)
        // The fields the runtime relies on, as imported.
        #expect(spec.vocab.count == 32001 && spec.merges.count == 61249)
        #expect(spec.byteFallback && spec.fuseUnk && spec.addBOS && !spec.addEOS)
        #expect(spec.unkID == 0 && spec.bosID == 1 && spec.eosID == 2 && spec.padID == 32000)
        #expect(spec.addedTokens.map(\.id) == [0, 1, 2, 32000] && spec.addedTokens.allSatisfy(\.special))
        #expect(spec.normalizer == [.prepend("▁"), .replace(pattern: " ", content: "▁")])
        #expect(spec.decoder == TokenizerSpec.Decoder(replacements: [.init(pattern: "▁", content: " ")], byteFallback: true, stripLeading: 1))
        #expect(spec.chatTemplate?.hasPrefix("{{'<extra_id_0>System'}}") == true)
        #expect(spec.merges[0] == TokenizerSpec.Merge(29871, 29873))  // "▁ t" -> "▁t"
    }

    @Test("U+FEFF survives JSONSerialization once escaped; without it the piece is lost and refused by name")
    func byteOrderMarks() throws {
        let raw = Data("{\"a\": [\"\u{FEFF}\", \"x\u{FEFF}\", \"\\\"\u{FEFF}\"], \"\u{FEFF}k\": 1}".utf8)
        let escaped = TokenizerSpec.escapingByteOrderMarks(in: raw)
        #expect(String(decoding: escaped, as: UTF8.self) == "{\"a\": [\"\\ufeff\", \"x\\ufeff\", \"\\\"\\ufeff\"], \"\\ufeffk\": 1}")
        let object = try #require(try JSONSerialization.jsonObject(with: escaped) as? [String: Any])
        #expect((object["a"] as? [String])?.map { scalars($0) } == [["feff"], ["78", "feff"], ["22", "feff"]])
        #expect(TokenizerSpec.escapingByteOrderMarks(in: Data("[\"plain\"]".utf8)) == Data("[\"plain\"]".utf8))

        let spec = try Fixtures.hymbaSpec()
        #expect(spec.vocab[30143] == "\u{FEFF}")
        let unescaped = try JSONSerialization.data(withJSONObject: spec.jsonObject())
        let parsed = try #require(try JSONSerialization.jsonObject(with: unescaped) as? [String: Any])
        if (parsed["vocab"] as? [String])?[30143].isEmpty == true {  // Linux Foundation's behaviour
            #expect(throws: TokenizerSpecError.self) { try TokenizerSpec(json: parsed) }
        }
    }

    @Test("equality compares pieces by scalars, not canonical equivalence")
    func exactEquality() throws {
        let a = tinySpec(vocab: ["<unk>", "a", "\u{3AF}"])
        let b = tinySpec(vocab: ["<unk>", "a", "\u{1F77}"])
        #expect(a != b)
        #expect(a == tinySpec(vocab: ["<unk>", "a", "\u{3AF}"]))
    }

    @Test("a spec without optional ids or template round-trips (nulls)")
    func nullsRoundTrip() throws {
        var spec = tinySpec(vocab: ["<unk>", "a", "b", "ab"])
        spec.merges = [.init(1, 2)]
        let (back, data) = try roundTrip(spec)
        #expect(back == spec)
        #expect(String(decoding: data, as: UTF8.self).contains("\"chat_template\":null"))
    }

    @Test("malformed JSON is refused naming the field", arguments: [
        ("model", "unigram" as Any, "model"),
        ("vocab", NSNull() as Any, "vocab"),
        ("merges", [1] as Any, "merges"),
        ("merges", [1, 99] as Any, "merges[1]"),
        ("merges", [1, 1] as Any, "merges[0]"),          // "aa" is not in vocab
        ("bos_id", 7 as Any, "bos_id"),
        ("add_bos", "yes" as Any, "add_bos"),
        ("normalizer", [["lowercase": true]] as Any, "normalizer[0]"),
        ("decoder", ["replace": [], "byte_fallback": true] as Any, "decoder.strip_leading"),
        ("added_tokens", [["id": 1, "content": "b", "special": true]] as Any, "added_tokens[0].content"),
        ("vocab", ["<unk>", "a", "a", "ab"] as Any, "vocab[2]"),
    ] as [(String, Any, String)])
    func refusesBadFields(key: String, value: Any, field: String) throws {
        var spec = tinySpec(vocab: ["<unk>", "a", "b", "ab"])
        spec.merges = [.init(1, 2)]
        spec.bosID = 3
        var object = spec.jsonObject()
        object[key] = value
        #expect {
            try TokenizerSpec(json: object)
        } throws: { error in
            (error as? TokenizerSpecError)?.field == field
        }
    }

    @Test("a missing key is named")
    func missingKey() throws {
        var object = tinySpec(vocab: ["<unk>", "a"]).jsonObject()
        object["fuse_unk"] = nil
        #expect(throws: TokenizerSpecError(field: "fuse_unk", "is missing")) { try TokenizerSpec(json: object) }
    }

    func tinySpec(vocab: [String]) -> TokenizerSpec {
        TokenizerSpec(
            vocab: vocab, merges: [], byteFallback: false, fuseUnk: false, unkID: 0, bosID: nil, eosID: nil,
            padID: nil, addBOS: false, addEOS: false, addedTokens: [.init(id: 0, content: "<unk>", special: true)],
            normalizer: [.prepend("▁")], decoder: .init(replacements: [], byteFallback: false, stripLeading: 0),
            chatTemplate: nil)
    }
}
