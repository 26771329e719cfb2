import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// The efficient forward pass over a chunk of T consecutive packed positions (MODEL.md 1–3).
/// T = 1 uses matrix-vector products, T > 1 matrix-matrix products; everything else is the same
/// code (the convolution of T = 1 runs inside the input projection, with the same arithmetic),
/// so prefill and decode cannot drift apart.
extension HymbaSession {
    /// y = x·Wᵀ for T rows (x rows `ldx` apart, y rows `ldy` apart), the output rows split
    /// across the thread pool. The input is first arranged in the order the weight type's
    /// kernels read (`InputLayout`), once for all rows.
    func linear(_ w: TensorData, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int, rows T: Int) {
        arrangeInput(for: w.type, x, ldx: ldx, n: w.rowLength, rows: T)
        pool.parallelFor(count: w.rows, granularity: T == 1 ? 16 : MatMul.rowTile, work: w.rows * w.rowLength * T) { thread, range in
            linearRows(w, y, ldy: ldy, rows: T, outputs: range, thread: thread)
        }
    }

    /// Arranges T input rows for weights of `type` (the decode buffer for one row, the prefill
    /// buffer for more), for `linearRows` calls that follow.
    func arrangeInput(for type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, n: Int, rows T: Int) {
        if T == 1 {
            kernels.arrangeVector(type, x, n, into: arranged)
        } else {
            // Each token's row is arranged on its own, so the threads share the tokens (on one
            // thread this was 4% of a 125m q4 prefill, with the other thread waiting).
            pool.parallelFor(count: T, work: T * n) { _, tokens in
                kernels.arrangeMatrix(type, x + tokens.lowerBound * ldx, ldx: ldx, tokens: tokens.count, n: n,
                                   into: arrangedRows + tokens.lowerBound * arrangedStride, ldo: arrangedStride)
            }
        }
    }

    /// Output rows `outputs` of y = x·Wᵀ from the input `arrangeInput` left (on any thread;
    /// `thread` picks the matmul tile).
    @inline(__always)
    func linearRows(_ w: TensorData, _ y: UnsafeMutablePointer<Float>, ldy: Int, rows T: Int, outputs: Range<Int>, thread: Int) {
        if T == 1 {
            kernels.matVec(w, arranged, y, rows: outputs)
        } else {
            kernels.matMul(w, arranged: arrangedRows, ldxa: arrangedStride, tokens: T, y: y, ldy: ldy, rows: outputs,
                       scratch: tiles + thread * tileStride)
        }
    }

    /// Runs positions p0 ..< p0+T. `tokens` nil means the meta rows (`model.memory_tokens`
    /// rows p0 …). `logitsOut` receives all T rows of logits ([T, V]); `lastLogits` puts the
    /// last row's logits into `logitsBuffer`.
    func forward(rows T: Int, firstPosition p0: Int, tokens: UnsafePointer<Int>?,
                 logitsOut: UnsafeMutablePointer<Float>?, lastLogits: Bool) {
        // 1. Input rows: token embeddings, or the meta tokens themselves.
        let streamer = model.weightStreamer  // streamed weights: pages dropped after each use
        for t in 0..<T {
            let (table, row) = tokens.map { (model.embed, $0[t]) } ?? (model.metaTokens!, p0 + t)
            kernels.decodeRow(table.type, table.row(row), d, into: X + t * d)
        }
        streamer?.didUseInput()
        let half = dk / 2
        for t in 0..<T {
            Rope.angles(position: p0 + t, invFreq: model.invFreq.p, half: half, cos: cosT + t * half, sin: sinT + t * half)
        }

        for layer in model.layers {
            if capture != nil { capture![layer.index].append(contentsOf: UnsafeBufferPointer(start: X, count: T * d)) }
            streamer?.willUse(layer: layer.index)
            layerForward(layer, rows: T, firstPosition: p0)
            streamer?.didUse(layer: layer.index)
        }

        // 3. Output: final norm, head.
        let eps = config.rmsNormEps
        if capture != nil {
            for t in 0..<T { kernels.rmsNorm(X + t * d, weight: model.finalNorm.p, count: d, eps: eps, out: Hn + t * d) }
            capture![config.numLayers].append(contentsOf: UnsafeBufferPointer(start: Hn, count: T * d))
        }
        if let out = logitsOut {
            for t in 0..<T { kernels.rmsNorm(X + t * d, weight: model.finalNorm.p, count: d, eps: eps, out: Hn + t * d) }
            linear(model.head, Hn, ldx: d, out, ldy: V, rows: T)
            if lastLogits { logitsBuffer.update(from: out + (T - 1) * V, count: V) }
        } else if lastLogits {
            kernels.rmsNorm(X + (T - 1) * d, weight: model.finalNorm.p, count: d, eps: eps, out: Hn)
            linear(model.head, Hn, ldx: d, logitsBuffer, ldy: V, rows: 1)
        }
        streamer?.didFinishPass()
    }

