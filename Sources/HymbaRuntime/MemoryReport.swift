import HymbaFormat

/// The memory a session holds, by part (for `hymba-edge info` and the cache tests). Computed
/// from the config and options alone; a session's caches are allocated from this same plan.
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

    public var kvBytes: Int { kvLayers.reduce(0) { $0 + $1.bytes } }
    public var stateBytes: Int { convStateBytes + ssmStateBytes }
    public var totalBytes: Int { kvBytes + stateBytes + scratchBytes }
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
        let perSlot = options.kvType.slotBytes(kvHeads: c.numKVHeads, keyDim: c.headDim, valueDim: c.valueHeadDim)
        let metaPerSlot = c.numKVHeads * (c.headDim + c.valueHeadDim) * 4
        var list: [KVLayer] = []
        var consumers: [Int] = []
        for l in 0..<c.numLayers {
            guard c.isKVProducer(layer: l) else { consumers.append(l); continue }
            let group = (0..<c.numLayers).filter { c.kvProducer(of: $0) == l }
            let global = group.contains { c.isGlobal(layer: $0) }
            let ring = min(ctx, (c.slidingWindow ?? ctx) + max(1, options.prefillChunk))
            let regular = global ? ctx : ring
            list.append(KVLayer(layer: l, consumers: group.filter { $0 != l }, servesGlobal: global,
                                regularSlots: regular, slots: M + regular, bytesPerSlot: perSlot,
                                metaBytesPerSlot: metaPerSlot))
        }
        kvLayers = list
        consumerLayers = consumers
        convStateBytes = c.numLayers * (c.convKernel - 1) * c.innerSize * 4
        ssmStateBytes = c.numLayers * c.innerSize * c.stateSize * 4
        scratchBytes = 0
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
        s += "scratch \(scratchBytes) bytes, total \(totalBytes) bytes"
        return s
    }
}
