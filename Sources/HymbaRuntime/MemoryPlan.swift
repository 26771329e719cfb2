import HymbaKernels
import HymbaKernelsPortable
import Foundation
import HymbaFormat

/// Everything a run will hold in memory, added up before anything large is allocated, and
/// the choices that make it fit a budget (`fit`).
///
/// Two moments are planned, and the larger one is the plan's total (a peak resident set):
/// - **running**: the process itself, the tokenizer, the weights (resident: every page of the
///   matrices plus their decompressed chunks; streaming: the largest layer or head plus the
///   reusable layer buffer), the f32 copies of the small tensors, the meta-token prefix, the KV
///   caches at the context length (with the model's layer sharing and windows), the SSM and conv
///   states, the activation buffers at the prefill chunk, and the logits the caller keeps;
/// - **loading**: the same up to the prefix, plus the short-lived session that computes the
///   meta-token prefix when the file does not store it.
///
/// The process allowance (`processAllowanceBytes`) is measured, not derived: see its comment.
public struct MemoryPlan: Sendable, Equatable, CustomStringConvertible {
    /// One line of the plan.
    public struct Item: Sendable, Equatable {
        public var name: String
        public var bytes: Int
        public var detail: String
    }

    /// What the caller keeps besides the session (vocabulary-sized float rows).
    public enum Workload: Sendable, Equatable {
        /// Text generation: the sampler's five vocabulary-sized buffers.
        case generation
        /// Perplexity: one row of logits per position of a prefill chunk.
        case perplexity
        /// `rows` rows of logits (e.g. `eval`'s output); 0: the session alone.
        case logits(rows: Int)
    }

    /// Resident set of the `hymba-edge` process before it opens a model (Swift runtime,
    /// Foundation, ICU, SwiftNIO and Hummingbird for `serve`, libedit, the three kernel
    /// backends' code, argument parsing: mostly pages of shared libraries and of the binary),
    /// plus the library code and heap that running a model adds beyond what the plan lists.
    /// Measured on Linux x86_64 (Swift 6.3, release build): 23.5 MiB at start-up
    /// (`hymba-edge --version`), and peak RSS minus the other planned items up to 25.7 MiB
    /// (the shipped tiny-code-hymba q8 and q4 hymba-125m and -350m, 2 threads). Rounded up to
    /// 28 MiB: the start-up part grows with the binary, so `tools/bench/memory.sh` prints it.
    public static let processAllowanceBytes = 28 << 20
    /// Bytes per vocabulary entry of the sampler's buffers (logits work copy, two id lists,
    /// weights, stamps: five 4-byte arrays, `Sampler`).
    public static let samplerBytesPerToken = 5 * 4
    /// Resident bytes a parse of the metadata JSON holds at its peak, per byte of JSON
    /// (Foundation objects for the tokenizer's vocabulary and merges): measured 17.9 for
    /// Hymba's 32k tokenizer (931 KB of metadata, 16.7 MB while opening the file and 16.9 MB
    /// while building the tokenizer); 20 with a margin.
    public static let metadataParseFactor = 20
    /// The smallest prefill chunk `fit` shrinks to (smaller chunks save little and prefill slowly).
    public static let minimumPrefillChunk = 16

    public let config: HymbaConfig
    /// The session options this plan is for (a budget in `memoryBudgetBytes`, if any).
    public let options: HymbaOptions
    public let residency: WeightResidency
    public let workload: Workload
    /// The caches, states and activations of the session.
    public let session: MemoryReport
    /// While running, line by line.
    public let items: [Item]
    /// While loading: what stays (`items`' first lines, up to the meta-token prefix)...
    public let loadItems: [Item]
    /// ...and what is held only for a while, one after the other: the buffers of reading the
    /// weights, then the session that computes the meta-token prefix. The larger one counts.
    public let loadTransients: [Item]
    /// Before any weight is read, opening the file and building the tokenizer each parse the
    /// metadata JSON into short-lived objects: the process, the model file and that parse.
    public let openingBytes: Int
    /// What `fit` changed from the requested options, in words (empty: nothing).
    public internal(set) var adjustments: [String] = []

