import HymbaFormat
import HymbaKernels
import Testing

/// `matVecBatch` (batched decoding) against the single-input `matVec` of the same backend:
/// every input's result must have the same bits, or a greedy request would answer differently
/// batched than alone.
@Suite("Batched matrix-vector products")
struct BatchedMatVecTests {
    /// Input i of a batch: random values of its own scale, some with an all-zero stretch, a
    /// NaN or an infinity (the kernels' non-finite paths).
    static func input(_ i: Int, length n: Int) -> [Float] {
        var rng = SyntheticModels.Random(seed: 1000 + UInt64(i))
        var x = rng.normals(n, std: Float(1 << (i % 5)) / 4)
        switch i % 4 {
        case 1: for j in stride(from: 0, to: min(n, 64), by: 1) { x[j] = 0 }
        case 2: x[n / 2] = .nan
        case 3: x[n - 1] = i % 8 == 3 ? .infinity : -.infinity
        default: break
        }
        return x
    }

    @Test("matVecBatch equals matVec bitwise: every backend, every type, ragged lengths, 1…9 inputs, non-finite inputs",
          arguments: KernelTests.types)
    func equalsSingle(type: StorageType) {
        let rows = 37
        for k in TestBackends.runnable {
            for n in [7, 100, 128, 129, 517, 1024 + 64, 1600, 5504] {
                let w = KernelTests.encode(type, rows: rows, length: n, seed: UInt64(n) &+ 7)
                defer { w.storage.deallocate() }
                let floats = k.vectorInputFloats(capacity: n)
                let inputs = (0..<9).map { _ in ArrangedInput(storage: .allocate(capacity: floats), capacity: n) }
                defer { for input in inputs { input.storage.deallocate() } }
                for (i, input) in inputs.enumerated() { k.arrangeVector(type, Self.input(i, length: n), n, into: input) }
                for count in 1...9 {
                    for range in [0..<rows, 5..<33] {
                        let single = inputs[..<count].map { input in
                            var y = [Float](repeating: 0, count: rows)
                            k.matVec(w.data, input, &y, rows: range)
                            return y
                        }
                        let outputs = (0..<count).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: rows) }
                        defer { for y in outputs { y.deallocate() } }
                        for y in outputs { y.initialize(repeating: 0, count: rows) }
                        inputs[..<count].withUnsafeBufferPointer { x in
                            outputs.withUnsafeBufferPointer { ys in k.matVecBatch(w.data, x, ys, rows: range) }
                        }
                        for i in 0..<count {
                            let batched = Array(UnsafeBufferPointer(start: outputs[i], count: rows))
                            #expect(batched.map(\.bitPattern) == single[i].map(\.bitPattern),
                                    "\(k.name): \(type) n=\(n), \(count) inputs, rows \(range): input \(i) differs")
                        }
                        // The test must be able to fail: the inputs' own products differ.
                        if count == 9 && range == 0..<rows {
                            #expect(single[0].map(\.bitPattern) != single[4].map(\.bitPattern), "\(k.name): \(type) n=\(n): inputs 0 and 4 agree")
                        }
                    }
                }
            }
        }
    }
}
