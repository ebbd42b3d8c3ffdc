"""The ``hashmatch`` command: ``demo``, ``match``, ``dedup`` and ``info``.

``hashmatch demo`` searches a synthetic PDQ-like corpus with planted near-duplicates and checks
that every one is found; ``hashmatch match LIST QUERIES`` writes every (query, list) pair of
hashes within a Hamming distance as CSV; ``hashmatch dedup FILE`` finds every pair of
near-duplicate hashes in one file and groups them into clusters (:func:`hashmatch.find_duplicates`,
:func:`hashmatch.cluster`); ``hashmatch info`` reports the kernel in use.

Exit codes: 0 success, 1 a demo check failed, 2 bad arguments or input, 130 interrupted,
141 stdout closed early (e.g. ``hashmatch match ... | head``).
"""

from __future__ import annotations

import argparse
import array
import contextlib
import csv
import io
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TextIO, cast

import numpy as np
import numpy.typing as npt
from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

import hashmatch as hm
from hashmatch._validation import as_codes, check_bits, check_max_distance, check_threads
from hashmatch.files import atomic_text
from hashmatch.formats import HashRecords, read_hashes
from hashmatch.indexes import default_max_distance

__all__ = ["main"]

Codes = npt.NDArray[np.uint8]

PARSE_CHUNK = 1_000_000  # lines parsed per vectorised hex conversion
ADD_CHUNK = 100_000  # hashes per FlatIndex.add call
COMPARISONS_PER_CALL = 500_000_000  # per search call: keeps bars moving and Ctrl-C prompt
KNN_QUERIES = 1_000
KNN_K = 10
MAX_REASONS = 5  # skipped rows quoted on stderr
CSV_HEADER = ("query_id", "list_id", "distance", "query_hash", "list_hash")
PAIRS_HEADER = ("id_a", "id_b", "distance")
CLUSTERS_HEADER = ("id", "cluster", "size", "representative")
WRITE_CHUNK = 100_000  # CSV rows formatted at a time by dedup
SUMMARY_PAIRS = 5  # pairs quoted by dedup's summary
DEMO_DEDUP = 100_000  # most clustered hashes the demo deduplicates
# A first line whose first field is a column name such as hash, pdq_hash or signal_type. Such a
# word has letters beyond f, so it can never be a valid hex hash that would be lost.
_HEADER = re.compile(r"[a-z_ ]*(?:hash|signal|pdq)[a-z_ ]*")


class _Bar(Protocol):
    """The part of a tqdm progress bar used here."""

    def update(self, n: int = 1) -> bool | None: ...

    def __enter__(self) -> _Bar: ...

    def __exit__(self, *exc: object) -> None: ...


def _bar(total: int | None, desc: str, unit: str, progress: bool) -> _Bar:
    """A progress bar on stderr; off with ``--no-progress`` or when stderr is not a terminal."""
    bar: _Bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=None if progress else True,
        leave=False,
        dynamic_ncols=True,
    )
    return bar


