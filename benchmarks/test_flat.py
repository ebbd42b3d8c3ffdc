"""hashmatch vs faiss on exact flat (brute-force) search, side by side in one run.

Each benchmark group, e.g. ``knn-batch-256-t2``, holds both libraries for one operation, hash
width and thread count. Before its first timing, each group checks once that the two libraries
return the same results on its queries and that those results are right.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import cycle
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import numpy.typing as npt
import pytest

import hashmatch as hm

if TYPE_CHECKING:
    from conftest import Corpus, Scale
    from pytest_benchmark.fixture import BenchmarkFixture

LIBRARIES = ["hashmatch", "faiss"]
K_BATCH = 10

Search = Callable[[npt.NDArray[np.uint8]], tuple[Any, ...]]
SearchFactory = Callable[["Corpus", str, int], Search]
Check = Callable[["Corpus", hm.datasets.PlantedQueries, dict[str, tuple[Any, ...]]], None]

pytestmark = [
    pytest.mark.parametrize("threads", [1, 2], ids=lambda t: f"t{t}"),
    pytest.mark.parametrize("library", LIBRARIES),
]


def knn(k: int) -> SearchFactory:
    """Factory of k-nearest-neighbour searches of one library with a given thread count."""

    def make(corpus: Corpus, library: str, threads: int) -> Search:
        index = corpus.indexes[library]
        if library == "hashmatch":
            return lambda queries: index.search(queries, k, threads=threads)
        faiss.omp_set_num_threads(threads)
        return lambda queries: index.search(queries, k)

    return make


def within(corpus: Corpus, library: str, threads: int) -> Search:
    """Range search for every stored hash at distance <= ``corpus.max_distance``."""
    index = corpus.indexes[library]
    if library == "hashmatch":
        return lambda queries: index.range_search(queries, corpus.max_distance, threads=threads)
    faiss.omp_set_num_threads(threads)
    # faiss binary range search is strict (distance < radius).
    return lambda queries: index.range_search(queries, corpus.max_distance + 1)


def check_knn(
    corpus: Corpus, planted: hm.datasets.PlantedQueries, results: dict[str, tuple[Any, ...]]
) -> None:
    """Same distances from both; each id at its distance; planted matches no farther."""
    (ours, _), (theirs, _) = results["hashmatch"], results["faiss"]
    np.testing.assert_array_equal(ours, theirs)
    for distances, ids in results.values():
        rows = np.repeat(planted.queries, ids.shape[1], axis=0)
        actual = hm.hamming(rows, corpus.codes[ids.ravel()]).reshape(ids.shape)
        np.testing.assert_array_equal(actual, distances)
    hit = planted.source >= 0
    assert (ours[hit, 0] <= planted.distance[hit]).all()


def triples(
    lims: npt.NDArray[Any], distances: npt.NDArray[Any], ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """CSR range results as (query, id, distance) rows sorted by query then id."""
    query = np.repeat(np.arange(len(lims) - 1), np.diff(lims.astype(np.int64)))
    rows = np.stack([query, ids, distances.astype(np.int64)], axis=1)
    return rows[np.lexsort((ids, query))]


def check_range(
    corpus: Corpus, planted: hm.datasets.PlantedQueries, results: dict[str, tuple[Any, ...]]
) -> None:
    """Same (id, distance) sets from both; distances right and in range; planted found."""
    ours, theirs = (triples(*results[library]) for library in LIBRARIES)
    np.testing.assert_array_equal(ours, theirs)
    query, ids, distances = ours.T
    np.testing.assert_array_equal(hm.hamming(planted.queries[query], corpus.codes[ids]), distances)
    assert (distances <= corpus.max_distance).all()
    hit = np.flatnonzero(planted.source >= 0)
    n = len(corpus.codes)
    assert np.isin(hit * n + planted.source[hit], query * n + ids).all()


def rows(planted: hm.datasets.PlantedQueries, i: int) -> hm.datasets.PlantedQueries:
    """Query ``i`` alone, with its truth."""
    return hm.datasets.PlantedQueries(*(column[i : i + 1] for column in planted))


Bench = Callable[[str, SearchFactory, Check], None]


@pytest.fixture
def bench(
    benchmark: BenchmarkFixture,
    corpus: Corpus,
    scale: Scale,
    verified: set[str],
    library: str,
    threads: int,
) -> Bench:
    """Runs ``op`` for this test's library and threads: checks its group once, then times it."""

    def run(op: str, make_search: SearchFactory, check: Check) -> None:
        single = op.endswith("single")
        rounds = scale.single_rounds if single else scale.batch_rounds
        planted = corpus.planted
        # Single-query ops get a fresh query for the warm-up round and each timed round.
        calls = [rows(planted, i) for i in range(rounds + 1)] if single else [planted]
        group = f"{op}-{corpus.bits}-t{threads}"
        if group not in verified:
            for call in calls:
                check(
                    corpus,
                    call,
                    {lib: make_search(corpus, lib, threads)(call.queries) for lib in LIBRARIES},
                )
            verified.add(group)

        search = make_search(corpus, library, threads)
        feed = cycle(call.queries for call in calls)
        n, n_queries = len(corpus.codes), len(calls[0].queries)
        benchmark.group = group
        benchmark.extra_info.update(
            library=library,
            bits=corpus.bits,
            threads=threads,
            n=n,
            queries=n_queries,
            scale=scale.name,
        )
        benchmark.pedantic(
            search, setup=lambda: ((next(feed),), {}), rounds=rounds, iterations=1, warmup_rounds=1
        )
        if benchmark.stats is not None:  # None under --benchmark-disable (correctness only)
            median = benchmark.stats.stats.median
            benchmark.extra_info["comparisons_per_s"] = n * n_queries / median
            if single:
                benchmark.extra_info["gb_per_s"] = n * corpus.bits / 8 / median / 1e9

    return run


def test_knn_single(bench: Bench) -> None:
    """Latency of one k=1 query: a full scan of the stored hashes."""
    bench("knn-single", knn(1), check_knn)


def test_range_single(bench: Bench) -> None:
    """Latency of one range query (<= 31 for 256-bit, <= 10 for 64-bit)."""
    bench("range-single", within, check_range)


def test_knn_batch(bench: Bench) -> None:
    """Throughput of k=10 search for the whole query batch in one call."""
    bench("knn-batch", knn(K_BATCH), check_knn)


def test_range_batch(bench: Bench) -> None:
    """Throughput of range search for the whole query batch in one call."""
    bench("range-batch", within, check_range)
