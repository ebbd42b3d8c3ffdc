"""Video matching (issue 11): ``VideoIndex`` against python-threatexchange's ``VPDQIndex``.

Workload: ``scale.videos`` banked videos of 300 frames at 1 frame a second (full: 10,000, so
3M frame hashes), made of scenes of 2-8 seconds: a random PDQ hash per scene, each frame that
hash with 0-4 bits flipped (consecutive frames a few bits apart, some exact repeats), quality
50-100 (every frame passes the quality floor, so pytx's index, which filters before it
deduplicates, and its brute matcher, which does the reverse, agree). Query videos of 300
frames: half re-encodes (2-8 more bits per frame) of a banked video's 150-300 seconds, trimmed
and embedded at an offset in unrelated scenes; half unrelated.

Groups (``extra_info["library"]``: hashmatch or pytx):

- ``video-query-2threads`` / ``video-query-1thread``: ``VideoIndex.match`` of one query video
  (percentages, verdict and segments), cycling over the queries; and pytx's
  ``VPDQIndex.query`` of one query video (faiss ``IndexBinaryFlat`` range search over every
  distinct frame hash, then Python sets), a few query videos only at full scale.
- ``video-query-nosegments``: the same with the segment search stubbed out (a benchmark-only
  monkeypatch of ``hashmatch.videos._segments``), to measure what segments cost.
- ``video-match-many``: ``VideoIndex.match_many`` of every query video in one call (queries/s).
- ``video-build``, ``video-save``, ``video-load``: building the bank (ours: ``add_many`` of
  every video; pytx: ``VPDQIndex.build`` from its JSON signal strings), saving and loading it
  (ours: a hashmatch file, loaded with and without mmap; pytx: ``pickle``, which serialises its
  faiss index). One round each.

Before timing, pytx's percentages on the query videos are checked equal to ours (every banked
video pytx reports, with both percentages). Memory: ours is the saved file's size (the arrays
and the frame index), pytx's the growth of the process's resident memory while building.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hashmatch.formats import format_vpdq

import hashmatch as hm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
# tests/vpdq_oracle.py: the stand-in vpdq module that lets pytx's index import
import vpdq_oracle

if TYPE_CHECKING:
    from conftest import Scale
    from pytest_benchmark.fixture import BenchmarkFixture

FRAMES = 300
# videos banked, query videos timed (ours), query videos timed (pytx) per scale
SIZES = {"smoke": (200, 20, 4), "full": (10_000, 40, 3), "10m": (10_000, 40, 3)}


@dataclass
class Videos:
    """The banked videos and query videos of one scale, and both libraries' banks."""

    banked: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    queries: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    pytx_queries: int
    ours: hm.VideoIndex
    theirs: Any
    signals: list[str]
    query_signals: list[str]
    build_seconds: dict[str, float]
    memory_bytes: dict[str, int]


