/// The `q4` encoder's search (overview in `Q4Codec`).
///
/// A group's sub-blocks are processed 8 at a time, one per SIMD lane: a "tile" is 32 vectors,
/// vector `e` holding element `e` of each of the 8 sub-blocks. Every step of the search is then
/// plain vertical vector arithmetic, with no horizontal reductions per candidate.
extension Q4Codec {
    typealias V8 = SIMD8<Float>

    /// What the sub-block search found for the 8 sub-blocks of a tile (one per lane).
    struct TileFit {
        /// s ≥ 0 and m ≥ 0 of the best grid `x ≈ s·q − m`.
        var scale = V8()
        var offset = V8()
        /// Σq and Σq² of the codes on the best grid, and the number of real elements: the
        /// curvature of the squared error in (s, m), used to choose `d` and `dmin`.
        var q1 = V8()
        var q2 = V8()
        var count = V8()
    }

    /// Candidate super-scales are `max(s)/63` (or `max(m)/63`) times `1 + superScaleStep·i`
    /// for i in 0...superScaleSteps: values above 1 let the largest sub-blocks round down to fit
    /// the others better. None is below 1, so s/d and m/dmin stay within [0, 63 + 2⁻⁵] and
    /// round to 6 bits without clamping.
    static let superScaleSteps = 10
    static let superScaleStep: Float = 0.004

    /// Encodes one group: `count` real elements at `src` (1 ≤ count ≤ 32k), `k` sub-blocks.
    /// `work` has room for 64 vectors.
    static func encodeGroup(_ src: UnsafePointer<Float>, count: Int, subBlocks k: Int,
                            into dst: UnsafeMutableRawPointer, work: UnsafeMutablePointer<V8>) {
        let tiles = (k + 7) / 8
        let raw = UnsafeMutableRawPointer(work)
        // Transpose: element e of sub-block 8t + j goes to lane j of vector 32t + e; padding is 0.
        for t in 0..<tiles {
            for j in 0..<8 {
                let base = (8 * t + j) * 32
                let lane = raw + 4 * (256 * t + j)
                if base + 32 <= count {
                    for e in 0..<32 { lane.storeBytes(of: src[base + e], toByteOffset: 32 * e, as: Float.self) }
                } else {
                    for e in 0..<32 {
                        lane.storeBytes(of: base + e < count ? src[base + e] : 0, toByteOffset: 32 * e, as: Float.self)
                    }
                }
            }
        }
        // Only the group's last sub-block may be partial (it is the row's last). In the last
        // tile, element positions from `lastFull` on are real only in the lanes before it.
        let lastFull = count - 32 * (k - 1)
        let lastLane = (k - 1) - 8 * (tiles - 1)
        var tailWeight = V8()
        for j in 0..<lastLane { tailWeight[j] = 1 }
        func full(_ t: Int) -> Int { t == tiles - 1 ? lastFull : 32 }
        func weight(_ t: Int) -> V8 { t == tiles - 1 ? tailWeight : V8(repeating: 1) }

        var fits = (TileFit(), TileFit())
        fits.0 = searchTile(work, full: full(0), weight: weight(0))
        if tiles > 1 { fits.1 = searchTile(work + 32, full: full(1), weight: weight(1)) }

        let (dBits, dminBits) = chooseSuperScales(fits, tiles: tiles)
        let d = HalfFloat.f16ToFloat(dBits), dmin = HalfFloat.f16ToFloat(dminBits)
        dst.storeBytes(of: dBits.littleEndian, as: UInt16.self)
        dst.storeBytes(of: dminBits.littleEndian, toByteOffset: 2, as: UInt16.self)
        let scales = dst + 4
        let codes = scales + Q4Layout.scaleBytes(subBlocks: k)
        scales.initializeMemory(as: UInt8.self, repeating: 0, count: Q4Layout.scaleBytes(subBlocks: k))
        for t in 0..<tiles {
            let fit = t == 0 ? fits.0 : fits.1
            let xs = UnsafePointer(work + 32 * t)
            let (sc, mn) = refineTile(xs, full: full(t), weight: weight(t), fit: fit, d: d, dmin: dmin)
            writeTile(xs, sc: sc, mn: mn, d: d, dmin: dmin, lanes: Swift.min(8, k - 8 * t),
                      firstSubBlock: 8 * t, scales: scales, codes: codes)
        }
    }

