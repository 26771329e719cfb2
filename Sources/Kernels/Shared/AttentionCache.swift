/// What the attention kernels read of one layer's key/value cache: where its entries are and
/// how they are stored, as plain pointers (the runtime's cache owns the memory and hands this
/// view to the kernels; `KVCache.attentionView`).
///
/// Slots: 0 ..< metaSlots hold the meta positions (f32, natural order, per head
/// [metaSlots, dim]); metaSlots ..< metaSlots + regularSlots are a ring of regular positions
/// stored in `element`'s encoding, per head [regularSlots, dim] (q8: one scale per head and slot).
public struct AttentionCache {
    public enum Element: Sendable { case f32, f16, q8 }

    public let element: Element
    public let kvHeads: Int
    public let keyDim: Int
    public let valueDim: Int
    public let metaSlots: Int
    public let regularSlots: Int
    public let keys: UnsafeMutableRawPointer
    public let values: UnsafeMutableRawPointer
    /// q8: per (head, regular slot) scales; unused otherwise.
    public let keyScales: UnsafeMutablePointer<Float>
    public let valueScales: UnsafeMutablePointer<Float>
    public let metaKeys: UnsafeMutablePointer<Float>
    public let metaValues: UnsafeMutablePointer<Float>

    @inlinable
    public init(element: Element, kvHeads: Int, keyDim: Int, valueDim: Int, metaSlots: Int, regularSlots: Int,
                keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer,
                keyScales: UnsafeMutablePointer<Float>, valueScales: UnsafeMutablePointer<Float>,
                metaKeys: UnsafeMutablePointer<Float>, metaValues: UnsafeMutablePointer<Float>) {
        self.element = element
        self.kvHeads = kvHeads
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.metaSlots = metaSlots
        self.regularSlots = regularSlots
        self.keys = keys
        self.values = values
        self.keyScales = keyScales
        self.valueScales = valueScales
        self.metaKeys = metaKeys
        self.metaValues = metaValues
    }

    @inlinable public var slots: Int { metaSlots + regularSlots }

    @inlinable public var elementBytes: Int {
        switch element { case .f32: return 4; case .f16: return 2; case .q8: return 1 }
    }

    /// The slot of position p: meta positions keep theirs, regular ones go round the ring.
    @inlinable @inline(__always)
    public func slot(_ p: Int) -> Int {
        p < metaSlots ? p : metaSlots + (p - metaSlots) % regularSlots
    }

    /// Index of (head g, regular slot s ≥ M) in the regular arrays.
    @inlinable @inline(__always)
    public func regularIndex(_ g: Int, _ s: Int) -> Int { g * regularSlots + (s - metaSlots) }

    /// Whether widened entries come in `PairOrder` (f16) rather than in natural order.
    @inlinable public var widensInPairOrder: Bool { element == .f16 }

    /// Where one head's regular keys or values are stored, slot by slot, for the kernels that
    /// widen entries themselves: `row(s)` is slot s's (≥ M) dim elements of `elementBytes`.
    /// A value taken once per head, so a loop over the slots does no more than one multiply-add.
    public struct StoredRows {
        public let base: UnsafeRawPointer
        public let stride: Int
        public let metaSlots: Int

        @inlinable
        public init(base: UnsafeRawPointer, stride: Int, metaSlots: Int) {
            self.base = base
            self.stride = stride
            self.metaSlots = metaSlots
        }

        @inlinable @inline(__always)
        public func row(_ s: Int) -> UnsafeRawPointer { base + stride * (s - metaSlots) }
    }

    /// Head g's stored regular keys.
    @inlinable
    public func storedKeys(head g: Int) -> StoredRows {
        StoredRows(base: UnsafeRawPointer(keys) + elementBytes * keyDim * regularIndex(g, metaSlots),
                   stride: elementBytes * keyDim, metaSlots: metaSlots)
    }

    /// Head g's stored regular values.
    @inlinable
    public func storedValues(head g: Int) -> StoredRows {
        StoredRows(base: UnsafeRawPointer(values) + elementBytes * valueDim * regularIndex(g, metaSlots),
                   stride: elementBytes * valueDim, metaSlots: metaSlots)
    }
}
