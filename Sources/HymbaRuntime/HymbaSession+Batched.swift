import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// One decoding step for several sessions over the same model at once (a server's active
/// requests): each session feeds one token at its own position, and every weight matrix is
/// read from memory once for all of them.
///
///     let logits = try HymbaSession.decodeBatch([a, b, c], tokens: [ta, tb, tc])
///     // a.logits, b.logits, c.logits: as after a.decode(token: ta), b.decode(token: tb), …
///
/// The products keep the decode (matrix-vector) arithmetic: each session's row is arranged and
/// rounded exactly as `decode` does (`ArrangedInput`, per-row activation quantization), and
/// the output rows are walked in small tiles, each tile's weight rows multiplied with every
/// session's input while they are in the L1/L2 cache. So the weights cross the memory bus once
/// per step for the whole batch, and each session's logits are bit-identical to those of its
/// own `decode(token:)`: a greedy request gives the same tokens alone or batched. (Prefill's
/// matrix-matrix kernels quantize activations differently and would not.) Attention, the
/// convolution and the SSM scan stay per session, on its own caches and states.
///
/// The kernels run on the first session's thread pool; no two of the sessions may be in use
/// elsewhere during the call. Nothing is allocated per step.
extension HymbaSession {
    /// Output rows per tile of a batched product: 16 rows of a 1.5B model's widest q4 weight
    /// (down_proj, 5504 inputs) are 48 KiB, which stay cached while every session's input meets them.
    static let batchTileRows = 16

    /// Feeds `tokens[i]` to `sessions[i]` (all over the same `HymbaModel`, each session at most
    /// once), one decoding step for all. Throws, changing nothing, on a token outside the
    /// vocabulary, a full context, sessions over different models or a session listed twice.
    public static func decodeBatch(_ sessions: [HymbaSession], tokens: [Int]) throws {
        guard sessions.count == tokens.count else {
            throw HymbaRuntimeError.invalidOption("decodeBatch: \(sessions.count) sessions but \(tokens.count) tokens")
        }
        guard let lead = sessions.first else { return }
        for (i, s) in sessions.enumerated() {
            guard s.model === lead.model else {
                throw HymbaRuntimeError.invalidOption("decodeBatch: session \(i) runs another model than session 0")
            }
            guard s.kernels == lead.kernels else {
                throw HymbaRuntimeError.invalidOption("decodeBatch: session \(i) runs the \(s.kernels.name) kernels, session 0 the \(lead.kernels.name) ones")
            }
            guard !sessions[..<i].contains(where: { $0 === s }) else {
                throw HymbaRuntimeError.invalidOption("decodeBatch: session \(i) is listed twice")
            }
            let t = tokens[i]
            if t < 0 || t >= s.V { throw HymbaRuntimeError.tokenOutOfVocabulary(token: t, index: i, vocabSize: s.V) }
            if s.position + 1 > s.contextLength {
                throw HymbaRuntimeError.contextOverflow(position: s.position, requested: 1, contextLength: s.contextLength)
            }
        }
        if sessions.count == 1 {
            try lead.decode(token: tokens[0])
            return
        }
        lead.forwardBatch(sessions, tokens: tokens)
        for s in sessions { s.position += 1 }
    }

    /// `forward(rows: 1, …)` for every session in `batch` (self is its first), each at its own
    /// position, on self's thread pool.
    private func forwardBatch(_ batch: [HymbaSession], tokens: [Int]) {
        let streamer = model.weightStreamer
        let half = dk / 2
        for (s, token) in zip(batch, tokens) {
            kernels.decodeRow(model.embed.type, model.embed.row(token), d, into: s.X)
            Rope.angles(position: M + s.position, invFreq: model.invFreq.p, half: half, cos: s.cosT, sin: s.sinT)
        }
        streamer?.didUseInput()
        for layer in model.layers {
            streamer?.willUse(layer: layer.index)
            layerForwardBatch(layer, batch)
            streamer?.didUse(layer: layer.index)
        }
        let eps = config.rmsNormEps
        for s in batch { kernels.rmsNorm(s.X, weight: model.finalNorm.p, count: d, eps: eps, out: s.Hn) }
        batchedLinear(model.head, batch, input: \.Hn, output: \.logitsBuffer)
        streamer?.didFinishPass()
    }

