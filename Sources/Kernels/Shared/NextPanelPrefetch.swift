import HymbaFormat

/// Asks for the weight bytes the next panel of a blocked matrix-matrix product (`Q4MatMul`,
/// `IntegerMatMul`, `Q4MatMulAVX2`) will decode, one row at a time while the current panel's
/// products run. A panel reads its rows' group g a row apart, once per group, so those bytes come from
/// memory, and the hardware prefetchers do not follow that stride: in a 350m q4 prefill
/// profile the panel decode was mostly waiting on its first loads.
///
/// It holds positions only, and the matrix is passed to each call: a stored copy of the
/// `TensorData` (its name, shape and segment arrays) cost a retain and a release of each per
/// panel, atomics that both threads of a product contend for.
public struct NextPanelPrefetch {
    @usableFromInline let first: Int, count: Int, offset: Int, bytes: Int

    /// For the panel of rows p ..< p + panelRows (panels of at most `panelSize` rows) in group
    /// g: the next panel is the following rows of group g, or the first rows of group g + 1.
    /// `span(g)` is group g's byte offset in a row and its length.
    @inlinable @inline(__always)
    public init(rows: Range<Int>, panel p: Int, panelRows: Int, panelSize: Int, group g: Int, groups: Int,
         span: (Int) -> (offset: Int, bytes: Int)) {
        let (group, row) = p + panelRows < rows.upperBound ? (g, p + panelRows) : (g + 1, rows.lowerBound)
        first = row
        count = group < groups ? min(panelSize, rows.upperBound - row) : 0
        (offset, bytes) = group < groups ? span(group) : (0, 0)
    }

    /// Asks for the next panel's row i of `w` (nothing past its rows).
    @inlinable @inline(__always)
    public func row(_ i: Int, of w: TensorData) {
        if i < count { Prefetch.lines(w.row(first + i) + offset, bytes: bytes) }
    }

    /// Asks for the next panel's rows of `w` from i on (those the token tiles did not reach).
    @inlinable @inline(__always)
    public func rows(from i: Int, of w: TensorData) {
        for r in i..<max(i, count) { row(r, of: w) }
    }
}
