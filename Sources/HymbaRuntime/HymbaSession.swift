import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// Options of a session.
public struct HymbaOptions: Sendable, Equatable {
    /// Regular tokens the session can hold (the meta tokens come on top); nil means the
    /// config's `max_position_embeddings`. Must be in 1…max_position_embeddings.
    public var contextLength: Int?
    /// Element type of the key/value caches.
    public var kvType: KVType
    /// Tokens processed per matrix-matrix pass during prefill (activation buffers and local
    /// KV rings are sized by it).
    public var prefillChunk: Int
    /// Threads the session's kernels run on, the calling thread included; 0 means one per
    /// available core. At most `HymbaOptions.maximumThreads`. More threads than cores is
    /// allowed but slower (the workers spin briefly between kernels).
    public var threads: Int
    /// The most memory the whole process may hold while running (peak resident set, bytes);
    /// nil: no limit. `TextModel.open(path:verifyChecksums:options:)` and `MemoryPlan.fit`
    /// plan within it (smaller prefill chunk, q8 KV, streamed weights) or refuse; a session
    /// created with a budget refuses options whose plan exceeds it (`MemoryBudgetError`).
    public var memoryBudgetBytes: Int?
    /// The kernel backend the session runs on; nil: the process's (`KernelDispatch.selection`:
    /// `HYMBA_BACKEND`, else the best this CPU can run). Session creation fails when this build
    /// lacks it or the CPU cannot run it.
    public var kernels: KernelBackendName?
    /// Snapshots a prompt cache may hold besides the session (`PromptCache`): the memory plan
    /// counts them at their largest. 0: none.
    public var promptSnapshots: Int

    /// The largest `threads` accepted.
    public static let maximumThreads = 256

    public init(contextLength: Int? = nil, kvType: KVType = .f16, prefillChunk: Int = 128, threads: Int = 0,
                memoryBudgetBytes: Int? = nil, kernels: KernelBackendName? = nil, promptSnapshots: Int = 0) {
        self.contextLength = contextLength
        self.kvType = kvType
        self.prefillChunk = prefillChunk
        self.threads = threads
        self.memoryBudgetBytes = memoryBudgetBytes
        self.kernels = kernels
        self.promptSnapshots = promptSnapshots
    }

    /// The thread count `threads` stands for on this machine.
    public var resolvedThreads: Int { threads == 0 ? ThreadPool.availableCores : threads }
}

/// How `eval` feeds a sequence.
public enum EvalMode: Sendable, Equatable, CustomStringConvertible {
    /// One `prefill` of all ids.
    case full
    /// One `decode` per id.
    case incremental
    /// `prefill` calls of the given number of ids.
    case chunked(Int)

    public var description: String {
        switch self {
        case .full: return "full"
        case .incremental: return "incremental"
        case let .chunked(n): return "chunked(\(n))"
        }
    }
}

/// One sequence being run through a model: every cache and activation buffer, allocated once
/// at creation (nothing is allocated per token). Starts after the meta tokens (the model's
/// `MetaPrefix` copied in); `prefill` feeds many tokens with matrix-matrix products,
/// `decode` one token with matrix-vector products; both give the numbers of the
/// full-sequence forward (MODEL.md). Not thread-safe: one session per thread.
public final class HymbaSession {
    public let model: HymbaModel
    public let options: HymbaOptions
    /// Regular tokens this session can hold.
    public let contextLength: Int
    /// Regular tokens fed so far (the next token's packed position is M + position).
    public internal(set) var position = 0
    /// The tokens fed so far, `position` of them (a saved state records them).
    public internal(set) var tokens: [Int] = []

    let chunk: Int
    let config: HymbaConfig
    let d: Int, E: Int, H: Int, Hkv: Int, dk: Int, dv: Int, N: Int, K: Int, R: Int, F: Int, V: Int, M: Int
    let xpDim: Int, maxIn: Int, maxRow: Int

    /// Every part of the sequence's state: the producers' KV caches in layer order, then each
    /// layer's `RecurrentState` (the order a saved state lists them in).
    package let sequenceCaches: [SequenceCache]
    /// Per layer: the rows of its own KV cache (producers) or nil (consumers read their
    /// producer's), as the attention kernels read them.
    package let caches: [KVCache?]
    /// Per layer: the last K−1 SSM inputs x, [(K−1), E] (its `RecurrentState.conv`).
    let convState: [UnsafeMutablePointer<Float>]
    /// Per layer: the scan state S, [E, N] (its `RecurrentState.ssm`).
    let ssmState: [UnsafeMutablePointer<Float>]

