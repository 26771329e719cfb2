import HymbaFormat

/// Attention of one query position over a layer's cache (MODEL.md 2a): GQA (query head h reads
/// key/value head h / (H/Hkv)), scores q·k/sqrt(dk), softmax over the allowed positions,
/// weighted sum of values. Allowed key positions p' for a query at p: p' ≤ p and (global, or
/// p − p' ≤ W, or p' < M). Keys in the cache are already rotated.
package enum Attention {
    /// `q`: H·dk (rotated); `out`: H·dv; `scores`: room for every allowed position
    /// (at most M + regularSlots). `window` is nil for a global layer. `heads` is a range of
    /// query heads, so a thread pool can split one position's heads.
    package static func attend(q: UnsafePointer<Float>, cache: KVCache, position p: Int, window: Int?,
                               queryHeads H: Int, heads: Range<Int>,
                               scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let M = cache.metaSlots, dk = cache.keyDim, dv = cache.valueDim, slots = cache.slots
        let groupSize = H / cache.kvHeads
        let scale = 1 / Float(dk).squareRoot()

        // The allowed positions as at most three runs of consecutive slots.
        var runStart = (0, 0, 0), runCount = (0, 0, 0)
        runCount.0 = min(M, p + 1)
        if p >= M {
            let lo = window.map { max(M, p - $0) } ?? M
            let count = p - lo + 1
            precondition(count <= cache.regularSlots, "attention at position \(p) needs \(count) cached positions, the cache holds \(cache.regularSlots)")
            let first = cache.slot(lo)
            let untilEnd = slots - first
            if count <= untilEnd {
                runStart.1 = first; runCount.1 = count
            } else {
                runStart.1 = first; runCount.1 = untilEnd
                runStart.2 = M; runCount.2 = count - untilEnd
            }
        }
        let total = runCount.0 + runCount.1 + runCount.2
        @inline(__always) func run(_ r: Int) -> Range<Int> {
            switch r {
            case 0: return runStart.0..<(runStart.0 + runCount.0)
            case 1: return runStart.1..<(runStart.1 + runCount.1)
            default: return runStart.2..<(runStart.2 + runCount.2)
            }
        }

        for h in heads {
            let g = h / groupSize
            let qh = q + h * dk
            // Scores.
            var j = 0
            for r in 0..<3 {
                for s in run(r) {
                    scores[j] = cache.keyDot(head: g, slot: s, qh) * scale
                    j += 1
                }
            }
            softmax(scores, total)
            // Weighted sum of values.
            let oh = out + h * dv
            oh.initialize(repeating: 0, count: dv)
            j = 0
            for r in 0..<3 {
                for s in run(r) {
                    cache.addValue(scores[j], head: g, slot: s, into: oh)
                    j += 1
                }
            }
        }
    }

    /// In-place softmax of n scores (max subtracted first).
    package static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        let xr = UnsafeMutableRawPointer(x)
        var sum: Float = 0
        var i = 0
        var sv = SIMD8<Float>()
        while i + 8 <= n {
            let e = VectorMath.exp(xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) - m)
            xr.storeBytes(of: e, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            sv += e
            i += 8
        }
        sum = sv.sum()
        while i < n {
            let e = VectorMath.exp(SIMD8<Float>(repeating: x[i] - m))[0]
            x[i] = e
            sum += e
            i += 1
        }
        let inv = 1 / sum
        for k in 0..<n { x[k] *= inv }
    }

    @inline(__always)
    static func axpyF32(_ a: Float, _ v: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let yr = UnsafeMutableRawPointer(y)
        var i = 0
        while i + 8 <= n {
            let s = yr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) + a * v.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            yr.storeBytes(of: s, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += a * v.loadUnaligned(fromByteOffset: 4 * i, as: Float.self); i += 1 }
    }

    @inline(__always)
    static func axpyF16(_ a: Float, _ v: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let yr = UnsafeMutableRawPointer(y)
        var i = 0
        while i + 8 <= n {
            let s = yr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) + a * VectorMath.f16ToFloat(v.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
            yr.storeBytes(of: s, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += a * HalfFloat.f16ToFloat(v.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
    }
}
