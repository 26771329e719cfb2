import Foundation
import HymbaFormat
import HymbaKernels
import Testing
@testable import HymbaRuntime
#if arch(x86_64)
@testable import HymbaKernelsX86AVX2
#endif

/// Single-thread speed of the efficient path on a random model of the full Hymba-125M shape
/// (24 layers, d 512, vocabulary 32001). Off unless HYMBA_BENCH is set; run with
/// `HYMBA_BENCH=1 swift test -c release --filter ThroughputTests`.
@Suite("Throughput")
struct ThroughputTests {
    @Test("prefill and decode tokens per second, Hymba-125M shape", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil),
          arguments: [StorageType.bf16, .q8, .q4])
    func throughput(type: StorageType) throws {
        let url = fixturesDirectory.appendingPathComponent("configs/hymba-125m/config.json")
        let c = try HymbaConfig(jsonData: Data(contentsOf: url))
        let model = SyntheticModels.model(c, seed: 1, matrices: type)
        var t = Date()
        _ = model.metaPrefix
        let prefixTime = Date().timeIntervalSince(t)
        let session = try HymbaSession(model: model, options: HymbaOptions(contextLength: 2048, kvType: .f16, prefillChunk: 128))
        let ids = SyntheticModelTests.ids(256, vocab: c.vocabSize, seed: 1)
        t = Date()
        try session.prefill(tokens: ids)
        let prefill = Double(ids.count) / Date().timeIntervalSince(t)
        t = Date()
        for i in 0..<32 { try session.decode(token: ids[i]) }
        let decode = 32 / Date().timeIntervalSince(t)
        print("[throughput] hymba-125m shape, \(type) weights, f16 KV, 1 thread: meta prefix \(String(format: "%.2f", prefixTime)) s, prefill \(String(format: "%.1f", prefill)) tok/s (256 tokens, chunk 128), decode \(String(format: "%.1f", decode)) tok/s")
        #expect(prefill > 0 && decode > 0)
    }

    @Test("matrix-matrix product multiply-adds per second, fp32 and integer kernels", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil))
    func matMulRate() {
        for type in [StorageType.q8, .q4] { matMulRate(type) }
    }

    func matMulRate(_ type: StorageType) {
        let rows = 2048, n = 1536, tokens = 128
        let w = KernelTests.encode(type, rows: rows, length: n, seed: 1)
        defer { w.storage.deallocate() }
        var rng = SyntheticModels.Random(seed: 2)
        let x = rng.normals(tokens * n, std: 1)
        for k in TestBackends.runnable {
            let lda = k.matrixInputRowFloats(n)
            var arranged = [Float](repeating: 0, count: tokens * lda), y = [Float](repeating: 0, count: tokens * rows)
            var tile = [Float](repeating: 0, count: k.matMulScratchFloats)
            var best = Double.infinity
            for _ in 0..<5 {
                let t = Date()
                k.arrangeMatrix(type, x, ldx: n, tokens: tokens, n: n, into: &arranged, ldo: lda)
                k.matMul(w.data, arranged: arranged, ldxa: lda, tokens: tokens, y: &y, ldy: rows, rows: 0..<rows, scratch: &tile)
                best = min(best, Date().timeIntervalSince(t))
            }
            print("[throughput] \(type) matmul \(rows)x\(n) x \(tokens) tokens, \(k.name) kernels, 1 thread: \(String(format: "%.1f", Double(rows * n * tokens) / best / 1e9)) GMAC/s")
            #expect(best > 0)
        }
    }

    #if arch(x86_64)
    /// The AVX2 backend's q4 and q8 prefill product (`IntegerMatMulAVX2`) against the fp32
    /// register tile it replaced there (`MatMulTileAVX2`, still its kernel for the other types),
    /// alternated round by round in one process so that a busy machine slows both alike.
    @Test("AVX2 integer matmul against the AVX2 fp32 tile, alternating",
          .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil && TestBackends.runnable.contains { $0.name == .avx2 }))
    func avx2MatMulAB() {
        for type in [StorageType.q8, .q4] {
            let rows = 2048, n = 1536, tokens = 128
            let w = KernelTests.encode(type, rows: rows, length: n, seed: 1)
            defer { w.storage.deallocate() }
            var rng = SyntheticModels.Random(seed: 2)
            let x = rng.normals(tokens * n, std: 1)
            let lda = AVX2Kernels.matrixInputRowFloats(n)
            var arranged = [Float](repeating: 0, count: tokens * lda), y = [Float](repeating: 0, count: tokens * rows)
            var tile = [Float](repeating: 0, count: AVX2Kernels.matMulScratchFloats)
            var best = (integer: Double.infinity, fp32: Double.infinity)
            for _ in 0..<7 {
                var t = Date()
                AVX2Kernels.arrangeMatrix(type, x, ldx: n, tokens: tokens, n: n, into: &arranged, ldo: lda)
                AVX2Kernels.matMul(w.data, arranged: arranged, ldxa: lda, tokens: tokens, y: &y, ldy: rows, rows: 0..<rows, scratch: &tile)
                best.integer = min(best.integer, Date().timeIntervalSince(t))
                t = Date()
                AVX2Kernels.arrangeFloats(type, x, ldx: n, tokens: tokens, n: n, into: &arranged, ldo: lda)
                AVX2Kernels.floatMatMul(w.data, arranged: arranged, ldxa: lda, tokens: tokens, y: &y, ldy: rows, rows: 0..<rows, scratch: &tile)
                best.fp32 = min(best.fp32, Date().timeIntervalSince(t))
            }
            let rate = { (s: Double) in String(format: "%.1f", Double(rows * n * tokens) / s / 1e9) }
            print("[throughput] \(type) matmul \(rows)x\(n) x \(tokens) tokens, avx2, 1 thread, best of 7 alternating: integer \(rate(best.integer)) GMAC/s, fp32 tile \(rate(best.fp32)) GMAC/s, ratio \(String(format: "%.2f", best.fp32 / best.integer))x")
            #expect(best.integer > 0 && best.fp32 > 0)
        }
    }
    #endif

    /// Matrix-vector products one thread reads per second: a matrix that stays in the cache
    /// (the kernel's own speed) and 24 matrices of 128 MiB in all (weights streamed from
    /// memory, as in decoding a model larger than the cache).
    @Test("matrix-vector product weights per second, portable and integer kernels", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil))
    func matVecRate() {
        for type in [StorageType.q8, .q4] { matVecRate(type) }
    }

    func matVecRate(_ type: StorageType) {
        let n = 1536
        let rows = (type == .q4 ? 120 : 64) * 1024 * 1024 / type.rowBytes(length: n) / 24
        let matrices = (0..<24).map { KernelTests.encode(type, rows: $0 == 0 ? 256 : rows, length: n, seed: UInt64($0)) }
        defer { for m in matrices { m.storage.deallocate() } }
        var rng = SyntheticModels.Random(seed: 2)
        let x = rng.normals(n, std: 1)
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: TestBackends.runnable.map { $0.vectorInputFloats(capacity: n) }.max()!)
        defer { storage.deallocate() }
        var y = [Float](repeating: 0, count: rows)
        for k in TestBackends.runnable {
            let input = ArrangedInput(storage: storage, capacity: n)
            k.arrangeVector(type, x, n, into: input)
            // In cache: the first (small) matrix, many times.
            var best = Double.infinity
            for _ in 0..<5 {
                let t = Date()
                for _ in 0..<100 { k.matVec(matrices[0].data, input, &y, rows: 0..<256) }
                best = min(best, Date().timeIntervalSince(t))
            }
            let hot = Double(100 * 256 * n) / best / 1e9
            best = .infinity
            for _ in 0..<3 {
                let t = Date()
                for m in matrices.dropFirst() { k.matVec(m.data, input, &y, rows: 0..<rows) }
                best = min(best, Date().timeIntervalSince(t))
            }
            let bytes = Double(23 * rows * type.rowBytes(length: n))
            print("[throughput] \(type) matvec, \(k.name) kernels, 1 thread: in cache \(String(format: "%.1f", hot)) G weights/s; streamed \(String(format: "%.1f", Double(23 * rows * n) / best / 1e9)) G weights/s (\(String(format: "%.1f", bytes / best / 1e9)) GB/s)")
            #expect(best > 0)
        }
    }
}

