import HymbaKernels
import HymbaKernelsPortable
import Foundation
import HymbaFormat

/// An owned fp32 array with a stable address, for the small per-layer vectors (norm weights,
/// biases, A, D, conv taps) that the kernels read through pointers.
package final class FloatBuffer: @unchecked Sendable {
    package let p: UnsafeMutablePointer<Float>
    package let count: Int

    package init(count: Int) {
        self.count = count
        p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))
    }

    package convenience init(_ values: [Float]) {
        self.init(count: values.count)
        for i in 0..<values.count { p[i] = values[i] }
    }

    deinit { p.deallocate() }

    package var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }
}

/// The weights of one layer (MODEL.md 2, tensor names under `model.layers.ℓ.`). Matrices stay
/// views in their stored type; the small vectors are widened to fp32 once at load.
package struct LayerWeights {
    package let index: Int
    /// Attends to every earlier position (else: window W plus the meta tokens).
    package let isGlobal: Bool
    /// The layer whose K/V cache this layer reads (itself for producers).
    package let kvProducer: Int
    package var producesKV: Bool { kvProducer == index }

    package let inputNorm: FloatBuffer      // input_layernorm.weight                  [d]
    /// mamba.in_proj.weight, [d + Hkv·dk + Hkv·dv + 2E, d] for producers (q | k | v | x | g),
    /// [d + 2E, d] for consumers (q | x | g).
    package let inProj: TensorData
    package let convWeightT: FloatBuffer    // mamba.conv1d.weight [E,1,K], transposed to [K, E]
    package let convBias: FloatBuffer       // mamba.conv1d.bias                       [E]
    package let xProj: TensorData           // mamba.x_proj.0.weight                   [R+2N, E]
    package let dtNorm: FloatBuffer?        // mamba.dt_layernorm.weight               [R]
    package let bNorm: FloatBuffer?         // mamba.B_layernorm.weight                [N]
    package let cNorm: FloatBuffer?         // mamba.C_layernorm.weight                [N]
    package let dtProj: TensorData          // mamba.dt_proj.0.weight                  [E, R]
    package let dtBias: FloatBuffer         // mamba.dt_proj.0.bias                    [E]
    package let A: FloatBuffer              // −exp(mamba.A_log.0)                     [E, N]
    package let D: FloatBuffer              // mamba.D.0                               [E]
    package let preAvgNorm1: FloatBuffer    // mamba.pre_avg_layernorm1.weight (attn)  [E]
    package let preAvgNorm2: FloatBuffer    // mamba.pre_avg_layernorm2.weight (SSM)   [E]
    package let outProj: TensorData         // mamba.out_proj.weight                   [d, E]
    package let preMoENorm: FloatBuffer     // pre_moe_layernorm.weight                [d]
    package let gateProj: TensorData        // moe.experts.0.gate_proj.weight          [F, d]
    package let upProj: TensorData          // moe.experts.0.up_proj.weight            [F, d]
    package let downProj: TensorData        // moe.experts.0.down_proj.weight          [d, F]
}

/// A Hymba model ready to run: the config and every weight as a view into its source
/// (`WeightSource`), validated against the shapes the config implies. Immutable and shareable
/// across sessions; the meta-token prefix (MODEL.md 1) is computed once, on first use, and
/// cached here.
///
///     let source = try SafetensorsCheckpoint(path: "Tests/Fixtures/tiny-hymba")
///     let model = try HymbaModel(source: source)
///     let session = try HymbaSession(model: model, options: .init(kvType: .f16))
///     try session.prefill(tokens: [1, 415, 2143])
///     let logits = try session.decode(token: 29889)
public final class HymbaModel: @unchecked Sendable {
    public let config: HymbaConfig
    /// Kept alive: the weight views point into its memory.
    public let source: WeightSource

    package let embed: TensorData           // model.embed_tokens.weight  [V, d]
    package let metaTokens: TensorData?     // model.memory_tokens        [M, d] (nil when M = 0)
    package let head: TensorData            // lm_head.weight, or embed_tokens when tied  [V, d]
    package let finalNorm: FloatBuffer      // model.final_layernorm.weight  [d]
    package let layers: [LayerWeights]
    /// RoPE inverse frequencies (MODEL.md 2a)  [dk/2]
    package let invFreq: FloatBuffer

    private let prefixLock = NSLock()
    private var cachedPrefix: MetaPrefix?

