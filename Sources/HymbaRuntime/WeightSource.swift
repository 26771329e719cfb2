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

/// A Hugging Face model directory as a weight source: `config.json` plus `model.safetensors`,
/// or shards listed by `model.safetensors.index.json`. Opened and checked by `Checkpoint`
/// (HymbaFormat), the reader the converter uses too, so a directory the converter refuses is
/// refused here with the same message. Tensors are views into the mapped files (bf16
/// checkpoints stay bf16).
public final class SafetensorsCheckpoint: WeightSource, @unchecked Sendable {
    public let checkpoint: Checkpoint
    public var directory: URL { URL(fileURLWithPath: checkpoint.directory) }
    public var config: HymbaConfig { checkpoint.config }

    public init(directory: URL) throws {
        checkpoint = try Checkpoint(directory: directory.path)
        try checkpoint.validateTensors()
    }

    public convenience init(path: String) throws { try self.init(directory: URL(fileURLWithPath: path)) }

    public func tensor(_ name: String) throws -> TensorData {
        guard checkpoint.entry(name) != nil else {
            throw HymbaRuntimeError.missingTensor(name: name, reason: "not in the checkpoint at \(checkpoint.directory)")
        }
        return try checkpoint.tensor(name)
    }

    public func shape(of name: String) -> [Int]? { checkpoint.entry(name)?.shape }
}
