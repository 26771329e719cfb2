/// Merge rules keyed by the adjacent id pair: open addressing with linear probing over packed
/// `(left << 32 | right)` keys. Swift's `Dictionary` hashes with SipHash; this lookup is the
/// innermost operation of BPE, so a multiplicative hash on the packed key is used instead.
struct MergeTable: Sendable {
    /// A merge found for a pair: its rank (lower merges first) and the id it produces.
    struct Rule {
        var rank: UInt32
        var result: Int32
    }

    private static let empty = UInt64.max
    private let keys: [UInt64]
    /// `rank << 32 | result`, parallel to `keys`.
    private let values: [UInt64]
    private let shift: UInt64
    private let mask: Int

    /// `results[i]` is the id produced by `merges[i]`; ranks are indices. Pairs are distinct
    /// (`TokenizerSpec.validate` guarantees it).
    init(merges: [(left: Int32, right: Int32)], results: [Int32]) {
        var capacity = 16
        while capacity < 2 * merges.count { capacity <<= 1 }
        var keys = [UInt64](repeating: Self.empty, count: capacity)
        var values = [UInt64](repeating: 0, count: capacity)
        let shift = UInt64(64 - capacity.trailingZeroBitCount)
        let mask = capacity - 1
        for (rank, m) in merges.enumerated() {
            let key = Self.pack(m.left, m.right)
            var slot = Self.slot(key, shift)
            while keys[slot] != Self.empty { slot = (slot + 1) & mask }
            keys[slot] = key
            values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: results[rank]))
        }
        self.keys = keys; self.values = values; self.shift = shift; self.mask = mask
    }

    @inline(__always) static func pack(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always) private static func slot(_ key: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The rule for `a` then `b`, if any.
    @inline(__always) func rule(_ a: Int32, _ b: Int32) -> Rule? {
        let key = Self.pack(a, b)
        return keys.withUnsafeBufferPointer { k in
            var slot = Self.slot(key, shift)
            while true {
                let found = k[slot]
                if found == key {
                    let v = values[slot]
                    return Rule(rank: UInt32(truncatingIfNeeded: v >> 32), result: Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
                }
                if found == Self.empty { return nil }
                slot = (slot + 1) & mask
            }
        }
    }

    /// The rank of merging `a` then `b`, or `UInt32.max` when no rule exists.
    @inline(__always) func rank(_ a: Int32, _ b: Int32) -> UInt32 {
        rule(a, b)?.rank ?? UInt32.max
    }
}
