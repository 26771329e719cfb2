import HymbaKernels
import HymbaFormat

/// Attention of one query position over a layer's cache (MODEL.md 2a): GQA (query head h reads
/// key/value head h / (H/Hkv)), scores q·k/sqrt(dk), softmax over the allowed positions,
/// weighted sum of values. Allowed key positions p' for a query at p: p' ≤ p and (global, or
/// p − p' ≤ W, or p' < M). Keys in the cache are already rotated.
///
/// The query heads that share a key/value head are served by one pass over its cache: each
/// cached key and value is widened to fp32 once and used by every head of the group (decoding
/// reads the cache once per layer instead of once per query head).
///
/// f16 entries are widened a pair of halves at a time (the two halves of a 32-bit lane), which
/// yields the even and the odd elements of each 32-element piece as two vectors: the queries are
/// arranged in that order once per call, the values accumulated in it and put back in natural
/// order at the end (`PairOrder`). The meta positions are f32 and use the natural order.
///
/// Prefill attends `blockRows` consecutive query positions together (`attendRows`): each
/// regular key and value is then widened once for every row and head of the group.
public enum Attention {
    /// Query positions `attendRows` serves in one pass over the cache.
    @inlinable public static var blockRows: Int { 4 }

    /// Per-thread scratch floats for `attend` and `attendRows`: the scores of every head of a
    /// group for `blockRows` rows over the allowed positions, plus the arranged queries,
    /// accumulators and one widened key/value.
    @inline(__always)
    @inlinable public static func scratchFloats(groupSize: Int, positions: Int, keyDim dk: Int, valueDim dv: Int) -> Int {
        blockRows * groupSize * (positions + dk + dv) + dk + dv + 64
    }

    /// `q`: H·dk (rotated); `out`: H·dv. `heads` is a range of query heads (a thread pool splits
    /// the heads; consecutive heads of one group are processed together). `window` is nil for a
    /// global layer. `scratch` holds `scratchFloats(...)` with `positions` ≥ the allowed count.
    @inline(__always)
    @inlinable public static func attend<V: VectorUnit>(q: UnsafePointer<Float>, cache: AttentionCache, position p: Int, window: Int?,
                               queryHeads H: Int, heads: Range<Int>,
                               scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, vectors: V.Type) {
        attendRows(q: q, ldq: 0, rows: 1, cache: cache, firstPosition: p, window: window, queryHeads: H, heads: heads,
                   scratch: scratch, out: out, ldo: 0, vectors: V.self)
    }

    /// `rows` (1…`blockRows`) consecutive query positions p0 ..< p0 + rows at once: row r's
    /// queries at `q + r·ldq`, its output at `out + r·ldo`. Rows past the first must be regular
    /// positions (p0 ≥ M: they all see every meta slot); each row attends to exactly its own
    /// allowed positions (the others' are masked out of its softmax), with the numbers of
    /// `attend` up to summation order.
    @inline(never)
    @inlinable public static func attendRows<V: VectorUnit>(q: UnsafePointer<Float>, ldq: Int, rows R: Int, cache: AttentionCache, firstPosition p0: Int,
                                   window: Int?, queryHeads H: Int, heads: Range<Int>,
                                   scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldo: Int, vectors: V.Type) {
        precondition(R >= 1 && R <= blockRows && (R == 1 || p0 >= cache.metaSlots), "attention rows \(R) at position \(p0)")
        let groupSize = H / cache.kvHeads
        // The union of the rows' allowed positions: the last row's, reaching back as far as the
        // first row's window does.
        let runs = AllowedRuns(cache: cache, position: p0 + R - 1, window: window.map { $0 + R - 1 })
        var h = heads.lowerBound
        while h < heads.upperBound {
            let g = h / groupSize
            let end = min(heads.upperBound, (g + 1) * groupSize)
            attendGroup(q: q, ldq: ldq, rows: R, firstPosition: p0, window: window, cache: cache, group: g, heads: h..<end,
                        runs: runs, scratch: scratch, out: out, ldo: ldo, vectors: V.self)
            h = end
        }
    }

    /// The allowed key positions as at most three runs of consecutive slots: the meta slots,
    /// then the regular ones (two runs when they wrap around the ring).
    public struct AllowedRuns {
        public var meta: Range<Int>
        public var first: Range<Int>
        public var second: Range<Int>
        @inlinable public var total: Int { meta.count + first.count + second.count }
        /// The regular slots in position order.
        @inlinable public var regular: Slots { Slots(first: first, second: second) }

