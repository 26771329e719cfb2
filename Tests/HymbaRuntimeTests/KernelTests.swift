import Foundation
import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable
import Testing
@testable import HymbaRuntime
#if arch(x86_64)
@testable import HymbaKernelsX86AVX512
#endif

/// Each SIMD kernel against a plain scalar computation, on odd shapes (tails, partial q8/q4
/// blocks and groups, ring wrap-around).
@Suite("Kernels")
struct KernelTests {
    /// Rows of `length` random values encoded in `type`, and their decoded values (the codec's
    /// reference decoder: what the kernels must reproduce).
    struct Encoded {
        let data: TensorData
        let decoded: [Float]
        let storage: UnsafeMutableRawPointer
    }

    static func encode(_ type: StorageType, rows: Int, length n: Int, seed: UInt64) -> Encoded {
        var rng = SyntheticModels.Random(seed: seed)
        return encode(type, values: rng.normals(rows * n, std: 1), rows: rows, length: n)
    }

    /// `rows` rows of `n` of `values` stored as `type`.
    static func encode(_ type: StorageType, values: [Float], rows: Int, length n: Int) -> Encoded {
        let rb = type.rowBytes(length: n)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * rb), alignment: 64)
        values.withUnsafeBufferPointer { v in
            for r in 0..<rows { StorageCodec.encodeRow(type: type, v.baseAddress! + r * n, length: n, into: buf + r * rb) }
        }
        let data = TensorData(name: "w", type: type, shape: [rows, n], segments: [.init(firstRow: 0, rowCount: rows, base: UnsafeRawPointer(buf))])
        return Encoded(data: data, decoded: data.decodeAll(), storage: buf)
    }

    static let types: [StorageType] = [.f32, .bf16, .f16, .q8, .q4]
    static let lengths = [1, 7, 16, 31, 33, 100, 517, 1600]

    /// Both kernels where the build has the integer one (`IntegerMatVec`), the portable one
    /// everywhere: each against W·x̂ for the x̂ it multiplies (`MatVec.roundedInput`).
    @Test("dot products and matvec, every storage type, odd lengths, portable and integer kernels", arguments: types)
    func matVec(type: StorageType) {
        for k in TestBackends.runnable {
            for n in Self.lengths + [512, 1024 + 64, 8320] {
                // 37 rows: whole blocks of 16 and a short one where a kernel batches rows.
                let rows = 37
                let w = Self.encode(type, rows: rows, length: n, seed: UInt64(n))
                defer { w.storage.deallocate() }
                var rng = SyntheticModels.Random(seed: 99)
                let x = rng.normals(n, std: 1)
                let xr = k.roundedVectorInput(type, x)
                var y = [Float](repeating: .nan, count: rows)
                k.matVec(w.data, x, &y)
                for r in 0..<rows {
                    var ref: Double = 0, mag: Double = 0
                    for i in 0..<n { ref += Double(w.decoded[r * n + i]) * Double(xr[i]); mag += abs(Double(w.decoded[r * n + i]) * Double(xr[i])) }
                    #expect(abs(Double(y[r]) - ref) <= 1e-5 * mag + 1e-6, "\(k.name): \(type) n=\(n) row \(r): \(y[r]) vs \(ref)")
                }
                // A row range computes those rows only, with the same values (bits), wherever
                // the range starts.
                let storage = UnsafeMutablePointer<Float>.allocate(capacity: k.vectorInputFloats(capacity: n))
                defer { storage.deallocate() }
                let input = ArrangedInput(storage: storage, capacity: n)
                k.arrangeVector(type, x, n, into: input)
                for range in [1..<4, 5..<33] {
                    var part = [Float](repeating: .nan, count: rows)
                    k.matVec(w.data, input, &part, rows: range)
                    #expect(part[range.lowerBound - 1].isNaN && part[range.upperBound].isNaN
                            && part[range].map(\.bitPattern) == y[range].map(\.bitPattern), "\(k.name): \(type) n=\(n): rows \(range)")
                }
            }
        }
    }

    /// The integer q8 kernels' 16-bit activations (AVX-512 and AVX2 backends): within a/2 of x
    /// (and float rounding) with a = max|x|/32767 per block; a non-finite input makes the
    /// products NaN.
    @Test("int16 activations for q8 (integer kernels): rounding bound, non-finite input", .enabled(if: !TestBackends.packedInteger.isEmpty))
    func q8IntegerActivations() {
        var rng = SyntheticModels.Random(seed: 6)
        for n in Self.lengths + [4096] {
            let x = rng.normals(n, std: 3)
            let xr = Int16Activations.dequantized(x)
            for s in 0..<((n + 31) / 32) {
                let block = (32 * s)..<min(n, 32 * s + 32)
                let a = block.map { abs(x[$0]) }.max()! / 32767
                // a/2, plus the float rounding of x·(1/a) and of a·c at codes up to 32767 (2⁻⁹·a).
                for i in block { #expect(abs(xr[i] - x[i]) <= a * 0.505 + 1e-30, "n=\(n) element \(i)") }
            }
        }
        Self.expectNonFiniteInputGivesNaN(.q8, rows: 3, at: [7, 599], backends: TestBackends.packedInteger, &rng)
    }

    /// A matrix-vector product of 600-wide `type` rows whose input holds NaN or ±∞ at any of
    /// `positions` gives NaN in every row (never a silently wrong number), for each kernel choice.
    static func expectNonFiniteInputGivesNaN(_ type: StorageType, rows: Int, at positions: [Int], backends: [any KernelBackend.Type],
                                             _ rng: inout SyntheticModels.Random) {
        let w = encode(type, rows: rows, length: 600, seed: 8)
        defer { w.storage.deallocate() }
        for bad in [Float.nan, .infinity, -.infinity] {
            for at in positions {
                var x = rng.normals(600, std: 1)
                x[at] = bad
                for kernel in backends {
                    var y = [Float](repeating: 0, count: rows)
                    kernel.matVec(w.data, x, &y)
                    let allNaN = y.allSatisfy { $0.isNaN }
                    #expect(allNaN, "\(type): \(bad) at \(at) in the input, \(kernel.name): \(y)")
                }
            }
        }
    }

    @Test("row decoding equals the codec's decoder", arguments: types)
    func rowDecode(type: StorageType) {
        for n in Self.lengths {
            let w = Self.encode(type, rows: 2, length: n, seed: UInt64(n) + 5)
            defer { w.storage.deallocate() }
            var out = [Float](repeating: .nan, count: n)
            RowDecode.decode(type, w.data.row(1), n, into: &out)
            let ref = Array(w.decoded[n...])
            let worst = zip(out, ref).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst <= 1e-6, "\(type) n=\(n)")
        }
    }

    static let matMulShapes = [(7, 33, 5), (9, 100, 9), (4, 16, 4), (1, 5, 3), (13, 1600, 6), (6, 1100, 2)]

    /// Runs the blocked product (`integer`: the integer kernel where the build has one) on
    /// tokens rows of x (`ldx` apart); y rows `ldy` apart, NaN where not written.
    static func matMul(_ w: Encoded, x: [Float], ldx: Int, tokens: Int, ldy: Int, rows: [Range<Int>], kernels k: any KernelBackend.Type) -> [Float] {
        let n = w.data.rowLength
        var y = [Float](repeating: .nan, count: tokens * ldy)
        let lda = k.matrixInputRowFloats(n) + 32
        var arranged = [Float](repeating: .nan, count: tokens * lda)
        var tile = [Float](repeating: .nan, count: k.matMulScratchFloats)
        k.arrangeMatrix(w.data.type, x, ldx: ldx, tokens: tokens, n: n, into: &arranged, ldo: lda)
        for part in rows {
            k.matMul(w.data, arranged: arranged, ldxa: lda, tokens: tokens, y: &y, ldy: ldy, rows: part, scratch: &tile)
        }
        return y
    }

    @Test("fp32 matmul equals matvec per token (row tiles, depth blocks, tails, strided rows)", arguments: types)
    func matMul(type: StorageType) {
        // Every backend whose matmul for `type` is the fp32 one (the AVX-512 and AVX2 backends'
        // q4 and q8 products are checked by `integerMatMul`).
        let integer = type == .q4 || type == .q8
        for k in TestBackends.runnable where !(integer && TestBackends.packedInteger.contains { $0.name == k.name }) {
        for (rows, n, tokens) in Self.matMulShapes {
            let w = Self.encode(type, rows: rows, length: n, seed: 17)
            defer { w.storage.deallocate() }
            let ldx = n + 3, ldy = rows + 2
            var rng = SyntheticModels.Random(seed: 3)
            let x = rng.normals(tokens * ldx, std: 1)
            let y = Self.matMul(w, x: x, ldx: ldx, tokens: tokens, ldy: ldy, rows: [0..<rows], kernels: k)
            for t in 0..<tokens {
                var yv = [Float](repeating: 0, count: rows)
                Array(x[(t * ldx)..<(t * ldx + n)]).withUnsafeBufferPointer { k.matVec(w.data, $0.baseAddress!, &yv) }
                // The quantized matvec kernels round the input (`MatVec.roundedInput`), the fp32
                // matmul does not: the difference is bounded by Σ|w|·|x − x̂| on top of the
                // summation order.
                let xt = Array(x[(t * ldx)..<(t * ldx + n)])
                let xr = k.roundedVectorInput(type, xt)
                for r in 0..<rows {
                    // The two kernels sum in different orders: bound by the products' magnitude.
                    var mag: Float = 0, rounding: Float = 0
                    for i in 0..<n {
                        mag += abs(w.decoded[r * n + i] * xt[i])
                        rounding += abs(w.decoded[r * n + i] * (xt[i] - xr[i]))
                    }
                    #expect(abs(y[t * ldy + r] - yv[r]) <= rounding * 1.0001 + 1e-5 * mag + 1e-6, "\(k.name): \(type) \(rows)x\(n) token \(t) row \(r)")
                }
                // Padding columns of y are untouched.
                #expect(y[t * ldy + rows].isNaN && y[t * ldy + rows + 1].isNaN)
            }
        }
        }
    }

    /// The integer kernel computes W'·x̂: x rounded to 16-bit codes per 512 elements (|x − x̂| ≤
    /// a/2, a = max|x|/8191 over the block) and, for q8, the weights re-expressed on one scale
    /// per 512 (|w − w'| ≤ D/2, D = max|w|·128/(127·8191)). The q4 products round x as decoding
    /// does instead: 8-bit codes per sub-block of 32 (a = max|x|/127 over the sub-block). The error against W·x is bounded by those roundings; a wrong layout or
    /// scale would be off by the size of the products.
    /// On every backend with the packed integer products (AVX-512 VNNI and AVX2), over shapes
    /// with row counts off their register tiles and panels, depths off whole blocks and pairs of
    /// sub-blocks, and 1 to 9 tokens.
    @Test("integer matmul (AVX-512 VNNI, AVX2) equals W·x within its input roundings; row splits agree bitwise",
          .enabled(if: !TestBackends.packedInteger.isEmpty), arguments: [StorageType.q8, .q4])
    func integerMatMul(type: StorageType) {
        for k in TestBackends.packedInteger {
        for (rows, n, tokens) in Self.matMulShapes + [(5, 8320, 7), (8, 96, 4), (3, 600, 5), (11, 2048, 9), (6, 700, 1), (37, 1056, 3), (2, 64, 1)] {
            let w = Self.encode(type, rows: rows, length: n, seed: 23)
            defer { w.storage.deallocate() }
            let ldx = n + 3, ldy = rows + 2
            var rng = SyntheticModels.Random(seed: 5)
            let x = rng.normals(tokens * ldx, std: 2)
            let y = Self.matMul(w, x: x, ldx: ldx, tokens: tokens, ldy: ldy, rows: [0..<rows], kernels: k)
            let split = Self.matMul(w, x: x, ldx: ldx, tokens: tokens, ldy: ldy, rows: [0..<min(3, rows), min(3, rows)..<rows], kernels: k)
            #expect(zip(y, split).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(k.name): \(type) \(rows)x\(n): row split changed the results")
            let perSubBlock = type == .q4
            for t in 0..<tokens {
                if perSubBlock {
                    // The same x̂ as decoding: the two products differ only in summation order.
                    var yv = [Float](repeating: 0, count: rows)
                    let xt = Array(x[(t * ldx)..<(t * ldx + n)]), xr = k.roundedVectorInput(type, xt)
                    xt.withUnsafeBufferPointer { k.matVec(w.data, $0.baseAddress!, &yv) }
                    for r in 0..<rows {
                        let mag = (0..<n).reduce(Float(0)) { $0 + abs(w.decoded[r * n + $1] * xr[$1]) }
                        #expect(abs(y[t * ldy + r] - yv[r]) <= 1e-5 * mag + 1e-6, "\(k.name): q4 \(rows)x\(n) token \(t) row \(r): prefill \(y[t * ldy + r]) vs decode \(yv[r])")
                    }
                }
                for r in 0..<rows {
                    var ref: Double = 0, bound: Double = 0
                    for g in 0..<((n + 511) / 512) {
                        let block = (512 * g)..<min(n, 512 * g + 512)
                        let blockMax = Double(block.map { abs(x[t * ldx + $0]) }.max()!)
                        let D = Double(block.map { abs(w.decoded[r * n + $0]) }.max()!) * 128 / (127 * 8191)
                        for i in block {
                            let wi = Double(w.decoded[r * n + i]), xi = Double(x[t * ldx + i])
                            let s = i / 32 * 32
                            let a = perSubBlock ? Double(x[(t * ldx + s)..<(t * ldx + min(n, s + 32))].map(abs).max()!) / 127 : blockMax / 8191
                            ref += wi * xi
                            bound += abs(wi) * a / 2 + (type == .q8 ? (abs(xi) + a) * D / 2 : 0) + 1e-5 * abs(wi * xi)
                        }
                    }
                    #expect(abs(Double(y[t * ldy + r]) - ref) <= bound * 1.001 + 1e-6, "\(k.name): \(type) \(rows)x\(n) token \(t) row \(r): \(y[t * ldy + r]) vs \(ref) (bound \(bound))")
                }
                #expect(y[t * ldy + rows].isNaN && y[t * ldy + rows + 1].isNaN)
            }
            // A non-finite input makes its token's outputs NaN and leaves the others alone.
            for bad in [Float.nan, .infinity] where tokens > 1 {
                var xb = x
                xb[ldx + n - 1] = bad
                let yb = Self.matMul(w, x: xb, ldx: ldx, tokens: tokens, ldy: ldy, rows: [0..<rows], kernels: k)
                #expect((0..<rows).allSatisfy { yb[ldy + $0].isNaN }, "\(k.name): \(type) \(rows)x\(n): \(bad) input")
                #expect((0..<rows).allSatisfy { yb[$0] == y[$0] }, "\(k.name): \(type) \(rows)x\(n): \(bad) leaked into another token")
            }
        }
        }
    }

    /// The largest products the rounding allows, all of one sign (every input equal, so every
    /// activation code is 8191; q8 weights all equal, so every w' is the largest; q4 weights 0
    /// and 1, so the codes are 0 and 15 at scale 63): the 32-bit integer sums must not wrap.
    @Test("integer matmul (AVX-512 VNNI, AVX2) of the largest codes does not overflow",
          .enabled(if: !TestBackends.packedInteger.isEmpty), arguments: [StorageType.q8, .q4])
    func integerMatMulExtremes(type: StorageType) {
        for k in TestBackends.packedInteger {
            let rows = 5, n = 1024, tokens = 3
            for sign: Float in [1, -1] {
                let values = (0..<(rows * n)).map { type == .q8 || $0 % 2 == 0 ? Float(1) : 0 }
                let w = Self.encode(type, values: values, rows: rows, length: n)
                defer { w.storage.deallocate() }
                let x = [Float](repeating: 3 * sign, count: tokens * n)
                let y = Self.matMul(w, x: x, ldx: n, tokens: tokens, ldy: rows, rows: [0..<rows], kernels: k)
                for t in 0..<tokens {
                    for r in 0..<rows {
                        let ref = (0..<n).reduce(0.0) { $0 + Double(w.decoded[r * n + $1]) * Double(x[t * n + $1]) }
                        #expect(abs(Double(y[t * rows + r]) - ref) <= 1e-3 * abs(ref), "\(k.name): \(type) token \(t) row \(r): \(y[t * rows + r]) vs \(ref)")
                    }
                }
            }
        }
    }

    /// The q4 matrix-vector product's int8 activations: per 32 elements, codes of x/a rounded
    /// to nearest with a = max|x|/127, so every value is within a/2; all-zero blocks stay zero;
    /// a non-finite input makes the products NaN instead of silently wrong.
    @Test("int8 activations for q4: rounding bound, zeros, non-finite input")
    func q8Activations() {
        var rng = SyntheticModels.Random(seed: 4)
        for n in Self.lengths + [4096] {
            var x = rng.normals(n, std: 3)
            if n > 40 { for i in 32..<40 { x[i] = 0 } }  // a partly zero block
            let xr = Q8Activations.dequantized(x)
            for s in 0..<((n + 31) / 32) {
                let block = (32 * s)..<min(n, 32 * s + 32)
                let a = block.map { abs(x[$0]) }.max()! / 127
                for i in block { #expect(abs(xr[i] - x[i]) <= a / 2 * 1.0001 + 1e-30, "n=\(n) element \(i)") }
            }
            if n > 40 {
                let zeros = (32..<40).allSatisfy { xr[$0] == 0 }
                #expect(zeros)
            }
        }
        #expect(Q8Activations.dequantized([Float](repeating: 0, count: 64)) == [Float](repeating: 0, count: 64))
        // Element 7 lies in a run; 555 in the row's leftover sub-blocks (600 = 16 + 2 full + 24).
        Self.expectNonFiniteInputGivesNaN(.q4, rows: 2, at: [7, 555], backends: TestBackends.runnable, &rng)
    }

    /// The integer q4 kernels' packed activations (AVX-512 and AVX2 backends, one layout), byte
    /// for byte against the rule they follow:
    /// per sub-block of 32, codes round(x·127/max|x|) (half to even), scale max|x|/127 and
    /// scale·Σcodes; zero sub-blocks all 0; a non-finite element gives its sub-block codes 0
    /// and a NaN scale and sum. Whole groups of 16 sub-blocks take a vector path of their own,
    /// so the lengths cover groups, partial groups and a short last sub-block.
    @Test("integer q4 kernels: packed activations equal the scalar rule", .enabled(if: !TestBackends.packedInteger.isEmpty))
    func integerQ4Packing() {
        Self.packingCases(.q4, seed: 12) { k, n, x, input in
            let nsub = (n + 31) / 32
            for s in 0..<((nsub + 15) / 16 * 16) {
                let block = min(n, 32 * s)..<min(n, 32 * s + 32)
                let values = block.isEmpty ? [] : Array(x[block])
                let largest = values.map(abs).max() ?? 0
                var codes = [Int8](repeating: 0, count: 32), scale: Float = 0, sum: Float = 0
                if !values.allSatisfy(\.isFinite) {
                    scale = .nan; sum = .nan
                } else if largest > 0 {
                    let inv = 127 / largest
                    for (e, v) in values.enumerated() { codes[e] = Int8((v * inv).rounded(.toNearestOrEven)) }
                    scale = largest / 127
                    sum = scale * Float(codes.reduce(0) { $0 + Int($1) })
                }
                let base = input.packed + 128 * (s / 4) + 16 * (s % 4)
                let packed = (0..<32).map { e in base.load(fromByteOffset: e < 16 ? e : 64 + e - 16, as: Int8.self) }
                #expect(packed == codes, "\(k.name) n=\(n) sub-block \(s) codes")
                #expect(input.packedScales[s].bitPattern == scale.bitPattern || (scale.isNaN && input.packedScales[s].isNaN), "\(k.name) n=\(n) sub-block \(s) scale")
                #expect(input.packedSums[s].bitPattern == sum.bitPattern || (sum.isNaN && input.packedSums[s].isNaN), "\(k.name) n=\(n) sub-block \(s) sum")
            }
        }
    }

    /// Inputs for the packing tests, each arranged for `type`: lengths with whole groups of 512,
    /// partial groups and a short last block; an all-zero block (elements 64…95); and a NaN among
    /// zeros (which a maximum alone would not see) in a whole group, a partial one and the last
    /// block. Each case on every backend with the packed integer layout.
    static func packingCases(_ type: StorageType, seed: UInt64, _ check: (any KernelBackend.Type, Int, [Float], ArrangedInput) -> Void) {
        var rng = SyntheticModels.Random(seed: seed)
        for n in [100, 512, 1024, 1600, 3200 + 17, 5504] {
            for poisonAt in [nil, 40, 600, 1599] as [Int?] where poisonAt.map({ $0 < n }) ?? true {
                var x = rng.normals(n, std: 2)
                for i in 64..<min(n, 96) { x[i] = 0 }
                if let p = poisonAt {
                    for i in (p / 32 * 32)..<min(n, p / 32 * 32 + 32) { x[i] = 0 }
                    x[p] = .nan
                }
                for k in TestBackends.packedInteger {
                    let storage = UnsafeMutablePointer<Float>.allocate(capacity: k.vectorInputFloats(capacity: n))
                    defer { storage.deallocate() }
                    let input = ArrangedInput(storage: storage, capacity: n)
                    k.arrangeVector(type, x, n, into: input)
                    check(k, n, x, input)
                }
            }
        }
    }

    /// The integer q8 kernels' packed activations (AVX-512 and AVX2) against their rule: per block of 32, int16
    /// codes round(x·32767/max|x|) (half to even) and scale max|x|/32767; zero blocks 0; a
    /// non-finite element gives its block codes 0 and a NaN scale. Runs of 16 whole blocks take
    /// a vector path of their own.
    @Test("integer q8 kernels: packed activations equal the scalar rule", .enabled(if: !TestBackends.packedInteger.isEmpty))
    func integerQ8Packing() {
        Self.packingCases(.q8, seed: 13) { k, n, x, input in
            let blocks = (n + 31) / 32
            for b in 0..<((blocks + 15) / 16 * 16) {
                let values = Array(x[min(n, 32 * b)..<min(n, 32 * b + 32)])
                let largest = values.map(abs).max() ?? 0
                var codes = [Int16](repeating: 0, count: 32), scale: Float = 0
                if !values.allSatisfy(\.isFinite) {
                    scale = .nan
                } else if largest > 0 {
                    let inv = 32767 / largest
                    for (e, v) in values.enumerated() { codes[e] = Int16((v * inv).rounded(.toNearestOrEven)) }
                    scale = largest / 32767
                }
                let packed = (0..<32).map { (input.packed + 64 * b).load(fromByteOffset: 2 * $0, as: Int16.self) }
                #expect(packed == codes, "\(k.name) n=\(n) block \(b) codes")
                #expect(input.packedScales[b].bitPattern == scale.bitPattern || (scale.isNaN && input.packedScales[b].isNaN), "\(k.name) n=\(n) block \(b) scale")
            }
        }
    }

    @Test("arranged inputs are a permutation of the input plus zero padding", arguments: types)
    func inputLayout(type: StorageType) {
        for n in Self.lengths + [512, 544, 1024 + 96 + 32] {
            let x = (0..<n).map { Float($0 + 1) }
            let padded = InputLayout.paddedLength(type, n)
            var out = [Float](repeating: .nan, count: padded)
            InputLayout.arrange(type, x, n, into: &out)
            let values = out.filter { $0 != 0 }.sorted()
            #expect(values == x, "\(type) n=\(n): the arranged values are not the inputs")
            #expect(out.filter { $0 == 0 }.count == padded - n, "\(type) n=\(n): padding")
        }
    }

    @Test("thread pool: every item once, ranges per thread, many calls")
    func threadPool() {
        for threads in [1, 2, 3, 8] {
            let pool = ThreadPool(threads: threads)
            for count in [0, 1, 5, 16, 1000, 4099] {
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress!
                    pool.parallelFor(count: count, granularity: 4) { thread, range in
                        #expect(thread >= 0 && thread < threads)
                        #expect(range.lowerBound % 4 == 0)
                        for i in range { base[i] += 1 }
                    }
                }
                #expect(hits.allSatisfy { $0 == 1 }, "\(threads) threads, \(count) items")
            }
            // Many short calls in a row (the decode pattern) complete and see every thread.
            var total = 0
            let counter = UnsafeMutablePointer<Int>.allocate(capacity: threads)
            counter.initialize(repeating: 0, count: threads)
            for _ in 0..<2000 { pool.run { t in counter[t] += 1 } }
            for t in 0..<threads { total += counter[t]; #expect(counter[t] == 2000) }
            counter.deallocate()
            #expect(total == 2000 * threads)
        }
    }

    @Test("f16 widening is bit-exact for all 65536 inputs, 8 and 16 lanes")
    func halfWidening() {
        for base in stride(from: 0, to: 65536, by: 8) {
            let h = SIMD8<UInt16>((0..<8).map { UInt16(base + $0) })
            let f = VectorMath.f16ToFloat(h)
            for i in 0..<8 {
                let ref = HalfFloat.f16ToFloat(h[i])
                #expect(ref.isNaN ? f[i].isNaN : f[i].bitPattern == ref.bitPattern, "f16 bits \(h[i])")
            }
        }
        for base in stride(from: 0, to: 65536, by: 16) {
            let u = SIMD16<UInt32>((0..<16).map { UInt32(base + $0) })
            let f = VectorMath.f16BitsToFloat(u)
            for i in 0..<16 {
                let ref = HalfFloat.f16ToFloat(UInt16(u[i]))
                #expect(ref.isNaN ? f[i].isNaN : f[i].bitPattern == ref.bitPattern, "f16 bits \(u[i]) (16 lanes)")
            }
        }
    }

    /// The vector log over the whole positive range (sub-normals excluded: never an input),
    /// and softplus against
    /// Foundation's log1p(exp(x)) from −100 to 100 (the Δ of the scan; below −87.3 within
    /// 1.2e−38 absolute, exp's clamp), NaN propagated.
    @Test("vector log within 2 ulp; softplus within 3e-7 relative")
    func logAndSoftplus() {
        var worst: Double = 0
        var x: Float = Float.leastNormalMagnitude
        while x < Float.greatestFiniteMagnitude / 2 {
            let lanes = (0..<16).map { x * (1 + Float($0) * 0.037) }
            let v = VectorMath.log(SIMD8<Float>(lanes[0..<8])), w = VectorMath.log(SIMD8<Float>(lanes[8...]))
            for i in 0..<16 {
                let got = i < 8 ? v[i] : w[i - 8]
                let ref = Foundation.log(Double(lanes[i]))
                worst = max(worst, abs(Double(got) - ref) / max(abs(ref), 1e-3))
            }
            x *= 1.7
        }
        #expect(worst <= 2.5e-7, "log relative error \(worst)")
        let ones = VectorMath.log(SIMD8<Float>(repeating: 1))
        #expect(ones == SIMD8<Float>(repeating: 0))

        var sp: Double = 0
        var t: Float = -100
        while t < 100 {
            let lanes = (0..<8).map { t + Float($0) * 0.0113 }
            let v = VectorMath.softplus(SIMD8<Float>(lanes))
            for i in 0..<8 {
                let ref = Foundation.log1p(Foundation.exp(Double(lanes[i])))
                // Below −87.3 exp's clamp leaves ≤ 1.2e−38 (absolute), harmless for Δ.
                sp = max(sp, max(0, abs(Double(v[i]) - ref) - 1.2e-38) / ref)
            }
            t += 0.173
        }
        #expect(sp <= 3e-7, "softplus relative error \(sp)")
        var withNaN = SIMD8<Float>(repeating: 1)
        withNaN[3] = .nan
        #expect(VectorMath.softplus(withNaN)[3].isNaN)
        // 16 lanes (one AVX-512 register on x86-64 builds, with log and the lane tests of its
        // own): the 8-lane bits, lane for lane, over the whole range, ±0, the clamped ends and
        // values whose e^−|x| leaves 1 + y == 1; NaN stays NaN.
        for k in TestBackends.runnable {
        var u: Float = -120
        while u < 120 {
            var lanes = SIMD16<Float>((0..<16).map { u + Float($0) * 0.0731 })
            if u == -120 { lanes[0] = 0; lanes[1] = -0.0; lanes[2] = 1e-30; lanes[3] = -1e-30; lanes[4] = 40; lanes[5] = .nan }
            let wide = k.softplus16(lanes)
            let halves = (VectorMath.softplus(SIMD8<Float>((0..<8).map { lanes[$0] })), VectorMath.softplus(SIMD8<Float>((8..<16).map { lanes[$0] })))
            for i in 0..<16 {
                let narrow = i < 8 ? halves.0[i] : halves.1[i - 8]
                #expect(narrow.isNaN ? wide[i].isNaN : wide[i].bitPattern == narrow.bitPattern, "\(k.name): softplus(\(lanes[i])): \(wide[i]) vs \(narrow)")
            }
            u += 0.9
        }
        // softplusBias: vector body and scalar tail agree with the scalar definition.
        var xs = (0..<37).map { Float($0) * 0.9 - 15 }
        let bias = (0..<37).map { Float($0 % 5) * 0.1 }
        let refs = zip(xs, bias).map { Norms.softplus($0 + $1) }
        k.softplusBias(&xs, bias, 37)
        for i in 0..<37 { #expect(abs(xs[i] - refs[i]) <= 3e-7 * refs[i], "\(k.name): softplusBias \(i)") }
        }
    }

    /// The largest |f(x) − eˣ|/eˣ of a vector exp `f` (given `lanes` inputs, returning as many)
    /// over x from `from` up to `below`, groups of lanes `spacing` apart starting every `step`.
    static func worstRelativeExpError(from: Float, below end: Float, step: Float, spacing: Float, lanes: Int = 8,
                                      _ f: ([Float]) -> [Float]) -> Double {
        var worst: Double = 0
        var x = from
        while x < end {
            let inputs = (0..<lanes).map { x + Float($0) * spacing }
            for (input, value) in zip(inputs, f(inputs)) {
                let ref = Foundation.exp(Double(input))
                worst = max(worst, abs(Double(value) - ref) / ref)
            }
            x += step
        }
        return worst
    }

    @Test("vector exp within 3e-7 relative; SiLU and softmax")
    func exp() {
        let worst = Self.worstRelativeExpError(from: -87, below: 88, step: 0.25, spacing: 0.0137) {
            let v = VectorMath.exp(SIMD8<Float>($0))
            return (0..<8).map { v[$0] }
        }
        #expect(worst <= 3e-7, "exp relative error \(worst)")
        let s = VectorMath.silu(SIMD8<Float>(-30, -3, -0.5, 0, 0.5, 3, 30, 100))
        for (i, v) in [-30, -3, -0.5, 0, 0.5, 3, 30, 100].enumerated() {
            #expect(abs(s[i] - Norms.silu(Float(v))) <= 1e-6 * max(1, abs(Float(v))))
        }
        // SiLU in 16 lanes (siluMul's and siluInPlace's main loop) has the 8-lane bits, so their
        // results still depend only on n mod 8 (the scalar tail): checked against 8-lane chunks.
        for k in TestBackends.runnable {
        var rng = SyntheticModels.Random(seed: 21)
        for n in [7, 16, 37, 100] {
            let x = rng.normals(n, std: 4), y = rng.normals(n, std: 1)
            var reference = x
            for i in 0..<n {
                if i < n / 8 * 8 {
                    let chunk = SIMD8<Float>(x[(i / 8 * 8)..<(i / 8 * 8 + 8)])
                    reference[i] = VectorMath.silu(chunk)[i % 8]
                } else {
                    reference[i] = Norms.silu(x[i])
                }
            }
            var inPlace = x, product = x
            k.siluInPlace(&inPlace, n)
            k.siluMul(&product, y, n)
            #expect(inPlace.map(\.bitPattern) == reference.map(\.bitPattern), "\(k.name): siluInPlace n=\(n)")
            #expect(product.map(\.bitPattern) == zip(reference, y).map { ($0 * $1).bitPattern }, "\(k.name): siluMul n=\(n)")
        }
        // 16 lanes (one AVX-512 register on x86-64 builds): the 8-lane bits, lane for lane,
        // clamped ends and a NaN included.
        var y: Float = -100
        while y < 100 {
            var lanes = SIMD16<Float>((0..<16).map { y + Float($0) * 0.731 })
            if y == -100 { lanes[3] = .nan; lanes[4] = .infinity; lanes[5] = -.infinity }
            let wide = k.exp16(lanes)
            let (lo, hi) = unsafeBitCast(lanes, to: (SIMD8<Float>, SIMD8<Float>).self)
            let halves = unsafeBitCast((VectorMath.exp(lo), VectorMath.exp(hi)), to: SIMD16<Float>.self)
            for i in 0..<16 {
                #expect(wide[i].bitPattern == halves[i].bitPattern || (wide[i].isNaN && halves[i].isNaN), "\(k.name): exp(\(lanes[i]))")
            }
            y += 3.3
        }
        #expect(k.exp16(SIMD16<Float>(repeating: .nan))[0].isNaN)
        // The scan's decay exp (its own polynomial on AVX-512): relative error over the range, a
        // NaN kept, and the far negative end going to 0 through values that stay ≥ 0 and fall.
        let decayWorst = Self.worstRelativeExpError(from: -87, below: 87.8, step: 0.117, spacing: 0.00731, lanes: 16) {
            let v = k.decayExp16(SIMD16<Float>($0))
            return (0..<16).map { v[$0] }
        }
        #expect(decayWorst <= 1.5e-7, "\(k.name): decay exp relative error \(decayWorst)")
        let far = k.decayExp16(SIMD16<Float>((0..<16).map { -80 - Float($0) * 2 }) )
        for i in 0..<16 { #expect(far[i] >= 0 && (i == 0 || far[i] <= far[i - 1]), "decay exp(\(-80 - Float(i) * 2)) = \(far[i])") }
        #expect(far[15] < 1e-37 && k.decayExp16(SIMD16<Float>(repeating: .nan))[0].isNaN)
        #expect(k.decayExp16(SIMD16<Float>(repeating: 0))[0] == 1)
        // Softmax over a short row (scalar tail only) and a long one (16-lane blocks and a tail).
        for count in [11, 41] {
            var scores: [Float] = (0..<count).map { [3, -1, 0.5, 100, 99, -50, 2, 2, 7, 1, 0][$0 % 11] + Float($0 / 11) }
            let top = scores.max()!
            let ref = scores.map { Foundation.exp(Double($0 - top)) }
            let sum = ref.reduce(0, +)
            k.softmax(&scores, scores.count)
            for i in 0..<scores.count { #expect(abs(Double(scores[i]) - ref[i] / sum) <= 1e-6, "\(count) scores, \(i)") }
        }
        }
    }

    @Test("partial vectors: the first count lanes moved, nothing past them read into lanes or written")
    func partialVectors() {
        let source: [Float] = (0..<32).map { Float($0) + 0.5 }
        for count in 0...16 {
            let v = source.withUnsafeBufferPointer { PartialVector.load($0.baseAddress! + 3, count: count) }
            for k in 0..<16 { #expect(v[k] == (k < count ? source[3 + k] : 0), "load \(count), lane \(k)") }
            var target = [Float](repeating: -7, count: 32)
            target.withUnsafeMutableBufferPointer {
                PartialVector.store(SIMD16<Float>((0..<16).map { Float($0) * 2 }), to: $0.baseAddress! + 5, count: count)
            }
            for i in 0..<32 {
                let written = i >= 5 && i < 5 + count
                #expect(target[i] == (written ? Float(i - 5) * 2 : -7), "store \(count), element \(i)")
            }
        }
    }

    @Test("lanewise and horizontal maxima (the softmax's maximum pass)")
    func maxima() {
        var rng = SyntheticModels.Random(seed: 5)
        for trial in 0..<20 {
            var a = SIMD16<Float>(rng.normals(16, std: 10)), b = SIMD16<Float>(rng.normals(16, std: 10))
            if trial == 1 { a[3] = -.infinity; b[3] = -.infinity; b[7] = .infinity }
            let m = lanewiseMax(a, b)
            for k in 0..<16 { #expect(m[k] == max(a[k], b[k]), "lane \(k)") }
            #expect(horizontalMax(a) == (0..<16).map { a[$0] }.max()!)
            #expect(horizontalMax(m) == (0..<16).map { max(a[$0], b[$0]) }.max()!)
        }
    }

    @Test("RMSNorm, in place and out of place")
    func rmsNorm() {
        for n in [1, 5, 16, 100] {
            var rng = SyntheticModels.Random(seed: UInt64(n))
            var x = rng.normals(n, std: 2)
            let w = rng.normals(n, std: 1)
            let ms = x.reduce(0) { $0 + Double($1) * Double($1) } / Double(n)
            let ref = (0..<n).map { Double(w[$0]) * Double(x[$0]) / (ms + 1e-6).squareRoot() }
            var out = [Float](repeating: 0, count: n)
            Norms.rmsNorm(x, weight: w, count: n, eps: 1e-6, out: &out)
            x.withUnsafeMutableBufferPointer { Norms.rmsNorm($0.baseAddress!, weight: w, count: n, eps: 1e-6, out: $0.baseAddress!) }
            for i in 0..<n {
                #expect(abs(Double(out[i]) - ref[i]) <= 1e-5 * (1 + abs(ref[i])))
                #expect(x[i] == out[i])
            }
        }
    }

    /// Attention over a ring that has wrapped, against the mask of MODEL.md 2a evaluated
    /// directly on the positions.
    @Test("attention: GQA, meta tokens, window, ring wrap-around, heads split across calls, blocks of rows",
          arguments: KVType.allCases, [(10, 20, 3), (64, 80, 3), (64, 128, 3), (64, 128, 5)])
    func attention(kv: KVType, dims: (Int, Int, Int)) {
        // Groups of 3 and of 5 query heads: one row's value sums go up to four queries at a time.
        let (dk, dv, groupSize) = dims
        let M = 3, W = 4, Hkv = 2, H = Hkv * groupSize, ring = W + Attention.blockRows
        let total = M + 17
        var rng = SyntheticModels.Random(seed: 8)
        let keys = rng.normals(total * Hkv * dk, std: 1), values = rng.normals(total * Hkv * dv, std: 1)
        let local = KVCache(type: kv, kvHeads: Hkv, keyDim: dk, valueDim: dv, metaSlots: M, regularSlots: ring)
        let global = KVCache(type: kv, kvHeads: Hkv, keyDim: dk, valueDim: dv, metaSlots: M, regularSlots: total - M)
        var scratch = [Float](repeating: .nan, count: Attention.scratchFloats(groupSize: H / Hkv, positions: total, keyDim: dk, valueDim: dv))
        // Keys/values as the cache holds them (rounded for f16 and q8, except the meta
        // positions, which stay f32), read back right after each write.
        var storedKeys = [Float](repeating: 0, count: total * Hkv * dk), storedValues = [Float](repeating: 0, count: total * Hkv * dv)
        for p in 0..<total {
            keys.withUnsafeBufferPointer { k in
                values.withUnsafeBufferPointer { v in
                    local.write(position: p, keys: k.baseAddress! + p * Hkv * dk, values: v.baseAddress! + p * Hkv * dv)
                    global.write(position: p, keys: k.baseAddress! + p * Hkv * dk, values: v.baseAddress! + p * Hkv * dv)
                }
            }
            storedKeys.withUnsafeMutableBufferPointer { k in
                storedValues.withUnsafeMutableBufferPointer { v in
                    global.read(position: p, keys: k.baseAddress! + p * Hkv * dk, values: v.baseAddress! + p * Hkv * dv)
                }
            }
            for i in 0..<(Hkv * dk) {
                let x = keys[p * Hkv * dk + i], y = storedKeys[p * Hkv * dk + i]
                switch kv {
                case .f32: #expect(x == y)
                case .f16: #expect(p < M ? x == y : HalfFloat.f16ToFloat(HalfFloat.floatToF16(x)) == y)
                case .q8:
                    // Within half a step of the head's max|x|/127.
                    let g = i / dk
                    let m = (0..<dk).map { abs(keys[p * Hkv * dk + g * dk + $0]) }.max()!
                    #expect(p < M ? x == y : abs(x - y) <= m / 127 / 2 * 1.0001)
                }
            }
            let q = rng.normals(H * dk, std: 1)
            func storedKey(_ index: Int) -> Float { storedKeys[index] }
            func storedValue(_ index: Int) -> Float { storedValues[index] }
            for k in TestBackends.runnable {
            for (cache, window) in [(global, nil), (local, W)] as [(KVCache, Int?)] {
                var out = [Float](repeating: .nan, count: H * dv)
                k.attend(q: q, cache: cache, position: p, window: window, queryHeads: H, heads: 0..<H, scratch: &scratch, out: &out)
                // Heads split as a thread pool would (one range crossing a group boundary): same bits.
                var split = [Float](repeating: .nan, count: H * dv)
                for heads in [0..<2, 2..<(H - 1), (H - 1)..<H] {
                    k.attend(q: q, cache: cache, position: p, window: window, queryHeads: H, heads: heads, scratch: &scratch, out: &split)
                }
                #expect(split == out)
                // Blocks of rows ending at p (regular positions only) give each row its own attention.
                for rows in 2...Attention.blockRows where p - rows + 1 >= M {
                    let p0 = p - rows + 1
                    var qs = [Float](repeating: 0, count: rows * H * dk)
                    for r in 0..<rows { for i in 0..<(H * dk) { qs[r * H * dk + i] = q[i] * Float(r + 1) / Float(rows) } }
                    var block = [Float](repeating: .nan, count: rows * H * dv)
                    for heads in [0..<2, 2..<H] {
                        k.attendRows(q: qs, ldq: H * dk, rows: rows, cache: cache.attentionView, firstPosition: p0, window: window,
                                     queryHeads: H, heads: heads, scratch: &scratch, out: &block, ldo: H * dv)
                    }
                    for r in 0..<rows {
                        var single = [Float](repeating: .nan, count: H * dv)
                        Array(qs[(r * H * dk)..<((r + 1) * H * dk)]).withUnsafeBufferPointer { qr in
                            k.attend(q: qr.baseAddress!, cache: cache, position: p0 + r, window: window, queryHeads: H,
                                             heads: 0..<H, scratch: &scratch, out: &single)
                        }
                        let worst = zip(single, block[(r * H * dv)..<((r + 1) * H * dv)]).map { abs($0 - $1) }.max()!
                        #expect(worst <= 1e-5, "p=\(p) rows=\(rows) row \(r) window=\(String(describing: window)): \(worst)")
                    }
                }
                for h in 0..<H {
                    let g = h / (H / Hkv)
                    let allowed = (0...p).filter { window == nil || p - $0 <= window! || $0 < M }
                    let s = allowed.map { p2 in (0..<dk).reduce(0.0) { $0 + Double(q[h * dk + $1]) * Double(storedKey((p2 * Hkv + g) * dk + $1)) } / Double(dk).squareRoot() }
                    let m = s.max()!
                    let e = s.map { Foundation.exp($0 - m) }
                    let sum = e.reduce(0, +)
                    for j in 0..<dv {
                        let ref = zip(allowed, e).reduce(0.0) { $0 + $1.1 / sum * Double(storedValue(($1.0 * Hkv + g) * dv + j)) }
                        #expect(abs(Double(out[h * dv + j]) - ref) <= 1e-5, "\(k.name): p=\(p) window=\(String(describing: window)) h=\(h) j=\(j)")
                    }
                }
            }
            }
        }
    }

    @Test("causal conv + SiLU and the selective scan step", arguments: [16, 5])
    func ssm(stateSize N: Int) {
        for k in TestBackends.runnable {
        let E = 21, K = 4, T = 3
        var rng = SyntheticModels.Random(seed: UInt64(N))
        let window = rng.normals((K - 1 + T) * E, std: 1), wT = rng.normals(K * E, std: 0.5), bias = rng.normals(E, std: 0.1)
        var u = [Float](repeating: 0, count: T * E)
        k.conv(window: window, weightT: wT, bias: bias, taps: K, channels: E, tokens: T, out: &u, ldo: E, range: 0..<E)
        for t in 0..<T {
            for i in 0..<E {
                var acc = Double(bias[i])
                for j in 0..<K { acc += Double(wT[j * E + i]) * Double(window[(t + j) * E + i]) }
                let ref = acc / (1 + Foundation.exp(-acc))
                #expect(abs(Double(u[t * E + i]) - ref) <= 1e-5)
            }
        }
        // One position at a time from the conv state (decoding), in pieces of the channels with
        // short ends: the same bits as the window pass, and the state moved on.
        var convState = Array(window[0..<((K - 1) * E)])
        for t in 0..<T {
            var step = [Float](repeating: .nan, count: E)
            let x = Array(window[((K - 1 + t) * E)..<((K + t) * E)])
            for range in [0..<13, 13..<E] {
                k.convStep(state: &convState, x: x, weightT: wT, bias: bias, taps: K, channels: E, out: &step, range: range)
            }
            #expect(step == Array(u[(t * E)..<((t + 1) * E)]), "position \(t)")
            #expect(convState == Array(window[((t + 1) * E)..<((K + t) * E)]), "conv state after position \(t)")
        }

        let A = (0..<(E * N)).map { -Float($0 % N + 1) * 0.7 }
        var state = rng.normals(E * N, std: 1)
        let s0 = state
        let delta = (0..<E).map { _ in rng.uniform() * 0.5 }, B = rng.normals(N, std: 1), C = rng.normals(N, std: 1)
        let D = rng.normals(E, std: 1), gate = rng.normals(E, std: 1), x = rng.normals(E, std: 1)
        var y = [Float](repeating: .nan, count: E)
        k.scanStep(state: &state, A: A, u: x, delta: delta, B: B, C: C, D: D, gate: gate, y: &y, stateSize: N, range: 0..<E)
        // Split into ranges that cut a 16-channel block: the same bits per channel.
        var splitState = s0, splitY = [Float](repeating: .nan, count: E)
        for range in [0..<5, 5..<18, 18..<E] {
            k.scanStep(state: &splitState, A: A, u: x, delta: delta, B: B, C: C, D: D, gate: gate, y: &splitY,
                                stateSize: N, range: range)
        }
        #expect(splitState.map(\.bitPattern) == state.map(\.bitPattern) && splitY.map(\.bitPattern) == y.map(\.bitPattern))
        for i in 0..<E {
            var acc = 0.0
            for n in 0..<N {
                let s = Foundation.exp(Double(delta[i] * A[i * N + n])) * Double(s0[i * N + n]) + Double(delta[i]) * Double(B[n]) * Double(x[i])
                #expect(abs(Double(state[i * N + n]) - s) <= 1e-5 * (1 + abs(s)))
                acc += s * Double(C[n])
            }
            let g = Double(gate[i])
            let ref = (acc + Double(D[i]) * Double(x[i])) * g / (1 + Foundation.exp(-g))
            #expect(abs(Double(y[i]) - ref) <= 1e-5 * (1 + abs(ref)))
        }
        }
    }

    @Test("RoPE rotate-half against the formula at a large position")
    func rope() {
        let dk = 20, heads = 3, p = 5000
        let inv = Rope.inverseFrequencies(base: 10000, headDim: dk)
        var c = [Float](repeating: 0, count: dk / 2), s = [Float](repeating: 0, count: dk / 2)
        Rope.angles(position: p, invFreq: inv, half: dk / 2, cos: &c, sin: &s)
        var rng = SyntheticModels.Random(seed: 1)
        let x0 = rng.normals(heads * dk, std: 1)
        var x = x0
        Rope.apply(&x, heads: heads, headDim: dk, cos: c, sin: s)
        for h in 0..<heads {
            for j in 0..<(dk / 2) {
                let theta = Double(Float(p) * inv[j])
                let a = Double(x0[h * dk + j]), b = Double(x0[h * dk + j + dk / 2])
                #expect(abs(Double(x[h * dk + j]) - (a * cos(theta) - b * sin(theta))) <= 1e-5)
                #expect(abs(Double(x[h * dk + j + dk / 2]) - (b * cos(theta) + a * sin(theta))) <= 1e-5)
            }
        }
    }
}
