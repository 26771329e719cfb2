import Foundation
import HymbaFormat
import HymbaRuntime

/// The memory plan of N slots over one mapped model: `MemoryPlan` counts the process, the
/// weights, the tokenizer and one session; each further slot adds its own session (KV caches,
/// SSM and conv states, activations) and its logits and sampler buffers.
struct SlotPlan: CustomStringConvertible {
    /// The plan lines that every slot has once (MemoryPlan's item names).
    static let perSlotItems: Set<String> = ["KV caches", "SSM + conv states", "activations", "logits"]

    let single: MemoryPlan
    let slots: Int

    var perSlotBytes: Int { single.items.filter { Self.perSlotItems.contains($0.name) }.reduce(0) { $0 + $1.bytes } }
    var totalBytes: Int { single.totalBytes + (slots - 1) * perSlotBytes }
    var fits: Bool { single.budgetBytes.map { totalBytes <= $0 } ?? true }

    var description: String {
        var lines = ["\(slots) slots: \(mib(totalBytes)) = one slot's plan \(mib(single.totalBytes)) + \(slots - 1) × \(mib(perSlotBytes)) per further slot"]
        lines += single.items.filter { Self.perSlotItems.contains($0.name) }.map { "  per slot: \($0.name) \(mib($0.bytes)) (\($0.detail))" }
        lines.append(single.description)
        return lines.joined(separator: "\n")
    }

    /// A short summary for the ready line.
    var summary: String {
        var s = "\(mib(totalBytes)) for \(slots) slots (KV \(single.options.kvType), chunk \(single.options.prefillChunk), weights \(single.residency))"
        if let b = single.budgetBytes { s += " within \(mib(b))" }
        if !single.adjustments.isEmpty { s += " (to fit: \(single.adjustments.joined(separator: ", ")))" }
        return s
    }

    private func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

    /// Opens the model for `configuration`'s slots: with `parallel` that many or a refusal
    /// naming the breakdown; without it, the most slots (at most 4) the budget holds.
    static func load(_ configuration: ServerConfiguration) throws -> (TextModel, SlotPlan) {
        let file = try HymbaFile(path: configuration.modelPath, verifyChecksums: configuration.verifyChecksums)
        var options = HymbaOptions(contextLength: configuration.contextLength ?? file.config.maxPositionEmbeddings,
                                   kvType: configuration.kvType, threads: configuration.threads)
        guard let budget = configuration.memoryBudgetBytes else {
            let model = try TextModel(file: file, options: options)
            return (model, SlotPlan(single: model.memoryPlan, slots: configuration.parallel ?? ServerConfiguration.defaultMaximumSlots))
        }
        let counts = configuration.parallel.map { [$0] } ?? Array((1...ServerConfiguration.defaultMaximumSlots).reversed())
        let footprint = WeightFootprint(file: file)
        var refusal = ""
        for n in counts {
            // The further slots at the options asked for (the fitted plan may shrink them, never grow).
            let asked = SlotPlan(single: MemoryPlan(config: file.config, footprint: footprint, options: options,
                                                    residency: .resident, tokenizerBytes: 0), slots: n)
            options.memoryBudgetBytes = budget - (n - 1) * asked.perSlotBytes
            var failed = asked
            if options.memoryBudgetBytes! > 0 {
                do {
                    let model = try TextModel(file: file, options: options)
                    let fitted = model.memoryPlan
                    let plan = SlotPlan(single: MemoryPlan(config: fitted.config, footprint: footprint, options: withBudget(fitted.options, budget),
                                                           residency: fitted.residency, tokenizerBytes: model.tokenizerBytes), slots: n)
                    if plan.fits { return (model, plan) }
                    failed = plan
                } catch is MemoryBudgetError {}
            }
            refusal = SlotPlan(single: MemoryPlan(config: file.config, footprint: footprint, options: withBudget(failed.single.options, budget),
                                                  residency: failed.single.residency, tokenizerBytes: 0), slots: n).description
        }
        let asked = configuration.parallel.map { "\($0) slots" } ?? "even 1 slot"
        throw ServerError.budgetTooSmall("memory budget \(budget) bytes cannot hold \(asked) (the smallest plan tried):\n\(refusal)")
    }

    private static func withBudget(_ o: HymbaOptions, _ budget: Int) -> HymbaOptions {
        var o = o
        o.memoryBudgetBytes = budget
        return o
    }
}
