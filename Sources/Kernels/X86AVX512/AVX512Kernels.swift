import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// The AVX-512 backend, for x86-64 CPUs with AVX-512 VNNI, BW and VL (Intel from Cascade Lake,
/// AMD from Zen 4): q4 and q8 products on integer dot-product instructions (`IntegerMatVec`,
/// `IntegerMatMul`), the scan's 16-wide states in one register (`ScanAVX512`), and the
/// portable kernels compiled for this instruction set with `AVX512Vectors` for the rest.
public enum AVX512Kernels: PortableKernelBackend {
    public typealias Vectors = AVX512Vectors
    public static var name: KernelBackendName { .avx512 }

    @inline(__always)
    static func integer(_ type: StorageType) -> Bool { type == .q4 || type == .q8 }

    public static func vectorInputFloats(capacity: Int) -> Int {
        ArrangedInput.portableFloats(capacity: capacity) + ArrangedInput.packedFloats(capacity: capacity)
    }

    public static func arrangeVector(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        precondition(n <= input.capacity, "input of \(n) elements exceeds the arranged buffer (\(input.capacity))")
        switch type {
        case .q4: IntegerMatVec.arrangeQ4(x, n, into: input)
        case .q8: IntegerMatVec.arrangeQ8(x, n, into: input)
        case .f32, .f16, .bf16: input.arrangePortable(type, x, n)
        }
    }

    public static func matVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        if integer(w.type) { IntegerMatVec.run(w, input, y, rows: rows) } else { MatVec.run(w, input, y, rows: rows) }
    }

    public static func matVecBatch(_ w: TensorData, _ inputs: UnsafeBufferPointer<ArrangedInput>,
                                   _ ys: UnsafeBufferPointer<UnsafeMutablePointer<Float>>, rows: Range<Int>) {
        if integer(w.type) {
            IntegerMatVec.runBatch(w, inputs, ys, rows: rows)
        } else {
            for i in inputs.indices { MatVec.run(w, inputs[i], ys[i], rows: rows) }
        }
    }

    public static func roundedVectorInput(_ type: StorageType, _ x: [Float]) -> [Float] {
        type == .q8 ? Int16Activations.dequantized(x) : MatVec.roundedInput(type, x)
    }

    public static func matrixInputRowFloats(_ n: Int) -> Int { max(MatMul.arrangedRowFloats(n), IntegerMatMul.rowFloats(n)) }

    public static var matMulScratchFloats: Int { max(MatMul.tileFloats, IntegerMatMul.panelFloats) }

    public static func arrangeMatrix(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                                     into out: UnsafeMutablePointer<Float>, ldo: Int) {
        if integer(type) {
            IntegerMatMul.arrangeRows(x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
        } else {
            MatMul.arrangeRows(type, x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
        }
    }

    public static func matMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                              y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        if integer(w.type) {
            IntegerMatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
        } else {
            MatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
        }
    }

    public static func scanStep(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>, u: UnsafePointer<Float>,
                                delta: UnsafePointer<Float>, B: UnsafePointer<Float>, C: UnsafePointer<Float>, D: UnsafePointer<Float>,
                                gate: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, stateSize: Int, range: Range<Int>) {
        if stateSize == 16 {
            ScanAVX512.states16(state: state, A: A, u: u, delta: delta, B: B, C: C, D: D, y: y, range: range)
        } else {
            SSMKernels.states(state: state, A: A, u: u, delta: delta, B: B, C: C, D: D, y: y, stateSize: stateSize, range: range)
        }
        SSMKernels.gate(y, by: gate, range: range)
    }
}
