import Foundation

/// Picks tokens from logits with `SamplingParams` (filters in llama.cpp's order: repetition
/// penalty, top-k, top-p, min-p, temperature, seeded draw), and remembers the recent tokens
/// the repetition penalty looks at.
///
///     let sampler = try Sampler(params: SamplingParams(temperature: 0.7, seed: 42), vocabularySize: 32001)
///     for t in promptTokens { sampler.accept(t) }         // the penalty window sees the prompt
///     let next = try sampler.sample(session.logits)        // then: sampler.accept(next)
///
/// Every buffer is allocated once in `init` (a few vocabulary-sized arrays); `sample` allocates
/// nothing. Cost per call: O(V) for the copy, penalty and top-k selection (O(V log k) at
/// worst), plus O(m log V) to order the m tokens top-p keeps when top-k is off. The draw uses
/// this file's own `exp` and `Xoshiro256StarStar`, so equal logits and seed give equal tokens
/// on every platform. Not thread-safe: one sampler per sequence.
public final class Sampler {
    public let params: SamplingParams
    public let vocabularySize: Int
    private var rng: Xoshiro256StarStar

    private let V: Int
    /// ln(minP), the min-p cut in logit space.
    private let logMinP: Float
    /// Logits after the repetition penalty, NaN replaced by −∞.          [V]
    private let work: UnsafeMutablePointer<Float>
    /// Candidate ids (a heap during top-k and top-p).                      [V]
    private let candidates: UnsafeMutablePointer<Int32>
    /// Ids in descending logit order, as top-p takes them.                 [V]
    private let ordered: UnsafeMutablePointer<Int32>
    /// Unnormalized probabilities of the final candidates.                 [V]
    private let weights: UnsafeMutablePointer<Float>
    /// Marks tokens already penalized in this call (value = call number). [V]
    private let stamps: UnsafeMutablePointer<UInt32>
    private var stamp: UInt32 = 0
    /// The last `repeatWindow` accepted tokens, a ring.                    [max(1, window)]
    private let recent: UnsafeMutablePointer<Int32>
    private var recentCount = 0
    private var recentNext = 0

    /// Throws `HymbaRuntimeError.invalidOption` for out-of-range parameters.
    public init(params: SamplingParams, vocabularySize: Int) throws {
        try params.validate()
        guard vocabularySize >= 1 else { throw HymbaRuntimeError.invalidOption("sampler: vocabulary size \(vocabularySize) must be ≥ 1") }
        self.params = params
        self.vocabularySize = vocabularySize
        V = vocabularySize
        rng = Xoshiro256StarStar(seed: params.seed)
        logMinP = params.minP > 0 ? Float(Foundation.log(Double(params.minP))) : 0
        work = .allocate(capacity: V)
        candidates = .allocate(capacity: V)
        ordered = .allocate(capacity: V)
        weights = .allocate(capacity: V)
        stamps = .allocate(capacity: V)
        stamps.initialize(repeating: 0, count: V)
        recent = .allocate(capacity: max(1, params.repeatWindow))
    }

    deinit {
        work.deallocate(); candidates.deallocate(); ordered.deallocate(); weights.deallocate()
        stamps.deallocate(); recent.deallocate()
    }

    /// Forgets the recent tokens and restarts the random stream from `seed` (default: the
    /// params' seed), so the next draws repeat those of a fresh sampler.
    public func reset(seed: UInt64? = nil) {
        rng = Xoshiro256StarStar(seed: seed ?? params.seed)
        recentCount = 0
        recentNext = 0
    }

    /// Records a token (prompt or generated) for the repetition penalty's window.
    public func accept(_ token: Int32) {
        let w = params.repeatWindow
        guard w > 0 else { return }
        recent[recentNext] = token
        recentNext = (recentNext + 1) % w
        recentCount = min(recentCount + 1, w)
    }

    /// The tokens the repetition penalty currently looks at, oldest first.
    public var recentTokens: [Int32] {
        let w = params.repeatWindow
        guard w > 0 else { return [] }
        return (0..<recentCount).map { recent[(recentNext - recentCount + $0 + w) % w] }
    }

