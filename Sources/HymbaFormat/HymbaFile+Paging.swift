#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading tensors without keeping them: what a memory budget needs. `tensor(_:)` keeps every
/// decompressed chunk for the life of the file and leaves the mapped pages it touched
/// resident; these keep nothing, or put decompressed chunks where the caller says, and can
/// drop a tensor's pages from the process's resident set again.
extension HymbaFile {
    /// Bytes `name`'s compressed chunks take once decompressed (0: all stored uncompressed).
    public func decompressedByteCount(of name: String) -> Int {
        guard let t = entry(name) else { return 0 }
        return t.chunks.reduce(0) { $0 + ($1.codec == .none ? 0 : Int($1.rawLength)) }
    }

    /// A view of `name` whose uncompressed chunks are used in place in the mapping and whose
    /// compressed chunks are decompressed, one after another, into `buffer` (room for
    /// `decompressedByteCount(of:)` bytes; may be nil when that is 0), each one's stored pages
    /// dropped once it is decompressed (so that at most one compressed chunk is resident twice).
    /// Checks checksums when `verify`. The view is valid while `buffer` holds these bytes:
    /// `refill(_:into:)` puts them back after the buffer was reused for another tensor.
    public func view(_ name: String, decompressingInto buffer: UnsafeMutableRawPointer?, verify: Bool) throws -> TensorData {
        guard let t = entry(name) else { throw HymbaFileError.missingTensor(path: path, name: name) }
        var segments: [TensorData.Segment] = []
        var used = 0
        for (ci, c) in t.chunks.enumerated() {
            let stored = mapping.bytes(at: Int(c.storedOffset), count: Int(c.storedLength))
            if verify {
                let sum = XXHash64.hash(stored)
                guard sum == c.checksum else {
                    throw HymbaFileError.chunkChecksum(path: path, tensor: name, chunk: ci, offset: c.storedOffset, expected: c.checksum, found: sum)
                }
            }
            let firstRow = Int(c.rawOffset) / t.rowBytes, rowCount = Int(c.rawLength) / t.rowBytes
            if c.codec == .none {
                segments.append(.init(firstRow: firstRow, rowCount: rowCount, base: stored.baseAddress!))
            } else {
                guard let buffer else {
                    throw HymbaFileError.chunkDecode(path: path, tensor: name, chunk: ci, offset: c.storedOffset,
                                                     message: "compressed chunk but no buffer to decompress it into")
                }
                let dst = buffer + used
                do {
                    try ChunkCompressor.decompress(stored, codec: c.codec, into: UnsafeMutableRawBufferPointer(start: dst, count: Int(c.rawLength)))
                } catch {
                    throw HymbaFileError.chunkDecode(path: path, tensor: name, chunk: ci, offset: c.storedOffset, message: "\(error)")
                }
                segments.append(.init(firstRow: firstRow, rowCount: rowCount, base: UnsafeRawPointer(dst)))
                used += Int(c.rawLength)
                releasePages(offset: Int(c.storedOffset), length: Int(c.storedLength))
            }
        }
        return TensorData(name: name, type: t.type, shape: t.shape, segments: segments)
    }

    /// Decompresses `name`'s compressed chunks into `buffer` again, in the layout of
    /// `view(_:decompressingInto:verify:)` (which checked them), and drops their stored pages.
    public func refill(_ name: String, into buffer: UnsafeMutableRawPointer) throws {
        guard let t = entry(name) else { throw HymbaFileError.missingTensor(path: path, name: name) }
        var used = 0
        for (ci, c) in t.chunks.enumerated() where c.codec != .none {
            let stored = mapping.bytes(at: Int(c.storedOffset), count: Int(c.storedLength))
            do {
                try ChunkCompressor.decompress(stored, codec: c.codec, into: UnsafeMutableRawBufferPointer(start: buffer + used, count: Int(c.rawLength)))
            } catch {
                throw HymbaFileError.chunkDecode(path: path, tensor: name, chunk: ci, offset: c.storedOffset, message: "\(error)")
            }
            releasePages(offset: Int(c.storedOffset), length: Int(c.storedLength))
            used += Int(c.rawLength)
        }
    }

    /// Decodes `name` to floats keeping nothing: checksums checked when the file verifies
    /// them, compressed chunks decompressed into temporary memory, and the tensor's pages
    /// dropped from the resident set afterwards. For tensors read once (norms, a stored prefix).
    public func decodeOnce(_ name: String) throws -> [Float] {
        let bytes = decompressedByteCount(of: name)
        let buffer = bytes > 0 ? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) : nil
        defer { buffer?.deallocate() }
        let values = try view(name, decompressingInto: buffer, verify: verifyChecksums).decodeAll()
        releasePages(of: name)
        return values
    }

    /// Drops the pages holding `name`'s stored chunks from this process's resident set. The
    /// mapping is read-only and private, so the pages are only unmapped: the next read faults
    /// them in again from the page cache or the file, with the same bytes.
    public func releasePages(of name: String) {
        guard let t = entry(name) else { return }
        for c in t.chunks { releasePages(offset: Int(c.storedOffset), length: Int(c.storedLength)) }
    }

    /// `madvise(MADV_DONTNEED)` over the whole pages covering [offset, offset + length)
    /// (`MappedFile.advise`: the start rounded down to a page boundary, the length rounded up
    /// by the kernel, clipped to the mapping; nothing for a mapping copied into memory, whose
    /// pages would be zeroed). A page shared with a neighbouring tensor is dropped too, which
    /// is harmless (it is read again on its next use) and rare (uncompressed chunks start on
    /// page boundaries).
    public func releasePages(offset: Int, length: Int) {
        guard length > 0, offset >= 0, offset < mapping.count else { return }
        mapping.advise(offset: offset, length: min(length, mapping.count - offset), Int32(MADV_DONTNEED))
    }
}
