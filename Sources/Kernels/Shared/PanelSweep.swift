import HymbaFormat

/// The walk every blocked matrix-matrix product (prefill: `Q4MatMul`, `IntegerMatMul`,
/// `Q4MatMulAVX2`, `IntegerMatMulAVX2`) makes over its weights: for each group of a row's
/// columns, the output rows `rows` in panels of at most `panelSize`. Each panel's rows are
/// decoded once into the calling thread's tile (with the rows past the panel's end, up to a
/// whole row tile of 4, cleared), and then every tile of up to `tokensPerTile` tokens meets
/// the whole panel. Decoded once and used by every token, a weight costs its decode a
/// `tokens`-th of what decoding it per token would.
///
/// What a kernel decodes, how it lays a panel out and what a tile computes are its own
/// (the closures); the loop, the panel bounds and the prefetch of the next panel are here.
public enum PanelSweep {
    /// Walks `w`'s rows `rows` over `groups` column groups. `setUp(g)` makes what group g's
    /// decodes and tiles share (its sub-block count, vectors, ...). `decode(state, i, row)`
    /// fills panel row i from weight row `row`, or clears it when `row` is nil (a padding row of
    /// the last row tile). `tile(state, panel, tokens)` runs the tokens `tokens` against the
    /// panel's rows `panel`. With `nextPanel` (group g's byte offset in a row and its length),
    /// the next panel's rows are asked for while this one's tiles run (`NextPanelPrefetch`).
    @inlinable @inline(__always)
    public static func run<Group>(_ w: TensorData, rows: Range<Int>, groups: Int, panelSize: Int,
                                  tokens: Int, tokensPerTile: Int,
                                  nextPanel: ((Int) -> (offset: Int, bytes: Int))?,
                                  setUp: (Int) -> Group,
                                  decode: (Group, Int, Int?) -> Void,
                                  tile: (Group, Range<Int>, Range<Int>) -> Void) {
        for g in 0..<groups {
            let group = setUp(g)
            var p = rows.lowerBound
            while p < rows.upperBound {
                let panelRows = min(panelSize, rows.upperBound - p)
                for i in 0..<((panelRows + 3) / 4 * 4) { decode(group, i, i < panelRows ? p + i : nil) }
                let next = nextPanel.map {
                    NextPanelPrefetch(rows: rows, panel: p, panelRows: panelRows, panelSize: panelSize, group: g, groups: groups, span: $0)
                }
                var t = 0, tileIndex = 0
                while t < tokens {
                    next?.row(tileIndex, of: w)
                    tileIndex += 1
                    let count = min(tokensPerTile, tokens - t)
                    tile(group, p..<(p + panelRows), t..<(t + count))
                    t += tokensPerTile
                }
                next?.rows(from: tileIndex, of: w)
                p += panelRows
            }
        }
    }
}