    /// Chooses the next token from `logits` (`vocabularySize` values; not modified). Does not
    /// `accept` it. Throws when the logits have another size.
    public func sample(_ logits: UnsafeBufferPointer<Float>) throws -> Int32 {
        try prepare(logits)
        if params.isGreedy { return argmax() }
        let n = filter()
        return draw(count: n)
    }

    /// `sample` over an array.
    public func sample(_ logits: [Float]) throws -> Int32 {
        try logits.withUnsafeBufferPointer { try sample($0) }
    }

    /// The distribution the next draw picks from: the surviving ids, in the order the draw
    /// walks them, with their probabilities (summing to 1). Greedy gives the argmax with 1.
    /// Uses no randomness. For tests and diagnostics (allocates the result).
    public func distribution(_ logits: [Float]) throws -> [(id: Int32, probability: Float)] {
        try logits.withUnsafeBufferPointer { try prepare($0) }
        if params.isGreedy { return [(argmax(), 1)] }
        let n = filter()
        var total: Double = 0
        for i in 0..<n { total += Double(weights[i]) }
        return (0..<n).map { (ordered[$0], Float(Double(weights[$0]) / total)) }
    }

    // MARK: Steps

    /// work = logits with NaN → −∞, then the repetition penalty on each distinct recent token.
    private func prepare(_ logits: UnsafeBufferPointer<Float>) throws {
        guard logits.count == V else {
            throw HymbaRuntimeError.invalidOption("sampler: \(logits.count) logits given, the sampler was made for a vocabulary of \(V)")
        }
        for i in 0..<V {
            let v = logits[i]
            work[i] = v.isNaN ? -.infinity : v
        }
        let penalty = params.repeatPenalty
        guard penalty != 1, recentCount > 0 else { return }
        stamp &+= 1
        if stamp == 0 { stamps.update(repeating: 0, count: V); stamp = 1 }
        for j in 0..<recentCount {
            let t = Int(recent[j])
            guard t >= 0, t < V, stamps[t] != stamp else { continue }
            stamps[t] = stamp
            // CTRL / llama.cpp: shrink toward −∞ either way (dividing a negative logit would raise it).
            work[t] = work[t] > 0 ? work[t] / penalty : work[t] * penalty
        }
    }

    /// Highest logit, lowest id among equals.
    private func argmax() -> Int32 {
        var best = 0
        var bestValue = work[0]
        for i in 1..<V where work[i] > bestValue { best = i; bestValue = work[i] }
        return Int32(best)
    }

    /// a ranks above b: higher logit, then lower id (a total order, so ties never depend on
    /// the order the heap visits them).
    @inline(__always)
    private func above(_ a: Int32, _ b: Int32) -> Bool {
        let x = work[Int(a)], y = work[Int(b)]
        return x > y || (x == y && a < b)
    }

