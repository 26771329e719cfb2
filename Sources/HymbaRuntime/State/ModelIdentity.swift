import Foundation
import HymbaFormat

/// What a saved state is bound to: the weights it was computed with and the config. Two
/// models with the same identity give the same numbers; a state is refused by any other.
public struct ModelIdentity: Sendable, Equatable, CustomStringConvertible {
    /// Bytes of the weight files (a `.hymba` file's length; the sum of a checkpoint's shards).
    public var fileBytes: UInt64
    /// A checksum that changes with any weight: a `.hymba` file's header checksum (which covers
    /// the checksums of its metadata and directory, and through the directory every chunk's);
    /// XXH64 over a checkpoint's shard headers (names, shapes, offsets); 0 for weights built in
    /// memory (then only the config binds).
    public var checksum: UInt64
    /// XXH64 of the config's fields in a fixed textual form (`HymbaConfig.canonicalText`).
    public var configHash: UInt64

    public init(fileBytes: UInt64, checksum: UInt64, configHash: UInt64) {
        self.fileBytes = fileBytes
        self.checksum = checksum
        self.configHash = configHash
    }

    public var description: String {
        "model of \(fileBytes) bytes, checksum \(String(checksum, radix: 16)), config \(String(configHash, radix: 16))"
    }
}

extension HymbaConfig {
    /// Every field, in a fixed order and form (the global layers sorted): what a config hash covers.
    public var canonicalText: String {
        [
            "hidden_size=\(hiddenSize)", "num_hidden_layers=\(numLayers)", "num_attention_heads=\(numHeads)",
            "num_key_value_heads=\(numKVHeads)", "mamba_expand=\(mambaExpand)", "mamba_d_state=\(stateSize)",
            "mamba_d_conv=\(convKernel)", "mamba_dt_rank=\(dtRank)", "intermediate_size=\(intermediateSize)",
            "num_memory_tokens=\(numMetaTokens)", "sliding_window=\(slidingWindow.map(String.init) ?? "none")",
            "global_attn_idx=\(globalLayers.sorted())", "kv_reuse_group=\(kvReuseGroups)",
            "rms_norm_eps=\(rmsNormEps.bitPattern)", "vocab_size=\(vocabSize)", "tie_word_embeddings=\(tieWordEmbeddings)",
            "max_position_embeddings=\(maxPositionEmbeddings)",
            "orig_max_position_embeddings=\(origMaxPositionEmbeddings.map(String.init) ?? "none")",
            "rope_theta=\(ropeTheta.bitPattern)", "rope_type=\(ropeType.rawValue)",
            "mamba_inner_layernorms=\(mambaInnerLayerNorms)", "bos=\(bosTokenID)", "eos=\(eosTokenID)",
        ].joined(separator: "\n")
    }

    var canonicalHash: UInt64 { XXHash64.hash(Array(canonicalText.utf8)) }
}

/// The weights' part of a `ModelIdentity` (file bytes and checksum); sources that know none
/// (weights built in memory) leave the default (0, 0).
package protocol IdentifiedWeights {
    var weightIdentity: (fileBytes: UInt64, checksum: UInt64) { get }
}

extension FileWeights: IdentifiedWeights {
    package var weightIdentity: (fileBytes: UInt64, checksum: UInt64) {
        let stored = UInt64(littleEndian: file.mapping.base.loadUnaligned(fromByteOffset: 120, as: UInt64.self))
        return (file.header.fileLength, stored)
    }
}

extension SafetensorsCheckpoint: IdentifiedWeights {
    package var weightIdentity: (fileBytes: UInt64, checksum: UInt64) {
        var bytes: UInt64 = 0, sum: UInt64 = 0
        // The shards in name order (Checkpoint keeps them sorted).
        for f in checkpoint.shards {
            bytes += UInt64(f.file.count)
            let headerLength = 8 + Int(UInt64(littleEndian: f.file.base.loadUnaligned(as: UInt64.self)))
            sum = XXHash64.hash(f.file.base, count: min(headerLength, f.file.count), seed: sum)
        }
        return (bytes, sum)
    }
}

extension HymbaModel {
    /// The identity saved states of this model are bound to.
    public var identity: ModelIdentity {
        let weights = (source as? IdentifiedWeights)?.weightIdentity ?? (fileBytes: 0, checksum: 0)
        return ModelIdentity(fileBytes: weights.fileBytes, checksum: weights.checksum, configHash: config.canonicalHash)
    }
}