        /// Two slot ranges one after the other (no allocation, unlike joining an array).
        public struct Slots: Sequence, IteratorProtocol {
            public var first: Range<Int>
            public var second: Range<Int>
            @inlinable @inline(__always)
            public init(first: Range<Int>, second: Range<Int>) {
                self.first = first
                self.second = second
            }
            @inline(__always)
            @inlinable public mutating func next() -> Int? { first.popFirst() ?? second.popFirst() }
        }

        @inlinable public init(cache: AttentionCache, position p: Int, window: Int?) {
            let M = cache.metaSlots
            meta = 0..<min(M, p + 1)
            first = 0..<0
            second = 0..<0
            guard p >= M else { return }
            let lo = window.map { max(M, p - $0) } ?? M
            let count = p - lo + 1
            precondition(count <= cache.regularSlots, "attention at position \(p) needs \(count) cached positions, the cache holds \(cache.regularSlots)")
            let start = cache.slot(lo)
            let untilEnd = cache.slots - start
            if count <= untilEnd {
                first = start..<(start + count)
            } else {
                first = start..<cache.slots
                second = M..<(M + count - untilEnd)
            }
        }
    }

    @inline(__always)
    @inlinable public static func attendGroup<V: VectorUnit>(q: UnsafePointer<Float>, ldq: Int, rows R: Int, firstPosition p0: Int, window: Int?,
                                    cache: AttentionCache, group g: Int, heads: Range<Int>, runs: AllowedRuns,
                                    scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldo: Int, vectors: V.Type) {
        let dk = cache.keyDim, dv = cache.valueDim, M = cache.metaSlots
        let nh = heads.count, span = runs.total, queries = R * nh
        let scale = 1 / Float(dk).squareRoot()
        let pairs = cache.widensInPairOrder
        // Scratch: scores [R·nh, span] | arranged queries [R·nh, dk] | value sums [R·nh, dv] | key | value.
        // Query (r, i) is row r's head heads.lowerBound + i, at index r·nh + i.
        let scores = scratch
        let qa = scores + queries * span
        let acc = qa + queries * dk
        let kbuf = acc + queries * dv
        let vbuf = kbuf + dk
        @inline(__always) func query(_ r: Int, _ i: Int) -> UnsafePointer<Float> { q + r * ldq + (heads.lowerBound + i) * dk }
        @inline(__always) func output(_ r: Int, _ i: Int) -> UnsafeMutablePointer<Float> { out + r * ldo + (heads.lowerBound + i) * dv }

        // Score entry j ≥ meta is regular position unionLow + j − meta of the union. Row r (at
        // p = p0 + r) sees the entries from its window's start (M for a global layer) up to
        // itself; none for a meta row (p < M).
        let metaCount = runs.meta.count
        let unionLow = p0 + R - (span - metaCount)
        @inline(__always) func visible(_ r: Int) -> Range<Int> {
            let p = p0 + r
            let low = metaCount + max(0, (window.map { max(M, p - $0) } ?? M) - unionLow)
            return low..<max(low, metaCount + p + 1 - unionLow)
        }

        // Scores: each key widened once, dotted with every query of the block that may see it
        // (the others get −∞: no weight after the softmax).
        if V.hasScoresF16Keys64 && dk == 64 && cache.element == .f16 {
            V.scoresF16Keys64(
                queries: queries, perRow: nh, query: { query($0 / nh, $0 % nh) },
                metaKeys: cache.metaKeys + g * M * dk, metaCount: metaCount,
                regularKeys: cache.storedKeys(head: g), slots: runs.regular,
                visible: visible, scale: scale, scores: scores, span: span)
        } else {
            // Queries in the order the widened keys come in.
            for r in 0..<R {
                for i in 0..<nh {
                    let qh = query(r, i), dst = qa + (r * nh + i) * dk
                    if pairs { PairOrder.arrange(qh, dk, into: dst) } else { dst.update(from: qh, count: dk) }
                }
            }
            var j = 0
            for s in runs.meta {
                let k = cache.metaKeys + (g * M + s) * dk
                if dk == 64 {
                    let key = Vector64(k)
                    for r in 0..<R { for i in 0..<nh { scores[(r * nh + i) * span + j] = key.dot(query(r, i)) * scale } }
                } else {
                    for r in 0..<R { for i in 0..<nh { scores[(r * nh + i) * span + j] = dotF32(k, query(r, i), dk) * scale } }
                }
                j += 1
            }
            for s in runs.regular {
                let k = cache.widenKey(head: g, slot: s, into: kbuf, vectors: V.self)
                for r in 0..<R {
                    let row = scores + r * nh * span + j
                    if !visible(r).contains(j) {
                        for i in 0..<nh { row[i * span] = -.infinity }
                    } else if dk == 64 {
                        let key = Vector64(k)
                        for i in 0..<nh { row[i * span] = key.dot(qa + (r * nh + i) * dk) * scale }
                    } else {
                        for i in 0..<nh { row[i * span] = dotF32(k, qa + (r * nh + i) * dk, dk) * scale }
                    }
                }
                j += 1
            }
        }
        for x in 0..<queries { softmax(scores + x * span, span, vectors: V.self) }

        // An f16 or f32 cache: the value sums stay in registers.
        if dv % 64 == 0 && cache.element != .q8 {
            valuesInRegisters(scores: scores, span: span, queries: queries, perRow: nh, cache: cache, group: g, runs: runs,
                              pairSums: acc, out: output(0, 0), ldo: ldo, vectors: V.self)
            return
        }

        // Values: the meta ones straight into `out` (natural order), the regular ones into
        // `acc` (the widened order), which is then added in natural order.
        for r in 0..<R {
            for i in 0..<nh {
                output(r, i).initialize(repeating: 0, count: dv)
                (acc + (r * nh + i) * dv).initialize(repeating: 0, count: dv)
            }
        }
        // The meta values are fp32 and contiguous: one query at a time, its sum in registers
        // (each query reads them all).
        let metaValues = cache.metaValues + g * M * dv
        if dv % 64 == 0 {
            for r in 0..<R {
                for i in 0..<nh {
                    let w = scores + (r * nh + i) * span
                    for part in stride(from: 0, to: dv, by: 64) {
                        var sum = Vector64()
                        var v = UnsafeRawPointer(metaValues + part)
                        for jj in 0..<runs.meta.count {
                            sum.add(w[jj], v)
                            v += 4 * dv
                        }
                        sum.add(to: output(r, i) + part)
                    }
                }
            }
        } else {
            for (jj, s) in runs.meta.enumerated() {
                for x in 0..<queries { axpyF32(scores[x * span + jj], metaValues + s * dv, output(x / nh, x % nh), dv) }
            }
        }
        var j = runs.meta.count
        for s in runs.regular {
            let v = cache.widenValue(head: g, slot: s, into: vbuf, vectors: V.self)
            if dv % 64 == 0 {
                for part in stride(from: 0, to: dv, by: 64) {
                    let value = Vector64(v + part)
                    for x in 0..<queries where scores[x * span + j] != 0 {
                        value.scaled(scores[x * span + j], addedTo: acc + x * dv + part)
                    }
                }
            } else {
                for x in 0..<queries where scores[x * span + j] != 0 { axpyF32(scores[x * span + j], v, acc + x * dv, dv) }
            }
            j += 1
        }
        for x in 0..<queries {
            let oh = output(x / nh, x % nh)
            if pairs { PairOrder.addRestoring(acc + x * dv, dv, into: oh) } else { Norms.add(oh, acc + x * dv, dv) }
        }
    }

