import ArgumentParser
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge info`: what a model is and what running it costs in memory.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Config summary, layer roles, tensor storage, and KV/state bytes per token and at full context.")

    @Argument(help: "The .hymba model file.")
    var file: String

    @Option(name: .long, help: "Context length for the memory figures (default: max_position_embeddings).")
    var ctx: Int?

    @Option(name: .customLong("kv-type"), help: "KV element type for the memory figures: f16, f32 or q8.")
    var kvType: String = "f16"

    @Option(name: .customLong("prefill-chunk"), help: "Prefill chunk for the memory plan.")
    var prefillChunk: Int = HymbaOptions().prefillChunk

    @Option(name: .customLong("memory-budget"), help: ArgumentHelp(memoryBudgetHelp + " Here: plan within it (what run would choose).", valueName: "size"))
    var memoryBudget: String?

    func validate() throws {
        if KVType(rawValue: kvType) == nil { throw ValidationError("--kv-type \(kvType): expected f16, f32 or q8") }
        if prefillChunk < 1 { throw ValidationError("--prefill-chunk \(prefillChunk): must be at least 1") }
        _ = try parseMemoryBudget(memoryBudget)
    }

    func run() throws {
        try runReportingErrors {
            let kv = KVType(rawValue: kvType) ?? .f16
            let f = try HymbaFile(path: file, verifyChecksums: false)
            let c = f.config
            if let ctx, ctx < 1 || ctx > c.maxPositionEmbeddings {
                throw ValidationError("--ctx \(ctx): must be in 1...\(c.maxPositionEmbeddings)")
            }
            let context = ctx ?? c.maxPositionEmbeddings
            print(ModelInfo(file: f, contextLength: context, kvType: kv).text)
            print(KernelDispatch.summary())
            // The plan `run` would make: the tokenizer is built to measure it.
            let tokenizerBytes = f.metadata["tokenizer"] == nil ? 0 : try TextModel.measuredTokenizer(of: f).bytes
            let options = HymbaOptions(contextLength: context, kvType: kv, prefillChunk: prefillChunk,
                                       memoryBudgetBytes: try parseMemoryBudget(memoryBudget))
            print("")
            do {
                print(try MemoryPlan.fit(file: f, options: options, tokenizerBytes: tokenizerBytes).description)
            } catch let e as MemoryBudgetError {
                print("refused: \(e)")
                throw ExitCode(1)
            }
        }
    }
}

/// The text of `hymba-edge info`.
struct ModelInfo {
    let file: HymbaFile
    let contextLength: Int
    let kvType: KVType

    var text: String {
        let c = file.config
        var out: [String] = []
        func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1_048_576) }
        out.append("model:   \(file.path)")
        out.append("config:  d=\(c.hiddenSize) layers=\(c.numLayers) heads=\(c.numHeads) kv_heads=\(c.numKVHeads) dk=\(c.headDim) dv=\(c.valueHeadDim) E=\(c.innerSize) N=\(c.stateSize) K=\(c.convKernel) R=\(c.dtRank) F=\(c.intermediateSize) vocab=\(c.vocabSize)")
        out.append("         meta tokens=\(c.numMetaTokens) sliding window=\(c.slidingWindow.map(String.init) ?? "none") rope=\(c.ropeType.rawValue) (base \(String(format: "%.1f", c.ropeBase))) max positions=\(c.maxPositionEmbeddings) tied head=\(c.tieWordEmbeddings)")
        out.append("")
        out.append("layers:")
        for l in 0..<c.numLayers {
            let attn = c.isGlobal(layer: l) ? "global" : "local (W=\(c.slidingWindow!))"
            let producer = c.kvProducer(of: l)
            let kv: String
            if producer == l {
                let consumers = (0..<c.numLayers).filter { $0 != l && c.kvProducer(of: $0) == l }
                kv = consumers.isEmpty ? "own KV" : "KV producer for \(consumers.map(String.init).joined(separator: ","))"
            } else {
                kv = "KV consumer of layer \(producer)"
            }
            out.append("  " + String(format: "%3d", l) + "  " + attn.padded(to: 16) + " " + kv)
        }
        out.append("")
        out.append("weights:")
        var params = 0, bytes = 0
        for t in file.storageTotals {
            params += t.elements; bytes += t.storedBytes
            out.append("  " + t.type.description.padded(to: 5) + String(format: " %4d tensors %13d weights  %@  %.3f bits/weight", t.tensors, t.elements, mib(t.storedBytes), t.bitsPerWeight))
        }
        out.append(String(format: "  total %4d tensors %13d weights  %@  %.3f bits/weight", file.tensors.count, params, mib(bytes), Double(bytes) * 8 / Double(max(1, params))))
        out.append("")
        let report = MemoryReport(config: c, options: HymbaOptions(contextLength: contextLength, kvType: kvType))
        out.append("memory (KV \(kvType), context \(contextLength) tokens + \(c.numMetaTokens) meta):")
        for e in report.kvLayers {
            let kind = e.servesGlobal ? "global, all positions" : "local ring, \(e.regularSlots) recent"
            let shared = e.consumers.isEmpty ? "" : ", shared with \(e.consumers.map(String.init).joined(separator: ","))"
            out.append("  KV layer \(e.layer): \(kind) × \(e.bytesPerSlot) B + \(c.numMetaTokens) meta (f32) × \(e.metaBytesPerSlot) B = \(mib(e.bytes))\(shared)")
        }
        out.append("  consumer layers (no KV of their own): \(report.consumerLayers.isEmpty ? "none" : report.consumerLayers.map(String.init).joined(separator: ","))")
        out.append("  KV per token:       \(report.kvBytesPerToken) bytes (global caches grow; local rings are fixed)")
        out.append("  KV at context \(contextLength): \(report.kvBytes) bytes (\(mib(report.kvBytes)))")
        out.append("  SSM state:          \(report.ssmStateBytes) bytes, conv state \(report.convStateBytes) bytes (constant: 0 bytes per token)")
        out.append("  KV + state total:   \(report.kvBytes + report.stateBytes) bytes (\(mib(report.kvBytes + report.stateBytes)))")
        // The comparison of the Hymba paper (Table/Fig. on cache size): a Llama-3.2-3B-style
        // cache at the same context, f16, 28 layers × 8 KV heads of 128, no sharing, no window.
        let llama = MemoryPlan.llama3BStyleKVBytes(context: contextLength)
        let f16 = kvType == .f16 ? report : MemoryReport(config: c, options: HymbaOptions(contextLength: contextLength, kvType: .f16))
        out.append("  KV vs Llama-3.2-3B-style cache (28 layers, 8 KV heads × 128, f16, no sharing, no window) at context \(contextLength):")
        out.append("    Llama-3.2-3B-style \(mib(llama)); this model, f16 \(mib(f16.kvBytes)): " + String(format: "%.2f× smaller", Double(llama) / Double(f16.kvBytes))
            + (kvType == .f16 ? "" : "; \(kvType) \(mib(report.kvBytes)): " + String(format: "%.2f× smaller", Double(llama) / Double(report.kvBytes))))
        return out.joined(separator: "\n")
    }
}
