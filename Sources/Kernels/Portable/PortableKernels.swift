import HymbaFormat
import HymbaKernels

/// A backend built from the portable kernels: every `KernelBackend` entry implemented by this
/// folder's kernels with the backend's `Vectors`. The implementations are inlinable, so each
/// conforming backend compiles them in its own target, for its own instruction set; a backend
/// replaces the entries it has better kernels for (`AVX512Kernels`).
public protocol PortableKernelBackend: KernelBackend {
    associatedtype Vectors: VectorUnit
}

extension PortableKernelBackend {
    @inlinable @inline(__always)
    public static func vectorInputFloats(capacity: Int) -> Int { ArrangedInput.portableFloats(capacity: capacity) }

    @inlinable @inline(__always)
    public static func arrangeVector(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        input.arrangePortable(type, x, n)
    }

    @inlinable @inline(__always)
    public static func matVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        MatVec.run(w, input, y, rows: rows)
    }

    @inlinable
    public static func roundedVectorInput(_ type: StorageType, _ x: [Float]) -> [Float] { MatVec.roundedInput(type, x) }

    @inlinable
    public static func matrixInputRowFloats(_ n: Int) -> Int { MatMul.arrangedRowFloats(n) }

    @inlinable
    public static var matMulScratchFloats: Int { MatMul.tileFloats }

    @inlinable @inline(__always)
    public static func arrangeMatrix(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                                     into out: UnsafeMutablePointer<Float>, ldo: Int) {
        MatMul.arrangeRows(type, x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
    }

    @inlinable @inline(__always)
    public static func matMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                              y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        MatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
    }

    @inlinable @inline(__always)
    public static func decodeRow(_ type: StorageType, _ src: UnsafeRawPointer, _ n: Int, into dst: UnsafeMutablePointer<Float>) {
        RowDecode.decode(type, src, n, into: dst)
    }

    @inlinable @inline(__always)
    public static func attendRows(q: UnsafePointer<Float>, ldq: Int, rows: Int, cache: AttentionCache, firstPosition: Int,
                                  window: Int?, queryHeads: Int, heads: Range<Int>,
                                  scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldo: Int) {
        Attention.attendRows(q: q, ldq: ldq, rows: rows, cache: cache, firstPosition: firstPosition, window: window,
                             queryHeads: queryHeads, heads: heads, scratch: scratch, out: out, ldo: ldo, vectors: Vectors.self)
    }

    @inlinable @inline(__always)
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) { Attention.softmax(x, n, vectors: Vectors.self) }

    @inlinable @inline(__always)
    public static func conv(window: UnsafePointer<Float>, weightT: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                            taps: Int, channels: Int, tokens: Int, out: UnsafeMutablePointer<Float>, ldo: Int, range: Range<Int>) {
        SSMKernels.conv(window: window, weightT: weightT, bias: bias, taps: taps, channels: channels, tokens: tokens,
                        out: out, ldo: ldo, range: range)
    }

    @inlinable @inline(__always)
    public static func convStep(state: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weightT: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>, taps: Int, channels: Int, out: UnsafeMutablePointer<Float>, range: Range<Int>) {
        SSMKernels.convStep(state: state, x: x, weightT: weightT, bias: bias, taps: taps, channels: channels, out: out, range: range)
    }

    @inlinable @inline(__always)
    public static func scanStep(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>, u: UnsafePointer<Float>,
                                delta: UnsafePointer<Float>, B: UnsafePointer<Float>, C: UnsafePointer<Float>, D: UnsafePointer<Float>,
                                gate: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, stateSize: Int, range: Range<Int>) {
        SSMKernels.scanStep(state: state, A: A, u: u, delta: delta, B: B, C: C, D: D, gate: gate, y: y,
                            stateSize: stateSize, range: range)
    }

    @inlinable @inline(__always)
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count: Int, eps: Float, out: UnsafeMutablePointer<Float>) {
        Norms.rmsNorm(x, weight: weight, count: count, eps: eps, out: out)
    }

    @inlinable @inline(__always)
    public static func siluMul(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        Norms.siluMul(x, y, n, vectors: Vectors.self)
    }

    @inlinable @inline(__always)
    public static func siluInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) { Norms.siluInPlace(x, n, vectors: Vectors.self) }

    @inlinable @inline(__always)
    public static func softplusBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, _ n: Int) {
        Norms.softplusBias(x, bias, n, vectors: Vectors.self)
    }

    @inlinable @inline(__always)
    public static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) { Norms.add(y, x, n) }

    @inlinable
    public static func exp(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        VectorMath.exp(x, into: out, count: n, vectors: Vectors.self)
    }

    @inlinable
    public static func decayExp(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        VectorMath.decayExp(x, into: out, count: n, vectors: Vectors.self)
    }

    @inlinable @inline(__always)
    public static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        Rope.apply(x, heads: heads, headDim: headDim, cos: cos, sin: sin)
    }
}

/// The portable backend: the kernels in this folder compiled for the build's baseline, for any
/// CPU (and every architecture without a folder of its own).
public enum PortableKernels: PortableKernelBackend {
    public typealias Vectors = PortableVectors
    public static var name: KernelBackendName { .portable }

    /// The matrix-matrix product with the tile for 128-bit vector registers
    /// (`MatMul.kernel4x4Narrow`): the registers of every CPU this backend serves (x86-64
    /// without AVX2, arm64 NEON).
    @inlinable @inline(__always)
    public static func matMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                              y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        MatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch,
                   kernel: MatMul.kernel4x4Narrow)
    }
}
