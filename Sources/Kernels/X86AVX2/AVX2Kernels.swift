import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

/// The AVX2 backend, for x86-64-v3 CPUs (AVX2, FMA, F16C: Intel from Haswell, AMD from Zen 1):
/// this target is compiled for `haswell` (Package.swift), so the portable kernels it inherits
/// run on 256-bit registers with fused multiply-adds. Entries with an AVX2 kernel of their own
/// are implemented here and replace the inherited ones.
public enum AVX2Kernels: PortableKernelBackend {
    public typealias Vectors = PortableVectorUnit<AVX2Kernels>
    public static var name: KernelBackendName { .avx2 }

    // q4 and q8 decoding on 256-bit integer products (`Q4MatVecAVX2`, `Q8MatVecAVX2`), in the
    // AVX-512 backend's packed layout and rounding; q4 and q8 prefill on 16-bit integer
    // products (`IntegerMatMulAVX2`, the AVX-512 backend's `Int16MatrixInput` layout and
    // rounding); the fp32 matmul of the other types with a register tile sized for 16
    // registers of 8 lanes (`MatMulTileAVX2`).

    @inline(__always)
    static func integer(_ type: StorageType) -> Bool { type == .q4 || type == .q8 }

    public static func vectorInputFloats(capacity: Int) -> Int {
        ArrangedInput.portableFloats(capacity: capacity) + ArrangedInput.packedFloats(capacity: capacity)
    }

    public static func arrangeVector(_ type: StorageType, _ x: UnsafePointer<Float>, _ n: Int, into input: ArrangedInput) {
        precondition(n <= input.capacity, "input of \(n) elements exceeds the arranged buffer (\(input.capacity))")
        switch type {
        case .q4: Q4MatVecAVX2.arrange(x, n, into: input)
        case .q8: Q8MatVecAVX2.arrange(x, n, into: input)
        case .f32, .f16, .bf16: input.arrangePortable(type, x, n)
        }
    }

    public static func matVec(_ w: TensorData, _ input: ArrangedInput, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        switch w.type {
        case .q4: Q4MatVecAVX2.run(w, input, y, rows: rows)
        case .q8: Q8MatVecAVX2.run(w, input, y, rows: rows)
        case .f32, .f16, .bf16: MatVec.run(w, input, y, rows: rows)
        }
    }

    public static func roundedVectorInput(_ type: StorageType, _ x: [Float]) -> [Float] {
        type == .q8 ? Int16Activations.dequantized(x) : MatVec.roundedInput(type, x)
    }

    public static func matrixInputRowFloats(_ n: Int) -> Int { max(MatMul.arrangedRowFloats(n), Int16MatrixInput(n).floats) }

    public static var matMulScratchFloats: Int { max(MatMul.tileFloats, IntegerMatMulAVX2.panelFloats) }

    public static func arrangeMatrix(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                                     into out: UnsafeMutablePointer<Float>, ldo: Int) {
        if integer(type) {
            IntegerMatMulAVX2.arrangeRows(x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
        } else {
            arrangeFloats(type, x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
        }
    }

    public static func matMul(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                              y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        if integer(w.type) {
            IntegerMatMulAVX2.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch)
        } else {
            matMulFloats(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, scratch: scratch)
        }
    }

    // The fp32 product of every other type (and of q4 and q8 too, for the speed comparison in
    // `ThroughputTests`), compiled here for this backend's instruction set.

    static func arrangeFloats(_ type: StorageType, _ x: UnsafePointer<Float>, ldx: Int, tokens: Int, n: Int,
                              into out: UnsafeMutablePointer<Float>, ldo: Int) {
        MatMul.arrangeRows(type, x, ldx: ldx, tokens: tokens, n: n, into: out, ldo: ldo)
    }

    static func matMulFloats(_ w: TensorData, arranged xa: UnsafePointer<Float>, ldxa: Int, tokens: Int,
                             y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        MatMul.run(w, arranged: xa, ldxa: ldxa, tokens: tokens, y: y, ldy: ldy, rows: rows, tile: scratch,
                   kernel: MatMulTileAVX2.kernel4x4)
    }
}
