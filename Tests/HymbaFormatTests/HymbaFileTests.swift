import Foundation
import Testing
import HymbaFormat

/// Writer → reader round trips, and the reader's refusal of damaged files.
@Suite struct HymbaFileTests {
    static let configJSON: [String: Any] = [
        "model_type": "hymba", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "num_key_value_heads": 1, "mamba_expand": 2, "mamba_d_state": 4, "mamba_d_conv": 4, "mamba_dt_rank": 2,
        "intermediate_size": 16, "num_memory_tokens": 2, "vocab_size": 40, "max_position_embeddings": 64,
    ]

    struct Written {
        var path: String
        var tensors: [(name: String, type: StorageType, shape: [Int], values: [Float])]
    }

    /// Writes a small file with one tensor per (type, shape) and returns what went in.
    static func writeSample(codec: ChunkCodec, chunkBytes: Int = 256, types: [StorageType] = [.f32, .f16, .bf16, .q8]) throws -> Written {
        let dir = TestPaths.temporaryDirectory()
        let path = dir + "/sample.hymba"
        var options = HymbaFileWriter.Options()
        options.codec = codec
        options.chunkBytes = chunkBytes
        let meta = try JSONSerialization.data(withJSONObject: ["format": "hymba-edge", "config": configJSON], options: [.sortedKeys])
        let writer = try HymbaFileWriter(path: path, metadata: meta, options: options)
        var rng = TestRandom(seed: 42)
        var out: [(String, StorageType, [Int], [Float])] = []
        for (ti, type) in types.enumerated() {
            for shape in [[37], [9, 33], [3, 2, 100]] {
                let n = shape.reduce(1, *)
                // Compressible content (repeats) so zstd/lz4 chunks actually occur.
                let base = rng.floats(16, scale: 2)
                let values = (0..<n).map { base[$0 % 16] + ($0 % 7 == 0 ? rng.float() : 0) }
                let name = "t\(ti).\(type).\(shape.map(String.init).joined(separator: "x"))"
                let rowLength = shape.last!, rowBytes = type.rowBytes(length: rowLength)
                try writer.addTensor(name: name, type: type, shape: shape) { rows, dst in
                    values.withUnsafeBufferPointer { v in
                        for (i, r) in rows.enumerated() {
                            StorageCodec.encodeRow(type: type, v.baseAddress! + r * rowLength, length: rowLength, into: dst + i * rowBytes)
                        }
                    }
                }
                out.append((name, type, shape, values))
            }
        }
        try writer.finish()
        return Written(path: path, tensors: out)
    }