    // Activations for a chunk of T = `chunk` rows (row-major, one row per position).
    let X: UnsafeMutablePointer<Float>      // residual stream          [T, d]
    let Hn: UnsafeMutablePointer<Float>     // normed stream            [T, d]
    let Z: UnsafeMutablePointer<Float>      // in_proj output           [T, rows of in_proj]
    let Aout: UnsafeMutablePointer<Float>   // attention output a       [T, E]
    let win: UnsafeMutablePointer<Float>    // conv window              [K−1+T, E]
    let U: UnsafeMutablePointer<Float>      // conv+SiLU output u       [T, E]
    let XP: UnsafeMutablePointer<Float>     // x_proj output δ|B|C      [T, R+2N]
    let DT: UnsafeMutablePointer<Float>     // Δ                        [T, E]
    let Y: UnsafeMutablePointer<Float>      // gated scan output s      [T, E]
    let Fz: UnsafeMutablePointer<Float>     // fused m                  [T, E]
    let O: UnsafeMutablePointer<Float>      // projection output        [T, d]
    let G: UnsafeMutablePointer<Float>      // MLP gate                 [T, F]
    let Up: UnsafeMutablePointer<Float>     // MLP up                   [T, F]
    let cosT: UnsafeMutablePointer<Float>   // RoPE cos                 [T, dk/2]
    let sinT: UnsafeMutablePointer<Float>   // RoPE sin                 [T, dk/2]
    let scores: UnsafeMutablePointer<Float> // attention scratch, per thread [threads, scoresStride]
    let scoresStride: Int
    /// The kernel backend every numeric loop runs on (`HymbaOptions.kernels`).
    let kernels: any KernelBackend.Type
    /// The name of the kernel backend this session runs on.
    public var kernelBackend: KernelBackendName { kernels.name }
    let tiles: UnsafeMutablePointer<Float>  // matmul scratch, per thread [threads, tileStride]
    let tileStride: Int
    let arrangedRows: UnsafeMutablePointer<Float> // prefill inputs in the kernels' order [T, arrangedStride]
    let arrangedStride: Int
    let arranged: ArrangedInput             // decode input in the kernels' order
    /// Runs the kernels on `options.resolvedThreads` threads.
    let pool: ThreadPool
    let logitsBuffer: UnsafeMutablePointer<Float> // last position      [V]
    private var allocations: [UnsafeMutablePointer<Float>] = []
    let scratchFloats: Int

    /// Per-layer hidden-state capture (diagnosis); nil normally.
    var capture: [[Float]]?

    /// Creates a session positioned right after the meta tokens.
    public convenience init(model: HymbaModel, options: HymbaOptions = HymbaOptions()) throws {
        try self.init(model: model, options: options, startFromPrefix: true)
    }

    /// A session that runs its kernels on `other`'s threads instead of starting its own: for
    /// sessions that are only ever used one at a time on one thread (a server's slots, driven by
    /// its scheduler). Separate pools would each keep their workers spinning for a while after
    /// every call, taking the cores from the session in use.
    package convenience init(model: HymbaModel, options: HymbaOptions, sharingThreadsWith other: HymbaSession) throws {
        guard other.options.resolvedThreads == options.resolvedThreads else {
            throw HymbaRuntimeError.invalidOption("a session sharing threads needs the same thread count (\(options.resolvedThreads), the other has \(other.options.resolvedThreads))")
        }
        try self.init(model: model, options: options, startFromPrefix: true, pool: other.pool)
    }