    /// The weighted sums of values for `queries` queries (scores already softmaxed, query x's
    /// at `scores + x·span`; query x = r·perRow + i is row r's head i, its sums to
    /// `out + r·ldo + i·dv`, overwritten), for an f16 or f32 cache and dv a multiple of 64.
    /// Each 64-wide part of the sums of up to four queries is kept in registers while the
    /// positions go by, so a value is read once per four queries and no partial sum goes
    /// through memory (the general loop below reads and writes every query's sums for every
    /// position). The sums are added in position order, as there. f16 values are widened in
    /// `PairOrder`: their sums go through `pairSums` (4·64 floats, or dv·queries if fewer).
    @inline(__always)
    @inlinable public static func valuesInRegisters<V: VectorUnit>(scores: UnsafePointer<Float>, span: Int, queries: Int, perRow nh: Int,
                                          cache: AttentionCache, group g: Int, runs: AllowedRuns,
                                          pairSums: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldo: Int,
                                          vectors: V.Type) {
        let dv = cache.valueDim, M = cache.metaSlots
        let metaValues = UnsafeRawPointer(cache.metaValues + g * M * dv)
        let halves = cache.widensInPairOrder, elementBytes = cache.elementBytes
        let regularValues = cache.storedValues(head: g)
        @inline(__always) func output(_ x: Int) -> UnsafeMutablePointer<Float> { out + (x / nh) * ldo + (x % nh) * dv }
        var first = 0
        while first < queries {
            let count = min(4, queries - first)
            let w = scores + first * span
            let o0 = output(first), o1 = output(first + min(1, count - 1))
            let o2 = output(first + min(2, count - 1)), o3 = output(first + min(3, count - 1))
            for part in stride(from: 0, to: dv, by: 64) {
                // The meta positions (f32, natural order), straight into the outputs.
                var sums = FourSums(count: count)
                var v = metaValues + 4 * part
                for j in 0..<runs.meta.count {
                    sums.add(Vector64(v.assumingMemoryBound(to: Float.self)), weights: w, span: span, at: j)
                    v += 4 * dv
                }
                sums.write(o0 + part, o1 + part, o2 + part, o3 + part, adding: false)
                // The regular positions.
                sums = FourSums(count: count)
                var j = runs.meta.count
                for s in runs.regular {
                    let row = regularValues.row(s) + elementBytes * part
                    let value: Vector64
                    if halves {
                        let (e0, o0) = PairOrder.widen(row, vectors: V.self), (e1, o1) = PairOrder.widen(row + 64, vectors: V.self)
                        value = Vector64(e0, o0, e1, o1)
                    } else {
                        value = Vector64(row.assumingMemoryBound(to: Float.self))
                    }
                    sums.add(value, weights: w, span: span, at: j)
                    j += 1
                }
                if halves {
                    sums.write(pairSums, pairSums + 64, pairSums + 128, pairSums + 192, adding: false)
                    PairOrder.addRestoring(pairSums, 64, into: o0 + part)
                    if count > 1 { PairOrder.addRestoring(pairSums + 64, 64, into: o1 + part) }
                    if count > 2 { PairOrder.addRestoring(pairSums + 128, 64, into: o2 + part) }
                    if count > 3 { PairOrder.addRestoring(pairSums + 192, 64, into: o3 + part) }
                } else {
                    sums.write(o0 + part, o1 + part, o2 + part, o3 + part, adding: true)
                }
            }
            first += count
        }
    }

