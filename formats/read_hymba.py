#!/usr/bin/env python3
"""Standalone reader for `.hymba` model files (format version 1).

Written from formats/HYMBA-FORMAT.md alone, as a test that the specification is
enough to read the format. Section numbers in comments (§n) refer to that document.

Dependencies: numpy; for compressed chunks the PyPI packages `zstandard` and `lz4`
(imported only when a chunk needs them); `xxhash` is used when present, otherwise a
pure-Python XXH64 (also selectable with --pure-xxh64).

Usage:
  read_hymba.py FILE                       summary: header, config keys, tensor table
  read_hymba.py FILE --verify              + every chunk checksum, decode every tensor,
                                             conformance checks beyond §8
  read_hymba.py FILE --dump NAME [-n 16]   a tensor's first values
  read_hymba.py FILE --compare-safetensors DIR
                                           every tensor against the Hugging Face checkpoint

Exit status: 0 success, 1 invalid file / failed check / failed comparison, 2 usage error.
"""

import argparse
import json
import math
import mmap
import os
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------
# XXH64 (§2: seed 0). Public algorithm: https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md

_M64 = (1 << 64) - 1
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_P3 = 0x165667B19E3779F9
_P4 = 0x85EBCA77C2B2AE63
_P5 = 0x27D4EB2F165667C5


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc, lane):
    acc = (acc + lane * _P2) & _M64
    acc = _rotl(acc, 31)
    return (acc * _P1) & _M64


def _merge(acc, val):
    acc ^= _round(0, val)
    return (acc * _P1 + _P4) & _M64


def xxh64_pure(data, seed=0):
    """XXH64 in pure Python (about 10 MB/s)."""
    mv = memoryview(data).cast("B")
    n = len(mv)
    p = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & _M64
        v2 = (seed + _P2) & _M64
        v3 = seed & _M64
        v4 = (seed - _P1) & _M64
        stripes = n // 32
        lanes = struct.unpack_from("<%dQ" % (stripes * 4), mv, 0)
        rotl, m = _rotl, _M64
        for i in range(0, stripes * 4, 4):
            v1 = (rotl((v1 + lanes[i] * _P2) & m, 31) * _P1) & m
            v2 = (rotl((v2 + lanes[i + 1] * _P2) & m, 31) * _P1) & m
            v3 = (rotl((v3 + lanes[i + 2] * _P2) & m, 31) * _P1) & m
            v4 = (rotl((v4 + lanes[i + 3] * _P2) & m, 31) * _P1) & m
        p = stripes * 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M64
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while p + 8 <= n:
        (lane,) = struct.unpack_from("<Q", mv, p)
        h ^= _round(0, lane)
        h = (_rotl(h, 27) * _P1 + _P4) & _M64
        p += 8
    if p + 4 <= n:
        (lane,) = struct.unpack_from("<I", mv, p)
        h ^= (lane * _P1) & _M64
        h = (_rotl(h, 23) * _P2 + _P3) & _M64
        p += 4
    while p < n:
        h ^= (mv[p] * _P5) & _M64
        h = (_rotl(h, 11) * _P1) & _M64
        p += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


try:
    import xxhash as _xxhash

    def xxh64_fast(data, seed=0):
        return _xxhash.xxh64_intdigest(data, seed)

except ImportError:  # pragma: no cover - depends on the environment
    xxh64_fast = None

xxh64 = xxh64_fast or xxh64_pure


def use_pure_xxh64():
    global xxh64
    xxh64 = xxh64_pure


# ---------------------------------------------------------------------------
# Constants (§4, §5, §6, §7)

MAGIC = b"HYMBAEDG"
VERSION = 1
HEADER_SIZE = 128
HEADER_STRUCT = struct.Struct("<8sII9Q32sQ")
assert HEADER_STRUCT.size == HEADER_SIZE
HEADER_FIELDS = [
    ("metadata_offset", 16), ("metadata_length", 24), ("directory_offset", 32),
    ("directory_length", 40), ("data_offset", 48), ("data_length", 56),
    ("file_length", 64), ("metadata_checksum", 72), ("directory_checksum", 80),
]
DATA_ALIGN = 4096
CHUNK_ALIGN = 64
NONE_CHUNK_ALIGN = 4096
MAX_NAME = 1024
MAX_RANK = 8
MAX_ELEMENTS = 1 << 40
CHUNK_SIZE = 48

F32, F16, BF16, Q8, Q4 = 0, 1, 2, 8, 9
TYPE_NAMES = {F32: "f32", F16: "f16", BF16: "bf16", Q8: "q8", Q4: "q4"}
BLOCK_SIZES = {F32: 0, F16: 0, BF16: 0, Q8: 32, Q4: 32}
CODEC_NONE, CODEC_ZSTD, CODEC_LZ4 = 0, 1, 2
CODEC_NAMES = {CODEC_NONE: "none", CODEC_ZSTD: "zstd", CODEC_LZ4: "lz4"}
# §8.4: the most raw bytes one stored byte can decode to (a property of each codec's format:
# a Zstandard block of 4 bytes yields at most 128 KiB; an LZ4 sequence of 3 + e bytes at most
# 19 + 255e bytes).
MAX_EXPANSION = {CODEC_ZSTD: 32768, CODEC_LZ4: 255}

Q8_BLOCK = 34
Q4_SUB = 32
Q4_GROUP_SUBS = 16


class FormatError(Exception):
    """The file violates the format; the message names the offset and the rule."""


def align(x, a):
    return (x + a - 1) // a * a


def q4_group_bytes(k):
    """§7: a q4 group of k sub-blocks is 4 + ceil(12k/8) + 16k bytes."""
    return 4 + (12 * k + 7) // 8 + 16 * k