def _queries_per_call(ntotal: int) -> int:
    """Queries per search call: about COMPARISONS_PER_CALL comparisons (500 for 1M hashes)."""
    return max(16, min(100_000, COMPARISONS_PER_CALL // max(ntotal, 1)))


Index = hm.FlatIndex | hm.MIHIndex


def _build_index(
    codes: Codes, radius: int, progress: bool, *, kind: str | None = None
) -> tuple[Index, hm.IndexPlan]:
    """The index the cost model prefers for range queries at ``radius`` (or ``kind``), holding
    ``codes``; the id of a hash is its row. A FlatIndex is filled in chunks so the bar moves;
    an MIHIndex in one call, so its tables are built once."""
    bits = codes.shape[1] * 8
    plan = hm.plan_index(len(codes), bits, max_distance=radius)
    index: Index
    if (kind or plan.kind) == "MIHIndex":
        index, chunk_size = hm.MIHIndex(bits, max_distance=radius), max(1, len(codes))
    else:
        index, chunk_size = hm.FlatIndex(bits), ADD_CHUNK
    with _bar(len(codes), "build", "hash", progress) as bar:
        for start in range(0, len(codes), chunk_size):
            chunk = codes[start : start + chunk_size]
            index.add(chunk)
            bar.update(len(chunk))
    return index, plan


def _describe_index(index: Index, plan: hm.IndexPlan) -> str:
    """Which index, and why, in one line."""
    name = type(index).__name__
    detail = f", {index.substrings} substrings" if isinstance(index, hm.MIHIndex) else ""
    return (
        f"{name}{detail} (cost model: {plan.mih_ms:.3f} ms per query by multi-index hashing,"
        f" {plan.flat_ms:.3f} ms by a batched scan)"
    )


def _range_batches(
    index: Index, queries: Codes, radius: int, threads: int, progress: bool
) -> Iterator[tuple[int, hm.RangeSearchResult]]:
    """Yield ``(first query row, result)`` of range searches over consecutive query batches."""
    step = _queries_per_call(index.ntotal)
    with _bar(len(queries), "search", "query", progress) as bar:
        for start in range(0, len(queries), step):
            batch = queries[start : start + step]
            yield start, index.range_search(batch, radius, threads=threads)
            bar.update(len(batch))


def _result_rows(start: int, result: hm.RangeSearchResult) -> npt.NDArray[np.int64]:
    """The query row of every result of a batch that starts at query row ``start``."""
    counts = np.diff(result.lims)
    return start + np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def _hex(code: Codes) -> str:
    """Lowercase hex text of one packed hash."""
    return bytes(code).hex()


def _count(value: float) -> str:
    """A number with an SI prefix, e.g. ``7.52 G``."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.2f} {prefix}"
    return f"{value:.0f}"


def _radius(max_distance: int | None, bits: int) -> int:
    """``--max-distance``, checked against the width; by default the library's customary radius
    for the width (:func:`hashmatch.indexes.default_max_distance`: 31 for 256-bit PDQ, 10 for
    64-bit pHash), the same as ``hashmatch dedup`` and ``hm.HashList``.
    """
    value = default_max_distance(bits) if max_distance is None else max_distance
    return check_max_distance(value, bits, name="--max-distance")


def _percent(part: int, whole: int) -> str:
    """``part/whole`` as a percentage, or ``n/a`` when ``whole`` is zero."""
    return f"{100 * part / whole:.2f}%" if whole else "n/a"


# ---------------------------------------------------------------------------------------- demo


@dataclass
class _DemoTally:
    """Running totals of the demo's range search, kept per batch so results are not stored."""

    planted: int  # planted queries
    matches: int = 0
    planted_found: int = 0
    unmatched_fresh: int = 0
    unmatched_planted: int = 0
    examples: list[tuple[int, int, int]] = field(default_factory=list)  # query, db id, distance

    def add(
        self, start: int, result: hm.RangeSearchResult, truth: hm.datasets.PlantedQueries
    ) -> None:
        """Count a batch of results whose first query is row ``start``."""
        rows = _result_rows(start, result)
        found = (result.ids == truth.source[rows]) & (result.distances == truth.distance[rows])
        self.matches += len(result.ids)
        self.planted_found += int(found.sum())
        empty = start + np.flatnonzero(np.diff(result.lims) == 0)
        planted_empty = int((truth.source[empty] >= 0).sum())
        self.unmatched_planted += planted_empty
        self.unmatched_fresh += len(empty) - planted_empty
        for i in np.flatnonzero(found)[: 3 - len(self.examples)].tolist():
            self.examples.append((int(rows[i]), int(result.ids[i]), int(result.distances[i])))


@dataclass
class _Knn:
    """Outcome of the demo's exact kNN pass."""

    queries: int
    seconds: float
    planted: int
    ok: int  # planted queries whose nearest neighbour is at most the planted distance


def _demo_knn(index: Index, truth: hm.datasets.PlantedQueries, threads: int) -> _Knn:
    """Exact kNN on the first queries; an exact search never misses the planted source."""
    m = min(KNN_QUERIES, len(truth.queries))
    t0 = time.perf_counter()
    distances, _ = index.search(truth.queries[:m], KNN_K, threads=threads)
    seconds = time.perf_counter() - t0
    planted = truth.source[:m] >= 0
    ok = int((distances[planted, 0] <= truth.distance[:m][planted]).sum())
    return _Knn(m, seconds, int(planted.sum()), ok)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Run ``hashmatch demo``: generate, index, search, check recall, report."""
    bits = check_bits(args.bits, name="--bits")
    radius = _radius(args.max_distance, bits)
    threads = check_threads(args.threads)
    t0 = time.perf_counter()
    db = hm.datasets.random_codes(args.n, bits, seed=args.seed)
    truth = hm.datasets.planted_queries(
        db, args.queries, max_distance=radius, match_fraction=0.5, seed=args.seed + 1
    )
    t1 = time.perf_counter()
    index, plan = _build_index(db, radius, args.progress)
    t2 = time.perf_counter()
    tally = _DemoTally(planted=int((truth.source >= 0).sum()))
    for start, result in _range_batches(index, truth.queries, radius, threads, args.progress):
        tally.add(start, result, truth)
    t3 = time.perf_counter()
    # kNN among random hashes: the neighbours of fresh queries are far, where a scan is best.
    flat = (
        index
        if isinstance(index, hm.FlatIndex)
        else _build_index(db, radius, False, kind="FlatIndex")[0]
    )
    knn = _demo_knn(flat, truth, threads)
    timings = (t1 - t0, t2 - t1, t3 - t2)
    passed = tally.planted_found == tally.planted and knn.ok == knn.planted
    report = _demo_report(db, truth, radius, threads, timings, tally, knn, passed)
    report.insert(4, f"index       {_describe_index(index, plan)}")
    report.insert(report.index("examples    (planted pairs found)"), _demo_dedup(args, radius))
    print("\n".join(report))
    return 0 if passed else 1


def _demo_dedup(args: argparse.Namespace, radius: int) -> str:
    """One report line: ``hashmatch dedup``'s join and clustering on synthetic re-uploads."""
    n = min(args.n, DEMO_DEDUP)
    codes = hm.datasets.clustered_codes(n, args.bits, seed=args.seed + 2)
    t0 = time.perf_counter()
    pairs = hm.find_duplicates(
        codes, radius, threads=args.threads, progress=_progress(args.progress)
    )
    clusters = hm.cluster(pairs, threads=args.threads)
    seconds = time.perf_counter() - t0
    stats = _DedupStats.of(clusters)
    return (
        f"dedup       {n:,} hashes, 30% near-duplicate copies: {stats.pairs:,} pairs,"
        f" {stats.with_duplicates:,} clusters with duplicates (largest {stats.largest})"
        f" in {_seconds(seconds)} ({pairs.plan.method})"
    )


def _demo_report(
    db: Codes,
    truth: hm.datasets.PlantedQueries,
    radius: int,
    threads: int,
    timings: tuple[float, float, float],
    tally: _DemoTally,
    knn: _Knn,
    passed: bool,
) -> list[str]:
    """The demo report, one string per line."""
    n, nq, bits, planted = len(db), len(truth.queries), db.shape[1] * 8, tally.planted
    t_gen, t_build, t_search = (max(t, 1e-9) for t in timings)  # no division by zero
    features = hm.cpu_features()
    flags = " ".join(k for k in ("popcnt", "avx2", "avx512_vpopcntdq", "neon") if features.get(k))
    lines = [
        f"hashmatch {hm.__version__} demo: exact range search, distance <= {radius}",
        f"kernel      {features['kernel']} (CPU: {flags or 'no popcount ISA'}), {threads} threads",
        f"corpus      {n:,} random {bits}-bit hashes ({db.nbytes / 2**20:.1f} MiB)",
        f"queries     {nq:,}: {planted:,} planted at distance 0..{radius}, {nq - planted:,} fresh",
        f"generate    {t_gen:.2f} s",
        f"build       {t_build:.2f} s",
        f"search      {t_search:.2f} s (range_search, {_queries_per_call(n):,} queries per call)",
        f"throughput  {nq / t_search:,.0f} queries/s,"
        f" {_count(n * nq / t_search)} hash comparisons/s equivalent",
        f"matches     {tally.matches:,} ({tally.planted_found:,} planted,"
        f" {tally.matches - tally.planted_found:,} other)",
        f"recall      {_percent(tally.planted_found, planted)}"
        f" ({tally.planted_found:,}/{planted:,} planted pairs found at their exact distance)",
        f"no match    {tally.unmatched_fresh + tally.unmatched_planted:,} queries"
        f" ({tally.unmatched_fresh:,} fresh, {tally.unmatched_planted:,} planted)",
        f"{f'kNN k={KNN_K}':<11} {knn.queries:,} queries in {knn.seconds:.2f} s"
        f" ({knn.queries / max(knn.seconds, 1e-9):,.0f} queries/s, FlatIndex);"
        f" nearest <= planted distance {knn.ok:,}/{knn.planted:,}",
        "examples    (planted pairs found)",
    ]
    for q, i, d in tally.examples:
        lines.append(f"  query {q:<9,} {_hex(truth.queries[q])}")
        lines.append(f"  db {i:<12,} {_hex(db[i])}  distance {d}")
    lines.append(f"result      {'PASS' if passed else 'FAIL'}")
    return lines


# --------------------------------------------------------------------------------------- match


@dataclass
class _Quarantine:
    """Bad input rows: raised at once, or with ``--skip-invalid`` counted and skipped."""

    skip: bool
    count: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, error: hm.HashmatchError) -> None:
        """Raise ``error``, or record it when skipping bad rows."""
        if not self.skip:
            raise error
        self.count += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(str(error))


@dataclass
class _Chunk:
    """Data rows as parallel lists: 1-based line numbers, hash texts, ids (None: none given)."""

    lines: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)

    def select(self, rows: list[int]) -> _Chunk:
        """The given rows, in the given order."""
        return _Chunk(
            [self.lines[i] for i in rows],
            [self.texts[i] for i in rows],
            [self.ids[i] for i in rows],
        )


