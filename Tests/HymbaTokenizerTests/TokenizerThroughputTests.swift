import Foundation
import HymbaConverter
import HymbaFormat
import HymbaTokenizer
import Testing

/// Encoding speed, measured only when asked (numbers from debug builds mean nothing):
///
///     HYMBA_TOKENIZER_BENCH=1 swift test -c release --scratch-path .build-tok --filter TokenizerThroughput
///
/// Extra texts to measure: `HYMBA_TOKENIZER_BENCH_FILES=/path/a.txt:/path/b.txt`.
@Suite("TokenizerThroughput", .enabled(if: ProcessInfo.processInfo.environment["HYMBA_TOKENIZER_BENCH"] != nil))
struct TokenizerThroughputTests {
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test("import and table building time")
    func loading() throws {
        var spec: TokenizerSpec?
        let importTime = try seconds { spec = try TokenizerImport.spec(checkpointDirectory: Fixtures.path("tiny-hymba")) }
        let buildTime = try seconds { _ = try Tokenizer(spec: spec!) }
        let object = spec!.jsonObject()
        let decodeTime = try seconds { _ = try TokenizerSpec(json: object) }
        print("tokenizer import \(Int(importTime * 1000)) ms, Tokenizer(spec:) \(Int(buildTime * 1000)) ms, TokenizerSpec(json:) \(Int(decodeTime * 1000)) ms")
    }

    @Test("encodes at least 1 MB/s on one core")
    func throughput() throws {
        let tokenizer = try Fixtures.hymba()
        var texts = [(Fixtures.path("tiny-code-hymba/heldout.txt"), try String(contentsOfFile: Fixtures.path("tiny-code-hymba/heldout.txt"), encoding: .utf8))]
        if let extra = ProcessInfo.processInfo.environment["HYMBA_TOKENIZER_BENCH_FILES"] {
            for file in extra.split(separator: ":").map(String.init) { texts.append((file, try String(contentsOfFile: file, encoding: .utf8))) }
        }
        // Worst cases for the merge loop: one 300 KB word (no ▁ to cut at), CJK without spaces.
        texts.append(("synthetic: 300 KB of 'a'", String(repeating: "a", count: 300_000)))
        let cjk = Array("状态空间模型与注意力机制的混合结构在小型设备上运行日本語のテキスト")
        var generator = SystemRandomNumberGenerator()
        texts.append(("synthetic: 100k CJK characters, no spaces", String((0..<100_000).map { _ in cjk.randomElement(using: &generator)! })))
        for (file, text) in texts {
            let bytes = text.utf8.count
            var best = Double.infinity
            var count = 0
            for _ in 0..<5 {
                let start = DispatchTime.now().uptimeNanoseconds
                count = tokenizer.encode(text).count
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            let mbps = Double(bytes) / 1e6 / best
            print("tokenizer encode: \(file): \(bytes) bytes -> \(count) ids in \(String(format: "%.1f", best * 1000)) ms = \(String(format: "%.2f", mbps)) MB/s")
            var decodeBest = Double.infinity
            let ids = tokenizer.encode(text)
            for _ in 0..<5 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = tokenizer.decode(ids)
                decodeBest = min(decodeBest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            print("tokenizer decode: \(file): \(String(format: "%.2f", Double(bytes) / 1e6 / decodeBest)) MB/s")
            #expect(mbps >= 1.0, "\(file): \(mbps) MB/s")
        }
    }
}
