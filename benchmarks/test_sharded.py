"""Sharded matching and tiled joins on a local Ray (issue 14) against the single-process paths.

Groups (``extra_info["library"]``), on a local Ray of 2 CPUs, ``scale.n`` random PDQ hashes:

* ``ray-serving-batch``: ``scale.n_queries`` queries (half planted within 31) against one list:
  ``matcher`` (:class:`hashmatch.Matcher`, 2 threads), ``sharded`` (a
  :class:`~hashmatch.distributed.ShardedMatcher` over 2 partition files, 1 replica each of 1
  thread: the 2 cores), and ``faiss`` (an ``IndexBinaryFlat`` range search of the same batch,
  radius 32 as faiss is strict ``<``) for scale;
* ``ray-serving-single``: one query, ``matcher`` against ``sharded`` (Ray's per-call cost);
* ``ray-join-self``: every pair within 31 of ``hm.datasets.clustered_codes(scale.n)``:
  ``find-duplicates`` (2 threads) against ``tiled`` (:class:`~hashmatch.distributed.joins.
  TiledJoin`, 4 shards = 10 tile tasks, a fresh work directory every round: shards, tiles and
  merged pairs).

Every sharded or tiled answer is first checked equal to the single-process one. The scripts
``ray_serving.py``, ``ray_dedup.py`` and ``ray_scale.py`` are the 10M runs behind RESULTS.md and
SCALE.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import hashmatch as hm

ray = pytest.importorskip("ray")
pytest.importorskip("pyarrow")
faiss = pytest.importorskip("faiss")

from hashmatch.distributed import ShardedMatcher, joins, write_partitions  # noqa: E402

if TYPE_CHECKING:
    from conftest import Scale
    from pytest_benchmark.fixture import BenchmarkFixture

RADIUS = 31
PARTS = 2


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


class Serving:
    def __init__(self, scale: Scale, root: Path) -> None:
        codes = hm.datasets.random_codes(scale.n, seed=14)
        self.queries = hm.datasets.planted_queries(
            codes, scale.n_queries, max_distance=RADIUS, match_fraction=0.5, seed=15
        ).queries
        listed = hm.HashList("pdq", name="list")
        listed.add(codes)
        self.matcher = hm.Matcher({"list": listed})
        paths = {"list": write_partitions(listed, root / "gen-0", PARTS)}
        self.sharded = ShardedMatcher(paths, replicas=1, threads=1, timeout_s=600)
        self.faiss = faiss.IndexBinaryFlat(256)
        self.faiss.add(codes)
        self.scale = scale


@pytest.fixture(scope="module")
def serving(local_ray: None, scale: Scale) -> Iterator[Serving]:
    with tempfile.TemporaryDirectory() as root:
        built = Serving(scale, Path(root))
        want, got = built.matcher.match(built.queries), built.sharded.match(built.queries)
        for column in ("queries", "lists", "ids", "keys", "distances", "labels", "skipped"):
            assert getattr(got, column).tolist() == getattr(want, column).tolist(), column
        lims, distances, ids = built.faiss.range_search(built.queries, RADIUS + 1)
        rows = np.repeat(np.arange(len(lims) - 1), np.diff(lims).astype(np.int64))
        theirs = sorted(zip(rows.tolist(), ids.tolist(), distances.tolist(), strict=True))
        ours = zip(want.queries.tolist(), want.ids.tolist(), want.distances.tolist(), strict=True)
        assert theirs == sorted(ours)
        yield built
        built.sharded.close()


def describe(benchmark: BenchmarkFixture, scale: Scale, library: str, **extra: Any) -> None:
    benchmark.extra_info.update(library=library, scale=scale.name, n=scale.n, **extra)


@pytest.mark.parametrize("library", ["matcher", "sharded", "faiss"])
def test_serving_batch(benchmark: BenchmarkFixture, serving: Serving, library: str) -> None:
    benchmark.group = "ray-serving-batch"
    describe(benchmark, serving.scale, library, queries=len(serving.queries), partitions=PARTS)
    q = serving.queries
    if library == "faiss":
        call = lambda: serving.faiss.range_search(q, RADIUS + 1)  # noqa: E731
    elif library == "matcher":
        call = lambda: serving.matcher.match(q, threads=2)  # noqa: E731
    else:
        call = lambda: serving.sharded.match(q)  # noqa: E731
    benchmark.pedantic(call, rounds=serving.scale.batch_rounds, warmup_rounds=1)


@pytest.mark.parametrize("library", ["matcher", "sharded"])
def test_serving_single(benchmark: BenchmarkFixture, serving: Serving, library: str) -> None:
    benchmark.group = "ray-serving-single"
    describe(benchmark, serving.scale, library, queries=1, partitions=PARTS)
    one = serving.queries[:1]
    match = serving.matcher.match if library == "matcher" else serving.sharded.match
    benchmark.pedantic(lambda: match(one), rounds=serving.scale.single_rounds, warmup_rounds=3)


@pytest.fixture(scope="module")
def clustered(scale: Scale) -> np.ndarray:
    return hm.datasets.clustered_codes(scale.n, 256, seed=0)


@pytest.mark.parametrize("library", ["find-duplicates", "tiled"])
def test_join_self(
    benchmark: BenchmarkFixture,
    local_ray: None,
    clustered: np.ndarray,
    scale: Scale,
    library: str,
    tmp_path: Path,
) -> None:
    benchmark.group = "ray-join-self"
    describe(benchmark, scale, library, shards=4)
    rounds = iter(range(1_000))

    def tiled() -> hm.Pairs:  # a fresh work directory: nothing to resume
        return joins.find_duplicates(
            clustered, RADIUS, shards=4, work_dir=tmp_path / str(next(rounds))
        )

    def single() -> hm.Pairs:
        return hm.find_duplicates(clustered, RADIUS, threads=2)

    call = tiled if library == "tiled" else single
    if library == "tiled":
        want, got = single(), call()
        for column in ("i", "j", "distances"):
            assert getattr(got, column).tolist() == getattr(want, column).tolist(), column
    pairs = benchmark.pedantic(call, rounds=2 if scale.name == "smoke" else 1, warmup_rounds=0)
    benchmark.extra_info["pairs"] = len(pairs)
