import HymbaFormat
import HymbaKernels
@testable import HymbaRuntime
#if arch(x86_64)
@testable import HymbaKernelsX86AVX512
#endif

/// The kernel backends the tests run on: every one this build carries that this CPU can run,
/// best first. Each backend the host lacks is printed once as skipped, by name.
enum TestBackends {
    static let runnable: [any KernelBackend.Type] = {
        for name in KernelBackendName.allCases where !KernelDispatch.runnable.contains(name) {
            let why = KernelDispatch.compiled.contains(name) ? "this CPU cannot run it" : "not in this build"
            print("kernel backend \(name): SKIPPED (\(why))")
        }
        return KernelDispatch.runnable.map { try! KernelDispatch.kernels($0) }
    }()

    /// The names of `runnable` (as test arguments), the skipped ones printed first.
    static var names: [KernelBackendName] {
        _ = runnable
        return KernelDispatch.runnable
    }

    /// The AVX-512 backend when this host runs it.
    static var avx512: (any KernelBackend.Type)? { runnable.first { $0.name == .avx512 } }

    /// The backends whose q4/q8 products use the packed integer layout and rounding
    /// (`ArrangedInput.packed`, `Int16Activations`): AVX-512 and AVX2, where this host runs them.
    static var packedInteger: [any KernelBackend.Type] { runnable.filter { $0.name == .avx512 || $0.name == .avx2 } }
}

extension KernelBackend {
    /// All rows of `w` times x, arranging x in a temporary buffer.
    static func matVec(_ w: TensorData, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: vectorInputFloats(capacity: w.rowLength))
        defer { storage.deallocate() }
        let input = ArrangedInput(storage: storage, capacity: w.rowLength)
        arrangeVector(w.type, x, w.rowLength, into: input)
        matVec(w, input, y, rows: 0..<w.rows)
    }
}

extension KernelBackend {
    /// The backend's 16-lane exp, softplus, SiLU and decay exp on one vector, through its
    /// array entries (the same vector code its kernels run).
    static func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> { through(x) { exp($0, into: $1, count: 16) } }
    static func decayExp16(_ x: SIMD16<Float>) -> SIMD16<Float> { through(x) { decayExp($0, into: $1, count: 16) } }
    static func softplus16(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let zero = [Float](repeating: 0, count: 16)
        return through(x) { $1.update(from: $0, count: 16); softplusBias($1, zero, 16) }
    }
    static func silu16(_ x: SIMD16<Float>) -> SIMD16<Float> { through(x) { $1.update(from: $0, count: 16); siluInPlace($1, 16) } }

    private static func through(_ x: SIMD16<Float>, _ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> SIMD16<Float> {
        var input = x, out = SIMD16<Float>()
        withUnsafePointer(to: &input) { i in
            withUnsafeMutablePointer(to: &out) { o in
                f(UnsafeRawPointer(i).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(o).assumingMemoryBound(to: Float.self))
            }
        }
        return out
    }
}

extension KernelBackend {
    /// Attention of one query position (`attendRows` with one row).
    static func attend(q: UnsafePointer<Float>, cache: KVCache, position p: Int, window: Int?, queryHeads H: Int,
                       heads: Range<Int>, scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        attendRows(q: q, ldq: 0, rows: 1, cache: cache.attentionView, firstPosition: p, window: window, queryHeads: H,
                   heads: heads, scratch: scratch, out: out, ldo: 0)
    }
}
