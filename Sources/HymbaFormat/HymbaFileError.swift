/// Why a `.hymba` file was refused. Every case names where the problem is.
public enum HymbaFileError: Error, CustomStringConvertible, Equatable {
    case tooShort(path: String, size: Int)
    case badMagic(path: String, found: [UInt8])
    case bigEndian(path: String)
    case unsupportedVersion(path: String, found: UInt32)
    case headerChecksum(path: String, expected: UInt64, found: UInt64)
    case badHeader(path: String, message: String)
    case truncated(section: String, offset: Int, needed: Int, what: String)
    case sectionChecksum(path: String, section: String, expected: UInt64, found: UInt64)
    case badMetadata(path: String, message: String)
    case badDirectory(path: String, message: String)
    case badTensor(path: String, tensor: String, message: String)
    case chunkChecksum(path: String, tensor: String, chunk: Int, offset: UInt64, expected: UInt64, found: UInt64)
    case chunkDecode(path: String, tensor: String, chunk: Int, offset: UInt64, message: String)
    case missingTensor(path: String, name: String)

    public var description: String {
        switch self {
        case let .tooShort(path, size):
            return "\(path): not a hymba model file: \(size) bytes is shorter than the \(FileLayout.headerSize)-byte header"
        case let .badMagic(path, found):
            let shown = found.map { (32...126).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            return "\(path): not a hymba model file: magic at offset 0 is \"\(shown)\", expected \"HYMBAEDG\""
        case let .bigEndian(path):
            return "\(path): written big-endian (byte-order mark reversed at offset 12); only little-endian files are supported"
        case let .unsupportedVersion(path, found):
            return "\(path): format version \(found) at offset 8 is not supported (this reader supports version \(FileLayout.version))"
        case let .headerChecksum(path, expected, found):
            return "\(path): header checksum mismatch at offset 120: stored \(hex(expected)), computed \(hex(found)) — the header is corrupt"
        case let .badHeader(path, message):
            return "\(path): invalid header: \(message)"
        case let .truncated(section, offset, needed, what):
            return "\(section): truncated at file offset \(offset): \(what) needs \(needed) more bytes"
        case let .sectionChecksum(path, section, expected, found):
            return "\(path): \(section) checksum mismatch: stored \(hex(expected)), computed \(hex(found)) — the \(section) is corrupt"
        case let .badMetadata(path, message):
            return "\(path): invalid metadata: \(message)"
        case let .badDirectory(path, message):
            return "\(path): invalid tensor directory: \(message)"
        case let .badTensor(path, tensor, message):
            return "\(path): tensor \(tensor): \(message)"
        case let .chunkChecksum(path, tensor, chunk, offset, expected, found):
            return "\(path): tensor \(tensor): chunk \(chunk) at file offset \(offset) is corrupt (checksum stored \(hex(expected)), computed \(hex(found)))"
        case let .chunkDecode(path, tensor, chunk, offset, message):
            return "\(path): tensor \(tensor): chunk \(chunk) at file offset \(offset) cannot be decoded: \(message)"
        case let .missingTensor(path, name):
            return "\(path): no tensor named \(name)"
        }
    }
}

@inline(__always) func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - s.count) + s
}
