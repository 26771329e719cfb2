import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaFormat

/// `IntegerMatVec.run` for several inputs at once (batched decoding: one row per sequence).
///
/// On AVX-512 the single-input kernels are bound by their instructions, not by memory, so
/// running them once per input costs each input the whole kernel. Here each weight row is
/// unpacked once for up to `width` inputs: the q4 codes' loads, masks and shifts and the
/// group's scale entries (q4), the int8 codes' widening and the f16 block scales (q8); then
/// every input does exactly the float and integer operations, in exactly the order, that
/// `q4Row`/`q8Row` do for it alone, so each result has the bits of its own `run`. What an
/// input still costs alone is its share of the integer products and their scaling.
extension IntegerMatVec {
    /// Inputs served by one pass over a row: 4 inputs' accumulators and the shared unpacked
    /// codes (8 registers for a q4 group) fit in the 32 vector registers.
    static let batchWidth = 4

    /// y_i[r] = W[r,:]·x̂_i for r in `rows` and every input i, each as `run(w, inputs[i], ys[i], rows:)`.
    static func runBatch(_ w: TensorData, _ inputs: UnsafeBufferPointer<ArrangedInput>,
                         _ ys: UnsafeBufferPointer<UnsafeMutablePointer<Float>>, rows: Range<Int>) {
        precondition(inputs.count == ys.count, "matVecBatch: \(inputs.count) inputs but \(ys.count) outputs")
        let n = w.rowLength
        var first = 0
        while first < inputs.count {
            let count = min(batchWidth, inputs.count - first)
            let y = ys.baseAddress! + first
            let x = packed(inputs.baseAddress! + first, count: count)
            switch (w.type, count) {
            case (_, 1), (.q4, _) where n <= 128:
                // One input, or rows of one short group (dt_proj's, a small share of the work):
                // the single-input kernel per input, the rows' bytes then in cache.
                for i in first..<(first + count) { run(w, inputs[i], ys[i], rows: rows) }
            case (.q4, 2): w.forEachRow(in: rows) { r, row in q4Rows(row, n, x, y, r, count: 2) }
            case (.q4, 3): w.forEachRow(in: rows) { r, row in q4Rows(row, n, x, y, r, count: 3) }
            case (.q4, _): w.forEachRow(in: rows) { r, row in q4Rows(row, n, x, y, r, count: 4) }
            case (.q8, 2): w.forEachRow(in: rows) { r, row in q8Rows(row, n, x, y, r, count: 2) }
            case (.q8, 3): w.forEachRow(in: rows) { r, row in q8Rows(row, n, x, y, r, count: 3) }
            case (.q8, _): w.forEachRow(in: rows) { r, row in q8Rows(row, n, x, y, r, count: 4) }
            default: preconditionFailure("integer matrix-vector product of \(w.type) rows")
            }
            first += count
        }
    }

    /// One input's packed buffers, looked up once per call: `ArrangedInput`'s getters, left as
    /// calls inside the loops, made the compiler spill the vector registers around them.
    struct PackedInput {
        let codes: UnsafeRawPointer, scales: UnsafeRawPointer, sums: UnsafeRawPointer

        @inline(__always)
        init(_ input: ArrangedInput) {
            codes = UnsafeRawPointer(input.packed)
            scales = UnsafeRawPointer(input.packedScales)
            sums = UnsafeRawPointer(input.packedSums)
        }
    }

    /// Up to `batchWidth` inputs of one pass (the unused ones repeat input 0 and are not read).
    typealias Inputs = (PackedInput, PackedInput, PackedInput, PackedInput)

    @inline(__always)
    private static func packed(_ inputs: UnsafePointer<ArrangedInput>, count: Int) -> Inputs {
        let x0 = PackedInput(inputs[0])
        return (x0, count > 1 ? PackedInput(inputs[1]) : x0, count > 2 ? PackedInput(inputs[2]) : x0, count > 3 ? PackedInput(inputs[3]) : x0)
    }

