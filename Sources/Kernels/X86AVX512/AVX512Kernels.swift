import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// The AVX-512 backend, for x86-64 CPUs with AVX-512 VNNI, BW and VL (Intel from Cascade Lake,
/// AMD from Zen 4): q4 and q8 products on integer dot-product instructions (`IntegerMatVec`,
/// `IntegerMatMul`), the scan's 16-wide states in one register (`ScanAVX512`), and the
/// portable kernels compiled for this instruction set with `AVX512Vectors` for the rest.
public enum AVX512Kernels: PackedIntegerKernelBackend {
    public typealias Vectors = AVX512Vectors
    public static var name: KernelBackendName { .avx512 }

    public static func arrangePacked(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        if type == .q4 { IntegerMatVec.arrangeQ4(x, n, into: input) } else { IntegerMatVec.arrangeQ8(x, n, into: input) }
    }

    public static func packedMatVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        IntegerMatVec.run(w, input, y, rows: rows)
    }

    public static var packedMatMulScratchFloats: Int { IntegerMatMul.panelFloats }

    public static func arrangePackedRow(_ x: UnsafePointer<Float>, _ layout: Int16MatrixInput, into out: UnsafeMutablePointer<Float>) {
        IntegerMatMul.arrangeRow(x, layout, into: out)
    }

    public static func packedMatMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                                    y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        IntegerMatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
    }

    public static func matVecBatch(_ w: TensorData, _ inputs: UnsafeBufferPointer<ArrangedInput>,
                                   _ ys: UnsafeBufferPointer<UnsafeMutablePointer<Float>>, rows: Range<Int>) {
        if packedInteger(w.type) {
            IntegerMatVec.runBatch(w, inputs, ys, rows: rows)
        } else {
            for i in inputs.indices { MatVec.run(w, inputs[i], ys[i], rows: rows) }
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
