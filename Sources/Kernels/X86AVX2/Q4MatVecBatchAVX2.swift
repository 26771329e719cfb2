import _Builtin_intrinsics.intel
import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// The q4 matrix-vector product for up to 4 inputs at once (the AVX2 backend's `matVecBatch`
/// for q4 rows: the server's batched step): each row is read and its groups' entries, d/dmin
/// and code nibbles unpacked once for all inputs, where a loop over `Q4MatVecAVX2.run` reads
/// every row from memory once per input. Each input then runs exactly the operations of the
/// single-input kernel (`Q4MatVecAVX2.group`, `dot`) in the same order on the same values, so
/// its results are bit-identical to its own `matVec` (the nibbles and their byte products are
/// integers; the float operations per input are unchanged).
enum Q4MatVecBatchAVX2 {
    /// Inputs per pass.
    static let batchWidth = 4

    static func run(_ w: TensorData, _ inputs: UnsafeBufferPointer<ArrangedInput>,
                    _ ys: UnsafeBufferPointer<UnsafeMutablePointer<Float>>, rows: Range<Int>) {
        precondition(inputs.count == ys.count, "matVecBatch: \(inputs.count) inputs but \(ys.count) outputs")
        precondition(w.type == .q4, "q4 matVecBatch of \(w.type) rows")
        let n = w.rowLength
        var first = 0
        while first < inputs.count {
            let count = min(batchWidth, inputs.count - first)
            let x = inputs.baseAddress! + first, y = ys.baseAddress! + first
            switch count {
            case 1: Q4MatVecAVX2.run(w, x[0], y[0], rows: rows)
            case 2: w.forEachRow(in: rows) { r, row in rowDots(row, n, x, y, r, count: 2) }
            case 3: w.forEachRow(in: rows) { r, row in rowDots(row, n, x, y, r, count: 3) }
            default: w.forEachRow(in: rows) { r, row in rowDots(row, n, x, y, r, count: 4) }
            }
            first += count
        }
    }

    /// One input's running sums of a row (`dot`'s `acc` and `mins`).
    struct Sums {
        var acc = (_mm256_setzero_ps(), _mm256_setzero_ps())
        var mins = _mm256_setzero_ps()
        @inline(__always) var total: Float { horizontalSum(_mm256_sub_ps(_mm256_add_ps(acc.0, acc.1), mins)) }
    }

    /// Row r (`n` elements at `row`) · x̂ for `count` inputs (a constant at each call site), into
    /// ys[i][r].
    @inline(__always)
    private static func rowDots(_ row: UnsafeRawPointer, _ n: Int, _ x: UnsafePointer<ArrangedInput>,
                                _ ys: UnsafePointer<UnsafeMutablePointer<Float>>, _ r: Int, count: Int) {
        let nsub = (n &+ 31) / 32
        let groups = (nsub &+ 15) / 16
        let fullGroupBytes = Q4Layout.groupBytes(subBlocks: 16)
        let c = Q4MatVecAVX2.Constants()
        var sums = (Sums(), Sums(), Sums(), Sums())
        withUnsafeTemporaryAllocation(of: __m256i.self, capacity: 16) { nibbles in
            let split = nibbles.baseAddress!
            @inline(__always) func one(_ g: Int, subBlocks k: Int) {
                let start = row + g &* fullGroupBytes
                Prefetch.lines(start + Prefetch.q4RowDistance, bytes: fullGroupBytes)
                group(start, subBlocks: k, index: g, x, count: count, c, split, &sums)
            }
            // The whole groups with k a constant (no per-pair bounds), then a short last one.
            for g in 0..<(nsub / 16) { one(g, subBlocks: 16) }
            if nsub % 16 != 0 { one(groups &- 1, subBlocks: nsub % 16) }
        }
        ys[0][r] = sums.0.total
        if count > 1 { ys[1][r] = sums.1.total }
        if count > 2 { ys[2][r] = sums.2.total }
        if count > 3 { ys[3][r] = sums.3.total }
    }