    /// Calls `body` for inputs and states 0…count-1 (`count` a constant at every call site, so
    /// the states stay in registers).
    @inline(__always)
    private static func each<State>(_ count: Int, _ x: Inputs, _ s0: inout State, _ s1: inout State, _ s2: inout State, _ s3: inout State,
                                    _ body: (Int, PackedInput, inout State) -> Void) {
        body(0, x.0, &s0)
        if count > 1 { body(1, x.1, &s1) }
        if count > 2 { body(2, x.2, &s2) }
        if count > 3 { body(3, x.3, &s3) }
    }

    // MARK: q4

    /// One input's running sums of a q4 row (`q4Row`'s `acc` and `mins`).
    struct Q4Sums {
        var acc = _mm512_setzero_ps()
        var mins = _mm512_setzero_ps()
        @inline(__always) var total: Float { _mm512_reduce_add_ps(_mm512_sub_ps(acc, mins)) }
    }

    /// A q4 group (`k` sub-blocks) unpacked for every input: the entries as floats, d and
    /// dmin, and the low and high code nibbles of its runs (as `q4Group` reads them: a short
    /// group only its own bytes, and only its runs are added).
    struct Q4UnpackedGroup {
        let sc: __m512, mn: __m512
        let d: Float, dmin: Float
        let runs: Int
        let lo0: __m512i, hi0: __m512i, lo1: __m512i, hi1: __m512i
        let lo2: __m512i, hi2: __m512i, lo3: __m512i, hi3: __m512i

        @inline(__always)
        init(_ group: UnsafeRawPointer, subBlocks k: Int, _ c: Q4Constants) {
            (d, dmin) = q4SuperScales(group)
            let (sci, mni) = q4Entries(group, subBlocks: k, c)
            sc = _mm512_cvtepi32_ps(sci)
            mn = _mm512_cvtepi32_ps(mni)
            runs = (k + 3) / 4
            let codes = group + 4 + Q4Layout.scaleBytes(subBlocks: k)
            let nibble = _mm512_set1_epi8(15)
            @inline(__always) func split(_ q: Int) -> (__m512i, __m512i) {
                let v = k == 16 ? codes.load(unalignedAt: 64 * q, as: __m512i.self)
                    : q * 4 < k ? _mm512_maskz_loadu_epi8(byteMask(16 * (k - 4 * q)), codes + 64 * q) : _mm512_setzero_si512()
                return (_mm512_and_si512(v, nibble), _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble))
            }
            (lo0, hi0) = split(0)
            (lo1, hi1) = split(1)
            (lo2, hi2) = split(2)
            (lo3, hi3) = split(3)
        }

