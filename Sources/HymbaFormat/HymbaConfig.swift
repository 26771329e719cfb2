import Foundation

/// The hyperparameters of one Hymba model, read from a Hugging Face `config.json`
/// (names and symbols as in `MODEL.md`, "Symbols"). Also stored verbatim inside every `.hymba`
/// file, so the runtime and the converter read it the same way.
public struct HymbaConfig: Sendable, Equatable {
    public enum RopeType: String, Sendable { case `default`, ntk }

    /// d: `hidden_size`.
    public var hiddenSize: Int
    /// L: `num_hidden_layers`.
    public var numLayers: Int
    /// H: `num_attention_heads`.
    public var numHeads: Int
    /// Hkv: `num_key_value_heads`.
    public var numKVHeads: Int
    /// `mamba_expand`; E = mambaExpand · d.
    public var mambaExpand: Int
    /// N: `mamba_d_state`.
    public var stateSize: Int
    /// K: `mamba_d_conv`.
    public var convKernel: Int
    /// R: `mamba_dt_rank`.
    public var dtRank: Int
    /// F: `intermediate_size`.
    public var intermediateSize: Int
    /// M: `num_memory_tokens`.
    public var numMetaTokens: Int
    /// W: `sliding_window`; nil means every layer is global.
    public var slidingWindow: Int?
    /// `global_attn_idx` (only meaningful when `slidingWindow` is set).
    public var globalLayers: Set<Int>
    /// `kv_reuse_group`: each group's first layer produces K/V, the rest consume it.
    public var kvReuseGroups: [[Int]]
    public var rmsNormEps: Float
    public var vocabSize: Int
    public var tieWordEmbeddings: Bool
    public var maxPositionEmbeddings: Int
    public var origMaxPositionEmbeddings: Int?
    public var ropeTheta: Double
    public var ropeType: RopeType
    /// `mamba_inner_layernorms`: RMSNorm on δ, B and C.
    public var mambaInnerLayerNorms: Bool
    public var bosTokenID: Int
    public var eosTokenID: Int

    // MARK: Derived sizes (MODEL.md, "Symbols")

    /// E = mamba_expand · d.
    public var innerSize: Int { mambaExpand * hiddenSize }
    /// dk = d / H.
    public var headDim: Int { hiddenSize / numHeads }
    /// dv = E / H.
    public var valueHeadDim: Int { innerSize / numHeads }
    /// Query heads per key/value head.
    public var queriesPerKVHead: Int { numHeads / numKVHeads }

    /// True when layer `l` attends to every earlier position.
    public func isGlobal(layer l: Int) -> Bool { slidingWindow == nil || globalLayers.contains(l) }

    /// The layer whose K/V cache layer `l` reads (itself when it produces its own).
    public func kvProducer(of l: Int) -> Int {
        for group in kvReuseGroups where group.contains(l) { return group[0] }
        return l
    }

    public func isKVProducer(layer l: Int) -> Bool { kvProducer(of: l) == l }

    /// Rows of `mamba.in_proj.weight`: q | k | v | x | g for producers, q | x | g for consumers.
    public func inProjRows(layer l: Int) -> Int {
        let kv = isKVProducer(layer: l) ? numKVHeads * headDim + numKVHeads * valueHeadDim : 0
        return hiddenSize + kv + 2 * innerSize
    }

    /// The RoPE base (MODEL.md 2a): theta, or the NTK-scaled base.
    public var ropeBase: Double {
        switch ropeType {
        case .default: return ropeTheta
        case .ntk:
            let orig = Double(origMaxPositionEmbeddings ?? maxPositionEmbeddings)
            let factor = 2.0 * Double(maxPositionEmbeddings) / orig - 1.0
            let dk = Double(headDim)
            return ropeTheta * pow(factor, dk / (dk - 2.0))
        }
    }