    /// The 64-wide partial sums of up to four queries (`count`), in registers.
    public struct FourSums {
        public let count: Int
        public var s0 = Vector64(), s1 = Vector64(), s2 = Vector64(), s3 = Vector64()

        @inline(__always)
        @inlinable public init(count: Int) { self.count = count }

        /// Query i's sum += its weight at position j (`weights + i·span + j`) × v.
        @inline(__always)
        @inlinable public mutating func add(_ v: Vector64, weights w: UnsafePointer<Float>, span: Int, at j: Int) {
            s0.add(w[j], v)
            if count > 1 { s1.add(w[span + j], v) }
            if count > 2 { s2.add(w[2 * span + j], v) }
            if count > 3 { s3.add(w[3 * span + j], v) }
        }

        /// Query i's sum to y_i, or added to it (`adding`); the pointers past `count` are not used.
        @inline(__always)
        @inlinable public func write(_ y0: UnsafeMutablePointer<Float>, _ y1: UnsafeMutablePointer<Float>,
                   _ y2: UnsafeMutablePointer<Float>, _ y3: UnsafeMutablePointer<Float>, adding: Bool) {
            @inline(__always) func put(_ v: Vector64, _ y: UnsafeMutablePointer<Float>) {
                if adding { v.add(to: y) } else { v.store(to: y) }
            }
            put(s0, y0)
            if count > 1 { put(s1, y1) }
            if count > 2 { put(s2, y2) }
            if count > 3 { put(s3, y3) }
        }
    }

    /// 64 floats in four registers: the key head size of every Hymba model (values: 128, two
    /// of these), for which the attention loops are unrolled (the generic loops spent more on loop control and bounds
    /// checks than on arithmetic at this length).
    public struct Vector64 {
        public var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>(), d = SIMD16<Float>()

        @inlinable public init() {}

        @inline(__always)
        @inlinable public init(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>) {
            self.a = a; self.b = b; self.c = c; self.d = d
        }