_SINGLE_BITS = np.zeros((257, 32), np.uint8)  # row i < 256: bit i set; row 256: nothing
_SINGLE_BITS[np.arange(256), np.arange(256) // 8] = 1 << (np.arange(256) % 8)


def flip(codes: np.ndarray, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """Each row with ``low`` to ``high`` distinct random bits flipped: XOR with precomputed
    one-bit masks (a few gathers instead of a random draw per bit)."""
    n = len(codes)
    count = rng.integers(low, high + 1, n)
    positions = np.stack([rng.permutation(256)[:high] for _ in range(min(n, 64))])
    chosen = positions[rng.integers(0, len(positions), n)]  # distinct bits per row
    shift = rng.integers(0, 256, n)[:, None]
    chosen = (chosen + shift) % 256
    chosen[np.arange(high)[None, :] >= count[:, None]] = 256
    out = codes.copy()
    for k in range(high):
        out ^= _SINGLE_BITS[chosen[:, k]]
    return out


def scenes(n_frames: int, video_length: int, rng: np.random.Generator) -> np.ndarray:
    """``n_frames`` frame hashes in videos of ``video_length``: scenes of 2-8 frames, each a
    random hash with 0-4 bits flipped per frame."""
    new_scene = rng.random(n_frames) < 1 / 5
    new_scene[:: max(video_length, 1)] = True
    scene = np.cumsum(new_scene) - 1
    base = rng.integers(0, 256, (int(scene[-1]) + 1, 32), dtype=np.uint8)
    return flip(base[scene], 0, 4, rng)


def make_videos(n_videos: int, n_queries: int, seed: int = 11) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(seed)
    codes = scenes(n_videos * FRAMES, FRAMES, rng).reshape(n_videos, FRAMES, 32)
    qualities = rng.integers(50, 101, (n_videos, FRAMES)).astype(np.int16)
    times = np.arange(FRAMES, dtype=np.float64)
    banked = [(codes[v], qualities[v], times) for v in range(n_videos)]
    queries = []
    filler = scenes(n_queries * FRAMES, FRAMES, rng).reshape(n_queries, FRAMES, 32)
    for q in range(n_queries):
        query = filler[q].copy()
        if q % 2 == 0:  # a re-encoded, trimmed part of a banked video, embedded at an offset
            source = int(rng.integers(n_videos))
            length = int(rng.integers(150, FRAMES + 1))
            start = int(rng.integers(0, FRAMES - length + 1))
            at = int(rng.integers(0, FRAMES - length + 1))
            part = codes[source, start : start + length]
            query[at : at + length] = flip(part, 2, 8, rng)
        queries.append((query, rng.integers(50, 101, FRAMES).astype(np.int16), times))
    return banked, queries


def signal(video: tuple[np.ndarray, np.ndarray, np.ndarray]) -> str:
    """pytx's JSON signal string of a video (``vpdq_to_json``'s form)."""
    frames = hm.VideoFrames(video[0], video[1], None, video[2])
    return format_vpdq(frames, format="pytx")


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def videos(scale: Scale) -> Videos:
    n_videos, n_queries, pytx_queries = SIZES[scale.name]
    banked, queries = make_videos(n_videos, n_queries)
    keys = [f"video-{v}" for v in range(n_videos)]
    start = time.perf_counter()
    ours = hm.VideoIndex()
    ours.add_many(banked, keys=keys)
    assert len(ours) == n_videos  # the first read merges the added videos (the real build)
    built = {"hashmatch": time.perf_counter() - start}
    signals = [signal(v) for v in banked]
    gc.collect()
    before = resident_bytes()
    start = time.perf_counter()
    theirs = vpdq_oracle.pytx_vpdq_index().build(
        zip(signals, keys, strict=True), query_match_threshold_pct=0.0
    )
    built["pytx"] = time.perf_counter() - start
    memory = {"pytx": resident_bytes() - before}
    with tempfile.TemporaryDirectory() as tmp:
        ours.save(Path(tmp) / "bank.hm")
        memory["hashmatch"] = (Path(tmp) / "bank.hm").stat().st_size
    query_signals = [signal(q) for q in queries]
    return Videos(
        banked, queries, pytx_queries, ours, theirs, signals, query_signals, built, memory
    )


def describe(benchmark: BenchmarkFixture, videos: Videos, scale: Scale, library: str) -> None:
    benchmark.extra_info.update(
        library=library,
        scale=scale.name,
        videos=len(videos.banked),
        n=len(videos.banked) * FRAMES,  # stored (frame) hashes, as the other suites say
        query_frames=FRAMES,
        build_seconds=videos.build_seconds[library],
        memory_bytes=videos.memory_bytes[library],
        kernel=hm.cpu_features()["kernel"],
    )


def test_pytx_percentages_equal_ours(videos: Videos) -> None:
    """Every banked video pytx reports for a query, with both percentages, equals ours (and
    ours reports no other banked video)."""
    for query, text in list(zip(videos.queries, videos.query_signals, strict=True))[
        : max(videos.pytx_queries, 2)
    ]:
        theirs = {
            m.metadata: (m.similarity_info.query_match_percent,
                         m.similarity_info.compared_match_percent)
            for m in videos.theirs.query(text)
        }  # fmt: skip
        ours = {m.key: (m.query_pct, m.compared_pct) for m in videos.ours.match(query)}
        assert ours == theirs


def _cycle(items: list[Any]) -> Any:
    state = {"i": 0}

    def next_item() -> tuple[tuple[Any, ...], dict[str, Any]]:
        item = items[state["i"] % len(items)]
        state["i"] += 1
        return (item,), {}

    return next_item


@pytest.mark.parametrize("threads", [2, 1], ids=["2threads", "1thread"])
def test_hashmatch_query(
    benchmark: BenchmarkFixture, videos: Videos, scale: Scale, threads: int
) -> None:
    benchmark.group = f"video-query-{threads}thread{'s' if threads > 1 else ''}"
    describe(benchmark, videos, scale, "hashmatch")
    rounds = len(videos.queries) * 2
    benchmark.pedantic(
        lambda q: videos.ours.match(q, threads=threads),
        setup=_cycle(videos.queries),
        rounds=rounds,
        warmup_rounds=2,
    )


@pytest.mark.parametrize("threads", [2, 1], ids=["2threads", "1thread"])
def test_pytx_query(
    benchmark: BenchmarkFixture, videos: Videos, scale: Scale, threads: int
) -> None:
    import faiss

    benchmark.group = f"video-query-{threads}thread{'s' if threads > 1 else ''}"
    describe(benchmark, videos, scale, "pytx")
    faiss.omp_set_num_threads(threads)
    try:
        benchmark.pedantic(
            videos.theirs.query,
            setup=_cycle(videos.query_signals),
            rounds=videos.pytx_queries,
            warmup_rounds=0,
        )
    finally:
        faiss.omp_set_num_threads(2)


def test_hashmatch_query_without_segments(
    benchmark: BenchmarkFixture, videos: Videos, scale: Scale, monkeypatch: pytest.MonkeyPatch
) -> None:
    benchmark.group = "video-query-nosegments"
    describe(benchmark, videos, scale, "hashmatch")
    monkeypatch.setattr("hashmatch.videos._segments", lambda *args: ([], []))
    benchmark.pedantic(
        lambda q: videos.ours.match(q, threads=2),
        setup=_cycle(videos.queries),
        rounds=len(videos.queries) * 2,
        warmup_rounds=2,
    )


def test_hashmatch_match_many(benchmark: BenchmarkFixture, videos: Videos, scale: Scale) -> None:
    benchmark.group = "video-match-many"
    describe(benchmark, videos, scale, "hashmatch")
    benchmark.extra_info["queries"] = len(videos.queries)
    result = benchmark.pedantic(
        lambda: videos.ours.match_many(videos.queries, threads=2), rounds=3, warmup_rounds=1
    )
    assert result.nqueries == len(videos.queries)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["queries_per_s"] = len(videos.queries) / benchmark.stats.stats.median


def test_build(benchmark: BenchmarkFixture, videos: Videos, scale: Scale) -> None:
    """The bank built once (a second build of the same size, timed by the benchmark)."""
    benchmark.group = "video-build"
    describe(benchmark, videos, scale, "hashmatch")
    keys = [f"video-{v}" for v in range(len(videos.banked))]

    def build() -> hm.VideoIndex:
        index = hm.VideoIndex()
        index.add_many(videos.banked, keys=keys)
        len(index)  # adds are merged by the first read: that is the build
        return index

    benchmark.pedantic(build, rounds=1, warmup_rounds=0)


def test_pytx_build(benchmark: BenchmarkFixture, videos: Videos, scale: Scale) -> None:
    benchmark.group = "video-build"
    describe(benchmark, videos, scale, "pytx")
    keys = [f"video-{v}" for v in range(len(videos.banked))]
    cls = vpdq_oracle.pytx_vpdq_index()
    benchmark.pedantic(
        lambda: cls.build(zip(videos.signals, keys, strict=True)), rounds=1, warmup_rounds=0
    )


@pytest.mark.parametrize("how", ["save", "load", "load-mmap"])
def test_save_load(benchmark: BenchmarkFixture, videos: Videos, scale: Scale, how: str) -> None:
    benchmark.group = f"video-{how.split('-')[0]}"
    describe(benchmark, videos, scale, "hashmatch")
    benchmark.extra_info["how"] = how
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bank.hm"
        videos.ours.save(path)
        if how == "save":
            benchmark.pedantic(videos.ours.save, args=(path,), rounds=3, warmup_rounds=0)
            return
        loaded = benchmark.pedantic(
            hm.VideoIndex.load, args=(path,), kwargs={"mmap": how == "load-mmap"}, rounds=3
        )
        assert len(loaded) == len(videos.banked)


@pytest.mark.parametrize("how", ["save", "load"])
def test_pytx_save_load(
    benchmark: BenchmarkFixture, videos: Videos, scale: Scale, how: str
) -> None:
    benchmark.group = f"video-{how}"
    describe(benchmark, videos, scale, "pytx")
    benchmark.extra_info["how"] = f"pytx-pickle-{how}"
    data = pickle.dumps(videos.theirs, protocol=pickle.HIGHEST_PROTOCOL)
    benchmark.extra_info["pickle_bytes"] = len(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bank.pickle"
        path.write_bytes(data)

        def save() -> None:
            with open(path, "wb") as f:
                pickle.dump(videos.theirs, f, protocol=pickle.HIGHEST_PROTOCOL)

        def load() -> Any:
            with open(path, "rb") as f:
                return pickle.load(f)

        benchmark.pedantic(save if how == "save" else load, rounds=1, warmup_rounds=0)


def test_generated_videos_look_like_videos(videos: Videos) -> None:
    """Consecutive frames of a scene are a few bits apart; scenes far apart; some repeats."""
    codes = videos.banked[0][0]
    steps = hm.hamming(codes[1:], codes[:-1])
    assert (steps <= 8).mean() > 0.6 and (steps > 64).any()
    assert len(np.unique(codes, axis=0)) < len(codes)  # exact repeats
    json.loads(videos.signals[0])  # pytx's form