    public var runBytes: Int { items.reduce(0) { $0 + $1.bytes } }
    public var loadBytes: Int { loadItems.reduce(0) { $0 + $1.bytes } + (loadTransients.map(\.bytes).max() ?? 0) }
    /// The planned peak resident set.
    public var totalBytes: Int { max(runBytes, loadBytes, openingBytes) }
    public var budgetBytes: Int? { options.memoryBudgetBytes }
    public var fits: Bool { budgetBytes.map { totalBytes <= $0 } ?? true }

    /// Plans a run of a model with weights `footprint` and session `options`, exactly as given.
    /// `tokenizerBytes`: the measured size of the tokenizer (0 when none is loaded).
    public init(config c: HymbaConfig, footprint: WeightFootprint, options: HymbaOptions, residency: WeightResidency,
                tokenizerBytes: Int, workload: Workload = .generation,
                processBytes: Int = MemoryPlan.processAllowanceBytes) {
        config = c
        self.options = options
        self.residency = residency
        self.workload = workload
        let report = MemoryReport(config: c, options: options)
        session = report
        let chunk = options.prefillChunk
        let tensors = footprint.tensors
        let matrices = tensors.filter { $0.role == .matrix }
        let headName = c.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"

        // Weights. Mapped pages are counted with what fault-around maps next to them
        // (`WeightFootprint.mappedBytes(touching:)`): the small tensors between the matrices.
        let metaTensors = tensors.filter { $0.role == .metaTokens }
        var mapped = 0, decompressed = 0
        var mappedDetail = "", decompressedDetail = ""
        switch residency {
        case .resident:
            mapped = footprint.dataRange.isEmpty ? (matrices + metaTensors).reduce(0) { $0 + $1.mappedBytes }
                : footprint.mappedBytes(touching: (matrices + metaTensors).flatMap(\.inPlaceRanges))
            decompressed = matrices.reduce(0) { $0 + $1.decompressedBytes }
            mappedDetail = "every matrix in place in the mapping (\(matrices.count) tensors), with the pages fault-around maps next to them"
            decompressedDetail = "compressed chunks of the matrices, decompressed once and kept"
        case .streaming:
            // Units used one at a time: each layer (all its chunks: its small tensors come
            // back by fault-around), the head, the embedding rows of a chunk. A table with
            // compressed chunks stays decompressed (resident) instead.
            var units: [(String, Int)] = []
            for l in 0..<c.numLayers {
                let own = tensors.filter { $0.layer == l && !$0.storedRange.isEmpty }
                if let lo = own.map(\.storedRange.lowerBound).min(), let hi = own.map(\.storedRange.upperBound).max() {
                    units.append(("layer \(l)", footprint.mappedBytes(touching: [lo..<hi])))
                } else {
                    let mats = matrices.filter { $0.layer == l }
                    units.append(("layer \(l)", mats.reduce(0) { $0 + $1.mappedBytes + $1.compressedMappedBytes }))
                }
            }
            var residentTables = 0
            for t in matrices where t.layer == nil {
                if t.decompressedBytes > 0 { residentTables += t.decompressedBytes + t.mappedBytes; continue }
                let whole = t.storedRange.isEmpty ? t.mappedBytes : footprint.mappedBytes(touching: [t.storedRange])
                if t.name == headName { units.append(("head", whole)) }
                if t.name == "model.embed_tokens.weight" {
                    // A row spans at most ⌈rowBytes/page⌉ + 1 pages, and fault-around maps
                    // neighbours on both sides of them.
                    let page = WeightFootprint.pageSize
                    let row = ((t.rowBytes + page - 1) / page + 1) * page + (t.storedRange.isEmpty ? 0 : 2 * WeightFootprint.faultAroundReach)
                    units.append(("embedding rows", min(whole, chunk * row)))
                }
            }
            let largest = units.max { $0.1 < $1.1 } ?? ("none", 0)
            let buffer = (0..<c.numLayers).map { l in matrices.filter { $0.layer == l }.reduce(0) { $0 + $1.decompressedBytes } }.max() ?? 0
            mapped = largest.1
            decompressed = buffer + residentTables
            mappedDetail = "one unit at a time, the largest is \(largest.0) (with fault-around)"
            decompressedDetail = "reusable layer buffer \(Self.mib(buffer))"
                + (residentTables > 0 ? " + compressed embedding/head kept \(Self.mib(residentTables))" : "")
        }
        // Meta tokens: their decompressed chunks, and their pages unless the line above has them.
        let meta = metaTensors.reduce(0) { $0 + $1.decompressedBytes + (residency == .resident ? 0 : $1.mappedBytes) }
        let vectorBytes = tensors.filter { $0.role == .vector }.reduce(0) { $0 + 4 * $1.elements } + 4 * (c.headDim / 2)

        // Meta-token prefix (MODEL.md 1): rotated keys and values of the producers, conv and scan states.
        let M = c.numMetaTokens, E = c.innerSize
        let producers = (0..<c.numLayers).filter { c.isKVProducer(layer: $0) }.count
        let prefixBytes = 4 * (producers * M * c.numKVHeads * (c.headDim + c.valueHeadDim)
            + c.numLayers * ((c.convKernel - 1) * E + E * c.stateSize))

        let V = c.vocabSize
        let logitRows: Int
        let logitsDetail: String
        switch workload {
        case .generation:
            logitRows = 0
            logitsDetail = "session row + sampler buffers"
        case .perplexity:
            logitRows = chunk
            logitsDetail = "session row + \(chunk) rows (one per chunk position)"
        case let .logits(rows):
            logitRows = rows
            logitsDetail = rows == 0 ? "session row" : "session row + \(rows) rows"
        }
        let samplerBytes = workload == .generation ? Self.samplerBytesPerToken * V : 0
        let logitsBytes = 4 * V * (1 + logitRows) + samplerBytes

        var common: [Item] = [
            Item(name: "process", bytes: processBytes, detail: "Swift runtime, Foundation, code (measured allowance)"),
            Item(name: "model file", bytes: footprint.fileBytes, detail: "header, metadata and directory pages, metadata copy"),
            Item(name: "tokenizer", bytes: tokenizerBytes, detail: tokenizerBytes > 0 ? "measured" : "none loaded"),
            Item(name: "weights, mapped", bytes: mapped, detail: "\(residency): " + mappedDetail),
            Item(name: "weights, decompressed", bytes: decompressed, detail: decompressedDetail),
            Item(name: "small tensors (f32)", bytes: vectorBytes + meta, detail: "norms, biases, conv taps, A, D, RoPE" + (meta > 0 ? ", meta tokens" : "")),
            Item(name: "meta-token prefix", bytes: prefixBytes, detail: "\(M) positions: keys/values of \(producers) producers, conv and scan states"),
        ]
        // Reading the weights (`FileWeights`): the tensors widened to f32 are read in place or
        // decompressed into buffers freed when the model has its copies; the widening makes up
        // to three f32 arrays of one tensor at a time; one compressed chunk's stored pages are
        // resident while it is decompressed (with its fault-around neighbours).
        let vectors = tensors.filter { $0.role == .vector || $0.role == .storedPrefix }
        let largestChunk = tensors.map(\.largestCompressedChunkBytes).max() ?? 0
        let reading = vectors.reduce(0) { $0 + $1.mappedBytes + $1.decompressedBytes }
            + 3 * 4 * (vectors.map(\.elements).max() ?? 0)
            + (largestChunk > 0 ? largestChunk + 2 * WeightFootprint.faultAroundReach : 0)
        var transients = [Item(name: "reading the weights", bytes: reading,
                               detail: "small tensors as stored, f32 temporaries, the compressed chunk being decompressed")]
        if !footprint.hasStoredPrefix && M > 0 {
            let metaChunk = Self.metaPrefixChunk(c)
            let metaOptions = HymbaOptions(contextLength: 1, kvType: .f32, prefillChunk: metaChunk)
            let r = MemoryReport(config: c, options: metaOptions)
            let bytes = r.kvBytes + r.stateBytes + 4 * Self.activationFloats(c, chunk: metaChunk, largestRing: 1, threads: metaOptions.resolvedThreads,
                                                                                         kernels: Self.plannedKernels(nil)) + 4 * V
            transients.append(Item(name: "prefix computation", bytes: bytes, detail: "one-time session over the \(M) meta tokens, chunk \(metaChunk)"))
        }
        let load = common
        openingBytes = processBytes + footprint.fileBytes + Self.metadataParseFactor * footprint.metadataBytes
        common += [
            Item(name: "KV caches", bytes: report.kvBytes,
                 detail: "\(options.kvType), context \(report.contextLength): \(report.kvLayers.count) caches (\(report.kvLayers.filter(\.servesGlobal).count) global), \(report.consumerLayers.count) layers share"),
            Item(name: "SSM + conv states", bytes: report.stateBytes, detail: "\(c.numLayers) layers, constant in the context"),
            Item(name: "activations", bytes: 4 * Self.activationFloats(c, chunk: chunk, largestRing: report.kvLayers.map(\.regularSlots).max() ?? 0,
                                                                          threads: options.resolvedThreads,
                                                                          kernels: Self.plannedKernels(options.kernels)),
                 detail: "prefill chunk \(chunk), \(options.resolvedThreads) threads"),
            Item(name: "logits", bytes: logitsBytes, detail: logitsDetail),
        ]
        if options.promptSnapshots > 0 {
            common.append(Item(name: "prompt-cache snapshots", bytes: options.promptSnapshots * report.snapshotBytes,
                               detail: "\(options.promptSnapshots) × \(Self.mib(report.snapshotBytes)): windows' last rows, SSM and conv states"))
        }
        items = common
        loadItems = load
        loadTransients = transients
    }