    /// Every tensor a checkpoint of this config must hold, with its shape, in a stable order.
    /// Without meta tokens there is no `model.memory_tokens` (NVIDIA's model creates the
    /// parameter only when `num_memory_tokens > 0`; a [0, d] tensor is not storable).
    public var expectedTensors: [(name: String, shape: [Int])] {
        let d = hiddenSize, E = innerSize, N = stateSize, R = dtRank, F = intermediateSize
        var out: [(String, [Int])] = [("model.embed_tokens.weight", [vocabSize, d])]
        if numMetaTokens > 0 { out.append(("model.memory_tokens", [numMetaTokens, d])) }
        for l in 0..<numLayers {
            let p = "model.layers.\(l)."
            out += [
                (p + "input_layernorm.weight", [d]),
                (p + "mamba.in_proj.weight", [inProjRows(layer: l), d]),
                (p + "mamba.conv1d.weight", [E, 1, convKernel]),
                (p + "mamba.conv1d.bias", [E]),
                (p + "mamba.x_proj.0.weight", [R + 2 * N, E]),
                (p + "mamba.dt_proj.0.weight", [E, R]),
                (p + "mamba.dt_proj.0.bias", [E]),
                (p + "mamba.A_log.0", [E, N]),
                (p + "mamba.D.0", [E]),
            ]
            if mambaInnerLayerNorms {
                out += [
                    (p + "mamba.dt_layernorm.weight", [R]),
                    (p + "mamba.B_layernorm.weight", [N]),
                    (p + "mamba.C_layernorm.weight", [N]),
                ]
            }
            out += [
                (p + "mamba.pre_avg_layernorm1.weight", [E]),
                (p + "mamba.pre_avg_layernorm2.weight", [E]),
                (p + "mamba.out_proj.weight", [d, E]),
                (p + "pre_moe_layernorm.weight", [d]),
                (p + "moe.experts.0.gate_proj.weight", [F, d]),
                (p + "moe.experts.0.up_proj.weight", [F, d]),
                (p + "moe.experts.0.down_proj.weight", [d, F]),
            ]
        }
        out.append(("model.final_layernorm.weight", [d]))
        if !tieWordEmbeddings { out.append(("lm_head.weight", [vocabSize, d])) }
        return out
    }

    /// Total parameters (tied head counted once).
    public var parameterCount: Int { expectedTensors.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}

// MARK: - Parsing config.json

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "config.json: \(message)" }
}

