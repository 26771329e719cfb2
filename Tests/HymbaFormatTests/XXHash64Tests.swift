import Testing
import HymbaFormat

/// The XXH64 test vectors of formats/HYMBA-FORMAT.md §2: input byte i is i mod 251, seed 0.
/// The expected values come from the `xxhash` package on PyPI (the reference C library's
/// binding), not from our implementation; formats/read_hymba.py's pure-Python XXH64 gives
/// the same values.
@Suite struct XXHash64Tests {
    static let vectors: [(length: Int, hash: UInt64)] = [
        (0, 0xEF46DB3751D8E999), (1, 0xE934A84ADB052768), (3, 0xE5C7BB4533BC65DD),
        (4, 0xFFCED8604453CC1E), (8, 0x884A173614B81B8D), (14, 0x5CDA8B69BBFC1D45),
        (31, 0xC346D2B59B4D8EE1), (32, 0xCBF59C5116FF32B4), (33, 0x0C535D1ACAFB8EAD),
        (64, 0xF7C67301DB6713F0), (100, 0x6AC1E58032166597), (255, 0x566D96B832B967C1),
        (1000, 0xF306F04AA88B54D3),
    ]

    @Test(arguments: vectors.indices)
    func matchesTheReferenceImplementation(index: Int) {
        let (length, expected) = Self.vectors[index]
        let bytes = (0..<length).map { UInt8($0 % 251) }
        let found = bytes.withUnsafeBytes { XXHash64.hash($0) }
        #expect(found == expected, "length \(length): \(String(found, radix: 16))")
    }
}