    /// The kernels a session with these options would run on (their buffer sizes are the
    /// backend's); the portable ones where the session would refuse the backend anyway.
    static func plannedKernels(_ name: KernelBackendName?) -> any KernelBackend.Type {
        (try? KernelDispatch.kernels(name)) ?? PortableKernels.self
    }

    /// The chunk `MetaPrefix` computes the prefix with.
    static func metaPrefixChunk(_ c: HymbaConfig) -> Int { max(1, min(128, c.numMetaTokens)) }

    /// Floats of a session's activation buffers at prefill chunk T on `threads` threads, as
    /// `HymbaSession` allocates them (without the logits row): X, Hn, O [T, d]; Z [T, in_proj
    /// rows]; Aout, U, DT, Y, Fz [T, E]; the conv window [K−1+T, E]; XP [T, R+2N]; G, Up [T, F];
    /// RoPE cos and sin [T, dk/2]; the inputs arranged for the kernels [T, padded largest row]
    /// and one arranged row; per thread, the attention scratch (`Attention.scratchFloats`) and a matmul tile.
    static func activationFloats(_ c: HymbaConfig, chunk T: Int, largestRing: Int, threads: Int,
                                 kernels: any KernelBackend.Type) -> Int {
        let d = c.hiddenSize, E = c.innerSize, F = c.intermediateSize
        let maxIn = (0..<c.numLayers).map { c.inProjRows(layer: $0) }.max() ?? 0
        let maxRow = max(d, E, F, c.dtRank)
        return T * (3 * d + maxIn + 5 * E + c.dtRank + 2 * c.stateSize + 2 * F) + 2 * (T * c.headDim / 2)
            + (c.convKernel - 1 + T) * E
            + T * kernels.matrixInputRowFloats(maxRow) + kernels.vectorInputFloats(capacity: maxRow)
            + threads * (Attention.scratchFloats(groupSize: c.numHeads / c.numKVHeads, positions: c.numMetaTokens + largestRing,
                                                 keyDim: c.headDim, valueDim: c.valueHeadDim) + kernels.matMulScratchFloats)
    }