    /// One layer (MODEL.md 2) on T rows of the residual stream X.
    func layerForward(_ L: LayerWeights, rows T: Int, firstPosition p0: Int) {
        let eps = config.rmsNormEps
        let inRows = L.inProj.rows
        let kDim = Hkv * dk, vDim = Hkv * dv
        let kOff = d, vOff = d + kDim
        let xOff = L.producesKV ? d + kDim + vDim : d
        let gOff = xOff + E
        let half = dk / 2

        // h = RMSNorm(X), Z = h·in_projᵀ
        for t in 0..<T { kernels.rmsNorm(X + t * d, weight: L.inputNorm.p, count: d, eps: eps, out: Hn + t * d) }
        if T == 1 {
            // Decoding also runs the SSM heads' convolution here: each thread, right after its
            // rows of Z, on the channels whose inputs those rows are (no pass of its own on one
            // thread, no window copied).
            arrangeInput(for: L.inProj.type, Hn, ldx: d, n: d, rows: 1)
            let state = convState[L.index]
            pool.parallelFor(count: inRows, granularity: 16, work: inRows * d) { thread, range in
                linearRows(L.inProj, Z, ldy: inRows, rows: 1, outputs: range, thread: thread)
                let lo = max(range.lowerBound, xOff), hi = min(range.upperBound, xOff + E)
                if lo < hi {
                    kernels.convStep(state: state, x: Z + xOff, weightT: L.convWeightT.p, bias: L.convBias.p,
                                        taps: K, channels: E, out: U, range: (lo - xOff)..<(hi - xOff))
                }
            }
        } else {
            linear(L.inProj, Hn, ldx: d, Z, ldy: inRows, rows: T)
        }

        // 2a. Attention: rotate q (and k), store k and v (producers), attend with this layer's role.
        let cache = caches[L.kvProducer]!
        for t in 0..<T {
            let z = Z + t * inRows
            kernels.rope(z, heads: H, headDim: dk, cos: cosT + t * half, sin: sinT + t * half)
            if L.producesKV {
                kernels.rope(z + kOff, heads: Hkv, headDim: dk, cos: cosT + t * half, sin: sinT + t * half)
                cache.write(position: p0 + t, keys: z + kOff, values: z + vOff)
            }
        }
        // Heads split across threads; each thread runs its heads for every row of the chunk
        // (row t reads cache positions ≤ p0+t, all written above).
        let window = L.isGlobal ? nil : config.slidingWindow
        let span = window.map { min($0 + 1, p0 + T) } ?? (p0 + T)
        // Regular positions go `Attention.blockRows` rows at a time (each key and value widened
        // once for the block); the meta rows (p < M, a causal block of their own) one by one.
        pool.parallelFor(count: H, work: T * H * span * (dk + dv)) { thread, heads in
            var t = 0
            while t < T {
                let rows = p0 + t >= M ? min(Attention.blockRows, T - t) : 1
                kernels.attendRows(q: Z + t * inRows, ldq: inRows, rows: rows, cache: cache.attentionView, firstPosition: p0 + t,
                                     window: window, queryHeads: H, heads: heads, scratch: scores + thread * scoresStride,
                                     out: Aout + t * E, ldo: E)
                t += rows
            }
        }

        // 2b. SSM heads: conv window = [conv state; this chunk's x], conv + SiLU (decoding ran
        // it with the input projection).
        if T > 1 {
            let keep = K - 1
            win.update(from: convState[L.index], count: keep * E)
            for t in 0..<T { (win + (keep + t) * E).update(from: Z + t * inRows + xOff, count: E) }
            pool.parallelFor(count: E, granularity: 16, work: T * E * K) { _, channels in
                kernels.conv(window: win, weightT: L.convWeightT.p, bias: L.convBias.p, taps: K, channels: E,
                                tokens: T, out: U, ldo: E, range: channels)
            }
            convState[L.index].update(from: win + T * E, count: keep * E)
        }

        // δ | B | C = u·x_projᵀ, inner norms, Δ = softplus(δ·dt_projᵀ + bias).
        linear(L.xProj, U, ldx: E, XP, ldy: xpDim, rows: T)
        if let dtN = L.dtNorm, let bN = L.bNorm, let cN = L.cNorm {
            for t in 0..<T {
                let xp = XP + t * xpDim
                kernels.rmsNorm(xp, weight: dtN.p, count: R, eps: eps, out: xp)
                kernels.rmsNorm(xp + R, weight: bN.p, count: N, eps: eps, out: xp + R)
                kernels.rmsNorm(xp + R + N, weight: cN.p, count: N, eps: eps, out: xp + R + N)
            }
        }
        // Δ = softplus(δ·dt_projᵀ + bias), then the selective scan, D skip and SiLU(g) gate.
        // Output channel i of dt_proj is channel i of the scan, so one split of the channels
        // serves both (one fork-join instead of two); each thread scans its channels through
        // the whole chunk.
        let S = ssmState[L.index]
        arrangeInput(for: L.dtProj.type, XP, ldx: xpDim, n: L.dtProj.rowLength, rows: T)
        pool.parallelFor(count: E, granularity: 16, work: T * E * (L.dtProj.rowLength + 8 * N)) { thread, channels in
            linearRows(L.dtProj, DT, ldy: E, rows: T, outputs: channels, thread: thread)
            for t in 0..<T {
                kernels.softplusBias(DT + t * E + channels.lowerBound, L.dtBias.p + channels.lowerBound, channels.count)
            }
            for t in 0..<T {
                let xp = XP + t * xpDim
                kernels.scanStep(state: S, A: L.A.p, u: U + t * E, delta: DT + t * E, B: xp + R, C: xp + R + N,
                                    D: L.D.p, gate: Z + t * inRows + gOff, y: Y + t * E, stateSize: N, range: channels)
            }
        }

        // 2c. Fusion m = (RMSNorm(a) + RMSNorm(s)) / 2, out_proj, residual.
        for t in 0..<T {
            let f = Fz + t * E, y = Y + t * E
            kernels.rmsNorm(Aout + t * E, weight: L.preAvgNorm1.p, count: E, eps: eps, out: f)
            kernels.rmsNorm(y, weight: L.preAvgNorm2.p, count: E, eps: eps, out: y)
            for i in 0..<E { f[i] = (f[i] + y[i]) * 0.5 }
        }
        linear(L.outProj, Fz, ldx: E, O, ldy: d, rows: T)
        kernels.add(X, O, T * d)

        // MLP: X += (SiLU(h2·gateᵀ) ⊙ h2·upᵀ)·downᵀ with h2 = RMSNorm(X; pre_moe_layernorm).
        for t in 0..<T { kernels.rmsNorm(X + t * d, weight: L.preMoENorm.p, count: d, eps: eps, out: Hn + t * d) }
        if L.gateProj.type == L.upProj.type {
            // One arranged input and one fork-join for both products and the SiLU product.
            arrangeInput(for: L.gateProj.type, Hn, ldx: d, n: d, rows: T)
            // Ranges of 16 rows: the SiLU product's vector body and scalar tail then split the same
            // way for any thread count (bit-identical results).
            pool.parallelFor(count: F, granularity: 16, work: 2 * F * d * T) { thread, range in
                linearRows(L.gateProj, G, ldy: F, rows: T, outputs: range, thread: thread)
                linearRows(L.upProj, Up, ldy: F, rows: T, outputs: range, thread: thread)
                for t in 0..<T { kernels.siluMul(G + t * F + range.lowerBound, Up + t * F + range.lowerBound, range.count) }
            }
        } else {
            linear(L.gateProj, Hn, ldx: d, G, ldy: F, rows: T)
            linear(L.upProj, Hn, ldx: d, Up, ldy: F, rows: T)
            kernels.siluMul(G, Up, T * F)
        }
        linear(L.downProj, G, ldx: F, O, ldy: d, rows: T)
        kernels.add(X, O, T * d)
    }
}
