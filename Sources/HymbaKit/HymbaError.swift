import HymbaFormat
import HymbaRuntime
import HymbaTokenizer

/// An error of the HymbaKit API: what kind of failure it is (the C API's `hymba_status`) and a
/// message naming what was wrong, with the file, tensor, offset or value involved.
public struct HymbaError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The kinds of failure, one per `hymba_status` of the C API (same order, HYMBA_OK = 0 aside).
    public enum Kind: Int32, Sendable, CaseIterable, CustomStringConvertible {
        /// A parameter is out of range, a pointer or handle is missing, a buffer is too small,
        /// a token id is outside the vocabulary, or a call came at the wrong time.
        case invalidArgument = 1
        /// The operating system refused (open, map, read).
        case io = 2
        /// The file is not a valid .hymba model (structure, metadata, tensor shapes).
        case format = 3
        /// A checksum does not match: the file is corrupt.
        case checksum = 4
        /// A valid file this runtime cannot run (format version, model settings, no tokenizer).
        case unsupported = 5
        /// The model or the context does not fit in the memory budget.
        case memoryBudget = 6
        /// The context holds as many tokens as it can.
        case contextFull = 7
        /// Generation was stopped by the caller (the C callback returned non-zero).
        case cancelled = 8
        /// A failure inside the runtime that none of the above describes.
        case `internal` = 9

        public var description: String {
            switch self {
            case .invalidArgument: return "invalid argument"
            case .io: return "I/O error"
            case .format: return "format error"
            case .checksum: return "checksum mismatch"
            case .unsupported: return "unsupported"
            case .memoryBudget: return "over the memory budget"
            case .contextFull: return "context full"
            case .cancelled: return "cancelled"
            case .internal: return "internal error"
            }
        }
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Any error thrown by the runtime, classified; a `HymbaError` is returned as it is.
    public init(classifying error: Error) {
        switch error {
        case let e as HymbaError:
            self = e
        case let e as IOError:
            self.init(.io, e.description)
        case let e as HymbaFileError:
            self.init(Self.kind(of: e), e.description)
        case let e as ConfigError:
            // HymbaConfig words every refusal of a valid but unimplemented setting "unsupported ...".
            self.init(e.message.hasPrefix("unsupported") ? .unsupported : .format, e.description)
        case let e as HymbaRuntimeError:
            self.init(Self.kind(of: e), e.description)
        case let e as GenerationError:
            self.init(Self.kind(of: e), e.description)
        case let e as MemoryBudgetError:
            if case .invalid = e { self.init(.invalidArgument, e.description) } else { self.init(.memoryBudget, e.description) }
        case let e as TokenizerSpecError:
            self.init(.format, e.description)
        case let e as CodecError:
            self.init(.format, e.description)
        case let e as SafetensorsError:
            self.init(.format, e.description)
        case let e as StateFileError:
            switch e.kind {
            case .format: self.init(.format, e.description)
            case .checksum: self.init(.checksum, e.description)
            case .mismatch: self.init(.invalidArgument, e.description)
            }
        default:
            self.init(.internal, "\(error)")
        }
    }

    static func kind(of e: HymbaFileError) -> Kind {
        switch e {
        case .headerChecksum, .sectionChecksum, .chunkChecksum:
            return .checksum
        case .bigEndian, .unsupportedVersion:
            return .unsupported
        case .tooShort, .badMagic, .badHeader, .truncated, .badMetadata, .badDirectory, .badTensor, .chunkDecode, .missingTensor:
            return .format
        }
    }

    static func kind(of e: HymbaRuntimeError) -> Kind {
        switch e {
        case .missingTensor, .tensorShape, .metaPrefix:
            return .format
        case .tokenOutOfVocabulary, .invalidOption, .bufferTooSmall:
            return .invalidArgument
        case .contextOverflow:
            return .contextFull
        }
    }

    static func kind(of e: GenerationError) -> Kind {
        switch e {
        case .noTokenizer: return .unsupported
        case .badTokenizer: return .format
        case .emptyPrompt: return .invalidArgument
        case .promptTooLong: return .contextFull
        }
    }
}
