import Foundation
import HymbaConverter
import HymbaFormat
import HymbaTokenizer

/// Paths and shared, lazily built tokenizers for the tokenizer tests.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { directory.appendingPathComponent(relative).path }

    /// A fixture parsed with `JSONSerialization`, U+FEFF escaped first (see
    /// `TokenizerSpec.escapingByteOrderMarks`: some cases start with U+FEFF).
    static func json(_ relative: String) throws -> Any {
        let data = try Data(contentsOf: directory.appendingPathComponent(relative))
        return try JSONSerialization.jsonObject(with: TokenizerSpec.escapingByteOrderMarks(in: data))
    }

    /// Hymba's tokenizer, imported from the tiny-hymba checkpoint (the real Hymba files).
    private static let hymbaResult = Result { () throws -> (TokenizerSpec, Tokenizer) in
        let spec = try TokenizerImport.spec(checkpointDirectory: path("tiny-hymba"))
        return (spec, try Tokenizer(spec: spec))
    }
    static func hymbaSpec() throws -> TokenizerSpec { try hymbaResult.get().0 }
    static func hymba() throws -> Tokenizer { try hymbaResult.get().1 }

    /// `[{text, ids, decoded}]` of tokenizer-cases.json.
    static func referenceCases() throws -> [(text: String, ids: [Int32], decoded: String)] {
        let list = try #require(try json("tokenizer-cases.json") as? [[String: Any]])
        return try list.map { c in
            (try #require(c["text"] as? String), try int32s(c["ids"]), try #require(c["decoded"] as? String))
        }
    }

    /// tokenizer-extra-cases.json (see tools/make_tokenizer_fixtures.py).
    static func extraCases() throws -> [String: Any] {
        try #require(try json("tokenizer-extra-cases.json") as? [String: Any])
    }

    static func int32s(_ value: Any?) throws -> [Int32] {
        let ints = try #require(value as? [Int])
        return ints.map { Int32($0) }
    }
}

import Testing

/// Scalar values of a string, to show exact differences in failure messages.
func scalars(_ s: String) -> [String] { s.unicodeScalars.map { String($0.value, radix: 16) } }

/// FNV-1a 64 over ids as little-endian Int32 (as tools/make_tokenizer_fixtures.py computes it).
func fnv1a64(_ ids: [Int32]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for id in ids {
        withUnsafeBytes(of: id.littleEndian) { bytes in
            for b in bytes { h ^= UInt64(b); h = h &* 0x100_0000_01B3 }
        }
    }
    return h
}