        /// `q4Group` of this group (index g) for one input, from the unpacked values: the same
        /// operations on the same numbers in the same order.
        @inline(__always)
        func accumulate(index g: Int, _ input: PackedInput, _ c: Q4Constants, into s: inout Q4Sums) {
            let a = input.scales.load(unalignedAt: 64 * g, as: __m512.self)
            let t = input.sums.load(unalignedAt: 64 * g, as: __m512.self)
            let scales = _mm512_mul_ps(_mm512_mul_ps(sc, a), _mm512_set1_ps(d))
            s.mins = _mm512_add_ps(s.mins, _mm512_mul_ps(_mm512_mul_ps(mn, t), _mm512_set1_ps(dmin)))
            let x = input.codes + 512 &* g
            var sum = s.acc
            @inline(__always) func run(_ q: Int, _ lo: __m512i, _ hi: __m512i) {
                let xlo = x.load(unalignedAt: 128 &* q, as: __m512i.self), xhi = x.load(unalignedAt: 128 &* q &+ 64, as: __m512i.self)
                let p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xlo), hi, xhi)
                let lanes = _mm512_add_epi32(c.runLanes, _mm512_set1_epi32(Int32(truncatingIfNeeded: 4 &* q)))
                sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(lanes, scales), sum)
            }
            run(0, lo0, hi0)
            if runs > 1 { run(1, lo1, hi1) }
            if runs > 2 { run(2, lo2, hi2) }
            if runs > 3 { run(3, lo3, hi3) }
            s.acc = sum
        }
    }

    /// One q4 row of `n` elements · x̂_i for inputs 0..<count, into ys[i][r]: `q4Row` for each.
    @inline(__always)
    private static func q4Rows(_ row: UnsafeRawPointer, _ n: Int, _ inputs: Inputs,
                               _ ys: UnsafePointer<UnsafeMutablePointer<Float>>, _ r: Int, count: Int) {
        let nsub = (n + 31) / 32
        let groups = (nsub + 15) / 16
        let fullGroupBytes = Q4Layout.groupBytes(subBlocks: 16)
        let constants = Q4Constants()
        var s0 = Q4Sums(), s1 = s0, s2 = s0, s3 = s0
        for g in 0..<groups {
            let group = row + g * fullGroupBytes
            Prefetch.lines(group + Prefetch.q4RowDistance, bytes: fullGroupBytes)
            let unpacked = Q4UnpackedGroup(group, subBlocks: min(16, nsub - 16 * g), constants)
            each(count, inputs, &s0, &s1, &s2, &s3) { _, x, s in unpacked.accumulate(index: g, x, constants, into: &s) }
        }
        each(count, inputs, &s0, &s1, &s2, &s3) { i, _, s in ys[i][r] = s.total }
    }

    // MARK: q8

    /// One input's two accumulators of a q8 row (`q8Row`'s `acc0` and `acc1`).
    struct Q8Sums {
        var acc0 = _mm512_setzero_ps()
        var acc1 = _mm512_setzero_ps()
    }

    /// One q8 row of `n` elements · x̂_i for inputs 0..<count, into ys[i][r]: `q8Row` for each
    /// (its blocks paired the same way over the two accumulators), each block's codes widened
    /// and each run's f16 scales converted once.
    @inline(__always)
    private static func q8Rows(_ row: UnsafeRawPointer, _ n: Int, _ inputs: Inputs,
                               _ ys: UnsafePointer<UnsafeMutablePointer<Float>>, _ r: Int, count: Int) {
        let blocks = (n + 31) / 32
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * batchWidth) { buffer in
            let scales = buffer.baseAddress!
            var s0 = Q8Sums(), s1 = s0, s2 = s0, s3 = s0
            var b0 = 0
            while b0 < blocks {
                let count16 = min(16, blocks - b0)
                let chunk = row + 34 * b0
                Prefetch.lines(chunk + Prefetch.q8RowDistance, bytes: 34 * count16)
                let d = q8BlockScales(chunk, count: count16)
                each(count, inputs, &s0, &s1, &s2, &s3) { i, x, _ in
                    let a = x.scales.load(unalignedAt: 4 * b0, as: __m512.self)
                    UnsafeMutableRawPointer(scales + 16 * i).storeBytes(of: _mm512_mul_ps(d, a), as: __m512.self)
                }
                @inline(__always) func block(_ j: Int, _ c: __m512i, _ x: PackedInput) -> __m512 {
                    _mm512_cvtepi32_ps(_mm512_dpwssd_epi32(_mm512_setzero_si512(), c, x.codes.load(unalignedAt: 64 * (b0 + j), as: __m512i.self)))
                }
                @inline(__always) func codes(_ j: Int) -> __m512i { _mm512_cvtepi8_epi16(chunk.load(unalignedAt: 34 * j + 2, as: __m256i.self)) }
                var j = 0
                while j + 2 <= count16 {
                    let c0 = codes(j), c1 = codes(j + 1)
                    each(count, inputs, &s0, &s1, &s2, &s3) { i, x, s in
                        s.acc0 = _mm512_fmadd_ps(block(j, c0, x), _mm512_set1_ps(scales[16 * i + j]), s.acc0)
                        s.acc1 = _mm512_fmadd_ps(block(j + 1, c1, x), _mm512_set1_ps(scales[16 * i + j + 1]), s.acc1)
                    }
                    j += 2
                }
                if j < count16 {
                    let c0 = codes(j)
                    each(count, inputs, &s0, &s1, &s2, &s3) { i, x, s in
                        s.acc0 = _mm512_fmadd_ps(block(j, c0, x), _mm512_set1_ps(scales[16 * i + j]), s.acc0)
                    }
                }
                b0 += count16
            }
            each(count, inputs, &s0, &s1, &s2, &s3) { i, _, s in ys[i][r] = _mm512_reduce_add_ps(_mm512_add_ps(s.acc0, s.acc1)) }
        }
    }
}
