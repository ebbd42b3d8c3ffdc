"""Tiled joins on a local Ray (hashmatch.distributed.joins): equal to the single-machine joins,
retried tiles write no duplicate pairs, stopped jobs resume from their tiles."""

from __future__ import annotations

import os
import re
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


@pytest.mark.parametrize("cross", [False, True])
def test_pairs_stream_one_shard_at_a_time(codes: np.ndarray, tmp_path: Path, cross: bool) -> None:
    first, second = (codes[:1800], codes[1800:]) if cross else (codes, None)
    expected = (
        hm.find_matches(first, second, RADIUS) if cross else hm.find_duplicates(codes, RADIUS)
    )
    job = joins.TiledJoin(tmp_path / "w", first, RADIUS, shards=3, others=second)
    job.run()
    chunks = list(job.iter_pairs())
    assert len(chunks) == 3
    for a, (i, _, _) in enumerate(chunks):  # chunk a holds the pairs whose i is in shard a
        assert ((i >= job.bounds[a]) & (i < job.bounds[a + 1])).all()
    merged = [np.concatenate([c[k] for c in chunks]) for k in range(3)]
    for got, want in zip(merged, (expected.i, expected.j, expected.distances), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert len(expected) > 10
    written = tmp_path / "pairs.parquet"
    assert job.write_pairs(written) == len(expected)
    table = pq.read_table(written)
    assert table.column_names == ["i", "j", "distance"]  # in-memory input: no ids
    assert pq.ParquetFile(written).metadata.num_row_groups == 3
    np.testing.assert_array_equal(table.column("i").to_numpy(), expected.i)
    np.testing.assert_array_equal(table.column("j").to_numpy(), expected.j)
    np.testing.assert_array_equal(table.column("distance").to_numpy(), expected.distances)


def test_written_pairs_carry_the_input_ids(codes: np.ndarray, tmp_path: Path) -> None:
    listed = hm.HashList("pdq", max_distance=RADIUS)
    ids = np.arange(len(codes)) * 7 + 3
    listed.add(codes, ids=ids)
    listed.save(tmp_path / "list.hm")
    job = joins.TiledJoin(tmp_path / "w", tmp_path / "list.hm", RADIUS, shards=2)
    job.run()
    assert job.write_pairs(tmp_path / "pairs.parquet") > 100
    table = pq.read_table(tmp_path / "pairs.parquet")
    expected = hm.find_duplicates(codes, RADIUS)
    np.testing.assert_array_equal(table.column("id_i").to_numpy(), ids[expected.i])
    np.testing.assert_array_equal(table.column("id_j").to_numpy(), ids[expected.j])


def test_written_pairs_without_any_pair(tmp_path: Path) -> None:
    job = joins.TiledJoin(tmp_path / "w", hm.datasets.random_codes(50, seed=1), 0, shards=2)
    job.run()
    assert job.write_pairs(tmp_path / "none.parquet") == 0
    table = pq.read_table(tmp_path / "none.parquet")
    assert table.num_rows == 0 and table.column_names == ["i", "j", "distance"]


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
    cross = joins.TiledJoin(tmp_path / "x", codes[:10], RADIUS, shards=2, others=codes[10:20])
    with pytest.raises(hm.InvalidArgument, match="others: clusters need a self-join"):
        cross.clusters()
    job = joins.TiledJoin(tmp_path / "s", codes[:10], RADIUS, shards=2)
    with pytest.raises(hm.InvalidArgument, match="qualities: expected 10 values"):
        job.clusters(qualities=[1, 2])
    with pytest.raises(hm.InvalidArgument, match="work_dir: tile 0-0 is not finished"):
        job.clusters()


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


def test_cli_dedup_ray_reads_parquet_and_hm_on_the_tasks(codes: np.ndarray, tmp_path: Path) -> None:
    from hashmatch.cli import main

    part = codes[:1500]
    text = tmp_path / "hashes.csv"  # the same hashes and ids, as a text file read here
    text.write_text(
        "hash,id\n" + "".join(f"{bytes(r).hex()},{1000 + i}\n" for i, r in enumerate(part))
    )
    folder = tmp_path / "parquet"
    for k, (lo, hi) in enumerate([(0, 700), (700, 700), (700, 1500)]):  # one file empty
        (folder / f"day={k}").mkdir(parents=True)
        table = pa.table(
            {
                "pdq": pa.array([bytes(r) for r in part[lo:hi]], type=pa.binary(32)),
                "media_id": pa.array(np.arange(1000 + lo, 1000 + hi), type=pa.int64()),
            }
        )
        pq.write_table(table, folder / f"day={k}" / "part-0.parquet")
    listed = hm.HashList("pdq", max_distance=RADIUS)
    listed.add(part, ids=np.arange(1000, 1000 + len(part)))
    listed.save(tmp_path / "list.hm")
    base = ["dedup", "--max-distance", str(RADIUS)]
    ray_run = ["--ray", "--shards", "3"]

    def outputs(tag: str, *args: str) -> tuple[str, str]:
        out, clusters = tmp_path / f"{tag}-pairs.csv", tmp_path / f"{tag}-clusters.csv"
        assert main([*base, *args, "--out", str(out), "--clusters", str(clusters)]) == 0
        return out.read_text(), clusters.read_text()

    want = outputs("text", str(text))
    assert want[0].count("\n") > 100
    got_parquet = outputs(
        "parquet", str(folder), *ray_run, "--work-dir", str(tmp_path / "w1"),
        "--column", "pdq", "--id-column", "media_id",
    )  # fmt: skip
    assert got_parquet == want
    assert (
        outputs("hm", str(tmp_path / "list.hm"), *ray_run, "--work-dir", str(tmp_path / "w2"))
        == want
    )
    # clusters as Parquet, written shard by shard: row, id, cluster
    labels = tmp_path / "labels.parquet"
    args = [*base, str(tmp_path / "list.hm"), *ray_run, "--work-dir", str(tmp_path / "w2")]
    assert main([*args, "--clusters", str(labels)]) == 0
    table = pq.read_table(labels)
    assert table.column("id").to_pylist() == list(range(1000, 1000 + len(part)))
    expected = hm.cluster(part, RADIUS).labels
    assert table.column("cluster").to_numpy().tolist() == expected.tolist()


def test_cli_ray_file_input_options_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hashmatch.cli import main

    listed = hm.HashList("pdq")
    listed.add(hm.datasets.random_codes(5, seed=2))
    listed.save(tmp_path / "list.hm")
    ray_run = ["dedup", str(tmp_path / "list.hm"), "--ray", "--work-dir", str(tmp_path / "w")]
    assert main([*ray_run, "--representative", "quality"]) == 2
    assert "--representative quality: not with Parquet or .hm input" in capsys.readouterr().err
    assert main([*ray_run, "--bits", "64"]) == 2
    assert "holds 256-bit hashes, not 64-bit" in capsys.readouterr().err
    text = tmp_path / "hashes.txt"
    text.write_text("00" * 32 + "\n")
    assert main(["dedup", str(text), "--column", "pdq"]) == 2
    assert "--column, --id-column: apply to Parquet or .hm input" in capsys.readouterr().err


def test_cli_ray_options_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hashmatch.cli import main

    source = tmp_path / "hashes.txt"
    source.write_text("00" * 32 + "\n")
    assert main(["dedup", str(source), "--shards", "3"]) == 2
    assert "--shards, --work-dir: apply to --ray" in capsys.readouterr().err
    assert main(["dedup", str(source), "--ray"]) == 2
    assert "--ray: needs --work-dir" in capsys.readouterr().err


# ---------------------------------------------------------------- file inputs


def write_parquet(
    path: Path, codes: np.ndarray, kind: str, *, groups: int | None = None, start: int = 0
) -> None:
    """Hashes as a Parquet column `hash` of `kind` ("fixed", "binary" or "hex"), ids
    ``k<row>`` in column `key`."""
    rows = [bytes(row) for row in codes]
    column = {
        "fixed": pa.array(rows, type=pa.binary(codes.shape[1])),
        "binary": pa.array(rows, type=pa.binary()),
        "hex": pa.array([r.hex() for r in rows], type=pa.string()),
    }[kind]
    keys = pa.array([f"k{start + r}" for r in range(len(rows))], type=pa.string())
    pq.write_table(pa.table({"hash": column, "key": keys}), path, row_group_size=groups)


@pytest.fixture
def parquet_dir(codes: np.ndarray, tmp_path: Path) -> Path:
    """codes in 4 Parquet files of uneven sizes (one empty), three column kinds."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_parquet(folder / "0.parquet", codes[:1000], "fixed", groups=300)
    write_parquet(folder / "1.parquet", codes[:0], "binary")
    write_parquet(folder / "2.parquet", codes[1000:1700], "hex", start=1000, groups=256)
    write_parquet(folder / "3.parquet", codes[1700:], "binary", start=1700)
    return folder


def test_parquet_files_equal_single_machine(
    codes: np.ndarray, parquet_dir: Path, tmp_path: Path
) -> None:
    job = joins.TiledJoin(tmp_path / "w", parquet_dir, RADIUS, shards=3, id_column="key")
    assert job.codes is None  # the driver read only metadata
    assert not any((tmp_path / "w" / "shards").iterdir())  # shards are written by tasks
    status = job.run()
    assert status.tiles == 6
    pairs = job.pairs()
    same(pairs, hm.find_duplicates(codes, RADIUS))
    np.testing.assert_array_equal(pairs.codes, codes)
    ids = job.ids()
    assert ids is not None and list(ids) == [f"k{r}" for r in range(N)]
    # a list of files, cross join against in-memory hashes; no id column: no ids
    files = [parquet_dir / "2.parquet", parquet_dir / "3.parquet"]
    cross = joins.find_matches(files, codes[:1000], RADIUS, shards=2, work_dir=tmp_path / "x")
    same(cross, hm.find_matches(codes[1000:], codes[:1000], RADIUS))
    assert cross.ids is None


def test_hm_input_equals_single_machine(codes: np.ndarray, tmp_path: Path) -> None:
    paths = []
    for k, (lo, hi) in enumerate(((0, 1800), (1800, N))):
        listed = hm.HashList("pdq")
        listed.add(codes[lo:hi], ids=np.arange(lo, hi) * 10 + 7)
        paths.append(tmp_path / f"{k}.hm")
        listed.save(paths[-1])
    job = joins.TiledJoin(tmp_path / "w", paths, RADIUS, shards=4)
    job.run()
    same(job.pairs(), hm.find_duplicates(codes, RADIUS))
    ids = job.ids()
    assert ids is not None
    np.testing.assert_array_equal(ids, np.arange(N) * 10 + 7)
    uploads = joins.find_matches(codes[:500], paths, RADIUS, shards=2, work_dir=tmp_path / "x")
    same(uploads, hm.find_matches(codes[:500], codes, RADIUS))
    np.testing.assert_array_equal(uploads.other_ids, np.arange(N) * 10 + 7)


def test_crashed_shard_task_is_retried(
    codes: np.ndarray, parquet_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "w"
    (work / "faults").mkdir(parents=True)
    (work / "faults" / "shard-a-1").write_text("raise")
    pairs = joins.find_duplicates(parquet_dir, RADIUS, shards=3, work_dir=work, max_retries=1)
    assert (work / "faults" / "shard-a-1.fired").exists()
    same(pairs, hm.find_duplicates(codes, RADIUS))
    (work / "faults" / "shard-a-2").write_text("always")  # shards are there: never run again
    (work / "shards" / "a-0.npy").unlink()
    (work / "faults" / "shard-a-0").write_text("always")
    with pytest.raises(joins.TileFailed, match="1 of 1 shards failed"):
        joins.TiledJoin(work, parquet_dir, RADIUS, shards=3).run(max_retries=0)


def test_file_job_resumes_and_detects_changed_files(
    codes: np.ndarray, parquet_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "w"
    (work / "faults").mkdir(parents=True)
    marker = work / "faults" / "0-2"
    marker.write_text("always")
    with pytest.raises(joins.TileFailed):
        joins.TiledJoin(work, parquet_dir, RADIUS, shards=3).run(max_retries=0)
    marker.unlink()
    status = joins.TiledJoin(work, parquet_dir, RADIUS, shards=3).run()
    assert (status.resumed, status.ran) == (5, 1)
    same(
        joins.TiledJoin(work, parquet_dir, RADIUS, shards=3).pairs(),
        hm.find_duplicates(codes, RADIUS),
    )
    changed = codes[1700:].copy()
    changed[0] ^= 0xFF
    write_parquet(parquet_dir / "3.parquet", changed, "fixed", start=1700)
    with pytest.raises(joins.WorkDirMismatch, match="fingerprint"):
        joins.TiledJoin(work, parquet_dir, RADIUS, shards=3)


def test_bad_file_inputs(codes: np.ndarray, parquet_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    with pytest.raises(hm.InvalidArgument, match=r"column: .* no column 'phash'"):
        joins.TiledJoin(work, parquet_dir, RADIUS, shards=2, column="phash")
    with pytest.raises(hm.InvalidArgument, match=r"id_column: .* no column 'nope'"):
        joins.TiledJoin(work, parquet_dir, RADIUS, shards=2, id_column="nope")
    with pytest.raises(hm.InvalidArgument, match=r"codes: no such file .*missing\.parquet"):
        joins.TiledJoin(work, [tmp_path / "missing.parquet"], RADIUS, shards=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(hm.InvalidArgument, match=r"codes: no \.parquet or \.hm files"):
        joins.TiledJoin(work, tmp_path / "empty", RADIUS, shards=2)
    write_parquet(tmp_path / "narrow.parquet", codes[:10, :8], "hex")
    with pytest.raises(hm.HashTypeMismatch, match=r"codes: .*narrow\.parquet holds 64-bit"):
        joins.TiledJoin(work, [parquet_dir / "0.parquet", tmp_path / "narrow.parquet"], 8, shards=2)
    with pytest.raises(hm.HashTypeMismatch, match="others: expected 256-bit"):
        joins.TiledJoin(work, parquet_dir, 8, shards=2, others=[tmp_path / "narrow.parquet"])
    pq.write_table(pa.table({"hash": list(range(5))}), tmp_path / "ints.parquet")
    with pytest.raises(hm.InvalidType, match=r"column: .*ints\.parquet.*int64"):
        joins.TiledJoin(work, [tmp_path / "ints.parquet"], 8, shards=2)
    mixed = pa.array([bytes(codes[0]), bytes(codes[1, :8])], type=pa.binary())
    pq.write_table(pa.table({"hash": mixed}), tmp_path / "mixed.parquet")
    job = joins.TiledJoin(tmp_path / "m", [tmp_path / "mixed.parquet"], 8, shards=1)
    with pytest.raises(hm.HashmatchError):  # found by the shard task, raised as is
        job.run(max_retries=0)


# ---------------------------------------------------------------- streaming clusters


def cluster_codes() -> np.ndarray:
    """Singletons (random), a chain of 5,000 (> the exact-medoid limit) whose ends are far
    apart, and exact duplicates; shuffled so every cluster spans the shards."""
    rng = np.random.default_rng(5)
    loose = hm.datasets.random_codes(1500, 256, seed=6)
    chain = np.empty((5000, 32), np.uint8)
    bits = np.unpackbits(loose[0])
    for k in range(5000):
        bits = bits.copy()
        bits[rng.choice(256, 12, replace=False)] ^= 1
        chain[k] = np.packbits(bits)
    copies = loose[rng.choice(1500, 200)]
    codes = np.concatenate([loose, chain, copies])
    return np.ascontiguousarray(codes[rng.permutation(len(codes))])


@pytest.mark.parametrize("group_rows", [1 << 24, 100])
def test_streaming_clusters_equal_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_rows: int
) -> None:
    monkeypatch.setattr(joins, "_MEDOID_ROWS", group_rows)  # 100: medoids in groups
    calls: list[int] = []

    def counted(codes: np.ndarray, *args: object) -> np.ndarray:
        calls.append(len(codes))
        return hm.dedup.medoids(codes, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(joins, "medoids", counted)
    codes = cluster_codes()
    job = joins.TiledJoin(tmp_path, codes, RADIUS, shards=4)
    job.run()
    expected = hm.cluster(hm.find_duplicates(codes, RADIUS))
    assert expected.sizes.max() >= 5000 and (expected.sizes == 1).sum() > 500
    assert (hm.find_duplicates(codes, 0).distances == 0).sum() >= 150
    qualities = np.random.default_rng(1).integers(0, 101, len(codes))
    for radius, kwargs in ((RADIUS, {}), (12, {}), (RADIUS, {"qualities": qualities})):
        single = hm.cluster(hm.find_duplicates(codes, RADIUS), radius, **kwargs)  # type: ignore[arg-type]
        streamed = job.clusters(radius, **kwargs)  # type: ignore[arg-type]
        np.testing.assert_array_equal(streamed.labels, single.labels)
        np.testing.assert_array_equal(streamed.sizes, single.sizes)
        np.testing.assert_array_equal(streamed.representatives, single.representatives)
        assert streamed.representative == single.representative
        assert streamed.pairs == int((single.pairs.distances <= radius).sum())
        np.testing.assert_array_equal(streamed.duplicates(), single.duplicates())
    if group_rows == 100:  # groups of <= 100 members, the 5,001-member chain alone in one
        assert len(calls) >= 2 * 3 and max(calls) > 5000
        assert sorted(calls)[-3] <= 100
    else:
        assert len(calls) == 2  # one group per medoid call (the quality run makes none)
    labels_path = tmp_path / "labels.parquet"
    job.clusters(labels_path=labels_path)
    table = pq.read_table(labels_path)
    assert table.column_names == ["row", "cluster"]
    np.testing.assert_array_equal(table.column("cluster").to_numpy(), expected.labels)
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        job.clusters(RADIUS + 1)


def test_cluster_entry_point_with_ids(codes: np.ndarray, parquet_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.parquet"
    clusters = joins.cluster(
        parquet_dir, RADIUS, shards=3, work_dir=tmp_path / "w", id_column="key", labels_path=out
    )
    expected = hm.cluster(codes, RADIUS)
    np.testing.assert_array_equal(clusters.labels, expected.labels)
    np.testing.assert_array_equal(clusters.representatives, expected.representatives)
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [f"k{r}" for r in range(N)]
    assert len(clusters.members(0)) == expected.sizes[0]


# ---------------------------------------------------------------- Ctrl-C

_STOPPED = """
import sys, ray
import hashmatch as hm
from hashmatch.distributed import joins
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
codes = hm.datasets.clustered_codes({n}, 256, seed=14)
job = joins.TiledJoin(sys.argv[1], codes, {radius}, shards=4)
print("started", flush=True)
job.run(max_retries=0)
"""


def test_ctrl_c_cancels_and_resumes(codes: np.ndarray, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    work = tmp_path / "w"
    (work / "faults").mkdir(parents=True)
    slow = [f"{a}-{b}" for a in range(4) for b in range(a, 4) if (a, b) not in ((0, 0), (0, 1))]
    for name in slow:
        (work / "faults" / name).write_text("sleep 30")
    process = subprocess.Popen(
        [sys.executable, "-c", _STOPPED.format(n=N, radius=RADIUS), str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # hang guard, not a speed assertion
        tiles = work / "tiles"
        while time.monotonic() < deadline:
            if tiles.exists() and len([p for p in tiles.iterdir() if p.suffix == ".parquet"]) >= 2:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("no tiles finished")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)  # slow tiles sleep 30 s: far less
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in err
    for name in slow:
        (work / "faults" / name).unlink()
    job = joins.TiledJoin(work, codes, RADIUS, shards=4)
    finished = sorted(job.finished())
    assert finished == [(0, 0), (0, 1)]
    # nothing else in tiles/ is a finished tile (a temporary file would not count either)
    assert sorted(p.name for p in (work / "tiles").iterdir() if not p.name.startswith(".")) == [
        "0-0.parquet",
        "0-1.parquet",
    ]
    status = job.run()
    assert (status.resumed, status.ran) == (2, 8)
    same(job.pairs(), hm.find_duplicates(codes, RADIUS))


# ---------------------------------------------------------------- review fixes


def fixed_table(rows: np.ndarray, **columns: object) -> object:
    hashes = pa.array([bytes(r) for r in rows], type=pa.binary(32))
    return pa.table({"hash": hashes, **columns})


def test_input_changed_before_shard_tasks_raises_once(codes: np.ndarray, tmp_path: Path) -> None:
    source = tmp_path / "x.parquet"
    pq.write_table(fixed_table(codes[:400]), source)
    work = tmp_path / "w"
    job = joins.TiledJoin(work, source, RADIUS, shards=1)
    (work / "faults").mkdir()
    (work / "faults" / "shard-a-0").write_text("count")
    pq.write_table(fixed_table(codes[:300]), source)  # re-exported before run()
    with pytest.raises(joins.InputChanged, match=r"codes: .*x\.parquet changed after"):
        job.run(max_retries=2)
    # a hashmatch error of a task is not retried: one attempt only
    assert (work / "faults" / "shard-a-0.attempts").read_text().count("attempt") == 1
    assert job.finished() == []
    # same rows, other content: also refused
    other = tmp_path / "y.parquet"
    pq.write_table(fixed_table(codes[:200]), other)
    job = joins.TiledJoin(tmp_path / "w2", other, RADIUS, shards=2)
    pq.write_table(fixed_table(codes[200:400]), other)
    os.utime(other, ns=(job.files.files[0].mtime_ns,) * 2)  # type: ignore[union-attr]
    with pytest.raises(joins.InputChanged, match=r"y\.parquet changed after"):
        job.run(max_retries=0)


def test_directory_inputs_walk_subdirectories(codes: np.ndarray, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "batch=10").mkdir(parents=True)
    (folder / "batch=2").mkdir()
    (folder / "_temporary").mkdir()
    (folder / ".hidden").mkdir()
    pq.write_table(fixed_table(codes[:500]), folder / "batch=10" / "part-0.parquet")
    pq.write_table(fixed_table(codes[500:900]), folder / "batch=2" / "part-0.PARQUET")
    pq.write_table(fixed_table(codes[900:1200]), folder / "batch=2" / "part-1.parquet")
    pq.write_table(fixed_table(codes[1200:1500]), folder / "part-0.parquet")
    for skipped in ("_temporary/part-0.parquet", ".hidden/part-0.parquet", "_x.parquet"):
        pq.write_table(fixed_table(codes[:50]), folder / skipped)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.parquet.crc").write_text("x")
    job = joins.TiledJoin(tmp_path / "w", folder, RADIUS, shards=3)
    assert job.n == 1500
    job.run()
    same(job.pairs(), hm.find_duplicates(codes[:1500], RADIUS))


def test_id_columns_of_different_types(codes: np.ndarray, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    ids = np.arange(1000) * 3
    pq.write_table(
        fixed_table(codes[:600], id=pa.array(ids[:600], pa.int32())), folder / "a.parquet"
    )
    pq.write_table(
        fixed_table(codes[600:1000], id=pa.array(ids[600:], pa.int64())), folder / "b.parquet"
    )
    out = tmp_path / "labels.parquet"
    clusters = joins.cluster(  # shard 1 of 3 spans both files
        folder, RADIUS, shards=3, work_dir=tmp_path / "w", id_column="id", labels_path=out
    )
    np.testing.assert_array_equal(clusters.labels, hm.cluster(codes[:1000], RADIUS).labels)
    assert clusters.ids is not None and clusters.ids.dtype == np.int64
    np.testing.assert_array_equal(clusters.ids, ids)
    table = pq.read_table(out)
    assert table.schema.field("id").type == pa.int64()
    np.testing.assert_array_equal(table.column("id").to_numpy(), ids)
    # .hm entry ids are integers too
    listed = hm.HashList("pdq")
    listed.add(codes[1000:1100], ids=np.arange(100) + 5000)
    listed.save(tmp_path / "c.hm")
    mixed = [folder / "a.parquet", tmp_path / "c.hm"]
    pairs = joins.find_duplicates(mixed, RADIUS, shards=2, work_dir=tmp_path / "m", id_column="id")
    assert pairs.ids is not None
    np.testing.assert_array_equal(pairs.ids, np.concatenate([ids[:600], np.arange(100) + 5000]))
    # integer ids in one input, strings in another: refused up front, naming both files
    keys = pa.array([f"k{r}" for r in range(100)])
    pq.write_table(fixed_table(codes[1000:1100], id=keys), tmp_path / "s.parquet")
    for first, kind in ((folder / "a.parquet", "int32"), (tmp_path / "c.hm", "int64")):
        wanted = rf"id_column: .*{re.escape(first.name)} has {kind} ids, .*s\.parquet"
        with pytest.raises(hm.InvalidType, match=wanted):
            inputs = [first, tmp_path / "s.parquet"]
            joins.TiledJoin(tmp_path / "x", inputs, RADIUS, shards=2, id_column="id")
    # .hm entry ids with Parquet files without id_column: refused, not dropped
    with pytest.raises(hm.InvalidArgument, match=r"id_column: .*c\.hm.*a\.parquet"):
        joins.TiledJoin(tmp_path / "x", [tmp_path / "c.hm", folder / "a.parquet"], RADIUS, shards=2)


def test_bad_rows_and_paths_are_named(codes: np.ndarray, tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(fixed_table(codes[:100]), good)
    hashes = [bytes(r) for r in codes[100:130]]
    hashes[12] = None  # type: ignore[call-overload]
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"hash": pa.array(hashes, pa.binary(32))}), nulls)
    work = tmp_path / "w"
    job = joins.TiledJoin(work, [good, nulls], RADIUS, shards=2)
    (work / "faults").mkdir()
    (work / "faults" / "shard-a-1").write_text("count")
    with pytest.raises(
        hm.InvalidArgument, match=r"nulls\.parquet: 'hash' row 12 \(row 112 of `codes`\)"
    ):
        job.run(max_retries=2)
    assert (work / "faults" / "shard-a-1.attempts").read_text().count("attempt") == 1
    texts = [bytes(r).hex() for r in codes[:30]]
    texts[17] = "zz" + texts[17][2:]
    pq.write_table(pa.table({"hash": texts}), tmp_path / "hex.parquet")
    with pytest.raises(
        hm.HashFormatError, match=r"hex\.parquet: 'hash' row 17 \(row 117 of `codes`\)"
    ):
        joins.find_duplicates(
            [good, tmp_path / "hex.parquet"], RADIUS, shards=1, work_dir=tmp_path / "h"
        )
    pq.write_table(
        pa.table({"hash": pa.array([None, *texts[:5]], pa.string())}), tmp_path / "first.parquet"
    )
    with pytest.raises(
        hm.InvalidArgument, match=r"first\.parquet: 'hash' row 0 \(row 100 of `codes`\)"
    ):
        joins.TiledJoin(tmp_path / "f", [good, tmp_path / "first.parquet"], RADIUS, shards=1)
    # a str is a path: missing, or of an unknown suffix
    with pytest.raises(
        hm.InvalidArgument, match=r"codes: no such file or directory: .*missing\.parq"
    ):
        joins.TiledJoin(tmp_path / "p", str(tmp_path / "missing.parq"), RADIUS, shards=1)
    (tmp_path / "x.parq").write_bytes(good.read_bytes())
    with pytest.raises(hm.InvalidArgument, match=r"codes: .*x\.parq: expected a \.parquet or \.hm"):
        joins.TiledJoin(tmp_path / "p", str(tmp_path / "x.parq"), RADIUS, shards=1)
    (tmp_path / "X.PARQUET").write_bytes(good.read_bytes())
    assert joins.TiledJoin(tmp_path / "p", str(tmp_path / "X.PARQUET"), RADIUS, shards=1).n == 100
    # a list of hex strings is still hashes
    job = joins.TiledJoin(tmp_path / "q", [bytes(r).hex() for r in codes[:20]], RADIUS, shards=1)
    assert job.files is None and job.codes is not None and len(job.codes) == 20


def test_tiled_clusters_to_pandas_equals_clusters(codes: np.ndarray, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    ids = np.arange(N) * 7
    listed = hm.HashList("pdq")
    listed.add(codes, ids=ids)
    listed.save(tmp_path / "c.hm")
    streamed = joins.cluster(tmp_path / "c.hm", RADIUS, shards=2, work_dir=tmp_path / "w")
    expected = hm.cluster(hm.find_duplicates(codes, RADIUS, ids=ids))
    frame = streamed.to_pandas()
    assert list(frame.columns) == ["row", "id", "cluster", "size", "representative"]
    assert frame["representative"].sum() == expected.n_clusters < N
    pd.testing.assert_frame_equal(frame, expected.to_pandas())


def test_string_ids_in_written_pairs(codes: np.ndarray, parquet_dir: Path, tmp_path: Path) -> None:
    job = joins.TiledJoin(tmp_path / "w", parquet_dir, RADIUS, shards=3, id_column="key")
    job.run()
    assert job.write_pairs(tmp_path / "pairs.parquet") > 100
    table = pq.read_table(tmp_path / "pairs.parquet")
    expected = hm.find_duplicates(codes, RADIUS)
    assert table.schema.field("id_i").type == pa.string()
    assert table.column("id_i").to_pylist() == [f"k{i}" for i in expected.i]
    assert table.column("id_j").to_pylist() == [f"k{j}" for j in expected.j]


def test_null_ids_are_refused_naming_the_row(codes: np.ndarray, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    ids = pa.array([10**17 + r if r != 5 else None for r in range(50)], type=pa.int64())
    hashes = pa.array([bytes(r) for r in codes[:50]], type=pa.binary(32))
    pq.write_table(pa.table({"hash": hashes, "id": ids}), folder / "a.parquet")
    job = joins.TiledJoin(tmp_path / "w", folder, RADIUS, shards=2, id_column="id")
    with pytest.raises(hm.InvalidArgument, match=r"a\.parquet: 'id' row 5 .* is null"):
        job.run(max_retries=2)


def test_work_dir_inside_an_input_directory_is_refused(parquet_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(hm.InvalidArgument, match=r"work_dir: .* is inside codes's directory"):
        joins.TiledJoin(parquet_dir / "work", parquet_dir, RADIUS, shards=2)
    with pytest.raises(hm.InvalidArgument, match="inside others's directory"):
        joins.TiledJoin(parquet_dir / "w", np.zeros((3, 32), np.uint8), 4, shards=2,
                        others=[parquet_dir])  # fmt: skip
    assert not (parquet_dir / "work").exists()


def test_cli_parquet_outputs_checked(
    codes: np.ndarray, parquet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hashmatch.cli import main

    ray_run = ["dedup", str(parquet_dir), "--ray", "--work-dir", str(tmp_path / "w")]
    assert main([*ray_run, "--out", str(parquet_dir / "pairs.csv")]) == 2
    assert "--out: " in capsys.readouterr().err
    text = tmp_path / "hashes.txt"
    text.write_text("00" * 32 + "\n")
    assert main(["dedup", str(text), "--clusters", str(tmp_path / "c.parquet")]) == 2
    assert "--clusters: a .parquet file is written with --ray" in capsys.readouterr().err
    # --only-duplicates applies to the Parquet clusters too
    labels = tmp_path / "dups.parquet"
    assert (
        main([*ray_run, "--id-column", "key", "--clusters", str(labels), "--only-duplicates"]) == 0
    )
    table = pq.read_table(labels)
    single = hm.cluster(codes, RADIUS)  # parquet_dir holds `codes`, in file order
    duplicated = np.flatnonzero(single.sizes[single.labels] >= 2)
    assert 0 < len(duplicated) < len(codes)
    assert table.column("row").to_numpy().tolist() == duplicated.tolist()
    assert table.column("id").to_pylist() == [f"k{r}" for r in duplicated]
    assert table.column("cluster").to_numpy().tolist() == single.labels[duplicated].tolist()


def test_written_cross_pairs_carry_each_sides_own_ids(codes: np.ndarray, tmp_path: Path) -> None:
    uploads, known = codes[:1200], codes[1200:]
    listed = hm.HashList("pdq", max_distance=RADIUS)
    listed.add(uploads, ids=np.arange(len(uploads)) * 7 + 1000)
    listed.save(tmp_path / "uploads.hm")
    expected = hm.find_matches(uploads, known, RADIUS)
    assert len(expected) > 10
    # ids on the first side only, then on the second side only
    for tag, first, second, columns in (
        ("a", tmp_path / "uploads.hm", known, ["i", "j", "distance", "id_i"]),
        ("b", known, tmp_path / "uploads.hm", ["i", "j", "distance", "id_j"]),
    ):
        job = joins.TiledJoin(tmp_path / tag, first, RADIUS, shards=2, others=second)
        job.run()
        job.write_pairs(tmp_path / f"{tag}.parquet")
        table = pq.read_table(tmp_path / f"{tag}.parquet")
        assert table.column_names == columns
        rows = table.column("i" if tag == "a" else "j").to_numpy()
        listed_ids = table.column(columns[-1]).to_numpy()
        np.testing.assert_array_equal(listed_ids, rows * 7 + 1000)
