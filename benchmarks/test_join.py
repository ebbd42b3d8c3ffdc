"""Bulk near-duplicate detection (issue #5): hashmatch's joins vs faiss range search and peers.

Groups, each on one ``hm.datasets.clustered_codes`` collection (30% re-uploads, each within
16 flips of its source for PDQ, 6 for 64-bit: two copies of one source can be up to twice that
apart, so pairs lie on both sides of the radius), 2 threads:

* ``join-self-256``: every pair of ``scale.n`` PDQ hashes within 31 bits;
* ``join-self-64``: every pair of ``scale.n`` 64-bit hashes within 10 bits, plus the
  pure-Python dedup libraries imagededup and perception where installed;
* ``join-cross-256``: ``scale.n // 10`` "uploads" against ``scale.n`` "known" PDQ hashes.

Libraries: ``hashmatch`` (``find_duplicates`` / ``find_matches``, plan chosen by the cost
model), ``hashmatch-brute-force`` (``method="brute-force"``, the tiled pairwise scan), and
``faiss``: an ``IndexBinaryFlat`` of the whole set (the known set for the cross join),
range-searched in chunks of query rows with radius ``max_distance + 1`` (faiss is strict ``<``),
keeping ``j > i`` for self-joins. faiss needs about 20 minutes for 1M PDQ rows here, so at
``full`` scale it searches only the first rows of the set and its time is extrapolated
linearly to all rows (``extra_info``: ``extrapolated``, ``sampled_rows``, ``total_rows``;
``time_s`` is the extrapolated time, the benchmark's own stats the measured sample). Every
library's pairs on the rows it searched must equal hashmatch's exactly, distances included.

``10m`` scale skips this module: ``benchmarks/dedup_10m.py`` is the 10M run.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import numpy.typing as npt
import pytest

import hashmatch as hm

if TYPE_CHECKING:
    from conftest import Scale
    from pytest_benchmark.fixture import BenchmarkFixture

THREADS = 2
MAX_DISTANCE = {256: 31, 64: 10}
MAX_FLIPS = {256: 16, 64: 6}  # 16 is clustered_codes' default for PDQ; its 64-bit default, 4,
# would leave no pair of copies at 9-12 bits, around the radius
ROUNDS = {"smoke": 3, "full": 3}
FAISS_CHUNK = 1000  # query rows per faiss range_search call (bounds its result buffers)
# Query rows faiss searches at each scale (None: all). At full, ~3-5 s of the ~20 min (PDQ)
# or ~5 min (64-bit) a complete faiss self range-search takes on 2 cores.
FAISS_ROWS: dict[str, dict[str, int | None]] = {
    "smoke": {"self-256": None, "self-64": None, "cross-256": None},
    "full": {"self-256": 3_000, "self-64": 10_000, "cross-256": 3_000},
}
# imagededup's brute force rebuilds Python lists of all n hashes for every query (~0.3 s per
# query at 1M), so it searches a few rows; 200 = two of its 100-query chunks, one per worker.
IMAGEDEDUP_ROWS = 200
# perception materialises every pairwise distance (scipy pdist, n^2/2 float64): it joins the
# first rows with each other, and its time is extrapolated quadratically.
PERCEPTION_ROWS = {"smoke": 5_000, "full": 20_000}


@dataclass
class Collection:
    """One group's data: the hashes (and, for a cross join, the known set) and the radius."""

    name: str
    bits: int
    max_distance: int
    codes: npt.NDArray[np.uint8]
    known: npt.NDArray[np.uint8] | None  # cross joins: the second set


_collections: dict[tuple[str, str], Collection] = {}
_reference: dict[tuple[str, str], hm.Pairs] = {}


def collection(scale: Scale, name: str) -> Collection:
    """The data of group ``join-NAME`` at this scale, built once per session."""
    if scale.name not in FAISS_ROWS:
        pytest.skip(f"{scale.name} scale: run benchmarks/dedup_10m.py for the 10M join")
    key = (scale.name, name)
    if key not in _collections:
        kind, bits = name.split("-")[0], int(name.split("-")[1])
        if kind == "self":
            codes = hm.datasets.clustered_codes(scale.n, bits, max_flips=MAX_FLIPS[bits], seed=bits)
            _collections[key] = Collection(name, bits, MAX_DISTANCE[bits], codes, None)
        else:  # uploads are drawn with the known set, so some re-upload known hashes
            both = hm.datasets.clustered_codes(
                scale.n + scale.n // 10, bits, max_flips=MAX_FLIPS[bits], seed=bits + 1
            )
            _collections[key] = Collection(
                name, bits, MAX_DISTANCE[bits], both[scale.n :], both[: scale.n]
            )
    return _collections[key]