extension ThroughputTests {
    /// How close the decoding q4 products come to the memory's streaming rate: the MLP matrices
    /// of Hymba-1.5B (32 layers of gate and up 5504×1600 and down 1600×5504, 448 MiB of q4,
    /// far larger than the caches) as decoding runs them — input arranged once per product,
    /// rows split over a thread pool — against a plain read of the same bytes with the same
    /// split. The rows hold random codes under unit super-scales: the speed does not depend on
    /// the values, and a real encoding of 448 MiB would take minutes.
    @Test("decode-shaped q4 products against a plain read of the same bytes", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_BENCH"] != nil))
    func decodeProductsAgainstPlainRead() {
        let shapes = [(rows: 5504, n: 1600), (rows: 5504, n: 1600), (rows: 1600, n: 5504)]
        var buffers: [UnsafeMutableRawPointer] = [], matrices: [TensorData] = []
        var bits: UInt64 = 0x9E37_79B9_7F4A_7C15, bytes = 0
        for _ in 0..<32 {
            for (rows, n) in shapes {
                let rowBytes = StorageType.q4.rowBytes(length: n)
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
                let words = buffer.bindMemory(to: UInt64.self, capacity: rows * rowBytes / 8)
                for i in 0..<(rows * rowBytes / 8) {  // xorshift64
                    bits ^= bits << 13; bits ^= bits >> 7; bits ^= bits << 17
                    words[i] = bits
                }
                for r in 0..<rows {  // d = dmin = 1 (f16 0x3C00) at the start of every group
                    var offset = r * rowBytes, s = 0
                    while s < (n + 31) / 32 {
                        let k = min(16, (n + 31) / 32 - s)
                        (buffer + offset).storeBytes(of: UInt32(0x3C00_3C00), as: UInt32.self)
                        offset += Q4Layout.groupBytes(subBlocks: k)
                        s += k
                    }
                }
                buffers.append(buffer)
                bytes += rows * rowBytes
                matrices.append(TensorData(name: "w", type: .q4, shape: [rows, n],
                                           segments: [.init(firstRow: 0, rowCount: rows, base: UnsafeRawPointer(buffer))]))
            }
        }
        defer { for b in buffers { b.deallocate() } }
        var rng = SyntheticModels.Random(seed: 3)
        let x = rng.normals(5504, std: 1)
        let k = TestBackends.runnable[0]
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: k.vectorInputFloats(capacity: 5504))
        defer { storage.deallocate() }
        let input = ArrangedInput(storage: storage, capacity: 5504)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: 5504)
        defer { y.deallocate() }
        let sums = UnsafeMutablePointer<SIMD16<UInt32>>.allocate(capacity: ThreadPool.availableCores + 2)
        sums.initialize(repeating: .zero, count: ThreadPool.availableCores + 2)
        defer { sums.deallocate() }