    // MARK: Fitting a budget

    /// The plan for `requested` within its `memoryBudgetBytes` (or the plan as requested when
    /// there is no budget). When it does not fit, in this order, each only if the ones before
    /// are not enough: the prefill chunk is halved (down to `minimumPrefillChunk`); the KV cache
    /// is stored in q8 (via f16 when f32 was asked for); the weights are streamed (first with
    /// the requested KV type again, then q8). Throws `MemoryBudgetError` (with the breakdown of
    /// the smallest plan) when nothing fits.
    public static func fit(config: HymbaConfig, footprint: WeightFootprint, options requested: HymbaOptions,
                           tokenizerBytes: Int, workload: Workload = .generation,
                           processBytes: Int = MemoryPlan.processAllowanceBytes) throws -> MemoryPlan {
        func plan(_ o: HymbaOptions, _ r: WeightResidency) -> MemoryPlan {
            MemoryPlan(config: config, footprint: footprint, options: o, residency: r, tokenizerBytes: tokenizerBytes,
                       workload: workload, processBytes: processBytes)
        }
        let first = plan(requested, .resident)
        guard let budget = requested.memoryBudgetBytes else { return first }
        guard budget > 0 else { throw MemoryBudgetError.invalid("memory budget \(budget) bytes must be positive") }

        var chunks = [requested.prefillChunk]
        while let last = chunks.last, last > minimumPrefillChunk { chunks.append(max(minimumPrefillChunk, last / 2)) }
        let kvOrder: [KVType] = [.f32, .f16, .q8]
        let weaker = kvOrder.drop { $0 != requested.kvType }.dropFirst()
        var steps: [(KVType, WeightResidency)] = [(requested.kvType, .resident)]
        steps += weaker.map { ($0, .resident) }
        steps += [(requested.kvType, .streaming)] + weaker.map { ($0, .streaming) }

        var smallest = first
        for (kv, residency) in steps {
            for chunk in chunks {
                var o = requested
                o.kvType = kv
                o.prefillChunk = chunk
                var p = plan(o, residency)
                if p.totalBytes < smallest.totalBytes { smallest = p }
                guard p.fits else { continue }
                if chunk != requested.prefillChunk { p.adjustments.append("prefill chunk \(requested.prefillChunk) → \(chunk)") }
                if kv != requested.kvType { p.adjustments.append("KV \(requested.kvType) → \(kv)") }
                if residency == .streaming { p.adjustments.append("weights streamed") }
                return p
            }
        }
        throw MemoryBudgetError.tooSmall(budget: budget, requested: first, smallest: smallest)
    }

