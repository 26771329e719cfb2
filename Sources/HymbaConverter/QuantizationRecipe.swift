import HymbaFormat

/// Which storage type each tensor gets. The default recipe quantizes the large matrices
/// (in_proj, out_proj, x_proj, dt_proj, the MLP, embeddings and lm_head) to the chosen type and
/// keeps everything small and sensitive (norms, A_log, D, biases, conv1d, meta tokens) in f32.
/// `--keep PATTERN=TYPE` overrides apply first; the first matching override wins.
public struct QuantizationRecipe: Sendable, Equatable {
    public struct Override: Sendable, Equatable {
        /// A glob over the tensor name: `*` any run of characters, `?` one character.
        public var pattern: String
        public var type: StorageType
        public init(pattern: String, type: StorageType) {
            self.pattern = pattern
            self.type = type
        }
    }

    /// The type of the large matrices.
    public var matrixType: StorageType
    public var overrides: [Override]

    public init(matrixType: StorageType, overrides: [Override] = []) {
        self.matrixType = matrixType
        self.overrides = overrides
    }

    /// Name suffixes of the large matrices that the recipe quantizes.
    public static let matrixSuffixes = [
        ".mamba.in_proj.weight", ".mamba.out_proj.weight", ".mamba.x_proj.0.weight", ".mamba.dt_proj.0.weight",
        ".moe.experts.0.gate_proj.weight", ".moe.experts.0.up_proj.weight", ".moe.experts.0.down_proj.weight",
    ]
    public static let matrixNames: Set<String> = ["model.embed_tokens.weight", "lm_head.weight"]

    public static func isLargeMatrix(_ name: String) -> Bool {
        matrixNames.contains(name) || matrixSuffixes.contains { name.hasSuffix($0) }
    }

    /// Parses `PATTERN=TYPE`.
    public static func parseOverride(_ text: String) throws -> Override {
        guard let eq = text.lastIndex(of: "="), eq != text.startIndex else {
            throw ConversionError("--keep \(text): expected PATTERN=TYPE, e.g. '*.out_proj.weight=q8'")
        }
        let pattern = String(text[..<eq]), typeName = String(text[text.index(after: eq)...])
        guard let t = StorageType(name: typeName) else {
            throw ConversionError("--keep \(text): unknown type \(typeName) (f32, f16, bf16, q8, q4)")
        }
        return Override(pattern: pattern, type: t)
    }

    public func type(for name: String) -> StorageType {
        for o in overrides where Glob.matches(o.pattern, name) { return o.type }
        return Self.isLargeMatrix(name) ? matrixType : .f32
    }

    /// Overrides whose pattern matches none of `names` (a typo, or a tensor this model does
    /// not have): they change nothing, which the user should hear about.
    public func unmatchedOverrides(among names: [String]) -> [Override] {
        overrides.filter { o in !names.contains { Glob.matches(o.pattern, $0) } }
    }

    /// The recipe as stored in the file's metadata.
    public var jsonObject: [String: Any] {
        [
            "matrix_type": matrixType.description,
            "other_type": "f32",
            "matrices": Self.matrixNames.sorted() + Self.matrixSuffixes.map { "*" + $0 },
            "overrides": overrides.map { ["pattern": $0.pattern, "type": $0.type.description] },
        ]
    }
}

/// Minimal glob matching (`*`, `?`), enough for tensor-name patterns.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
