/// One activation row arranged for the products of one weight type, in a buffer owned by the
/// caller and reused across calls; room for rows of up to `capacity` elements.
///
/// The arrangement inside belongs to the backend that multiplies it: the portable kernels'
/// float orders and int8 runs (`PortableInput`), the AVX-512 kernels' packed integer codes
/// (`PackedInput`). Callers ask the backend for the size (`KernelTable.vectorInputFloats`) and
/// to fill it (`KernelTable.arrangeVector`); only one weight type's arrangement is held at a
/// time, so a backend may lay out every type from the start of the buffer.
public struct ArrangedInput {
    /// The buffer (`KernelTable.vectorInputFloats(capacity)` floats; loads from it are unaligned).
    public let storage: UnsafeMutablePointer<Float>
    public let capacity: Int

    @inlinable
    public init(storage: UnsafeMutablePointer<Float>, capacity: Int) {
        self.storage = storage
        self.capacity = capacity
    }
}
