/// xxHash64 (seed 0 unless given), the checksum of every chunk and of the file's header,
/// metadata and directory. Specification: https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md
/// It detects accidental corruption; it is not a cryptographic signature.
public struct XXHash64 {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        (acc ^ round(0, val)) &* p1 &+ p4
    }

    /// The xxHash64 of `count` bytes at `data`.
    public static func hash(_ data: UnsafeRawPointer, count: Int, seed: UInt64 = 0) -> UInt64 {
        var p = 0
        var h: UInt64
        @inline(__always) func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: data.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        @inline(__always) func u32(_ o: Int) -> UInt64 { UInt64(UInt32(littleEndian: data.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        if count >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            let limit = count - 32
            while p <= limit {
                v1 = round(v1, u64(p)); v2 = round(v2, u64(p + 8))
                v3 = round(v3, u64(p + 16)); v4 = round(v4, u64(p + 24))
                p += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1); h = merge(h, v2); h = merge(h, v3); h = merge(h, v4)
        } else {
            h = seed &+ p5
        }
        h = h &+ UInt64(count)
        while p + 8 <= count {
            h ^= round(0, u64(p))
            h = rotl(h, 27) &* p1 &+ p4
            p += 8
        }
        if p + 4 <= count {
            h ^= u32(p) &* p1
            h = rotl(h, 23) &* p2 &+ p3
            p += 4
        }
        while p < count {
            h ^= UInt64(data.load(fromByteOffset: p, as: UInt8.self)) &* p5
            h = rotl(h, 11) &* p1
            p += 1
        }
        h ^= h >> 33; h = h &* p2
        h ^= h >> 29; h = h &* p3
        h ^= h >> 32
        return h
    }

    public static func hash(_ buffer: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        guard let b = buffer.baseAddress else { return hash(UnsafeRawPointer(bitPattern: 1)!, count: 0, seed: seed) }
        return hash(b, count: buffer.count, seed: seed)
    }

    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }
}
