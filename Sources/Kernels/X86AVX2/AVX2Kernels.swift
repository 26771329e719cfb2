import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// The AVX2 backend, for x86-64-v3 CPUs (AVX2, FMA, F16C: Intel from Haswell, AMD from Zen 1):
/// this target is compiled for `haswell` (Package.swift), so the portable kernels it inherits
/// run on 256-bit registers with fused multiply-adds. Entries with an AVX2 kernel of their own
/// are implemented here and replace the inherited ones.
public enum AVX2Kernels: PackedIntegerKernelBackend {
    public typealias Vectors = PortableVectorUnit<AVX2Kernels>
    public static var name: KernelBackendName { .avx2 }

    // q4 and q8 decoding on 256-bit integer products (`Q4MatVecAVX2`, `Q8MatVecAVX2`), in the
    // AVX-512 backend's packed layout and rounding; q4 prefill on byte products one sub-block
    // per lane (`Q4MatMulAVX2`, `SubBlockMatrixInput`: the AVX-512 q4 prefill's layout and
    // rounding); q8 prefill on 16-bit integer products (`IntegerMatMulAVX2`, in the
    // `Int16MatrixInput` layout and rounding of the AVX-512 backend's q8 prefill); the fp32 matmul of the other types with a register tile sized for 16
    // registers of 8 lanes (`MatMulTileAVX2`). `PackedIntegerKernelBackend` routes each type.

    public static func arrangePacked(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        if type == .q4 { Q4MatVecAVX2.arrange(x, n, into: input) } else { Q8MatVecAVX2.arrange(x, n, into: input) }
    }

    public static func packedMatVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        if w.type == .q4 { Q4MatVecAVX2.run(w, input, y, rows: rows) } else { Q8MatVecAVX2.run(w, input, y, rows: rows) }
    }

    public static var packedMatMulScratchFloats: Int { max(IntegerMatMulAVX2.panelFloats, Q4MatMulAVX2.panelFloats) }

    public static func packedMatrixRowFloats(_ n: Int) -> Int { max(Int16MatrixInput(n).floats, SubBlockMatrixInput(n).floats) }

    public static func arrangePackedRow(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        if type == .q4 {
            Q4MatMulAVX2.arrangeRow(x, SubBlockMatrixInput(n), into: out)
        } else {
            IntegerMatMulAVX2.arrangeRow(x, Int16MatrixInput(n), into: out)
        }
    }

    public static func packedMatMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                                    y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        if w.type == .q4 {
            Q4MatMulAVX2.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
        } else {
            IntegerMatMulAVX2.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
        }
    }

    public static func matVecBatch(_ w: TensorData, _ inputs: UnsafeBufferPointer<ArrangedInput>,
                                   _ ys: UnsafeBufferPointer<UnsafeMutablePointer<Float>>, rows: Range<Int>) {
        if w.type == .q4 {
            Q4MatVecBatchAVX2.run(w, inputs, ys, rows: rows)
        } else {
            for i in inputs.indices { matVec(w, inputs[i], ys[i], rows: rows) }
        }
    }

    public static func scanStep(state: UnsafeMutablePointer<Float>, A: UnsafePointer<Float>, u: UnsafePointer<Float>,
                                delta: UnsafePointer<Float>, B: UnsafePointer<Float>, C: UnsafePointer<Float>, D: UnsafePointer<Float>,
                                gate: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, stateSize: Int, range: Range<Int>) {
        if stateSize == 16 {
            ScanAVX2.states16(state: state, A: A, u: u, delta: delta, B: B, C: C, D: D, y: y, range: range)
        } else {
            SSMKernels.states(state: state, A: A, u: u, delta: delta, B: B, C: C, D: D, y: y, stateSize: stateSize, range: range)
        }
        SSMKernels.gate(y, by: gate, range: range)
    }

    /// The fp32 product with the AVX2 register tile (every type's but q4 and q8; for q4 and q8
    /// too in `ThroughputTests`' speed comparison).
    public static func floatMatMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                                   y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        MatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch,
                   kernel: MatMulTileAVX2.kernel4x4)
    }

    /// The fp32 product's input arrangement for any type (`ThroughputTests`' speed comparison),
    /// compiled here for this backend's instruction set.
    static func arrangeFloats(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                              into out: UnsafeMutablePointer<Float>, ldo: Int) {
        MatMul.arrangeRows(type, x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
    }
}
