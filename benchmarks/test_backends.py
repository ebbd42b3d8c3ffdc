"""Approximate faiss backends against the exact MIHIndex: speed, recall and build time.

PDQ (256 bits) at radius 31 on the shared corpus, whose queries are half planted
near-duplicates. Groups ``backends-range-batch-256-t2`` (a batch of up to 1,000 range queries on
2 threads) and ``backends-range-single-256`` (one query at a time, 1 thread) each hold
``hashmatch-mih`` and the ``faiss-hnsw``, ``faiss-ivf`` and ``faiss-multihash`` backends of
:mod:`hashmatch.backends` with their default parameters. Every benchmark records the recall of
its backend on the batch against FlatIndex's exact answer (``recall``: the fraction of the true
(query, match) pairs found; MIHIndex must find all), the build time (``build_s``: one ``add``
of the whole corpus on 2 threads) and ``memory_x_raw`` (serialized size, or MIH's memory, over
the raw codes). Backends are built once per session, and only if a selected test needs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import cycle
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hashmatch.backends import backend_spec, make_backend

if TYPE_CHECKING:
    from conftest import Corpus, Scale
    from pytest_benchmark.fixture import BenchmarkFixture

BITS = 256
BATCH = 1000  # at most; the smoke scale has 200 queries
LIBRARIES = {
    "hashmatch-mih": ("mih", {"max_distance": 31}),
    "faiss-hnsw": ("faiss-hnsw", {}),
    "faiss-ivf": ("faiss-ivf", {}),
    "faiss-multihash": ("faiss-multihash", {}),
}

# The shared corpus fixture is built for each width; these benchmarks need only PDQ's.
pytestmark = pytest.mark.parametrize("corpus", [BITS], indirect=True, ids=[f"{BITS}bit"])


@dataclass
class Built:
    backend: Any
    build_s: float
    memory_x_raw: float
    recall: float | None = None


@dataclass
class Workbench:
    corpus: Corpus
    queries: np.ndarray
    exact: list[set[int]]
    built: dict[str, Built]

    def get(self, library: str) -> Built:
        """The library's backend over the corpus, built on first use."""
        if library not in self.built:
            name, params = LIBRARIES[library]
            backend: Any = make_backend(name, BITS, **params)
            start = time.perf_counter()
            if name == "mih":
                backend.add(self.corpus.codes)
            else:
                backend.add(self.corpus.codes, threads=2)
            build_s = time.perf_counter() - start
            memory = backend.memory_bytes() if name == "mih" else backend.to_bytes().nbytes
            self.built[library] = Built(backend, build_s, memory / self.corpus.codes.nbytes)
        return self.built[library]

    def recall(self, library: str) -> float:
        """Fraction of the exact (query, match) pairs of the batch that the backend finds."""
        built = self.get(library)
        if built.recall is None:
            got = id_sets(built.backend.range_search(self.queries, self.corpus.max_distance))
            if library == "hashmatch-mih":
                assert got == self.exact, "MIHIndex differs from the exact answer"
            found = sum(len(e & g) for e, g in zip(self.exact, got, strict=True))
            built.recall = found / max(1, sum(map(len, self.exact)))
        return built.recall


def id_sets(result: tuple[Any, ...]) -> list[set[int]]:
    lims, _, ids = result
    return [set(ids[lims[i] : lims[i + 1]].tolist()) for i in range(len(lims) - 1)]


@pytest.fixture(scope="session")
def workbench(corpus: Corpus) -> Workbench:
    queries = corpus.planted.queries[:BATCH]
    exact = id_sets(corpus.indexes["hashmatch"].range_search(queries, corpus.max_distance))
    return Workbench(corpus, queries, exact, {})


def describe(
    benchmark: BenchmarkFixture, w: Workbench, scale: Scale, library: str, group: str
) -> Built:
    built = w.get(library)
    benchmark.group = group
    benchmark.extra_info.update(
        library=library,
        scale=scale.name,
        n=scale.n,
        queries=len(w.queries),
        params=backend_spec(built.backend)[1],
        recall=w.recall(library),
        build_s=built.build_s,
        memory_x_raw=built.memory_x_raw,
    )
    return built


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_range_batch(
    benchmark: BenchmarkFixture, workbench: Workbench, scale: Scale, library: str
) -> None:
    w = workbench
    backend = describe(benchmark, w, scale, library, f"backends-range-batch-{BITS}-t2").backend
    r = w.corpus.max_distance
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda: backend.range_search(w.queries, r, threads=2),
        rounds=scale.batch_rounds,
        warmup_rounds=0,
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["ms_per_query"] = benchmark.stats.stats.median / len(w.queries) * 1e3


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_range_single(
    benchmark: BenchmarkFixture, workbench: Workbench, scale: Scale, library: str
) -> None:
    w = workbench
    backend = describe(benchmark, w, scale, library, f"backends-range-single-{BITS}").backend
    r = w.corpus.max_distance
    rows = cycle(range(len(w.queries)))
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda: backend.range_search(w.queries[next(rows)][None], r, threads=1),
        rounds=scale.single_rounds,
        warmup_rounds=5,
    )
    if benchmark.stats is not None:
        benchmark.extra_info["p99_ms"] = float(np.percentile(benchmark.stats.stats.data, 99)) * 1e3
