import _Builtin_intrinsics.intel

/// Horizontal reductions of 16 AVX-512 vectors at once (the products' 16 row sums, the block
/// maxima of the activations, the scan's 16 channel sums, the attention's 16 scores).
enum Reductions512 {
    /// The lane sums of 16 vectors as one vector (lane i: Σ of vector i), by a tree of
    /// interleaves and adds: 45 instructions instead of 16 separate reductions.
    @inline(__always)
    static func sixteenSums(_ v0: __m512, _ v1: __m512, _ v2: __m512, _ v3: __m512,
                            _ v4: __m512, _ v5: __m512, _ v6: __m512, _ v7: __m512,
                            _ v8: __m512, _ v9: __m512, _ v10: __m512, _ v11: __m512,
                            _ v12: __m512, _ v13: __m512, _ v14: __m512, _ v15: __m512) -> SIMD16<Float> {
        sixteenReductions({ _mm512_add_ps($0, $1) }, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15)
    }

    /// Lane i of the result combines the 16 lanes of vector i with `op` (an add: `sixteenSums`;
    /// a max: the activations' block maxima), pairs first.
    @inline(__always)
    static func sixteenReductions(_ op: (__m512, __m512) -> __m512,
                                  _ v0: __m512, _ v1: __m512, _ v2: __m512, _ v3: __m512,
                                  _ v4: __m512, _ v5: __m512, _ v6: __m512, _ v7: __m512,
                                  _ v8: __m512, _ v9: __m512, _ v10: __m512, _ v11: __m512,
                                  _ v12: __m512, _ v13: __m512, _ v14: __m512, _ v15: __m512) -> SIMD16<Float> {
        // Pairs: in each 128-bit lane, floats 0 and 2 belong to a, 1 and 3 to b.
        @inline(__always) func pair(_ a: __m512, _ b: __m512) -> __m512 {
            op(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b))
        }
        // Quads: in each 128-bit lane, float i belongs to vector i of the four.
        @inline(__always) func quad(_ ab: __m512, _ cd: __m512) -> __m512 {
            let x = unsafeBitCast(ab, to: __m512d.self), y = unsafeBitCast(cd, to: __m512d.self)
            return op(unsafeBitCast(_mm512_unpacklo_pd(x, y), to: __m512.self), unsafeBitCast(_mm512_unpackhi_pd(x, y), to: __m512.self))
        }
        // Halves of the 128-bit lanes: [a.l0 ∘ a.l1, a.l2 ∘ a.l3, b.l0 ∘ b.l1, b.l2 ∘ b.l3].
        let even = unsafeBitCast(SIMD16<Int32>(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27), to: __m512i.self)
        let odd = unsafeBitCast(SIMD16<Int32>(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31), to: __m512i.self)
        @inline(__always) func fold(_ a: __m512, _ b: __m512) -> __m512 {
            op(_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b))
        }
        let q0 = quad(pair(v0, v1), pair(v2, v3)), q1 = quad(pair(v4, v5), pair(v6, v7))
        let q2 = quad(pair(v8, v9), pair(v10, v11)), q3 = quad(pair(v12, v13), pair(v14, v15))
        return fold(fold(q0, q1), fold(q2, q3))
    }
}