    /// `fit` for a model file: its directory gives the weights' footprint.
    public static func fit(file: HymbaFile, options: HymbaOptions, tokenizerBytes: Int,
                           workload: Workload = .generation) throws -> MemoryPlan {
        try fit(config: file.config, footprint: WeightFootprint(file: file), options: options,
                tokenizerBytes: tokenizerBytes, workload: workload)
    }

    // MARK: Text

    static func mib(_ bytes: Int) -> String { String(format: "%.2f MiB", Double(bytes) / 1_048_576) }

    /// The plan line by line: items, totals, the budget and what was changed to meet it.
    public var description: String {
        var out: [String] = []
        let width = (items + loadTransients).map(\.name.count).max() ?? 0
        func line(_ i: Item) -> String {
            "  " + i.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + Self.mib(i.bytes).leftPadded(to: 12) + "  " + i.detail
        }
        out.append("memory plan (\(residency) weights, KV \(options.kvType), context \(session.contextLength), prefill chunk \(options.prefillChunk)):")
        out += items.map(line)
        out.append("  " + "running".padding(toLength: width, withPad: " ", startingAt: 0) + "  " + Self.mib(runBytes).leftPadded(to: 12) + "  (\(runBytes) bytes)")
        if !loadTransients.isEmpty {
            out.append("while loading, besides the lines up to the meta-token prefix (one after the other, the larger counts):")
            out += loadTransients.map(line)
            out.append("  " + "loading".padding(toLength: width, withPad: " ", startingAt: 0) + "  " + Self.mib(loadBytes).leftPadded(to: 12) + "  (\(loadBytes) bytes)")
        }
        if openingBytes > loadBytes {
            out.append("while opening (process, model file and the metadata JSON parsed, \(Self.metadataParseFactor) bytes per byte):")
            out.append("  " + "opening".padding(toLength: width, withPad: " ", startingAt: 0) + "  " + Self.mib(openingBytes).leftPadded(to: 12) + "  (\(openingBytes) bytes)")
        }
        var total = "peak: \(Self.mib(totalBytes)) (\(totalBytes) bytes)"
        if let b = budgetBytes {
            total += ", budget \(Self.mib(b)) (\(b) bytes): " + (fits ? "fits" : "does not fit")
        }
        out.append(total)
        if !adjustments.isEmpty { out.append("to fit: " + adjustments.joined(separator: ", ")) }
        return out.joined(separator: "\n")
    }