    @Test(arguments: [ChunkCodec.none, .zstd, .lz4])
    func roundTrip(codec: ChunkCodec) throws {
        let w = try Self.writeSample(codec: codec)
        let f = try HymbaFile(path: w.path)
        #expect(f.tensors.count == w.tensors.count)
        #expect(f.config.hiddenSize == 8)
        for t in w.tensors {
            let data = try f.tensor(t.name)
            #expect(data.shape == t.shape)
            #expect(data.type == t.type)
            let back = data.decodeAll()
            for (a, b) in zip(back, t.values) {
                switch t.type {
                case .f32: #expect(a == b)
                case .bf16: #expect(a == HalfFloat.bf16ToFloat(HalfFloat.floatToBF16(b)))
                case .f16: #expect(a == HalfFloat.f16ToFloat(HalfFloat.floatToF16(b)))
                default: #expect(abs(a - b) <= 3.0 / 127 + 1e-3)
                }
            }
        }
        let entries = f.tensors.flatMap { $0.chunks }
        #expect(entries.count > f.tensors.count, "small chunks: tensors must span several chunks")
        for c in entries {
            #expect(c.storedOffset % UInt64(c.codec == .none ? 4096 : 64) == 0)
            if codec == .none { #expect(c.codec == .none) }
        }
        if codec != .none { #expect(entries.contains { $0.codec == codec }, "repetitive data must compress") }
        #expect(f.verify().isEmpty)
    }

    @Test func uncompressedChunksAreUsedInPlace() throws {
        let w = try Self.writeSample(codec: .none, chunkBytes: 1 << 20)
        let f = try HymbaFile(path: w.path)
        let data = try f.tensor(w.tensors[1].name)
        let base = f.mapping.base
        #expect(data.segments.count == 1)
        #expect(data.segments[0].base >= base && data.segments[0].base < base + f.mapping.count)
        #expect(f.decompressedBytes == 0)
    }

    @Test func deterministicBytes() throws {
        let a = try Self.writeSample(codec: .zstd)
        let b = try Self.writeSample(codec: .zstd)
        #expect(FileManager.default.contents(atPath: a.path) == FileManager.default.contents(atPath: b.path))
    }

    // MARK: Damage

    static func damaged(_ path: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        edit(&bytes)
        let out = path + ".damaged"
        _ = FileManager.default.createFile(atPath: out, contents: Data(bytes))
        return out
    }

    static func openError(_ path: String) -> String? {
        do { _ = try HymbaFile(path: path); return nil } catch { return "\(error)" }
    }

    @Test func wrongMagicIsRefused() throws {
        let w = try Self.writeSample(codec: .none)
        let p = try Self.damaged(w.path) { $0[0] = UInt8(ascii: "G"); $0[1] = UInt8(ascii: "G") }
        let msg = try #require(Self.openError(p))
        #expect(msg.contains("not a hymba model file") && msg.contains("magic"))
        let gguf = TestPaths.temporaryDirectory() + "/x.gguf"
        _ = FileManager.default.createFile(atPath: gguf, contents: Data("GGUF".utf8 + [UInt8](repeating: 0, count: 200)))
        #expect(Self.openError(gguf)?.contains("magic") == true)
    }

    @Test func truncatedFilesAreRefused() throws {
        let w = try Self.writeSample(codec: .zstd)
        let size = try #require(FileManager.default.attributesOfItem(atPath: w.path)[.size] as? Int)
        for cut in [0, 7, 100, 127, 128, 4096, size / 2, size - 1] {
            let p = try Self.damaged(w.path) { $0.removeSubrange(cut...) }
            let msg = try #require(Self.openError(p), "truncation at \(cut) must be refused")
            #expect(msg.contains("shorter than") || msg.contains("file length"), "\(cut): \(msg)")
        }
    }

    @Test func bigEndianMarkIsNamed() throws {
        let w = try Self.writeSample(codec: .none)
        let p = try Self.damaged(w.path) { b in b.replaceSubrange(12..<16, with: [0x0A, 0x0B, 0x0C, 0x0D]) }
        #expect(Self.openError(p)?.contains("big-endian") == true)
    }

    @Test func headerFlipIsCaught() throws {
        let w = try Self.writeSample(codec: .none)
        for offset in [20, 50, 70, 100] {
            let p = try Self.damaged(w.path) { $0[offset] ^= 0x10 }
            let msg = try #require(Self.openError(p))
            #expect(msg.contains("header checksum"), "\(offset): \(msg)")
        }
    }

    @Test func metadataAndDirectoryFlipsAreCaught() throws {
        let w = try Self.writeSample(codec: .none)
        let f = try HymbaFile(path: w.path)
        let metaAt = Int(f.header.metadataOffset) + 5
        let dirAt = Int(f.header.directoryOffset) + Int(f.header.directoryLength) / 2
        #expect(Self.openError(try Self.damaged(w.path) { $0[metaAt] ^= 1 })?.contains("metadata checksum") == true)
        #expect(Self.openError(try Self.damaged(w.path) { $0[dirAt] ^= 1 })?.contains("directory checksum") == true)
    }

    @Test(arguments: [ChunkCodec.none, .zstd])
    func dataFlipIsCaughtNamingTensorAndOffset(codec: ChunkCodec) throws {
        let w = try Self.writeSample(codec: codec)
        let f = try HymbaFile(path: w.path)
        let victim = f.tensors[4]
        let chunk = victim.chunks[victim.chunks.count - 1]
        let p = try Self.damaged(w.path) { $0[Int(chunk.storedOffset) + Int(chunk.storedLength) / 2] ^= 0x40 }
        let g = try HymbaFile(path: p) // opening touches no data
        let problems = g.verify()
        #expect(problems.count == 1)
        #expect(problems.first?.tensor == victim.name)
        #expect(problems.first?.offset == chunk.storedOffset)
        do {
            _ = try g.tensor(victim.name)
            Issue.record("a corrupt chunk must not load")
        } catch {
            #expect("\(error)".contains(victim.name) && "\(error)".contains("offset \(chunk.storedOffset)"))
        }
        // Other tensors still load, and checks can be skipped on request.
        _ = try g.tensor(f.tensors[0].name)
        if codec == .none { _ = try HymbaFile(path: p, verifyChecksums: false).tensor(victim.name) }
    }
}