    // MARK: Step 1: the best grid per sub-block

    /// Σq, Σq², Σx·q over the real elements of each lane for codes `q = round(clamp(x·a + b))`.
    @inline(__always)
    static func codeSums(_ xs: UnsafePointer<V8>, full: Int, weight w: V8, a: V8, b: V8) -> (V8, V8, V8) {
        var sl = V8(), sl2 = V8(), sxl = V8()
        for e in 0..<full {
            let x = xs[e]
            let l = SIMDMath.clamp(SIMDMath.roundEven(x * a + b), 0, 15)
            sl += l
            sl2 += l * l
            sxl += x * l
        }
        for e in full..<32 {
            let x = xs[e] // 0 where not real, so x·q needs no weight
            let l = SIMDMath.clamp(SIMDMath.roundEven(x * a + b), 0, 15) * w
            sl += l
            sl2 += l * l
            sxl += x * l
        }
        return (sl, sl2, sxl)
    }

    /// Least-squares `s`, `z` (value of code 0, ≤ 0) of `x ≈ s·q + z` for fixed codes, and the
    /// gain `s·Σxq + z·Σx`: the squared error is `Σx² − gain`, so a larger gain is better.
    /// `ok` is false where the codes are all equal or the fit has a negative scale.
    @inline(__always)
    static func fitGrid(sl: V8, sl2: V8, sxl: V8, n: V8, sx: V8) -> (s: V8, z: V8, gain: V8, ok: SIMDMask<SIMD8<Int32>>) {
        let det = n * sl2 - sl * sl
        var s = (n * sxl - sx * sl) / det
        var z = (sl2 * sx - sl * sxl) / det
        // A positive value for code 0 cannot be stored (the min is subtracted): fit with z = 0.
        let positive = z .> 0
        s.replace(with: sxl / sl2, where: positive)
        z.replace(with: 0, where: positive)
        return (s, z, s * sxl + z * sx, (det .> 0) .& (s .>= 0))
    }

    /// The scale and min search for the 8 sub-blocks of a tile. Positions `full..<32` count
    /// only in the lanes where `weight` is 1.
    static func searchTile(_ xs: UnsafePointer<V8>, full: Int, weight w: V8) -> TileFit {
        var lo = xs[0], hi = xs[0], sx = V8()
        for e in 0..<full {
            let x = xs[e]
            lo = SIMDMath.min(lo, x)
            hi = SIMDMath.max(hi, x)
            sx += x
        }
        let real = w .> 0
        for e in full..<32 {
            let x = xs[e] // 0 where not real
            lo.replace(with: x, where: real .& (x .< lo))
            hi.replace(with: x, where: real .& (x .> hi))
            sx += x
        }
        let n = V8(repeating: Float(full)) + Float(32 - full) * w
        let zmin = SIMDMath.min(lo, V8()) // the grid's code 0 cannot be above 0
        let range = hi - zmin
        let invRange = (1 / range).replacing(with: 0, where: .!(range .> 0))

        // Fallback where no candidate fits (constant sub-blocks): the plain min/max grid.
        var bestS = range / 15, bestZ = zmin, bestGain = V8(repeating: -.infinity)
        @inline(__always) func tryCodes(a: V8, b: V8) -> (V8, V8) {
            let (sl, sl2, sxl) = codeSums(xs, full: full, weight: w, a: a, b: b)
            let f = fitGrid(sl: sl, sl2: sl2, sxl: sxl, n: n, sx: sx)
            let better = f.ok .& (f.gain .> bestGain)
            bestS.replace(with: f.s, where: better)
            bestZ.replace(with: f.z, where: better)
            bestGain.replace(with: f.gain, where: better)
            return (sl, sl2)
        }
        // Grids anchored at the minimum with c steps over the range (c around 15: fewer steps
        // leave room to round, more clip the extremes), and two shifted by a fraction of a step.
        for i in 0..<8 {
            let a = (12.5 + 0.5 * Float(i)) * invRange
            _ = tryCodes(a: a, b: -lo * a)
        }
        let a15 = 15 * invRange
        _ = tryCodes(a: a15, b: -0.3 - lo * a15)
        _ = tryCodes(a: a15, b: 0.3 - lo * a15)
        // One refinement: requantize on the best grid and refit.
        let a = (1 / bestS).replacing(with: 0, where: .!(bestS .> 0))
        let (q1, q2) = tryCodes(a: a, b: -bestZ * a)
        return TileFit(scale: SIMDMath.max(bestS, V8()), offset: SIMDMath.max(-bestZ, V8()), q1: q1, q2: q2, count: n)
    }