extension HymbaConfig {
    /// Parses and validates a Hugging Face Hymba `config.json`. Unsupported settings are
    /// refused by name rather than silently computed wrong.
    public init(jsonData: Data) throws {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: jsonData, options: [.fragmentsAllowed]) } catch {
            throw ConfigError("not valid JSON (\(error.localizedDescription))")
        }
        guard let json = any as? [String: Any] else { throw ConfigError("top level is not a JSON object") }
        try self.init(json: json)
    }

    public init(json: [String: Any]) throws {
        let r = ConfigReader(json)
        if let mt = r.optionalString("model_type"), mt != "hymba" {
            throw ConfigError("model_type is \"\(mt)\", expected \"hymba\"")
        }
        hiddenSize = try r.positiveInt("hidden_size")
        numLayers = try r.positiveInt("num_hidden_layers")
        numHeads = try r.positiveInt("num_attention_heads")
        numKVHeads = try r.positiveInt("num_key_value_heads")
        mambaExpand = try r.positiveInt("mamba_expand")
        stateSize = try r.positiveInt("mamba_d_state")
        convKernel = try r.positiveInt("mamba_d_conv")
        dtRank = try r.positiveInt("mamba_dt_rank")
        intermediateSize = try r.positiveInt("intermediate_size")
        numMetaTokens = try r.int("num_memory_tokens", default: 0)
        slidingWindow = try r.optionalInt("sliding_window")
        globalLayers = Set(try r.optionalIntArray("global_attn_idx") ?? [])
        kvReuseGroups = try r.optionalIntArrayArray("kv_reuse_group") ?? []
        rmsNormEps = Float(try r.double("rms_norm_eps", default: 1e-6))
        vocabSize = try r.positiveInt("vocab_size")
        tieWordEmbeddings = try r.bool("tie_word_embeddings", default: true)
        maxPositionEmbeddings = try r.positiveInt("max_position_embeddings")
        origMaxPositionEmbeddings = try r.optionalInt("orig_max_position_embeddings")
        ropeTheta = try r.double("rope_theta", default: 10000)
        let rt = r.optionalString("rope_type")
        switch rt {
        case nil, "default": ropeType = .default
        case "ntk": ropeType = .ntk
        case let other?: throw ConfigError("unsupported rope_type \"\(other)\" (supported: null, \"default\", \"ntk\")")
        }
        mambaInnerLayerNorms = try r.bool("mamba_inner_layernorms", default: true)
        bosTokenID = try r.int("bos_token_id", default: 1)
        eosTokenID = try r.int("eos_token_id", default: 2)

        // Settings this runtime does not implement: refuse by name.
        let experts = try r.int("num_experts", default: 1)
        if experts != 1 { throw ConfigError("unsupported num_experts = \(experts) (only 1 is supported)") }
        let interspersed = try r.int("memory_tokens_interspersed_every", default: 0)
        if interspersed > 0 {
            throw ConfigError("unsupported memory_tokens_interspersed_every = \(interspersed) (only 0 is supported)")
        }
        if let kq = r.optionalString("kq_norm"), kq != "none" {
            throw ConfigError("unsupported kq_norm \"\(kq)\" (only \"none\" is supported)")
        }
        if try r.bool("mamba_proj_bias", default: false) {
            throw ConfigError("unsupported mamba_proj_bias = true (in_proj/out_proj biases)")
        }
        if try !r.bool("mamba_conv_bias", default: true) {
            throw ConfigError("unsupported mamba_conv_bias = false")
        }
        if try r.bool("kv_weight_reuse", default: false) {
            throw ConfigError("unsupported kv_weight_reuse = true")
        }
        let reuseEvery = try r.int("kv_reuse_every_i_layer", default: -1)
        if reuseEvery > 0 { throw ConfigError("unsupported kv_reuse_every_i_layer = \(reuseEvery) (use kv_reuse_group)") }
        let numMamba = try r.int("num_mamba", default: 1)
        if numMamba != 1 { throw ConfigError("unsupported num_mamba = \(numMamba) (only 1 is supported)") }
        if try !r.bool("rope", default: true) { throw ConfigError("unsupported rope = false") }
        for key in ["hidden_act", "mlp_hidden_act"] {
            if let act = r.optionalString(key), act != "silu" { throw ConfigError("unsupported \(key) \"\(act)\" (only \"silu\")") }
        }
        for key in ["attn_hidden_size", "kq_head_dim"] {
            let v = try r.int(key, default: -1)
            if v > 0 { throw ConfigError("unsupported \(key) = \(v) (only -1: derived from hidden_size)") }
        }
        if let types = r.json["layer_type"] as? [Any] {
            if types.count != numLayers { throw ConfigError("layer_type has \(types.count) entries, num_hidden_layers is \(numLayers)") }
            for (i, t) in types.enumerated() where (t as? String) != "h" {
                throw ConfigError("unsupported layer_type[\(i)] = \(t) (only \"h\", hybrid heads)")
            }
        }
        try validate()
    }

    /// Upper bounds on the sizes, far above any Hymba model (the 1.5B has d = 1600, 32 layers,
    /// vocabulary 32001, context 8192) and far below what could overflow the derived sizes or
    /// make a crafted file ask the runtime for absurd memory (a vocabulary of 10^12 is refused
    /// here, not attempted).
    public enum Limits {
        public static let hiddenSize = 1 << 16
        public static let numLayers = 1 << 10
        public static let mambaExpand = 16
        public static let stateSize = 1 << 12
        public static let convKernel = 1 << 8
        public static let dtRank = 1 << 16
        public static let intermediateSize = 1 << 20
        public static let numMetaTokens = 1 << 16
        public static let vocabSize = 1 << 22
        /// Also bounds `orig_max_position_embeddings` and `sliding_window`.
        public static let positions = 1 << 24
    }

    /// Consistency checks between fields, after the size bounds (`Limits`).
    public func validate() throws {
        let bounds: [(String, Int, Int)] = [
            ("hidden_size", hiddenSize, Limits.hiddenSize), ("num_hidden_layers", numLayers, Limits.numLayers),
            ("num_attention_heads", numHeads, Limits.hiddenSize), ("num_key_value_heads", numKVHeads, Limits.hiddenSize),
            ("mamba_expand", mambaExpand, Limits.mambaExpand), ("mamba_d_state", stateSize, Limits.stateSize),
            ("mamba_d_conv", convKernel, Limits.convKernel), ("mamba_dt_rank", dtRank, Limits.dtRank),
            ("intermediate_size", intermediateSize, Limits.intermediateSize),
            ("num_memory_tokens", numMetaTokens, Limits.numMetaTokens), ("vocab_size", vocabSize, Limits.vocabSize),
            ("max_position_embeddings", maxPositionEmbeddings, Limits.positions),
            ("orig_max_position_embeddings", origMaxPositionEmbeddings ?? 1, Limits.positions),
            ("sliding_window", slidingWindow ?? 1, Limits.positions),
        ]
        for (name, value, limit) in bounds where value > limit {
            throw ConfigError("\(name) = \(value) is larger than this runtime accepts (at most \(limit))")
        }
        for (name, value) in [("hidden_size", hiddenSize), ("num_hidden_layers", numLayers), ("num_attention_heads", numHeads),
                              ("num_key_value_heads", numKVHeads), ("mamba_expand", mambaExpand), ("mamba_d_state", stateSize),
                              ("mamba_d_conv", convKernel), ("mamba_dt_rank", dtRank), ("intermediate_size", intermediateSize),
                              ("vocab_size", vocabSize), ("max_position_embeddings", maxPositionEmbeddings)] where value < 1 {
            throw ConfigError("\(name) must be positive, found \(value)")
        }
        if !(ropeTheta.isFinite && ropeTheta > 0) { throw ConfigError("rope_theta \(ropeTheta) must be a positive finite number") }
        if !(rmsNormEps.isFinite && rmsNormEps > 0) { throw ConfigError("rms_norm_eps \(rmsNormEps) must be a positive finite number") }
        if hiddenSize % numHeads != 0 { throw ConfigError("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numHeads)") }
        if numHeads % numKVHeads != 0 { throw ConfigError("num_attention_heads \(numHeads) is not divisible by num_key_value_heads \(numKVHeads)") }
        if innerSize % numHeads != 0 { throw ConfigError("mamba_expand·hidden_size \(innerSize) is not divisible by num_attention_heads \(numHeads)") }
        if headDim % 2 != 0 { throw ConfigError("head size \(headDim) is odd; rotate-half RoPE needs an even size") }
        if let w = slidingWindow, w <= 0 { throw ConfigError("sliding_window \(w) must be positive or null") }
        for l in globalLayers where l < 0 || l >= numLayers {
            throw ConfigError("global_attn_idx has layer \(l), outside 0..<\(numLayers)")
        }
        var seen = Set<Int>()
        for group in kvReuseGroups {
            if group.isEmpty { throw ConfigError("kv_reuse_group has an empty group") }
            for l in group {
                if l < 0 || l >= numLayers { throw ConfigError("kv_reuse_group has layer \(l), outside 0..<\(numLayers)") }
                if !seen.insert(l).inserted { throw ConfigError("kv_reuse_group lists layer \(l) twice") }
            }
            if group != group.sorted() { throw ConfigError("kv_reuse_group \(group) is not in increasing layer order") }
        }
        if ropeType == .ntk, let orig = origMaxPositionEmbeddings, orig <= 0 {
            throw ConfigError("orig_max_position_embeddings \(orig) must be positive for rope_type ntk")
        }
        if ropeType == .ntk && headDim <= 2 { throw ConfigError("rope_type ntk needs a head size above 2, found \(headDim)") }
        if !ropeBase.isFinite || !(ropeBase > 0) { throw ConfigError("the RoPE base \(ropeBase) (from rope_theta and the NTK scaling) is not a positive finite number") }
        if numMetaTokens < 0 { throw ConfigError("num_memory_tokens \(numMetaTokens) is negative") }
        if bosTokenID < 0 || bosTokenID >= vocabSize { throw ConfigError("bos_token_id \(bosTokenID) outside the vocabulary of \(vocabSize)") }
        if eosTokenID < 0 || eosTokenID >= vocabSize { throw ConfigError("eos_token_id \(eosTokenID) outside the vocabulary of \(vocabSize)") }
    }
}

