import Foundation
import HymbaFormat

/// A human- and machine-readable description of a `.hymba` file (`hymba-convert inspect`).
public struct ModelInspection {
    public let file: HymbaFile

    public init(file: HymbaFile) { self.file = file }

    /// Weights: elements of every tensor but the derived `hymba.*` ones.
    public var parameterCount: Int { file.weightTotals.elements }
    public var storedBytes: UInt64 { file.tensors.reduce(0) { $0 + $1.storedBytes } }
    public var rawBytes: UInt64 { file.tensors.reduce(0) { $0 + $1.rawLength } }

    private var tokenizer: [String: Any]? { file.metadata["tokenizer"] as? [String: Any] }

    public var jsonObject: [String: Any] {
        let h = file.header
        let c = file.config
        var tok: Any = NSNull()
        if let t = tokenizer {
            tok = [
                "model": t["model"] ?? NSNull(),
                "vocab_size": (t["vocab"] as? [Any])?.count ?? 0,
                "merges": ((t["merges"] as? [Any])?.count ?? 0) / 2,
                "bos_id": t["bos_id"] ?? NSNull(), "eos_id": t["eos_id"] ?? NSNull(),
                "byte_fallback": t["byte_fallback"] ?? NSNull(),
                "has_chat_template": (t["chat_template"] as? String) != nil,
            ] as [String: Any]
        }
        return [
            "path": file.path,
            "header": [
                "version": Int(h.version), "file_length": Int(h.fileLength),
                "metadata_offset": Int(h.metadataOffset), "metadata_length": Int(h.metadataLength),
                "data_offset": Int(h.dataOffset), "data_length": Int(h.dataLength),
                "directory_offset": Int(h.directoryOffset), "directory_length": Int(h.directoryLength),
            ],
            "config": [
                "hidden_size": c.hiddenSize, "layers": c.numLayers, "heads": c.numHeads, "kv_heads": c.numKVHeads,
                "inner_size": c.innerSize, "state_size": c.stateSize, "dt_rank": c.dtRank,
                "intermediate_size": c.intermediateSize, "meta_tokens": c.numMetaTokens,
                "sliding_window": c.slidingWindow.map { $0 as Any } ?? NSNull(), "vocab_size": c.vocabSize,
                "tied_embeddings": c.tieWordEmbeddings, "max_position_embeddings": c.maxPositionEmbeddings,
                "rope_type": c.ropeType.rawValue, "rope_base": c.ropeBase,
            ] as [String: Any],
            "tokenizer": tok,
            "quantization": file.metadata["quantization"] ?? NSNull(),
            "provenance": file.metadata["provenance"] ?? NSNull(),
            "tensors": file.tensors.map { t -> [String: Any] in
                [
                    "name": t.name, "shape": t.shape, "type": t.type.description,
                    "stored_bytes": Int(t.storedBytes), "raw_bytes": Int(t.rawLength),
                    "codecs": Array(Set(t.chunks.map { $0.codec.description })).sorted(),
                    "chunks": t.chunks.count, "data_offset": Int(t.dataOffset),
                ]
            },
            "totals": [
                "tensors": file.tensors.count, "parameters": parameterCount,
                "stored_bytes": Int(storedBytes), "raw_bytes": Int(rawBytes),
                "bits_per_weight": file.bitsPerWeight,
                "weight_tensors": file.weightTotals.tensors,
                "file_bytes": Int(h.fileLength),
            ] as [String: Any],
        ]
    }

