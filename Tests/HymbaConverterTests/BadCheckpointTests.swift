import Foundation
import Testing
import HymbaConverter
import HymbaFormat

/// Broken checkpoints are refused with a message naming the problem, and leave no output.
@Suite struct BadCheckpointTests {
    /// Converts `dir` and returns the error message; asserts no output file (or temporary) is left.
    static func refusal(_ dir: String) -> String? {
        let outDir = Fixtures.temporaryDirectory()
        let out = outDir + "/out.hymba"
        defer {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []
            #expect(left.isEmpty, "conversion error left files behind: \(left)")
        }
        do {
            _ = try Fixtures.convert(dir, quant: .q8, output: out)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Rewrites the fixture's model.safetensors through `edit`.
    static func editedCheckpoint(_ edit: (inout [SafetensorsWriter.Tensor]) -> Void) throws -> String {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        var tensors = try SafetensorsWriter.read(dir + "/model.safetensors")
        edit(&tensors)
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        SafetensorsWriter.write(tensors, to: dir + "/model.safetensors")
        return dir
    }

    static func editedConfig(_ edit: (inout [String: Any]) -> Void) throws -> String {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        edit(&json)
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        _ = FileManager.default.createFile(atPath: dir + "/config.json", contents: try JSONSerialization.data(withJSONObject: json))
        return dir
    }

    @Test func missingTensor() throws {
        let dir = try Self.editedCheckpoint { $0.removeAll { $0.name == "model.layers.2.mamba.D.0" } }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("missing tensor model.layers.2.mamba.D.0"))
    }

    @Test func wrongShape() throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.layers.1.mamba.out_proj.weight" }!
            ts[i].shape = [128, 64]
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.layers.1.mamba.out_proj.weight") && msg.contains("[128, 64]") && msg.contains("[64, 128]"))
    }

    @Test func unknownTensor() throws {
        let dir = try Self.editedCheckpoint { $0.append(.init(name: "model.layers.0.extra.weight", dtype: "BF16", shape: [2], bytes: [0, 0, 0, 0])) }
        #expect(Self.refusal(dir)?.contains("model.layers.0.extra.weight") == true)
    }

    @Test(arguments: [UInt16(0x7FC0), 0x7F80, 0xFF80])
    func nonFiniteWeight(bits: UInt16) throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.layers.4.moe.experts.0.gate_proj.weight" }!
            // element [1, 3] of a [128, 64] bf16 tensor
            let at = 2 * (1 * 64 + 3)
            ts[i].bytes[at] = UInt8(bits & 0xFF)
            ts[i].bytes[at + 1] = UInt8(bits >> 8)
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.layers.4.moe.experts.0.gate_proj.weight") && msg.contains("[1, 3]"), "\(msg)")
    }

    @Test func byteCountMismatch() throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.final_layernorm.weight" }!
            ts[i].bytes.removeLast(2)
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.final_layernorm.weight") && msg.contains("needs 128 bytes"))
    }

    @Test func truncatedHeaderLength() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        var bytes = [UInt8](FileManager.default.contents(atPath: dir + "/model.safetensors")!)
        bytes.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0])
        _ = FileManager.default.createFile(atPath: dir + "/model.safetensors", contents: Data(bytes))
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.safetensors") && msg.contains("header length"))
    }

    @Test func invalidJSONHeader() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        SafetensorsWriter.write([], to: dir + "/model.safetensors", headerOverride: "{\"a\": [1, 2")
        #expect(Self.refusal(dir)?.contains("not valid JSON") == true)
    }

    @Test func unsupportedConfigs() throws {
        let cases: [(String, Any, String)] = [
            ("num_experts", 4, "num_experts"),
            ("memory_tokens_interspersed_every", 16, "memory_tokens_interspersed_every"),
            ("kq_norm", "rms", "kq_norm"),
            ("rope_type", "yarn", "rope_type"),
            ("hidden_size", 63, "hidden_size"),
        ]
        for (key, value, named) in cases {
            let dir = try Self.editedConfig { $0[key] = value }
            let msg = try #require(Self.refusal(dir), "\(key)=\(value) must be refused")
            #expect(msg.contains(named) && msg.contains("config.json"), "\(msg)")
        }
    }

    @Test func missingShardListedInIndex() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymbaUntied)
        try FileManager.default.removeItem(atPath: dir + "/model-00002-of-00003.safetensors")
        #expect(Self.refusal(dir)?.contains("model-00002-of-00003.safetensors") == true)
    }

    @Test func failedConversionKeepsAnExistingOutput() throws {
        let out = Fixtures.temporaryDirectory() + "/keep.hymba"
        _ = FileManager.default.createFile(atPath: out, contents: Data("previous".utf8))
        let dir = try Self.editedCheckpoint { $0.removeAll { $0.name == "model.memory_tokens" } }
        #expect(throws: (any Error).self) { try Fixtures.convert(dir, quant: .q8, output: out) }
        #expect(FileManager.default.contents(atPath: out) == Data("previous".utf8))
    }
}
