import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

@Suite("Caches and memory")
struct CacheTests {
    @Test("tiny-hymba: consumers own no cache, local rings are W + chunk, global caches hold the context")
    func tinyLayout() throws {
        let model = Fixture.tiny.model
        let c = model.config
        let session = try HymbaSession(model: model, options: HymbaOptions(kvType: .f16, prefillChunk: 16))
        // Groups [1,2] and [4,5,6]; globals 0, 3, 7.
        #expect((0..<8).filter { session.caches[$0] == nil } == [2, 5, 6])
        let report = session.memoryReport
        #expect(report.consumerLayers == [2, 5, 6])
        #expect(report.kvLayers.map(\.layer) == [0, 1, 3, 4, 7])
        #expect(report.kvLayers.map(\.servesGlobal) == [true, false, true, false, true])
        #expect(report.kvLayers.map(\.consumers) == [[], [2], [], [5, 6], []])
        let perSlot = c.numKVHeads * (c.headDim + c.valueHeadDim) * 2
        for e in report.kvLayers {
            let cache = session.caches[e.layer]!
            #expect(cache.bytes == e.bytes)
            #expect(e.bytesPerSlot == perSlot)
            #expect(e.metaBytesPerSlot == 2 * perSlot, "meta positions are kept in f32")
            #expect(cache.regularSlots == (e.servesGlobal ? c.maxPositionEmbeddings : 8 + 16))
        }
        #expect(report.kvBytes == report.kvLayers.reduce(0) { $0 + session.caches[$1.layer]!.bytes })
        #expect(report.kvBytesPerToken == 3 * perSlot)
        #expect(report.ssmStateBytes == 8 * c.innerSize * c.stateSize * 4)
        #expect(report.convStateBytes == 8 * 3 * c.innerSize * 4)
        #expect(report.scratchBytes > 0 && report.totalBytes == report.kvBytes + report.stateBytes + report.scratchBytes)

        // Local rings do not grow with the context; global caches grow by one slot per token.
        let small = MemoryReport(config: c, options: HymbaOptions(contextLength: 64, kvType: .f16, prefillChunk: 16))
        let large = MemoryReport(config: c, options: HymbaOptions(contextLength: 256, kvType: .f16, prefillChunk: 16))
        for (a, b) in zip(small.kvLayers, large.kvLayers) {
            if a.servesGlobal { #expect(b.bytes - a.bytes == (256 - 64) * perSlot) } else { #expect(a.bytes == b.bytes) }
        }
        #expect(large.kvBytes - small.kvBytes == (256 - 64) * large.kvBytesPerToken)
        #expect(small.kvBytes(atContext: 256, config: c) == large.kvBytes)
        #expect(report.description.contains("layer 1: ring"))
    }

    @Test("a session's caches stay the same objects and sizes while the sequence passes the window")
    func constantWhileDecoding() throws {
        let fx = Fixture.tiny
        let session = try HymbaSession(model: fx.model, options: HymbaOptions(contextLength: 64, kvType: .f16, prefillChunk: 8))
        let before = session.caches.map { $0.map { ObjectIdentifier($0) } }
        let bytesBefore = session.memoryReport.totalBytes
        try session.prefill(tokens: Array(fx.sequences[2].prefix(20)))
        for t in fx.sequences[2].dropFirst(20) { try session.decode(token: t) }
        #expect(session.position == 40)
        #expect(session.caches.map { $0.map { ObjectIdentifier($0) } } == before)
        #expect(session.memoryReport.totalBytes == bytesBefore)
        #expect(session.caches[1]!.slots == 8 + 8 + 8, "M + W + chunk")
    }

    @Test("Hymba-1.5B at 8k context: 17 caches, 3 global; bytes by formula")
    func realConfigReport() throws {
        let url = fixturesDirectory.appendingPathComponent("configs/hymba-1.5b/config.json")
        let c = try HymbaConfig(jsonData: Data(contentsOf: url))
        let r = MemoryReport(config: c, options: HymbaOptions(kvType: .f16, prefillChunk: 128))
        #expect(r.kvLayers.count == 17)
        #expect(r.consumerLayers.count == 15)
        #expect(r.kvLayers.filter(\.servesGlobal).map(\.layer) == [0, 15, 31])
        let perSlot = 5 * (64 + 128) * 2
        #expect(r.kvBytesPerToken == 3 * perSlot)
        // Meta positions are kept in f32 (twice the f16 slot), regular ones in f16.
        let expected = 17 * 128 * 2 * perSlot + 3 * 8192 * perSlot + 14 * (1024 + 128) * perSlot
        #expect(r.kvBytes == expected)
        #expect(r.ssmStateBytes == 32 * 3200 * 16 * 4)
        print("[memory] hymba-1.5b, ctx 8192, f16 KV:\n\(r)")
    }
}
