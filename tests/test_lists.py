"""HashList: exact matching through segments and compactions, metadata, writes, bad inputs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from oracle import distances, random_db

import hashmatch as hm


def oracle_matches(
    db: np.ndarray, ids: np.ndarray, queries: np.ndarray, r: int
) -> list[tuple[int, int, int]]:
    """(query, distance, id) of every pair within r, in the order MatchResult uses."""
    if not len(db):
        return []
    d = distances(queries, db)
    q, j = np.nonzero(d <= r)
    return sorted(zip(q.tolist(), d[q, j].tolist(), ids[j].tolist(), strict=True))


def result_triples(result: hm.MatchResult) -> list[tuple[int, int, int]]:
    return list(
        zip(result.queries.tolist(), result.distances.tolist(), result.ids.tolist(), strict=True)
    )


def clustered(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """Near-duplicate clusters: many pairs within a PDQ-like radius."""
    centers = rng.integers(0, 256, (max(1, n // 20), nbytes), dtype=np.uint8)
    db = centers[rng.integers(0, len(centers), n)]
    flips = rng.random((n, nbytes * 8)) < 0.04
    return db ^ np.packbits(flips, axis=1)


@pytest.mark.parametrize(
    ("hash_type", "bits", "radius"),
    [("pdq", None, 31), ("phash", None, 10), ("raw", 72, 9), ("raw", 128, 20)],
)
@pytest.mark.parametrize("backend", ["auto", "flat", "mih"])
def test_match_equals_oracle_through_segments_and_removes(
    hash_type: str, bits: int | None, radius: int, backend: str, rng: np.random.Generator
) -> None:
    hl = hm.HashList(hash_type, bits=bits, backend=backend, max_distance=radius)
    nbytes = hl.nbytes
    db = clustered(rng, 3000, nbytes)
    ids = rng.permutation(10**6)[:3000].astype(np.int64)
    store: dict[int, np.ndarray] = {}
    # Several batches (new segments, merges and compactions), removes in between.
    for lo, hi in [(0, 1500), (1500, 1600), (1600, 1700), (1700, 3000)]:
        hl.add(db[lo:hi], ids=ids[lo:hi])
        store.update(zip(ids[lo:hi].tolist(), db[lo:hi], strict=True))
        gone = rng.choice(list(store), 40, replace=False)
        assert hl.remove(gone) == 40
        for g in gone.tolist():
            del store[g]
        live_ids = np.array(list(store), np.int64)
        live = np.array([store[i] for i in live_ids.tolist()])
        queries = np.concatenate([db[rng.integers(0, hi, 40)], clustered(rng, 10, nbytes)])
        result = hl.match(queries)
        assert result_triples(result) == oracle_matches(live, live_ids, queries, radius)
        assert len(hl) == len(store)
    # kNN agrees with the oracle too (ties by id), whatever the segments.
    d, i = hl.search(queries, 7)
    full = distances(queries, live)
    for q in range(len(queries)):
        order = np.lexsort((live_ids, full[q]))[:7]
        assert d[q].tolist() == full[q][order].tolist()
        assert i[q].tolist() == live_ids[order].tolist()


def test_metadata_round_trips_through_compaction(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq", name="partner")
    db = random_db(rng, 2000, 32)
    keys = [f"sig:{i}" for i in range(2000)]
    labels = [("terrorism",) if i % 3 else ("violence", "graphic") for i in range(2000)]
    qualities = [None if i % 7 == 0 else i % 101 for i in range(2000)]
    extras = [{"n": i, "note": 'é,\t"x"'} if i % 5 == 0 else None for i in range(2000)]
    hl.add(
        db,
        keys=keys,
        labels=labels,
        source=["te" if i % 2 else None for i in range(2000)],
        quality=qualities,
        extras=extras,
    )
    hl.add(db[:10] ^ 1, keys=[f"late:{i}" for i in range(10)], labels="csam")
    assert len(hl.stats()["segments"]) == 2
    for _before_and_after_compaction in range(2):
        for i in [0, 1, 5, 7, 1999]:
            e = hl.get(i)
            assert e.key == keys[i] and e.labels == tuple(sorted(labels[i]))
            assert e.quality == qualities[i] and e.extras == (extras[i] or {})
            assert e.source == ("te" if i % 2 else None)
            assert e.hash == hm.to_hex(db[i])
            assert hl.get_key(keys[i]) == e
        assert hl.get_key("late:3").labels == ("csam",)
        assert [e.id for e in hl.entries()] == list(range(2010))
        hl.compact()
        assert len(hl.stats()["segments"]) == 1


def test_update_changes_hash_and_metadata_keeping_the_id(rng: np.random.Generator) -> None:
    hl = hm.HashList("phash")
    db = random_db(rng, 100, 8)
    hl.add(db, keys=[f"k{i}" for i in range(100)], labels=["a"], quality=50)
    new = db[3] ^ np.uint8(0xFF)
    e = hl.update(3, hash=new, labels=["b", "c"])
    assert e.id == 3 and e.key == "k3" and e.labels == ("b", "c") and e.quality == 50
    assert hl.match(new[None], max_distance=0).ids.tolist() == [3]
    assert 3 not in hl.match(db[3][None], max_distance=0).ids.tolist()
    assert hl.update(key="k4", quality=None, extras={"x": [1, 2]}).extras == {"x": [1, 2]}
    assert hl.get(4).quality is None and len(hl) == 100
    with pytest.raises(hm.EntryNotFound, match="no entry with id 1000"):
        hl.update(1000, labels=["x"])
    with pytest.raises(hm.InvalidArgument, match="exactly one"):
        hl.update(1, key="k1")


def test_remove_by_key_and_missing_ones(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    hl.add(random_db(rng, 10, 32), keys=[f"k{i}" for i in range(10)])
    assert hl.remove(keys=["k1", "k2", "nope"]) == 2
    assert hl.remove([0, 1, 99]) == 1  # 1 went with its key
    assert sorted(hl.ids().tolist()) == [3, 4, 5, 6, 7, 8, 9]
    with pytest.raises(hm.EntryNotFound):
        hl.get_key("k1")
    with pytest.raises(hm.EntryNotFound):
        hl.get(0)
    assert 3 in hl and 0 not in hl and "3" not in hl


def test_removed_ids_and_keys_can_be_added_again(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    db = random_db(rng, 5, 32)
    hl.add(db, keys=list("abcde"))
    hl.remove([2])
    hl.add(db[2:3] ^ 1, ids=[2], keys=["c"], labels=["again"])
    assert hl.get(2).labels == ("again",) and hl.get_key("c").id == 2
    assert hl.match(db[2:3] ^ 1, max_distance=0).ids.tolist() == [2]


def test_batch_is_atomic_and_rolls_back(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    db = random_db(rng, 20, 32)
    hl.add(db[:10], keys=[f"k{i}" for i in range(10)])
    with pytest.raises(RuntimeError):
        with hl.batch():
            hl.add(db[10:], keys=[f"n{i}" for i in range(10)])
            hl.remove([0, 1])
            raise RuntimeError("abort")
    assert len(hl) == 10 and 0 in hl
    with hl.batch():  # replace entries: removes apply before adds
        hl.remove([0], keys=["k1"])
        hl.add(db[10:12], ids=[0, 1], keys=["k0", "k1"], labels="new")
    assert hl.get(0).labels == ("new",) and hl.get_key("k1").id == 1 and len(hl) == 10
    with pytest.raises(hm.InvalidArgument, match="twice in one batch"):
        with hl.batch():
            hl.add(db[12:13], keys=["dup"])
            hl.add(db[13:14], keys=["dup"])
    assert len(hl) == 10
    with pytest.raises(hm.InvalidArgument, match="do not nest"):
        with hl.batch(), hl.batch():
            pass


def test_default_ids_continue_and_are_never_reused(rng: np.random.Generator) -> None:
    hl = hm.HashList("phash")
    assert hl.add(random_db(rng, 3, 8)).tolist() == [0, 1, 2]
    hl.remove([2])
    assert hl.add(random_db(rng, 2, 8)).tolist() == [3, 4]
    hl.add(random_db(rng, 1, 8), ids=[100])
    hl.compact()
    assert hl.add(random_db(rng, 1, 8)).tolist() == [101]


def test_empty_list_and_k_beyond_size() -> None:
    hl = hm.HashList("pdq")
    q = hm.datasets.random_codes(3, 256)
    r = hl.match(q)
    assert len(r) == 0 and r.nqueries == 3 and r.to_records() == []
    assert hl.search(q, 5).ids.shape == (3, 0)
    hl.add(q[:2])
    d, i = hl.search(q[:1], 10)
    assert i.tolist() == [[0, 1]] and d[0, 0] == 0
    assert len(hl.match(np.zeros((0, 32), np.uint8))) == 0
    assert hl.ids().tolist() == [0, 1] and list(hl.entries())[1].id == 1


def test_radius_zero_and_max(rng: np.random.Generator) -> None:
    hl = hm.HashList("phash")
    db = random_db(rng, 50, 8)
    db[7] = db[3]
    hl.add(db)
    assert hl.match(db[3:4], max_distance=0).ids.tolist() == [3, 7]
    assert len(hl.match(db[3:4], max_distance=64)) == 50


def test_quality_filter_skips_low_quality_queries(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    db = random_db(rng, 4, 32)
    hl.add(db)
    r = hl.match(db, qualities=[100, 49, 50, 0], min_quality=50)
    assert r.skipped.tolist() == [1, 3] and r.queries.tolist() == [0, 2] and r.nqueries == 4
    assert r.ids.tolist() == [0, 2]
    assert len(hl.match(db, qualities=[10] * 4)) == 4  # scores alone filter nothing


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"min_quality": 50}, hm.InvalidArgument, "needs qualities"),
        ({"qualities": [1, 2], "min_quality": 50}, hm.InvalidArgument, "expected 4 values"),
        ({"qualities": [1, 2, math.nan, 3]}, hm.InvalidArgument, r"qualities\[2\].*NaN"),
        ({"qualities": [1, 2, -3, 3]}, hm.InvalidArgument, r"qualities\[2\].*0 to 100"),
        ({"qualities": [1, 2, 101, 3]}, hm.InvalidArgument, "0 to 100"),
        ({"qualities": [1, 2, 3.5, 3]}, hm.InvalidArgument, "integer quality"),
        ({"qualities": [1, 2, "9", 3]}, hm.InvalidType, "integer from 0 to 100"),
        ({"qualities": [1, 2, None, 3], "min_quality": 5}, hm.InvalidArgument, "missing"),
        ({"qualities": [1] * 4, "min_quality": math.nan}, hm.InvalidArgument, "min_quality"),
        ({"qualities": [1] * 4, "min_quality": -1}, hm.InvalidArgument, "min_quality"),
        ({"qualities": [1] * 4, "min_quality": "50"}, hm.InvalidType, "min_quality"),
        ({"max_distance": -1}, hm.InvalidArgument, "max_distance"),
        ({"max_distance": 257}, hm.InvalidArgument, "max_distance"),
    ],
)
def test_bad_match_arguments(kwargs: dict[str, object], error: type, message: str) -> None:
    hl = hm.HashList("pdq")
    hl.add(hm.datasets.random_codes(4, 256))
    with pytest.raises(error, match=message):
        hl.match(hm.datasets.random_codes(4, 256), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ids": [1, 1, 2]}, hm.InvalidArgument, "duplicate id"),
        ({"ids": [0, 5, 6]}, hm.InvalidArgument, "id 0 is already in the list"),
        ({"ids": [-1, 5, 6]}, hm.InvalidArgument, "non-negative"),
        ({"keys": ["a", "b", "a"]}, hm.InvalidArgument, "duplicate 'a'"),
        ({"keys": ["old", "b", "c"]}, hm.InvalidArgument, "key 'old' is already"),
        ({"keys": ["a", ""]}, hm.InvalidArgument, "expected 3 values"),
        ({"keys": ["a", "", "c"]}, hm.InvalidArgument, "non-empty"),
        ({"keys": "abc"}, hm.InvalidType, "one str"),
        ({"quality": 101}, hm.InvalidArgument, "0 to 100"),
        ({"quality": [1, math.nan, 2]}, hm.InvalidArgument, "NaN"),
        ({"labels": [["a"], 3, ["b"]]}, hm.InvalidType, "labels"),
        ({"labels": 5}, hm.InvalidType, "labels"),
        ({"source": 3}, hm.InvalidType, "source"),
        ({"extras": {"x": object()}}, hm.InvalidArgument, "JSON"),
        ({"extras": {"x": math.inf}}, hm.InvalidArgument, "JSON"),
        ({"extras": {1: "x"}}, hm.InvalidType, "str keys"),
        ({"extras": {"big": "x" * 70000}}, hm.InvalidArgument, "at most"),
    ],
)
def test_bad_add_arguments_change_nothing(
    kwargs: dict[str, object], error: type, message: str
) -> None:
    hl = hm.HashList("pdq")
    hl.add(hm.datasets.random_codes(1, 256), keys=["old"])
    before = hl._snapshot
    with pytest.raises(error, match=message):
        hl.add(hm.datasets.random_codes(3, 256, seed=3), **kwargs)
    assert hl._snapshot is before and len(hl) == 1


def test_bad_list_parameters_and_widths() -> None:
    with pytest.raises(hm.InvalidArgument, match="hash_type: expected one of"):
        hm.HashList("md5")
    with pytest.raises(hm.InvalidType, match="hash_type"):
        hm.HashList(256)  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match="pdq hashes have 256 bits"):
        hm.HashList("pdq", bits=64)
    with pytest.raises(hm.InvalidArgument, match="needs bits"):
        hm.HashList("raw")
    with pytest.raises(hm.InvalidArgument, match="backend"):
        hm.HashList("pdq", backend="annoy")
    with pytest.raises(hm.InvalidArgument, match="takes no parameters"):
        hm.HashList("pdq", backend="mih", backend_params={"M": 3})
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        hm.HashList("phash", max_distance=65)
    hl = hm.HashList("pdq")
    with pytest.raises(hm.HashTypeMismatch):
        hl.add(hm.datasets.random_codes(2, 64))
    with pytest.raises(hm.HashTypeMismatch):
        hl.match("ff" * 8)
    assert hm.HashList("phash").max_distance == 10 and hm.HashList("PDQ").hash_type == "pdq"


class ListMachine(RuleBasedStateMachine):
    """Random adds, removes, updates, batches and compactions against a dict model."""

    def __init__(self) -> None:
        super().__init__()
        self.hl = hm.HashList("raw", bits=16, max_distance=3)
        self.model: dict[int, tuple[bytes, str | None]] = {}
        self.rng = np.random.default_rng(0)

    @rule(n=st.integers(0, 30), keyed=st.booleans())
    def add(self, n: int, keyed: bool) -> None:
        codes = self.rng.integers(0, 256, (n, 2), dtype=np.uint8)
        start = self.hl._snapshot.next_id
        keys = [f"k{start + i}" for i in range(n)] if keyed else None
        ids = self.hl.add(codes, keys=keys)
        for i, c in zip(ids.tolist(), codes, strict=True):
            self.model[i] = (c.tobytes(), f"k{i}" if keyed else None)

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        if not self.model:
            return
        victims = data.draw(st.lists(st.sampled_from(sorted(self.model)), max_size=5, unique=True))
        assert self.hl.remove(victims) == len(victims)
        for v in victims:
            del self.model[v]

    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        if not self.model:
            return
        victim = data.draw(st.sampled_from(sorted(self.model)))
        code = self.rng.integers(0, 256, 2, dtype=np.uint8)
        self.hl.update(victim, hash=code)
        self.model[victim] = (code.tobytes(), self.model[victim][1])

    @rule()
    def compact(self) -> None:
        self.hl.compact()

    @invariant()
    def matches_equal_the_model(self) -> None:
        ids = np.array(sorted(self.model), np.int64)
        db = np.array([np.frombuffer(self.model[i][0], np.uint8) for i in ids.tolist()]).reshape(
            -1, 2
        )
        queries = self.rng.integers(0, 256, (8, 2), dtype=np.uint8)
        assert result_triples(self.hl.match(queries)) == oracle_matches(db, ids, queries, 3)
        assert len(self.hl) == len(self.model)
        for i, (_, key) in list(self.model.items())[:3]:
            if key is not None:
                assert self.hl.get_key(key).id == i


TestListMachine = ListMachine.TestCase
TestListMachine.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize(
    ("backend", "params"),
    [
        ("faiss-ivf", {"nlist": 16, "nprobe": 16}),  # every list probed: exact
        ("faiss-multihash", {}),  # 16 x 16 bits, one flip: exact up to radius 31
        ("faiss-hnsw", {"ef_search": 512}),
    ],
)
def test_faiss_backends_report_only_true_matches(
    backend: str, params: dict[str, int], rng: np.random.Generator
) -> None:
    hl = hm.HashList("pdq", backend=backend, backend_params=params)
    db = clustered(rng, 2000, 32)
    hl.add(db, keys=[f"k{i}" for i in range(2000)], labels="x")
    hl.add(db[:50] ^ 1)  # a small exact segment beside the faiss one
    hl.remove([3, 4, 2001])
    store_ids = np.array([i for i in range(2050) if i not in (3, 4, 2001)], np.int64)
    store = np.concatenate([db, db[:50] ^ 1])[store_ids]
    queries = db[:30]
    got = set(result_triples(hl.match(queries)))
    truth = set(oracle_matches(store, store_ids, queries, 31))
    assert got <= truth  # approximate backends may miss, never invent
    if backend != "faiss-hnsw":
        assert got == truth
    else:
        assert len(got) >= 0.5 * len(truth)
    assert hl.stats()["segments"][0]["index"].startswith("Faiss")
    d, i = hl.search(queries, 3)
    assert ((i >= 0) | (d == 257)).all() and 3 not in i and 4 not in i


@pytest.mark.parametrize("fmt", ["csv", "tsv", "hex"])
def test_export_then_import_preserves_every_entry(
    fmt: str, tmp_path: pytest.TempPathFactory, rng: np.random.Generator
) -> None:
    hl = hm.HashList("pdq")
    n = 300
    hl.add(
        random_db(rng, n, 32),
        keys=[f'k,{i}\t"q"' if i % 2 else None for i in range(n)],
        labels=[
            ("a b", "c") if i % 3 == 0 else ("terrorism",) if i % 3 == 1 else () for i in range(n)
        ],
        source=["src é" if i % 2 else None for i in range(n)],
        quality=[None if i % 5 == 0 else i % 101 for i in range(n)],
        extras=[{"note": f"x{i}"} if i % 4 == 0 else None for i in range(n)],
    )
    hl.remove([7, 8])
    path = tmp_path / f"list.{fmt}"  # type: ignore[operator]
    assert hl.export(path, format=fmt, chunk_size=64) == n - 2
    back = hm.HashList.from_file(path, "pdq", format=fmt)
    if fmt == "hex":  # hashes only; ids renumbered from 0
        assert [e.hash for e in back.entries()] == [e.hash for e in hl.entries()]
    else:
        assert list(back.entries()) == list(hl.entries())


def test_import_is_atomic_and_reports_skipped_rows(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "bad.csv"  # type: ignore[operator]
    good = "ab" * 32
    path.write_text(f"hash,key\n{good},a\n{'cd' * 31},b\n{'ef' * 32},c\n")
    hl = hm.HashList("pdq")
    with pytest.raises(hm.HashmatchError, match=r"bad\.csv:3"):
        hl.import_file(path)
    assert len(hl) == 0
    result = hl.import_file(path, skip_invalid=True)
    assert result.ids.tolist() == [0, 1] and [line for line, _ in result.skipped] == [3]
    assert hl.get_key("c").hash == "ef" * 32
    with pytest.raises(hm.InvalidArgument, match="already in the list"):
        hl.import_file(path, skip_invalid=True)  # keys a and c again: nothing added
    assert len(hl) == 2


# ------------------------------------------------------- pickling and the new user's defects


def _filled_list(backend: str = "auto") -> hm.HashList:
    hl = hm.HashList("pdq", name="terror", backend=backend)
    db = hm.datasets.random_codes(300, 256, seed=5)
    hl.add(db, keys=[f"k{i}" for i in range(300)], labels=["terrorism"], source="p", quality=80)
    hl.remove([3, 4])
    hl.add(db[:2], keys=["again-0", "again-1"], extras={"note": "re-added"})
    return hl


@pytest.mark.parametrize("backend", ["auto", "flat", "mih"])
def test_hash_list_pickles_by_its_sections(backend: str) -> None:
    import pickle

    hl = _filled_list(backend)
    copy = pickle.loads(pickle.dumps(hl))
    assert list(copy.entries()) == list(hl.entries())
    queries = hm.datasets.random_codes(5, 256, seed=5)
    a, b = hl.match(queries), copy.match(queries)
    assert a.ids.tolist() == b.ids.tolist() and a.keys.tolist() == b.keys.tolist()
    assert (copy.name, copy.max_distance, copy.backend) == (hl.name, hl.max_distance, backend)
    assert copy.stats()["next_id"] == hl.stats()["next_id"]
    copy.add(queries[:1], keys=["new"])  # a working list, not a frozen copy
    assert copy.get_key("new").id == hl.stats()["next_id"]


def test_hash_list_pickles_in_a_worker_process() -> None:
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    hl = _filled_list()
    queries = hm.datasets.random_codes(3, 256, seed=5)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(_match_keys, pickle.dumps(hl), queries).result()
    assert remote == hl.match(queries).keys.tolist()


def _match_keys(blob: bytes, queries: np.ndarray) -> list[object]:
    import pickle

    return list(pickle.loads(blob).match(queries).keys.tolist())


def test_update_signature_shows_what_its_defaults_mean() -> None:
    import inspect
    import pydoc

    text = pydoc.render_doc(hm.HashList.update, renderer=pydoc.plaintext)
    assert "object at 0x" not in text and "UNCHANGED" in text
    defaults = inspect.signature(hm.HashList.update).parameters
    assert repr(defaults["labels"].default) == "UNCHANGED"


def test_reimporting_listed_ids_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "shared.csv"
    rows = [f"{'ab' * 31}{i:02x},{10 + i},k{i}" for i in range(3)]
    path.write_text("hash,id,key\n" + "\n".join(rows) + "\n")
    hl = hm.HashList("pdq")
    hl.import_file(path)
    with pytest.raises(hm.InvalidArgument, match=rf"{path.name}:2: id 10 is already in the list"):
        hl.import_file(path)
    assert len(hl) == 3
    path.write_text("hash,key\n" + "cd" * 32 + ",k9\n" + "ef" * 32 + ",k1\n")
    with pytest.raises(
        hm.InvalidArgument, match=rf"{path.name}:3: key 'k1' is already in the list"
    ):
        hl.import_file(path)
    assert len(hl) == 3


# ------------------------------------------------------- review fixes (issue 10/15)


def test_update_inside_a_batch_is_part_of_the_batch() -> None:
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff", "ffffffffffffffff"], keys=["a", "b"])
    with pytest.raises(RuntimeError), hl.batch():
        assert hl.update(0, labels=["x"]).labels == ("x",)
        assert hl.get(0).labels == ()  # readers do not see it before the batch ends
        raise RuntimeError
    assert hl.get(0).labels == ()  # dropped with the batch
    with hl.batch():
        hl.update(key="b", labels=["y"])
    assert hl.get_key("b").labels == ("y",) and len(hl) == 2


def test_bad_backend_params_fail_at_construction_and_adds_are_all_or_nothing() -> None:
    with pytest.raises(hm.InvalidArgument, match="bogus"):
        hm.HashList("pdq", backend="faiss-hnsw", backend_params={"bogus": 1})
    with pytest.raises(hm.HashmatchError):
        hm.HashList("pdq", backend="faiss-ivf", backend_params={"nlist": -5})


def test_labels_that_text_files_cannot_hold_are_refused_at_add() -> None:
    hl = hm.HashList("phash")
    for bad in (["x;y"], [" x"], ["x\n"]):
        with pytest.raises(hm.InvalidArgument, match="without surrounding whitespace or ';'"):
            hl.add(["00000000000000ff"], labels=bad)
    assert len(hl) == 0
    hl.add(["00000000000000ff"], labels=["child safety"])  # inner spaces are fine


def test_membership_of_out_of_range_ids_is_false() -> None:
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff"])
    assert 0 in hl and 2**70 not in hl and np.uint64(2**64 - 1) not in hl and -1 not in hl


def test_first_add_builds_one_index() -> None:
    built: list[int] = []
    hl = hm.HashList("phash")
    original = hl._segment

    def counting(codes: Any, ids: Any, columns: Any = None, base: bool = True) -> Any:
        built.append(len(codes))
        return original(codes, ids, columns, base)

    hl._segment = counting  # type: ignore[method-assign]
    hl.add(hm.datasets.random_codes(5000, 64))
    assert built == [5000]  # straight into the base segment, not a delta then a compaction


@pytest.mark.parametrize("backend", ["flat", "mih"])
def test_search_with_many_removed_rows_is_exact(backend: str) -> None:
    rng = np.random.default_rng(3)
    db = hm.datasets.clustered_codes(3000, 64, seed=3)  # near-duplicates: many ties
    hl = hm.HashList("raw", bits=64, backend=backend, auto_compact=False)
    hl.add(db, ids=rng.permutation(10**6)[: len(db)])  # ids not in row order
    ids = hl.ids()
    removed = rng.choice(ids, 2500, replace=False)
    hl.remove(removed)
    live = np.setdiff1d(ids, removed)
    entries = {e.id: e.hash for e in hl.entries()}
    codes = hm.from_hex([entries[i] for i in live])
    queries = np.concatenate([codes[:20], hm.datasets.random_codes(5, 64, seed=4)])
    for k in (1, 7, 600):
        d, got = hl.search(queries, k)
        full = distances(queries, codes)
        for q in range(len(queries)):
            order = np.lexsort((live, full[q]))[: min(k, len(live))]
            assert got[q].tolist() == live[order].tolist()
            assert d[q].tolist() == full[q][order].tolist()
