/// Row encoders and decoders for every storage type (bit layouts in `formats/HYMBA-FORMAT.md`).
/// These are the reference (scalar) implementations; the runtime's kernels consume the same
/// bytes directly.
public enum StorageCodec {
    /// Encodes `length` floats into `dst`, which has room for `type.rowBytes(length:)` bytes.
    public static func encodeRow(type: StorageType, _ src: UnsafePointer<Float>, length: Int, into dst: UnsafeMutableRawPointer) {
        switch type {
        case .f32:
            for i in 0..<length { dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<length { dst.storeBytes(of: HalfFloat.floatToF16(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<length { dst.storeBytes(of: HalfFloat.floatToBF16(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q8:
            Q8Codec.encodeRow(src, length: length, into: dst)
        case .q4:
            Q4Codec.encodeRow(src, length: length, into: dst)
        }
    }

    /// Decodes one encoded row of `length` elements into `dst`.
    public static func decodeRow(type: StorageType, _ src: UnsafeRawPointer, length: Int, into dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            for i in 0..<length { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<length { dst[i] = HalfFloat.f16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16:
            for i in 0..<length { dst[i] = HalfFloat.bf16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .q8:
            Q8Codec.decodeRow(src, length: length, into: dst)
        case .q4:
            Q4Codec.decodeRow(src, length: length, into: dst)
        }
    }
}

/// `q8`: per block of 32, `d = max|x| / 127` (binary16), `q = round(x / d)`.
public enum Q8Codec {
    public static func encodeRow(_ src: UnsafePointer<Float>, length: Int, into dst: UnsafeMutableRawPointer) {
        let nb = Q8Layout.blocks(length: length)
        for b in 0..<nb {
            let start = b * 32, end = min(length, start + 32)
            var amax: Float = 0
            for i in start..<end { amax = max(amax, abs(src[i])) }
            let dBits = HalfFloat.floatToF16(amax / 127)
            let d = HalfFloat.f16ToFloat(dBits)
            let inv: Float = d > 0 ? 1 / d : 0
            let blk = dst + b * Q8Layout.blockBytes
            blk.storeBytes(of: dBits.littleEndian, as: UInt16.self)
            for i in 0..<32 {
                var q: Int8 = 0
                if start + i < end { q = Int8(max(-127, min(127, (src[start + i] * inv).rounded(.toNearestOrEven)))) }
                blk.storeBytes(of: q, toByteOffset: 2 + i, as: Int8.self)
            }
        }
    }

    public static func decodeRow(_ src: UnsafeRawPointer, length: Int, into dst: UnsafeMutablePointer<Float>) {
        let nb = Q8Layout.blocks(length: length)
        for b in 0..<nb {
            let blk = src + b * Q8Layout.blockBytes
            let d = HalfFloat.f16ToFloat(UInt16(littleEndian: blk.loadUnaligned(as: UInt16.self)))
            let start = b * 32, end = min(length, start + 32)
            for i in start..<end { dst[i] = d * Float(blk.load(fromByteOffset: 2 + i - start, as: Int8.self)) }
        }
    }
}

/// `q4`: see `Q4Layout` for the bytes.
public enum Q4Codec {
    public static func encodeRow(_ src: UnsafePointer<Float>, length: Int, into dst: UnsafeMutableRawPointer) {
        fatalError("q4 encoder: being written")
    }

    public static func decodeRow(_ src: UnsafeRawPointer, length: Int, into dst: UnsafeMutablePointer<Float>) {
        let nsub = Q4Layout.subBlocks(length: length)
        var p = src
        var sub = 0
        while sub < nsub {
            let k = min(Q4Layout.subBlocksPerGroup, nsub - sub)
            let d = HalfFloat.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
            let dmin = HalfFloat.f16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            let scales = p + 4
            let quants = scales + Q4Layout.scaleBytes(subBlocks: k)
            for j in 0..<k {
                let (sc, mn) = Q4Layout.entry(scales, j)
                let scale = d * Float(sc), minv = dmin * Float(mn)
                let qs = quants + 16 * j
                let base = (sub + j) * 32
                for b in 0..<16 {
                    let byte = qs.load(fromByteOffset: b, as: UInt8.self)
                    if base + b < length { dst[base + b] = scale * Float(byte & 0xF) - minv }
                    if base + b + 16 < length { dst[base + b + 16] = scale * Float(byte >> 4) - minv }
                }
            }
            p += Q4Layout.groupBytes(subBlocks: k)
            sub += k
        }
    }
}

extension Q4Layout {
    /// The 6-bit scale and 6-bit min of sub-block `j` from a group's packed entries.
    @inline(__always)
    public static func entry(_ scales: UnsafeRawPointer, _ j: Int) -> (sc: UInt8, mn: UInt8) {
        let bit = 12 * j
        let byte = bit >> 3
        let lo = UInt16(scales.load(fromByteOffset: byte, as: UInt8.self))
        let hi = UInt16(scales.load(fromByteOffset: byte + 1, as: UInt8.self))
        let v = (bit & 7) == 0 ? (lo | (hi & 0x0F) << 8) : (lo >> 4 | hi << 4)
        return (UInt8(v & 63), UInt8((v >> 6) & 63))
    }

    /// Stores sub-block `j`'s entry into a group's packed entries (bytes pre-zeroed).
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
