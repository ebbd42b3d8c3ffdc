"""Saving and loading indexes: a versioned, checksummed binary format, written atomically.

Format (version 1), all integers little-endian::

    offset 0   magic      8 bytes   b"HASHMTCH"
           8   version    u32       format version (1)
          12   count      u32       number of sections (at most 64)
          16   table      count x 48 bytes: name (24 bytes ASCII, NUL-padded), offset u64,
                          length u64, crc32 u32, reserved u32 (0)
           .   header crc u32       CRC-32 of bytes [0, here)
    sections, each starting on a 64-byte boundary (so they can be memory-mapped), in any order

Every index file has a ``meta`` section (UTF-8 JSON: kind, bits and the index's parameters)
plus ``ids`` (int64) and ``codes`` (uint8, n x bits/8). Loading checks the magic, version,
header checksum and every section's bounds *before* reading or allocating anything sized by the
file, then each section's checksum: a truncated, corrupted, foreign or hostile file raises
:class:`IndexFormatError` (:class:`ChecksumError` for a checksum mismatch), never a crash or a
partial index. Files are never modified in place: a save writes a temporary file in the same
directory, flushes it to disk and renames it over the target, so a crash leaves either the old
file or the new one, and readers of the old file are unaffected.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hashmatch.errors import ChecksumError, HashmatchError, IndexFormatError, InvalidType
from hashmatch.indexes import FlatIndex, MIHIndex

__all__ = ["FORMAT_VERSION", "load", "save"]

MAGIC = b"HASHMTCH"
FORMAT_VERSION = 1
_MAX_SECTIONS = 64
_ENTRY = struct.Struct("<24sQQII")
_PREAMBLE = struct.Struct("<8sII")
_ALIGN = 64
_KINDS: dict[str, type[FlatIndex] | type[MIHIndex]] = {"FlatIndex": FlatIndex, "MIHIndex": MIHIndex}

Index = FlatIndex | MIHIndex


def save(index: Index, path: str | os.PathLike[str]) -> None:
    """Write ``index`` to ``path`` atomically (temporary file, fsync, rename).

    Parameters
    ----------
    index : FlatIndex or MIHIndex
        The index to save: its hashes, ids and parameters.
    path : str or path-like
        Destination; an existing file there is replaced only once the new one is complete.

    Examples
    --------
    >>> import tempfile, os, hashmatch as hm
    >>> index = hm.FlatIndex(64)
    >>> _ = index.add(["00000000000000ff", "ffffffffffffffff"], ids=[7, 9])
    >>> path = os.path.join(tempfile.mkdtemp(), "list.hm")
    >>> hm.save(index, path)
    >>> hm.load(path).search("00000000000000ff", 1).ids.tolist()
    [[7]]
    """
    if not isinstance(index, (FlatIndex, MIHIndex)):
        raise InvalidType(f"index: expected a FlatIndex or MIHIndex, got {type(index).__name__}")
    ids, codes = index.contents()
    meta: dict[str, Any] = {"kind": type(index).__name__, "bits": index.bits}
    if isinstance(index, MIHIndex):
        meta["max_distance"] = index._max_distance
        meta["substrings"] = index._fixed_substrings or None
    sections = {
        "meta": json.dumps(meta, sort_keys=True).encode(),
        "ids": ids.astype("<i8", copy=False).tobytes(),
        "codes": codes.tobytes(),
    }
    _write_atomically(Path(path), sections)


def load(path: str | os.PathLike[str]) -> Index:
    """Read an index written by :func:`save`, verifying the whole file first.

    Raises
    ------
    IndexFormatError
        Not a hashmatch file, an unsupported version, a truncated file or inconsistent contents.
    ChecksumError
        A section or the header does not match its checksum (the file was corrupted).
    """
    data = Path(path).read_bytes()
    sections = _parse(data, str(path))
    meta = _meta(sections.get("meta"), str(path))
    kind = _KINDS[meta["kind"]]
    nbytes = meta["bits"] // 8
    ids = np.frombuffer(_require(sections, "ids", path), dtype="<i8")
    raw = _require(sections, "codes", path)
    if len(raw) != len(ids) * nbytes:
        raise IndexFormatError(
            f"{path}: section 'codes' holds {len(raw)} bytes, expected {len(ids)} x {nbytes}"
        )
    params = {k: v for k, v in meta.items() if k != "kind"}
    try:
        index = kind(**params)
        if len(ids):
            codes = np.frombuffer(raw, dtype=np.uint8).reshape(len(ids), nbytes)
            index.add(codes, ids.astype(np.int64))
    except HashmatchError as e:
        raise IndexFormatError(f"{path}: inconsistent contents: {e}") from None
    return index


def _write_atomically(path: Path, sections: dict[str, bytes]) -> None:
    table_size = _PREAMBLE.size + len(sections) * _ENTRY.size + 4
    offset = -(-table_size // _ALIGN) * _ALIGN
    entries, layout = [], []
    for name, payload in sections.items():
        entries.append(_ENTRY.pack(name.encode(), offset, len(payload), zlib.crc32(payload), 0))
        layout.append((offset, payload))
        offset = -(-(offset + len(payload)) // _ALIGN) * _ALIGN
    header = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(sections)) + b"".join(entries)
    header += struct.pack("<I", zlib.crc32(header))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            for start, payload in layout:
                f.seek(start)
                f.write(payload)
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _parse(data: bytes, where: str) -> dict[str, memoryview]:
    if len(data) < _PREAMBLE.size or data[:8] != MAGIC:
        raise IndexFormatError(
            f"{where}: not a hashmatch index file (magic={data[:8]!r}, expected {MAGIC!r})"
        )
    _, version, count = _PREAMBLE.unpack_from(data)
    if version != FORMAT_VERSION:
        newer = (
            "a newer hashmatch; upgrade to read it" if version > FORMAT_VERSION else "an unknown"
        )
        raise IndexFormatError(
            f"{where}: format version {version} (written by {newer}); this hashmatch reads "
            f"version {FORMAT_VERSION}"
        )
    if not 0 < count <= _MAX_SECTIONS:
        raise IndexFormatError(
            f"{where}: header claims {count} sections, expected 1..{_MAX_SECTIONS}"
        )
    end = _PREAMBLE.size + count * _ENTRY.size
    if len(data) < end + 4:
        raise IndexFormatError(f"{where}: truncated header ({len(data)} bytes)")
    (stored,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(data[:end]) != stored:
        raise ChecksumError(f"{where}: header checksum mismatch (the file is corrupted)")
    view = memoryview(data)
    sections: dict[str, memoryview] = {}
    spans = []
    for i in range(count):
        raw_name, offset, length, crc, reserved = _ENTRY.unpack_from(
            data, _PREAMBLE.size + i * _ENTRY.size
        )
        name = raw_name.rstrip(b"\0").decode("ascii", errors="replace")
        if reserved != 0 or name in sections:
            raise IndexFormatError(f"{where}: malformed entry for section {name!r}")
        if offset < end + 4 or offset + length > len(data):
            raise IndexFormatError(
                f"{where}: section {name!r} spans bytes {offset}..{offset + length}, outside the "
                f"file's {len(data)} bytes (truncated or damaged)"
            )
        if zlib.crc32(view[offset : offset + length]) != crc:
            raise ChecksumError(
                f"{where}: section {name!r} checksum mismatch (the file is corrupted)"
            )
        sections[name] = view[offset : offset + length]
        spans.append((offset, offset + length))
    # Every other byte (alignment padding) must be zero, so that no byte escapes a check.
    position = end + 4
    for start, stop in sorted(spans):
        if start < position:
            raise IndexFormatError(f"{where}: overlapping sections")
        if any(view[position:start]):
            raise ChecksumError(
                f"{where}: non-zero padding at byte {position} (the file is corrupted)"
            )
        position = stop
    if len(data) != -(-position // _ALIGN) * _ALIGN:  # the writer pads to a whole block
        raise IndexFormatError(
            f"{where}: {len(data)} bytes, expected the last section padded to {_ALIGN}"
        )
    if any(view[position:]):
        raise ChecksumError(
            f"{where}: non-zero padding after the last section (the file is corrupted)"
        )
    return sections


def _require(sections: dict[str, memoryview], name: str, where: object) -> memoryview:
    if name not in sections:
        raise IndexFormatError(f"{where}: missing section {name!r}")
    section = sections[name]
    if name == "ids" and len(section) % 8:
        raise IndexFormatError(
            f"{where}: section 'ids' is {len(section)} bytes, not a multiple of 8"
        )
    return section


def _meta(section: memoryview | None, where: str) -> dict[str, Any]:
    if section is None:
        raise IndexFormatError(f"{where}: missing section 'meta'")
    try:
        meta = json.loads(bytes(section).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"{where}: unreadable 'meta' section ({e})") from None
    if (
        not isinstance(meta, dict)
        or meta.get("kind") not in _KINDS
        or not isinstance(meta.get("bits"), int)
    ):
        raise IndexFormatError(f"{where}: 'meta' does not describe a known index: {meta!r}")
    allowed = {"kind", "bits", "max_distance", "substrings"}
    if set(meta) - allowed:
        raise IndexFormatError(f"{where}: 'meta' has unknown fields {sorted(set(meta) - allowed)}")
    return meta
