import Foundation
import HymbaFormat

/// The readable oracle: MODEL.md transcribed into plain scalar loops over the whole packed
/// sequence at once (no caches, no chunks, no SIMD; weights decoded row by row with the format's
/// reference codec). Slow and simple on purpose: the efficient path (`HymbaSession`) is tested
/// against it, and it against NVIDIA's fixtures.
public enum ReferenceForward {
    /// Logits [n, vocab] for the regular positions and the hidden states: entry L < layers is the
    /// residual stream entering layer L, entry `layers` the final-normed stream, each
    /// [(M+n), d] with the meta rows first.
    public static func run(model: HymbaModel, ids: [Int]) throws -> (logits: [Float], hidden: [[Float]]) {
        let c = model.config
        let d = c.hiddenSize, E = c.innerSize, H = c.numHeads, Hkv = c.numKVHeads
        let dk = c.headDim, dv = c.valueHeadDim, N = c.stateSize, K = c.convKernel, R = c.dtRank
        let F = c.intermediateSize, V = c.vocabSize, M = c.numMetaTokens, eps = c.rmsNormEps
        for (i, t) in ids.enumerated() where t < 0 || t >= V {
            throw HymbaRuntimeError.tokenOutOfVocabulary(token: t, index: i, vocabSize: V)
        }
        let S = M + ids.count

        // 1. X = [memory_tokens; embed_tokens[t_i]]
        var X = [Float](repeating: 0, count: S * d)
        for p in 0..<S {
            let (table, row) = p < M ? (model.metaTokens!, p) : (model.embed, ids[p - M])
            X.replaceSubrange((p * d)..<((p + 1) * d), with: decodedRow(table, row))
        }

        // RoPE inverse frequencies, fp32 as in the reference implementation.
        let invFreq = (0..<(dk / 2)).map { j in 1 / pow(Float(c.ropeBase), Float(2 * j) / Float(dk)) }
        func rope(_ v: inout [Float], row p: Int, offset: Int, heads: Int, stride: Int) {
            for h in 0..<heads {
                let base = p * stride + offset + h * dk
                for j in 0..<(dk / 2) {
                    let theta = Float(p) * invFreq[j]
                    let cs = cos(theta), sn = sin(theta)
                    let x1 = v[base + j], x2 = v[base + j + dk / 2]
                    v[base + j] = x1 * cs - x2 * sn
                    v[base + j + dk / 2] = x2 * cs + x1 * sn
                }
            }
        }

        var hidden: [[Float]] = []
        var producedK: [Int: [Float]] = [:], producedV: [Int: [Float]] = [:]
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            func w(_ name: String) throws -> TensorData { try model.source.tensor(p + name) }
            func vec(_ name: String) throws -> [Float] { try w(name).decodeAll() }
            hidden.append(X)

            // h = RMSNorm(X), Z = h·in_projᵀ, split.
            let h = rmsNormRows(X, try vec("input_layernorm.weight"), rows: S, eps: eps)
            let inProj = try w("mamba.in_proj.weight")
            let Z = linear(inProj, h, rows: S)
            let inRows = inProj.rows
            let producer = c.isKVProducer(layer: l)
            let kDim = Hkv * dk, vDim = Hkv * dv
            let xOff = producer ? d + kDim + vDim : d, gOff = xOff + E

            // 2a. Attention.
            var q = [Float](repeating: 0, count: S * d)
            for s in 0..<S { for i in 0..<d { q[s * d + i] = Z[s * inRows + i] } }
            for s in 0..<S { rope(&q, row: s, offset: 0, heads: H, stride: d) }
            if producer {
                var k = [Float](repeating: 0, count: S * kDim), v = [Float](repeating: 0, count: S * vDim)
                for s in 0..<S {
                    for i in 0..<kDim { k[s * kDim + i] = Z[s * inRows + d + i] }
                    for i in 0..<vDim { v[s * vDim + i] = Z[s * inRows + d + kDim + i] }
                }
                for s in 0..<S { rope(&k, row: s, offset: 0, heads: Hkv, stride: kDim) }
                producedK[l] = k
                producedV[l] = v
            }
            let keys = producedK[c.kvProducer(of: l)]!, values = producedV[c.kvProducer(of: l)]!
            let global = c.isGlobal(layer: l)
            let W = c.slidingWindow ?? 0
            var a = [Float](repeating: 0, count: S * E)
            let scale = 1 / Float(dk).squareRoot()
            for s in 0..<S {
                for hh in 0..<H {
                    let g = hh / (H / Hkv)
                    var allowed: [Int] = []
                    var scores: [Float] = []
                    for s2 in 0...s where global || s - s2 <= W || s2 < M {
                        var dot: Float = 0
                        for j in 0..<dk { dot += q[s * d + hh * dk + j] * keys[s2 * kDim + g * dk + j] }
                        allowed.append(s2)
                        scores.append(dot * scale)
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let sum = e.reduce(0, +)
                    for (i, s2) in allowed.enumerated() {
                        let wgt = e[i] / sum
                        for j in 0..<dv { a[s * E + hh * dv + j] += wgt * values[s2 * vDim + g * dv + j] }
                    }
                }
            }

            // 2b. SSM heads.
            let convW = try vec("mamba.conv1d.weight"), convB = try vec("mamba.conv1d.bias")
            var u = [Float](repeating: 0, count: S * E)
            for s in 0..<S {
                for i in 0..<E {
                    var acc = convB[i]
                    for j in 0..<K {
                        let src = s - K + 1 + j
                        if src >= 0 { acc += convW[i * K + j] * Z[src * inRows + xOff + i] }
                    }
                    u[s * E + i] = silu(acc)
                }
            }
            var xp = linear(try w("mamba.x_proj.0.weight"), u, rows: S)
            let xpDim = R + 2 * N
            if c.mambaInnerLayerNorms {
                let dtN = try vec("mamba.dt_layernorm.weight"), bN = try vec("mamba.B_layernorm.weight"), cN = try vec("mamba.C_layernorm.weight")
                for s in 0..<S {
                    let row = Array(xp[(s * xpDim)..<((s + 1) * xpDim)])
                    let nd = rmsNormRows(Array(row[0..<R]), dtN, rows: 1, eps: eps)
                    let nb = rmsNormRows(Array(row[R..<(R + N)]), bN, rows: 1, eps: eps)
                    let nc = rmsNormRows(Array(row[(R + N)...]), cN, rows: 1, eps: eps)
                    xp.replaceSubrange((s * xpDim)..<((s + 1) * xpDim), with: nd + nb + nc)
                }
            }
            var deltaIn = [Float](repeating: 0, count: S * R)
            for s in 0..<S { for i in 0..<R { deltaIn[s * R + i] = xp[s * xpDim + i] } }
            var delta = linear(try w("mamba.dt_proj.0.weight"), deltaIn, rows: S)
            let dtB = try vec("mamba.dt_proj.0.bias")
            for s in 0..<S { for i in 0..<E { delta[s * E + i] = softplus(delta[s * E + i] + dtB[i]) } }
            let A = try vec("mamba.A_log.0").map { -exp($0) }
            let D = try vec("mamba.D.0")
            var state = [Float](repeating: 0, count: E * N)
            var y = [Float](repeating: 0, count: S * E)
            for s in 0..<S {
                for i in 0..<E {
                    let dt = delta[s * E + i], ui = u[s * E + i]
                    var acc: Float = 0
                    for n in 0..<N {
                        let bn = xp[s * xpDim + R + n], cn = xp[s * xpDim + R + N + n]
                        state[i * N + n] = exp(dt * A[i * N + n]) * state[i * N + n] + dt * bn * ui
                        acc += state[i * N + n] * cn
                    }
                    y[s * E + i] = (acc + D[i] * ui) * silu(Z[s * inRows + gOff + i])
                }
            }

            // 2c. Fusion, residual, MLP.
            let na = rmsNormRows(a, try vec("mamba.pre_avg_layernorm1.weight"), rows: S, eps: eps)
            let ns = rmsNormRows(y, try vec("mamba.pre_avg_layernorm2.weight"), rows: S, eps: eps)
            let m = zip(na, ns).map { ($0 + $1) / 2 }
            let o = linear(try w("mamba.out_proj.weight"), m, rows: S)
            for i in 0..<(S * d) { X[i] += o[i] }
            let h2 = rmsNormRows(X, try vec("pre_moe_layernorm.weight"), rows: S, eps: eps)
            let gate = linear(try w("moe.experts.0.gate_proj.weight"), h2, rows: S)
            let up = linear(try w("moe.experts.0.up_proj.weight"), h2, rows: S)
            let act = (0..<(S * F)).map { silu(gate[$0]) * up[$0] }
            let down = linear(try w("moe.experts.0.down_proj.weight"), act, rows: S)
            for i in 0..<(S * d) { X[i] += down[i] }
        }

        // 3. Output.
        let Y = rmsNormRows(X, model.finalNorm.array, rows: S, eps: eps)
        hidden.append(Y)
        let logits = linear(model.head, Array(Y[(M * d)...]), rows: ids.count)
        return (logits, hidden)
    }

