import HymbaFormat
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a model's weights are held while it runs.
public enum WeightResidency: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Every weight mapped (or decompressed) once and kept: the fastest.
    case resident
    /// One layer at a time: after a layer (or the head) has run, its pages of the mapping are
    /// dropped from the resident set, and compressed chunks are decompressed into one reusable
    /// layer buffer; only the largest layer and the always-needed tensors are held. Output is
    /// bit-identical to `resident`; decoding is slower (pages are faulted in again per token).
    case streaming

    public var description: String { rawValue }
}

/// What each weight tensor costs in memory when a model uses it: the pages of the file
/// mapping its uncompressed chunks occupy once touched, and the bytes its compressed chunks
/// take once decompressed. Read from a file's directory (`init(file:)`), or laid out for a
/// config as the writer would store it (`init(config:matrices:embeddings:)`, used by the
/// planner's tests). Only the tensors the runtime reads are listed.
public struct WeightFootprint: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        /// Projections, embeddings and head: used in place as stored (views).
        case matrix
        /// Norm weights, biases, conv taps, A_log, D: widened once to f32 copies at load.
        case vector
        /// `model.memory_tokens`: read while the meta-token prefix is computed.
        case metaTokens
        /// `hymba.meta_prefix.*`: read once at load into the prefix's arrays.
        case storedPrefix
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        /// N for `model.layers.N.*`, else nil.
        public var layer: Int?
        public var role: Role
        public var elements: Int
        /// Whole pages of the mapping covered by its uncompressed chunks.
        public var mappedBytes: Int
        /// Bytes of its compressed chunks once decompressed.
        public var decompressedBytes: Int
        /// Whole pages of the mapping covered by its compressed chunks (touched while decompressing).
        public var compressedMappedBytes: Int
        /// Bytes of one row as stored (the embedding rows a prefill chunk touches).
        public var rowBytes: Int
        /// Whole pages of its largest compressed chunk (resident while it is decompressed).
        public var largestCompressedChunkBytes = 0
        /// File ranges of its uncompressed chunks (empty for weights not in a file).
        public var inPlaceRanges: [Range<Int>] = []
        /// The file range from its first chunk's start to its last chunk's end (empty: not in a file).
        public var storedRange: Range<Int> = 0..<0
    }

    public var tensors: [Tensor]
    /// True when the file stores the meta-token prefix (nothing to compute at load).
    public var hasStoredPrefix: Bool
    /// What the open file itself holds: the pages of its header, metadata and directory
    /// (read when it was opened) and the copy of the metadata it keeps.
    public var fileBytes = 0
    /// Bytes of the file's metadata JSON (the config and the tokenizer), parsed when the file
    /// opens and again when the tokenizer is built.
    public var metadataBytes = 0
    /// The file's data section, whole pages (empty for weights not in a file).
    public var dataRange: Range<Int> = 0..<0
    /// The address the file is mapped at, when known: fault-around windows are aligned in
    /// addresses, so it makes `mappedBytes(touching:)` exact rather than a bound.
    public var mappingAddress: Int?

    /// The system's page size: the unit in which mapped bytes become resident.
    public static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// A read fault on a file mapping maps the cached pages of the whole aligned window around
    /// it too (Linux "fault-around", `fault_around_bytes`, 64 KiB by default): pages of small
    /// tensors next to a matrix become resident with it, whether or not they are read.
    public static let faultAroundBytes = 65536

    /// How far from a touched page fault-around may map others: the window is aligned in
    /// virtual addresses, so up to a window less one page on either side.
    public static var faultAroundReach: Int { max(0, faultAroundBytes - pageSize) }

    /// Bytes of the data section's pages resident once every range of `ranges` was read: the
    /// fault-around windows holding them (`mappingAddress` known), else their pages and every
    /// page within `faultAroundReach` of them. An upper bound: fault-around maps only pages
    /// already cached. For weights not in a file: the ranges' bytes.
    public func mappedBytes(touching ranges: [Range<Int>]) -> Int {
        guard !dataRange.isEmpty else { return ranges.reduce(0) { $0 + $1.count } }
        func widened(_ r: Range<Int>) -> Range<Int> {
            if let base = mappingAddress, Self.faultAroundBytes > Self.pageSize {
                let w = Self.faultAroundBytes
                return ((base + r.lowerBound) / w * w - base)..<((base + r.upperBound + w - 1) / w * w - base)
            }
            let page = Self.pageSize, reach = Self.faultAroundReach
            return (r.lowerBound / page * page - reach)..<((r.upperBound + page - 1) / page * page + reach)
        }
        let spans = ranges.filter { !$0.isEmpty }.map { r in
            let w = widened(r)
            return max(dataRange.lowerBound, w.lowerBound)..<min(dataRange.upperBound, w.upperBound)
        }.sorted { $0.lowerBound < $1.lowerBound }
        var total = 0, covered = dataRange.lowerBound
        for s in spans where s.upperBound > covered {
            total += s.upperBound - max(s.lowerBound, covered)
            covered = s.upperBound
        }
        return total
    }

    /// Bytes of whole pages covering [offset, offset + length).
    public static func pageSpan(offset: Int, length: Int) -> Int {
        guard length > 0 else { return 0 }
        let first = offset / pageSize, last = (offset + length + pageSize - 1) / pageSize
        return (last - first) * pageSize
    }

    /// The footprint of the tensors of `file` that a model over it reads.
    public init(file: HymbaFile) {
        var list: [Tensor] = []
        var stored = false
        let expected = Set(file.config.expectedTensors.map(\.name))
        for t in file.tensors {
            let isPrefix = t.name.hasPrefix(MetaPrefix.tensorPrefix)
            guard isPrefix || expected.contains(t.name) else { continue }
            if isPrefix { stored = true }
            var mapped = 0, decompressed = 0, compressedMapped = 0, largestCompressed = 0
            var inPlace: [Range<Int>] = []
            for c in t.chunks {
                if c.codec == .none {
                    mapped += Self.pageSpan(offset: Int(c.storedOffset), length: Int(c.storedLength))
                    inPlace.append(Int(c.storedOffset)..<Int(c.storedOffset + c.storedLength))
                } else {
                    decompressed += Int(c.rawLength)
                    let span = Self.pageSpan(offset: Int(c.storedOffset), length: Int(c.storedLength))
                    compressedMapped += span
                    largestCompressed = max(largestCompressed, span)
                }
            }
            list.append(Tensor(name: t.name, layer: Self.layer(of: t.name), role: Self.role(of: t.name),
                               elements: t.elementCount, mappedBytes: mapped, decompressedBytes: decompressed,
                               compressedMappedBytes: compressedMapped, rowBytes: t.type.rowBytes(length: t.rowLength),
                               largestCompressedChunkBytes: largestCompressed, inPlaceRanges: inPlace, storedRange: Int(t.dataOffset)..<Int(t.dataOffset + t.dataLength)))
        }
        tensors = list
        hasStoredPrefix = stored
        let h = file.header
        fileBytes = Self.pageSpan(offset: 0, length: Int(h.metadataOffset + h.metadataLength))
            + Self.pageSpan(offset: Int(h.directoryOffset), length: Int(h.directoryLength)) + file.metadataBytes.count
        let start = Int(h.dataOffset) / Self.pageSize * Self.pageSize
        dataRange = start..<(start + Self.pageSpan(offset: Int(h.dataOffset), length: Int(h.dataLength)))
        mappingAddress = Int(bitPattern: file.mapping.base)
        metadataBytes = file.metadataBytes.count
    }

    /// The footprint of an uncompressed file of `config` with the large matrices in `matrices`
    /// (the embedding table, and an untied head, in `embeddings` when given) and everything
    /// else in f32, laid out as `HymbaFileWriter` writes the converter's tensors: in
    /// `expectedTensors` order, each starting on a page boundary, the data section at
    /// `dataOffset`; without a stored prefix and with no file pages of its own (`fileBytes` 0).
    public init(config: HymbaConfig, matrices: StorageType, embeddings: StorageType? = nil, dataOffset: Int = WeightFootprint.pageSize) {
        var list: [Tensor] = []
        var offset = dataOffset
        for (name, shape) in config.expectedTensors where !(name == "model.memory_tokens" && config.numMetaTokens == 0) {
            let role = Self.role(of: name)
            let isTable = name == "model.embed_tokens.weight" || name == "lm_head.weight"
            let type: StorageType = role == .matrix ? (isTable ? (embeddings ?? matrices) : matrices) : .f32
            let rowLength = shape.last ?? 1, rows = shape.dropLast().reduce(1, *)
            let rowBytes = type.rowBytes(length: rowLength)
            let range = offset..<(offset + rows * rowBytes)
            list.append(Tensor(name: name, layer: Self.layer(of: name), role: role, elements: rows * rowLength,
                               mappedBytes: Self.pageSpan(offset: offset, length: rows * rowBytes), decompressedBytes: 0,
                               compressedMappedBytes: 0, rowBytes: rowBytes, inPlaceRanges: [range], storedRange: range))
            offset += Self.pageSpan(offset: offset, length: rows * rowBytes)
        }
        tensors = list
        hasStoredPrefix = false
        dataRange = dataOffset..<offset
    }

    /// A footprint from a list (tests, other weight sources).
    public init(tensors: [Tensor], hasStoredPrefix: Bool) {
        self.tensors = tensors
        self.hasStoredPrefix = hasStoredPrefix
    }

    /// The tensor named `name`, if listed.
    public func tensor(_ name: String) -> Tensor? { tensors.first { $0.name == name } }

    static func role(of name: String) -> Role {
        if name.hasPrefix(MetaPrefix.tensorPrefix) { return .storedPrefix }
        if name == "model.memory_tokens" { return .metaTokens }
        return isMatrix(name) ? .matrix : .vector
    }

    /// The tensors the kernels read in their stored type (MODEL.md "Checkpoint tensor names").
    static func isMatrix(_ name: String) -> Bool {
        ["mamba.in_proj.weight", "mamba.out_proj.weight", "mamba.x_proj.0.weight", "mamba.dt_proj.0.weight",
         "gate_proj.weight", "up_proj.weight", "down_proj.weight", "model.embed_tokens.weight", "lm_head.weight"]
            .contains { name.hasSuffix($0) }
    }

    static func layer(of name: String) -> Int? {
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
    }
}

extension HymbaModel {
    /// The footprint of this model's weights: from the file's directory for a model file,
    /// else the stored bytes of the tensors as the source holds them (no pages, no compression).
    public var weightFootprint: WeightFootprint {
        if let w = source as? FileWeights { return WeightFootprint(file: w.file) }
        if let f = source as? HymbaFile { return WeightFootprint(file: f) }
        var list: [WeightFootprint.Tensor] = []
        for (name, _) in config.expectedTensors {
            guard let t = try? source.tensor(name) else { continue }
            list.append(.init(name: name, layer: WeightFootprint.layer(of: name), role: WeightFootprint.role(of: name),
                              elements: t.elementCount, mappedBytes: t.rows * t.rowBytes, decompressedBytes: 0,
                              compressedMappedBytes: 0, rowBytes: t.rowBytes))
        }
        return WeightFootprint(tensors: list, hasStoredPrefix: hasMetaPrefix)
    }
}
