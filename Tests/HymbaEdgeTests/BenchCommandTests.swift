import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// `hymba-edge bench` as tools/bench/compare-llamacpp.sh runs it: the JSON object, the table,
/// and clear errors for bad arguments. Tiny counts on the shipped model: speed itself is
/// measured by the script, not here.
@Suite("hymba-edge bench")
struct BenchCommandTests {
    static var shippedModel: String { Fixtures.repositoryRoot.appendingPathComponent("models/tiny-code-hymba-q8.hymba").path }

    @Test("bench --json: one object with the rates (medians of the runs), peak RSS, KV bytes and the model's figures")
    func json() throws {
        let model = Self.shippedModel
        let r = try CommandLineTests.run(["bench", "-m", model, "--prompt-tokens", "16", "--gen-tokens", "4",
                                          "--repetitions", "3", "--threads", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        for key in ["prefill_tokens_per_second", "decode_tokens_per_second", "peak_rss_bytes", "kv_bytes", "model_name",
                    "params", "bits_per_weight", "threads", "threads_requested", "ctx", "weight_bytes",
                    "prefill_tokens_per_second_runs", "decode_tokens_per_second_runs"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["prompt_tokens"] as? Int == 16 && object["gen_tokens"] as? Int == 4 && object["repetitions"] as? Int == 3)
        #expect(object["threads_requested"] as? Int == 2 && object["threads"] as? Int == 2)
        // The context defaults to depth + prompt + generated tokens, as llama-bench sizes its own.
        #expect(object["ctx"] as? Int == 20 && object["depth"] as? Int == 0)
        #expect(object["model_name"] as? String == "tiny-code-hymba-q8.hymba")

        for (rateKey, runsKey, secondsKey, tokens) in [
            ("prefill_tokens_per_second", "prefill_tokens_per_second_runs", "prefill_seconds_runs", 16.0),
            ("decode_tokens_per_second", "decode_tokens_per_second_runs", "decode_seconds_runs", 4.0),
        ] {
            let rate = try #require(object[rateKey] as? Double)
            let runs = try #require(object[runsKey] as? [Double])
            let seconds = try #require(object[secondsKey] as? [Double])
            #expect(runs.count == 3 && seconds.count == 3)
            #expect(rate.isFinite && rate > 0, "\(rateKey) \(rate)")
            #expect(rate == runs.sorted()[1], "\(rateKey) is the median of \(runs)")
            for (v, s) in zip(runs, seconds) { #expect(abs(v - tokens / s) <= 1e-6 * v) }
        }

        // The model's figures match the file; KV bytes match the session the command sized.
        let file = try HymbaFile(path: model, verifyChecksums: false)
        let params = file.tensors.reduce(0) { $0 + $1.elementCount }
        let encoded = file.tensors.reduce(0) { $0 + Int($1.rawLength) }
        #expect(object["params"] as? Int == params)
        #expect(object["weight_bytes"] as? Int == encoded)
        let bits = try #require(object["bits_per_weight"] as? Double)
        #expect(abs(bits - Double(encoded) * 8 / Double(params)) < 1e-9 && bits > 8 && bits < 9, "q8 matrices: \(bits)")
        #expect(object["main_type"] as? String == "q8")
        let kv = MemoryReport(config: file.config, options: HymbaOptions(contextLength: 20, kvType: .f16)).kvBytes
        #expect(object["kv_bytes"] as? Int == kv && kv > 0)
        let rss = try #require(object["peak_rss_bytes"] as? Int)
        #expect(rss > encoded && rss < 4 << 30, "peak RSS \(rss) holds at least the weights")
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }

    @Test("bench: the table shows both rates, peak RSS and KV; --ctx sizes the session")
    func table() throws {
        let r = try CommandLineTests.run(["bench", "-m", Self.shippedModel, "--prompt-tokens", "8", "--gen-tokens", "2",
                                          "--repetitions", "1", "--ctx", "64"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("tiny-code-hymba-q8.hymba") && r.stdout.contains("ctx 64"), "\(r.stdout)")
        #expect(r.stdout.firstMatch(of: #/prefill 8 +[\d.]+ +[\d.]+/#) != nil, "\(r.stdout)")
        #expect(r.stdout.firstMatch(of: #/decode 2 +[\d.]+ +[\d.]+/#) != nil, "\(r.stdout)")
        #expect(r.stdout.firstMatch(of: #/peak RSS: [\d.]+ MiB \| KV: \d+ bytes/#) != nil, "\(r.stdout)")
    }

    @Test("bench --depth: both tests after that many context tokens; the context grows by it")
    func depth() throws {
        let r = try CommandLineTests.run(["bench", "-m", Self.shippedModel, "--prompt-tokens", "8", "--gen-tokens", "2",
                                          "--repetitions", "1", "--depth", "24", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(object["depth"] as? Int == 24 && object["ctx"] as? Int == 34)
        let tooSmall = try CommandLineTests.run(["bench", "-m", Self.shippedModel, "--prompt-tokens", "8", "--gen-tokens", "2",
                                                 "--depth", "24", "--ctx", "33"])
        #expect(tooSmall.status != 0 && tooSmall.stderr.contains("--ctx 33"), "\(tooSmall.stderr)")
    }

    @Test("bench: --threads defaults to one per core and reports the count the session ran on")
    func defaultThreads() throws {
        let r = try CommandLineTests.run(["bench", "-m", Self.shippedModel, "--prompt-tokens", "4", "--gen-tokens", "2",
                                          "--repetitions", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(object["threads_requested"] as? Int == 0)
        #expect(object["threads"] as? Int == ThreadPool.availableCores && ThreadPool.availableCores >= 1)
        let table = try CommandLineTests.run(["bench", "-m", Self.shippedModel, "--prompt-tokens", "4", "--gen-tokens", "2",
                                              "--repetitions", "1", "--threads", "1"])
        #expect(table.status == 0 && table.stdout.contains("threads 1,"), "\(table.stdout)")
    }

    @Test("bench: bad arguments are one clear error naming the option or file")
    func errors() throws {
        let model = Self.shippedModel
        for (option, value) in [("--prompt-tokens", "0"), ("--gen-tokens", "0"), ("--repetitions", "0"),
                                ("--threads", "-1"), ("--threads", "257"), ("--kv-type", "q4"), ("--ctx", "10"), ("--depth", "-1")] {
            let r = try CommandLineTests.run(["bench", "-m", model, "--prompt-tokens", "8", "--gen-tokens", "4", option, value])
            #expect(r.status != 0 && r.stderr.contains(option), "\(option) \(value): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        let tooLong = try CommandLineTests.run(["bench", "-m", model, "--prompt-tokens", "2000", "--gen-tokens", "4"])
        #expect(tooLong.status != 0 && tooLong.stderr.contains("context length 2004"), "\(tooLong.stderr)")
        let missing = try CommandLineTests.run(["bench", "-m", "/nonexistent/model.hymba"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/model.hymba"))
        let noModel = try CommandLineTests.run(["bench"])
        #expect(noModel.status != 0 && noModel.stderr.contains("--model"))
    }
}
