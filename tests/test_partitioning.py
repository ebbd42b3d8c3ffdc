"""Partitioning lists and merging partition answers (no Ray: replicas used as plain objects)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hashmatch.distributed import (
    PartitionReplica,
    build_partitions,
    build_video_partitions,
    partition,
    partition_of,
    write_partitions,
)
from hashmatch.distributed.serving import _merge
from hashmatch.queries import Queries
from hashmatch.videos import VideoEntry
from sharding_helpers import assert_same, make_lists, make_queries

import hashmatch as hm


def test_partition_of_is_stable_and_spread() -> None:
    ids = np.arange(100_000)
    parts = partition_of(ids, 7)
    assert parts.min() == 0 and parts.max() == 6
    counts = np.bincount(parts)
    assert counts.min() > 0.9 * len(ids) / 7
    assert partition_of(ids, 7).tolist() == parts.tolist()
    assert partition_of(ids, 1).tolist() == [0] * len(ids)
    with pytest.raises(hm.InvalidArgument, match="parts"):
        partition_of(ids, 0)


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_partition_keeps_every_entry_once(parts: int) -> None:
    terror = make_lists(5)["terror"]
    pieces = partition(terror, parts)
    assert len(pieces) == parts
    entries = sorted(e for p in pieces for e in p.entries())
    assert entries == sorted(terror.entries())
    for j, piece in enumerate(pieces):
        assert (partition_of(piece.ids(), parts) == j).all()
        assert (piece.hash_type, piece.max_distance, piece.name) == ("pdq", 40, "terror")


def _sharded_answer(
    lists: dict[str, hm.HashList], paths: dict[str, list[str]], query: dict[str, object]
) -> hm.MatchResult:
    """What ShardedMatcher merges: each partition's replica answer, merged."""
    names = [n for n in paths if lists[n].bits == 256]
    prepared = Queries.prepare(
        query["hashes"], 32, query["qualities"], query["min_quality"], query["groups"]
    )
    parts = []
    for i, name in enumerate(names):
        for path in paths[name]:
            replica = PartitionReplica(path)
            generation, result = replica.match(0, path, prepared, lists[name].max_distance)
            assert generation == 0
            parts.append((i, result))
    return _merge(names, parts, prepared, 0)


def test_merged_partitions_equal_one_matcher(tmp_path) -> None:
    lists = make_lists(11)
    paths = {
        name: write_partitions(hash_list, tmp_path / name, parts)
        for (name, hash_list), parts in zip(lists.items(), (3, 2, 2), strict=True)
    }
    query = make_queries(lists, 90, seed=12)
    want = hm.Matcher(lists).match(**query)
    assert len(want) > 50
    assert_same(_sharded_answer(lists, paths, query), want)
    none = dict(query, hashes=hm.datasets.random_codes(90, 256, seed=99))
    assert_same(_sharded_answer(lists, paths, none), hm.Matcher(lists).match(**none))


def test_build_partitions_streams_a_file(tmp_path) -> None:
    terror = make_lists(3)["terror"]
    source = tmp_path / "terror.csv"
    terror.export(source)
    paths = build_partitions(source, tmp_path / "g1", 3, name="terror", max_distance=40,
                             chunk_size=37)  # fmt: skip
    assert [p.rsplit("/", 1)[-1] for p in paths] == [f"part-0000{j}-of-00003.hm" for j in range(3)]
    pieces = [hm.HashList.load(p, mmap=True) for p in paths]
    assert sorted(e.id for p in pieces for e in p.entries()) == terror.ids().tolist()
    for j, piece in enumerate(pieces):
        assert (partition_of(piece.ids(), 3) == j).all()
        for entry in piece.entries():
            original = terror.get(entry.id)
            assert (entry.hash, entry.key, entry.labels, entry.source) == (
                original.hash, original.key, original.labels, original.source,
            )  # fmt: skip
    assert not [n for n in (tmp_path / "g1").iterdir() if n.name.startswith(".")]


