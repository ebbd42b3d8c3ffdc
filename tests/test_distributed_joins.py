"""Tiled joins on a local Ray (hashmatch.distributed.joins): equal to the single-machine joins,
retried tiles write no duplicate pairs, stopped jobs resume from their tiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import hashmatch as hm

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from hashmatch.distributed import joins  # noqa: E402

pytestmark = pytest.mark.ray

N = 3000
RADIUS = 31


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    return hm.datasets.clustered_codes(N, 256, seed=14)


def same(a: hm.Pairs, b: hm.Pairs) -> None:
    assert a.i.dtype == b.i.dtype == np.int64
    assert a.j.dtype == b.j.dtype == np.int64
    assert a.distances.dtype == b.distances.dtype == np.int32
    np.testing.assert_array_equal(a.i, b.i)
    np.testing.assert_array_equal(a.j, b.j)
    np.testing.assert_array_equal(a.distances, b.distances)


def test_self_join_equals_find_duplicates(codes: np.ndarray, tmp_path: Path) -> None:
    expected = hm.find_duplicates(codes, RADIUS)
    assert len(expected) > 100
    pairs = joins.find_duplicates(codes, RADIUS, shards=3, work_dir=tmp_path)
    same(pairs, expected)
    assert sorted(os.listdir(tmp_path / "tiles")) == [
        f"{a}-{b}.parquet" for a in range(3) for b in range(a, 3)
    ]
    clusters, single = hm.cluster(pairs), hm.cluster(expected)
    np.testing.assert_array_equal(clusters.labels, single.labels)
    np.testing.assert_array_equal(clusters.representatives, single.representatives)


def test_cross_join_equals_find_matches(codes: np.ndarray, tmp_path: Path) -> None:
    uploads, known = codes[:1000], codes[1000:]
    expected = hm.find_matches(uploads, known, RADIUS)
    assert len(expected) > 10
    pairs = joins.find_matches(uploads, known, RADIUS, shards=3, work_dir=tmp_path)
    same(pairs, expected)
    assert not pairs.self_join
    assert len(os.listdir(tmp_path / "tiles")) == 9


def test_uneven_and_more_shards_than_rows(tmp_path: Path) -> None:
    few = hm.datasets.clustered_codes(5, 64, seed=3)
    few[4] = few[0]
    expected = hm.find_duplicates(few, 8)
    same(joins.find_duplicates(few, 8, shards=7, work_dir=tmp_path), expected)


@pytest.mark.parametrize("fault", ["raise", "exit"])
def test_crashed_tile_is_retried_without_duplicates(
    codes: np.ndarray, tmp_path: Path, fault: str
) -> None:
    (tmp_path / "faults").mkdir()
    marker = tmp_path / "faults" / "0-1"
    marker.write_text(fault)
    job = joins.TiledJoin(tmp_path, codes, RADIUS, shards=3)
    status = job.run(max_retries=2)
    assert not marker.exists() and (tmp_path / "faults" / "0-1.fired").exists()  # it fired
    assert (status.tiles, status.ran, status.resumed) == (6, 6, 0)
    pairs = job.pairs()
    same(pairs, hm.find_duplicates(codes, RADIUS))
    assert status.pairs == len(pairs)
    keys = pairs.i * N + pairs.j
    assert len(np.unique(keys)) == len(keys)
    # the crashed attempt's temporary file was cleared by the retry's write
    assert sorted(os.listdir(tmp_path / "tiles")) == [
        f"{a}-{b}.parquet" for a in range(3) for b in range(a, 3)
    ]


def test_stopped_job_resumes_from_its_tiles(codes: np.ndarray, tmp_path: Path) -> None:
    (tmp_path / "faults").mkdir()
    marker = tmp_path / "faults" / "1-2"
    marker.write_text("always")
    job = joins.TiledJoin(tmp_path, codes, RADIUS, shards=3)
    with pytest.raises(joins.TileFailed, match="1 of 6 tiles failed"):
        job.run(max_retries=1)
    assert sorted(job.finished()) == [(0, 0), (0, 1), (0, 2), (1, 1), (2, 2)]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "tiles").iterdir()}
    marker.unlink()
    again = joins.TiledJoin(tmp_path, codes, RADIUS, shards=3)  # a new process would do this
    status = again.run()
    assert (status.resumed, status.ran) == (5, 1)
    for path, mtime in before.items():  # finished tiles were not run again
        assert path.stat().st_mtime_ns == mtime
    same(again.pairs(), hm.find_duplicates(codes, RADIUS))


def test_foreign_or_stale_tiles(codes: np.ndarray, tmp_path: Path) -> None:
    joins.find_duplicates(codes[:500], RADIUS, shards=2, work_dir=tmp_path)
    with pytest.raises(joins.WorkDirMismatch, match="another job"):
        joins.TiledJoin(tmp_path, codes[:600], RADIUS, shards=2)
    with pytest.raises(joins.WorkDirMismatch, match="max_distance"):
        joins.TiledJoin(tmp_path, codes[:500], 10, shards=2)
    # a tile file that is not a tile's (truncated, or another job's) is run again
    (tmp_path / "tiles" / "0-1.parquet").write_bytes(b"not parquet")
    job = joins.TiledJoin(tmp_path, codes[:500], RADIUS, shards=2)
    assert sorted(job.finished()) == [(0, 0), (1, 1)]
    assert job.run().ran == 1
    same(job.pairs(), hm.find_duplicates(codes[:500], RADIUS))


def test_arrow_and_parquet_inputs(codes: np.ndarray, tmp_path: Path) -> None:
    column = pa.array([bytes(row) for row in codes[:200]], type=pa.binary(32))
    np.testing.assert_array_equal(joins.read_codes(column.slice(50)), codes[50:200])
    path = tmp_path / "hashes.parquet"
    pq.write_table(pa.table({"hash": column, "other": list(range(200))}), path)
    np.testing.assert_array_equal(joins.read_codes(str(path)), codes[:200])
    hexes = pa.chunked_array([[bytes(r).hex() for r in codes[:3]], [bytes(codes[3]).hex()]])
    np.testing.assert_array_equal(joins.read_codes(hexes), codes[:4])


def test_bad_arguments(codes: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(hm.InvalidArgument, match="shards"):
        joins.TiledJoin(tmp_path, codes, RADIUS, shards=0)
    with pytest.raises(hm.HashTypeMismatch):
        joins.TiledJoin(tmp_path, codes, RADIUS, shards=2, others=codes[:, :8])
    with pytest.raises(hm.InvalidArgument):
        joins.TiledJoin(tmp_path, codes, 257, shards=2)


def test_cli_dedup_ray_same_output(codes: np.ndarray, tmp_path: Path) -> None:
    from hashmatch.cli import main

    source = tmp_path / "hashes.txt"
    source.write_text("".join(bytes(row).hex() + "\n" for row in codes[:1500]))
    plain = ["dedup", str(source), "--max-distance", str(RADIUS)]
    outputs = []
    for extra, tag in (
        ([], "plain"),
        (
            ["--ray", "--shards", "3", "--work-dir", str(tmp_path / "work")],
            "ray",
        ),
    ):
        out, clusters = tmp_path / f"{tag}-pairs.csv", tmp_path / f"{tag}-clusters.csv"
        assert main([*plain, *extra, "--out", str(out), "--clusters", str(clusters)]) == 0
        outputs.append((out.read_text(), clusters.read_text()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0].count("\n") > 100


def test_cli_ray_options_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hashmatch.cli import main

    source = tmp_path / "hashes.txt"
    source.write_text("00" * 32 + "\n")
    assert main(["dedup", str(source), "--shards", "3"]) == 2
    assert "--shards, --work-dir: apply to --ray" in capsys.readouterr().err
    assert main(["dedup", str(source), "--ray"]) == 2
    assert "--ray: needs --work-dir" in capsys.readouterr().err
