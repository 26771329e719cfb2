import HymbaFormat

/// One part of a session's per-sequence state: a producer layer's keys and values (the whole
/// context, or a sliding window) or a layer's SSM and conv states. Each type knows what it
/// holds: its size (for the memory plan), which positions later tokens can still read (what a
/// saved state writes), and what must be kept to come back to an earlier position (a snapshot).
///
/// `position` below is the number of regular tokens fed (`HymbaSession.position`); the meta
/// tokens come before them and are the model's (`MetaPrefix`), never saved.
package protocol SequenceCache: AnyObject {
    /// The layer it belongs to (a KV cache: its producer layer).
    var layer: Int { get }
    /// Bytes it holds.
    var bytes: Int { get }
    /// Back to the state right after the meta tokens.
    func reset(to prefix: MetaPrefix)

    /// The regular positions whose rows `save` writes after `position` tokens (empty for a
    /// state that is not kept per position).
    func savedPositions(position: Int) -> Range<Int>
    /// Bytes `save` writes after `position` tokens.
    func savedBytes(position: Int) -> Int
    /// Appends the state after `position` tokens: only what later tokens can read, as stored.
    func save(position: Int, into out: inout [UInt8])
    /// Sets the state from `savedBytes(position:)` bytes that `save` wrote; the meta part must
    /// already be in place (`reset`).
    func restore(position: Int, from bytes: UnsafeRawPointer)

    /// Bytes `snapshot` writes at `position`.
    func snapshotBytes(position: Int) -> Int
    /// Appends what later positions overwrite and a return to `position` needs (the parts
    /// that later positions leave alone are not copied).
    func snapshot(position: Int, into out: inout [UInt8])
    /// Returns to `position` from a `snapshot` taken there, in the same sequence: the cache
    /// must hold that sequence at `position` or later.
    func restoreSnapshot(position: Int, from bytes: UnsafeRawPointer)
}

/// Saved rows of a KV cache: the consecutive positions `range` (regular, counted from 0), each
/// as its element storage holds it.
extension KVCache {
    func savedBytes(positions range: Range<Int>) -> Int { range.count * storage.storedSlotBytes }

    func save(positions range: Range<Int>, into out: inout [UInt8]) {
        for i in range { storage.append(slot: slot(metaSlots + i) - metaSlots, to: &out) }
    }

    func restore(positions range: Range<Int>, from bytes: UnsafeRawPointer) {
        let n = storage.storedSlotBytes
        for (k, i) in range.enumerated() { storage.set(slot: slot(metaSlots + i) - metaSlots, from: bytes + k * n) }
    }
}

/// The keys and values of a producer whose group has a global layer: every position of the
/// context (`regularSlots` = ctx; it never wraps). Positions are never overwritten, so a
/// snapshot holds nothing.
package final class FullContextKVCache: SequenceCache {
    package let layer: Int
    /// The rows the attention kernels read.
    package let rows: KVCache

    /// Regular slots for a context of `contextLength` tokens.
    package static func regularSlots(contextLength: Int) -> Int { contextLength }

    package init(layer: Int, type: KVType, config c: HymbaConfig, contextLength: Int) {
        self.layer = layer
        rows = KVCache(type: type, kvHeads: c.numKVHeads, keyDim: c.headDim, valueDim: c.valueHeadDim,
                       metaSlots: c.numMetaTokens, regularSlots: Self.regularSlots(contextLength: contextLength))
    }

    package var bytes: Int { rows.bytes }
    package func reset(to prefix: MetaPrefix) { rows.pinMeta(keys: prefix.keys[layer], values: prefix.values[layer]) }
    package func savedPositions(position: Int) -> Range<Int> { 0..<position }
    package func savedBytes(position: Int) -> Int { rows.savedBytes(positions: 0..<position) }
    package func save(position: Int, into out: inout [UInt8]) { rows.save(positions: 0..<position, into: &out) }
    package func restore(position: Int, from bytes: UnsafeRawPointer) { rows.restore(positions: 0..<position, from: bytes) }
    package func snapshotBytes(position: Int) -> Int { 0 }
    package func snapshot(position: Int, into out: inout [UInt8]) {}
    package func restoreSnapshot(position: Int, from bytes: UnsafeRawPointer) {}
}