    /// `Q4MatVecAVX2.group` for `count` inputs: the entries, d/dmin and every pair's low and high
    /// nibbles once (the nibbles to `split`, 2 vectors per pair: AVX2's 16 registers cannot hold
    /// a group's 16), then per input its scales, mins and products in the single-input order,
    /// the nibbles read back from `split` (cached loads instead of a mask, a shift and a mask
    /// per pair and input).
    @inline(__always)
    private static func group(_ group: UnsafeRawPointer, subBlocks k: Int, index g: Int, _ x: UnsafePointer<ArrangedInput>,
                              count: Int, _ c: Q4MatVecAVX2.Constants, _ split: UnsafeMutablePointer<__m256i>,
                              _ sums: inout (Sums, Sums, Sums, Sums)) {
        let half = _mm_cvtph_ps(_mm_cvtsi32_si128(group.load(unalignedAt: 0, as: Int32.self)))
        let d = _mm256_set1_ps(half[0]), dmin = _mm256_set1_ps(half[1])
        let first = Q4MatVecAVX2.entries(group.load(unalignedAt: 4, as: __m128i.self), c)
        let second = k > 8 ? Q4MatVecAVX2.entries(group.load(unalignedAt: 16, as: __m128i.self), c)
                           : (sc: _mm256_setzero_ps(), mn: _mm256_setzero_ps())
        let codes = group + 4 + Q4Layout.scaleBytes(subBlocks: k)
        let pairs = (k &+ 1) / 2
        // The pairs' code bytes (the odd last sub-block's 16 bytes with the other half zero),
        // split into low and high nibbles as `Q4MatVecAVX2.pair` splits them.
        for p in 0..<pairs {
            let v: __m256i
            if 2 &* p &+ 1 < k {
                v = codes.load(unalignedAt: 32 &* p, as: __m256i.self)
            } else {
                v = unsafeBitCast((codes.load(unalignedAt: 32 &* p, as: __m128i.self), _mm_setzero_si128()), to: __m256i.self)
            }
            split[2 &* p] = _mm256_and_si256(v, c.nibble)
            split[2 &* p &+ 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), c.nibble)
        }
        @inline(__always) func input(_ i: Int, _ s: inout Sums) {
            let xi = x[i]
            let scales = UnsafeRawPointer(xi.packedScales + 16 &* g), sumsIn = UnsafeRawPointer(xi.packedSums + 16 &* g)
            let s0 = _mm256_mul_ps(_mm256_mul_ps(first.sc, scales.load(unalignedAt: 0, as: __m256.self)), d)
            let s1 = _mm256_mul_ps(_mm256_mul_ps(second.sc, scales.load(unalignedAt: 32, as: __m256.self)), d)
            let m = _mm256_fmadd_ps(first.mn, sumsIn.load(unalignedAt: 0, as: __m256.self),
                                    _mm256_mul_ps(second.mn, sumsIn.load(unalignedAt: 32, as: __m256.self)))
            s.mins = _mm256_fmadd_ps(m, dmin, s.mins)
            let xp = UnsafeRawPointer(xi.packed) + 512 &* g
            // Pair p, scaled as `Q4MatVecAVX2.group` scales it.
            @inline(__always) func add(_ p: Int, into sum: inout __m256) {
                let offset: Int = 128 &* (p >> 1) &+ 32 &* (p & 1)
                let products = Q4MatVecAVX2.pair(low: split[2 &* p], high: split[2 &* p &+ 1], xp + offset, c)
                let lanes = _mm256_add_epi32(_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_set1_epi32(Int32(truncatingIfNeeded: 2 &* (p & 3))))
                let scale = _mm256_permutevar8x32_ps(p < 4 ? s0 : s1, lanes)
                sum = _mm256_fmadd_ps(products, scale, sum)
            }
            if k == 16 {
                add(0, into: &s.acc.0); add(1, into: &s.acc.1)
                add(2, into: &s.acc.0); add(3, into: &s.acc.1)
                add(4, into: &s.acc.0); add(5, into: &s.acc.1)
                add(6, into: &s.acc.0); add(7, into: &s.acc.1)
            } else {
                for p in 0..<(k / 2) { add(p, into: &s.acc.0) }
                if k % 2 == 1 { add(k / 2, into: &s.acc.1) }
            }
        }
        input(0, &sums.0)
        if count > 1 { input(1, &sums.1) }
        if count > 2 { input(2, &sums.2) }
        if count > 3 { input(3, &sums.3) }
    }
}
