import Foundation

/// A memory-mapped Hugging Face `.safetensors` file: an 8-byte little-endian header length,
/// a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`,
/// then the tensor bytes. Nothing is copied: tensors are views into the mapping.
public final class SafetensorsFile: @unchecked Sendable {
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", i32 = "I32", i64 = "I64"
        public var byteSize: Int {
            switch self {
            case .f32, .i32: return 4
            case .f16, .bf16: return 2
            case .i64: return 8
            }
        }
        /// The storage type that holds this dtype losslessly (float dtypes only).
        public var storageType: StorageType? {
            switch self {
            case .f32: return .f32
            case .f16: return .f16
            case .bf16: return .bf16
            case .i32, .i64: return nil
            }
        }
    }

    public struct Entry: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Absolute offset of the data in the file.
        public var offset: Int
        public var length: Int
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let file: MappedFile
    /// Tensors in file order.
    public let entries: [Entry]
    private let index: [String: Int]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let size = file.count
        guard size >= 8 else { throw SafetensorsError(path, "file is \(size) bytes, too short for the 8-byte header length") }
        let headerLen = Int(truncatingIfNeeded: file.base.loadUnaligned(as: UInt64.self).littleEndian)
        guard headerLen >= 2, headerLen <= size - 8, headerLen <= 100_000_000 else {
            throw SafetensorsError(path, "header length \(headerLen) at offset 0 does not fit in the file of \(size) bytes")
        }
        let headerData = Data(bytes: file.base + 8, count: headerLen)
        let json: [String: Any]
        do {
            guard let obj = try JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
                throw SafetensorsError(path, "header is not a JSON object")
            }
            json = obj
        } catch let e as SafetensorsError { throw e } catch {
            throw SafetensorsError(path, "header is not valid JSON: \(error.localizedDescription)")
        }
        let dataStart = 8 + headerLen
        let dataSize = size - dataStart
        var list: [Entry] = []
        for (name, value) in json where name != "__metadata__" {
            guard let obj = value as? [String: Any] else { throw SafetensorsError(path, "tensor \(name): entry is not an object") }
            guard let dt = obj["dtype"] as? String else { throw SafetensorsError(path, "tensor \(name): missing dtype") }
            guard let dtype = DType(rawValue: dt) else { throw SafetensorsError(path, "tensor \(name): unsupported dtype \(dt) (supported: F32, F16, BF16, I32, I64)") }
            guard let shapeAny = obj["shape"] as? [Any] else { throw SafetensorsError(path, "tensor \(name): missing shape") }
            var shape: [Int] = []
            for s in shapeAny {
                guard let n = jsonInteger(s), n >= 0, n < (1 << 40) else {
                    throw SafetensorsError(path, "tensor \(name): invalid dimension \(s) in shape")
                }
                shape.append(n)
            }
            guard let offs = obj["data_offsets"] as? [Any], offs.count == 2,
                  let b = jsonInteger(offs[0]).map(Int64.init), let e = jsonInteger(offs[1]).map(Int64.init) else {
                throw SafetensorsError(path, "tensor \(name): data_offsets must be [begin, end] (integers)")
            }
            guard b >= 0, e >= b, e <= Int64(dataSize) else {
                throw SafetensorsError(path, "tensor \(name): data_offsets [\(b), \(e)] outside the data section of \(dataSize) bytes")
            }
            var count = 1
            for s in shape {
                let (m, o) = count.multipliedReportingOverflow(by: s)
                guard !o, m < (1 << 40) else { throw SafetensorsError(path, "tensor \(name): shape \(shape) is too large") }
                count = m
            }
            let expected = count * dtype.byteSize
            guard Int(e - b) == expected else {
                throw SafetensorsError(path, "tensor \(name): \(dt) \(shape) needs \(expected) bytes, data_offsets give \(e - b)")
            }
            list.append(Entry(name: name, dtype: dtype, shape: shape, offset: dataStart + Int(b), length: expected))
        }
        list.sort { $0.offset != $1.offset ? $0.offset < $1.offset : $0.name < $1.name }
        for i in 1..<max(1, list.count) where list[i].offset < list[i - 1].offset + list[i - 1].length {
            throw SafetensorsError(path, "tensors \(list[i - 1].name) and \(list[i].name) overlap at offset \(list[i].offset - dataStart)")
        }
        entries = list
        var idx: [String: Int] = [:]
        for (i, e) in list.enumerated() { idx[e.name] = i }
        index = idx
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The tensor's bytes as a `TensorData` view (float dtypes only).
    public func tensor(_ name: String) throws -> TensorData {
        guard let e = entry(name) else { throw SafetensorsError(path, "no tensor named \(name)") }
        guard let t = e.dtype.storageType else { throw SafetensorsError(path, "tensor \(name) is \(e.dtype.rawValue), not a float type") }
        let shape = e.shape.isEmpty ? [1] : e.shape
        let rows = shape.dropLast().reduce(1, *)
        return TensorData(name: name, type: t, shape: shape,
                          segments: [.init(firstRow: 0, rowCount: rows, base: file.base + e.offset)])
    }

    /// A float tensor decoded to `[Float]`.
    public func floats(_ name: String) throws -> [Float] { try tensor(name).decodeAll() }

    /// An integer tensor (I32 or I64) as `[Int]`.
    public func ints(_ name: String) throws -> [Int] {
        guard let e = entry(name) else { throw SafetensorsError(path, "no tensor named \(name)") }
        let p = file.base + e.offset
        switch e.dtype {
        case .i32: return (0..<e.elementCount).map { Int(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self).littleEndian) }
        case .i64: return (0..<e.elementCount).map { Int(p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self).littleEndian) }
        default: throw SafetensorsError(path, "tensor \(name) is \(e.dtype.rawValue), not an integer type")
        }
    }
}

public struct SafetensorsError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}
