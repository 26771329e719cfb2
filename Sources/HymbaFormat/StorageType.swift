/// How the elements of a tensor are encoded on disk (see `formats/HYMBA-FORMAT.md`, "Storage types").
///
/// The raw values are part of the file format: never reuse or renumber them.
/// Every tensor is stored row by row: a tensor of shape `[d0, …, dk]` has `d0·…·d(k-1)` rows
/// of `dk` elements (a 1-D tensor is one row). Quantized rows are padded to whole blocks.
public enum StorageType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    /// IEEE 754 binary32, little-endian.
    case f32 = 0
    /// IEEE 754 binary16, little-endian.
    case f16 = 1
    /// bfloat16 (the upper 16 bits of a binary32), little-endian.
    case bf16 = 2
    /// Blocks of 32: a binary16 scale `d` then 32 signed bytes `q`; `x = d·q`. 8.5 bits per weight.
    case q8 = 8
    /// Sub-blocks of 32 in groups of up to 16 with 6-bit scales and mins under binary16
    /// super-scales; `x = d·sc·q − dmin·mn`. 4.4375 bits per weight for full groups.
    case q4 = 9

    public var description: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .bf16: return "bf16"
        case .q8: return "q8"
        case .q4: return "q4"
        }
    }

    public init?(name: String) {
        guard let t = StorageType.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = t
    }

    /// Elements per quantization block (0 for the float types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 0
        case .q8, .q4: return 32
        }
    }

    public var isQuantized: Bool { blockSize != 0 }

    /// Bytes that one row of `length` elements occupies in this encoding.
    public func rowBytes(length: Int) -> Int {
        switch self {
        case .f32: return 4 * length
        case .f16, .bf16: return 2 * length
        case .q8: return Q8Layout.rowBytes(length: length)
        case .q4: return Q4Layout.rowBytes(length: length)
        }
    }
}

/// Byte layout of a `q8` row: `ceil(n/32)` blocks of 34 bytes (binary16 `d`, then 32 × int8).
public enum Q8Layout {
    public static let blockElements = 32
    public static let blockBytes = 34
    public static func blocks(length: Int) -> Int { (length + blockElements - 1) / blockElements }
    public static func rowBytes(length: Int) -> Int { blocks(length: length) * blockBytes }
}

/// Byte layout of a `q4` row. The row is cut into `ceil(n/32)` sub-blocks of 32 elements (the
/// last one zero-padded); consecutive sub-blocks form groups of up to 16 (only a row's last
/// group may be shorter). A group of `k` sub-blocks is stored as
///   binary16 d, binary16 dmin,                      4 bytes
///   k packed 12-bit entries (sc | mn << 6),         ceil(12k/8) bytes, little-endian bit order
///   k × 16 bytes of 4-bit codes                     byte b of a sub-block: element b in the low
///                                                   nibble, element b+16 in the high nibble
/// and decodes as `x = d·sc·q − dmin·mn`.
public enum Q4Layout {
    public static let subBlockElements = 32
    public static let subBlocksPerGroup = 16
    public static let groupElements = subBlockElements * subBlocksPerGroup

    public static func subBlocks(length: Int) -> Int { (length + subBlockElements - 1) / subBlockElements }
    public static func scaleBytes(subBlocks k: Int) -> Int { (12 * k + 7) / 8 }
    public static func groupBytes(subBlocks k: Int) -> Int { 4 + scaleBytes(subBlocks: k) + 16 * k }

    public static func rowBytes(length: Int) -> Int {
        let n = subBlocks(length: length)
        let full = n / subBlocksPerGroup, rest = n % subBlocksPerGroup
        return full * groupBytes(subBlocks: subBlocksPerGroup) + (rest > 0 ? groupBytes(subBlocks: rest) : 0)
    }
}
