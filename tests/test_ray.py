"""Sharded matching on a local Ray (2 CPUs): fan-out equals one Matcher, failover, refresh."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashmatch.distributed import ShardedMatcher, write_partitions
from hashmatch.queries import Queries
from sharding_helpers import assert_same, make_lists, make_queries

import hashmatch as hm

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]

PARTS = {"terror": 3, "csam": 2, "phash": 2}


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def generations(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Two generations of the lists: in memory, and as partition files in their directory."""
    root = tmp_path_factory.mktemp("sharded")
    out = []
    for number in (0, 1):
        lists = make_lists(21, generation=number)
        paths = {
            name: write_partitions(hash_list, root / f"gen-{number}" / name, PARTS[name])
            for name, hash_list in lists.items()
        }
        out.append({"lists": lists, "paths": paths, "matcher": hm.Matcher(lists)})
    return out


@pytest.fixture(scope="module")
def sharded(local_ray: Any, generations: list[dict[str, Any]]) -> Any:
    with ShardedMatcher(generations[0]["paths"], replicas=2, timeout_s=20) as matcher:
        yield matcher


QUERY = make_queries(make_lists(21), 120, seed=22)


def test_fan_out_equals_one_matcher(sharded: Any, generations: list[dict[str, Any]]) -> None:
    matcher = generations[0]["matcher"]
    for query in (QUERY, {"hashes": QUERY["hashes"]}):
        got = sharded.match(**query)
        assert isinstance(got, hm.MatchResult) and got.generation == 0
        assert_same(got, matcher.match(**query))
    assert len(got) > 50 and set(got.list_names) == {"terror", "csam"}
    phash = hm.datasets.flip_bits(
        generations[0]["lists"]["phash"].snapshot().segments[0].codes[:20], [3] * 20
    )
    assert_same(sharded.match(phash), matcher.match(phash))
    assert_same(sharded.match(QUERY["hashes"][:0]), matcher.match(QUERY["hashes"][:0]))
    assert_same(
        sharded.match(QUERY["hashes"], hash_type="pdq", qualities=[10] * 120, min_quality=50),
        matcher.match(QUERY["hashes"], hash_type="pdq", qualities=[10] * 120, min_quality=50),
    )


def test_video_frames_against_image_lists(sharded: Any, generations: list[dict[str, Any]]) -> None:
    frames = (QUERY["hashes"][:60], QUERY["qualities"][:60], np.arange(60) * 0.5)
    want = generations[0]["matcher"].match_video(frames)
    got = sharded.match_video(frames)
    assert len(want) > 10 and len(want.skipped) > 0
    assert_same(got, want)
    assert got.query_times is not None and want.query_times is not None
    assert got.query_times.tolist() == want.query_times.tolist()
    assert got.to_pandas()["time"].tolist() == want.to_pandas()["time"].tolist()


def test_killed_replica_mid_call_fails_over(
    sharded: Any, generations: list[dict[str, Any]]
) -> None:
    want = generations[0]["matcher"].match(**QUERY)
    victim = sharded.replicas("terror", 1)[0]
    pid = ray.get(victim.pid.remote())
    victim.stall.remote(30)  # calls routed to it queue behind this ...
    results: list[hm.MatchResult] = []
    caller = threading.Thread(
        target=lambda: results.extend(sharded.match(**QUERY) for _ in range(2))
    )
    caller.start()
    time.sleep(1.0)
    ray.kill(victim, no_restart=False)  # ... and die with it; Ray restarts the replica
    caller.join(60)
    assert len(results) == 2  # of two calls, the rotation sent one to the victim
    for got in results:
        assert_same(got, want)
    # the restarted replica loads the generation its first call names, and answers again
    prepared = Queries.prepare(QUERY["hashes"], 32)
    path = sharded.paths["terror"][1]
    generation, answer = ray.get(victim.match.remote(0, path, prepared, 40), timeout=60)
    assert generation == 0 and len(answer) > 0
    assert ray.get(victim.pid.remote()) != pid
    for _ in range(2):
        assert_same(sharded.match(**QUERY), want)


def test_slow_replica_times_out_and_fails_over(
    sharded: Any, generations: list[dict[str, Any]]
) -> None:
    want = generations[0]["matcher"].match(**QUERY)
    stalls = [sharded.replicas("csam", 0)[0].stall.remote(4)]
    for _ in range(2):
        assert_same(sharded.match(**QUERY, timeout_s=1.0), want)
    stalls += [r.stall.remote(3) for r in sharded.replicas("csam", 0)]
    with pytest.raises(hm.PartitionUnavailable, match=r"'csam' partition 0 .*within 0.5 s") as e:
        sharded.match(**QUERY, timeout_s=0.5)
    assert (e.value.list_name, e.value.partition, e.value.generation) == ("csam", 0, 0)
    ray.get(stalls)


def test_every_replica_of_a_partition_gone(
    local_ray: Any, generations: list[dict[str, Any]]
) -> None:
    paths = {"terror": generations[0]["paths"]["terror"][:2]}  # any two disjoint files
    lists = {"terror": hm.HashList.load(paths["terror"][0])}
    lists["terror"].add(**_entries(hm.HashList.load(paths["terror"][1])))
    want = hm.Matcher(lists).match(**QUERY)
    with ShardedMatcher(paths, replicas=2, timeout_s=20, max_restarts=0) as matcher:
        first, second = matcher.replicas("terror", 1)
        ray.kill(first, no_restart=True)
        for _ in range(2):
            assert_same(matcher.match(**QUERY), want)
        ray.kill(second, no_restart=True)
        with pytest.raises(hm.PartitionUnavailable, match=r"list 'terror' partition 1 ") as e:
            matcher.match(**QUERY)
        assert isinstance(e.value, hm.HashmatchError) and e.value.partition == 1
        assert "ActorDiedError" in str(e.value) or "RayActorError" in str(e.value)


