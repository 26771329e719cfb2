import HymbaFormat
import HymbaKernels

/// A backend whose q4 and q8 products run on packed integer inputs (the x86-64 backends:
/// `AVX2Kernels`, `AVX512Kernels`): decoding on `ArrangedInput`'s packed buffers with the
/// `Int16Activations`/`Q8Activations` rounding, prefill on rows arranged as the backend says, and every
/// other type on the portable kernels. The backend supplies its integer kernels; this extension
/// sizes the inputs for both layouts and sends each weight type to its kernel, so that the
/// backends do not each repeat that routing. Inlinable, as `PortableKernelBackend`'s entries,
/// so each backend compiles it for its own instruction set.
/// (It lives with the portable kernels, not in Shared, because it routes to them.)
public protocol PackedIntegerKernelBackend: PortableKernelBackend {
    /// Packs `x[0..<n]` for q4 or q8 rows (`type`) into `input`'s packed buffers.
    static func arrangePacked(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput)
    /// y[r] = W[r,:]·x̂ for q4 or q8 rows, x packed by `arrangePacked`.
    static func packedMatVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>)
    /// Per-thread scratch floats `packedMatMul` needs.
    static var packedMatMulScratchFloats: Int { get }
    /// Floats of one token's arranged row of n inputs for the q4 and q8 products (the larger
    /// of the two layouts where they differ).
    static func packedMatrixRowFloats(_ n: Int) -> Int
    /// Arranges one token's n inputs for the q4 or q8 (`type`) matrix-matrix product.
    static func arrangePackedRow(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>)
    /// The q4 or q8 matrix-matrix product on rows arranged by `arrangePackedRow`.
    static func packedMatMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                             y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>)
    /// The fp32 matrix-matrix product of the other types (`MatMul.run` unless the backend has a
    /// register tile of its own).
    static func floatMatMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                            y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>)
}

extension PackedIntegerKernelBackend {
    /// Whether rows of `type` take the packed integer products.
    @inlinable @inline(__always)
    public static func packedInteger(_ type: StorageType) -> Bool { type == .q4 || type == .q8 }

    @inlinable @inline(__always)
    public static func floatMatMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                                   y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        MatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
    }

    // MARK: Matrix-vector products

    @inlinable @inline(__always)
    public static func vectorInputFloats(capacity: Int) -> Int {
        ArrangedInput.portableFloats(capacity: capacity) + ArrangedInput.packedFloats(capacity: capacity)
    }

    @inlinable @inline(__always)
    public static func arrangeVector(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        precondition(n <= input.capacity, "input of \(n) elements exceeds the arranged buffer (\(input.capacity))")
        if packedInteger(type) { arrangePacked(type, x, n, into: input) } else { input.arrangePortable(type, x, n) }
    }

    @inlinable @inline(__always)
    public static func matVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        if packedInteger(w.type) { packedMatVec(w, input, y, rows: rows) } else { MatVec.run(w, input, y, rows: rows) }
    }

    @inlinable
    public static func roundedVectorInput(_ type: StorageType, _ x: [Float]) -> [Float] {
        type == .q8 ? Int16Activations.dequantized(x) : MatVec.roundedInput(type, x)
    }

    // MARK: Matrix-matrix products

    @inlinable
    public static func matrixInputRowFloats(_ n: Int) -> Int { max(MatMul.arrangedRowFloats(n), packedMatrixRowFloats(n)) }

    @inlinable
    public static var matMulScratchFloats: Int { max(MatMul.tileFloats, packedMatMulScratchFloats) }

    @inlinable @inline(__always)
    public static func arrangeMatrix(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                                     into out: UnsafeMutablePointer<Float>, ldo: Int) {
        if packedInteger(type) {
            for t in 0..<tokens { arrangePackedRow(type, x + t * ldx, n, into: out + t * ldo) }
        } else {
            MatMul.arrangeRows(type, x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
        }
    }

    @inlinable @inline(__always)
    public static func matMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                              y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        if packedInteger(w.type) {
            packedMatMul(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, scratch: scratch)
        } else {
            floatMatMul(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, scratch: scratch)
        }
    }
}
