import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// The AVX-512 backend, for x86-64 CPUs with AVX-512 VNNI, BW and VL (Intel from Cascade Lake,
/// AMD from Zen 4): q4 and q8 products on integer dot-product instructions (`IntegerMatVec`,
/// `IntegerMatVecBatch`, `Q4MatMul`, `IntegerMatMul`), the scan's 16-wide states in one register (`ScanAVX512`), and the
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

    // Prefill: q4 on byte products with one sub-block per lane (`Q4MatMul`), q8 on 16-bit
    // products (`IntegerMatMul`); each has its own input layout.

    public static var packedMatMulScratchFloats: Int { max(IntegerMatMul.panelFloats, Q4MatMul.panelFloats) }

    public static func packedMatrixRowFloats(_ n: Int) -> Int { max(Int16MatrixInput(n).floats, Q4MatMul.Layout(n).floats) }

    public static func arrangePackedRow(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        if type == .q4 { Q4MatMul.arrangeRow(x, Q4MatMul.Layout(n), into: out) } else { IntegerMatMul.arrangeRow(x, Int16MatrixInput(n), into: out) }
    }

    public static func packedMatMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                                    y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        if w.type == .q4 {
            Q4MatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
        } else {
            IntegerMatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
        }
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
