import HymbaFormat

/// The memory a session holds, by part (for `hymba-edge info` and the cache tests). Computed
/// from the config and options alone, by asking each cache type (`FullContextKVCache`,
/// `SlidingWindowKVCache`, `RecurrentState`) its size; a session allocates the same caches.
public struct MemoryReport: Sendable, Equatable, CustomStringConvertible {
    /// The K/V cache of one producer layer.
    public struct KVLayer: Sendable, Equatable {
        /// The producer layer.
        public var layer: Int
        /// Consumer layers reading this cache (MODEL.md 2: kv_reuse_group).
        public var consumers: [Int]
        /// True when the cache serves a global layer (the producer or any consumer), so it holds
        /// every position; false for a ring of the meta positions plus the recent window.
        public var servesGlobal: Bool
        /// Slots for regular positions (ctx, or min(ctx, W + prefill chunk) for a ring).
        public var regularSlots: Int
        /// Total slots (M meta slots + regular slots).
        public var slots: Int
        /// Bytes of keys and values per regular slot: Hkv·(dk + dv)·element size (+ Hkv·8 scale bytes for q8).
        public var bytesPerSlot: Int
        /// Bytes of one meta slot: meta keys and values are always kept in f32.
        public var metaBytesPerSlot: Int
        public var bytes: Int { (slots - regularSlots) * metaBytesPerSlot + regularSlots * bytesPerSlot }
    }

    public var kvType: KVType
    public var contextLength: Int
    public var prefillChunk: Int
    public var kvLayers: [KVLayer]
    /// Layers that read another layer's cache and own none.
    public var consumerLayers: [Int]
    /// Conv states, all layers: L·(K−1)·E·4.
    public var convStateBytes: Int
    /// Scan states, all layers: L·E·N·4.
    public var ssmStateBytes: Int
    /// Activation buffers sized by the prefill chunk (filled in for a live session).
    public var scratchBytes: Int
    /// Bytes of one snapshot (`HymbaSession.takeSnapshot`) once the sequence has passed the
    /// windows: the sliding-window caches' last W rows and every layer's SSM and conv states.
    public var snapshotBytes: Int
    /// Snapshots a prompt cache may hold (`HymbaOptions.promptSnapshots`).
    public var promptSnapshots: Int

    public var kvBytes: Int { kvLayers.reduce(0) { $0 + $1.bytes } }
    public var stateBytes: Int { convStateBytes + ssmStateBytes }
    public var totalBytes: Int { kvBytes + stateBytes + scratchBytes + promptSnapshots * snapshotBytes }
    /// KV bytes each additional regular token needs (caches serving global layers; rings are
    /// constant): what a context-length increase of one costs.
    public var kvBytesPerToken: Int { kvLayers.filter(\.servesGlobal).reduce(0) { $0 + $1.bytesPerSlot } }
    /// Bytes per token of the recurrent state: constant in the sequence length, so 0.
    public var stateBytesPerToken: Int { 0 }

    public init(config c: HymbaConfig, options: HymbaOptions) {
        let ctx = options.contextLength ?? c.maxPositionEmbeddings
        kvType = options.kvType
        contextLength = ctx
        prefillChunk = options.prefillChunk
        let M = c.numMetaTokens
        // Each cache type says how many slots it keeps and what they cost.
        let perSlot = KVCache.bytes(type: options.kvType, kvHeads: c.numKVHeads, keyDim: c.headDim, valueDim: c.valueHeadDim,
                                    metaSlots: 0, regularSlots: 1)
        let metaPerSlot = KVCache.bytes(type: options.kvType, kvHeads: c.numKVHeads, keyDim: c.headDim, valueDim: c.valueHeadDim,
                                        metaSlots: 1, regularSlots: 0)
        var list: [KVLayer] = []
        var consumers: [Int] = []
        for l in 0..<c.numLayers {
            guard c.isKVProducer(layer: l) else { consumers.append(l); continue }
            let group = (0..<c.numLayers).filter { c.kvProducer(of: $0) == l }
            let global = group.contains { c.isGlobal(layer: $0) }
            let regular = global ? FullContextKVCache.regularSlots(contextLength: ctx)
                : SlidingWindowKVCache.regularSlots(window: c.slidingWindow ?? ctx, contextLength: ctx, chunk: options.prefillChunk)
            list.append(KVLayer(layer: l, consumers: group.filter { $0 != l }, servesGlobal: global,
                                regularSlots: regular, slots: M + regular, bytesPerSlot: perSlot,
                                metaBytesPerSlot: metaPerSlot))
        }
        kvLayers = list
        consumerLayers = consumers
        let state = RecurrentState.bytes(config: c)
        convStateBytes = c.numLayers * state.conv
        ssmStateBytes = c.numLayers * state.ssm
        scratchBytes = 0
        let rings = list.filter { !$0.servesGlobal }.count
        snapshotBytes = rings * SlidingWindowKVCache.snapshotSlots(window: c.slidingWindow ?? ctx, contextLength: ctx) * perSlot
            + convStateBytes + ssmStateBytes
        promptSnapshots = options.promptSnapshots
    }

    /// The KV bytes the same options would need at another context length.
    public func kvBytes(atContext n: Int, config: HymbaConfig) -> Int {
        MemoryReport(config: config, options: HymbaOptions(contextLength: n, kvType: kvType, prefillChunk: prefillChunk)).kvBytes
    }

    public var description: String {
        var s = "KV cache (\(kvType), context \(contextLength)):\n"
        for e in kvLayers {
            let kind = e.servesGlobal ? "global" : "ring"
            let cons = e.consumers.isEmpty ? "" : ", shared with \(e.consumers.map(String.init).joined(separator: ","))"
            s += "  layer \(e.layer): \(kind), \(e.slots) slots, \(e.bytes) bytes\(cons)\n"
        }
        s += "  consumer layers (no cache): \(consumerLayers.isEmpty ? "none" : consumerLayers.map(String.init).joined(separator: ","))\n"
        s += "KV total \(kvBytes) bytes, \(kvBytesPerToken) bytes per token\n"
        s += "SSM state \(ssmStateBytes) bytes, conv state \(convStateBytes) bytes (constant per sequence)\n"
        if promptSnapshots > 0 { s += "prompt-cache snapshots \(promptSnapshots) × \(snapshotBytes) bytes\n" }
        s += "scratch \(scratchBytes) bytes, total \(totalBytes) bytes"
        return s
    }
}