    // MARK: Step 2: the group's super-scales

    /// Squared error that rounding each lane's (s, m) to the nearest multiples of (d, dmin)
    /// adds, to second order with the codes held fixed.
    @inline(__always)
    static func roundingCost(_ f: TileFit, d: Float, dmin: Float) -> Float {
        let invD: Float = d > 0 ? 1 / d : 0, invDmin: Float = dmin > 0 ? 1 / dmin : 0
        // 0 ≤ s/d, m/dmin < 63.5 (see `superScaleSteps`): rounding alone lands in 0...63.
        let ds = d * SIMDMath.roundEven(f.scale * invD) - f.scale
        let dm = dmin * SIMDMath.roundEven(f.offset * invDmin) - f.offset
        // x' − x changes by Δs·q − Δm per element.
        return (ds * ds * f.q2 - 2 * ds * dm * f.q1 + dm * dm * f.count).sum()
    }

    /// `d` then `dmin` (binary16 bits) from the candidates of `superScaleSteps`.
    static func chooseSuperScales(_ fits: (TileFit, TileFit), tiles: Int) -> (UInt16, UInt16) {
        let maxScale = Swift.max(fits.0.scale.max(), fits.1.scale.max())
        let maxOffset = Swift.max(fits.0.offset.max(), fits.1.offset.max())
        @inline(__always) func f16(_ v: Float) -> UInt16 { Swift.min(HalfFloat.floatToF16(v), 0x7BFF) } // finite
        @inline(__always) func cost(_ d: Float, _ dmin: Float) -> Float {
            roundingCost(fits.0, d: d, dmin: dmin) + (tiles > 1 ? roundingCost(fits.1, d: d, dmin: dmin) : 0)
        }
        var dBits = f16(maxScale / 63), dminBits = f16(maxOffset / 63)
        if maxScale > 0 {
            let dmin = HalfFloat.f16ToFloat(dminBits)
            var best = Float.infinity
            for i in 0...superScaleSteps {
                let bits = f16(maxScale / 63 * (1 + superScaleStep * Float(i)))
                let c = cost(HalfFloat.f16ToFloat(bits), dmin)
                if bits != 0 && c < best { best = c; dBits = bits }
            }
        }
        if maxOffset > 0 {
            let d = HalfFloat.f16ToFloat(dBits)
            var best = Float.infinity
            for i in 0...superScaleSteps {
                let bits = f16(maxOffset / 63 * (1 + superScaleStep * Float(i)))
                let c = cost(d, HalfFloat.f16ToFloat(bits))
                if bits != 0 && c < best { best = c; dminBits = bits }
            }
        }
        return (dBits, dminBits)
    }

