"""Opening saved indexes: memory-mapped (checksums verified or not) vs read into memory.

Groups ``load-<kind>`` time :func:`hashmatch.load` of a saved FlatIndex or MIHIndex of
``scale.n`` random PDQ (256-bit) hashes in three modes: ``mmap=True`` (every checksum
verified, on every core), ``mmap=True, verify=False`` (structure checked in full, checksums of
big sections skipped) and ``mmap=False`` (the whole file read, then verified). Each round
starts with the file's pages dropped from the page cache (``posix_fadvise(DONTNEED)``, on
Linux): cold-cache numbers, bounded by the disk (on a VM the host may still cache the file);
``-warm`` variants keep the pages cached.
``first-query-<kind>`` times one range search at PDQ's radius 31 right after a
memory-mapped, unverified load (its page faults included). Save time and file size are
recorded in ``extra_info``.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import hashmatch as hm

if TYPE_CHECKING:
    from conftest import Scale
    from pytest_benchmark.fixture import BenchmarkFixture

MODES = {
    "mmap-verify": {"mmap": True, "verify": True},
    "mmap-noverify": {"mmap": True, "verify": False},
    "read": {"mmap": False, "verify": True},
}
ROUNDS = {"smoke": 5, "full": 5, "10m": 3}


@dataclass
class Saved:
    kind: str
    path: Path
    codes: np.ndarray
    save_seconds: float
    file_bytes: int


@pytest.fixture(scope="module", params=["flat", "mih"])
def saved(
    request: pytest.FixtureRequest, scale: Scale, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    kind: str = request.param
    codes = hm.datasets.random_codes(scale.n, 256, seed=3)
    index = hm.FlatIndex(256) if kind == "flat" else hm.MIHIndex(256, max_distance=31)
    index.add(codes)
    path = tmp_path_factory.mktemp("load") / f"{kind}.hm"
    start = time.perf_counter()
    hm.save(index, path)
    seconds = time.perf_counter() - start
    del index
    yield Saved(kind, path, codes, seconds, path.stat().st_size)
    path.unlink()  # big at 10m scale


def drop_from_page_cache(path: Path) -> None:
    """Evict this file's (clean) pages only; a no-op where fadvise is missing."""
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def record(benchmark: BenchmarkFixture, saved: Saved, scale: Scale, mode: str) -> None:
    benchmark.extra_info.update(
        scale=scale.name,
        n=scale.n,
        library=mode,  # report.py's column: the load mode
        save_seconds=round(saved.save_seconds, 3),
        file_bytes=saved.file_bytes,
    )


@pytest.mark.parametrize("cache", ["cold", "warm"])
@pytest.mark.parametrize("mode", list(MODES))
def test_load(
    benchmark: BenchmarkFixture, saved: Saved, scale: Scale, mode: str, cache: str
) -> None:
    benchmark.group = f"load-{saved.kind}" + ("-warm" if cache == "warm" else "")
    record(benchmark, saved, scale, mode)
    loaded: list[Any] = []

    def setup() -> None:
        loaded.clear()  # unmap the last round's file: mapped pages cannot be dropped
        gc.collect()
        if cache == "cold":
            drop_from_page_cache(saved.path)

    def load() -> None:
        loaded.append(hm.load(saved.path, **MODES[mode]))

    benchmark.pedantic(load, setup=setup, rounds=ROUNDS[scale.name], warmup_rounds=1)
    index = loaded[0]
    assert len(index) == scale.n
    ids = index.range_search(saved.codes[:3], 0).ids
    assert ids.tolist() == [0, 1, 2]


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_first_query_after_mmap_load(
    benchmark: BenchmarkFixture, saved: Saved, scale: Scale, cache: str
) -> None:
    benchmark.group = f"first-query-{saved.kind}"
    record(benchmark, saved, scale, f"after mmap-noverify ({cache})")
    query = hm.datasets.flip_bits(saved.codes[:1], [10])

    def setup() -> tuple[tuple[Any, np.ndarray, int], dict[str, Any]]:
        gc.collect()  # the last round's index is gone: its pages can be dropped
        if cache == "cold":
            drop_from_page_cache(saved.path)
        return (hm.load(saved.path, mmap=True, verify=False), query, 31), {}

    def first_query(index: Any, q: np.ndarray, radius: int) -> Any:
        return index.range_search(q, radius)

    result = benchmark.pedantic(first_query, setup=setup, rounds=ROUNDS[scale.name])
    assert result.ids.tolist() == [0]