        @inline(__always)
        @inlinable public init(_ p: UnsafePointer<Float>) {
            let r = UnsafeRawPointer(p)
            a = r.load(unalignedAt: 0, as: SIMD16<Float>.self)
            b = r.load(unalignedAt: 64, as: SIMD16<Float>.self)
            c = r.load(unalignedAt: 128, as: SIMD16<Float>.self)
            d = r.load(unalignedAt: 192, as: SIMD16<Float>.self)
        }

        /// Σ self·x over the 64 floats at x.
        @inline(__always)
        @inlinable public func dot(_ x: UnsafePointer<Float>) -> Float {
            let r = UnsafeRawPointer(x)
            let s0 = multiplyAdd(c, r.load(unalignedAt: 128, as: SIMD16<Float>.self), a * r.load(unalignedAt: 0, as: SIMD16<Float>.self))
            let s1 = multiplyAdd(d, r.load(unalignedAt: 192, as: SIMD16<Float>.self), b * r.load(unalignedAt: 64, as: SIMD16<Float>.self))
            return horizontalSum(s0 + s1)
        }

        /// self += w·v (64 floats at v).
        @inline(__always)
        @inlinable public mutating func add(_ w: Float, _ v: UnsafeRawPointer) {
            let s = SIMD16<Float>(repeating: w)
            a = multiplyAdd(s, v.load(unalignedAt: 0, as: SIMD16<Float>.self), a)
            b = multiplyAdd(s, v.load(unalignedAt: 64, as: SIMD16<Float>.self), b)
            c = multiplyAdd(s, v.load(unalignedAt: 128, as: SIMD16<Float>.self), c)
            d = multiplyAdd(s, v.load(unalignedAt: 192, as: SIMD16<Float>.self), d)
        }

        /// self += w·v.
        @inline(__always)
        @inlinable public mutating func add(_ w: Float, _ v: Vector64) {
            let s = SIMD16<Float>(repeating: w)
            a = multiplyAdd(s, v.a, a)
            b = multiplyAdd(s, v.b, b)
            c = multiplyAdd(s, v.c, c)
            d = multiplyAdd(s, v.d, d)
        }

        /// The 64 floats to y.
        @inline(__always)
        @inlinable public func store(to y: UnsafeMutablePointer<Float>) {
            let r = UnsafeMutableRawPointer(y)
            r.storeBytes(of: a, as: SIMD16<Float>.self)
            r.storeBytes(of: b, toByteOffset: 64, as: SIMD16<Float>.self)
            r.storeBytes(of: c, toByteOffset: 128, as: SIMD16<Float>.self)
            r.storeBytes(of: d, toByteOffset: 192, as: SIMD16<Float>.self)
        }

        /// y += self (64 floats at y).
        @inline(__always)
        @inlinable public func add(to y: UnsafeMutablePointer<Float>) {
            let r = UnsafeMutableRawPointer(y)
            r.storeBytes(of: r.load(unalignedAt: 0, as: SIMD16<Float>.self) + a, as: SIMD16<Float>.self)
            r.storeBytes(of: r.load(unalignedAt: 64, as: SIMD16<Float>.self) + b, toByteOffset: 64, as: SIMD16<Float>.self)
            r.storeBytes(of: r.load(unalignedAt: 128, as: SIMD16<Float>.self) + c, toByteOffset: 128, as: SIMD16<Float>.self)
            r.storeBytes(of: r.load(unalignedAt: 192, as: SIMD16<Float>.self) + d, toByteOffset: 192, as: SIMD16<Float>.self)
        }

        /// y += w·self (64 floats at y).
        @inline(__always)
        @inlinable public func scaled(_ w: Float, addedTo y: UnsafeMutablePointer<Float>) {
            let r = UnsafeMutableRawPointer(y), s = SIMD16<Float>(repeating: w)
            r.storeBytes(of: multiplyAdd(s, a, r.load(unalignedAt: 0, as: SIMD16<Float>.self)), as: SIMD16<Float>.self)
            r.storeBytes(of: multiplyAdd(s, b, r.load(unalignedAt: 64, as: SIMD16<Float>.self)), toByteOffset: 64, as: SIMD16<Float>.self)
            r.storeBytes(of: multiplyAdd(s, c, r.load(unalignedAt: 128, as: SIMD16<Float>.self)), toByteOffset: 128, as: SIMD16<Float>.self)
            r.storeBytes(of: multiplyAdd(s, d, r.load(unalignedAt: 192, as: SIMD16<Float>.self)), toByteOffset: 192, as: SIMD16<Float>.self)
        }
    }

