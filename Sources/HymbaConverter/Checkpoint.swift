import Foundation
import HymbaFormat

/// A Hugging Face Hymba checkpoint directory: `config.json`, the weights as one
/// `model.safetensors` or as shards listed by `model.safetensors.index.json`, and the
/// tokenizer files. Shards are memory-mapped; nothing is loaded whole.
public final class Checkpoint: @unchecked Sendable {
    public let directory: String
    /// `config.json` as parsed JSON (kept verbatim for the output metadata).
    public let configJSON: [String: Any]
    public let config: HymbaConfig
    /// The weight files, in name order.
    public let shards: [SafetensorsFile]
    private let location: [String: (shard: Int, entry: SafetensorsFile.Entry)]

    public init(directory: String) throws {
        self.directory = directory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ConversionError("\(directory): not a checkpoint directory (it does not exist or is not a directory)")
        }
        let configPath = directory + "/config.json"
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw ConversionError("\(configPath): missing (a Hugging Face checkpoint directory has config.json)")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: configData)) as? [String: Any] else {
            throw ConversionError("\(configPath): not a JSON object")
        }
        configJSON = json
        do { config = try HymbaConfig(json: json) } catch {
            throw ConversionError("\(configPath): \((error as? ConfigError)?.message ?? "\(error)")")
        }

        // Which files hold the weights.
        let indexPath = directory + "/model.safetensors.index.json"
        var files: [String]
        var declared: [String: String]? = nil
        if let indexData = FileManager.default.contents(atPath: indexPath) {
            guard let idx = (try? JSONSerialization.jsonObject(with: indexData)) as? [String: Any],
                  let map = idx["weight_map"] as? [String: String] else {
                throw ConversionError("\(indexPath): expected a JSON object with a \"weight_map\" of tensor name to file name")
            }
            for f in Set(map.values) where f.contains("/") || f.hasPrefix(".") {
                throw ConversionError("\(indexPath): weight_map names file \"\(f)\" outside the checkpoint directory")
            }
            declared = map
            files = Array(Set(map.values)).sorted()
        } else if FileManager.default.fileExists(atPath: directory + "/model.safetensors") {
            files = ["model.safetensors"]
        } else {
            let all = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            files = all.filter { $0.hasSuffix(".safetensors") && $0 != "expected.safetensors" }.sorted()
            guard !files.isEmpty else {
                throw ConversionError("\(directory): no model.safetensors, model.safetensors.index.json or *.safetensors weights found")
            }
        }
        var opened: [SafetensorsFile] = []
        for f in files {
            let p = directory + "/" + f
            guard FileManager.default.fileExists(atPath: p) else { throw ConversionError("\(p): shard listed in the index is missing") }
            opened.append(try SafetensorsFile(path: p))
        }
        shards = opened
        var loc: [String: (Int, SafetensorsFile.Entry)] = [:]
        for (si, s) in opened.enumerated() {
            for e in s.entries {
                if let prev = loc[e.name] {
                    throw ConversionError("tensor \(e.name) appears in both \(opened[prev.0].path) and \(s.path)")
                }
                if let declared, let want = declared[e.name], want != (s.path as NSString).lastPathComponent {
                    throw ConversionError("tensor \(e.name) is in \(s.path) but the index puts it in \(want)")
                }
                loc[e.name] = (si, e)
            }
        }
        if let declared {
            for (name, file) in declared.sorted(by: { $0.key < $1.key }) where loc[name] == nil {
                throw ConversionError("tensor \(name) is listed in model.safetensors.index.json (in \(file)) but not found in that file")
            }
        }
        location = loc
    }

    public var tensorNames: [String] { location.keys.sorted() }

    public func entry(_ name: String) -> SafetensorsFile.Entry? { location[name]?.entry }

    /// The tensor as stored in its shard (bf16, f16 or f32 rows).
    public func tensor(_ name: String) throws -> TensorData {
        guard let (si, _) = location[name] else { throw ConversionError("checkpoint has no tensor \(name)") }
        return try shards[si].tensor(name)
    }

    /// Checks the checkpoint against its config: every expected tensor present with the
    /// expected shape and a float dtype, no unknown tensors. (`lm_head.weight` in a checkpoint
    /// whose config ties the embeddings is allowed and ignored.) Throws on the first problem,
    /// naming it.
    public func validateTensors() throws {
        let expected = config.expectedTensors
        var known = Set<String>()
        for (name, shape) in expected {
            known.insert(name)
            guard let e = entry(name) else {
                throw ConversionError("checkpoint is missing tensor \(name) (expected shape \(shape))")
            }
            guard e.shape == shape else {
                throw ConversionError("tensor \(name) has shape \(e.shape), the config implies \(shape)")
            }
            guard e.dtype.storageType != nil else {
                throw ConversionError("tensor \(name) has dtype \(e.dtype.rawValue); expected BF16, F16 or F32")
            }
        }
        if config.tieWordEmbeddings { known.insert("lm_head.weight") }
        let unknown = tensorNames.filter { !known.contains($0) }
        if !unknown.isEmpty {
            let list = unknown.prefix(5).joined(separator: ", ") + (unknown.count > 5 ? ", … (\(unknown.count) in all)" : "")
            throw ConversionError("checkpoint has tensors this config does not use: \(list)")
        }
    }

    /// Name, size and SHA-256 of every file the conversion reads, in name order.
    public func sourceFiles() throws -> [(name: String, bytes: Int, sha256: String)] {
        var names = shards.map { ($0.path as NSString).lastPathComponent }
        for extra in ["config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"]
        where FileManager.default.fileExists(atPath: directory + "/" + extra) {
            names.append(extra)
        }
        return try names.sorted().map { name in
            let m = try MappedFile(path: directory + "/" + name)
            var h = SHA256()
            var off = 0
            while off < m.count {
                let n = min(1 << 24, m.count - off)
                h.update(m.bytes(at: off, count: n))
                off += n
            }
            return (name, m.count, SHA256.hex(h.finalize()))
        }
    }
}

/// A conversion was refused; the message names the file, tensor and problem.
public struct ConversionError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
