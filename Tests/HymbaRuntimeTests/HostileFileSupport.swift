import Foundation
import HymbaTestSupport
import HymbaConverter
import HymbaFormat
@testable import HymbaRuntime

/// Small valid model files to damage, the edits that damage them, and the one routine every
/// damaged file goes through (open, verify, load, tokenize, evaluate) — the same steps as the
/// libFuzzer harness in tools/fuzz.
enum HostileFiles {
    /// A 3-layer model small enough to run thousands of times: sliding window, a global layer,
    /// a KV-sharing group, NTK RoPE, meta tokens, an untied head.
    static let nanoConfig: [String: Any] = [
        "model_type": "hymba", "hidden_size": 8, "num_hidden_layers": 3, "num_attention_heads": 2,
        "num_key_value_heads": 1, "mamba_expand": 2, "mamba_d_state": 4, "mamba_d_conv": 3, "mamba_dt_rank": 2,
        "intermediate_size": 12, "num_memory_tokens": 2, "sliding_window": 3, "global_attn_idx": [0],
        "kv_reuse_group": [[1, 2]], "vocab_size": 24, "tie_word_embeddings": false, "max_position_embeddings": 32,
        "orig_max_position_embeddings": 16, "rope_type": "ntk", "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
        "bos_token_id": 1, "eos_token_id": 2,
    ]

    /// The ids every run evaluates (inside the nano vocabulary of 24).
    static let ids = [1, 5, 9, 13, 17, 21, 3]

    static let temporaryDirectory = ScratchDirectory.make("hostile")

    /// A synthesized nano model file (with the 20-token tokenizer of the tokenizer-edge fixture),
    /// as bytes. `keep` overrides the storage type per tensor pattern.
    static func seed(codec: ChunkCodec, quant: StorageType, keep: [(String, StorageType)] = [], seed: UInt64 = 3) throws -> [UInt8] {
        let key = "\(codec)-\(quant)-\(keep.map { "\($0.0)=\($0.1)" })-\(seed)"
        seedLock.lock(); defer { seedLock.unlock() }
        if let bytes = seeds[key] { return bytes }
        let name = "nano-\(seeds.count)"
        let configPath = temporaryDirectory + "/\(name).json"
        let out = temporaryDirectory + "/\(name).hymba"
        try JSONSerialization.data(withJSONObject: nanoConfig, options: [.sortedKeys]).write(to: URL(fileURLWithPath: configPath))
        var options = ConversionOptions()
        options.recipe = QuantizationRecipe(matrixType: quant, overrides: keep.map { .init(pattern: $0.0, type: $0.1) })
        options.writer.codec = codec
        options.writer.chunkBytes = 96  // several chunks per tensor: chunk boundaries to cut at
        options.writer.parallelChunks = 1
        let tokenizer = try TokenizerImport.metadataObject(directory: fixturesDirectory.appendingPathComponent("tokenizer-edge").path)
        _ = try Synthesizer.synthesize(configPath: configPath, output: out, seed: seed, tokenizer: tokenizer, options: options)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        seeds[key] = bytes
        return bytes
    }

    private static let seedLock = NSLock()
    nonisolated(unsafe) private static var seeds: [String: [UInt8]] = [:]

    // MARK: Running a file

    enum Outcome: Equatable {
        /// A stage threw: the message.
        case refused(String)
        /// Loaded and ran, but `verify()` reported damaged chunks (in tensors the model does not use).
        case flagged(problems: Int, logits: [Float])
        /// Loaded and ran cleanly.
        case ran(logits: [Float])

        var logits: [Float]? {
            switch self {
            case .refused: return nil
            case let .flagged(_, l), let .ran(l): return l
            }
        }
    }

    /// Open (from memory, so every read past the end is a sanitizer report), verify every chunk,
    /// load the tokenizer and model, encode and decode a text, and evaluate `ids` (clipped to the
    /// vocabulary) with a small context. `verifyChecksums` false lets damaged chunk data reach
    /// the decoders and the model.
    static func exercise(_ bytes: [UInt8], verifyChecksums: Bool = true) -> Outcome {
        do {
            let mapping = bytes.withUnsafeBytes { MappedFile(copying: $0, name: "mutant.hymba") }
            let file = try HymbaFile(mapping: mapping, verifyChecksums: verifyChecksums)
            let problems = file.verify()
            let model: HymbaModel
            if file.metadata["tokenizer"] is [String: Any] {
                let text = try TextModel(file: file)
                let encoded = text.encode("a b ab <tool> héllo\u{0}")
                _ = text.tokenizer.decode(encoded, skipSpecial: false)
                model = text.model
            } else {
                model = try HymbaModel(file: file)
            }
            let c = model.config
            let session = try HymbaSession(model: model, options: HymbaOptions(
                contextLength: min(8, c.maxPositionEmbeddings), kvType: .f32, prefillChunk: 3))
            let feed = ids.prefix(session.contextLength).map { $0 % c.vocabSize }
            let logits = try session.eval(ids: Array(feed), mode: .chunked(3))
            return problems.isEmpty ? .ran(logits: logits) : .flagged(problems: problems.count, logits: logits)
        } catch {
            return .refused("\(error)")
        }
    }

