/// Text from outside the program (prompt files, stdin, command-line arguments, C strings) as a
/// `String`, only when it is valid UTF-8. Decoding with repair (`String(decoding:as:)`) would
/// silently turn each bad byte into U+FFFD and run the model on text the user never gave.
public enum UTF8Text {
    /// The text of `bytes`, or `InvalidUTF8Error` naming `source` and the first bad byte.
    public static func decode(_ bytes: some Collection<UInt8>, source: String) throws -> String {
        if let offset = firstInvalidOffset(bytes) {
            let i = bytes.index(bytes.startIndex, offsetBy: offset)
            throw InvalidUTF8Error(source: source, offset: offset, byte: bytes[i])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The byte offset of the first byte that does not start a valid UTF-8 sequence (overlong
    /// forms, surrogates, code points past U+10FFFF and cut-off sequences included), or nil.
    public static func firstInvalidOffset(_ bytes: some Collection<UInt8>) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}

/// Text that is not valid UTF-8: where it came from and the first bad byte.
public struct InvalidUTF8Error: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var offset: Int
    public var byte: UInt8

    public init(source: String, offset: Int, byte: UInt8) {
        self.source = source
        self.offset = offset
        self.byte = byte
    }

    public var description: String {
        "\(source) is not valid UTF-8: byte 0x\(String(byte, radix: 16, uppercase: true)) at offset \(offset) does not start a valid sequence (save the text as UTF-8)"
    }
}
