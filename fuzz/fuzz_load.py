"""Fuzz :func:`hashmatch.load` on arbitrary bytes and on mutated saved files (the seeds are
small saved FlatIndex, MIHIndex and HashList files), then search what loaded.

The first byte of an input picks ``mmap``, ``verify`` and whether the harness first repairs
the container's checksums (so that mutations reach the structure checks behind them); the
rest is the file. A hostile file must raise :class:`hashmatch.IndexFormatError` (or
``OSError``) or load into an object that searches; anything else is a bug.

    python fuzz/fuzz_load.py -max_total_time=20 fuzz/corpus/load
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

import hashmatch as hm

_PREAMBLE = struct.Struct("<8sII")  # magic, version, section count (hashmatch.io)
_ENTRY = struct.Struct("<24sQQII")  # name, offset, length, crc32, reserved

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import main, scratch  # noqa: E402


def repair(data: bytes) -> bytes:
    """``data`` with the section checksums and the header checksum made right, where the
    table can be read; else unchanged."""
    if len(data) < _PREAMBLE.size:
        return data
    _, _, count = _PREAMBLE.unpack_from(data)
    end = _PREAMBLE.size + count * _ENTRY.size
    if count > 64 or len(data) < end + 4:
        return data
    out = bytearray(data)
    for i in range(count):
        at = _PREAMBLE.size + i * _ENTRY.size
        name, offset, length, _, reserved = _ENTRY.unpack_from(out, at)
        if offset + length <= len(out):
            crc = zlib.crc32(out[offset : offset + length])
            _ENTRY.pack_into(out, at, name, offset, length, crc, reserved)
    struct.pack_into("<I", out, end, zlib.crc32(out[:end]))
    return bytes(out)


def check(data: bytes) -> None:
    """Load ``data[1:]`` with the options ``data[0]`` picks; search what loads."""
    if not data:
        return
    flags, body = data[0], data[1:]
    path = scratch("index.hm", repair(body) if flags & 4 else body)
    verify = not flags & 2
    try:
        obj = hm.load(path, mmap=bool(flags & 1), verify=verify)
    except (hm.IndexFormatError, OSError):
        return
    try:
        _search(obj)
    except hm.IndexFormatError:
        # documented: without verify, a damaged key or extras is reported when it is read;
        # with verify, everything an answer reads was checked at load
        if verify:
            raise


def _search(obj: object) -> None:
    """Search a loaded object with queries of its width: it must answer, not fail."""
    if isinstance(obj, hm.HashList):
        nbytes = obj.bits // 8
        queries = np.zeros((2, nbytes), np.uint8)
        queries[1] = 0xFF
        obj.match(queries)
        obj.search(queries, 2)
        for entry in obj.entries():
            assert entry.id >= 0
        return
    nbytes = obj.nbytes  # type: ignore[attr-defined]
    ids, codes = obj.contents()  # type: ignore[attr-defined]
    assert len(ids) == len(codes) == obj.ntotal  # type: ignore[attr-defined]
    queries = np.vstack([np.zeros((1, nbytes), np.uint8), codes[:3]])
    for max_distance in (0, 8 * nbytes // 4):  # answers may be wrong, with verify=False
        obj.range_search(queries, max_distance)  # type: ignore[attr-defined]
    obj.search(queries, 3)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(check)