    /// Applies top-k, top-p and min-p and fills `ordered[0..<n]` with the survivors and
    /// `weights[0..<n]` with exp((logit − max) / T). Returns n ≥ 1.
    private func filter() -> Int {
        // Top-k: a min-heap of the k best (root = the worst kept).
        var n: Int
        let k = params.topK > 0 ? min(params.topK, V) : V
        if k < V {
            n = 0
            for i in 0..<V {
                let id = Int32(i)
                if n < k {
                    candidates[n] = id
                    n += 1
                    siftUp(n - 1, count: n, better: false)
                } else if above(id, candidates[0]) {
                    candidates[0] = id
                    siftDown(0, count: n, better: false)
                }
            }
        } else {
            for i in 0..<V { candidates[i] = Int32(i) }
            n = V
        }

        var maxLogit = -Float.infinity
        for i in 0..<n { maxLogit = max(maxLogit, work[Int(candidates[i])]) }
        if !maxLogit.isFinite {
            // Every logit −∞ (or +∞ present): no distribution to draw from; take the best id.
            var best = candidates[0]
            for i in 1..<n where above(candidates[i], best) { best = candidates[i] }
            ordered[0] = best
            weights[0] = 1
            return 1
        }

        // Top-p's mass is measured over the top-k survivors, before min-p (llama.cpp's order).
        let topP = params.topP
        var mass: Float = 0
        if topP < 1 { for i in 0..<n { mass += portableExp(work[Int(candidates[i])] - maxLogit) } }

        // Min-p: p ≥ minP·p_max ⟺ logit ≥ max + ln(minP). Also drops −∞ (probability 0).
        let threshold = params.minP > 0 ? maxLogit + logMinP : -Float.greatestFiniteMagnitude
        var kept = 0
        for i in 0..<n where work[Int(candidates[i])] >= threshold {
            candidates[kept] = candidates[i]
            kept += 1
        }
        n = kept

        if topP < 1 {
            // Take tokens best first until their mass reaches topP (the crossing token included).
            for i in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(i, count: n, better: true) }
            let target = topP * mass
            var heapCount = n, taken = 0
            var cumulative: Float = 0
            while heapCount > 0 {
                let id = candidates[0]
                ordered[taken] = id
                taken += 1
                cumulative += portableExp(work[Int(id)] - maxLogit)
                heapCount -= 1
                if heapCount > 0 {
                    candidates[0] = candidates[heapCount]
                    siftDown(0, count: heapCount, better: true)
                }
                if cumulative >= target { break }
            }
            n = taken
        } else {
            ordered.update(from: candidates, count: n)
        }

        let invT = 1 / params.temperature
        for i in 0..<n { weights[i] = portableExp((work[Int(ordered[i])] - maxLogit) * invT) }
        return n
    }

    /// One draw from `weights[0..<n]` over `ordered`.
    private func draw(count n: Int) -> Int32 {
        var total: Double = 0
        for i in 0..<n { total += Double(weights[i]) }
        let u = rng.nextUnit() * total
        var cumulative: Double = 0
        for i in 0..<n {
            cumulative += Double(weights[i])
            if u < cumulative { return ordered[i] }
        }
        return ordered[n - 1]
    }

    // MARK: Heap over `candidates`

    /// `better` true: a max-heap (root ranks highest); false: a min-heap (root ranks lowest).
    @inline(__always)
    private func ordered(_ a: Int32, before b: Int32, better: Bool) -> Bool {
        better ? above(a, b) : above(b, a)
    }

    private func siftUp(_ start: Int, count: Int, better: Bool) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard ordered(candidates[i], before: candidates[parent], better: better) else { return }
            candidates.swapAt(i, parent)
            i = parent
        }
    }

    private func siftDown(_ start: Int, count: Int, better: Bool) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var top = i
            if l < count && ordered(candidates[l], before: candidates[top], better: better) { top = l }
            if r < count && ordered(candidates[r], before: candidates[top], better: better) { top = r }
            if top == i { return }
            candidates.swapAt(i, top)
            i = top
        }
    }
}

extension UnsafeMutablePointer {
    @inline(__always)
    fileprivate func swapAt(_ i: Int, _ j: Int) {
        let t = self[i]
        self[i] = self[j]
        self[j] = t
    }
}

/// eˣ from IEEE add/multiply only (no libm, no fused operations), so it gives the same bits on
/// every platform: x = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite: ln2 = 0.693359375 − 2.12194440e-4,
/// the first part short enough that n·part is exact), eʳ by its degree-7 Taylor polynomial
/// (truncation < 1e-8 relative), times 2ⁿ. About 2 ulp. Gives 0 below −87.3 (no subnormals)
/// and +∞ above 88.3 (the sampler only takes x ≤ 0).
@inline(__always)
func portableExp(_ x: Float) -> Float {
    if x < -87.3 { return 0 }
    if x > 88.3 { return .infinity }
    let n = (x * 1.442_695_04).rounded()
    let r = (x - n * 0.693_359_375) + n * 2.121_944_4e-4
    var p: Float = 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    return p * Float(bitPattern: UInt32(Int32(n) + 127) << 23)
}