    public var text: String {
        let h = file.header, c = file.config
        var out: [String] = []
        out.append("file:        \(file.path)")
        out.append("format:      hymba v\(h.version), \(h.fileLength) bytes; metadata \(h.metadataLength) B at \(h.metadataOffset), data \(h.dataLength) B at \(h.dataOffset), directory \(h.directoryLength) B at \(h.directoryOffset)")
        out.append("config:      d=\(c.hiddenSize) layers=\(c.numLayers) heads=\(c.numHeads)/\(c.numKVHeads)kv dk=\(c.headDim) dv=\(c.valueHeadDim) E=\(c.innerSize) N=\(c.stateSize) K=\(c.convKernel) R=\(c.dtRank) F=\(c.intermediateSize)")
        out.append("             meta tokens=\(c.numMetaTokens) window=\(c.slidingWindow.map(String.init) ?? "none") global=\(c.globalLayers.sorted()) kv groups=\(c.kvReuseGroups) vocab=\(c.vocabSize) tied=\(c.tieWordEmbeddings)")
        out.append("             rope=\(c.ropeType.rawValue) base=\(String(format: "%.1f", c.ropeBase)) max positions=\(c.maxPositionEmbeddings)")
        if let t = tokenizer {
            let vocab = (t["vocab"] as? [Any])?.count ?? 0
            let merges = ((t["merges"] as? [Any])?.count ?? 0) / 2
            let chat = (t["chat_template"] as? String) != nil ? "yes" : "no"
            out.append("tokenizer:   \(t["model"] ?? "?") vocab=\(vocab) merges=\(merges) bos=\(t["bos_id"] ?? "-") eos=\(t["eos_id"] ?? "-") byte_fallback=\(t["byte_fallback"] ?? "-") chat template=\(chat)")
        } else {
            out.append("tokenizer:   none (this file cannot turn text into tokens: converted with --no-tokenizer, or synthesized without --tokenizer)")
        }
        if let q = file.metadata["quantization"] as? [String: Any] {
            out.append("recipe:      matrices \(q["matrix_type"] ?? "?"), others \(q["other_type"] ?? "?"), codec \(q["codec"] ?? "?") level \(q["level"] ?? "?")" +
                       ((q["overrides"] as? [Any]).map { $0.isEmpty ? "" : ", \($0.count) overrides" } ?? ""))
        }
        if let p = file.metadata["provenance"] as? [String: Any] {
            out.append("provenance:  \(p["converter"] ?? "?") from \(p["source"] ?? "?")")
            for f in (p["files"] as? [[String: Any]]) ?? [] {
                out.append("             \(f["name"] ?? "?")  \(f["bytes"] ?? "?") bytes  sha256 \(f["sha256"] ?? "?")")
            }
        }
        out.append("")
        let nameWidth = min(60, file.tensors.map { $0.name.count }.max() ?? 4)
        func col(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        func rcol(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
        out.append(col("tensor", nameWidth) + "  " + col("shape", 14) + col("type", 6) + rcol("stored", 12) + rcol("raw", 12) + "  codec")
        for t in file.tensors {
            let shape = t.shape.map(String.init).joined(separator: "×")
            let codecs = Array(Set(t.chunks.map { $0.codec.description })).sorted().joined(separator: "+")
            out.append(col(t.name, nameWidth) + "  " + col(shape, 14) + col(t.type.description, 6) +
                       rcol(String(t.storedBytes), 12) + rcol(String(t.rawLength), 12) + "  " + codecs)
        }
        out.append("")
        for t in file.storageTotals {
            out.append(t.type.description.padded(to: 5) + String(format: " %4d tensors %13d weights %14d bytes stored  %.3f bits/weight", t.tensors, t.elements, t.storedBytes, t.bitsPerWeight))
        }
        let w = file.weightTotals
        let derived = file.tensors.filter { !HymbaFile.isWeight($0.name) }
        if !derived.isEmpty {
            out.append(String(format: "derived %2d tensors (%@*, not weights) %14d bytes stored", derived.count, HymbaFile.derivedTensorPrefix,
                              derived.reduce(0) { $0 + Int($1.storedBytes) }))
        }
        out.append(String(format: "total %4d tensors %13d weights %14d bytes stored  %.3f bits/weight; file %d bytes; compression %.3f×",
                          w.tensors, w.elements, w.storedBytes, w.bitsPerWeight, Int(h.fileLength),
                          Double(rawBytes) / Double(max(1, storedBytes))))
        return out.joined(separator: "\n")
    }
}
