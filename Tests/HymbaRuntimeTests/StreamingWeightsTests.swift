import Foundation
import HymbaTestSupport
import HymbaConverter
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// Streamed weights (`WeightResidency.streaming`: a layer's pages dropped after it ran, its
/// compressed chunks decompressed again into one layer buffer) give exactly the resident
/// results, on the fixtures converted to `.hymba` files.
@Suite("Streamed weights")
struct StreamingWeightsTests {
    static let directory = ScratchDirectory.make("streaming")

    /// `fixture` converted with its matrices in `type`; zstd files use 4 KiB chunks so that a
    /// layer's tensors have several chunks, compressed and stored ones mixed.
    static let lock = NSLock()

    static func convert(_ fixture: String, _ type: StorageType, codec: ChunkCodec) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let out = directory + "/\(fixture)-\(type)-\(codec).hymba"
        if FileManager.default.fileExists(atPath: out) { return out }
        var options = ConversionOptions()
        options.recipe = QuantizationRecipe(matrixType: type)
        options.writer.codec = codec
        if codec != .none { options.writer.chunkBytes = 4096 }
        let source = fixturesDirectory.appendingPathComponent(fixture).path
        _ = try Converter.convert(checkpoint: try Checkpoint(directory: source), output: out, tokenizer: nil, options: options)
        return out
    }

    struct Case: CustomStringConvertible, Sendable {
        var fixture: String
        var codec: ChunkCodec
        var description: String { "\(fixture), bf16, \(codec)" }
    }

    /// bf16 matrices are stored exactly as NVIDIA's checkpoint holds them, so both modes must
    /// also meet the fixture's 1e-3.
    @Test("streamed and resident weights give identical logits in every feeding mode",
          arguments: [Case(fixture: "tiny-hymba", codec: .none), Case(fixture: "tiny-hymba", codec: .zstd),
                      Case(fixture: "tiny-hymba-untied", codec: .none), Case(fixture: "tiny-hymba-untied", codec: .zstd)])
    func identicalLogits(_ c: Case) throws {
        let fx = c.fixture == "tiny-hymba" ? Fixture.tiny : Fixture.untied
        let path = try Self.convert(c.fixture, .bf16, codec: c.codec)
        let resident = try HymbaModel(file: HymbaFile(path: path), residency: .resident)
        let streamed = try HymbaModel(file: HymbaFile(path: path), residency: .streaming)
        #expect(resident.weightStreamer == nil && resident.residency == .resident)
        let streamer = try #require(streamed.weightStreamer)
        #expect(streamed.residency == .streaming)
        if c.codec == .zstd {
            #expect(streamer.bufferBytes > 0, "the file should have compressed layer chunks (the layer buffer is used)")
        } else {
            #expect(streamer.bufferBytes == 0)
        }
        let options = HymbaOptions(kvType: .f32, prefillChunk: 16, threads: 2)
        let a = try HymbaSession(model: resident, options: options), b = try HymbaSession(model: streamed, options: options)
        for mode in [EvalMode.full, .incremental, .chunked(7)] {
            for (i, ids) in fx.sequences.enumerated() {
                let la = try a.eval(ids: ids, mode: mode), lb = try b.eval(ids: ids, mode: mode)
                #expect(la == lb, "\(c) sequence \(i) \(mode): streamed logits differ from resident by \(maxAbsDiff(la, lb))")
                #expect(maxAbsDiff(lb, fx.logits(i)) <= 1e-3, "\(c) sequence \(i) \(mode)")
            }
        }
    }

    /// The trained model as the shipped file stores it (q8, zstd): the same greedy tokens.
    @Test("tiny-code-hymba q8: the same greedy continuation streamed and resident")
    func greedyTokens() throws {
        let fx = Fixture.code
        let path = try Self.convert("tiny-code-hymba", .q8, codec: .zstd)
        let options = HymbaOptions(kvType: .f16, prefillChunk: 8, threads: 2)
        var continuations: [[Int]] = []
        for residency in WeightResidency.allCases {
            let model = try HymbaModel(file: HymbaFile(path: path), residency: residency)
            let session = try HymbaSession(model: model, options: options)
            var out: [Int] = []
            for prompt in fx.sequences {
                session.reset()
                try session.prefill(tokens: prompt)
                for _ in 0..<24 {
                    let l = session.logits
                    let next = l.indices.max { l[$0] < l[$1] }!
                    out.append(next)
                    try session.decode(token: next)
                }
            }
            continuations.append(out)
        }
        #expect(continuations[0] == continuations[1])
        #expect(continuations[0].count == 24 * fx.sequences.count)
    }

    @Test("a streamed model's footprint plans the largest unit, not every matrix")
    func streamedPlanIsSmaller() throws {
        let file = try HymbaFile(path: try Self.convert("tiny-code-hymba", .q8, codec: .zstd))
        let footprint = WeightFootprint(file: file)
        let options = HymbaOptions(contextLength: 256, kvType: .f16, prefillChunk: 16, threads: 1)
        let resident = MemoryPlan(config: file.config, footprint: footprint, options: options, residency: .resident, tokenizerBytes: 0)
        let streamed = MemoryPlan(config: file.config, footprint: footprint, options: options, residency: .streaming, tokenizerBytes: 0)
        let mapped = { (p: MemoryPlan) in p.items.first { $0.name == "weights, mapped" }!.bytes }
        let matrices = footprint.tensors.filter { $0.role == .matrix }
        // Resident: at least every matrix page in place; streamed: less than that.
        #expect(mapped(resident) >= matrices.reduce(0) { $0 + $1.mappedBytes })
        #expect(mapped(streamed) < mapped(resident))
        #expect(streamed.totalBytes < resident.totalBytes)
    }
}

/// `WeightFootprint.mappedBytes(touching:)`: pages within fault-around reach, merged.
@Suite("Weight footprint")
struct WeightFootprintTests {
    @Test("touched ranges count their pages and their neighbours within reach, once", .enabled(if: WeightFootprint.pageSize == 4096, "the expected counts assume 4 KiB pages"))
    func faultAroundReach() {
        var f = WeightFootprint(tensors: [], hasStoredPrefix: false)
        f.dataRange = 0..<(1000 * 4096)
        let page = 4096, reach = 15 * 4096
        #expect(WeightFootprint.faultAroundReach == reach)
        // One byte in page 100: pages 85…115.
        #expect(f.mappedBytes(touching: [100 * page..<(100 * page + 1)]) == 31 * page)
        // Clipped to the data section at both ends.
        #expect(f.mappedBytes(touching: [0..<1]) == 16 * page)
        #expect(f.mappedBytes(touching: [(999 * page)..<(1000 * page)]) == 16 * page)
        // Two ranges 20 pages apart overlap in their reach; 40 pages apart they do not.
        #expect(f.mappedBytes(touching: [100 * page..<(101 * page), 121 * page..<(122 * page)]) == (137 - 85) * page)
        #expect(f.mappedBytes(touching: [100 * page..<(101 * page), 141 * page..<(142 * page)]) == 2 * 31 * page)
        // Order does not matter; a range inside another adds nothing.
        #expect(f.mappedBytes(touching: [300 * page..<(310 * page), 100 * page..<(200 * page), 150 * page..<(151 * page)])
            == (215 - 85) * page + (325 - 285) * page)
        // Weights not in a file: the bytes themselves.
        let memory = WeightFootprint(tensors: [], hasStoredPrefix: false)
        #expect(memory.mappedBytes(touching: [0..<10, 100..<150]) == 60)
    }
}