    // MARK: Step 3: the 6-bit scales and mins, and the codes

    /// Σ (x' − x)² per lane over the real elements for the decoded grid `S·q − M`.
    @inline(__always)
    static func gridError(_ xs: UnsafePointer<V8>, full: Int, weight w: V8, scale: V8, min: V8) -> V8 {
        let inv = (1 / scale).replacing(with: 0, where: .!(scale .> 0))
        let shift = min * inv
        var err = V8()
        for e in 0..<full {
            let x = xs[e]
            let q = SIMDMath.clamp(SIMDMath.roundEven(x * inv + shift), 0, 15)
            let r = (scale * q - min) - x // as the decoder computes x'
            err += r * r
        }
        for e in full..<32 {
            let x = xs[e]
            let q = SIMDMath.clamp(SIMDMath.roundEven(x * inv + shift), 0, 15)
            let r = (scale * q - min) - x
            err += r * r * w
        }
        return err
    }

    /// How far from the rounded values `refineTile` looks: ±1 gives nearly all of the gain of
    /// ±2 (RMSE within 0.2 %) at a third of the cost.
    static let searchRadius = 1

    /// The 6-bit (sc, mn) per lane within ±`searchRadius` of the rounded (s/d, m/dmin) that give the least
    /// error with codes requantized on each candidate grid.
    static func refineTile(_ xs: UnsafePointer<V8>, full: Int, weight w: V8, fit: TileFit, d: Float, dmin: Float) -> (V8, V8) {
        let sc0 = SIMDMath.clamp(SIMDMath.roundEven(fit.scale * (d > 0 ? 1 / d : 0)), 0, 63)
        let mn0 = SIMDMath.clamp(SIMDMath.roundEven(fit.offset * (dmin > 0 ? 1 / dmin : 0)), 0, 63)
        var bestSc = sc0, bestMn = mn0
        var bestErr = gridError(xs, full: full, weight: w, scale: d * sc0, min: dmin * mn0)
        for i in -searchRadius...searchRadius {
            let sc = SIMDMath.clamp(sc0 + Float(i), 0, 63)
            for j in -searchRadius...searchRadius where i != 0 || j != 0 {
                let mn = SIMDMath.clamp(mn0 + Float(j), 0, 63)
                let err = gridError(xs, full: full, weight: w, scale: d * sc, min: dmin * mn)
                let better = err .< bestErr
                bestErr.replace(with: err, where: better)
                bestSc.replace(with: sc, where: better)
                bestMn.replace(with: mn, where: better)
            }
        }
        return (bestSc, bestMn)
    }

    /// Stores the entries and codes of the first `lanes` sub-blocks of a tile.
    static func writeTile(_ xs: UnsafePointer<V8>, sc: V8, mn: V8, d: Float, dmin: Float, lanes: Int,
                          firstSubBlock: Int, scales: UnsafeMutableRawPointer, codes: UnsafeMutableRawPointer) {
        let scale = d * sc, min = dmin * mn
        let inv = (1 / scale).replacing(with: 0, where: .!(scale .> 0))
        let shift = min * inv
        @inline(__always) func code(_ e: Int) -> V8 { SIMDMath.clamp(SIMDMath.roundEven(xs[e] * inv + shift), 0, 15) }
        let scBytes = SIMDMath.lowBytes(sc), mnBytes = SIMDMath.lowBytes(mn)
        for j in 0..<lanes { Q4Layout.setEntry(scales, firstSubBlock + j, sc: scBytes[j], mn: mnBytes[j]) }
        // Byte b of a sub-block: element b in the low nibble, element b + 16 in the high one.
        for b in 0..<16 {
            let bytes = SIMDMath.lowBytes(code(b) + 16 * code(b + 16))
            for j in 0..<lanes { codes.storeBytes(of: bytes[j], toByteOffset: 16 * (firstSubBlock + j) + b, as: UInt8.self) }
        }
    }
}