    /// y = x·Wᵀ for each session's one row (`input` → `output` buffers of that session): the
    /// inputs arranged per session, then output-row tiles each meeting every session's input.
    private func batchedLinear(_ w: TensorData, _ batch: [HymbaSession],
                               input: KeyPath<HymbaSession, UnsafeMutablePointer<Float>>?,
                               output: KeyPath<HymbaSession, UnsafeMutablePointer<Float>>) {
        if let input { forEachSession(batch) { s in kernels.arrangeVector(w.type, s[keyPath: input], w.rowLength, into: s.arranged) } }
        Self.withRows(batch, output) { inputs, ys in
            pool.parallelFor(count: w.rows, granularity: Self.batchTileRows, work: w.rows * w.rowLength * batch.count) { _, range in
                Self.forEachTile(of: range) { tile in kernels.matVecBatch(w, inputs, ys, rows: tile) }
            }
        }
    }

    /// Runs `body` for every session of the batch, the sessions split across the pool's threads:
    /// the norms and arranges between the products are each session's own, and one after
    /// another on the calling thread they left the other threads waiting.
    private func forEachSession(_ batch: [HymbaSession], _ body: (HymbaSession) -> Void) {
        pool.parallelFor(count: batch.count) { _, sessions in
            for i in sessions { body(batch[i]) }
        }
    }