def join(c: Collection, method: Any = "auto") -> hm.Pairs:
    if c.known is None:
        return hm.find_duplicates(c.codes, c.max_distance, threads=THREADS, method=method)
    return hm.find_matches(c.codes, c.known, c.max_distance, threads=THREADS, method=method)


def reference(scale: Scale, c: Collection) -> hm.Pairs:
    """hashmatch's pairs (the cost model's plan), computed once and shared by the group."""
    key = (scale.name, c.name)
    if key not in _reference:
        _reference[key] = join(c)
    return _reference[key]


def describe(benchmark: BenchmarkFixture, scale: Scale, c: Collection, library: str) -> None:
    benchmark.group = f"join-{c.name}"
    benchmark.extra_info.update(
        library=library,
        scale=scale.name,
        n=scale.n,
        rows=len(c.codes),
        known=None if c.known is None else len(c.known),
        bits=c.bits,
        max_distance=c.max_distance,
        threads=THREADS,
    )


def record_time(
    benchmark: BenchmarkFixture, pairs: int, sampled: int, total: int, how: str = "linear"
) -> None:
    """``time_s``: the median, or the sample's median scaled to ``total`` rows."""
    benchmark.extra_info["pairs"] = pairs
    if benchmark.stats is None:  # --benchmark-disable: agreement checks only
        return
    measured = benchmark.stats.stats.median
    factor = (total / sampled) ** (2 if how == "quadratic" else 1)
    benchmark.extra_info.update(
        measured_s=measured,
        time_s=measured * factor,
        extrapolated=sampled < total,
        sampled_rows=sampled,
        total_rows=total,
        extrapolation=how if sampled < total else None,
    )