def test_build_partitions_numbers_a_file_without_ids(tmp_path) -> None:
    codes = hm.datasets.random_codes(25, 256, seed=4)
    source = tmp_path / "plain.txt"
    source.write_text("".join(f"{h}\n" for h in hm.to_hex(codes)))
    paths = build_partitions(source, tmp_path / "out", 2, chunk_size=10)
    whole = hm.HashList.from_file(source)
    pieces = [hm.HashList.load(p) for p in paths]
    got = sorted((e.id, e.hash) for p in pieces for e in p.entries())
    assert got == [(e.id, e.hash) for e in whole.entries()]


@pytest.mark.parametrize("parts", [1, 3])
def test_partition_keeps_every_video_once(parts: int, tmp_path) -> None:
    rng = np.random.default_rng(5)
    index = hm.VideoIndex(name="bank", max_distance=25, min_quality=40)
    videos = [
        (hm.datasets.random_codes(n, seed=n), rng.integers(0, 101, n), np.arange(n) * 0.5)
        for n in range(1, 13)
    ]
    index.add_many(
        videos,
        ids=[int(i) for i in rng.permutation(1000)[:12]],
        keys=[f"v{i}" if i % 3 else None for i in range(12)],
        labels=[("a", "b") if i % 2 else () for i in range(12)],
        sources=[None if i % 4 else "partner" for i in range(12)],
    )
    index.remove(index.ids[:1].tolist())
    split = partition(index, parts)
    paths = write_partitions(index, tmp_path / "gen-0", parts)
    assert len(split) == len(paths) == parts
    seen = []
    for j, (part, path) in enumerate(zip(split, paths, strict=True)):
        loaded = hm.VideoIndex.load(path)
        for p in (part, loaded):
            assert (p.name, p.max_distance, p.min_quality) == ("bank", 25, 40)
            assert p.ids.tolist() == part.ids.tolist()
        assert (partition_of(part.ids, parts) == j).all()
        seen += part.ids.tolist()
        for entry in loaded.entries():
            want = index.get(entry.id)
            assert entry[:4] == want[:4]
            for a, b in zip(entry[4:], want[4:], strict=True):
                assert np.array_equal(a, b)
    assert sorted(seen) == index.ids.tolist() and len(seen) == 11


def test_partition_unavailable_pickles_its_attributes() -> None:
    import pickle

    error = hm.PartitionUnavailable("list 'x' partition 2 (generation 7): gone", "x", 2, 7)
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is hm.PartitionUnavailable and str(back) == str(error)
    assert (back.list_name, back.partition, back.generation) == ("x", 2, 7)


