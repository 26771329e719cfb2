import HymbaFormat

/// The meta-token prefix stored in a model file (`hymba-convert --precompute-prefix`), so
/// loading skips even its one-time computation. Tensors, all f32 (formats/HYMBA-FORMAT.md §5):
///   hymba.meta_prefix.layers.{ℓ}.keys        [M, Hkv·dk]   producer layers only
///   hymba.meta_prefix.layers.{ℓ}.values      [M, Hkv·dv]   producer layers only
///   hymba.meta_prefix.layers.{ℓ}.conv_state  [K−1, E]
///   hymba.meta_prefix.layers.{ℓ}.ssm_state   [E, N]
extension MetaPrefix {
    public static let tensorPrefix = "hymba.meta_prefix."

    /// The tensors that store this prefix: name, shape and values.
    public func storedTensors(config c: HymbaConfig) -> [(name: String, shape: [Int], values: [Float])] {
        let M = c.numMetaTokens
        var out: [(String, [Int], [Float])] = []
        for l in 0..<c.numLayers {
            let p = Self.tensorPrefix + "layers.\(l)."
            if c.isKVProducer(layer: l), M > 0 {
                out.append((p + "keys", [M, c.numKVHeads * c.headDim], keys[l]))
                out.append((p + "values", [M, c.numKVHeads * c.valueHeadDim], values[l]))
            }
            if c.convKernel > 1 { out.append((p + "conv_state", [c.convKernel - 1, c.innerSize], convStates[l])) }
            out.append((p + "ssm_state", [c.innerSize, c.stateSize], ssmStates[l]))
        }
        return out
    }

    /// Reads a stored prefix; nil when the file has none. A partial or misshapen prefix is an error.
    public init?(storedIn file: HymbaFile) throws {
        let c = file.config
        guard file.tensors.contains(where: { $0.name.hasPrefix(Self.tensorPrefix) }) else { return nil }
        let M = c.numMetaTokens
        func read(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let entry = file.entry(name) else {
                throw HymbaRuntimeError.metaPrefix("\(file.path): stored prefix lacks \(name)")
            }
            guard entry.shape == shape, entry.type == .f32 else {
                throw HymbaRuntimeError.metaPrefix("\(file.path): \(name) is \(entry.type) \(entry.shape), expected f32 \(shape)")
            }
            return try file.decodeOnce(name)
        }
        var k: [[Float]] = [], v: [[Float]] = [], conv: [[Float]] = [], ssm: [[Float]] = []
        for l in 0..<c.numLayers {
            let p = Self.tensorPrefix + "layers.\(l)."
            if c.isKVProducer(layer: l), M > 0 {
                k.append(try read(p + "keys", [M, c.numKVHeads * c.headDim]))
                v.append(try read(p + "values", [M, c.numKVHeads * c.valueHeadDim]))
            } else {
                k.append([]); v.append([])
            }
            conv.append(c.convKernel > 1 ? try read(p + "conv_state", [c.convKernel - 1, c.innerSize]) : [])
            ssm.append(try read(p + "ssm_state", [c.innerSize, c.stateSize]))
        }
        self.init(metaTokens: M, keys: k, values: v, convStates: conv, ssmStates: ssm)
    }
}

extension HymbaModel {
    /// A model over a `.hymba` file, using the file's stored meta-token prefix when it has one,
    /// with its weights held as `residency` says (`FileWeights`).
    public convenience init(file: HymbaFile, residency: WeightResidency = .resident) throws {
        let weights = FileWeights(file: file, residency: residency)
        try self.init(source: weights)
        weights.finishLoading()
        if let stored = try MetaPrefix(storedIn: file) { try setMetaPrefix(stored) }
    }
}