    /// In-place softmax of n scores (max subtracted first).
    @inline(never)
    @inlinable public static func softmax<V: VectorUnit>(_ x: UnsafeMutablePointer<Float>, _ n: Int, vectors: V.Type) {
        let xr = UnsafeMutableRawPointer(x)
        var mv = SIMD16<Float>(repeating: -.infinity)
        var i0 = 0
        while i0 + 16 <= n {
            mv = lanewiseMax(mv, xr.load(unalignedAt: 4 * i0, as: SIMD16<Float>.self))
            i0 += 16
        }
        var m = horizontalMax(mv)
        while i0 < n { m = max(m, x[i0]); i0 += 1 }
        var sum: Float = 0
        var i = 0
        var sv = SIMD16<Float>()
        while i + 16 <= n {
            let e = V.exp(xr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self) - m)
            xr.storeBytes(of: e, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            sv += e
            i += 16
        }
        sum = horizontalSum(sv)
        // The last (< 16) scores through one more vector exp, not one each. They are moved in
        // and out whole (`VectorUnit.load(_:count:)`): filling the vector lane by lane compiled to a
        // compare, a masked broadcast and a stack round trip per score, and nearly every span
        // has such a tail.
        let rest = n - i
        if rest > 0 {
            let e = V.exp(V.load(x + i, count: rest) - m)
            V.store(e, to: x + i, count: rest)
            for k in 0..<rest { sum += x[i + k] }
        }
        let inv = 1 / sum
        var k = 0
        while k + 16 <= n {
            xr.storeBytes(of: xr.load(unalignedAt: 4 * k, as: SIMD16<Float>.self) * inv, toByteOffset: 4 * k, as: SIMD16<Float>.self)
            k += 16
        }
        while k < n { x[k] *= inv; k += 1 }
    }

    @inline(__always)
    @inlinable public static func dotF32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        Dot.f32(UnsafeRawPointer(a), b, n)
    }

    /// y += a·v over n floats.
    @inline(__always)
    @inlinable public static func axpyF32(_ a: Float, _ v: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let yr = UnsafeMutableRawPointer(y), vr = UnsafeRawPointer(v)
        let av = SIMD16<Float>(repeating: a)
        var i = 0
        while i + 16 <= n {
            let s = multiplyAdd(av, vr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self), yr.load(unalignedAt: 4 * i, as: SIMD16<Float>.self))
            yr.storeBytes(of: s, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { y[i] += a * v[i]; i += 1 }
    }
}

/// The element order of widened f16 vectors: within each full 32-element piece, the even
/// elements then the odd ones (what splitting 32-bit lanes into their two halves gives);
/// elements past the last full piece stay in place.
public enum PairOrder {
    /// `x` (natural order, n floats) → `out` in pair order.
    @inline(__always)
    @inlinable public static func arrange(_ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        var base = 0
        while base + 32 <= n {
            for k in 0..<16 {
                out[base + k] = x[base + 2 * k]
                out[base + 16 + k] = x[base + 2 * k + 1]
            }
            base += 32
        }
        while base < n { out[base] = x[base]; base += 1 }
    }

    /// y (natural order) += x (pair order), n floats.
    @inline(__always)
    @inlinable public static func addRestoring(_ x: UnsafePointer<Float>, _ n: Int, into y: UnsafeMutablePointer<Float>) {
        var base = 0
        while base + 32 <= n {
            for k in 0..<16 {
                y[base + 2 * k] += x[base + k]
                y[base + 2 * k + 1] += x[base + 16 + k]
            }
            base += 32
        }
        while base < n { y[base] += x[base]; base += 1 }
    }

    /// 32 f16 values (64 bytes at `src`) → two fp32 vectors: the even elements, the odd ones.
    @inline(__always)
    @inlinable public static func widen<V: VectorUnit>(_ src: UnsafeRawPointer, vectors: V.Type) -> (even: SIMD16<Float>, odd: SIMD16<Float>) {
        let w = src.load(unalignedAt: 0, as: SIMD16<UInt32>.self)
        return (V.f16BitsToFloat(w & 0xFFFF), V.f16BitsToFloat(w &>> 16))
    }
}