    /// y[s, r] = x[s, :]·W[r, :] for every row s of x.
    static func linear(_ w: TensorData, _ x: [Float], rows S: Int) -> [Float] {
        let n = w.rowLength, outs = w.rows
        var y = [Float](repeating: 0, count: S * outs)
        var row = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                row.withUnsafeMutableBufferPointer { rb in
                    let xp = xb.baseAddress!, yp = yb.baseAddress!, rp = rb.baseAddress!
                    for r in 0..<outs {
                        w.decodeRow(r, into: rp)
                        for s in 0..<S {
                            var acc: Float = 0
                            let xs = xp + s * n
                            for i in 0..<n { acc += rp[i] * xs[i] }
                            yp[s * outs + r] = acc
                        }
                    }
                }
            }
        }
        return y
    }

    static func decodedRow(_ t: TensorData, _ r: Int) -> [Float] {
        var out = [Float](repeating: 0, count: t.rowLength)
        out.withUnsafeMutableBufferPointer { t.decodeRow(r, into: $0.baseAddress!) }
        return out
    }

    static func rmsNormRows(_ x: [Float], _ w: [Float], rows: Int, eps: Float) -> [Float] {
        let n = w.count
        var out = [Float](repeating: 0, count: rows * n)
        for s in 0..<rows {
            var ss: Float = 0
            for i in 0..<n { ss += x[s * n + i] * x[s * n + i] }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            for i in 0..<n { out[s * n + i] = w[i] * (x[s * n + i] * inv) }
        }
        return out
    }

    static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }
    static func softplus(_ x: Float) -> Float { x > 20 ? x : log1p(exp(x)) }
}
