import Foundation
import HymbaTokenizer
import Testing

@Suite("StreamingDecoder")
struct StreamingDecoderTests {
    /// Pushes ids one at a time, returns the pieces (flush last).
    func stream(_ tokenizer: Tokenizer, _ ids: [Int32], skipSpecial: Bool = true) -> [String] {
        var decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecial: skipSpecial)
        return ids.map { decoder.push($0) } + [decoder.flush()]
    }

    @Test("on every reference case, the streamed pieces join to the full decode (HF's text)")
    func referenceCases() throws {
        let tokenizer = try Fixtures.hymba()
        for c in try Fixtures.referenceCases() {
            let joined = stream(tokenizer, c.ids).joined()
            #expect(scalars(joined) == scalars(c.decoded), "\(c.text.debugDescription)")
        }
    }

    @Test("on random id sequences (invalid byte runs, specials), streamed == HF's decode")
    func randomCases() throws {
        let tokenizer = try Fixtures.hymba()
        for c in try #require(try Fixtures.extraCases()["decode"] as? [[String: Any]]) {
            let ids = try Fixtures.int32s(c["ids"])
            let skip = try #require(c["skip_special"] as? Bool)
            let joined = stream(tokenizer, ids, skipSpecial: skip).joined()
            #expect(scalars(joined) == scalars(try #require(c["text"] as? String)), "\(ids) skip=\(skip)")
        }
    }

    @Test("a character split over byte tokens is held until its run ends")
    func multiByteHeld() throws {
        let tokenizer = try Fixtures.hymba()
        // "Emoji: 😀 and" -> 😀 is <0xF0> <0x9F> <0x98> <0x80>.
        let ids = tokenizer.encode("Emoji: 😀 and")
        let byteIDs: [Int32] = [243, 162, 155, 131]
        let start = try #require(ids.firstIndex(of: 243))
        #expect(Array(ids[start..<(start + 4)]) == byteIDs)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var text = ""
        for id in ids[..<start] { text += decoder.push(id) }
        #expect(text == "Emoji: ")
        for id in byteIDs {
            #expect(decoder.push(id) == "")   // nothing partial is emitted
            #expect(decoder.hasPendingText)
        }
        #expect(decoder.push(ids[start + 4]) == "😀 and")
        #expect(!decoder.hasPendingText)
        #expect(decoder.flush() == "")
    }

    @Test("a run ending the sequence comes out on flush; the next sequence strips again")
    func flushAndRestart() throws {
        let tokenizer = try Fixtures.hymba()
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        #expect(decoder.push(1) == "")                      // <s> skipped
        #expect(decoder.push(15043) == "Hello")            // "▁Hello": leading space stripped
        #expect(decoder.push(3186) == " world")
        #expect(decoder.push(243) == "" && decoder.push(162) == "" && decoder.push(155) == "" && decoder.push(131) == "")
        #expect(decoder.flush() == "😀")
        #expect(decoder.push(15043) == "Hello")
        // An invalid run: the valid prefix must not have been emitted.
        #expect(decoder.push(243) == "" && decoder.push(162) == "" && decoder.push(155) == "" && decoder.push(131) == "")
        #expect(decoder.push(3 + 0xFF) == "")
        #expect(decoder.push(3186) == "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD} world")
    }

    @Test("the leading-space strip applies once, to the start of the text, as in full decode")
    func stripOnce() throws {
        let tokenizer = try Fixtures.hymba()
        // ▁ then ▁▁Hello-ish: full decode strips only the first space of the joined text.
        for ids: [Int32] in [[29871, 29871, 15043], [1, 29871, 259], [3 + 0x20, 15043], [2, 29871, 3186]] {
            let pieces = stream(tokenizer, ids)
            #expect(pieces.joined() == tokenizer.decode(ids), "\(ids)")
        }
        #expect(stream(tokenizer, [29871, 29871, 15043]) == ["", " ", " Hello", ""])
    }
}