@dataclass
class _HashFile:
    """Valid hashes of a text file in file order, with their line numbers and ids."""

    codes: Codes
    lines: npt.NDArray[np.int64]
    ids: list[str | None]

    def id(self, row: int) -> str:
        """The id of ``row``: the one given in the file, else its line number."""
        given = self.ids[row]
        return str(int(self.lines[row])) if given is None else given


class _HashFileReader:
    """Stream a file of ``hex`` or ``hex,id`` lines, parsing the hex in vectorised chunks.

    Parameters
    ----------
    path : str
        The file; also the prefix (``path:line``) of error messages.
    nbytes : int or None
        Width of every hash; None takes it from the first valid hash.
    quarantine : _Quarantine
        Where bad rows go.
    """

    def __init__(self, path: str, nbytes: int | None, quarantine: _Quarantine) -> None:
        self.path = path
        self.nbytes = nbytes
        self.quarantine = quarantine
        self._codes: list[Codes] = []
        self._lines = array.array("q")
        self._ids: list[str | None] = []

    def read(self, progress: bool) -> _HashFile:
        """Read the whole file."""
        chunk = _Chunk()
        for number, text in self._data_lines(progress):
            hash_text, _, given = text.partition(",")
            if "," in given:
                self._parse(chunk)  # the rows before first: errors come in file order
                chunk = _Chunk()
                self.quarantine.reject(
                    hm.HashFormatError(
                        f"{self.path}:{number}: expected 'hash' or 'hash,id', got"
                        f" {text.count(',') + 1} comma-separated fields"
                    )
                )
                continue
            chunk.lines.append(number)
            chunk.texts.append(hash_text.rstrip())
            chunk.ids.append(given.strip() or None)
            if len(chunk.lines) == PARSE_CHUNK:
                self._parse(chunk)
                chunk = _Chunk()
        self._parse(chunk)
        if self.nbytes is None:
            raise hm.HashFormatError(
                f"{self.path}: no valid hash found to take the hash width from; pass --bits"
            )
        codes = np.concatenate(self._codes) if self._codes else np.empty((0, self.nbytes), np.uint8)
        return _HashFile(codes, np.frombuffer(self._lines, dtype=np.int64), self._ids)

    def _data_lines(self, progress: bool) -> Iterator[tuple[int, str]]:
        """Stripped lines with their numbers, but blank, comment (``#``) and header lines."""
        first, done = True, 0
        with (
            open(self.path, "rb") as raw,
            io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace") as file,
            _bar(os.fstat(raw.fileno()).st_size, self.path, "B", progress) as bar,
        ):
            for number, line in enumerate(file, 1):
                if number % 65_536 == 0:  # cheaper than a bar update per line
                    bar.update(raw.tell() - done)
                    done = raw.tell()
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                if first and _is_header(text):
                    continue
                first = False
                yield number, text

    def _parse(self, chunk: _Chunk) -> None:
        """Convert a chunk in one call; if it has bad rows, find and reject them one by one."""
        if self.nbytes is None:
            chunk = self._infer_width(chunk)
        nbytes = self.nbytes
        if nbytes is None:  # no valid hash yet
            return
        try:
            codes, _ = as_codes(chunk.texts, nbytes=nbytes)
        except hm.HashmatchError:
            pattern = re.compile(f"[0-9a-fA-F]{{{2 * nbytes}}}")  # fast pre-check of each row
            rows = zip(chunk.lines, chunk.texts, strict=True)
            chunk = chunk.select(
                [i for i, (n, t) in enumerate(rows) if pattern.fullmatch(t) or self._valid(n, t)]
            )
            codes, _ = as_codes(chunk.texts, nbytes=nbytes)
        self._codes.append(codes)
        self._lines.extend(chunk.lines)
        self._ids.extend(chunk.ids)

    def _valid(self, number: int, text: str) -> bool:
        """Check one hash, rejecting it with hashmatch's message prefixed by ``path:line``."""
        try:
            as_codes(text, name=f"{self.path}:{number}", nbytes=self.nbytes)
        except hm.HashmatchError as error:
            self.quarantine.reject(error)
            return False
        return True

    def _infer_width(self, chunk: _Chunk) -> _Chunk:
        """Take the width from the first valid hash; return the rows from that one on."""
        for i, (number, text) in enumerate(zip(chunk.lines, chunk.texts, strict=True)):
            if self._valid(number, text):
                self.nbytes = len(text) // 2
                return chunk.select(list(range(i, len(chunk.lines))))
        return _Chunk()