    /// Calls `body` with the batch's arranged inputs and its `output` buffers as lists (the
    /// `matVecBatch` arguments), on the stack: nothing allocated per step.
    @inline(__always)
    private static func withRows(_ batch: [HymbaSession], _ output: KeyPath<HymbaSession, UnsafeMutablePointer<Float>>,
                                 _ body: (UnsafeBufferPointer<ArrangedInput>, UnsafeBufferPointer<UnsafeMutablePointer<Float>>) -> Void) {
        withUnsafeTemporaryAllocation(of: ArrangedInput.self, capacity: batch.count) { inputs in
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: batch.count) { ys in
                for (i, s) in batch.enumerated() {
                    (inputs.baseAddress! + i).initialize(to: s.arranged)
                    (ys.baseAddress! + i).initialize(to: s[keyPath: output])
                }
                body(UnsafeBufferPointer(inputs), UnsafeBufferPointer(ys))
            }
        }
    }

    /// Calls `body` on `range` cut into `batchTileRows` pieces.
    @inline(__always)
    private static func forEachTile(of range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var lo = range.lowerBound
        while lo < range.upperBound {
            let hi = min(lo + batchTileRows, range.upperBound)
            body(lo..<hi)
            lo = hi
        }
    }

    /// `layerForward(L, rows: 1, …)` for every session of the batch: the same steps in the same
    /// order, with each product run once for all sessions (`batchedLinear`'s tiling).
    private func layerForwardBatch(_ L: LayerWeights, _ batch: [HymbaSession]) {
        let eps = config.rmsNormEps
        let inRows = L.inProj.rows
        let (kOff, vOff, xOff, gOff) = inProjOffsets(L)

        // h = RMSNorm(X), Z = h·in_projᵀ, and the SSM heads' convolution on the channels whose
        // inputs each thread's rows are (as `layerForward` decodes).
        forEachSession(batch) { s in
            kernels.rmsNorm(s.X, weight: L.inputNorm.p, count: d, eps: eps, out: s.Hn)
            kernels.arrangeVector(L.inProj.type, s.Hn, d, into: s.arranged)
        }
        Self.withRows(batch, \.Z) { inputs, zs in
            pool.parallelFor(count: inRows, granularity: 16, work: inRows * d * batch.count) { _, range in
                Self.forEachTile(of: range) { tile in kernels.matVecBatch(L.inProj, inputs, zs, rows: tile) }
                let lo = max(range.lowerBound, xOff), hi = min(range.upperBound, xOff + E)
                if lo < hi {
                    for s in batch {
                        kernels.convStep(state: s.convState[L.index], x: s.Z + xOff, weightT: L.convWeightT.p, bias: L.convBias.p,
                                            taps: K, channels: E, out: s.U, range: (lo - xOff)..<(hi - xOff))
                    }
                }
            }
        }

        // 2a. Attention, per session on its own cache: the rotations and cache writes first (the
        // sessions split across the threads), then one parallel region over every (session, head)
        // pair (a head's result does not depend on which call or thread computes it).
        let window = L.isGlobal ? nil : config.slidingWindow
        forEachSession(batch) { s in
            kernels.rope(s.Z, heads: H, headDim: dk, cos: s.cosT, sin: s.sinT)
            if L.producesKV {
                kernels.rope(s.Z + kOff, heads: Hkv, headDim: dk, cos: s.cosT, sin: s.sinT)
                s.caches[L.kvProducer]!.write(position: M + s.position, keys: s.Z + kOff, values: s.Z + vOff)
            }
        }
        var work = 0
        for s in batch {
            let p0 = M + s.position
            work += H * (window.map { min($0 + 1, p0 + 1) } ?? (p0 + 1)) * (dk + dv)
        }
        pool.parallelFor(count: batch.count * H, work: work) { thread, pairs in
            var pair = pairs.lowerBound
            while pair < pairs.upperBound {
                let s = batch[pair / H], firstHead = pair / H * H
                let end = min(pairs.upperBound, firstHead + H)
                kernels.attendRows(q: s.Z, ldq: inRows, rows: 1, cache: s.caches[L.kvProducer]!.attentionView,
                                   firstPosition: M + s.position, window: window, queryHeads: H,
                                   heads: (pair - firstHead)..<(end - firstHead), scratch: scores + thread * scoresStride,
                                   out: s.Aout, ldo: E)
                pair = end
            }
        }

        // δ | B | C = u·x_projᵀ and the inner norms.
        batchedLinear(L.xProj, batch, input: \.U, output: \.XP)
        // Δ = softplus(δ·dt_projᵀ + bias), the selective scan, D skip and SiLU(g) gate: one
        // split of the channels for the product and the scan, as in `layerForward`.
        forEachSession(batch) { s in
            let xp = s.XP
            if let dtN = L.dtNorm, let bN = L.bNorm, let cN = L.cNorm {
                kernels.rmsNorm(xp, weight: dtN.p, count: R, eps: eps, out: xp)
                kernels.rmsNorm(xp + R, weight: bN.p, count: N, eps: eps, out: xp + R)
                kernels.rmsNorm(xp + R + N, weight: cN.p, count: N, eps: eps, out: xp + R + N)
            }
            kernels.arrangeVector(L.dtProj.type, xp, L.dtProj.rowLength, into: s.arranged)
        }
        Self.withRows(batch, \.DT) { inputs, dts in
            pool.parallelFor(count: E, granularity: 16, work: batch.count * E * (L.dtProj.rowLength + 8 * N)) { _, channels in
                Self.forEachTile(of: channels) { tile in kernels.matVecBatch(L.dtProj, inputs, dts, rows: tile) }
                for s in batch {
                    kernels.softplusBias(s.DT + channels.lowerBound, L.dtBias.p + channels.lowerBound, channels.count)
                    kernels.scanStep(state: s.ssmState[L.index], A: L.A.p, u: s.U, delta: s.DT, B: s.XP + R, C: s.XP + R + N,
                                        D: L.D.p, gate: s.Z + gOff, y: s.Y, stateSize: N, range: channels)
                }
            }
        }

        // 2c. Fusion m = (RMSNorm(a) + RMSNorm(s)) / 2, out_proj, residual.
        forEachSession(batch) { s in
            let f = s.Fz, y = s.Y
            kernels.rmsNorm(s.Aout, weight: L.preAvgNorm1.p, count: E, eps: eps, out: f)
            kernels.rmsNorm(y, weight: L.preAvgNorm2.p, count: E, eps: eps, out: y)
            for i in 0..<E { f[i] = (f[i] + y[i]) * 0.5 }
            kernels.arrangeVector(L.outProj.type, f, E, into: s.arranged)
        }
        batchedLinear(L.outProj, batch, input: nil, output: \.O)

        // MLP: X += (SiLU(h2·gateᵀ) ⊙ h2·upᵀ)·downᵀ with h2 = RMSNorm(X; pre_moe_layernorm).
        let sharedInput = L.gateProj.type == L.upProj.type
        forEachSession(batch) { s in
            kernels.add(s.X, s.O, d)
            kernels.rmsNorm(s.X, weight: L.preMoENorm.p, count: d, eps: eps, out: s.Hn)
            if sharedInput { kernels.arrangeVector(L.gateProj.type, s.Hn, d, into: s.arranged) }
        }
        if sharedInput {
            Self.withRows(batch, \.G) { inputs, gs in
                Self.withRows(batch, \.Up) { _, ups in
                    pool.parallelFor(count: F, granularity: 16, work: 2 * F * d * batch.count) { _, range in
                        Self.forEachTile(of: range) { tile in
                            kernels.matVecBatch(L.gateProj, inputs, gs, rows: tile)
                            kernels.matVecBatch(L.upProj, inputs, ups, rows: tile)
                        }
                        for s in batch { kernels.siluMul(s.G + range.lowerBound, s.Up + range.lowerBound, range.count) }
                    }
                }
            }
        } else {
            batchedLinear(L.gateProj, batch, input: \.Hn, output: \.G)
            batchedLinear(L.upProj, batch, input: \.Hn, output: \.Up)
            for s in batch { kernels.siluMul(s.G, s.Up, F) }
        }
        batchedLinear(L.downProj, batch, input: \.G, output: \.O)
        for s in batch { kernels.add(s.X, s.O, d) }
    }
}
