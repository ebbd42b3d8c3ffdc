"""Labelled hash lists: what labels, snapshots and refreshes cost over a bare index.

Groups:

- ``list-match-batch`` / ``list-match-single``: ``HashList.match`` (match records with keys,
  labels and sources) against ``range_search`` on a bare index of the same kind over the same
  PDQ hashes at radius 31. The ratio is the overhead of a labelled list (target: under 10% for
  batches).
- ``list-refresh``: adding 10,000 labelled entries to a list of ``scale.n`` (each round starts
  from the same list), and removing 10,000; ``list-compact``: merging everything into one
  index, which a list does after an eighth of its size has changed.
- ``list-load``: opening a saved list by memory map (verified or not) and by reading it all.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import hashmatch as hm

if TYPE_CHECKING:
    from conftest import Scale
    from pytest_benchmark.fixture import BenchmarkFixture

BATCH = 1000
REFRESH = 10_000
LABELS = [("terrorism",), ("violence", "graphic"), ("self-harm",), ("csam",)]


@dataclass
class Labelled:
    hash_list: hm.HashList
    bare: Any
    queries: np.ndarray
    fresh: np.ndarray
    build_seconds: float


def _metadata(n: int, offset: int = 0) -> dict[str, Any]:
    return {
        "keys": [f"te:{offset + i}" for i in range(n)],
        "labels": [LABELS[i % len(LABELS)] for i in range(n)],
        "source": [f"partner-{i % 7}" for i in range(n)],
        "quality": np.arange(n) % 101,
    }


@pytest.fixture(scope="module")
def labelled(scale: Scale) -> Labelled:
    codes = hm.datasets.random_codes(scale.n, 256, seed=256)
    planted = hm.datasets.planted_queries(
        codes, BATCH, max_distance=31, match_fraction=0.5, seed=257
    )
    start = time.perf_counter()
    hash_list = hm.HashList("pdq")
    hash_list.add(codes, **_metadata(scale.n))
    built = time.perf_counter() - start
    base = hash_list._snapshot.segments[0].index
    bare = type(base)(256) if isinstance(base, hm.FlatIndex) else hm.MIHIndex(256)
    bare.add(codes)
    fresh = hm.datasets.random_codes(REFRESH, 256, seed=258)
    return Labelled(hash_list, bare, planted.queries, fresh, built)


def _agree(labelled: Labelled) -> None:
    result = labelled.hash_list.match(labelled.queries)
    lims, _, ids = labelled.bare.range_search(labelled.queries, 31)
    assert np.array_equal(np.sort(result.ids), np.sort(ids))
    assert len(result) == lims[-1]


@pytest.mark.benchmark(group="list-match-batch")
@pytest.mark.parametrize("who", ["hashlist", "bare-index"])
def test_match_batch(benchmark: BenchmarkFixture, labelled: Labelled, who: str) -> None:
    _agree(labelled)
    q = labelled.queries
    if who == "hashlist":
        benchmark(labelled.hash_list.match, q)
    else:
        benchmark(labelled.bare.range_search, q, 31)
    benchmark.extra_info.update(queries=len(q), index=type(labelled.bare).__name__)


@pytest.mark.benchmark(group="list-match-single")
@pytest.mark.parametrize("who", ["hashlist", "bare-index"])
def test_match_single(benchmark: BenchmarkFixture, labelled: Labelled, who: str) -> None:
    queries = iter(np.tile(labelled.queries, (50, 1))[:, None, :])
    if who == "hashlist":
        benchmark(lambda: labelled.hash_list.match(next(queries), threads=1))
    else:
        benchmark(lambda: labelled.bare.range_search(next(queries), 31, threads=1))


@pytest.fixture
def restored(labelled: Labelled) -> Iterator[hm.HashList]:
    """The list, put back as it was after each round (rounds must not see each other)."""
    snapshot = labelled.hash_list._snapshot
    yield labelled.hash_list
    labelled.hash_list._publish(snapshot)


@pytest.mark.benchmark(group="list-refresh")
@pytest.mark.parametrize("op", ["add-10k", "remove-10k"])
def test_refresh(
    benchmark: BenchmarkFixture, labelled: Labelled, restored: hm.HashList, scale: Scale, op: str
) -> None:
    snapshot = restored._snapshot
    meta = _metadata(REFRESH, offset=scale.n)
    victims = np.arange(0, scale.n, max(1, scale.n // REFRESH))[:REFRESH]

    def reset() -> None:
        restored._publish(snapshot)

    if op == "add-10k":
        benchmark.pedantic(
            lambda: restored.add(labelled.fresh, **meta), setup=reset, rounds=10, iterations=1
        )
    else:
        benchmark.pedantic(lambda: restored.remove(victims), setup=reset, rounds=10, iterations=1)
    benchmark.extra_info.update(list_entries=scale.n)


@pytest.mark.benchmark(group="list-compact")
def test_compact(
    benchmark: BenchmarkFixture, labelled: Labelled, restored: hm.HashList, scale: Scale
) -> None:
    snapshot = restored._snapshot
    restored.add(labelled.fresh, **_metadata(REFRESH, offset=scale.n))
    with_delta = restored._snapshot

    def reset() -> None:
        restored._publish(with_delta)

    benchmark.pedantic(restored.compact, setup=reset, rounds=2, iterations=1)
    restored._publish(snapshot)
    benchmark.extra_info.update(list_entries=scale.n + REFRESH)


@pytest.fixture(scope="module")
def saved(labelled: Labelled) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="hashmatch-bench-"))
    path = folder / "list.hm"
    labelled.hash_list.save(path)
    yield path
    path.unlink()
    folder.rmdir()


@pytest.mark.benchmark(group="list-load")
@pytest.mark.parametrize("mode", ["mmap-verified", "mmap-unverified", "read"])
def test_load(benchmark: BenchmarkFixture, saved: Path, labelled: Labelled, mode: str) -> None:
    kwargs = {
        "mmap-verified": {"mmap": True},
        "mmap-unverified": {"mmap": True, "verify": False},
        "read": {"mmap": False},
    }[mode]
    loaded = benchmark.pedantic(
        lambda: hm.HashList.load(saved, **kwargs), rounds=3, iterations=1, warmup_rounds=1
    )
    assert len(loaded) == len(labelled.hash_list)
    benchmark.extra_info.update(file_bytes=os.path.getsize(saved))
