import HymbaFormat

/// The kernel backends a build can carry, best last. Each is its own target, compiled for its
/// own instruction set (Package.swift); the runtime picks one per process (`KernelDispatch`).
public enum KernelBackendName: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Kernels/Portable: the build's baseline instructions (any CPU the build runs on).
    case portable
    /// Kernels/X86AVX2: the portable kernels and the AVX2 ones, for x86-64-v3 (AVX2, FMA, F16C).
    case avx2
    /// Kernels/X86AVX512: integer products on AVX-512 VNNI (with BW and VL).
    case avx512

    public var description: String { rawValue }
}

/// One backend's kernels: every numeric loop of the forward pass that depends on the
/// instruction set. The runtime holds one `KernelBackend.Type` per session and calls only
/// these, so which CPU it runs on is decided once (`KernelDispatch`), not at each call.
///
/// Inputs of the products are arranged by the backend that multiplies them, in its own layout:
/// callers ask it for the sizes (`vectorInputFloats`, `matrixInputRowFloats`,
/// `matMulScratchFloats`) and to fill them (`arrangeVector`, `arrangeMatrix`).
/// The portable kernels provide a default for every entry (`PortableKernelBackend`).
public protocol KernelBackend {
    static var name: KernelBackendName { get }

    // MARK: Matrix-vector products (decoding)

    /// Floats of `ArrangedInput` storage for rows of up to `capacity` elements.
    static func vectorInputFloats(capacity: Int) -> Int
    /// Arranges `x[0..<n]` into `input` for rows of `type`.
    static func arrangeVector(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput)
    /// y[r] = W[r,:]·x for r in `rows` (y indexed by absolute row), x arranged for `w.type`.
    static func matVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>)
    /// `matVec(w, inputs[i], ys[i], rows: rows)` for every i (batched decoding: several
    /// sequences' rows meeting the same weights), each result bit-identical to that call. A
    /// backend may unpack each weight once for several inputs; the default loops over `matVec`.
    static func matVecBatch(_ w: TensorData, _ inputs: UnsafeBufferPointer<ArrangedInput>,
                            _ ys: UnsafeBufferPointer<UnsafeMutablePointer<Float>>, rows: Range<Int>)
    /// The x̂ the matrix-vector product of `type` rows really multiplies for x (its activation
    /// rounding), for tests and error bounds.
    static func roundedVectorInput(_ type: StorageType, _ x: [Float]) -> [Float]

    // MARK: Matrix-matrix products (prefill)

    /// Floats per arranged input row for rows of up to `n` elements, whatever the weight type.
    static func matrixInputRowFloats(_ n: Int) -> Int
    /// Per-thread scratch floats `matMul` needs.
    static var matMulScratchFloats: Int { get }
    /// Arranges `tokens` rows of `n` inputs (`ldx` apart) into `out` (rows `ldo` ≥
    /// `matrixInputRowFloats(n)` apart) for rows of `type`.
    static func arrangeMatrix(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                              into out: UnsafeMutablePointer<Float>, ldo: Int)
    /// Y[t·ldy + r] = W[r,:]·X[t,:] for t in 0..<tokens and r in `rows`; `scratch`
    /// (`matMulScratchFloats`) private to the calling thread.
    static func matMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>)
    /// One stored row of `n` elements of `type` widened to fp32 (embedding lookups).
    static func decodeRow(_ type: StorageType, _ src: UnsafeRawPointer, _ n: Int, into dst: UnsafeMutablePointer<Float>)

    // MARK: Attention

    /// Attention of `rows` consecutive query positions from `firstPosition` over `cache`
    /// (scores, softmax, value sums); the contract of `Attention.attendRows`.
    static func attendRows(q: UnsafePointer<Float>, ldq: Int, rows: Int, cache: AttentionCache, firstPosition: Int,
                           window: Int?, queryHeads: Int, heads: Range<Int>,
                           scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldo: Int)
    /// In-place softmax of n scores.
    static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int)

    // MARK: SSM heads (MODEL.md 2b)

    /// Causal depthwise convolution + SiLU over a chunk (`SSMKernels.conv`).
    static func conv(window: UnsafePointer<Float>, weightT: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                     taps: Int, channels: Int, tokens: Int, out: UnsafeMutablePointer<Float>, ldo: Int, range: Range<Int>)
    /// One decoding position of the convolution, moving the state on (`SSMKernels.convStep`).
    static func convStep(state: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weightT: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>, taps: Int, channels: Int, out: UnsafeMutablePointer<Float>, range: Range<Int>)
    /// One time step of the selective scan, gate included (`SSMKernels.scanStep`).
    static func scanStep(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>, u: UnsafePointer<Float>,
                         delta: UnsafePointer<Float>, B: UnsafePointer<Float>, C: UnsafePointer<Float>, D: UnsafePointer<Float>,
                         gate: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, stateSize: Int, range: Range<Int>)

    // MARK: Vector math

    /// out = w ⊙ x / sqrt(mean(x²) + eps); `out` may be `x`.
    static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count: Int, eps: Float, out: UnsafeMutablePointer<Float>)
    /// x[i] = SiLU(x[i])·y[i].
    static func siluMul(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int)
    /// x[i] = SiLU(x[i]).
    static func siluInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int)
    /// x[i] = softplus(x[i] + bias[i]).
    static func softplusBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, _ n: Int)
    /// y[i] += x[i].
    static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int)
    /// out[i] = e^x[i] through the backend's 16-lane exp (n a multiple of 16).
    static func exp(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int)
    /// out[i] = e^x[i] through the selective scan's decay exp (n a multiple of 16).
    static func decayExp(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int)
    /// Rotary embedding of `heads` heads of `headDim` values in place (`Rope.apply`).
    static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>)
}

extension KernelBackend {
    public static func matVecBatch(_ w: TensorData, _ inputs: UnsafeBufferPointer<ArrangedInput>,
                                   _ ys: UnsafeBufferPointer<UnsafeMutablePointer<Float>>, rows: Range<Int>) {
        precondition(inputs.count == ys.count, "matVecBatch: \(inputs.count) inputs but \(ys.count) outputs")
        for i in inputs.indices { matVec(w, inputs[i], ys[i], rows: rows) }
    }
}
