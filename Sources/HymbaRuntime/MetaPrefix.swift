import HymbaKernels
import HymbaKernelsPortable
import HymbaFormat

/// Everything the model computes for its M meta tokens (MODEL.md 1): it does not depend on the
/// input, so it is computed once per model and copied into every new sequence. It can also be
/// built from stored arrays (a converter may store it in the model file).
///
/// Per layer ℓ (arrays of fp32, row-major):
/// - `keys[ℓ]`: the rotated keys of positions 0 … M−1, [M, Hkv·dk]; empty for consumer layers.
/// - `values[ℓ]`: their values, [M, Hkv·dv]; empty for consumer layers.
/// - `convStates[ℓ]`: the SSM inputs x of positions M−K+1 … M−1, [K−1, E] (zeros for
///   positions before 0).
/// - `ssmStates[ℓ]`: the scan state S after position M−1, [E, N].
public struct MetaPrefix: Sendable, Equatable {
    public let metaTokens: Int
    public let keys: [[Float]]
    public let values: [[Float]]
    public let convStates: [[Float]]
    public let ssmStates: [[Float]]

    /// A prefix from stored arrays; call `HymbaModel.setMetaPrefix` to use it (it checks shapes).
    public init(metaTokens: Int, keys: [[Float]], values: [[Float]], convStates: [[Float]], ssmStates: [[Float]]) {
        self.metaTokens = metaTokens
        self.keys = keys
        self.values = values
        self.convStates = convStates
        self.ssmStates = ssmStates
    }

    /// Computes the prefix: the meta rows run through the model from an empty state with f32
    /// keys and values.
    public init(computing model: HymbaModel) {
        self = MetaPrefix.compute(model)
        // The session's buffers are freed: give their memory back before the caller allocates.
        ProcessMemory.releaseFreedMemory()
    }

    private static func compute(_ model: HymbaModel) -> MetaPrefix {
        let s = MetaPrefix.metaSession(model)
        s.runMetaRows()
        return MetaPrefix(extracting: s)
    }

    /// The residual stream of the meta rows entering each layer and the final-normed stream,
    /// [M, d] per entry, L+1 entries (diagnosis).
    public static func hiddenStates(of model: HymbaModel) -> [[Float]] {
        let s = metaSession(model)
        s.capture = Array(repeating: [], count: model.config.numLayers + 1)
        s.runMetaRows()
        return s.capture!
    }

    private static func metaSession(_ model: HymbaModel) -> HymbaSession {
        let c = model.config
        // The process's kernel backend (the portable one when HYMBA_BACKEND was refused: the
        // session that asked for the prefix has its own backend checked already).
        let options = HymbaOptions(contextLength: 1, kvType: .f32, prefillChunk: max(1, min(128, c.numMetaTokens)),
                                   kernels: (try? KernelDispatch.selected()) ?? .portable)
        // Valid by construction: context 1, a positive chunk and a backend this CPU runs.
        return try! HymbaSession(model: model, options: options, startFromPrefix: false)
    }

    private init(extracting s: HymbaSession) {
        let c = s.config
        let M = c.numMetaTokens
        var k: [[Float]] = [], v: [[Float]] = []
        for l in 0..<c.numLayers {
            guard let cache = s.caches[l] else { k.append([]); v.append([]); continue }
            var kl = [Float](repeating: 0, count: M * s.Hkv * s.dk)
            var vl = [Float](repeating: 0, count: M * s.Hkv * s.dv)
            kl.withUnsafeMutableBufferPointer { kb in
                vl.withUnsafeMutableBufferPointer { vb in
                    for p in 0..<M {
                        cache.read(position: p, keys: kb.baseAddress! + p * s.Hkv * s.dk, values: vb.baseAddress! + p * s.Hkv * s.dv)
                    }
                }
            }
            k.append(kl)
            v.append(vl)
        }
        metaTokens = M
        keys = k
        values = v
        convStates = s.convState.map { Array(UnsafeBufferPointer(start: $0, count: (s.K - 1) * s.E)) }
        ssmStates = s.ssmState.map { Array(UnsafeBufferPointer(start: $0, count: s.E * s.N)) }
    }

    /// Checks every array's size against the config.
    public func validate(for c: HymbaConfig) throws {
        let M = c.numMetaTokens, L = c.numLayers
        guard metaTokens == M else { throw HymbaRuntimeError.metaPrefix("built for \(metaTokens) meta tokens, the model has \(M)") }
        for (name, list) in [("keys", keys), ("values", values), ("convStates", convStates), ("ssmStates", ssmStates)] where list.count != L {
            throw HymbaRuntimeError.metaPrefix("\(name) has \(list.count) layers, the model has \(L)")
        }
        for l in 0..<L {
            let producer = c.isKVProducer(layer: l)
            let kCount = producer ? M * c.numKVHeads * c.headDim : 0
            let vCount = producer ? M * c.numKVHeads * c.valueHeadDim : 0
            if keys[l].count != kCount { throw HymbaRuntimeError.metaPrefix("layer \(l) keys hold \(keys[l].count) floats, expected \(kCount)") }
            if values[l].count != vCount { throw HymbaRuntimeError.metaPrefix("layer \(l) values hold \(values[l].count) floats, expected \(vCount)") }
            let conv = (c.convKernel - 1) * c.innerSize, ssm = c.innerSize * c.stateSize
            if convStates[l].count != conv { throw HymbaRuntimeError.metaPrefix("layer \(l) conv state holds \(convStates[l].count) floats, expected \(conv)") }
            if ssmStates[l].count != ssm { throw HymbaRuntimeError.metaPrefix("layer \(l) SSM state holds \(ssmStates[l].count) floats, expected \(ssm)") }
        }
    }
}
