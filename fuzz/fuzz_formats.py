"""Fuzz :func:`hashmatch.formats.read_hashes` on arbitrary bytes, every format, with and
without gzip; what it reads must write back and read back the same.

The first byte of an input picks the options, the rest is the file. Accepted: hashmatch's
errors (:class:`hashmatch.HashmatchError`) and ``OSError``; anything else is a bug.

    python fuzz/fuzz_formats.py -max_total_time=20 fuzz/corpus/formats
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import Any

from hashmatch.formats import HashRecords, read_hashes, write_hashes

import hashmatch as hm

NAMES = ("list.csv", "list.tsv", "list.txt", "list.hex", "list", "list.csv")
FORMATS = ("auto", "auto", "hex", "csv", "tsv", "auto")
COLUMNS = ("ids", "keys", "labels", "sources", "qualities", "extras")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import main, scratch  # noqa: E402


def check(data: bytes) -> None:
    """Read ``data[1:]`` as a hash-list file with the options ``data[0]`` picks."""
    if not data:
        return
    flags, body = data[0], data[1:]
    compress = bool(flags & 1)
    skip_invalid = bool(flags & 2)
    small = bool(flags & 4)  # small limits and chunks: the limits' and chunks' edges
    pick = (flags >> 3) % 6
    name = NAMES[pick] + (".gz" if compress else "")
    path = scratch(name, gzip.compress(body, 1, mtime=0) if compress else body)
    options: dict[str, Any] = (
        {"max_line_chars": 200, "max_columns": 8, "chunk_size": 3} if small else {}
    )
    bits = 64 if flags & 64 else None
    try:
        reader = read_hashes(
            path, format=FORMATS[pick], bits=bits, skip_invalid=skip_invalid, **options
        )
        chunks = list(reader)
    except (hm.HashmatchError, OSError):
        return
    lines = [int(n) for chunk in chunks for n in _lines(chunk)]
    assert lines == sorted(set(lines)), "lines must increase"
    assert reader.rows == len(lines)
    assert all(0 < len(chunk) <= reader.chunk_size for chunk in chunks)
    skipped = [line for line, _ in reader.skipped]
    assert skipped == sorted(set(skipped)) and not set(skipped) & set(lines)
    if chunks and flags & 128:
        _round_trip(HashRecords.concat(chunks), reader.format)


def _lines(chunk: HashRecords) -> Any:
    assert chunk.lines is not None, "read records have lines"
    return chunk.lines


def _round_trip(records: HashRecords, fmt: str) -> None:
    """What was read writes (or is refused with a hashmatch error) and reads back equal."""
    out = scratch(f"out.{'txt' if fmt == 'hex' else fmt}", b"")
    try:
        write_hashes(out, records)
    except hm.HashmatchError:
        return
    back = HashRecords.concat(read_hashes(out, bits=8 * records.codes.shape[1]))
    assert back.codes.tobytes() == records.codes.tobytes()
    if fmt == "hex":
        return
    for column in COLUMNS:
        want, got = getattr(records, column), getattr(back, column)
        if hasattr(want, "tolist"):
            want, got = want.tolist(), got.tolist()
        assert got == want, f"{column}: wrote {want!r}, read back {got!r}"


if __name__ == "__main__":
    main(check)