    /// KV bytes of a Llama-3.2-3B-style cache at `context` tokens: 28 layers, 8 KV heads of
    /// 128, keys and values in f16, every layer its own cache, no window.
    public static func llama3BStyleKVBytes(context: Int) -> Int { 28 * 8 * (128 + 128) * 2 * context }
}

/// The run cannot fit its memory budget.
public enum MemoryBudgetError: Error, CustomStringConvertible, Equatable {
    /// Even the smallest plan (`smallest`: smallest chunk, q8 KV, streamed weights) exceeds
    /// `budget`; `requested` is the plan of the options as asked.
    case tooSmall(budget: Int, requested: MemoryPlan, smallest: MemoryPlan)
    /// A session's options as given (no adjusting) exceed their budget.
    case exceeded(MemoryPlan)
    case invalid(String)

    /// The smallest budget that would fit, rounded up to whole MiB.
    public var smallestFittingBytes: Int? {
        guard case let .tooSmall(_, _, smallest) = self else { return nil }
        return ((smallest.totalBytes + (1 << 20) - 1) >> 20) << 20
    }

    public var description: String {
        switch self {
        case let .invalid(message):
            return "memory budget: \(message)"
        case let .exceeded(plan):
            return "memory budget \(MemoryPlan.mib(plan.budgetBytes ?? 0)) is exceeded by these session options (\(MemoryPlan.mib(plan.totalBytes)) planned); "
                + "MemoryPlan.fit or TextModel.open(path:verifyChecksums:options:) choose options within a budget.\n" + plan.description
        case let .tooSmall(budget, requested, smallest):
            let need = smallestFittingBytes!
            var s = "memory budget \(MemoryPlan.mib(budget)) (\(budget) bytes) is too small: "
            s += "as asked the run needs \(MemoryPlan.mib(requested.totalBytes)), "
            if smallest.openingBytes >= max(smallest.runBytes, smallest.loadBytes) {
                s += "and opening the model (its metadata JSON parsed, the tokenizer built) alone needs \(MemoryPlan.mib(smallest.totalBytes)).\n"
            } else {
                s += "and even with prefill chunk \(smallest.options.prefillChunk), \(smallest.options.kvType) KV and \(smallest.residency) weights it needs \(MemoryPlan.mib(smallest.totalBytes)).\n"
            }
            s += smallest.description
            s += "\nthe smallest budget that would fit: \(need >> 20)MiB (--memory-budget \(need >> 20)MiB)"
            if smallest.openingBytes < smallest.totalBytes { s += "; or use a smaller --ctx" }
            return s
        }
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
