"""Sharded video matching on a local Ray (2 CPUs): equal to one VideoIndex, failover, refresh."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashmatch.distributed import (
    ShardedMatcher,
    ShardedVideoMatcher,
    partition_of,
    write_partitions,
)
from test_videos import frames_at, scenes

import hashmatch as hm

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]

SLATE = hm.datasets.random_codes(1, seed=99)  # a frame every slated video shows
SLATED = 6  # videos that start on it


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def make_videos(seed: int) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Banked videos (some start on the slate; one repeats a scene of another) and their ids."""
    rng = np.random.default_rng(seed)
    videos = [scenes(rng, int(rng.integers(12, 30))) for _ in range(24)]
    for v in videos[:SLATED]:
        v[0][0] = SLATE[0]
    videos[9][0][4:8] = videos[10][0][0:4]  # a scene shared by two videos
    ids = [int(i) for i in rng.permutation(100_000)[:24]]
    return videos, ids


def make_index(videos: list[tuple[Any, ...]], ids: list[int]) -> hm.VideoIndex:
    index = hm.VideoIndex(name="bank", max_distance=31, min_quality=50)
    index.add_many(
        videos,
        ids=ids,
        keys=[f"v{i}" for i in ids],
        labels=[("violence",) if i % 2 else ("terrorism", "x") for i in ids],
        sources=[None if i % 3 else "partner" for i in ids],
    )
    return index


VIDEOS, IDS = make_videos(7)
RNG = np.random.default_rng(8)


def trimmed(video: tuple[Any, ...], lo: int, hi: int, shift: float) -> tuple[Any, ...]:
    times = video[2][lo:hi]
    return frames_at(video, times, RNG), np.full(len(times), 90), times - times[0] + shift


def embedded(video: tuple[Any, ...]) -> tuple[Any, ...]:
    """The banked video inside a longer upload, from second 15 on."""
    filler = hm.datasets.random_codes(15, seed=3)
    codes = np.concatenate([filler, frames_at(video, video[2], RNG)])
    times = np.concatenate([np.arange(15.0), video[2] + 15])
    return codes, np.full(len(codes), 100), times


NOTHING = (hm.datasets.random_codes(10, seed=4), np.full(10, 100), np.arange(10.0))
QUERIES = [
    VIDEOS[3],
    trimmed(VIDEOS[7], 2, 10, 30.0),
    embedded(VIDEOS[11]),
    trimmed(VIDEOS[9], 0, 12, 0.0),  # also shows the scene of video 10
    (SLATE, np.array([100]), np.array([0.0])),
    NOTHING,
]
OPTIONS: list[dict[str, Any]] = [
    {},
    {"semantics": "cpp"},
    {"common_videos": 2, "min_compared_pct": 0},
    {"min_query_pct": 80, "min_compared_pct": 0, "max_distance": 20, "min_quality": 95},
    {"min_duration": 4.0, "max_gap": 2.0},
]


@pytest.fixture(scope="module")
def whole() -> hm.VideoIndex:
    return make_index(VIDEOS, IDS)


