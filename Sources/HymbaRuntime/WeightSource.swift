import Foundation
import HymbaFormat

/// Where a model's weights come from: a `.hymba` file, a Hugging Face checkpoint directory,
/// or tensors built in memory (tests). Tensors are views (`TensorData`) whose memory the
/// source owns; the source must outlive every model built from it (`HymbaModel` keeps it).
public protocol WeightSource: AnyObject {
    /// The model's hyperparameters.
    var config: HymbaConfig { get }
    /// The tensor with a checkpoint name (`model.layers.0.mamba.in_proj.weight`, ...), in
    /// whatever storage type the source holds it. Throws when it is absent.
    func tensor(_ name: String) throws -> TensorData
    /// The tensor's shape without loading it, when the source knows it cheaply (a model file's
    /// directory): lets a loader refuse a misshapen tensor before decompressing it.
    func shape(of name: String) -> [Int]?
}

extension WeightSource {
    public func shape(of name: String) -> [Int]? { nil }
}

/// A Hugging Face model directory: `config.json` plus `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (its `weight_map`). Tensors are views into the mapped files
/// (bf16 checkpoints stay bf16).
public final class SafetensorsCheckpoint: WeightSource, @unchecked Sendable {
    public let directory: URL
    public let config: HymbaConfig
    /// The mapped shard files, by file name.
    public let files: [String: SafetensorsFile]
    /// Tensor name → file name.
    private let location: [String: String]

    public init(directory: URL) throws {
        self.directory = directory
        let configURL = directory.appendingPathComponent("config.json")
        let configData: Data
        do { configData = try Data(contentsOf: configURL) } catch {
            throw IOError(path: configURL.path, operation: "read", message: error.localizedDescription)
        }
        do { config = try HymbaConfig(jsonData: configData) } catch let e as ConfigError {
            throw ConfigError("\(configURL.path): \(e.message)")
        }
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        var names: [String: String] = [:]
        var shardNames: [String] = []
        if FileManager.default.fileExists(atPath: indexURL.path) {
            let data: Data
            do { data = try Data(contentsOf: indexURL) } catch {
                throw IOError(path: indexURL.path, operation: "read", message: error.localizedDescription)
            }
            guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = obj["weight_map"] as? [String: Any] else {
                throw SafetensorsError(indexURL.path, "not a JSON object with a \"weight_map\" object")
            }
            for (tensor, file) in map {
                guard let f = file as? String, !f.contains("/") else {
                    throw SafetensorsError(indexURL.path, "weight_map entry \(tensor) is not a plain file name: \(file)")
                }
                names[tensor] = f
            }
            shardNames = Array(Set(names.values)).sorted()
        } else {
            shardNames = ["model.safetensors"]
        }
        var opened: [String: SafetensorsFile] = [:]
        for name in shardNames {
            opened[name] = try SafetensorsFile(path: directory.appendingPathComponent(name).path)
        }
        if names.isEmpty, let only = opened["model.safetensors"] {
            for e in only.entries { names[e.name] = "model.safetensors" }
        }
        files = opened
        location = names
    }

    public convenience init(path: String) throws { try self.init(directory: URL(fileURLWithPath: path)) }

    public func tensor(_ name: String) throws -> TensorData {
        guard let fileName = location[name], let file = files[fileName] else {
            throw HymbaRuntimeError.missingTensor(name: name, reason: "not in the checkpoint at \(directory.path)")
        }
        return try file.tensor(name)
    }
}