def _is_header(text: str) -> bool:
    """Whether a first data line is a header such as ``hash,id`` or ``signal_type,signal``."""
    return _HEADER.fullmatch(text.partition(",")[0].strip().strip("\"'").lower()) is not None


@contextlib.contextmanager
def _output(path: str) -> Iterator[TextIO]:
    """Open ``path`` (``-``: stdout) for writing text, atomically (see formats' writer): an
    error or Ctrl-C never leaves a partial file there."""
    with atomic_text(path) as file:
        yield file


def _match_rows(
    start: int, result: hm.RangeSearchResult, queries: _HashFile, hashes: _HashFile
) -> list[tuple[str, str, int, str, str]]:
    """The CSV rows of one batch of results whose first query is row ``start``."""
    rows = _result_rows(start, result).tolist()
    triples = zip(rows, result.ids.tolist(), result.distances.tolist(), strict=True)
    return [
        (queries.id(q), hashes.id(i), d, _hex(queries.codes[q]), _hex(hashes.codes[i]))
        for q, i, d in triples
    ]


def _report_skipped(quarantine: _Quarantine) -> None:
    """Tell stderr how many rows ``--skip-invalid`` skipped, and why (the first few)."""
    if not quarantine.count:
        return
    print(f"hashmatch: skipped {quarantine.count:,} invalid rows:", file=sys.stderr)
    for reason in quarantine.reasons:
        print(f"  {reason}", file=sys.stderr)
    if quarantine.count > len(quarantine.reasons):
        print(f"  ... and {quarantine.count - len(quarantine.reasons):,} more", file=sys.stderr)


