"""Sublinear exact search: hashmatch MIHIndex vs faiss IndexBinaryMultiHash and flat scans.

A moderation service checks each upload against millions of shared hashes: few queries, PDQ's
radius 31 (pHash: 10). Groups, e.g. ``mih-range-single-256``, hold MIHIndex, faiss's
IndexBinaryMultiHash in the configuration ThreatExchange uses (16 tables of 16 bits for PDQ;
8 of 8 for 64-bit hashes; one bit flip probed, which the pigeonhole principle needs at these
radii), and both flat indexes. MIHIndex is checked to equal FlatIndex exactly; faiss's recall
against the exact answer is recorded (it may miss), as are build times, memory and p99 latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import cycle
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import pytest

import hashmatch as hm

if TYPE_CHECKING:
    from conftest import Corpus, Scale
    from pytest_benchmark.fixture import BenchmarkFixture

MULTIHASH = {256: (16, 16), 64: (8, 8)}  # (tables, bits per table)
BATCH = 1000  # queries per batch: faiss's multi-hash takes tens of ms per 64-bit query at 1M


@dataclass
class Sublinear:
    corpus: Corpus
    mih: hm.MIHIndex
    multihash: Any
    build_seconds: dict[str, float]
    memory_bytes: dict[str, int]


@pytest.fixture(scope="session")
def sublinear(corpus: Corpus) -> Sublinear:
    start = time.perf_counter()
    mih = hm.MIHIndex(corpus.bits, max_distance=corpus.max_distance)
    mih.add(corpus.codes)
    built_mih = time.perf_counter() - start
    start = time.perf_counter()
    nhash, b = MULTIHASH[corpus.bits]
    multihash = faiss.IndexBinaryMultiHash(corpus.bits, nhash, b)
    multihash.nflip = 1
    multihash.add(corpus.codes)
    built_faiss = time.perf_counter() - start
    memory = {
        "hashmatch-mih": mih.memory_bytes(),
        "faiss-multihash": int(faiss.serialize_index_binary(multihash).nbytes),
        "raw codes": int(corpus.codes.nbytes),
    }
    return Sublinear(
        corpus, mih, multihash, {"hashmatch-mih": built_mih, "faiss-multihash": built_faiss}, memory
    )


def searcher(s: Sublinear, library: str, threads: int) -> Any:
    r = s.corpus.max_distance
    faiss.omp_set_num_threads(threads)
    return {
        "hashmatch-mih": lambda q: s.mih.range_search(q, r, threads=threads),
        "hashmatch-flat": lambda q: s.corpus.indexes["hashmatch"].range_search(
            q, r, threads=threads
        ),
        "faiss-multihash": lambda q: s.multihash.range_search(q, r + 1),  # faiss is strict <
        "faiss-flat": lambda q: s.corpus.indexes["faiss"].range_search(q, r + 1),
    }[library]


def id_sets(result: tuple[Any, ...]) -> list[set[int]]:
    lims, _, ids = result
    return [set(ids[lims[i] : lims[i + 1]].tolist()) for i in range(len(lims) - 1)]


def recall(s: Sublinear, queries: np.ndarray, library: str) -> float:
    """Fraction of the exact matches (FlatIndex) that `library` returns; MIH must return all."""
    exact = id_sets(s.corpus.indexes["hashmatch"].range_search(queries, s.corpus.max_distance))
    got = id_sets(searcher(s, library, 2)(queries))
    if library.startswith("hashmatch"):
        assert got == exact, f"{library} differs from the exact answer"
    total = sum(len(e) for e in exact)
    return sum(len(e & g) for e, g in zip(exact, got, strict=True)) / max(1, total)


def describe(benchmark: BenchmarkFixture, s: Sublinear, scale: Scale, library: str) -> None:
    benchmark.extra_info.update(
        library=library, scale=scale.name, n=scale.n, queries=len(s.corpus.planted.queries)
    )


def p99(benchmark: BenchmarkFixture) -> float:
    return float(np.percentile(benchmark.stats.stats.data, 99))


@pytest.mark.parametrize(
    "library", ["hashmatch-mih", "faiss-multihash", "hashmatch-flat", "faiss-flat"]
)
def test_range_single(
    benchmark: BenchmarkFixture, sublinear: Sublinear, scale: Scale, library: str
) -> None:
    s = sublinear
    benchmark.group = f"mih-range-single-{s.corpus.bits}"
    describe(benchmark, s, scale, library)
    queries = s.corpus.planted.queries
    benchmark.extra_info["recall"] = recall(s, queries[:200], library)
    search = searcher(s, library, 1)
    rows = cycle(range(len(queries)))
    benchmark.pedantic(
        lambda: search(queries[next(rows)][None]), rounds=scale.single_rounds * 2, warmup_rounds=5
    )
    if benchmark.stats is not None:  # None under --benchmark-disable (correctness only)
        benchmark.extra_info["p99_ms"] = p99(benchmark) * 1e3
    if library in s.build_seconds:
        benchmark.extra_info["build_s"] = s.build_seconds[library]
        benchmark.extra_info["memory_x_raw"] = s.memory_bytes[library] / s.memory_bytes["raw codes"]


@pytest.mark.parametrize("library", ["hashmatch-mih", "faiss-multihash", "hashmatch-flat"])
def test_range_batch(
    benchmark: BenchmarkFixture, sublinear: Sublinear, scale: Scale, library: str
) -> None:
    s = sublinear
    benchmark.group = f"mih-range-batch-{s.corpus.bits}-t2"
    describe(benchmark, s, scale, library)
    queries = s.corpus.planted.queries[:BATCH]
    search = searcher(s, library, 2)
    benchmark.pedantic(lambda: search(queries), rounds=1, warmup_rounds=0)
    if benchmark.stats is not None:
        benchmark.extra_info["queries_per_s"] = len(queries) / benchmark.stats.stats.median