def row_bytes(storage_type, n):
    """§7 table: bytes of one encoded row of n elements."""
    if storage_type == F32:
        return 4 * n
    if storage_type in (F16, BF16):
        return 2 * n
    if storage_type == Q8:
        return Q8_BLOCK * ((n + 31) // 32)
    if storage_type == Q4:
        subs = (n + Q4_SUB - 1) // Q4_SUB
        full, rest = divmod(subs, Q4_GROUP_SUBS)
        return full * q4_group_bytes(Q4_GROUP_SUBS) + (q4_group_bytes(rest) if rest else 0)
    raise ValueError("unknown storage type %d" % storage_type)


# ---------------------------------------------------------------------------
# Decoding rows (§7)

def f16_bits_to_f32(u16):
    return np.asarray(u16, dtype="<u2").view("<f2").astype(np.float32)


def bf16_bits_to_f32(u16):
    return (np.asarray(u16, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def decode_rows(storage_type, raw, rows, n, with_scales=False):
    """Decode `rows` encoded rows of `n` elements from bytes `raw` into a (rows, n) float32
    array. With with_scales (q8 only) also returns the per-element block scale d."""
    rb = row_bytes(storage_type, n)
    buf = np.frombuffer(raw, dtype=np.uint8)
    if buf.size != rows * rb:
        raise FormatError("encoding has %d bytes, expected rows*row_bytes = %d*%d"
                          % (buf.size, rows, rb))
    if storage_type == F32:
        return buf.view("<f4").astype(np.float32).reshape(rows, n)
    if storage_type == F16:
        return f16_bits_to_f32(buf.view("<u2")).reshape(rows, n)
    if storage_type == BF16:
        return bf16_bits_to_f32(buf.view("<u2")).reshape(rows, n)
    if storage_type == Q8:
        blocks = (n + 31) // 32
        b = buf.reshape(rows, blocks, Q8_BLOCK)
        d = f16_bits_to_f32(np.ascontiguousarray(b[:, :, 0:2]).view("<u2"))  # (rows, blocks, 1)
        q = np.ascontiguousarray(b[:, :, 2:]).view(np.int8).astype(np.float32)
        # f16 (11-bit significand) times |q| <= 127 is exact in f32.
        x = (d * q).reshape(rows, blocks * 32)[:, :n]
        if with_scales:
            ds = np.broadcast_to(d, (rows, blocks, 32)).reshape(rows, blocks * 32)[:, :n]
            return x, ds
        return x
    if storage_type == Q4:
        return _decode_q4(buf, rows, n, rb)
    raise FormatError("unknown storage type %d" % storage_type)


def _q4_entries(ent, k):
    """§7 entries: k packed 12-bit entries (bit string, little-endian) -> (sc, mn), each
    shaped (..., k). ent has shape (..., ceil(12k/8))."""
    pairs = (k + 1) // 2
    need = 3 * pairs
    if ent.shape[-1] < need:  # odd k: the last entry ends half-way through a byte pair
        pad = np.zeros(ent.shape[:-1] + (need - ent.shape[-1],), dtype=np.uint8)
        ent = np.concatenate([ent, pad], axis=-1)
    t = ent.reshape(ent.shape[:-1] + (pairs, 3)).astype(np.uint16)
    even = t[..., 0] | ((t[..., 1] & 0x0F) << 8)
    odd = (t[..., 1] >> 4) | (t[..., 2] << 4)
    e = np.stack([even, odd], axis=-1).reshape(ent.shape[:-1] + (2 * pairs,))[..., :k]
    return (e & 63), (e >> 6)


def _q4_groups(g, k):
    """Decode groups of k sub-blocks: g has shape (rows, groups, q4_group_bytes(k)).
    Returns (rows, groups * k * 32) float32."""
    rows, groups = g.shape[0], g.shape[1]
    ne = (12 * k + 7) // 8
    d = f16_bits_to_f32(np.ascontiguousarray(g[:, :, 0:2]).view("<u2"))      # (r, G, 1)
    dmin = f16_bits_to_f32(np.ascontiguousarray(g[:, :, 2:4]).view("<u2"))   # (r, G, 1)
    sc, mn = _q4_entries(g[:, :, 4:4 + ne], k)                              # (r, G, k)
    codes = g[:, :, 4 + ne:].reshape(rows, groups, k, 16)
    q = np.concatenate([codes & 15, codes >> 4], axis=-1).astype(np.float32)  # (r, G, k, 32)
    # x = d*sc*q - dmin*mn in f32: both products are exact (11+6+4 and 11+6 significand bits),
    # so the single rounding of the subtraction makes the result independent of evaluation order.
    scale = (d * sc.astype(np.float32))[..., None]                 # (r, G, k, 1)
    offset = (dmin * mn.astype(np.float32))[..., None]
    x = scale * q - offset
    return x.astype(np.float32).reshape(rows, groups * k * 32)


def _decode_q4(buf, rows, n, rb):
    subs = (n + Q4_SUB - 1) // Q4_SUB
    full, rest = divmod(subs, Q4_GROUP_SUBS)
    r = buf.reshape(rows, rb)
    parts = []
    fb = full * q4_group_bytes(Q4_GROUP_SUBS)
    if full:
        parts.append(_q4_groups(r[:, :fb].reshape(rows, full, q4_group_bytes(Q4_GROUP_SUBS)),
                                Q4_GROUP_SUBS))
    if rest:
        parts.append(_q4_groups(r[:, fb:].reshape(rows, 1, q4_group_bytes(rest)), rest))
    x = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    return x[:, :n]


def q4_odd_entry_padding_violations(raw, rows, n):
    """§7: when k is odd the last 4 bits of `entries` are zero (only the last group of a
    row can have odd k). Returns the number of rows violating it."""
    subs = (n + Q4_SUB - 1) // Q4_SUB
    full, rest = divmod(subs, Q4_GROUP_SUBS)
    if rest % 2 == 0:
        return 0
    rb = row_bytes(Q4, n)
    r = np.frombuffer(raw, dtype=np.uint8).reshape(rows, rb)
    start = full * q4_group_bytes(Q4_GROUP_SUBS) + 4
    last = start + (12 * rest + 7) // 8 - 1
    return int(np.count_nonzero(r[:, last] >> 4))


# ---------------------------------------------------------------------------
# Codecs (§6)

def decompress(codec, stored, raw_length, where):
    if codec == CODEC_NONE:
        return stored
    if codec == CODEC_ZSTD:
        try:
            import zstandard
        except ImportError:
            raise FormatError("%s: zstd chunk but the `zstandard` package is not installed "
                              "(pip install zstandard)" % where)
        if len(stored) >= 4 and struct.unpack_from("<I", stored)[0] & 0xFFFFFFF0 == 0x184D2A50:
            raise FormatError("%s: a skippable zstd frame (a chunk holds exactly one Zstandard "
                              "frame, §6)" % where)
        try:
            params = zstandard.get_frame_parameters(stored)
        except zstandard.ZstdError as e:
            raise FormatError("%s: not a Zstandard frame: %s" % (where, e))
        if params.content_size != zstandard.CONTENTSIZE_UNKNOWN and \
                params.content_size != raw_length:
            raise FormatError("%s: zstd frame declares content size %d, raw_length is %d"
                              % (where, params.content_size, raw_length))
        try:
            # max_output_size bounds the output (no decompression bombs); bytes after the
            # frame are refused (one frame per chunk).
            data = zstandard.ZstdDecompressor().decompress(
                stored, max_output_size=raw_length, allow_extra_data=False)
        except zstandard.ZstdError as e:
            raise FormatError("%s: zstd decoding failed (output bounded to raw_length %d): %s"
                              % (where, raw_length, e))
        if len(data) != raw_length:
            raise FormatError("%s: zstd frame decodes to %d bytes, raw_length is %d"
                              % (where, len(data), raw_length))
        return data
    if codec == CODEC_LZ4:
        try:
            import lz4.block
        except ImportError:
            raise FormatError("%s: lz4 chunk but the `lz4` package is not installed "
                              "(pip install lz4)" % where)
        try:
            # uncompressed_size is the output buffer size: decoding fails if the block
            # would write more; we check for fewer below.
            data = lz4.block.decompress(bytes(stored), uncompressed_size=raw_length)
        except Exception as e:  # lz4.block.LZ4BlockError
            raise FormatError("%s: lz4 block decoding failed (output bounded to raw_length "
                              "%d): %s" % (where, raw_length, e))
        if len(data) != raw_length:
            raise FormatError("%s: lz4 block decodes to %d bytes, raw_length is %d"
                              % (where, len(data), raw_length))
        return data
    raise FormatError("%s: unknown codec %d" % (where, codec))


# ---------------------------------------------------------------------------
# The file

class Chunk:
    __slots__ = ("stored_offset", "stored_length", "raw_offset", "raw_length", "codec",
                 "reserved", "checksum", "entry_offset")


class Tensor:
    def __init__(self):
        self.chunks = []

    @property
    def type_name(self):
        return TYPE_NAMES[self.storage_type]

    @property
    def rows(self):
        return math.prod(self.shape[:-1])

    @property
    def row_length(self):
        return self.shape[-1]

    @property
    def element_count(self):
        return math.prod(self.shape)

    @property
    def stored_bytes(self):
        return sum(c.stored_length for c in self.chunks)


class HymbaFile:
    """Opens and validates a .hymba file (§4, §8). Chunk checksums are checked on first use
    (§8.6) or all at once with verify_chunks()."""

    def __init__(self, path):
        self.path = path
        self._fh = open(path, "rb")
        size = os.fstat(self._fh.fileno()).st_size
        self.size = size
        if size < HEADER_SIZE:
            raise FormatError("file is %d bytes, shorter than the %d-byte header"
                              % (size, HEADER_SIZE))
        self.buf = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        self.warnings = []   # conformance findings beyond §8 (layout rules of §3, §4, §6)
        self._checked_chunks = set()
        self._parse_header()
        self._check_bounds()
        self._parse_metadata()
        self._parse_directory()
        self._check_chunks_global()

    def close(self):
        self.buf.close()
        self._fh.close()

    # -- §4 header
    def _parse_header(self):
        b = self.buf
        if b[0:8] != MAGIC:
            raise FormatError("offset 0: magic is %s, expected %s (\"HYMBAEDG\")"
                              % (b[0:8].hex(" "), MAGIC.hex(" ")))
        bom = b[12:16]
        if bom == b"\x0a\x0b\x0c\x0d":
            raise FormatError("offset 12: byte-order mark is 0A 0B 0C 0D: a big-endian file; "
                              "this format is little-endian and the file must be refused")
        if bom != b"\x0d\x0c\x0b\x0a":
            raise FormatError("offset 12: byte-order mark is %s, expected 0D 0C 0B 0A"
                              % bom.hex(" ").upper())
        (version,) = struct.unpack_from("<I", b, 8)
        if version != VERSION:
            raise FormatError("offset 8: version %d is not supported (this reader knows "
                              "version %d)" % (version, VERSION))
        fields = HEADER_STRUCT.unpack_from(b, 0)
        (self.header_checksum,) = struct.unpack_from("<Q", b, 120)
        computed = xxh64(b[0:120])
        if computed != self.header_checksum:
            raise FormatError("offset 120: header checksum is %016x, xxh64 of bytes 0..119 is "
                              "%016x" % (self.header_checksum, computed))
        self.version = version
        self.byte_order_mark = struct.unpack_from("<I", b, 12)[0]
        for (name, _), value in zip(HEADER_FIELDS, fields[3:12]):
            setattr(self, name, value)
        self.header_reserved = fields[12]
        if any(self.header_reserved):
            raise FormatError("offset 88: header reserved bytes are not zero: %s"
                              % self.header_reserved.hex(" "))

    # -- §8.1, §8.2
    def _check_bounds(self):
        if self.file_length != self.size:
            raise FormatError("offset 64: file_length is %d but the file is %d bytes"
                              % (self.file_length, self.size))
        if self.metadata_offset != HEADER_SIZE:
            raise FormatError("offset 16: metadata_offset is %d, must be 128"
                              % self.metadata_offset)
        if HEADER_SIZE + self.metadata_length > self.data_offset:
            raise FormatError("offset 24/48: metadata ends at %d, after data_offset %d"
                              % (HEADER_SIZE + self.metadata_length, self.data_offset))
        if self.data_offset % DATA_ALIGN:
            raise FormatError("offset 48: data_offset %d is not a multiple of 4096"
                              % self.data_offset)
        if self.data_offset + self.data_length > self.directory_offset:
            raise FormatError("offset 48/56/32: data section [%d, %d) runs past "
                              "directory_offset %d" % (self.data_offset,
                                                       self.data_offset + self.data_length,
                                                       self.directory_offset))
        if self.directory_offset + self.directory_length != self.file_length:
            raise FormatError("offset 32/40/64: directory_offset + directory_length = %d, "
                              "file_length is %d" % (self.directory_offset +
                                                     self.directory_length, self.file_length))
        # §4: writers put data_offset exactly at align(128 + metadata_length, 4096); readers
        # accept any multiple of 4096 at or after the metadata's end. Another value is valid
        # but not what a writer of this version produces: reported as a warning.
        expect = align(HEADER_SIZE + self.metadata_length, DATA_ALIGN)
        if self.data_offset != expect:
            self.warnings.append("offset 48: data_offset %d != align(128 + metadata_length, "
                                 "4096) = %d (valid; not a writer's choice, §4)" % (self.data_offset, expect))
        if self.directory_offset % CHUNK_ALIGN:
            raise FormatError("offset 32: directory_offset %d is not a multiple of 64 (§4, §8)"
                              % self.directory_offset)

    # -- §8.3, §9
    def _parse_metadata(self):
        start, end = self.metadata_offset, self.metadata_offset + self.metadata_length
        raw = self.buf[start:end]
        c = xxh64(raw)
        if c != self.metadata_checksum:
            raise FormatError("offset 72: metadata_checksum is %016x, xxh64 of metadata bytes "
                              "[%d, %d) is %016x" % (self.metadata_checksum, start, end, c))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError("metadata byte %d (file offset %d): invalid UTF-8: %s"
                              % (e.start, start + e.start, e.reason))

        def bad_constant(name):
            raise FormatError("metadata: non-JSON constant %s" % name)
        try:
            meta = json.loads(text, parse_constant=bad_constant)
        except json.JSONDecodeError as e:
            raise FormatError("metadata (file offset %d): invalid JSON at character %d: %s"
                              % (start, e.pos, e.msg))
        if not isinstance(meta, dict):
            raise FormatError("metadata (file offset %d): JSON is a %s, expected an object"
                              % (start, type(meta).__name__))
        if not isinstance(meta.get("config"), dict):
            raise FormatError("metadata (file offset %d): no \"config\" object" % start)
        self.metadata = meta
        self.metadata_text = text

    # -- §5, §8.4, §8.5
    def _parse_directory(self):
        b = self.buf
        base = self.directory_offset
        end = base + self.directory_length
        raw = b[base:end]
        c = xxh64(raw)
        if c != self.directory_checksum:
            raise FormatError("offset 80: directory_checksum is %016x, xxh64 of directory bytes "
                              "[%d, %d) is %016x" % (self.directory_checksum, base, end, c))
        pos = base

        def need(nbytes, what):
            if pos + nbytes > end:
                raise FormatError("directory offset %d (file offset %d): %s needs %d bytes, "
                                  "only %d left in the directory"
                                  % (pos - base, pos, what, nbytes, end - pos))

        def read(fmt, what):
            nonlocal pos
            size = struct.calcsize("<" + fmt)
            need(size, what)
            v = struct.unpack_from("<" + fmt, b, pos)
            pos += size
            return v if len(v) > 1 else v[0]

        tensor_count, reserved = read("II", "directory header")
        if reserved != 0:
            raise FormatError("file offset %d: directory reserved field is %d, must be 0"
                              % (base + 4, reserved))
        # each tensor entry is at least 4+1+4+4+4+8+8+8+8+4+48 bytes
        if tensor_count * 101 > self.directory_length - 8:
            raise FormatError("file offset %d: tensor_count %d cannot fit in a %d-byte directory"
                              % (base, tensor_count, self.directory_length))
        tensors, names = [], {}
        for i in range(tensor_count):
            t = Tensor()
            t.entry_offset = pos
            name_length = read("I", "name_length of tensor #%d" % i)
            where = "tensor #%d (directory entry at file offset %d)" % (i, t.entry_offset)
            if not 1 <= name_length <= MAX_NAME:
                raise FormatError("%s: name_length %d not in 1...1024" % (where, name_length))
            need(name_length, "name of tensor #%d" % i)
            name_bytes = bytes(b[pos:pos + name_length])
            try:
                t.name = name_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError("%s: name is not valid UTF-8 (byte %d at file offset %d)"
                                  % (where, e.start, pos + e.start))
            pos += name_length
            where = "tensor #%d '%s' (directory entry at file offset %d)" % (i, t.name,
                                                                             t.entry_offset)
            if t.name in names:
                raise FormatError("%s: duplicate name (also tensor #%d)" % (where, names[t.name]))
            names[t.name] = i
            at = pos
            t.storage_type, t.block_size, rank = read("III", "type/block_size/rank of " + t.name)
            if t.storage_type not in TYPE_NAMES:
                raise FormatError("%s: file offset %d: unknown storage_type %d"
                                  % (where, at, t.storage_type))
            if t.block_size != BLOCK_SIZES[t.storage_type]:
                raise FormatError("%s: file offset %d: block_size %d, %s requires %d"
                                  % (where, at + 4, t.block_size, t.type_name,
                                     BLOCK_SIZES[t.storage_type]))
            if not 1 <= rank <= MAX_RANK:
                raise FormatError("%s: file offset %d: rank %d not in 1...8" % (where, at + 8, rank))
            at = pos
            t.shape = list(read("%dQ" % rank, "shape of " + t.name)) if rank > 1 else \
                [read("Q", "shape of " + t.name)]
            if any(dim < 1 for dim in t.shape):
                raise FormatError("%s: file offset %d: shape %s has a dimension < 1"
                                  % (where, at, t.shape))
            if t.element_count > MAX_ELEMENTS:
                raise FormatError("%s: file offset %d: shape %s has %d elements, more than 2^40"
                                  % (where, at, t.shape, t.element_count))
            at = pos
            t.raw_length, t.data_offset, t.data_length, chunk_count = \
                read("QQQI", "lengths of " + t.name)
            t.row_bytes = row_bytes(t.storage_type, t.row_length)
            expect = t.rows * t.row_bytes
            if t.raw_length != expect:
                raise FormatError("%s: file offset %d: raw_length %d, expected rows*row_bytes = "
                                  "%d*%d = %d" % (where, at, t.raw_length, t.rows, t.row_bytes,
                                                  expect))
            if chunk_count < 1:
                raise FormatError("%s: file offset %d: chunk_count is 0" % (where, at + 24))
            need(chunk_count * CHUNK_SIZE, "%d chunks of %s" % (chunk_count, t.name))
            raw_pos = 0
            for j in range(chunk_count):
                c = Chunk()
                c.entry_offset = pos
                (c.stored_offset, c.stored_length, c.raw_offset, c.raw_length, c.codec,
                 c.reserved, c.checksum) = read("QQQQIIQ", "chunk")
                cw = "%s chunk %d (entry at file offset %d)" % (where, j, c.entry_offset)
                if c.codec not in CODEC_NAMES:
                    raise FormatError("%s: unknown codec %d" % (cw, c.codec))
                if c.reserved != 0:
                    raise FormatError("%s: reserved field is %d, must be 0" % (cw, c.reserved))
                if c.raw_offset != raw_pos:
                    raise FormatError("%s: raw_offset %d, expected %d (chunks must be contiguous "
                                      "from 0)" % (cw, c.raw_offset, raw_pos))
                if c.raw_length == 0 or c.raw_length % t.row_bytes:
                    raise FormatError("%s: raw_length %d is not a positive multiple of "
                                      "row_bytes %d" % (cw, c.raw_length, t.row_bytes))
                raw_pos += c.raw_length
                if raw_pos > t.raw_length:
                    raise FormatError("%s: chunk ends at raw offset %d, past the tensor's "
                                      "raw_length %d" % (cw, raw_pos, t.raw_length))
                if c.codec == CODEC_NONE:
                    if c.stored_length != c.raw_length:
                        raise FormatError("%s: codec none with stored_length %d != raw_length %d"
                                          % (cw, c.stored_length, c.raw_length))
                    if c.stored_offset % NONE_CHUNK_ALIGN:
                        raise FormatError("%s: codec none chunk at %d is not 4096-aligned"
                                          % (cw, c.stored_offset))
                else:
                    if not 0 < c.stored_length < c.raw_length:
                        raise FormatError("%s: %s chunk with stored_length %d, must be in "
                                          "(0, raw_length=%d)" % (cw, CODEC_NAMES[c.codec],
                                                                  c.stored_length, c.raw_length))
                    if c.stored_offset % CHUNK_ALIGN:
                        raise FormatError("%s: chunk at %d is not 64-aligned"
                                          % (cw, c.stored_offset))
                    # §8.4: no codec expands beyond a fixed factor (a larger claim is a
                    # would-be decompression bomb).
                    most = c.stored_length * MAX_EXPANSION[c.codec]
                    if c.raw_length > most:
                        raise FormatError("%s: claims %d raw bytes from %d stored bytes; %s "
                                          "expands at most %d-fold" % (
                                              cw, c.raw_length, c.stored_length,
                                              CODEC_NAMES[c.codec], MAX_EXPANSION[c.codec]))
                if not (self.data_offset <= c.stored_offset and c.stored_offset + c.stored_length
                        <= self.data_offset + self.data_length):
                    raise FormatError("%s: stored bytes [%d, %d) are outside the data section "
                                      "[%d, %d)" % (cw, c.stored_offset,
                                                    c.stored_offset + c.stored_length,
                                                    self.data_offset,
                                                    self.data_offset + self.data_length))
                t.chunks.append(c)
            if raw_pos != t.raw_length:
                raise FormatError("%s: chunks cover raw bytes [0, %d), raw_length is %d"
                                  % (where, raw_pos, t.raw_length))
            first, last = t.chunks[0], t.chunks[-1]
            if t.data_offset != first.stored_offset:
                raise FormatError("%s: data_offset %d != chunks[0].stored_offset %d"
                                  % (where, t.data_offset, first.stored_offset))
            end_of_last = last.stored_offset + last.stored_length
            if t.data_length != end_of_last - t.data_offset:
                raise FormatError("%s: data_length %d != end of the last chunk %d - data_offset "
                                  "%d" % (where, t.data_length, end_of_last, t.data_offset))
            tensors.append(t)
        if pos != end:
            raise FormatError("file offset %d: %d bytes follow the last tensor entry in the "
                              "directory" % (pos, end - pos))
        self.tensors = tensors
        self.by_name = {t.name: t for t in tensors}

    def _check_chunks_global(self):
        spans = sorted((c.stored_offset, c.stored_offset + c.stored_length, t.name, j)
                       for t in self.tensors for j, c in enumerate(t.chunks))
        for a, b in zip(spans, spans[1:]):
            if b[0] < a[1]:
                raise FormatError("chunk %d of '%s' [%d, %d) overlaps chunk %d of '%s' [%d, %d)"
                                  % (a[3], a[2], a[0], a[1], b[3], b[2], b[0], b[1]))
        # §4: data_length runs "from data_offset to the end of the last chunk" (a rule not in §8)
        data_end = max((s[1] for s in spans), default=self.data_offset)
        if self.data_offset + self.data_length != data_end:
            self.warnings.append("offset 56: data_length %d, but the last chunk ends at %d "
                                 "(data_offset + %d) (§4)" % (self.data_length, data_end,
                                                             data_end - self.data_offset))
        self.spans = spans

    # -- reading
    def chunk_bytes(self, tensor, j):
        """Stored bytes of chunk j, checksum-checked on first use (§8.6), then decoded."""
        c = tensor.chunks[j]
        stored = memoryview(self.buf)[c.stored_offset:c.stored_offset + c.stored_length]
        where = "tensor '%s' chunk %d (stored at file offset %d, %d bytes)" % (
            tensor.name, j, c.stored_offset, c.stored_length)
        key = (tensor.name, j)
        if key not in self._checked_chunks:
            h = xxh64(stored)
            if h != c.checksum:
                raise FormatError("%s: checksum is %016x in the directory (file offset %d), "
                                  "xxh64 of the stored bytes is %016x"
                                  % (where, c.checksum, c.entry_offset + 40, h))
            self._checked_chunks.add(key)
        return decompress(c.codec, stored, c.raw_length, where)

    def encoded(self, tensor):
        """The tensor's whole encoding (raw_length bytes)."""
        if isinstance(tensor, str):
            tensor = self.tensor(tensor)
        parts = [bytes(self.chunk_bytes(tensor, j)) for j in range(len(tensor.chunks))]
        return b"".join(parts)

    def tensor(self, name):
        t = self.by_name.get(name)
        if t is None:
            raise KeyError("no tensor named '%s' in %s" % (name, self.path))
        return t

    def read(self, name, with_scales=False):
        """Decode a tensor to a float32 array of its shape (q8 with_scales: also the
        per-element block scales)."""
        t = self.tensor(name) if isinstance(name, str) else name
        raw = self.encoded(t)
        out = decode_rows(t.storage_type, raw, t.rows, t.row_length, with_scales)
        if with_scales and t.storage_type == Q8:
            x, d = out
            return x.reshape(t.shape), np.ascontiguousarray(d).reshape(t.shape)
        return out.reshape(t.shape)

    def verify_chunks(self):
        """Check every chunk checksum (raises FormatError on the first mismatch)."""
        n = 0
        for t in self.tensors:
            for j, c in enumerate(t.chunks):
                stored = memoryview(self.buf)[c.stored_offset:c.stored_offset + c.stored_length]
                h = xxh64(stored)
                if h != c.checksum:
                    raise FormatError("tensor '%s' chunk %d (stored at file offset %d, %d bytes):"
                                      " checksum is %016x in the directory (file offset %d), "
                                      "xxh64 of the stored bytes is %016x"
                                      % (t.name, j, c.stored_offset, c.stored_length,
                                         c.checksum, c.entry_offset + 40, h))
                self._checked_chunks.add((t.name, j))
                n += 1
        return n

    def conformance(self):
        """Checks of statements in §3/§4/§6/§7/§9 that §8 does not list: zero padding, section
        order, the q4 odd-entry padding, metadata keys. Returns a list of findings."""
        out = list(self.warnings)
        b = self.buf
        mend = HEADER_SIZE + self.metadata_length
        if any(b[mend:self.data_offset]):
            out.append("padding [%d, %d) between metadata and data is not zero"
                       % (mend, self.data_offset))
        prev = self.data_offset
        for s in self.spans:
            if s[0] > prev and any(b[prev:s[0]]):
                out.append("padding [%d, %d) before chunk %d of '%s' is not zero"
                           % (prev, s[0], s[3], s[2]))
            prev = s[1]
        if any(b[prev:self.directory_offset]):
            out.append("padding [%d, %d) between the last chunk and the directory is not zero"
                       % (prev, self.directory_offset))
        for t in self.tensors:
            if t.storage_type == Q8 and t.row_length % 32:
                # §7: "the last block is padded with zeros" (q4 padding codes are unconstrained)
                blocks = (t.row_length + 31) // 32
                enc = np.frombuffer(self.encoded(t), np.uint8).reshape(t.rows, blocks, Q8_BLOCK)
                tail = enc[:, -1, 2 + t.row_length % 32:]
                bad = int(np.count_nonzero(np.any(tail != 0, axis=-1)))
                if bad:
                    out.append("tensor '%s': %d rows whose q8 padding codes are not zero (§7)"
                               % (t.name, bad))
            if t.storage_type == Q4:
                bad = q4_odd_entry_padding_violations(self.encoded(t), t.rows, t.row_length)
                if bad:
                    out.append("tensor '%s': %d rows whose odd-k last group has non-zero final "
                               "entry bits (§7)" % (t.name, bad))
        m = self.metadata
        if m.get("format") != "hymba-edge":
            out.append("metadata: \"format\" is %r, expected \"hymba-edge\" (§9)"
                       % (m.get("format"),))
        if list(m.keys()) != sorted(m.keys()):
            out.append("metadata: top-level keys are not sorted (§9)")
        prefix = [t.name for t in self.tensors if t.name.startswith("hymba.")]
        if prefix and "meta_prefix" not in m:
            out.append("tensors %s... present without metadata key meta_prefix (§5)" % prefix[0])
        for name in prefix:
            if not name.startswith("hymba.meta_prefix.layers."):
                out.append("tensor '%s': reserved hymba.* name not defined by version 1 (§5)"
                           % name)
            elif self.by_name[name].storage_type != F32:
                out.append("tensor '%s': meta-prefix tensors are f32 (§5), found %s"
                           % (name, self.by_name[name].type_name))
        out.extend(self._tokenizer_findings())
        return out

    def _tokenizer_findings(self):
        tok = self.metadata.get("tokenizer")
        if tok is None:
            return []
        out = []
        required = ["model", "vocab", "merges", "byte_fallback", "fuse_unk", "unk_id", "bos_id",
                    "eos_id", "pad_id", "add_bos", "add_eos", "added_tokens", "normalizer",
                    "decoder", "chat_template"]
        missing = [k for k in required if k not in tok]
        if missing:
            out.append("tokenizer: required keys missing: %s (§9.1)" % ", ".join(missing))
            return out
        vocab = tok["vocab"]
        if len(set(vocab)) != len(vocab) or any(not p for p in vocab):
            out.append("tokenizer: vocab pieces are not all distinct and non-empty (§9.1)")
        index = {p: i for i, p in enumerate(vocab)}
        merges = tok["merges"]
        if len(merges) % 2:
            out.append("tokenizer: merges has an odd length (§9.1)")
        else:
            for i in range(0, len(merges), 2):
                a, b = merges[i], merges[i + 1]
                if not (0 <= a < len(vocab) and 0 <= b < len(vocab)) or \
                        vocab[a] + vocab[b] not in index:
                    out.append("tokenizer: merge %d (%s, %s) does not join two pieces into a "
                               "vocab piece (§9.1)" % (i // 2, a, b))
                    break
        for key in ("unk_id", "bos_id", "eos_id", "pad_id"):
            v = tok[key]
            if v is not None and not (isinstance(v, int) and 0 <= v < len(vocab)):
                out.append("tokenizer: %s = %r is not an id in the vocab (§9.1)" % (key, v))
        for a in tok["added_tokens"]:
            if not (0 <= a.get("id", -1) < len(vocab)) or vocab[a["id"]] != a.get("content"):
                out.append("tokenizer: added token %r does not match vocab (§9.1)" % (a,))
                break
        return out


# ---------------------------------------------------------------------------
# Safetensors (Hugging Face checkpoints)

class Safetensors:
    DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8", "I32": "<i4",
              "I64": "<i8", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "u1"}

    def __init__(self, directory):
        self.directory = directory
        index = os.path.join(directory, "model.safetensors.index.json")
        single = os.path.join(directory, "model.safetensors")
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
            files = sorted(set(weight_map.values()))
        elif os.path.exists(single):
            weight_map, files = None, ["model.safetensors"]
        else:
            raise FileNotFoundError("%s has neither model.safetensors nor "
                                    "model.safetensors.index.json" % directory)
        self.entries = {}
        self._maps = []
        for fname in files:
            path = os.path.join(directory, fname)
            fh = open(path, "rb")
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps.append((fh, mm))
            if len(mm) < 8:
                raise ValueError("%s: shorter than 8 bytes" % path)
            (n,) = struct.unpack_from("<Q", mm, 0)
            if 8 + n > len(mm):
                raise ValueError("%s: header length %d runs past the file" % (path, n))
            header = json.loads(bytes(mm[8:8 + n]))
            base = 8 + n
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                begin, end = info["data_offsets"]
                if not 0 <= begin <= end <= len(mm) - base:
                    raise ValueError("%s: tensor %s offsets %s outside the data" %
                                     (path, name, info["data_offsets"]))
                self.entries[name] = (mm, base + begin, base + end, info["dtype"],
                                      list(info["shape"]), fname)
        if weight_map is not None:
            for name, fname in weight_map.items():
                if name not in self.entries:
                    raise ValueError("index lists %s in %s but the shard lacks it" % (name, fname))

    def dtype(self, name):
        return self.entries[name][3]

    def shape(self, name):
        return self.entries[name][4]

    def raw(self, name):
        """(dtype string, numpy array of the stored element values/bits)."""
        mm, begin, end, dtype, shape, _ = self.entries[name]
        if dtype not in self.DTYPES:
            raise ValueError("tensor %s: unsupported safetensors dtype %s" % (name, dtype))
        a = np.frombuffer(mm, dtype=self.DTYPES[dtype], count=(end - begin) //
                          np.dtype(self.DTYPES[dtype]).itemsize, offset=begin)
        return dtype, a.reshape(shape)

    def float32(self, name):
        dtype, a = self.raw(name)
        if dtype == "BF16":
            return bf16_bits_to_f32(a)
        return a.astype(np.float32)


def round_to_bf16_bits(x32):
    """float32 -> bf16 bits, round to nearest even (NaN kept quiet)."""
    u = np.asarray(x32, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(x32)
    r = np.where(nan, (u >> 16) | 0x40, r)
    return r.astype(np.uint16)


def q4_0_rmse(x):
    """RMSE of GGML's Q4_0 (blocks of 32, d = max/-8 with max the signed value of largest
    magnitude, q = min(15, trunc(x/d + 8.5)), f16 d) on rows of x (last block zero-padded):
    the yardstick §7 compares q4 with."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.float32)
    n = rows.shape[1]
    pad = (-n) % 32
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), np.float32)], axis=1)
    b = rows.reshape(rows.shape[0], -1, 32)
    idx = np.argmax(np.abs(b), axis=-1)
    mx = np.take_along_axis(b, idx[..., None], axis=-1)
    d = mx / np.float32(-8)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0))
    q = np.minimum(15, np.trunc(b * inv + np.float32(8.5))).astype(np.int32)
    dh = d.astype(np.float16).astype(np.float32)
    y = (q - 8).astype(np.float32) * dh
    err = (y - b).reshape(rows.shape[0], -1)[:, :n]
    return float(np.sqrt(np.mean(err.astype(np.float64) ** 2)))


# Thresholds for --compare-safetensors
Q8_ELEMENT_BOUND = 0.51      # |error| <= 0.51 * d per element (plus any clamping excess)
Q4_MAX_RELATIVE_RMSE = 0.15  # RMSE / RMS(source) of a q4 tensor


def compare(hf, ckpt, out=sys.stdout):
    """Decode every tensor and compare it with the checkpoint. Returns the number of failures."""
    failures = 0
    rows = []
    seen = set()
    for t in hf.tensors:
        name = t.name
        if name.startswith("hymba."):
            rows.append((name, t.type_name, "derived (not in checkpoint)", "", "", "", ""))
            continue
        seen.add(name)
        if name not in ckpt.entries:
            rows.append((name, t.type_name, "FAIL: not in checkpoint", "", "", "", ""))
            failures += 1
            continue
        if list(ckpt.shape(name)) != list(t.shape):
            rows.append((name, t.type_name, "FAIL: shape %s, checkpoint %s"
                         % (t.shape, ckpt.shape(name)), "", "", "", ""))
            failures += 1
            continue
        src_dtype = ckpt.dtype(name)
        src = ckpt.float32(name)
        if t.storage_type == Q8:
            x, d = hf.read(t, with_scales=True)
        else:
            x = hf.read(t)
        err = (x.astype(np.float64) - src.astype(np.float64))
        finite = np.isfinite(src)
        abs_err = np.abs(np.where(finite, err, 0.0))
        max_abs = float(abs_err.max())
        rmse = float(np.sqrt(np.mean(abs_err ** 2)))
        rms = float(np.sqrt(np.mean(src.astype(np.float64) ** 2)))
        status, note = "ok", ""
        if t.storage_type in (F32, BF16):
            # bit-exact when the checkpoint's values are representable (bf16/f32 sources)
            if t.storage_type == F32 or src_dtype == "BF16":
                same = np.array_equal(x.view(np.uint32), src.view(np.uint32))
                if not same:
                    nbad = int(np.count_nonzero(x.view(np.uint32) != src.view(np.uint32)))
                    status, note = "FAIL", "%d elements differ (bit-exact expected)" % nbad
                else:
                    note = "bit-exact"
            else:
                expect = bf16_bits_to_f32(round_to_bf16_bits(src))
                nbad = int(np.count_nonzero(x.view(np.uint32) != expect.view(np.uint32)))
                status = "FAIL" if nbad else "ok"
                note = "%d elements differ from round-to-nearest-even bf16" % nbad
        elif t.storage_type == F16:
            expect = src.astype(np.float16).astype(np.float32)  # IEEE round to nearest even
            nbad = int(np.count_nonzero(x.view(np.uint32) != expect.view(np.uint32)))
            # tolerance: half an f16 ulp (relative 2^-11, absolute 2^-25 in the subnormals)
            tol = np.maximum(np.abs(src) * 2.0 ** -11, 2.0 ** -25)
            over = int(np.count_nonzero((abs_err > tol) & finite & (np.abs(src) <= 65504)))
            if over:
                status = "FAIL"
            note = "%s; %d elements beyond half an f16 ulp" % (
                "equals RNE f16" if nbad == 0 else "%d elements differ from RNE f16" % nbad, over)
        elif t.storage_type == Q8:
            d64 = d.astype(np.float64)
            clamp_excess = np.maximum(0.0, np.abs(src) - 127.0 * d64)
            bound = Q8_ELEMENT_BOUND * d64 + clamp_excess * (1 + 1e-6)
            over = int(np.count_nonzero((abs_err > bound) & finite))
            clamped = int(np.count_nonzero(clamp_excess > 0))
            ratio = float(np.max(np.where(d64 > 0, abs_err / np.where(d64 > 0, d64, 1), 0)))
            if over:
                status = "FAIL"
            note = "max err/d %.3f; %d elements > 0.51*d%s" % (
                ratio, over, "; %d beyond 127*d (clamped)" % clamped if clamped else "")
            mism = q8_recipe_mismatches(src, hf.encoded(t), t.rows, t.row_length)
            if mism:
                note += "; %d blocks differ from the §7 q8 recipe" % mism
        elif t.storage_type == Q4:
            rel = rmse / rms if rms > 0 else (0.0 if rmse == 0 else float("inf"))
            q40 = q4_0_rmse(src)
            if rel > Q4_MAX_RELATIVE_RMSE:
                status = "FAIL"
            note = "RMSE/RMS %.4f; Q4_0 RMSE %.3g (ratio %s)" % (
                rel, q40, "%.3f" % (rmse / q40) if q40 > 0 else "-")
        if status != "ok":
            failures += 1
        rows.append((name, t.type_name, status, "%.3g" % max_abs, "%.3g" % rmse,
                     "%.3g" % rms, note))
    missing = [n for n in ckpt.entries if n not in seen]
    w = max(len(r[0]) for r in rows) if rows else 4
    print("%-*s  %-4s  %-6s  %10s  %10s  %10s  %s" % (w, "tensor", "type", "status", "max|err|",
                                                      "rmse", "rms(src)", "notes"), file=out)
    for r in rows:
        print("%-*s  %-4s  %-6s  %10s  %10s  %10s  %s" % ((w,) + r), file=out)
    if missing:
        print("FAIL: checkpoint tensors absent from the file (%d): %s" % (
            len(missing), ", ".join(missing)), file=out)
        failures += len(missing)
    return failures


def q8_recipe_mismatches(src, raw, rows, n):
    """Count q8 blocks whose bytes differ from the §7 writer recipe: d = f16(max|x|/127),
    q = round_half_even(x/d) clamped to [-127, 127] (q = 0 when d = 0). Informational."""
    blocks = (n + 31) // 32
    x = src.reshape(rows, n).astype(np.float32)
    if n % 32:
        x = np.concatenate([x, np.zeros((rows, blocks * 32 - n), np.float32)], axis=1)
    x = x.reshape(rows, blocks, 32)
    d = (np.max(np.abs(x), axis=-1, keepdims=True) / np.float32(127)).astype(np.float16)
    df = d.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(df > 0, np.rint(x / np.where(df > 0, df, 1)), 0)
    q = np.clip(q, -127, 127).astype(np.int8)
    enc = np.frombuffer(raw, np.uint8).reshape(rows, blocks, 34)
    mine = np.concatenate([d.view(np.uint8).reshape(rows, blocks, 2),
                           q.view(np.uint8)], axis=-1)
    return int(np.count_nonzero(np.any(mine != enc, axis=-1)))


# ---------------------------------------------------------------------------
# Command line

def print_summary(hf, out=sys.stdout):
    p = lambda *a: print(*a, file=out)
    p("file %s (%d bytes)" % (hf.path, hf.size))
    p("header:")
    p("  magic              HYMBAEDG")
    p("  version            %d" % hf.version)
    p("  byte_order_mark    0x%08X" % hf.byte_order_mark)
    for name, off in HEADER_FIELDS:
        v = getattr(hf, name)
        p("  %-18s %s" % (name, ("%016x" % v) if name.endswith("checksum") else v))
    p("  header_checksum    %016x" % hf.header_checksum)
    m = hf.metadata
    p("metadata: %d bytes, keys: %s" % (hf.metadata_length, ", ".join(m.keys())))
    p("config keys: %s" % ", ".join(sorted(m["config"].keys())))
    q = m.get("quantization")
    if isinstance(q, dict):
        p("quantization: %s" % json.dumps({k: v for k, v in q.items() if k != "matrices"},
                                          sort_keys=True))
    prov = m.get("provenance")
    if isinstance(prov, dict):
        p("provenance: converter %s, source %s, %d files" % (
            prov.get("converter"), prov.get("source"), len(prov.get("files") or [])))
    tok = m.get("tokenizer")
    if isinstance(tok, dict):
        p("tokenizer: %s, %d pieces, %d merges, %d added tokens" % (
            tok.get("model"), len(tok.get("vocab", [])), len(tok.get("merges", [])) // 2,
            len(tok.get("added_tokens", []))))
    else:
        p("tokenizer: none")
    if "meta_prefix" in m:
        p("meta_prefix: %s" % json.dumps(m["meta_prefix"]))
    p("tensors: %d" % len(hf.tensors))
    w = max([len(t.name) for t in hf.tensors] + [6])
    p("  %-*s  %-4s  %-14s  %10s  %10s  %6s  %s" % (w, "name", "type", "shape", "raw", "stored",
                                                    "chunks", "codecs / first offset"))
    totals = {}
    for t in hf.tensors:
        codecs = sorted({CODEC_NAMES[c.codec] for c in t.chunks})
        p("  %-*s  %-4s  %-14s  %10d  %10d  %6d  %s @%d" % (
            w, t.name, t.type_name, "x".join(map(str, t.shape)), t.raw_length, t.stored_bytes,
            len(t.chunks), "+".join(codecs), t.data_offset))
        tot = totals.setdefault(t.type_name, [0, 0, 0])
        tot[0] += t.element_count
        tot[1] += t.raw_length
        tot[2] += t.stored_bytes
    for k, (n, raw, st) in sorted(totals.items()):
        p("  total %-4s: %d elements, %d raw bytes, %d stored" % (k, n, raw, st))
    p("bits per weight: %.6f" % bits_per_weight(hf))


def bits_per_weight(hf):
    """§ "Bits per weight": 8 x the encoded (raw) bytes of the weight tensors / their elements;
    tensors named hymba.* are derived (the stored meta-token prefix), not weights."""
    weights = [t for t in hf.tensors if not t.name.startswith("hymba.")]
    elements = sum(t.element_count for t in weights)
    return sum(t.raw_length for t in weights) * 8 / max(1, elements)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Read, verify and compare .hymba model files "
                                             "(format version 1).")
    ap.add_argument("file")
    ap.add_argument("--verify", action="store_true",
                    help="check every checksum, decode every tensor, report conformance")
    ap.add_argument("--dump", metavar="NAME", help="print a tensor's first values")
    ap.add_argument("-n", "--count", type=int, default=16, help="values for --dump")
    ap.add_argument("--compare-safetensors", metavar="DIR",
                    help="compare every tensor with a Hugging Face safetensors checkpoint")
    ap.add_argument("--pure-xxh64", action="store_true",
                    help="use the pure-Python XXH64 even when the xxhash package is present")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary")
    args = ap.parse_args(argv)
    if args.pure_xxh64:
        use_pure_xxh64()
    try:
        hf = HymbaFile(args.file)
    except FormatError as e:
        print("%s: invalid .hymba file: %s" % (args.file, e), file=sys.stderr)
        return 1
    except OSError as e:
        print("%s: cannot read: %s" % (args.file, e.strerror or e), file=sys.stderr)
        return 1
    status = 0
    try:
        if not args.quiet and not args.dump:
            print_summary(hf)
        if args.verify:
            n = hf.verify_chunks()
            for t in hf.tensors:
                x = hf.read(t)
                if x.shape != tuple(t.shape) or x.dtype != np.float32:
                    raise FormatError("tensor '%s' decoded to %s %s" % (t.name, x.dtype, x.shape))
            findings = hf.conformance()
            print("verify: header, metadata and directory checksums ok; %d chunk checksums ok; "
                  "%d tensors decoded" % (n, len(hf.tensors)))
            for f in findings:
                print("verify: conformance: %s" % f)
            if findings:
                status = 1
            else:
                print("verify: conformance checks ok (padding, layout, metadata, tokenizer)")
        if args.dump:
            t = hf.tensor(args.dump)
            x = hf.read(t)
            flat = x.reshape(-1)
            print("%s: %s %s, %d elements, min %.6g max %.6g mean %.6g" % (
                t.name, t.type_name, "x".join(map(str, t.shape)), flat.size,
                float(flat.min()), float(flat.max()), float(flat.astype(np.float64).mean())))
            print(" ".join("%.8g" % v for v in flat[:args.count]))
        if args.compare_safetensors:
            ckpt = Safetensors(args.compare_safetensors)
            failures = compare(hf, ckpt)
            print("compare: %d tensors, %d failures" % (len(hf.tensors), failures))
            if failures:
                status = 1
    except FormatError as e:
        print("%s: invalid .hymba file: %s" % (args.file, e), file=sys.stderr)
        return 1
    except (KeyError, ValueError, OSError) as e:
        print("%s: %s" % (args.file, e.args[0] if e.args else e), file=sys.stderr)
        return 1
    finally:
        try:
            hf.close()
        except BufferError:  # numpy views of the mapping still alive; the OS unmaps at exit
            pass
    return status


if __name__ == "__main__":
    sys.exit(main())
