extension String {
    /// Left-aligned in a column of `width` characters (Foundation's `%-Ns` does not pad `%@`
    /// on Linux).
    public func padded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