/// Typed field access with errors that name the field.
private struct ConfigReader {
    let json: [String: Any]
    init(_ json: [String: Any]) { self.json = json }

    private func isNull(_ key: String) -> Bool { json[key] == nil || json[key] is NSNull }

    func optionalString(_ key: String) -> String? { json[key] as? String }

    func optionalInt(_ key: String) throws -> Int? {
        if isNull(key) { return nil }
        guard let n = jsonInteger(json[key]!) else { throw ConfigError("\(key) must be an integer, found \(json[key]!)") }
        return n
    }

    func int(_ key: String, default def: Int) throws -> Int { try optionalInt(key) ?? def }

    func positiveInt(_ key: String) throws -> Int {
        guard let v = try optionalInt(key) else { throw ConfigError("missing required field \(key)") }
        guard v > 0 else { throw ConfigError("\(key) must be positive, found \(v)") }
        return v
    }

    func double(_ key: String, default def: Double) throws -> Double {
        if isNull(key) { return def }
        guard let n = json[key] as? NSNumber, !isJSONBool(json[key]!) else { throw ConfigError("\(key) must be a number, found \(json[key]!)") }
        return n.doubleValue
    }

    func bool(_ key: String, default def: Bool) throws -> Bool {
        if isNull(key) { return def }
        if isJSONBool(json[key]!), let b = json[key] as? Bool { return b }
        throw ConfigError("\(key) must be true or false, found \(json[key]!)")
    }

