import Foundation
import Testing
@testable import HymbaRuntime

/// `--memory-budget` on the command line: the plan `info` prints, a refusal before any work,
/// the stats lines of `run` and `bench`, and usage errors.
@Suite("hymba-edge --memory-budget")
struct MemoryBudgetCommandTests {
    static var shippedModel: String { Fixtures.repositoryRoot.appendingPathComponent("models/tiny-code-hymba-q8.hymba").path }

    @Test("info --ctx --memory-budget prints the plan line by line and the Llama-3.2-3B KV comparison")
    func infoPlan() throws {
        let r = try CommandLineTests.run(["info", Self.shippedModel, "--ctx", "1024", "--memory-budget", "1G"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["memory plan (resident weights, KV f16, context 1024, prefill chunk 128):", "  process ", "  model file ",
                     "  tokenizer ", "  weights, mapped ", "  weights, decompressed ", "  small tensors (f32) ",
                     "  meta-token prefix ", "  KV caches ", "  SSM + conv states ", "  activations ", "  logits ",
                     "  running ", "budget 1024.00 MiB (1073741824 bytes): fits",
                     "KV vs Llama-3.2-3B-style cache (28 layers, 8 KV heads × 128, f16, no sharing, no window) at context 1024:",
                     "Llama-3.2-3B-style 112.00 MiB; this model, f16 "] {
            #expect(r.stdout.contains(line), "missing \(line)")
        }
        #expect(r.stdout.contains("× smaller"))
    }

    @Test("run below the smallest plan is refused before loading weights, with the breakdown and the smallest budget")
    func refusal() throws {
        let r = try CommandLineTests.run(["run", "-m", Self.shippedModel, "-p", "hello", "-n", "4", "--memory-budget", "16M"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty, "nothing generated: \(r.stdout)")
        #expect(r.stderr.hasPrefix("error: memory budget 16.00 MiB (16777216 bytes) is too small: as asked the run needs "))
        // A 5 MB model: opening it (its metadata JSON parsed, the tokenizer built) is the peak.
        #expect(r.stderr.contains("and opening the model (its metadata JSON parsed, the tokenizer built) alone needs "))
        #expect(r.stderr.contains("memory plan (") && r.stderr.contains("\n  KV caches ") && r.stderr.contains("\nwhile opening"))
        let need = try #require(r.stderr.firstMatch(of: #/the smallest budget that would fit: (\d+)MiB \(--memory-budget (\d+)MiB\)/#))
        #expect(need.1 == need.2)
        // A budget that size (plus 1 MiB: the tokenizer is measured again) runs, and stays in it.
        let budget = Int(need.1)! + 1
        let ok = try CommandLineTests.run(["run", "-m", Self.shippedModel, "-p", "hello", "-n", "4", "--temp", "0",
                                           "--memory-budget", "\(budget)MiB"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stderr.contains("| budget: \(budget).00 MiB\n"), "\(ok.stderr)")
        let peak = try #require(ok.stderr.firstMatch(of: #/peak RSS: ([\d.]+) MiB/#))
        #expect(Double(peak.1)! <= Double(budget), "peak \(peak.1) MiB over the budget")
    }

    @Test("run: the stats line gives the peak RSS, the plan and the budget")
    func runStats() throws {
        let r = try CommandLineTests.run(["run", "-m", Self.shippedModel, "-p", "hello", "-n", "4", "--temp", "0",
                                          "--ctx", "512", "--memory-budget", "1G"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains(#/\| peak RSS: [\d.]+ MiB \|/#))
        #expect(r.stderr.contains(#/\| plan: chunk 128, KV f16, weights resident, [\d.]+ MiB \| budget: 1024\.00 MiB\n/#), "\(r.stderr)")
        // --kv-type q8 as asked.
        let q8 = try CommandLineTests.run(["run", "-m", Self.shippedModel, "-p", "hello", "-n", "4", "--temp", "0",
                                           "--ctx", "512", "--kv-type", "q8"])
        #expect(q8.status == 0, "\(q8.stderr)")
        #expect(q8.stderr.contains("q8, ctx 512)"), "\(q8.stderr)")
    }

    @Test("bench --memory-budget: the plan's choices in the JSON and the table")
    func bench() throws {
        let args = ["bench", "-m", Self.shippedModel, "--prompt-tokens", "8", "--gen-tokens", "2", "--repetitions", "1",
                    "--ctx", "512", "--memory-budget", "1G"]
        let r = try CommandLineTests.run(args + ["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(object["memory_budget_bytes"] as? Int == 1 << 30)
        #expect(object["weights"] as? String == "resident")
        #expect(object["prefill_chunk"] as? Int == 128)
        let planned = try #require(object["memory_plan_bytes"] as? Int)
        let peak = try #require(object["peak_rss_bytes"] as? Int)
        #expect(planned > 0 && planned < 1 << 30 && peak > 0)
        let text = try CommandLineTests.run(args)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains(#/peak RSS: [\d.]+ MiB/#))
        #expect(text.stdout.contains(#/plan: chunk 128, KV f16, weights resident, [\d.]+ MiB \| budget: 1024\.00 MiB/#), "\(text.stdout)")
    }

    @Test("bad budgets are usage errors that name the problem")
    func usage() throws {
        for (value, message) in [("12X", "unknown unit \"X\""), ("-5M", "must be positive"), ("lots", "expected a number first")] {
            for command in [["run", "-m", Self.shippedModel, "-p", "x"], ["info", Self.shippedModel], ["eval", "-m", Self.shippedModel, "--ids", "1,2"]] {
                let r = try CommandLineTests.run(command + ["--memory-budget=\(value)"])
                #expect(r.status == 64, "\(command[0]) \(value): \(r.stderr)")
                #expect(r.stderr.contains("--memory-budget \"\(value)\": \(message)"), "\(command[0]) \(value): \(r.stderr)")
            }
        }
    }
}
