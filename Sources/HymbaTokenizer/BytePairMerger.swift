/// Applies BPE merges to one word's symbols exactly as Hugging Face `tokenizers` does
/// (`models/bpe/word.rs`, `merge_all` without dropout): repeatedly merge the adjacent pair with
/// the lowest rank, the leftmost one on ties, until no adjacent pair has a rule.
///
/// Short words use a direct scan (quadratic, but with tiny constants); long words (a page of
/// CJK text has no split points) use HF's own algorithm: a min-heap of (rank, position) over a
/// linked list of symbols, stale entries skipped when popped. Both give the same result: the
/// heap always holds an entry for every live pair, so it pops the minimum (rank, position)
/// over live pairs, which is what the scan finds.
struct BytePairMerger {
    /// Words longer than this go through the heap.
    static let scanLimit = 24

    private var packed: [UInt64] = []   // scan: rank << 32 | result per adjacent pair
    private var next: [Int32] = []      // heap: linked list over symbol slots
    private var prev: [Int32] = []
    private var heap: [UInt64] = []     // heap: rank << 32 | left slot

    /// Merges `symbols` (consumed: left in an unspecified state) and appends the result to `out`.
    mutating func merge(_ symbols: inout [Int32], table: MergeTable, into out: inout [Int32]) {
        let n = symbols.count
        if n <= 1 {
            out.append(contentsOf: symbols)
        } else if n <= Self.scanLimit {
            scanMerge(&symbols, table: table, into: &out)
        } else {
            heapMerge(&symbols, table: table, into: &out)
        }
    }

    @inline(__always) private static func pairKey(_ table: MergeTable, _ a: Int32, _ b: Int32) -> UInt64 {
        guard let rule = table.rule(a, b) else { return UInt64.max }
        return UInt64(rule.rank) << 32 | UInt64(UInt32(bitPattern: rule.result))
    }

    private mutating func scanMerge(_ symbols: inout [Int32], table: MergeTable, into out: inout [Int32]) {
        var n = symbols.count
        packed.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) { packed.append(Self.pairKey(table, symbols[i], symbols[i + 1])) }
        symbols.withUnsafeMutableBufferPointer { s in
            packed.withUnsafeMutableBufferPointer { p in
                while n > 1 {
                    // Ranks are unique per pair, so comparing rank << 32 | result with `<`
                    // finds the lowest rank and, among equal ones, the leftmost position.
                    var best = 0
                    var bestKey = p[0]
                    for i in 1..<(n - 1) where p[i] < bestKey { best = i; bestKey = p[i] }
                    if bestKey == UInt64.max { break }
                    s[best] = Int32(bitPattern: UInt32(truncatingIfNeeded: bestKey))
                    // Drop symbol best+1 and pair best+1.
                    var j = best + 1
                    while j < n - 1 { s[j] = s[j + 1]; j += 1 }
                    j = best + 1
                    while j < n - 2 { p[j] = p[j + 1]; j += 1 }
                    n -= 1
                    if best > 0 { p[best - 1] = Self.pairKey(table, s[best - 1], s[best]) }
                    if best < n - 1 { p[best] = Self.pairKey(table, s[best], s[best + 1]) }
                }
            }
        }
        out.append(contentsOf: symbols[0..<n])
    }

    private mutating func heapMerge(_ symbols: inout [Int32], table: MergeTable, into out: inout [Int32]) {
        let n = symbols.count
        next.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        for i in 0..<n { next.append(Int32(i + 1)); prev.append(Int32(i - 1)) }
        for i in 0..<(n - 1) {
            if let rule = table.rule(symbols[i], symbols[i + 1]) { heap.append(UInt64(rule.rank) << 32 | UInt64(i)) }
        }
        // Heapify (min-heap).
        if heap.count > 1 {
            var i = heap.count / 2 - 1
            while i >= 0 { siftDown(i); i -= 1 }
        }
        while let top = popMin() {
            let pos = Int(truncatingIfNeeded: top & 0xFFFF_FFFF)
            let rank = UInt32(truncatingIfNeeded: top >> 32)
            let left = symbols[pos]
            if left < 0 { continue }                          // merged into its left neighbour
            let right = Int(next[pos])
            if right >= n { continue }                        // last symbol
            guard let rule = table.rule(left, symbols[right]), rule.rank == rank else { continue }  // stale
            symbols[pos] = rule.result
            symbols[right] = -1
            let after = Int(next[right])
            next[pos] = Int32(after)
            if after < n { prev[after] = Int32(pos) }
            let before = Int(prev[pos])
            if before >= 0, let r = table.rule(symbols[before], rule.result) { push(UInt64(r.rank) << 32 | UInt64(before)) }
            if after < n, let r = table.rule(rule.result, symbols[after]) { push(UInt64(r.rank) << 32 | UInt64(pos)) }
        }
        var i = 0
        while i < n { out.append(symbols[i]); i = Int(next[i]) }
    }

    private mutating func push(_ x: UInt64) {
        heap.append(x)
        heap.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                if h[parent] <= x { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = x
        }
    }

    private mutating func popMin() -> UInt64? {
        guard let last = heap.popLast() else { return nil }
        if heap.isEmpty { return last }
        let top = heap[0]
        heap[0] = last
        siftDown(0)
        return top
    }

    private mutating func siftDown(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { h in
            let count = h.count
            let x = h[start]
            var i = start
            while true {
                var child = 2 * i + 1
                if child >= count { break }
                if child + 1 < count && h[child + 1] < h[child] { child += 1 }
                if h[child] >= x { break }
                h[i] = h[child]
                i = child
            }
            h[i] = x
        }
    }
}
