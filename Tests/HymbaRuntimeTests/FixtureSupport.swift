import Foundation
import HymbaFormat
@testable import HymbaRuntime

/// The fixture directory, found relative to this source file (never /work/shared at test time).
let fixturesDirectory: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent("Tests/Fixtures")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
    }
    fatalError("Tests/Fixtures not found above \(#filePath)")
}()

/// One fixture model with NVIDIA's expected outputs.
final class Fixture: @unchecked Sendable {
    let name: String
    let checkpoint: SafetensorsCheckpoint
    let model: HymbaModel
    let expected: SafetensorsFile
    let sequences: [[Int]]

    init(_ name: String) {
        self.name = name
        let dir = fixturesDirectory.appendingPathComponent(name)
        checkpoint = try! SafetensorsCheckpoint(directory: dir)
        model = try! HymbaModel(source: checkpoint)
        expected = try! SafetensorsFile(path: dir.appendingPathComponent("expected.safetensors").path)
        var seqs: [[Int]] = []
        while let ids = try? expected.ints("ids_\(seqs.count)") { seqs.append(ids) }
        sequences = seqs
    }

    func logits(_ i: Int) -> [Float] { try! expected.floats("logits_\(i)") }
    func hidden(_ i: Int, layer: Int) -> [Float] { try! expected.floats("hidden_\(i)_\(layer)") }

    /// The same weights re-encoded (`StorageCodec`) in another storage type (the embedding
    /// table, which is also the tied head, in `embeddings` when given).
    func model(storing type: StorageType, embeddings: StorageType? = nil) -> HymbaModel {
        try! HymbaModel(source: ReencodedWeights(checkpoint, matrices: type, embeddings: embeddings))
    }

    static let tiny = Fixture("tiny-hymba")
    static let untied = Fixture("tiny-hymba-untied")
    static let code = Fixture("tiny-code-hymba")
}

/// A weight source holding another source's tensors re-encoded in memory: the large matrices
/// (projections, embeddings, head) in `matrices`, everything else (norms, biases, conv taps,
/// A_log, D, meta tokens) in f32, as a quantizing converter would keep them.
final class ReencodedWeights: WeightSource, @unchecked Sendable {
    let config: HymbaConfig
    private var tensors: [String: TensorData] = [:]
    private var buffers: [UnsafeMutableRawPointer] = []

    static func isMatrix(_ name: String) -> Bool {
        ["in_proj.weight", "out_proj.weight", "x_proj.0.weight", "dt_proj.0.weight", "gate_proj.weight",
         "up_proj.weight", "down_proj.weight", "embed_tokens.weight", "lm_head.weight"].contains { name.hasSuffix($0) }
    }

    init(_ source: WeightSource, matrices: StorageType, embeddings: StorageType? = nil) throws {
        config = source.config
        for (name, _) in config.expectedTensors where !(name == "model.memory_tokens" && config.numMetaTokens == 0) {
            let t = try source.tensor(name)
            let type = name == "model.embed_tokens.weight" || name == "lm_head.weight" ? (embeddings ?? matrices) : matrices
            add(name: name, shape: t.shape, values: t.decodeAll(), type: Self.isMatrix(name) ? type : .f32)
        }
    }

    /// Builds from explicit fp32 values (synthetic models).
    init(config: HymbaConfig, values: [String: (shape: [Int], values: [Float])], matrices: StorageType) {
        self.config = config
        for (name, v) in values { add(name: name, shape: v.shape, values: v.values, type: Self.isMatrix(name) ? matrices : .f32) }
    }

    private func add(name: String, shape: [Int], values: [Float], type: StorageType) {
        let n = shape.last ?? 1, rows = values.count / max(1, n)
        let rowBytes = type.rowBytes(length: n)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * rowBytes), alignment: 64)
        buf.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, rows * rowBytes))
        values.withUnsafeBufferPointer { v in
            for r in 0..<rows { StorageCodec.encodeRow(type: type, v.baseAddress! + r * n, length: n, into: buf + r * rowBytes) }
        }
        buffers.append(buf)
        tensors[name] = TensorData(name: name, type: type, shape: shape, segments: [.init(firstRow: 0, rowCount: rows, base: UnsafeRawPointer(buf))])
    }

    func tensor(_ name: String) throws -> TensorData {
        guard let t = tensors[name] else { throw HymbaRuntimeError.missingTensor(name: name, reason: "not in the in-memory weights") }
        return t
    }

    deinit { for b in buffers { b.deallocate() } }
}

/// Largest absolute difference.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "sizes \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return a.contains(where: \.isNaN) ? .infinity : m
}

/// ‖a − b‖ / ‖b‖.
func relativeError(_ a: [Float], reference b: [Float]) -> Float {
    var num: Double = 0, den: Double = 0
    for i in 0..<a.count { num += Double(a[i] - b[i]) * Double(a[i] - b[i]); den += Double(b[i]) * Double(b[i]) }
    return Float((num / max(den, 1e-30)).squareRoot())
}

/// The first layer whose hidden states differ from the expected ones by more than `tol`,
/// with the difference (nil when all agree).
func firstWrongLayer(_ got: [[Float]], _ expected: (Int) -> [Float], tol: Float) -> (layer: Int, diff: Float)? {
    for (l, g) in got.enumerated() {
        let diff = maxAbsDiff(g, expected(l))
        if diff > tol { return (l, diff) }
    }
    return nil
}
