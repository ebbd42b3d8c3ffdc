"""What the commands share: reading hash files (through :mod:`hashmatch.formats`), writing
outputs (through :func:`hashmatch.files.atomic_text`), the search index and its progress bars,
and the options every search command takes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np
import numpy.typing as npt

import hashmatch as hm
from hashmatch._validation import check_bits, check_max_distance
from hashmatch.files import atomic_text
from hashmatch.formats import HashReader, HashRecords
from hashmatch.hashtypes import default_max_distance
from hashmatch.progress import bar

Codes = npt.NDArray[np.uint8]
Index = hm.FlatIndex | hm.MIHIndex

READ_CHUNK = 2**62  # entries per chunk read: one chunk, no second copy of the whole file
ADD_CHUNK = 100_000  # hashes per FlatIndex.add call
COMPARISONS_PER_CALL = 500_000_000  # per search call: keeps bars moving and Ctrl-C prompt
MAX_REASONS = 5  # skipped rows quoted on stderr
DEFAULT_RADIUS = "31 for 256-bit PDQ, 10 for 64-bit pHash, else bits / 8, as the library"
FORMATS = ("auto", "hex", "csv", "tsv")

# ------------------------------------------------------------------------------ arguments


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer ``>= low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


def add_common(parser: argparse.ArgumentParser, default: str = DEFAULT_RADIUS) -> None:
    """Options shared by the search commands; ``default`` describes --max-distance's."""
    parser.add_argument(
        "--max-distance",
        type=int,
        default=None,
        metavar="D",
        help=f"report pairs at Hamming distance <= D (inclusive; default: {default})",
    )
    parser.add_argument(
        "--threads",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="search threads (default: every available core)",
    )
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars (they go to stderr, and only when it is a terminal)",
    )


