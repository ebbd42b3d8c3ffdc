"""Shared data and indexes for the benchmark suite, sized by ``HASHMATCH_BENCH_SCALE``.

``smoke`` (CI, seconds), ``full`` (default, 1M hashes) or ``10m`` (manual, 10M hashes). The
corpus and both libraries' indexes are built once per session for each hash width.
"""

from __future__ import annotations

import os

# Set before numpy/faiss load their thread pools: faiss's OpenMP idle threads otherwise spin and
# slow the next kernel down 2x, and OpenBLAS threads spin and steal one of the two cores.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt
import pytest

import hashmatch as hm


@dataclass(frozen=True)
class Scale:
    """Corpus size and round counts for one ``HASHMATCH_BENCH_SCALE`` value."""

    name: str
    n: int
    n_queries: int
    single_rounds: int
    batch_rounds: int


# Batch ops run 1e10 comparisons per call at full and 10m scale (10m has 10x fewer queries), which
# take 3-28 s single-threaded on the 2-core reference machine; with the one-off agreement check
# and a warm-up round, 2 timed rounds keep the full suite near 10 minutes.
SCALES = {
    s.name: s
    for s in (
        Scale("smoke", n=20_000, n_queries=200, single_rounds=50, batch_rounds=5),
        Scale("full", n=1_000_000, n_queries=10_000, single_rounds=100, batch_rounds=2),
        Scale("10m", n=10_000_000, n_queries=1_000, single_rounds=50, batch_rounds=2),
    )
}

# Range-search thresholds: the standard PDQ match (<= 31) and a common pHash one (<= 10).
MAX_DISTANCE = {256: 31, 64: 10}


@dataclass(frozen=True)
class Corpus:
    """Random stored hashes, planted queries and the same codes in both libraries' indexes."""

    bits: int
    max_distance: int
    codes: npt.NDArray[np.uint8]
    planted: hm.datasets.PlantedQueries
    indexes: dict[str, hm.FlatIndex | faiss.IndexBinaryFlat]


@pytest.fixture(scope="session")
def scale() -> Scale:
    """The scale chosen by ``HASHMATCH_BENCH_SCALE`` (default ``full``)."""
    name = os.environ.get("HASHMATCH_BENCH_SCALE", "full")
    if name not in SCALES:
        raise pytest.UsageError(f"HASHMATCH_BENCH_SCALE={name!r}: expected one of {list(SCALES)}")
    return SCALES[name]


@pytest.fixture(scope="session", params=[256, 64], ids=lambda bits: f"{bits}bit")
def corpus(request: pytest.FixtureRequest, scale: Scale) -> Corpus:
    """Built once per width; half the queries are planted within the range threshold."""
    bits: int = request.param
    codes = hm.datasets.random_codes(scale.n, bits, seed=bits)
    planted = hm.datasets.planted_queries(
        codes, scale.n_queries, max_distance=MAX_DISTANCE[bits], match_fraction=0.5, seed=bits + 1
    )
    ours = hm.FlatIndex(bits)
    ours.add(codes)
    theirs = faiss.IndexBinaryFlat(bits)
    theirs.add(codes)
    return Corpus(bits, MAX_DISTANCE[bits], codes, planted, {"hashmatch": ours, "faiss": theirs})


@pytest.fixture(scope="session")
def verified() -> set[str]:
    """Benchmark groups whose results hashmatch and faiss were already checked to agree on."""
    return set()
