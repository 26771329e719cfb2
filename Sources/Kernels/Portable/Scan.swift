import HymbaKernels
import Foundation

/// The SSM heads' sequential parts (MODEL.md 2b): the causal depthwise convolution and the
/// selective scan. Both take a channel range so a thread pool can split them.
public enum SSMKernels {
    /// Causal depthwise convolution plus bias, then SiLU, for `tokens` consecutive positions:
    /// `out[t·ldo + i] = SiLU(bias[i] + Σ_j weightT[j·E + i] · window[(t+j)·E + i])`.
    /// `window` holds K−1+tokens rows of E: the K−1 inputs before the chunk (the conv state,
    /// zeros before position 0) followed by the chunk's inputs; `weightT` is conv1d.weight
    /// transposed to [K, E] so that every tap is a contiguous row.
    @inline(__always)
    @inlinable public static func conv(window: UnsafePointer<Float>, weightT: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             taps K: Int, channels E: Int, tokens: Int,
                             out: UnsafeMutablePointer<Float>, ldo: Int, range: Range<Int>) {
        for t in 0..<tokens {
            convPosition(tap: { window + (t + $0) * E }, weightT: weightT, bias: bias, taps: K, channels: E,
                         out: out + t * ldo, range: range)
        }
    }

    /// One position of `conv` for channels in `range`, reading the window in place: the K−1
    /// earlier inputs from `state` ([K−1, E], oldest first) and the new input `x[i]`; then
    /// the state moves one position on (its oldest row dropped, x appended). The same
    /// arithmetic as `conv`, so decoding matches a prefill bit for bit; decoding calls it on the
    /// channels whose inputs a thread has just computed.
    @inline(__always)
    @inlinable public static func convStep(state: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                                 weightT: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                 taps K: Int, channels E: Int, out: UnsafeMutablePointer<Float>, range: Range<Int>) {
        convPosition(tap: { $0 < K - 1 ? UnsafePointer(state + $0 * E) : x }, weightT: weightT, bias: bias,
                     taps: K, channels: E, out: out, range: range)
        let lo = range.lowerBound, n = range.count
        for j in 0..<max(0, K - 2) { (state + j * E + lo).update(from: state + (j + 1) * E + lo, count: n) }
        if K > 1 { (state + (K - 2) * E + lo).update(from: x + lo, count: n) }
    }