def add_input_options(parser: argparse.ArgumentParser, bits_help: str) -> None:
    """``--format``, ``--bits`` and ``--skip-invalid``: how the input files are read."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format (default auto: by extension, else by the first data line)",
    )
    parser.add_argument("--bits", type=int, default=None, help=bits_help)
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip bad rows (and report them on stderr) instead of stopping at the first",
    )


def bits_option(bits: int | None) -> int | None:
    """``--bits``, checked."""
    return None if bits is None else check_bits(bits, name="--bits")


def radius(max_distance: int | None, bits: int) -> int:
    """``--max-distance``, checked against the width; by default the library's customary radius
    for the width (:func:`hashmatch.hashtypes.default_max_distance`: 31 for 256-bit PDQ, 10
    for 64-bit pHash)."""
    value = default_max_distance(bits) if max_distance is None else max_distance
    return check_max_distance(value, bits, name="--max-distance")


def library_progress(requested: bool) -> bool:
    """Whether library calls show progress bars: asked for and stderr is a terminal (the
    rule :func:`hashmatch.progress.bar` applies to the command's own bars)."""
    return requested and sys.stderr.isatty()


# ------------------------------------------------------------------------------- reading


@dataclass
class HashFile:
    """Every entry of one input file, and how it was read."""

    path: str
    records: HashRecords
    format: str
    columns: dict[str, str]
    skipped: list[tuple[int, str]]

    @property
    def codes(self) -> Codes:
        return self.records.codes


def read_hash_file(
    path: str,
    *,
    format: str = "auto",
    bits: int | None = None,
    bits_from: str | None = None,
    skip_invalid: bool = False,
    progress: bool = False,
    text_ids: bool = False,
) -> HashFile:
    """Read every entry of ``path`` (``-``: standard input) with :mod:`hashmatch.formats`.

    Errors speak of the command's options: ``--bits`` where the library says ``bits=``.
    ``bits_from`` says where a given width comes from (default ``from --bits N``).
    """
    reader = HashReader(
        path,
        format=format,
        bits=bits,
        chunk_size=READ_CHUNK,
        skip_invalid=skip_invalid,
        progress=progress,
        text_ids=text_ids,
        bits_option="--bits",
        bits_from=bits_from or f"from --bits {bits}",
    )
    with reader:
        chunks = list(reader)
    if len(chunks) == 1:
        records = chunks[0]
    elif chunks:
        records = HashRecords.concat(chunks)
    else:
        records = HashRecords(np.empty((0, (reader.bits or 0) // 8), np.uint8))
    return HashFile(reader.path, records, reader.format, reader.columns, reader.skipped)


def report_skipped(skipped: list[tuple[int, str]]) -> None:
    """Tell stderr how many rows ``--skip-invalid`` skipped, and why (the first few)."""
    if not skipped:
        return
    print(f"hashmatch: skipped {len(skipped):,} invalid rows:", file=sys.stderr)
    for _, reason in skipped[:MAX_REASONS]:
        print(f"  {reason}", file=sys.stderr)
    if len(skipped) > MAX_REASONS:
        print(f"  ... and {len(skipped) - MAX_REASONS:,} more", file=sys.stderr)


# ------------------------------------------------------------------------------- writing


def maybe_output(path: str | None) -> contextlib.AbstractContextManager[IO[str] | None]:
    """:func:`hashmatch.files.atomic_text` for a path (``-``: stdout), nothing for None: an
    error or Ctrl-C never leaves a partial file."""
    return atomic_text(path) if path is not None else contextlib.nullcontext(None)


# -------------------------------------------------------------------------- index, search


def queries_per_call(ntotal: int) -> int:
    """Queries per search call: about COMPARISONS_PER_CALL comparisons (500 for 1M hashes)."""
    return max(16, min(100_000, COMPARISONS_PER_CALL // max(ntotal, 1)))


def build_index(
    codes: Codes, max_distance: int, progress: bool, *, kind: str | None = None
) -> tuple[Index, hm.IndexPlan]:
    """The index the cost model prefers for range queries at ``max_distance`` (or ``kind``),
    holding ``codes``; the id of a hash is its row. A FlatIndex is filled in chunks so the
    bar moves; an MIHIndex in one call, so its tables are built once."""
    bits = codes.shape[1] * 8
    plan = hm.plan_index(len(codes), bits, max_distance=max_distance)
    index: Index
    if (kind or plan.kind) == "MIHIndex":
        index, chunk_size = hm.MIHIndex(bits, max_distance=max_distance), max(1, len(codes))
    else:
        index, chunk_size = hm.FlatIndex(bits), ADD_CHUNK
    with bar(len(codes), "build", "hash", enabled=progress) as building:
        for start in range(0, len(codes), chunk_size):
            chunk = codes[start : start + chunk_size]
            index.add(chunk)
            building.update(len(chunk))
    return index, plan


def describe_index(index: Index, plan: hm.IndexPlan) -> str:
    """Which index, and why, in one line."""
    name = type(index).__name__
    detail = f", {index.substrings} substrings" if isinstance(index, hm.MIHIndex) else ""
    return (
        f"{name}{detail} (cost model: {plan.mih_ms:.3f} ms per query by multi-index hashing,"
        f" {plan.flat_ms:.3f} ms by a batched scan)"
    )


def range_batches(
    index: Index, queries: Codes, max_distance: int, threads: int, progress: bool
) -> Iterator[tuple[int, hm.RangeSearchResult]]:
    """Yield ``(first query row, result)`` of range searches over consecutive query batches."""
    step = queries_per_call(index.ntotal)
    with bar(len(queries), "search", "query", enabled=progress) as searching:
        for start in range(0, len(queries), step):
            batch = queries[start : start + step]
            yield start, index.range_search(batch, max_distance, threads=threads)
            searching.update(len(batch))


def result_rows(start: int, result: hm.RangeSearchResult) -> npt.NDArray[np.int64]:
    """The query row of every result of a batch that starts at query row ``start``."""
    counts = np.diff(result.lims)
    return start + np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def hex_of(code: Codes) -> str:
    """Lowercase hex text of one packed hash."""
    return bytes(code).hex()


def duration(value: float) -> str:
    """A duration: ``12.3 ms`` below a second, else ``4.56 s``."""
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def check_paths(
    inputs: Sequence[tuple[str, str]], outputs: Sequence[tuple[str, str | None]]
) -> None:
    """Refuse, before any work: standard input (``-``) given as two inputs, two outputs to one
    place, and an output over an input (paths compared after resolving links)."""
    readers = [name for name, path in inputs if path == "-"]
    if len(readers) > 1:
        raise hm.InvalidArgument(
            f"{' and '.join(readers)}: standard input can be read once; give files for the others"
        )

    def same(a: str, b: str) -> bool:
        return a == b if "-" in (a, b) else os.path.realpath(a) == os.path.realpath(b)

    given = [(option, path) for option, path in outputs if path is not None]
    for i, (option, path) in enumerate(given):
        for other, other_path in given[i + 1 :]:
            if same(path, other_path):
                where = "standard output" if path == "-" else repr(path)
                raise hm.InvalidArgument(
                    f"{option} and {other}: expected two destinations, got {where}"
                )
        for _, source in inputs:
            if "-" not in (path, source) and same(path, source):
                raise hm.InvalidArgument(f"{option}: {path!r} is the input file; choose another")