    // MARK: Editing files

    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(b[at + i]) << (8 * UInt64(i)) }
        return v
    }

    static func setU64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
        for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    static func setU32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    /// Recomputes the metadata, directory and header checksums (where the header's ranges lie
    /// inside the bytes), so an edit reaches the validation behind the checksums.
    static func resign(_ b: inout [UInt8]) {
        guard b.count >= 128 else { return }
        let metaLen = u64(b, 24), dirOff = u64(b, 32), dirLen = u64(b, 40)
        if metaLen <= UInt64(b.count - 128) {
            setU64(&b, 72, b.withUnsafeBytes { XXHash64.hash($0.baseAddress! + 128, count: Int(metaLen)) })
        }
        if dirOff <= UInt64(b.count), dirLen <= UInt64(b.count) - dirOff {
            setU64(&b, 80, b.withUnsafeBytes { XXHash64.hash($0.baseAddress! + Int(dirOff), count: Int(dirLen)) })
        }
        setU64(&b, 120, b.withUnsafeBytes { XXHash64.hash($0.baseAddress!, count: 120) })
    }

    /// The parsed layout of valid bytes.
    static func layout(_ bytes: [UInt8]) throws -> HymbaFile {
        try HymbaFile(mapping: bytes.withUnsafeBytes { MappedFile(copying: $0, name: "seed.hymba") })
    }

    /// The file with its directory replaced by `tensors` (re-encoded, lengths and checksums fixed).
    static func withDirectory(_ bytes: [UInt8], _ tensors: [TensorEntry]) throws -> [UInt8] {
        let f = try layout(bytes)
        var out = Array(bytes[0..<Int(f.header.directoryOffset)])
        let dir = DirectoryCodec.encode(tensors)
        out += dir
        setU64(&out, 40, UInt64(dir.count))
        setU64(&out, 64, UInt64(out.count))
        // The data section ends where the (plausible) chunks end.
        let ends = tensors.flatMap(\.chunks).compactMap { c -> UInt64? in
            let (end, overflow) = c.storedOffset.addingReportingOverflow(c.storedLength)
            return !overflow && c.storedOffset >= f.header.dataOffset && end <= f.header.directoryOffset ? end : nil
        }
        if let last = ends.max() { setU64(&out, 56, last - f.header.dataOffset) }
        resign(&out)
        return out
    }

    /// The file with its metadata object edited (it must still fit before the data offset).
    static func withMetadata(_ bytes: [UInt8], _ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        let f = try layout(bytes)
        var meta = f.metadata
        edit(&meta)
        let data = [UInt8](try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys]))
        return try withMetadataBytes(bytes, data)
    }

    static func withMetadataBytes(_ bytes: [UInt8], _ data: [UInt8]) throws -> [UInt8] {
        let f = try layout(bytes)
        precondition(128 + data.count <= Int(f.header.dataOffset), "edited metadata no longer fits")
        var out = bytes
        for i in 128..<Int(f.header.dataOffset) { out[i] = 0 }
        out.replaceSubrange(128..<(128 + data.count), with: data)
        setU64(&out, 24, UInt64(data.count))
        resign(&out)
        return out
    }

    /// The file with the config edited.
    static func withConfig(_ bytes: [UInt8], _ edit: @escaping (inout [String: Any]) -> Void) throws -> [UInt8] {
        try withMetadata(bytes) { meta in
            var c = meta["config"] as! [String: Any]
            edit(&c)
            meta["config"] = c
        }
    }
}

/// The fixed-seed source of the mutations: the tests' SplitMix64 generator.
typealias MutationRandom = SyntheticModels.Random

extension SyntheticModels.Random {
    /// A draw in 0..<n (0 when n ≤ 1).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}
