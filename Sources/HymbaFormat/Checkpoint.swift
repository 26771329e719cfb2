import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hugging Face Hymba checkpoint directory: `config.json`, the weights as one
/// `model.safetensors` or as shards listed by `model.safetensors.index.json`, and the
/// tokenizer files. Shards are memory-mapped; nothing is loaded whole.
///
/// The one checkpoint reader: the converter and the runtime's `SafetensorsCheckpoint` both
/// open checkpoints through it, so both accept and refuse the same directories with the same
/// messages (each names the file, the tensor, and what was expected and found).
public final class Checkpoint: @unchecked Sendable {
    public let directory: String
    /// `config.json` as parsed JSON (kept verbatim for the output metadata).
    public let configJSON: [String: Any]
    public let config: HymbaConfig
    /// The weight files, in name order.
    public let shards: [SafetensorsFile]
    private let location: [String: (shard: Int, entry: SafetensorsFile.Entry)]

    /// The files a tokenizer import reads from a checkpoint directory.
    public static let tokenizerFileNames = ["tokenizer.json", "tokenizer_config.json"]

    public init(directory: String) throws {
        self.directory = directory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError("\(directory): not a checkpoint directory (it does not exist or is not a directory)")
        }
        let configPath = directory + "/config.json"
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw CheckpointError("\(configPath): missing (a Hugging Face checkpoint directory has config.json)")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: configData)) as? [String: Any] else {
            throw CheckpointError("\(configPath): not a JSON object")
        }
        configJSON = json
        do { config = try HymbaConfig(json: json) } catch {
            throw CheckpointError("\(configPath): \((error as? ConfigError)?.message ?? "\(error)")")
        }

        // Which files hold the weights.
        let indexPath = directory + "/model.safetensors.index.json"
        var files: [String]
        var declared: [String: String]? = nil
        if let indexData = FileManager.default.contents(atPath: indexPath) {
            guard let idx = (try? JSONSerialization.jsonObject(with: indexData)) as? [String: Any],
                  let map = idx["weight_map"] as? [String: Any] else {
                throw CheckpointError("\(indexPath): expected a JSON object with a \"weight_map\" of tensor name to file name")
            }
            var names: [String: String] = [:]
            for (tensor, value) in map.sorted(by: { $0.key < $1.key }) {
                guard let f = value as? String else {
                    throw CheckpointError("\(indexPath): weight_map entry \(tensor) is \(value), expected a file name (a string)")
                }
                guard !f.isEmpty, !f.contains("/"), !f.hasPrefix(".") else {
                    throw CheckpointError("\(indexPath): weight_map names file \"\(f)\" (for \(tensor)) outside the checkpoint directory")
                }
                names[tensor] = f
            }
            declared = names
            files = Array(Set(names.values)).sorted()
        } else if FileManager.default.fileExists(atPath: directory + "/model.safetensors") {
            files = ["model.safetensors"]
        } else {
            let all = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            files = all.filter { $0.hasSuffix(".safetensors") && $0 != "expected.safetensors" }.sorted()
            guard !files.isEmpty else {
                throw CheckpointError("\(directory): no model.safetensors, model.safetensors.index.json or *.safetensors weights found")
            }
        }
        var opened: [SafetensorsFile] = []
        for f in files {
            let p = directory + "/" + f
            guard FileManager.default.fileExists(atPath: p) else { throw CheckpointError("\(p): shard listed in the index is missing") }
            do { opened.append(try SafetensorsFile(path: p)) } catch let e as SafetensorsError {
                throw CheckpointError(e.description)
            }
        }
        shards = opened
        var loc: [String: (Int, SafetensorsFile.Entry)] = [:]
        for (si, s) in opened.enumerated() {
            for e in s.entries {
                if let prev = loc[e.name] {
                    throw CheckpointError("tensor \(e.name) appears in both \(opened[prev.0].path) and \(s.path)")
                }
                if let declared, let want = declared[e.name], want != (s.path as NSString).lastPathComponent {
                    throw CheckpointError("tensor \(e.name) is in \(s.path) but the index puts it in \(want)")
                }
                loc[e.name] = (si, e)
            }
        }
        if let declared {
            for (name, file) in declared.sorted(by: { $0.key < $1.key }) where loc[name] == nil {
                throw CheckpointError("tensor \(name) is listed in model.safetensors.index.json (in \(file)) but not found in that file")
            }
        }
        location = loc
    }

    public var tensorNames: [String] { location.keys.sorted() }

    public func entry(_ name: String) -> SafetensorsFile.Entry? { location[name]?.entry }

    /// The shard file holding `name`.
    public func shard(of name: String) -> SafetensorsFile? { location[name].map { shards[$0.shard] } }

    /// The tensor as stored in its shard (bf16, f16 or f32 rows).
    public func tensor(_ name: String) throws -> TensorData {
        guard let (si, _) = location[name] else { throw CheckpointError("\(directory): checkpoint has no tensor \(name)") }
        do { return try shards[si].tensor(name) } catch let e as SafetensorsError { throw CheckpointError(e.description) }
    }

    /// Checks the checkpoint against its config: every expected tensor present with the
    /// expected shape and a float dtype, no unknown tensors. (`lm_head.weight` in a checkpoint
    /// whose config ties the embeddings is allowed and ignored.) Throws on the first problem,
    /// naming the file, the tensor, and what was expected and found.
    public func validateTensors() throws {
        let expected = config.expectedTensors
        var known = Set<String>()
        for (name, shape) in expected {
            known.insert(name)
            guard let e = entry(name), let file = shard(of: name) else {
                throw CheckpointError("\(directory): checkpoint is missing tensor \(name) (expected shape \(shape) from config.json)")
            }
            guard e.shape == shape else {
                throw CheckpointError("\(file.path): tensor \(name) at offset \(e.offset) has shape \(e.shape), the config implies \(shape)")
            }
            guard e.dtype.storageType != nil else {
                throw CheckpointError("\(file.path): tensor \(name) at offset \(e.offset) has dtype \(e.dtype.rawValue); expected BF16, F16 or F32")
            }
        }
        if config.tieWordEmbeddings { known.insert("lm_head.weight") }
        let unknown = tensorNames.filter { !known.contains($0) }
        if !unknown.isEmpty {
            let list = unknown.prefix(5).joined(separator: ", ") + (unknown.count > 5 ? ", … (\(unknown.count) in all)" : "")
            throw CheckpointError("\(directory): checkpoint has tensors this config does not use: \(list)")
        }
    }

    /// Names of the files a conversion reads (weights, config, index, tokenizer files that
    /// exist), in name order.
    public var inputFileNames: [String] {
        var names = shards.map { ($0.path as NSString).lastPathComponent }
        for extra in ["config.json", "model.safetensors.index.json"] + Self.tokenizerFileNames
        where FileManager.default.fileExists(atPath: directory + "/" + extra) {
            names.append(extra)
        }
        return names.sorted()
    }

    /// Paths of the files a conversion reads (`inputFileNames` in the directory).
    public var inputFilePaths: [String] { inputFileNames.map { directory + "/" + $0 } }

    /// Name, size and SHA-256 of every file the conversion reads, in name order. The files are
    /// read in 16 MiB pieces into one buffer (not mapped), so hashing a 3 GB checkpoint keeps
    /// 16 MiB resident. The page cache is left alone: the conversion reads the same bytes
    /// next, and drops them tensor by tensor (`releasePages(of:)`).
    public func sourceFiles() throws -> [(name: String, bytes: Int, sha256: String)] {
        try inputFileNames.map { name in
            let path = directory + "/" + name
            let (bytes, digest) = try Self.sha256(ofFileAt: path)
            return (name, bytes, SHA256.hex(digest))
        }
    }

    static func sha256(ofFileAt path: String) throws -> (bytes: Int, digest: [UInt8]) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        let size = 1 << 24
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        var h = SHA256()
        var total = 0
        while true {
            let n = read(fd, buffer, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError(path: path, operation: "read at offset \(total)", errno: errno)
            }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(start: buffer, count: n))
            total += n
        }
        return (total, h.finalize())
    }

    /// Drops the pages of `name`'s bytes from this process's resident set (`madvise`
    /// DONTNEED on the mapping: the next read faults them in again, with the same bytes) and
    /// asks the kernel to drop them from the page cache too (`posix_fadvise` DONTNEED; the
    /// page cache is charged to a memory-capped cgroup). For a tensor that was read once.
    public func releasePages(of name: String) {
        guard let (si, e) = location[name] else { return }
        shards[si].file.advise(offset: e.offset, length: e.length, Int32(MADV_DONTNEED))
        shards[si].file.dropFromPageCache(offset: e.offset, length: e.length)
    }
}

/// A checkpoint was refused; the message names the file, tensor and problem.
public struct CheckpointError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
