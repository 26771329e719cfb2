extension Q4Layout {
    /// The 6-bit scale and 6-bit min of sub-block `j` from a group's packed entries
    /// (entry `j` = `sc | mn << 6` at bits `[12j, 12j + 12)`, little-endian bit order).
    @inline(__always)
    public static func entry(_ scales: UnsafeRawPointer, _ j: Int) -> (sc: UInt8, mn: UInt8) {
        let bit = 12 * j
        let byte = bit >> 3
        let lo = UInt16(scales.load(fromByteOffset: byte, as: UInt8.self))
        let hi = UInt16(scales.load(fromByteOffset: byte + 1, as: UInt8.self))
        let v = (bit & 7) == 0 ? (lo | (hi & 0x0F) << 8) : (lo >> 4 | hi << 4)
        return (UInt8(v & 63), UInt8((v >> 6) & 63))
    }

    /// Stores sub-block `j`'s entry into a group's packed entries. Only the 12 bits of entry `j`
    /// change; the bytes of a group's entries must be zeroed before the first entry is stored so
    /// that the unused half byte after an odd number of entries is zero.
    @inline(__always)
    public static func setEntry(_ scales: UnsafeMutableRawPointer, _ j: Int, sc: UInt8, mn: UInt8) {
        let v = UInt16(sc & 63) | UInt16(mn & 63) << 6
        let bit = 12 * j
        let byte = bit >> 3
        let p = scales.assumingMemoryBound(to: UInt8.self)
        if (bit & 7) == 0 {
            p[byte] = UInt8(v & 0xFF)
            p[byte + 1] = (p[byte + 1] & 0xF0) | UInt8(v >> 8)
        } else {
            p[byte] = (p[byte] & 0x0F) | UInt8((v & 0x0F) << 4)
            p[byte + 1] = UInt8(v >> 4)
        }
    }
}

extension Q4Layout {
    /// One stored q4 group of `k` sub-blocks, read in place: the two f16 super-scales, the
    /// packed entries and the codes. Every q4 reader (the reference decoder and the runtime's
    /// kernels) walks a row through this, so the group layout is parsed in one place.
    @frozen
    public struct Group {
        public let d: Float
        public let dmin: Float
        /// k packed 12-bit entries (sc | mn << 6).
        public let entries: UnsafeRawPointer
        /// k × 16 bytes of 4-bit codes.
        public let codes: UnsafeRawPointer
        /// Bytes of this group: where the next one starts.
        public let byteCount: Int

        @inlinable @inline(__always)
        public init(at p: UnsafeRawPointer, subBlocks k: Int) {
            d = HalfFloat.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
            dmin = HalfFloat.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            entries = p + 4
            codes = entries + Q4Layout.scaleBytes(subBlocks: k)
            byteCount = Q4Layout.groupBytes(subBlocks: k)
        }

        /// Sub-block `j`'s effective scale and min: `x = scale·q − min`.
        @inlinable @inline(__always)
        public func scaleAndMin(_ j: Int) -> (scale: Float, min: Float) {
            let (sc, mn) = Q4Layout.entry(entries, j)
            return (d * Float(sc), dmin * Float(mn))
        }
    }
}