def restrict(pairs: hm.Pairs, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs whose first row is below `rows` (a prefix: pairs are sorted by i)."""
    end = int(np.searchsorted(pairs.i, rows))
    return pairs.i[:end], pairs.j[:end], pairs.distances[:end]


def columns(rows: list[tuple[int, ...]], width: int) -> tuple[np.ndarray, ...]:
    """int64 columns of a list of tuples (empty columns for an empty list)."""
    table = np.array(rows, dtype=np.int64).reshape(len(rows), width)
    return tuple(table[:, k] for k in range(width))


def assert_same(
    got: tuple[np.ndarray, np.ndarray, np.ndarray],
    want: tuple[np.ndarray, np.ndarray, np.ndarray],
    who: str,
) -> None:
    i, j, d = (np.asarray(a, dtype=np.int64) for a in got)
    order = np.lexsort((j, i))
    for name, a, b in zip("ijd", (i[order], j[order], d[order]), want, strict=True):
        assert np.array_equal(a, b), f"{who}: pairs ({name}) differ from hashmatch's"


@pytest.mark.parametrize("name", ["self-256", "self-64", "cross-256"])
@pytest.mark.parametrize("library", ["hashmatch", "hashmatch-brute-force"])
def test_join(benchmark: BenchmarkFixture, scale: Scale, name: str, library: str) -> None:
    c = collection(scale, name)
    describe(benchmark, scale, c, library)
    method = "brute-force" if library == "hashmatch-brute-force" else "auto"
    rounds = ROUNDS[scale.name] if method == "auto" else 1  # brute force: ~2 min at full
    pairs = benchmark.pedantic(lambda: join(c, method), rounds=rounds, warmup_rounds=0)
    if method == "auto":
        _reference.setdefault((scale.name, c.name), pairs)
    else:
        assert_same(tuple(pairs), tuple(reference(scale, c)), library)
    record_time(benchmark, len(pairs), len(c.codes), len(c.codes))
    benchmark.extra_info.update(
        plan=pairs.plan.method,
        substrings=len(pairs.plan.substrings),
        model_s=min(pairs.plan.multi_index_seconds, pairs.plan.brute_force_seconds),
    )


def faiss_join(
    index: faiss.IndexBinaryFlat, queries: np.ndarray, radius: int, self_join: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of the query rows within `radius` (inclusive) of the index, in chunks of rows;
    a self-join (queries = the index's first rows) keeps each pair once, ``j > i``."""
    parts = []
    for start in range(0, len(queries), FAISS_CHUNK):
        lims, distances, ids = index.range_search(queries[start : start + FAISS_CHUNK], radius + 1)
        counts = np.diff(lims.astype(np.int64))
        i = np.repeat(np.arange(start, start + len(counts), dtype=np.int64), counts)
        keep = ids > i if self_join else slice(None)
        parts.append((i[keep], ids[keep], distances[keep]))
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


@pytest.mark.parametrize("name", ["self-256", "self-64", "cross-256"])
def test_join_faiss(benchmark: BenchmarkFixture, scale: Scale, name: str) -> None:
    c = collection(scale, name)
    describe(benchmark, scale, c, "faiss")
    stored = c.codes if c.known is None else c.known
    index = faiss.IndexBinaryFlat(c.bits)
    index.add(stored)
    rows = min(len(c.codes), FAISS_ROWS[scale.name][name] or len(c.codes))
    queries = np.ascontiguousarray(c.codes[:rows])
    faiss.omp_set_num_threads(THREADS)
    got = benchmark.pedantic(
        lambda: faiss_join(index, queries, c.max_distance, c.known is None),
        rounds=1,
        warmup_rounds=0,
    )
    assert_same(got, restrict(reference(scale, c), rows), "faiss")
    record_time(benchmark, len(got[0]), rows, len(c.codes))
    benchmark.extra_info["chunk_rows"] = FAISS_CHUNK


def optional(module: str) -> Any:
    """A peer library's module, or a skip where it (or one of its dependencies) is missing:
    peers are not test dependencies (CI has none of them)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        pytest.skip(f"{module} not importable: {error}")


def import_imagededup() -> Any:
    """imagededup's hash search (``HashEval``, what ``Hashing.find_duplicates`` runs) without
    torch: the packages ``imagededup.methods`` and ``imagededup.utils`` import its CNN method
    and so torch (a multi-GB CUDA build from PyPI), which their hashing modules do not need."""
    imagededup = optional("imagededup")
    base = Path(imagededup.__path__[0])
    for sub in ("utils", "methods"):
        name = f"imagededup.{sub}"
        if name not in sys.modules:  # a bare package: its submodules load, its __init__ not
            package = types.ModuleType(name)
            package.__path__ = [str(base / sub)]
            sys.modules[name] = package
    try:
        from imagededup.handlers.search.retrieval import HashEval
        from imagededup.methods.hashing import PHash
    except ImportError as error:
        pytest.skip(f"imagededup's hashing path does not import: {error}")
    for name in ("imagededup.handlers.search.retrieval", "imagededup.methods.hashing"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return HashEval, PHash


def test_join_imagededup(benchmark: BenchmarkFixture, scale: Scale) -> None:
    """imagededup's default search (``brute_force_cython``) with 2 worker processes; its
    ``max_distance_threshold`` is inclusive (``dist <= maxdist``) like hashmatch's."""
    hash_eval, phash = import_imagededup()
    c = collection(scale, "self-64")
    describe(benchmark, scale, c, "imagededup")
    encodings = {str(row): code.tobytes().hex() for row, code in enumerate(c.codes)}
    rows = min(len(c.codes), IMAGEDEDUP_ROWS)
    queries = {str(row): encodings[str(row)] for row in range(rows)}

    def run() -> dict[str, list[tuple[str, int]]]:
        return hash_eval(  # type: ignore[no-any-return]
            test=encodings,
            queries=queries,
            distance_function=phash.hamming_distance,
            verbose=False,
            threshold=c.max_distance,
            search_method="brute_force_cython",
            num_dist_workers=THREADS,
        ).retrieve_results(scores=True)

    found = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    got = [(int(q), int(k), int(d)) for q, ms in found.items() for k, d in ms if int(k) > int(q)]
    assert_same(columns(got, 3), restrict(reference(scale, c), rows), "imagededup")
    record_time(benchmark, len(got), rows, len(c.codes))
    benchmark.extra_info["search_method"] = "brute_force_cython"


def test_join_perception(benchmark: BenchmarkFixture, scale: Scale) -> None:
    """``perception.tools.deduplicate_hashes`` on bit vectors with the hashers' hamming metric
    (scipy ``pdist``, normalised distance, strict ``<``: threshold ``(r + 0.5) / bits``)."""
    tools = optional("perception.tools")
    c = collection(scale, "self-64")
    describe(benchmark, scale, c, "perception")
    rows = min(len(c.codes), PERCEPTION_ROWS[scale.name])
    subset = c.codes[:rows]
    vectors = np.unpackbits(subset, axis=1).astype(bool)
    hashes = [(str(row), vector) for row, vector in enumerate(vectors)]
    threshold = (c.max_distance + 0.5) / c.bits

    def run() -> list[tuple[str, str]]:
        return tools.deduplicate_hashes(  # type: ignore[no-any-return]
            hashes,
            threshold=threshold,
            hash_length=c.bits,
            hash_dtype="bool",
            distance_metric="hamming",
        )

    found = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    pairs = sorted({(min(int(a), int(b)), max(int(a), int(b))) for a, b in found})
    i, j = columns(pairs, 2)
    want = hm.find_duplicates(subset, c.max_distance, threads=THREADS)
    assert np.array_equal(i, want.i) and np.array_equal(j, want.j), "perception differs"
    record_time(benchmark, len(pairs), rows, len(c.codes), how="quadratic")
    benchmark.extra_info["pdist_bytes_at_n"] = len(c.codes) * (len(c.codes) - 1) // 2 * 8
    benchmark.extra_info["threads"] = 1  # scipy's pdist runs on one thread