    func optionalIntArray(_ key: String) throws -> [Int]? {
        if isNull(key) { return nil }
        guard let arr = json[key] as? [Any] else { throw ConfigError("\(key) must be a list of integers") }
        return try arr.map { v in
            guard let n = jsonInteger(v) else { throw ConfigError("\(key) must be a list of integers, found \(v)") }
            return n
        }
    }

    func optionalIntArrayArray(_ key: String) throws -> [[Int]]? {
        if isNull(key) { return nil }
        guard let arr = json[key] as? [Any] else { throw ConfigError("\(key) must be a list of lists of integers") }
        return try arr.map { g in
            guard let inner = g as? [Any] else { throw ConfigError("\(key) must be a list of lists of integers") }
            return try inner.map { v in
                guard let n = jsonInteger(v) else { throw ConfigError("\(key) must hold integers, found \(v)") }
                return n
            }
        }
    }
}

/// A JSON number that is an integer of magnitude below 10^15 (so exact in a Double and an
/// Int); nil for anything else (booleans, fractions, huge values, NaN).
func jsonInteger(_ v: Any) -> Int? {
    guard let n = v as? NSNumber, !isJSONBool(v) else { return nil }
    let d = n.doubleValue
    guard d.isFinite, d == d.rounded(), abs(d) < 1e15 else { return nil }
    return Int(d)
}

/// True for JSON `true`/`false` as Foundation parses them (an NSNumber of ObjC type "c"):
/// `as? Bool` alone also accepts the numbers 0 and 1.
func isJSONBool(_ v: Any) -> Bool {
    guard let n = v as? NSNumber else { return v is Bool }
    return String(cString: n.objCType) == "c"
}
