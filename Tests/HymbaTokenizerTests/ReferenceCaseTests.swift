import Foundation
import HymbaConverter
import HymbaFormat
import HymbaTokenizer
import Testing

/// The tokenizer against Hugging Face `tokenizers` on the model's own tokenizer.json.
@Suite("Tokenizer matches Hugging Face")
struct ReferenceCaseTests {
    @Test("all tokenizer-cases.json cases: ids with BOS, and decode skipping specials")
    func referenceCases() throws {
        let tokenizer = try Fixtures.hymba()
        let cases = try Fixtures.referenceCases()
        #expect(cases.count == 35)
        for c in cases {
            let ids = tokenizer.encode(c.text)
            #expect(ids == c.ids, "encode(\(c.text.debugDescription))")
            let decoded = tokenizer.decode(c.ids)
            #expect(decoded.unicodeScalars.elementsEqual(c.decoded.unicodeScalars), "decode(\(c.ids)) = \(decoded.debugDescription), expected \(c.decoded.debugDescription)")
        }
    }

    @Test("extra cases: prose, added tokens, Unicode, heldout.txt lines and blocks, chat prompts")
    func extraEncodeCases() throws {
        let tokenizer = try Fixtures.hymba()
        let list = try #require(try Fixtures.extraCases()["encode"] as? [[String: Any]])
        #expect(list.count > 150)
        for c in list {
            let text = try #require(c["text"] as? String)
            let expected = try Fixtures.int32s(c["ids"])
            let ids = tokenizer.encode(text)
            #expect(ids == expected, "encode(\(text.prefix(200).debugDescription))")
        }
    }

    @Test("encode without BOS, and with EOS requested")
    func withoutBOS() throws {
        let tokenizer = try Fixtures.hymba()
        let list = try #require(try Fixtures.extraCases()["encode_without_bos"] as? [[String: Any]])
        for c in list {
            let text = try #require(c["text"] as? String)
            #expect(tokenizer.encode(text, addBOS: false) == (try Fixtures.int32s(c["ids"])), "\(text.debugDescription)")
        }
        #expect(tokenizer.encode("Hello world", addEOS: true) == [1, 15043, 3186, 2])
        #expect(tokenizer.encode("") == [1])
    }

    @Test("the whole of heldout.txt (334 KB) as one text")
    func wholeFile() throws {
        let tokenizer = try Fixtures.hymba()
        let info = try #require(try Fixtures.extraCases()["whole_file"] as? [String: Any])
        let text = try String(contentsOfFile: Fixtures.path(try #require(info["path"] as? String)), encoding: .utf8)
        let ids = tokenizer.encode(text)
        #expect(ids.count == (try #require(info["count"] as? Int)))
        #expect(Array(ids.prefix(64)) == (try Fixtures.int32s(info["first"])))
        #expect(Array(ids.suffix(64)) == (try Fixtures.int32s(info["last"])))
        #expect(String(fnv1a64(ids), radix: 16).leftPadded(to: 16) == (try #require(info["fnv1a64"] as? String)))
        #expect(tokenizer.decode(ids) == text)
    }

    @Test("decode: random and hand-picked ids, invalid byte runs, specials kept and skipped")
    func decodeCases() throws {
        let tokenizer = try Fixtures.hymba()
        let list = try #require(try Fixtures.extraCases()["decode"] as? [[String: Any]])
        #expect(list.count > 100)
        for c in list {
            let ids = try Fixtures.int32s(c["ids"])
            let skip = try #require(c["skip_special"] as? Bool)
            let expected = try #require(c["text"] as? String)
            let text = tokenizer.decode(ids, skipSpecial: skip)
            #expect(scalars(text) == scalars(expected), "decode(\(ids), skipSpecial: \(skip)) = \(text.debugDescription)")
        }
    }

    @Test("a synthetic BPE reaching HF's unk paths: byte fallback with missing bytes, fuse_unk on and off")
    func edgeTokenizer() throws {
        var spec = try TokenizerImport.spec(checkpointDirectory: Fixtures.path("tokenizer-edge"))
        let cases = try #require(try Fixtures.json("tokenizer-edge/cases.json") as? [String: Any])
        #expect(spec.fuseUnk)
        for (key, fuse) in [("fuse_unk", true), ("no_fuse_unk", false)] {
            spec.fuseUnk = fuse
            let tokenizer = try Tokenizer(spec: spec)
            let list = try #require(cases[key] as? [[String: Any]])
            for c in list {
                let text = try #require(c["text"] as? String)
                #expect(tokenizer.encode(text) == (try Fixtures.int32s(c["ids"])), "\(key): \(text.debugDescription)")
            }
        }
        let tokenizer = try Tokenizer(spec: spec)
        for c in try #require(cases["decode"] as? [[String: Any]]) {
            let ids = try Fixtures.int32s(c["ids"])
            #expect(tokenizer.decode(ids, skipSpecial: false) == (try #require(c["text"] as? String)), "\(ids)")
        }
    }

    @Test("canonically equivalent pieces stay distinct (ί U+03AF is 30207, ί U+1F77 is 30873)")
    func canonicalEquivalence() throws {
        let tokenizer = try Fixtures.hymba()
        #expect(tokenizer.encode("\u{3AF}", addBOS: false) == [29871, 30207])
        #expect(tokenizer.encode("\u{1F77}", addBOS: false) == [29871, 30873])
        #expect(tokenizer.piece(for: 30207)?.unicodeScalars.map(\.value) == [0x3AF])
        #expect(tokenizer.piece(for: 30873)?.unicodeScalars.map(\.value) == [0x1F77])
        #expect(scalars(tokenizer.decode([30873])) == ["1f77"])
    }

    @Test("basic accessors")
    func accessors() throws {
        let tokenizer = try Fixtures.hymba()
        #expect(tokenizer.vocabularySize == 32001)
        #expect(tokenizer.bosID == 1 && tokenizer.eosID == 2 && tokenizer.padID == 32000 && tokenizer.unkID == 0)
        #expect(tokenizer.piece(for: 15043) == "▁Hello")
        #expect(tokenizer.piece(for: 13) == "<0x0A>")
        #expect(tokenizer.piece(for: 32000) == "[PAD]")
        #expect(tokenizer.piece(for: 32001) == nil && tokenizer.piece(for: -1) == nil)
        #expect(tokenizer.isSpecialToken(1) && tokenizer.isSpecialToken(32000) && !tokenizer.isSpecialToken(15043))
        #expect(tokenizer.decode([1, 15043, 2], skipSpecial: false) == "<s> Hello</s>")
    }
}

extension String {
    func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