def _cmd_match(args: argparse.Namespace) -> int:
    """Run ``hashmatch match``: every (query, list) pair within ``--max-distance``, as CSV."""
    threads = check_threads(args.threads)
    quarantine = _Quarantine(args.skip_invalid)
    t0 = time.perf_counter()
    with _output(args.out) as out:  # opened first: a bad --out fails before the work
        nbytes = None if args.bits is None else check_bits(args.bits, name="--bits") // 8
        hashes = _HashFileReader(args.list, nbytes, quarantine).read(args.progress)
        bits = hashes.codes.shape[1] * 8
        radius = _radius(args.max_distance, bits)
        queries = _HashFileReader(args.queries, bits // 8, quarantine).read(args.progress)
        index, plan = _build_index(hashes.codes, radius, args.progress)
        t1 = time.perf_counter()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        matches = 0
        for start, result in _range_batches(index, queries.codes, radius, threads, args.progress):
            writer.writerows(_match_rows(start, result, queries, hashes))
            matches += len(result.ids)
    t2 = time.perf_counter()
    _report_skipped(quarantine)
    print(
        f"hashmatch: {len(queries.codes):,} queries x {len(hashes.codes):,} list hashes"
        f" ({bits} bits, distance <= {radius}): {matches:,} matches;"
        f" read and index {t1 - t0:.2f} s, search {t2 - t1:.2f} s;"
        f" {_describe_index(index, plan)}",
        file=sys.stderr,
    )
    return 0


# --------------------------------------------------------------------------------------- dedup


@dataclass
class _DedupInput:
    """The hashes of the file to deduplicate, with what identifies and ranks them."""

    codes: Codes
    labels: npt.NDArray[np.int64] | list[str] | None  # ids, keys, or None: row numbers
    id_source: str  # where the ids come from, for the reports
    qualities: npt.NDArray[np.int16] | None
    quality_column: str | None
    format: str
    skipped: list[tuple[int, str]]

    def ids(self, rows: npt.NDArray[np.int64]) -> list[int] | list[str]:
        """The ids of ``rows``, as written to the CSV files."""
        if self.labels is None:
            return cast(list[int], rows.tolist())
        if isinstance(self.labels, np.ndarray):
            return cast(list[int], self.labels[rows].tolist())
        keys = self.labels
        return [keys[row] for row in rows.tolist()]


def _read_dedup_input(
    path: str, format: str, bits: int | None, skip_invalid: bool, progress: bool
) -> _DedupInput:
    """Read every hash of ``path`` with :mod:`hashmatch.formats`, in one chunk."""
    if path == "-":
        if not os.path.exists("/dev/stdin"):
            raise hm.InvalidArgument(
                "FILE: reading standard input ('-') needs /dev/stdin; save the hashes to a file"
            )
        path = "/dev/stdin"
    reader = read_hashes(
        path,
        format=format,
        bits=bits,
        chunk_size=2**62,  # one chunk: no concatenation of the whole file again
        skip_invalid=skip_invalid,
        progress=progress,
    )
    with reader:
        chunks = list(reader)
    nbytes = (reader.bits or 0) // 8
    records = chunks[0] if chunks else HashRecords(np.empty((0, nbytes), np.uint8))
    labels, id_source = _dedup_labels(records, reader.columns)
    quality_column = reader.columns.get("quality") if records.qualities is not None else None
    return _DedupInput(
        codes=records.codes,
        labels=labels,
        id_source=id_source,
        qualities=records.qualities,
        quality_column=quality_column,
        format=reader.format,
        skipped=reader.skipped,
    )


def _dedup_labels(
    records: HashRecords, columns: dict[str, str]
) -> tuple[npt.NDArray[np.int64] | list[str] | None, str]:
    """What identifies each hash in the output: the file's integer ids (an ``id`` or
    ``indicator_id`` column); else its keys (``key``, ``content_id``, ``signal_id``,
    ``filename``... or the second column of a file without header) when every row has one
    and no two are equal; else the 0-based row number."""
    if records.ids is not None:
        return records.ids, f"column {columns['id']!r}"
    if records.keys is not None:
        keys = records.keys
        if None not in keys and len(set(keys)) == len(keys):
            return cast(list[str], keys), f"column {columns['key']!r}"
        return None, f"row numbers (column {columns['key']!r} has empty or repeated values)"
    return None, "row numbers"


def _check_outputs(file: str, out: str | None, clusters: str | None) -> None:
    """Refuse two outputs to one place, and an output over the input."""
    if out is not None and out == clusters:
        where = "standard output" if out == "-" else repr(out)
        raise hm.InvalidArgument(f"--out and --clusters: expected two destinations, got {where}")
    for option, path in (("--out", out), ("--clusters", clusters)):
        if path not in (None, "-") and os.path.realpath(path) == os.path.realpath(file):
            raise hm.InvalidArgument(f"{option}: {path!r} is the input file; choose another")


def _maybe_output(path: str | None) -> contextlib.AbstractContextManager[TextIO | None]:
    """:func:`_output` for a path, nothing for None."""
    return _output(path) if path is not None else contextlib.nullcontext(None)


def _write_pairs(out: TextIO, pairs: hm.Pairs, data: _DedupInput) -> None:
    """The pairs CSV: ``id_a,id_b,distance``, one row per pair, sorted by rows ``a < b``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAIRS_HEADER)
    for start in range(0, len(pairs), WRITE_CHUNK):
        stop = start + WRITE_CHUNK
        writer.writerows(
            zip(
                data.ids(pairs.i[start:stop]),
                data.ids(pairs.j[start:stop]),
                pairs.distances[start:stop].tolist(),
                strict=True,
            )
        )


def _write_clusters(
    out: TextIO, clusters: hm.Clusters, data: _DedupInput, only_duplicates: bool
) -> None:
    """The clusters CSV: ``id,cluster,size,representative`` (1 or 0), one row per hash (with
    ``only_duplicates``, per hash in a cluster of 2 or more), by cluster, then file order."""
    sizes = clusters.sizes[clusters.labels]
    rows = np.argsort(clusters.labels, kind="stable").astype(np.int64)
    if only_duplicates:
        rows = rows[sizes[rows] >= 2]
    representative = np.zeros(len(clusters.labels), dtype=np.int8)
    representative[clusters.representatives] = 1
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CLUSTERS_HEADER)
    for start in range(0, len(rows), WRITE_CHUNK):
        chunk = rows[start : start + WRITE_CHUNK]
        writer.writerows(
            zip(
                data.ids(chunk),
                clusters.labels[chunk].tolist(),
                sizes[chunk].tolist(),
                representative[chunk].tolist(),
                strict=True,
            )
        )


def _progress(requested: bool) -> bool:
    """Whether library calls show progress bars: asked for and stderr is a terminal (the
    rule :func:`_bar` applies to the command's own bars)."""
    return requested and sys.stderr.isatty()


def _describe_join(pairs: hm.Pairs, threads: int) -> str:
    """How the join ran, and the cost model's single-thread estimates, in one line."""
    plan = pairs.plan
    method = plan.method
    if plan.method == "multi-index":
        method += f", {len(plan.substrings)} substrings"

    def estimate(seconds: float) -> str:
        return _seconds(max(seconds, 0.0)) if np.isfinite(seconds) else "n/a"

    return (
        f"{method} on {threads} thread{'' if threads == 1 else 's'} (cost model, 1 thread:"
        " multi-index"
        f" {estimate(plan.multi_index_seconds)}, brute force {estimate(plan.brute_force_seconds)})"
    )


@dataclass
class _DedupStats:
    """Counts the reports quote."""

    hashes: int
    pairs: int
    clusters: int  # singletons included
    with_duplicates: int  # clusters of 2 or more
    clustered: int  # hashes in those
    largest: int

    @classmethod
    def of(cls, clusters: hm.Clusters) -> _DedupStats:
        multi = clusters.sizes[clusters.sizes >= 2]
        return cls(
            hashes=len(clusters.labels),
            pairs=len(clusters.pairs),
            clusters=clusters.n_clusters,
            with_duplicates=len(multi),
            clustered=int(multi.sum()),
            largest=int(clusters.sizes.max()) if len(clusters.sizes) else 0,
        )


def _seconds(value: float) -> str:
    """A duration: ``12.3 ms`` below a second, else ``4.56 s``."""
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def _dedup_report(
    path: str,
    data: _DedupInput,
    clusters: hm.Clusters,
    threads: int,
    timings: tuple[float, float, float],
) -> list[str]:
    """The summary ``hashmatch dedup`` prints without output files, one string per line."""
    pairs, stats = clusters.pairs, _DedupStats.of(clusters)
    t_read, t_join, t_cluster = map(_seconds, timings)
    bits = data.codes.shape[1] * 8
    quality = f"; quality: column {data.quality_column!r}" if data.quality_column else ""
    skipped = f"; {len(data.skipped):,} invalid rows skipped" if data.skipped else ""
    rep = "highest quality" if clusters.representative == "quality" else "medoid"
    lines = [
        f"hashmatch {hm.__version__} dedup: pairs within Hamming distance {pairs.max_distance}"
        " (inclusive), exact",
        f"input       {path}: {stats.hashes:,} {bits}-bit hashes ({data.format}; ids:"
        f" {data.id_source}{quality}){skipped}",
        f"pairs       {stats.pairs:,}",
        f"clusters    {stats.with_duplicates:,} with duplicates, holding {stats.clustered:,}"
        f" hashes; largest {stats.largest:,}; {stats.clusters:,} clusters in all",
        f"duplicates  {stats.hashes - stats.clusters:,} hashes to drop to keep one per cluster"
        f" (representative: {rep})",
        f"method      {_describe_join(pairs, threads)}",
        f"time        read {t_read}, join {t_join}, cluster {t_cluster}",
    ]
    shown = min(SUMMARY_PAIRS, stats.pairs)
    if shown:
        first = f"first {shown} pairs" if shown < stats.pairs else "pairs"
        lines.append(f"{first} (id_a, id_b, distance)")
        ids_a = list(map(str, data.ids(pairs.i[:shown])))
        ids_b = list(map(str, data.ids(pairs.j[:shown])))
        wa, wb = max(map(len, ids_a)), max(map(len, ids_b))
        for a, b, d in zip(ids_a, ids_b, pairs.distances[:shown].tolist(), strict=True):
            lines.append(f"  {a:<{wa}}  {b:<{wb}}  {d}")
    return lines


def _cmd_dedup(args: argparse.Namespace) -> int:
    """Run ``hashmatch dedup``: every near-duplicate pair of one file, and the clusters."""
    threads = check_threads(args.threads)
    bits = None if args.bits is None else check_bits(args.bits, name="--bits")
    if bits is not None and args.max_distance is not None:  # fail before reading
        check_max_distance(args.max_distance, bits, name="--max-distance")
    _check_outputs(args.file, args.out, args.clusters)
    if args.only_duplicates and args.clusters is None:
        raise hm.InvalidArgument("--only-duplicates: applies to --clusters, which is not given")
    progress = _progress(args.progress)
    t0 = time.perf_counter()
    # Opened first: a bad destination fails before the work; written atomically, so an
    # error or Ctrl-C leaves neither file (nor a partial one) behind.
    with _maybe_output(args.out) as pairs_file, _maybe_output(args.clusters) as clusters_file:
        data = _read_dedup_input(args.file, args.format, bits, args.skip_invalid, progress)
        width = data.codes.shape[1] * 8
        radius = check_max_distance(
            default_max_distance(width) if args.max_distance is None else args.max_distance,
            width,
            name="--max-distance",
        )
        if args.representative == "quality" and data.qualities is None:
            raise hm.InvalidArgument(
                f"--representative quality: {args.file} has no quality column (quality,"
                " pdq_quality or hash_quality)"
            )
        t1 = time.perf_counter()
        pairs = hm.find_duplicates(data.codes, radius, threads=threads, progress=progress)
        t2 = time.perf_counter()
        clusters = hm.cluster(
            pairs,
            qualities=data.qualities,
            representative=args.representative,
            threads=threads,
        )
        t3 = time.perf_counter()
        if pairs_file is not None:
            _write_pairs(pairs_file, pairs, data)
        if clusters_file is not None:
            _write_clusters(clusters_file, clusters, data, args.only_duplicates)
    _report_skipped(
        _Quarantine(True, len(data.skipped), [r for _, r in data.skipped[:MAX_REASONS]])
    )
    if args.out is None and args.clusters is None:
        print(
            "\n".join(
                _dedup_report(args.file, data, clusters, threads, (t1 - t0, t2 - t1, t3 - t2))
            )
        )
        return 0
    stats = _DedupStats.of(clusters)
    print(
        f"hashmatch: {stats.hashes:,} hashes ({width} bits, distance <= {radius}):"
        f" {stats.pairs:,} pairs; {stats.with_duplicates:,} clusters with duplicates holding"
        f" {stats.clustered:,} hashes, largest {stats.largest:,}; ids: {data.id_source};"
        f" read {_seconds(t1 - t0)}, join {_seconds(t2 - t1)} ({pairs.plan.method}),"
        f" cluster {_seconds(t3 - t2)}, write {_seconds(time.perf_counter() - t3)}",
        file=sys.stderr,
    )
    return 0


# ---------------------------------------------------------------------------------- info, main


def _cmd_info(args: argparse.Namespace) -> int:
    """Run ``hashmatch info``: version, CPU features, kernel and default thread count."""
    print(f"hashmatch {hm.__version__}")
    for key, value in hm.cpu_features().items():
        text = ", ".join(value) if isinstance(value, list) else str(value)
        print(f"{key:<18} {text}")
    print(f"{'threads':<18} {check_threads(None)}")
    return 0


def _int_at_least(low: int) -> Callable[[str], int]:
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


DEFAULT_RADIUS = "31 for 256-bit PDQ, 10 for 64-bit pHash, else bits / 8, as the library"


def _add_common(parser: argparse.ArgumentParser, default: str = DEFAULT_RADIUS) -> None:
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
        type=_int_at_least(1),
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


def _parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hashmatch`` command."""
    parser = argparse.ArgumentParser(
        prog="hashmatch",
        description="Exact Hamming-distance matching of perceptual hashes (PDQ, pHash).",
    )
    parser.add_argument("--version", action="version", version=f"hashmatch {hm.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="search a synthetic corpus with planted near-duplicates and check recall",
        description="Build a random PDQ-like corpus, plant near-duplicate queries at known"
        " distances, search them exactly and check that every planted pair is found.",
    )
    demo.add_argument(
        "--n", type=_int_at_least(1), default=1_000_000, help="corpus size (default 1,000,000)"
    )
    demo.add_argument(
        "--queries",
        type=_int_at_least(1),
        default=10_000,
        help="number of queries (default 10,000)",
    )
    demo.add_argument("--bits", type=int, default=256, help="hash width (default 256, PDQ)")
    demo.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    _add_common(demo)
    demo.set_defaults(handler=_cmd_demo)

    match = commands.add_parser(
        "match",
        help="match a file of query hashes against a file of list hashes",
        description="Write every (query, list) pair of hashes within --max-distance as CSV:"
        " query_id,list_id,distance,query_hash,list_hash, by query, then distance, then list"
        " order. Input lines are 'hex' or 'hex,id' (default id: the line number); blank lines,"
        " '#' comments, a UTF-8 BOM and a first line of column names (hash,id; signal_type,signal;"
        " pdq_hash...) are skipped.",
    )
    match.add_argument("list", metavar="LIST", help="hashes to match against, one per line")
    match.add_argument("queries", metavar="QUERIES", help="query hashes, one per line")
    match.add_argument(
        "--out",
        default="-",
        metavar="FILE",
        help="CSV output, written atomically (default '-': stdout)",
    )
    match.add_argument(
        "--bits",
        type=int,
        default=None,
        help="hash width (default: that of the first hash of LIST)",
    )
    match.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip bad rows (and report them on stderr) instead of stopping at the first",
    )
    _add_common(match)
    match.set_defaults(handler=_cmd_match)

    dedup = commands.add_parser(
        "dedup",
        help="find every pair of near-duplicate hashes in one file, and their clusters",
        description="Find every pair of hashes of FILE within --max-distance, exactly (a"
        " multi-index or brute-force self-join chosen by a cost model), and group them into"
        " clusters: two hashes share a cluster when a chain of such pairs links them. Without"
        " --out or --clusters, print a summary. FILE is plain hex (one hash a line, or"
        " 'signal_type hash'), CSV or TSV, optionally gzip-compressed, with the column names of"
        " ThreatExchange, HMA and pdq-photo-hasher exports (hash/signal/pdq_hash...,"
        " id/indicator_id, key/content_id/signal_id/filename..., quality...). The id of a hash"
        " in the output is its integer id column if the file has one; else its key column"
        " (e.g. filename, or the second column of a CSV without header) if every row has a"
        " distinct one; else its 0-based row number among the hashes read.",
        epilog="Outputs: --out CSV 'id_a,id_b,distance', one row per pair (row of id_a before"
        " row of id_b), sorted by rows; --clusters CSV 'id,cluster,size,representative', one"
        " row per hash grouped by cluster (numbered 0, 1... in order of their first row), then"
        " in file order; representative is 1 for the one hash kept per cluster, else 0. Both"
        " are written atomically: an error or Ctrl-C never leaves a partial file.",
    )
    dedup.add_argument(
        "file", metavar="FILE", help="hashes: hex, CSV or TSV (.gz too); - reads standard input"
    )
    dedup.add_argument(
        "--out",
        default=None,
        metavar="PAIRS.csv",
        help="write the pairs as CSV: id_a,id_b,distance ('-': stdout)",
    )
    dedup.add_argument(
        "--clusters",
        default=None,
        metavar="CLUSTERS.csv",
        help="write one row per hash as CSV: id,cluster,size,representative ('-': stdout)",
    )
    dedup.add_argument(
        "--only-duplicates",
        action="store_true",
        help="--clusters lists only the hashes of clusters of 2 or more",
    )
    dedup.add_argument(
        "--representative",
        choices=("quality", "medoid"),
        default=None,
        help="the hash kept per cluster: that of highest quality (a missing quality ranks"
        " last; ties: first in the file) or the medoid, with the smallest sum of distances to"
        " the others (estimated from 4,096 members in bigger clusters) (default: quality if"
        " FILE has a quality column, else medoid)",
    )
    dedup.add_argument(
        "--format",
        choices=("auto", "hex", "csv", "tsv"),
        default="auto",
        help="input format (default auto: by extension, else by the first data line)",
    )
    dedup.add_argument(
        "--bits",
        type=int,
        default=None,
        help="hash width every hash must have (default: that of the first hash)",
    )
    dedup.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip bad rows (and report them on stderr) instead of stopping at the first",
    )
    _add_common(dedup)
    dedup.set_defaults(handler=_cmd_dedup)

    info = commands.add_parser("info", help="show the version, CPU features and kernel in use")
    info.set_defaults(handler=_cmd_info)
    return parser


def _describe(error: BaseException) -> str:
    """A one-line description of an error; ``file: reason`` for OS errors."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so a write to a closed pipe at exit raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Run the ``hashmatch`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code: 0 success, 1 a demo check failed, 2 usage or input error, 130 interrupted,
        141 stdout closed early (e.g. ``| head``).
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("hashmatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except (hm.HashmatchError, OSError) as error:
        print(f"hashmatch: error: {_describe(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