    init(model: HymbaModel, options: HymbaOptions, startFromPrefix: Bool, pool sharedPool: ThreadPool? = nil) throws {
        let c = model.config
        let ctx = options.contextLength ?? c.maxPositionEmbeddings
        guard ctx >= 1, ctx <= c.maxPositionEmbeddings else {
            throw HymbaRuntimeError.invalidOption("context length \(ctx) must be in 1…\(c.maxPositionEmbeddings) (max_position_embeddings)")
        }
        guard options.prefillChunk >= 1 else {
            throw HymbaRuntimeError.invalidOption("prefill chunk \(options.prefillChunk) must be at least 1")
        }
        guard options.threads >= 0, options.threads <= HymbaOptions.maximumThreads else {
            throw HymbaRuntimeError.invalidOption("threads \(options.threads) must be in 0…\(HymbaOptions.maximumThreads) (0: one per core)")
        }
        kernels = try KernelDispatch.kernels(options.kernels)
        if options.memoryBudgetBytes != nil {
            // Never over a budget silently: the plan of exactly these options (the session,
            // the model's weights and the process; `MemoryPlan.fit` chooses options that fit).
            let plan = MemoryPlan(config: c, footprint: model.weightFootprint, options: options, residency: model.residency,
                                  tokenizerBytes: 0, workload: .logits(rows: 0))
            if !plan.fits { throw MemoryBudgetError.exceeded(plan) }
        }
        // The prefix first (computed on first use): its short-lived session is gone before
        // this one allocates, so the two never add up in the peak (MemoryPlan's load phase).
        if startFromPrefix { _ = model.metaPrefix }
        self.model = model
        self.options = options
        self.config = c
        contextLength = ctx
        chunk = options.prefillChunk
        d = c.hiddenSize; E = c.innerSize; H = c.numHeads; Hkv = c.numKVHeads; dk = c.headDim; dv = c.valueHeadDim
        N = c.stateSize; K = c.convKernel; R = c.dtRank; F = c.intermediateSize; V = c.vocabSize; M = c.numMetaTokens
        xpDim = R + 2 * N
        maxIn = (0..<c.numLayers).map { c.inProjRows(layer: $0) }.max() ?? 0
        maxRow = max(d, E, F, R)

        let plan = MemoryReport(config: c, options: options)
        var kv: [SequenceCache] = []
        var list: [KVCache?] = Array(repeating: nil, count: c.numLayers)
        for entry in plan.kvLayers {
            if entry.servesGlobal {
                let cache = FullContextKVCache(layer: entry.layer, type: options.kvType, config: c, contextLength: ctx)
                list[entry.layer] = cache.rows
                kv.append(cache)
            } else {
                let cache = SlidingWindowKVCache(layer: entry.layer, type: options.kvType, config: c, window: c.slidingWindow ?? ctx,
                                                 contextLength: ctx, chunk: options.prefillChunk)
                list[entry.layer] = cache.rows
                kv.append(cache)
            }
            assert(list[entry.layer]!.regularSlots == entry.regularSlots, "the plan sizes caches as they size themselves")
        }
        caches = list
        let recurrent = (0..<c.numLayers).map { RecurrentState(layer: $0, config: c) }
        sequenceCaches = kv + recurrent
        convState = recurrent.map(\.conv)
        ssmState = recurrent.map(\.ssm)
        let largestRing = plan.kvLayers.map(\.regularSlots).max() ?? 0

        var allocs: [UnsafeMutablePointer<Float>] = []
        var floats = 0
        func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            p.initialize(repeating: 0, count: max(1, n))
            allocs.append(p)
            floats += n
            return p
        }
        let T = chunk
        X = alloc(T * d); Hn = alloc(T * d); Z = alloc(T * maxIn); Aout = alloc(T * E)
        win = alloc((K - 1 + T) * E); U = alloc(T * E); XP = alloc(T * xpDim); DT = alloc(T * E)
        Y = alloc(T * E); Fz = alloc(T * E); O = alloc(T * d); G = alloc(T * F); Up = alloc(T * F)
        cosT = alloc(T * dk / 2); sinT = alloc(T * dk / 2)
        let threads = options.resolvedThreads
        scoresStride = Attention.scratchFloats(groupSize: H / Hkv, positions: M + largestRing, keyDim: dk, valueDim: dv)
        tileStride = kernels.matMulScratchFloats
        scores = alloc(threads * scoresStride); tiles = alloc(threads * tileStride); logitsBuffer = alloc(V)
        arrangedStride = kernels.matrixInputRowFloats(maxRow)
        arrangedRows = alloc(T * arrangedStride)
        arranged = ArrangedInput(storage: alloc(kernels.vectorInputFloats(capacity: maxRow)), capacity: maxRow)
        pool = sharedPool ?? ThreadPool(threads: threads)
        tokens.reserveCapacity(ctx)
        allocations = allocs
        scratchFloats = floats
        if startFromPrefix { reset() }
    }

    deinit { for p in allocations { p.deallocate() } }

    /// The logits of the last position computed (`vocabSize` values), valid until the next call.
    public var logits: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: logitsBuffer, count: V) }

    /// Bytes this session holds: caches, states and activation buffers.
    public var memoryReport: MemoryReport {
        var r = MemoryReport(config: config, options: options)
        r.scratchBytes = 4 * scratchFloats
        return r
    }

    /// Starts a new sequence: position 0, caches and states as right after the meta tokens.
    public func reset() {
        position = 0
        tokens.removeAll(keepingCapacity: true)
        load(prefix: model.metaPrefix)
    }

    /// Sets the position after a saved state or snapshot was restored.
    func restored(position p: Int, tokens t: [Int]) {
        position = p
        tokens.removeAll(keepingCapacity: true)
        tokens.append(contentsOf: t)
    }

    private func load(prefix: MetaPrefix) {
        for cache in sequenceCaches { cache.reset(to: prefix) }
    }

    // MARK: Feeding tokens

    private func check(_ tokens: [Int]) throws {
        for (i, t) in tokens.enumerated() where t < 0 || t >= V {
            throw HymbaRuntimeError.tokenOutOfVocabulary(token: t, index: i, vocabSize: V)
        }
        if position + tokens.count > contextLength {
            throw HymbaRuntimeError.contextOverflow(position: position, requested: tokens.count, contextLength: contextLength)
        }
    }

    /// Feeds `tokens` (processed `prefillChunk` at a time with matrix-matrix products). Afterwards
    /// `logits` holds the last token's logits; with `allLogits` (room for tokens.count × vocab
    /// floats), row i receives the logits after token i. Throws, changing nothing, on a token
    /// outside the vocabulary or when the context would overflow.
    public func prefill(tokens: [Int], allLogits: UnsafeMutableBufferPointer<Float>? = nil) throws {
        try check(tokens)
        if let out = allLogits, out.count < tokens.count * V {
            throw HymbaRuntimeError.bufferTooSmall(what: "prefill logits", needed: tokens.count * V, found: out.count)
        }
        if tokens.isEmpty { return }
        try tokens.withUnsafeBufferPointer { ids in
            var start = 0
            while start < ids.count {
                let T = min(chunk, ids.count - start)
                let last = start + T == ids.count
                try runChunk(rows: T, tokens: ids.baseAddress! + start,
                             logitsOut: allLogits.map { $0.baseAddress! + start * V }, lastLogits: last)
                start += T
            }
        }
    }

    /// Feeds one token (matrix-vector products) and returns its logits (valid until the next call).
    @discardableResult
    public func decode(token: Int) throws -> UnsafeBufferPointer<Float> {
        if token < 0 || token >= V { throw HymbaRuntimeError.tokenOutOfVocabulary(token: token, index: 0, vocabSize: V) }
        if position + 1 > contextLength {
            throw HymbaRuntimeError.contextOverflow(position: position, requested: 1, contextLength: contextLength)
        }
        var t = token
        try withUnsafePointer(to: &t) { try runChunk(rows: 1, tokens: $0, logitsOut: nil, lastLogits: true) }
        return logits
    }

    private func runChunk(rows T: Int, tokens: UnsafePointer<Int>, logitsOut: UnsafeMutablePointer<Float>?, lastLogits: Bool) throws {
        forward(rows: T, firstPosition: M + position, tokens: tokens, logitsOut: logitsOut, lastLogits: lastLogits)
        self.tokens.append(contentsOf: UnsafeBufferPointer(start: tokens, count: T))
        position += T
    }

    /// Runs `ids` from a fresh start (`reset`) and returns every position's logits, [n, vocab].
    public func eval(ids: [Int], mode: EvalMode) throws -> [Float] {
        reset()
        var out = [Float](repeating: 0, count: ids.count * V)
        try out.withUnsafeMutableBufferPointer { buf in
            switch mode {
            case .full:
                try prefill(tokens: ids, allLogits: buf)
            case .incremental:
                for (i, t) in ids.enumerated() {
                    let l = try decode(token: t)
                    (buf.baseAddress! + i * V).update(from: l.baseAddress!, count: V)
                }
            case let .chunked(n):
                guard n >= 1 else { throw HymbaRuntimeError.invalidOption("chunk size \(n) must be at least 1") }
                var s = 0
                while s < ids.count {
                    let e = min(ids.count, s + n)
                    try prefill(tokens: Array(ids[s..<e]), allLogits: UnsafeMutableBufferPointer(rebasing: buf[(s * V)...]))
                    s = e
                }
            }
        }
        return out
    }

    /// Like `eval`, and also the residual stream entering each layer plus the final-normed
    /// stream: `hidden[L]` is [(M+n), d] with the M meta rows first (the layout of the
    /// fixtures' `hidden_i_L`), for L = 0 … layers.
    public func evalWithHiddenStates(ids: [Int], mode: EvalMode) throws -> (logits: [Float], hidden: [[Float]]) {
        let meta = MetaPrefix.hiddenStates(of: model)
        capture = Array(repeating: [], count: config.numLayers + 1)
        defer { capture = nil }
        let logits = try eval(ids: ids, mode: mode)
        let hidden = zip(meta, capture!).map { $0 + $1 }
        return (logits, hidden)
    }

    /// Runs the M meta rows from an empty state (used to build the `MetaPrefix`).
    func runMetaRows() {
        position = 0
        var start = 0
        while start < M {
            let T = min(chunk, M - start)
            forward(rows: T, firstPosition: start, tokens: nil, logitsOut: nil, lastLogits: false)
            start += T
        }
    }
}