    /// out[i] = SiLU(bias[i] + Σ_j weightT[j·E + i] · tap(j)[i]) for i in `range`: one position
    /// of the convolution, tap j's inputs (E floats) at `tap(j)`. Eight channels at a time; a
    /// short last piece goes through the same vector arithmetic on a partly filled vector, so a
    /// channel's output does not depend on where a thread's range ends.
    @inline(__always)
    @inlinable public static func convPosition(tap: (Int) -> UnsafePointer<Float>, weightT: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>, taps K: Int, channels E: Int,
                                     out: UnsafeMutablePointer<Float>, range: Range<Int>) {
        let wr = UnsafeRawPointer(weightT), br = UnsafeRawPointer(bias), orw = UnsafeMutableRawPointer(out)
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            var acc = br.load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            for j in 0..<K {
                acc += wr.load(unalignedAt: 4 * (j * E + i), as: SIMD8<Float>.self)
                    * UnsafeRawPointer(tap(j)).load(unalignedAt: 4 * i, as: SIMD8<Float>.self)
            }
            orw.storeBytes(of: VectorMath.silu(acc), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        let rest = range.upperBound - i
        if rest > 0 {
            var acc = piece(bias + i, rest)
            for j in 0..<K { acc += piece(weightT + j * E + i, rest) * piece(tap(j) + i, rest) }
            let y = VectorMath.silu(acc)
            for k in 0..<rest { out[i + k] = y[k] }
        }
    }

    /// The first `count` (< 8) floats at p, the other lanes 0.
    @inline(__always)
    @inlinable public static func piece(_ p: UnsafePointer<Float>, _ count: Int) -> SIMD8<Float> {
        var v = SIMD8<Float>()
        for k in 0..<count { v[k] = p[k] }
        return v
    }

    /// One time step of the selective scan for channels in `range`, gated output included:
    ///   S[i,n] = exp(Δ[i]·A[i,n])·S[i,n] + Δ[i]·B[n]·u[i]
    ///   y[i]   = (Σ_n S[i,n]·C[n] + D[i]·u[i]) · SiLU(g[i])
    /// `state` and `A` are [E, N] row-major.
    @inline(__always)
    @inlinable public static func scanStep(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>,
                                 u: UnsafePointer<Float>, delta: UnsafePointer<Float>,
                                 B: UnsafePointer<Float>, C: UnsafePointer<Float>, D: UnsafePointer<Float>,
                                 gate: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                 stateSize N: Int, range: Range<Int>) {
        states(state: state, A: A, u: u, delta: delta, B: B, C: C, D: D, y: y, stateSize: N, range: range)
        SSMKernels.gate(y, by: gate, range: range)
    }

    /// The scan's state update and output before the gate, for channels in `range`:
    /// S = exp(Δ·A)·S + Δ·B·u, y = Σ_n S·C + D·u.
    @inlinable @inline(__always)
    public static func states(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>,
                              u: UnsafePointer<Float>, delta: UnsafePointer<Float>,
                              B: UnsafePointer<Float>, C: UnsafePointer<Float>, D: UnsafePointer<Float>,
                              y: UnsafeMutablePointer<Float>, stateSize N: Int, range: Range<Int>) {
        let Br = UnsafeRawPointer(B), Cr = UnsafeRawPointer(C)
        for i in range {
            let s = state + i * N, a = A + i * N
            let sr = UnsafeMutableRawPointer(s), ar = UnsafeRawPointer(a)
            let dt = delta[i], du = delta[i] * u[i]
            var accv = SIMD8<Float>()
            var n = 0
            while n + 8 <= N {
                let decay = VectorMath.exp(dt * ar.load(unalignedAt: 4 * n, as: SIMD8<Float>.self))
                let sv = decay * sr.load(unalignedAt: 4 * n, as: SIMD8<Float>.self)
                    + du * Br.load(unalignedAt: 4 * n, as: SIMD8<Float>.self)
                sr.storeBytes(of: sv, toByteOffset: 4 * n, as: SIMD8<Float>.self)
                accv = multiplyAdd(sv, Cr.load(unalignedAt: 4 * n, as: SIMD8<Float>.self), accv)
                n += 8
            }
            var acc = horizontalSum(accv)
            while n < N {
                let sv = Foundation.exp(dt * a[n]) * s[n] + du * B[n]
                s[n] = sv
                acc += sv * C[n]
                n += 1
            }
            y[i] = acc + D[i] * u[i]
        }
    }

    /// y[i] ·= SiLU(g[i]) for i in `range`: the scan's output gate.
    @inlinable @inline(__always)
    public static func gate(_ y: UnsafeMutablePointer<Float>, by gate: UnsafePointer<Float>, range: Range<Int>) {
        // The gate, eight channels at a time (a scalar exp per channel cost more than the
        // scan's vector arithmetic); a short last piece goes through the same vector code, so a
        // channel's result does not depend on how the channels are split.
        var i = range.lowerBound
        while i < range.upperBound {
            let count = min(8, range.upperBound - i)
            if count == 8 {
                let yr = UnsafeMutableRawPointer(y + i)
                let gated = yr.load(unalignedAt: 0, as: SIMD8<Float>.self) * VectorMath.silu(UnsafeRawPointer(gate + i).load(unalignedAt: 0, as: SIMD8<Float>.self))
                yr.storeBytes(of: gated, as: SIMD8<Float>.self)
            } else {
                var g = SIMD8<Float>(), v = SIMD8<Float>()
                for k in 0..<count { g[k] = gate[i + k]; v[k] = y[i + k] }
                let gated = v * VectorMath.silu(g)
                for k in 0..<count { y[i + k] = gated[k] }
            }
            i += 8
        }
    }
}
