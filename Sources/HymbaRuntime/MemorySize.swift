import Foundation

/// Sizes in bytes as people write them (`--memory-budget 900M`, `1G`, `512MiB`, `1.5GiB`,
/// `2000000000`).
///
/// A number (digits, at most one decimal point) and an optional unit, case-insensitive, no
/// spaces: none or `B` (bytes); `K`, `M`, `G`, `T` and `KiB`, `MiB`, `GiB`, `TiB` (powers of
/// 1024, as `ulimit`, Docker and the JVM read them); `KB`, `MB`, `GB`, `TB` (powers of 1000).
/// Fractions round down to whole bytes; the result must be at least one byte.
public enum MemorySize {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var text: String
        public var reason: String
        public var description: String { "\"\(text)\": \(reason)" }
    }

    private static let units: [String: Double] = [
        "": 1, "b": 1,
        "k": 1024, "kib": 1024, "m": 1_048_576, "mib": 1_048_576, "g": 1_073_741_824, "gib": 1_073_741_824,
        "t": 1_099_511_627_776, "tib": 1_099_511_627_776,
        "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
    ]

    public static let unitsHelp = "B; K, M, G, T or KiB, MiB, GiB, TiB (×1024); KB, MB, GB, TB (×1000)"

    public static func parse(_ text: String) throws -> Int {
        func fail(_ reason: String) -> ParseError { ParseError(text: text, reason: reason) }
        let number = text.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = text.dropFirst(number.count).lowercased()
        guard !text.isEmpty else { throw fail("empty; expected a size such as 900M, 1G or 512MiB") }
        guard !number.isEmpty else {
            throw fail(text.hasPrefix("-") ? "must be positive" : "expected a number first, e.g. 900M, 1G, 512MiB or a byte count")
        }
        guard number.filter({ $0 == "." }).count <= 1, number != ".", let value = Double(number) else {
            throw fail("\"\(number)\" is not a number")
        }
        guard let scale = units[unit] else { throw fail("unknown unit \"\(text.dropFirst(number.count))\" (units: \(unitsHelp))") }
        if unit.isEmpty || unit == "b" {
            guard !number.contains(".") else { throw fail("a byte count must be a whole number") }
        }
        let bytes = value * scale
        guard bytes < 9.2e18 else { throw fail("too large") }
        let whole = Int(bytes.rounded(.down))
        guard whole >= 1 else { throw fail("must be at least 1 byte") }
        return whole
    }

    /// `bytes` in the largest binary unit that keeps it readable (e.g. "512.00 MiB").
    public static func format(_ bytes: Int) -> String {
        let b = Double(bytes)
        if bytes >= 1 << 30 { return String(format: "%.2f GiB", b / Double(1 << 30)) }
        if bytes >= 1 << 20 { return String(format: "%.2f MiB", b / Double(1 << 20)) }
        if bytes >= 1 << 10 { return String(format: "%.2f KiB", b / 1024) }
        return "\(bytes) B"
    }
}
