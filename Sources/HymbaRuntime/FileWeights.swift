import Foundation
import HymbaFormat

/// The weights of a `.hymba` file as a model loads them, held as `residency` says.
///
/// - The matrices (projections, embeddings, head) and the meta tokens: resident, views whose
///   uncompressed chunks are used in place and whose compressed chunks are decompressed once
///   into memory kept for the model's life, each chunk's stored pages dropped once decompressed.
///   Streaming, a layer's matrices are views into the mapping whose compressed chunks go to
///   one reusable layer buffer; `LayerStreamer` refills it and drops each layer's pages after
///   use. An embedding table or head with compressed chunks stays resident (decompressed).
/// - Everything else (norms, biases, conv taps, A_log, D), which the model widens to f32
///   copies at once: read in place or decompressed into memory that `finishLoading` frees,
///   and their pages dropped then, so nothing of them stays twice.
package final class FileWeights: WeightSource, @unchecked Sendable {
    package let file: HymbaFile
    package let residency: WeightResidency
    package var config: HymbaConfig { file.config }
    /// Set when streaming.
    package let streamer: LayerStreamer?

    private let lock = NSLock()
    private var transient: [UnsafeMutableRawPointer] = []
    private var touched: [String] = []
    /// Decompressed chunks of the resident matrices and meta tokens.
    private var kept: [UnsafeMutableRawPointer] = []

    package init(file: HymbaFile, residency: WeightResidency) {
        self.file = file
        self.residency = residency
        streamer = residency == .streaming ? LayerStreamer(file: file) : nil
    }

    deinit {
        for p in transient { p.deallocate() }
        for p in kept { p.deallocate() }
    }

    package func tensor(_ name: String) throws -> TensorData {
        switch WeightFootprint.role(of: name) {
        case .matrix, .metaTokens:
            if let streamer, let view = try streamer.view(name) { return view }
            let bytes = file.decompressedByteCount(of: name)
            let buffer = bytes > 0 ? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) : nil
            lock.lock()
            if let buffer { kept.append(buffer) }
            lock.unlock()
            return try file.view(name, decompressingInto: buffer, verify: file.verifyChecksums)
        case .vector, .storedPrefix:
            let bytes = file.decompressedByteCount(of: name)
            let buffer = bytes > 0 ? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) : nil
            lock.lock()
            if let buffer { transient.append(buffer) }
            touched.append(name)
            lock.unlock()
            return try file.view(name, decompressingInto: buffer, verify: file.verifyChecksums)
        }
    }

    /// Frees the memory of the tensors read once and drops their pages (called when the
    /// model has its f32 copies).
    package func finishLoading() {
        lock.lock()
        defer { lock.unlock() }
        for p in transient { p.deallocate() }
        transient.removeAll()
        for name in touched { file.releasePages(of: name) }
        touched.removeAll()
    }
}