        for threads in Set([1, 2, ThreadPool.availableCores]).sorted() {
            let pool = ThreadPool(threads: threads)
            var products: [Double] = [], reads: [Double] = []
            for _ in 0..<5 {
                var start = Date()
                for w in matrices {
                    k.arrangeVector(.q4, x, w.rowLength, into: input)
                    pool.parallelFor(count: w.rows, granularity: 16) { _, rows in k.matVec(w, input, y, rows: rows) }
                }
                products.append(Date().timeIntervalSince(start))
                #expect((0..<5504).allSatisfy { y[$0].isFinite })
                start = Date()
                for w in matrices {
                    let rowBytes = w.rowBytes, base = w.segments[0].base
                    pool.parallelFor(count: w.rows, granularity: 16) { thread, rows in
                        // 64 bytes at a time, added up so the loads cannot be dropped.
                        var sum = SIMD16<UInt32>()
                        let first = base + rows.lowerBound * rowBytes, count = rows.count * rowBytes / 64
                        for i in 0..<count { sum &+= first.loadUnaligned(fromByteOffset: 64 * i, as: SIMD16<UInt32>.self) }
                        sums[thread] &+= sum
                    }
                }
                reads.append(Date().timeIntervalSince(start))
            }
            #expect((0..<threads).contains { sums[$0] != .zero })
            let product = Double(bytes) / products.sorted()[2] / 1e9, read = Double(bytes) / reads.sorted()[2] / 1e9
            print("[throughput] decode-shaped q4 products (\(bytes >> 20) MiB), \(threads) thread\(threads > 1 ? "s" : ""), medians of 5: products \(String(format: "%.1f", product)) GB/s, plain read \(String(format: "%.1f", read)) GB/s (products at \(Int((100 * product / read).rounded()))%)")
        }
    }
}