    /// Loads and validates every tensor the config requires (names and shapes: MODEL.md,
    /// "Checkpoint tensor names"). Throws `HymbaRuntimeError.missingTensor` / `.tensorShape`.
    public init(source: WeightSource) throws {
        let c = source.config
        try c.validate()
        config = c
        self.source = source
        let d = c.hiddenSize, E = c.innerSize, N = c.stateSize, K = c.convKernel, R = c.dtRank

        func get(_ name: String, _ shape: [Int]) throws -> TensorData {
            // Shape first (from the directory): a misshapen tensor is refused before it is loaded.
            if let known = source.shape(of: name), known != shape {
                throw HymbaRuntimeError.tensorShape(name: name, expected: shape, found: known)
            }
            let t: TensorData
            do { t = try source.tensor(name) } catch let e as HymbaRuntimeError { throw e } catch let e as HymbaFileError {
                // A present but corrupt tensor: the file error names the tensor, chunk and offset.
                if case .missingTensor = e { throw HymbaRuntimeError.missingTensor(name: name, reason: "\(e)") }
                throw e
            } catch {
                throw HymbaRuntimeError.missingTensor(name: name, reason: "\(error)")
            }
            if t.shape != shape { throw HymbaRuntimeError.tensorShape(name: name, expected: shape, found: t.shape) }
            return t
        }
        func vector(_ name: String, _ count: Int) throws -> FloatBuffer {
            FloatBuffer(try get(name, [count]).decodeAll())
        }

        embed = try get("model.embed_tokens.weight", [c.vocabSize, d])
        metaTokens = c.numMetaTokens > 0 ? try get("model.memory_tokens", [c.numMetaTokens, d]) : nil
        head = c.tieWordEmbeddings ? embed : try get("lm_head.weight", [c.vocabSize, d])
        finalNorm = try vector("model.final_layernorm.weight", d)
        invFreq = FloatBuffer(Rope.inverseFrequencies(base: c.ropeBase, headDim: c.headDim))

        var list: [LayerWeights] = []
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            let conv = try get(p + "mamba.conv1d.weight", [E, 1, K]).decodeAll()
            var convT = [Float](repeating: 0, count: K * E)
            for i in 0..<E { for j in 0..<K { convT[j * E + i] = conv[i * K + j] } }
            let aLog = try get(p + "mamba.A_log.0", [E, N]).decodeAll()
            list.append(LayerWeights(
                index: l,
                isGlobal: c.isGlobal(layer: l),
                kvProducer: c.kvProducer(of: l),
                inputNorm: try vector(p + "input_layernorm.weight", d),
                inProj: try get(p + "mamba.in_proj.weight", [c.inProjRows(layer: l), d]),
                convWeightT: FloatBuffer(convT),
                convBias: try vector(p + "mamba.conv1d.bias", E),
                xProj: try get(p + "mamba.x_proj.0.weight", [R + 2 * N, E]),
                dtNorm: c.mambaInnerLayerNorms ? try vector(p + "mamba.dt_layernorm.weight", R) : nil,
                bNorm: c.mambaInnerLayerNorms ? try vector(p + "mamba.B_layernorm.weight", N) : nil,
                cNorm: c.mambaInnerLayerNorms ? try vector(p + "mamba.C_layernorm.weight", N) : nil,
                dtProj: try get(p + "mamba.dt_proj.0.weight", [E, R]),
                dtBias: try vector(p + "mamba.dt_proj.0.bias", E),
                A: FloatBuffer(aLog.map { -Foundation.exp($0) }),
                D: try vector(p + "mamba.D.0", E),
                preAvgNorm1: try vector(p + "mamba.pre_avg_layernorm1.weight", E),
                preAvgNorm2: try vector(p + "mamba.pre_avg_layernorm2.weight", E),
                outProj: try get(p + "mamba.out_proj.weight", [d, E]),
                preMoENorm: try vector(p + "pre_moe_layernorm.weight", d),
                gateProj: try get(p + "moe.experts.0.gate_proj.weight", [c.intermediateSize, d]),
                upProj: try get(p + "moe.experts.0.up_proj.weight", [c.intermediateSize, d]),
                downProj: try get(p + "moe.experts.0.down_proj.weight", [d, c.intermediateSize])))
        }
        layers = list
    }

    /// The state after the M meta tokens (MODEL.md 1): computed on first use (one prefill of
    /// the meta rows, f32 keys and values) unless one was installed with `setMetaPrefix`.
    public var metaPrefix: MetaPrefix {
        prefixLock.lock()
        defer { prefixLock.unlock() }
        if let p = cachedPrefix { return p }
        let p = MetaPrefix(computing: self)
        cachedPrefix = p
        return p
    }

    /// Installs a stored prefix (e.g. read from a model file) instead of computing it.
    public func setMetaPrefix(_ prefix: MetaPrefix) throws {
        try prefix.validate(for: config)
        prefixLock.lock()
        cachedPrefix = prefix
        prefixLock.unlock()
    }

    /// Whether the prefix has been computed or installed already.
    public var hasMetaPrefix: Bool {
        prefixLock.lock()
        defer { prefixLock.unlock() }
        return cachedPrefix != nil
    }

    /// Layers whose K/V cache must serve a global layer: a producer whose group contains a
    /// global layer (MODEL.md 2a: the reading layer's own role decides the mask).
    package func cacheServesGlobal(producer l: Int) -> Bool {
        layers.contains { $0.kvProducer == l && $0.isGlobal }
    }
}

/// True when this module was compiled with optimization. Unoptimized Swift runs SIMD code
/// about 10× slower than scalar code (every vector operation becomes a generic call), so the
/// tests scale their sampling by it.
package let runtimeIsOptimized: Bool = !_isDebugAssertConfiguration()
