import HymbaFormat

/// A `.hymba` file is a weight source as it stands: `config` and `tensor(_:)` (which checks
/// each chunk's checksum on first use and keeps quantized rows in their stored type).
extension HymbaFile: WeightSource {
    public func shape(of name: String) -> [Int]? { entry(name)?.shape }
}