/// The keys and values of a producer whose whole group is local (sliding window W): the meta
/// positions pinned in their slots, and a ring of `min(ctx, W + chunk)` regular slots. A query
/// at p reads p−W … p, and a prefill chunk writes up to `chunk` positions before its first
/// query reads, so the ring holds W + chunk of them; memory stays constant once the sequence
/// passes the window. After `position` tokens, later queries read only the last W positions:
/// those are what is saved and snapshot.
package final class SlidingWindowKVCache: SequenceCache {
    package let layer: Int
    package let window: Int
    /// The rows the attention kernels read.
    package let rows: KVCache

    /// Regular slots for a window of `window` positions, a context of `contextLength` tokens
    /// and prefill chunks of `chunk`.
    package static func regularSlots(window: Int, contextLength: Int, chunk: Int) -> Int {
        min(contextLength, window + max(1, chunk))
    }

    package init(layer: Int, type: KVType, config c: HymbaConfig, window: Int, contextLength: Int, chunk: Int) {
        self.layer = layer
        self.window = window
        rows = KVCache(type: type, kvHeads: c.numKVHeads, keyDim: c.headDim, valueDim: c.valueHeadDim, metaSlots: c.numMetaTokens,
                       regularSlots: Self.regularSlots(window: window, contextLength: contextLength, chunk: chunk))
    }

    /// The most rows a snapshot holds (once the sequence has passed the window).
    package static func snapshotSlots(window: Int, contextLength: Int) -> Int { min(window, contextLength) }

    /// The positions later queries can read after `position` tokens.
    private func live(_ position: Int) -> Range<Int> { max(0, position - window)..<position }
    package func savedPositions(position: Int) -> Range<Int> { live(position) }

    package var bytes: Int { rows.bytes }
    package func reset(to prefix: MetaPrefix) { rows.pinMeta(keys: prefix.keys[layer], values: prefix.values[layer]) }
    package func savedBytes(position: Int) -> Int { rows.savedBytes(positions: live(position)) }
    package func save(position: Int, into out: inout [UInt8]) { rows.save(positions: live(position), into: &out) }
    package func restore(position: Int, from bytes: UnsafeRawPointer) { rows.restore(positions: live(position), from: bytes) }
    package func snapshotBytes(position: Int) -> Int { savedBytes(position: position) }
    package func snapshot(position: Int, into out: inout [UInt8]) { save(position: position, into: &out) }
    package func restoreSnapshot(position: Int, from bytes: UnsafeRawPointer) { restore(position: position, from: bytes) }
}

/// One layer's SSM heads' state (MODEL.md 2b): the last K−1 inputs x of the convolution,
/// [(K−1), E] (x = 0 before position 0), and the scan state S, [E, N], both f32. Constant in
/// size; it cannot be rewound, so a snapshot copies it whole.
package final class RecurrentState: SequenceCache {
    package let layer: Int
    package let convCount: Int
    package let ssmCount: Int
    package let conv: UnsafeMutablePointer<Float>
    package let ssm: UnsafeMutablePointer<Float>

    /// Bytes of one layer's states.
    package static func bytes(config c: HymbaConfig) -> (conv: Int, ssm: Int) {
        (4 * (c.convKernel - 1) * c.innerSize, 4 * c.innerSize * c.stateSize)
    }

    package init(layer: Int, config c: HymbaConfig) {
        self.layer = layer
        convCount = (c.convKernel - 1) * c.innerSize
        ssmCount = c.innerSize * c.stateSize
        conv = .allocate(capacity: max(1, convCount))
        conv.initialize(repeating: 0, count: max(1, convCount))
        ssm = .allocate(capacity: max(1, ssmCount))
        ssm.initialize(repeating: 0, count: max(1, ssmCount))
    }

    deinit {
        conv.deallocate()
        ssm.deallocate()
    }

    package var bytes: Int { 4 * (convCount + ssmCount) }

    package func reset(to prefix: MetaPrefix) {
        prefix.convStates[layer].withUnsafeBufferPointer { conv.update(from: $0.baseAddress!, count: convCount) }
        prefix.ssmStates[layer].withUnsafeBufferPointer { ssm.update(from: $0.baseAddress!, count: ssmCount) }
    }

    package func savedPositions(position: Int) -> Range<Int> { 0..<0 }
    package func savedBytes(position: Int) -> Int { bytes }

    package func save(position: Int, into out: inout [UInt8]) {
        // f32 little-endian, the machine's order on every platform the runtime builds for.
        out.append(contentsOf: UnsafeRawBufferPointer(start: conv, count: 4 * convCount))
        out.append(contentsOf: UnsafeRawBufferPointer(start: ssm, count: 4 * ssmCount))
    }

    package func restore(position: Int, from bytes: UnsafeRawPointer) {
        UnsafeMutableRawPointer(conv).copyMemory(from: bytes, byteCount: 4 * convCount)
        UnsafeMutableRawPointer(ssm).copyMemory(from: bytes + 4 * convCount, byteCount: 4 * ssmCount)
    }

    package func snapshotBytes(position: Int) -> Int { bytes }
    package func snapshot(position: Int, into out: inout [UInt8]) { save(position: position, into: &out) }
    package func restoreSnapshot(position: Int, from bytes: UnsafeRawPointer) { restore(position: position, from: bytes) }
}