/// Streamed weights (`WeightResidency.streaming`): the forward pass calls `willUse(layer:)`
/// before a layer and `didUse(layer:)` after it (and `didUseInput` / `didUseHead` after the
/// embedding rows and the head). A layer's compressed chunks are decompressed into the one
/// layer buffer when it is used; after use its pages are dropped from the resident set
/// (`HymbaFile.releasePages`), so the process holds one layer at a time. The lock is held from
/// `willUse` to `didUse`: sessions sharing a streamed model take turns layer by layer.
package final class LayerStreamer: @unchecked Sendable {
    let file: HymbaFile
    /// Per layer: its matrices (names) and, for those with compressed chunks, their offset in `buffer`.
    private var layerTensors: [[String]]
    private var bufferOffsets: [String: Int] = [:]
    /// The layer buffer: as large as the largest layer's decompressed chunks (nil: none compressed).
    let buffer: UnsafeMutableRawPointer?
    let bufferBytes: Int
    /// Tables used in place (uncompressed) whose pages are dropped after use.
    private var streamedTables: Set<String> = []
    /// Per layer: the file range of all its tensors' chunks. Dropped whole after the layer ran:
    /// a page fault maps neighbouring cached pages too ("fault-around", 64 KiB on Linux), so
    /// pages of the layer's small tensors come back with its matrices.
    private var layerSpans: [(offset: Int, end: Int)?]
    private var filled: Int?
    private let lock = NSLock()

    init(file: HymbaFile) {
        self.file = file
        let c = file.config
        var perLayer = Array(repeating: [String](), count: c.numLayers)
        var largest = 0
        for (name, _) in c.expectedTensors where WeightFootprint.role(of: name) == .matrix {
            guard let l = WeightFootprint.layer(of: name) else {
                if file.decompressedByteCount(of: name) == 0 { streamedTables.insert(name) }
                continue
            }
            perLayer[l].append(name)
        }
        for names in perLayer {
            var offset = 0
            for name in names {
                let bytes = file.decompressedByteCount(of: name)
                guard bytes > 0 else { continue }
                bufferOffsets[name] = offset
                offset += (bytes + 63) / 64 * 64
            }
            largest = max(largest, offset)
        }
        var spans = Array(repeating: (offset: Int, end: Int)?.none, count: c.numLayers)
        for t in file.tensors {
            guard let l = WeightFootprint.layer(of: t.name), l < c.numLayers else { continue }
            for ch in t.chunks {
                let lo = Int(ch.storedOffset), hi = Int(ch.storedOffset + ch.storedLength)
                spans[l] = spans[l].map { (min($0.offset, lo), max($0.end, hi)) } ?? (lo, hi)
            }
        }
        layerSpans = spans
        layerTensors = perLayer
        bufferBytes = largest
        buffer = largest > 0 ? UnsafeMutableRawPointer.allocate(byteCount: largest, alignment: 64) : nil
    }

    deinit { buffer?.deallocate() }

    /// The view of a streamed matrix (checked and decompressed once now, then dropped), or
    /// nil for a tensor kept resident.
    func view(_ name: String) throws -> TensorData? {
        let inLayer = WeightFootprint.layer(of: name) != nil
        guard inLayer || streamedTables.contains(name) else { return nil }
        lock.lock()
        defer { lock.unlock() }
        let t = try file.view(name, decompressingInto: bufferOffsets[name].map { buffer! + $0 }, verify: file.verifyChecksums)
        if bufferOffsets[name] != nil { filled = nil }
        file.releasePages(of: name)
        return t
    }

    func willUse(layer l: Int) {
        lock.lock()  // held until didUse(layer:)
        guard filled != l else { return }
        for name in layerTensors[l] {
            guard let offset = bufferOffsets[name] else { continue }
            do { try file.refill(name, into: buffer! + offset) } catch {
                // The chunk decoded when the model loaded: the file changed underneath.
                preconditionFailure("streaming weights: \(error) (was the model file modified while in use?)")
            }
        }
        filled = l
    }

    func didUse(layer l: Int) {
        if let span = layerSpans[l] {
            // With the neighbours' pages fault-around mapped along (`WeightFootprint.faultAroundReach`).
            let lo = max(0, span.offset - WeightFootprint.faultAroundReach)
            file.releasePages(offset: lo, length: span.end + WeightFootprint.faultAroundReach - lo)
        }
        lock.unlock()
    }

    /// After the embedding rows of a chunk were read.
    func didUseInput() {
        if streamedTables.contains("model.embed_tokens.weight") { file.releasePages(of: "model.embed_tokens.weight") }
    }

    /// At the end of a forward pass (after the head ran): the whole data section is dropped
    /// (the head, and whatever fault-around brought in next to the units used).
    func didFinishPass() {
        let h = file.header
        file.releasePages(offset: Int(h.dataOffset), length: Int(h.dataLength))
    }
}

extension HymbaModel {
    /// The streamer of a model loaded with `WeightResidency.streaming`, else nil.
    package var weightStreamer: LayerStreamer? { (source as? FileWeights)?.streamer }

    /// How the weights are held (`.resident` for sources other than a model file).
    public var residency: WeightResidency { (source as? FileWeights)?.residency ?? .resident }
}