def test_replica_maps_a_node_local_copy(tmp_path) -> None:
    lists = make_lists(5)
    shared, cache = tmp_path / "shared", tmp_path / "node-cache"
    paths = [write_partitions(lists["terror"], shared / f"gen-{g}", 2)[0] for g in (0, 1, 2)]
    queries = make_queries(lists, 40, seed=6)
    direct = PartitionReplica(paths[0])
    replica = PartitionReplica(paths[0], cache_dir=str(cache), keep=2)
    copies = sorted(cache.iterdir())
    assert len(copies) == 1 and copies[0].read_bytes() == open(paths[0], "rb").read()
    prepared = Queries.prepare(queries["hashes"], 32)
    assert_same(
        replica.match(0, paths[0], prepared, 31)[1], direct.match(0, paths[0], prepared, 31)[1]
    )
    # a second replica on the node reuses the copy; a damaged copy is copied again
    data = bytearray(copies[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    copies[0].write_bytes(bytes(data))
    PartitionReplica(paths[0], cache_dir=str(cache))
    assert copies[0].read_bytes() == open(paths[0], "rb").read()
    # new generations get their own copies; the dropped generation's copy goes
    replica.load(1, paths[1])
    assert len(list(cache.iterdir())) == 2
    replica.load(2, paths[2])
    left = sorted(p.name for p in cache.iterdir())
    assert len(left) == 2 and copies[0].name not in left
    assert replica.info(2)["size"] == len(hm.HashList.load(paths[2]))


# --- joins-scale review fixes ---


def test_build_partitions_spills_each_row_once(tmp_path, monkeypatch) -> None:
    """Scratch holds each partition's rows, not the whole chunk once per partition."""
    import pickle

    from hashmatch.distributed import partitioning

    codes = hm.datasets.random_codes(2000, seed=1)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(bytes(r).hex() for r in codes) + "\n")
    spilled: list[int] = []

    class Spy:
        HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL
        load = staticmethod(pickle.load)

        @staticmethod
        def dump(obj, file, protocol=None) -> None:
            pickle.dump(obj, file, protocol=protocol)
            spilled.append(len(obj[0]) if isinstance(obj[0], np.ndarray) else -1)

    monkeypatch.setattr(partitioning, "pickle", Spy)
    paths = build_partitions(source, tmp_path / "out", 8, chunk_size=500)
    assert len(spilled) == 8 * 4 and sum(spilled) == len(codes)
    whole = hm.HashList("pdq")
    whole.add(codes)
    for path, expected in zip(paths, partition(whole, 8), strict=True):
        assert sorted(hm.HashList.load(path).entries()) == sorted(expected.entries())


def test_build_video_partitions_streams_entries_and_vpdq_files(tmp_path) -> None:
    rng = np.random.default_rng(8)
    index = hm.VideoIndex(name="bank", max_distance=25, min_quality=40)
    index.add_many(
        [
            (hm.datasets.random_codes(n, seed=n), rng.integers(0, 101, n), np.arange(n) * 0.5)
            for n in range(1, 11)
        ],
        ids=[int(i) for i in rng.permutation(50)[:10]],
        keys=[f"v{i}" if i % 3 else None for i in range(10)],
        labels=[("a", "b") if i % 2 else () for i in range(10)],
    )
    files = []
    for k in range(2):  # two more videos as vPDQ files: banked after the entries' ids
        frames = hm.VideoFrames(
            hm.datasets.random_codes(4, seed=100 + k), np.full(4, 90), range(4), np.arange(4.0)
        )
        files.append(str(tmp_path / f"upload-{k}.vpdq"))
        hm.write_vpdq(files[-1], frames)
    streamed = (item for item in [*index.entries(), *files])  # one pass, never a list
    paths = build_video_partitions(
        streamed, tmp_path / "gen-0", 3, name="bank", max_distance=25, min_quality=40,
        chunk_size=3,
    )  # fmt: skip
    assert [os.path.basename(p) for p in paths] == [f"part-0000{j}-of-00003.hm" for j in range(3)]
    assert not [f for f in os.listdir(tmp_path / "gen-0") if f.startswith(".")]  # no scratch
    top = int(index.ids.max())
    for file, video_id in zip(files, (top + 1, top + 2), strict=True):
        index.add(hm.read_vpdq(file), id=video_id, source=file)
    for j, (built, want) in enumerate(zip(paths, partition(index, 3), strict=True)):
        loaded = hm.VideoIndex.load(built)
        assert (loaded.name, loaded.max_distance, loaded.min_quality) == ("bank", 25, 40)
        got_entries, want_entries = list(loaded.entries()), list(want.entries())
        assert [e[:4] for e in got_entries] == [e[:4] for e in want_entries]
        for a, b in zip(got_entries, want_entries, strict=True):
            for x, y in zip(a[4:], b[4:], strict=True):
                assert np.array_equal(x, y)
        assert (partition_of(loaded.ids, 3) == j).all()


def test_build_video_partitions_refuses_bad_input(tmp_path) -> None:
    entry = next(iter(_one_video_index().entries()))
    with pytest.raises(hm.InvalidArgument, match=r"videos\[1\]: id 4 is also that of videos\[0\]"):
        build_video_partitions([entry, entry], tmp_path / "a", 2)
    with pytest.raises(hm.InvalidType, match=r"videos\[1\]: expected a VideoEntry"):
        build_video_partitions([entry, 42], tmp_path / "b", 2)  # type: ignore[list-item]
    with pytest.raises(hm.InvalidArgument, match="chunk_size"):
        build_video_partitions([entry], tmp_path / "c", 2, chunk_size=0)
    for folder in ("a", "b"):  # nothing half-built left behind
        assert not [f for f in os.listdir(tmp_path / folder) if f.startswith(".")]


def _one_video_index() -> hm.VideoIndex:
    index = hm.VideoIndex()
    index.add((hm.datasets.random_codes(3, seed=1), np.full(3, 90), np.arange(3.0)), id=4)
    return index


def test_replica_keeps_the_newest_and_the_generation_it_loaded_last(tmp_path) -> None:
    terror = make_lists(5)["terror"]
    paths = [write_partitions(terror, tmp_path / f"gen-{g}", 1)[0] for g in range(3)]
    replica = PartitionReplica(paths[2], 5, keep=1)
    replica.load(4, paths[1])  # a late call for an older generation
    assert replica.generations() == [4, 5]  # the newest stays
    replica.load(6, paths[0])
    assert replica.generations() == [6]
    prepared = Queries.prepare(make_queries(make_lists(5), 20, seed=3)["hashes"], 32)
    assert replica.match(3, paths[1], prepared, 40)[0] == 3  # loads what a call names
    assert replica.generations() == [3, 6]


def test_build_video_partitions_checks_ids_and_keys_across_partitions(tmp_path) -> None:
    def video(video_id: int | None, key: str | None) -> VideoEntry:
        codes = hm.datasets.random_codes(3, seed=video_id if isinstance(video_id, int) else 0)
        return VideoEntry(video_id, key, (), None, codes, np.full(3, 90, np.int16), np.arange(3.0))  # type: ignore[arg-type]

    # ids 0 and 1 go to different partitions of 2: only the stream sees both keys
    assert partition_of([0, 1], 2).tolist() == [0, 1]
    with pytest.raises(
        hm.InvalidArgument, match=r"videos\[1\]: key 'same' is also that of videos\[0\]"
    ):
        build_video_partitions([video(0, "same"), video(1, "same")], tmp_path / "keys", 2)
    with pytest.raises(hm.InvalidArgument, match=r"videos\[2\]: id 2 is also that of videos\[1\]"):
        build_video_partitions(
            [video(1, None), video(2, None), video(2, None)], tmp_path / "ids", 3, chunk_size=1
        )
    for folder in ("keys", "ids"):  # a failed build leaves no partition file
        assert os.listdir(tmp_path / folder) == []
    with pytest.raises(hm.InvalidType, match=r"videos\[0\]\.id: expected an int or None"):
        build_video_partitions([video("x", None)], tmp_path / "bad", 2)  # type: ignore[arg-type]
    # entries without an id are numbered like files: one above the largest seen
    paths = build_video_partitions([video(5, "a"), video(None, "b")], tmp_path / "auto", 2)
    banked = {e.key: e.id for p in paths for e in hm.VideoIndex.load(p).entries()}
    assert banked == {"a": 5, "b": 6}


def test_build_partitions_publishes_nothing_when_it_fails(tmp_path) -> None:
    source = tmp_path / "hashes.csv"
    source.write_text("hash,id\n" + "00" * 32 + ",1\n" + "11" * 32 + ",1\n")  # id 1 twice
    with pytest.raises(hm.InvalidArgument):
        build_partitions(source, tmp_path / "out", 2)
    assert os.listdir(tmp_path / "out") == []