@pytest.fixture(scope="module", params=[2, 3])
def sharded(
    request: pytest.FixtureRequest,
    local_ray: Any,
    whole: hm.VideoIndex,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    parts = request.param
    paths = write_partitions(whole, tmp_path_factory.mktemp(f"p{parts}") / "gen-0", parts)
    with ShardedVideoMatcher(paths, replicas=2, timeout_s=20) as matcher:
        yield matcher


def assert_same(got: Any, want: hm.VideoMatchResult, generation: int = 0) -> None:
    assert isinstance(got, hm.VideoMatchResult) and got.generation == generation
    assert got.rows == want.rows
    assert (got.nqueries, dict(got.thresholds)) == (want.nqueries, dict(want.thresholds))


def test_the_slate_is_in_several_partitions() -> None:
    # so the slate's common_frames count crosses partitions: no partition holds more than
    # common_videos=2 of them, the whole bank does
    for parts in (2, 3):
        counts = np.bincount(partition_of(IDS[:SLATED], parts), minlength=parts)
        assert (counts > 0).sum() >= 2 and counts.max() < SLATED


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_equal_to_one_index(sharded: Any, whole: hm.VideoIndex, options: dict[str, Any]) -> None:
    want = whole.match_many(QUERIES, **options)
    got = sharded.match_many(QUERIES, **options)
    assert_same(got, want)
    assert len(want) > len(QUERIES)
    for number, query in enumerate(QUERIES):
        assert_same(sharded.match(query, **options), whole.match(query, **options))
        if query is NOTHING:
            assert not [m for m in got if m.query == number]


def test_common_frames_count_every_partition(sharded: Any, whole: hm.VideoIndex) -> None:
    slate = QUERIES[4]
    for common in (2, 5, 6):
        want = whole.match(slate, common_videos=common, min_compared_pct=0)
        got = sharded.match(slate, common_videos=common, min_compared_pct=0)
        assert_same(got, want)
        assert len(got) == SLATED
        assert {m.common_frames for m in got} == {1 if common < SLATED else 0}
    shared = sharded.match(QUERIES[3], common_videos=1)
    assert_same(shared, whole.match(QUERIES[3], common_videos=1))
    assert {m.id for m in shared} >= {IDS[9], IDS[10]}
    assert max(m.common_frames for m in shared) > 0


def test_dihedral_and_alternative_hashings(sharded: Any, whole: hm.VideoIndex) -> None:
    banked = VIDEOS[5]
    n = len(banked[2])
    stacks = hm.datasets.random_codes(n * 8, seed=5).reshape(n, 8, 32)
    stacks[:, hm.TRANSFORMS.index("rotate_90")] = frames_at(banked, banked[2], RNG)
    query = (stacks, np.full(n, 100), banked[2])
    got = sharded.match(query, dihedral=True)
    assert_same(got, whole.match(query, dihedral=True))
    assert got[0].id == IDS[5] and got[0].transform == "rotate_90"
    # hashings of one upload: each banked video at the better one
    bad = (hm.datasets.random_codes(n, seed=6), banked[1], banked[2])
    half = (np.concatenate([banked[0][: n // 2], stacks[n // 2 :, 0]]), banked[1], banked[2])
    batch = [[bad, half, banked], QUERIES[2], [NOTHING], [QUERIES[1], QUERIES[3]]]
    got = sharded.match_many(batch, common_videos=1)
    assert_same(got, whole.match_many(batch, common_videos=1))
    assert got.nqueries == 4 and got[0].id == IDS[5] and got[0].query_pct == 100.0
    assert {m.query for m in got} == {0, 1, 3}


def test_empty_partitions_and_empty_batches(
    local_ray: Any, whole: hm.VideoIndex, tmp_path: Path
) -> None:
    small = make_index(VIDEOS[:1], IDS[:1])
    paths = write_partitions(small, tmp_path / "gen-0", 3)
    assert sorted(len(hm.VideoIndex.load(p)) for p in paths) == [0, 0, 1]
    with ShardedVideoMatcher(paths, replicas=1) as matcher:
        for query in (VIDEOS[0], QUERIES[1], NOTHING):
            assert_same(matcher.match(query), small.match(query))
        assert len(matcher.match(VIDEOS[0])) == 1
        assert_same(matcher.match_many([]), small.match_many([]))
        assert matcher.name == "bank" and "3 partitions x 1" in repr(matcher)


def test_killed_replica_mid_call_fails_over(sharded: Any, whole: hm.VideoIndex) -> None:
    want = whole.match_many(QUERIES)
    victim = sharded.replicas("videos", 0)[0]
    pid = ray.get(victim.pid.remote())
    victim.stall.remote(30)  # calls routed to it queue behind this ...
    results: list[Any] = []
    caller = threading.Thread(
        target=lambda: results.extend(sharded.match_many(QUERIES) for _ in range(2))
    )
    caller.start()
    time.sleep(1.0)
    ray.kill(victim, no_restart=False)  # ... and die with it; Ray restarts the replica
    caller.join(60)
    assert len(results) == 2
    for got in results:
        assert_same(got, want)
    assert ray.get(victim.pid.remote(), timeout=60) != pid  # restarted, loads on its first call
    for _ in range(2):  # the rotation sends one of these to it
        assert_same(sharded.match_many(QUERIES), want)
    assert ray.get(victim.generations.remote()) == [sharded.generation]


def test_every_replica_of_a_partition_gone(
    local_ray: Any, whole: hm.VideoIndex, tmp_path: Path
) -> None:
    paths = write_partitions(whole, tmp_path / "gen-4", 2)
    want = whole.match_many(QUERIES)
    with ShardedVideoMatcher(paths, replicas=2, generation=4, max_restarts=0) as matcher:
        first, second = matcher.replicas("videos", 1)
        ray.kill(first, no_restart=True)
        for _ in range(2):
            assert_same(matcher.match_many(QUERIES), want, generation=4)
        ray.kill(second, no_restart=True)
        with pytest.raises(hm.PartitionUnavailable, match=r"video index partition 1 ") as e:
            matcher.match_many(QUERIES)
        assert (e.value.list_name, e.value.partition, e.value.generation) == ("videos", 1, 4)


def test_refresh_to_a_new_generation(local_ray: Any, tmp_path: Path) -> None:
    old = make_index(VIDEOS, IDS)
    new_videos, new_ids = [*VIDEOS[1:], scenes(RNG, 20)], [*IDS[1:], 123_456_789]
    new = make_index(new_videos, new_ids)
    added = trimmed(new_videos[-1], 0, 15, 3.0)
    batch = [*QUERIES, VIDEOS[0], added]
    paths = [write_partitions(x, tmp_path / f"gen-{i}", 3) for i, x in enumerate((old, new))]
    with ShardedVideoMatcher(paths[0], replicas=1) as matcher:
        before = matcher.match_many(batch)
        assert_same(before, old.match_many(batch))
        assert matcher.refresh(paths[1], generation=5) == 5 and matcher.generation == 5
        after = matcher.match_many(batch)
        assert_same(after, new.match_many(batch), generation=5)
        assert IDS[0] in {m.id for m in before} and IDS[0] not in {m.id for m in after}
        assert 123_456_789 in {m.id for m in after} - {m.id for m in before}
        with pytest.raises(hm.InvalidArgument, match="paths: expected 3 partitions"):
            matcher.refresh(paths[1][:2])
        with pytest.raises(hm.InvalidArgument, match="generation"):
            matcher.refresh(paths[0], generation=5)
        assert matcher.generation == 5


def test_bad_arguments(local_ray: Any, whole: hm.VideoIndex, tmp_path: Path) -> None:
    video_paths = write_partitions(whole, tmp_path / "videos", 2)
    hashes = hm.HashList("pdq", name="hashes")
    hashes.add(hm.datasets.random_codes(20, seed=1))
    list_paths = write_partitions(hashes, tmp_path / "hashes", 2)
    with pytest.raises(hm.InvalidArgument, match=r"paths\[0\]: .* holds a HashList, not a Vid"):
        ShardedVideoMatcher(list_paths, replicas=1)
    with pytest.raises(hm.InvalidArgument, match=r"lists\['x'\]: partition 0 .* VideoIndex"):
        ShardedMatcher({"x": video_paths}, replicas=1)
    other = hm.VideoIndex(name="bank", max_distance=20)
    other.add_many(VIDEOS[:3])
    mixed = [video_paths[0], write_partitions(other, tmp_path / "other", 2)[1]]
    with pytest.raises(hm.InvalidArgument, match=r"paths\[1\]: .* within 20.* within 31"):
        ShardedVideoMatcher(mixed, replicas=1)
    with pytest.raises(hm.InvalidType, match="paths: expected a sequence"):
        ShardedVideoMatcher(video_paths[0], replicas=1)  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match="paths: expected at least one"):
        ShardedVideoMatcher([], replicas=1)
    with pytest.raises(hm.InvalidArgument, match="replicas"):
        ShardedVideoMatcher(video_paths, replicas=0)
    with ShardedVideoMatcher(video_paths, replicas=1) as matcher:
        with pytest.raises(hm.InvalidArgument, match="semantics"):
            matcher.match(VIDEOS[0], semantics="exact")  # type: ignore[arg-type]
        with pytest.raises(hm.InvalidArgument, match="timeout_s"):
            matcher.match(VIDEOS[0], timeout_s=0)