def _entries(hash_list: hm.HashList) -> dict[str, Any]:
    entries = list(hash_list.entries())
    return {
        "hashes": [e.hash for e in entries],
        "ids": [e.id for e in entries],
        "keys": [e.key for e in entries],
        "labels": [e.labels for e in entries],
        "source": [e.source for e in entries],
    }


def test_generation_swap_under_concurrent_queries(
    sharded: Any, generations: list[dict[str, Any]], tmp_path: Path
) -> None:
    wants = [g["matcher"].match(**QUERY) for g in generations]
    assert len(wants[0]) != len(wants[1])
    start = sharded.generation
    seen: list[tuple[int, hm.MatchResult]] = []
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            got = sharded.match(**QUERY)
            seen.append((got.generation, got))

    callers = [threading.Thread(target=query) for _ in range(2)]
    for t in callers:
        t.start()
    time.sleep(0.5)
    # generation start+1: the new files; start+2: the old ones again, as a rollback would
    assert sharded.refresh(generations[1]["paths"]) == start + 1
    time.sleep(0.5)
    assert sharded.refresh(generations[0]["paths"]) == start + 2
    time.sleep(0.5)
    stop.set()
    for t in callers:
        t.join(60)
    numbers = [n for n, _ in seen]
    assert numbers == sorted(numbers) or len(callers) > 1
    assert {start, start + 1, start + 2} >= set(numbers) and start + 2 in numbers
    for number, got in seen:
        assert_same(got, wants[(number - start) % 2])
    with pytest.raises(hm.InvalidArgument, match="partitions"):
        sharded.refresh({**generations[0]["paths"], "csam": generations[0]["paths"]["csam"][:1]})
    with pytest.raises(hm.InvalidArgument, match="generation"):
        sharded.refresh(generations[0]["paths"], generation=start)


def test_replicas_map_node_local_copies(
    local_ray: Any, generations: list[dict[str, Any]], tmp_path: Path
) -> None:
    paths = generations[0]["paths"]
    with ShardedMatcher(paths, replicas=1, timeout_s=20, cache_dir=tmp_path) as matcher:
        assert_same(matcher.match(**QUERY), generations[0]["matcher"].match(**QUERY))
    copies = sorted(p.name for p in tmp_path.iterdir())
    assert len(copies) == sum(len(p) for p in paths.values())
    assert {c.split("-", 1)[1] for c in copies} == {
        Path(p).name for parts in paths.values() for p in parts
    }


def test_restarted_replicas_load_the_current_generation(
    local_ray: Any, generations: list[dict[str, Any]], tmp_path: Path
) -> None:
    lists = generations[1]["lists"]
    old = {n: write_partitions(h, tmp_path / "gen-0" / n, PARTS[n]) for n, h in lists.items()}
    new = {n: write_partitions(h, tmp_path / "gen-1" / n, PARTS[n]) for n, h in lists.items()}
    want = generations[1]["matcher"].match(**QUERY)
    with ShardedMatcher(old, replicas=2, timeout_s=20, max_restarts=2) as matcher:
        matcher.refresh(new)
        shutil.rmtree(tmp_path / "gen-0")  # the old generation's files are gone, as allowed
        for actor in matcher.replicas("terror", 0):
            ray.kill(actor, no_restart=False)  # both replicas' node went down; Ray restarts them
        deadline = time.monotonic() + 60  # a hang guard, not a speed check
        while True:
            try:
                got = matcher.match(**QUERY)
                break
            except hm.PartitionUnavailable:
                assert time.monotonic() < deadline, "the restarted replicas never answered"
                time.sleep(0.5)
        assert got.generation == 1
        assert_same(got, want)
        loaded = ray.get([a.generations.remote() for a in matcher.replicas("terror", 0)])
        assert [1] in loaded and all(g in ([], [1]) for g in loaded)


def test_refused_refreshes_leave_the_old_generation_serving(
    local_ray: Any, generations: list[dict[str, Any]], tmp_path: Path
) -> None:
    lists = generations[0]["lists"]
    paths = {"terror": generations[0]["paths"]["terror"]}
    want = hm.Matcher({"terror": lists["terror"]}).match(**QUERY)
    narrow = hm.HashList("pdq", name="terror", max_distance=20)  # disagrees with partition 0
    narrow.add(hm.datasets.random_codes(50, seed=3))
    other_radius = [*paths["terror"][:-1], *write_partitions(narrow, tmp_path / "narrow", 1)]
    phash = write_partitions(lists["phash"], tmp_path / "phash", PARTS["terror"])
    with ShardedMatcher(paths, replicas=1, timeout_s=20) as matcher:
        with pytest.raises(hm.InvalidArgument, match="partition 2 of generation 5"):
            matcher.refresh({"terror": other_radius}, generation=5)
        with pytest.raises(hm.InvalidArgument, match="keeps its hash type"):
            matcher.refresh({"terror": phash}, generation=6)
        assert matcher.generation == 0 and matcher.paths == {"terror": tuple(paths["terror"])}
        got = matcher.match(**QUERY)
        assert got.generation == 0
        assert_same(got, want)
        for j in range(len(paths["terror"])):
            assert ray.get(matcher.replicas("terror", j)[0].generations.remote()) == [0]
