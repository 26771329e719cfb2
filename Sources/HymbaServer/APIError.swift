import Foundation
import HTTPTypes
import Hummingbird

/// A request the server refuses, answered with OpenAI's error object:
/// `{"error": {"message": …, "type": …, "param": …, "code": …}}` and the HTTP status.
/// Every refusal names what is wrong (the field, the limit, the value found).
public struct APIError: Error, CustomStringConvertible, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's error type: invalid_request_error, authentication_error, not_found_error, …
    public var type: String
    /// The request field at fault, when there is one.
    public var param: String?
    /// A short machine-readable code (e.g. "context_length_exceeded", "invalid_api_key").
    public var code: String?
    /// Seconds a client should wait before retrying (503 when the queue is full).
    public var retryAfter: Int?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    /// 400: a field missing, of the wrong type or out of range.
    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func missing(_ field: String, _ expected: String) -> APIError {
        invalid("'\(field)' is required (\(expected))", param: field, code: "missing_field")
    }

    static func wrongType(_ field: String, expected: String, found: Any) -> APIError {
        invalid("'\(field)' must be \(expected), found \(JSONValue.describe(found))", param: field, code: "invalid_type")
    }

    static func outOfRange(_ field: String, _ value: Any, _ range: String) -> APIError {
        invalid("'\(field)' is \(value); it must be \(range)", param: field, code: "invalid_value")
    }

    static let unauthorized = APIError(status: .unauthorized,
                                       message: "missing or wrong API key: send the header 'Authorization: Bearer KEY' with the key the server was started with (--api-key)",
                                       type: "authentication_error", code: "invalid_api_key")

    static let loading = APIError(status: .serviceUnavailable, message: "the model is still loading; retry when GET /health answers 200",
                                  type: "unavailable_error", code: "model_loading", retryAfter: 1)

    /// The body as OpenAI sends it.
    var json: [String: Any] {
        ["error": ["message": message, "type": type, "param": param ?? NSNull(), "code": code ?? NSNull()] as [String: Any]]
    }

    /// The HTTP response carrying this error.
    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONValue.encode(json))))
    }
}

/// Reading untyped JSON (`JSONSerialization`) field by field, so that an error can name the
/// field and say what was found, and writing it back.
enum JSONValue {
    /// A short description of a JSON value's type for error messages.
    static func describe(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case _ where isBool(value): return "a boolean"
        case is NSNumber: return "a number"
        case is String: return "a string"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }

    /// Whether `value` is a JSON boolean: `JSONSerialization` gives an NSNumber for both numbers
    /// and booleans, the booleans with the Objective-C type code "c" (numbers parse as "i",
    /// "q" or "d"), and `as? Bool` accepts the numbers 0 and 1 too.
    static func isBool(_ value: Any) -> Bool {
        guard let n = value as? NSNumber else { return false }
        return n.objCType.pointee == CChar(UInt8(ascii: "c"))
    }

    /// `value` as a number (not a boolean).
    static func number(_ value: Any) -> Double? {
        guard let n = value as? NSNumber, !isBool(value) else { return nil }
        return n.doubleValue
    }

    /// `value` as a whole number (not a boolean, no fraction).
    static func integer(_ value: Any) -> Int? {
        guard let d = number(value), d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    /// Compact JSON bytes, keys sorted (stable output).
    static func encode(_ object: Any) -> [UInt8] {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return [UInt8](data)
    }
}
