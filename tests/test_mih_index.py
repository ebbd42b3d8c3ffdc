"""MIHIndex: identical to FlatIndex and the numpy oracle on every kind of data, radius and k."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import knn, random_db, range_search

import hashmatch as hm
from hashmatch import _core


def skewed(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """Many identical hashes, strongly biased bits, all-zero and all-one rows."""
    biased = (rng.random((n, nbytes * 8)) < 0.08).astype(np.uint8)
    db = np.packbits(biased, axis=1)
    db[: n // 5] = db[0]
    db[n // 5 : n // 5 + 50] = 0
    db[n // 5 + 50 : n // 5 + 100] = 255
    return db


def clustered(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """Near-duplicate families: copies of a few hundred hashes with 0..40 bits flipped."""
    centers = rng.integers(0, 256, (max(1, n // 50), nbytes), dtype=np.uint8)
    src = centers[rng.integers(0, len(centers), n)]
    return hm.datasets.flip_bits(src, rng.integers(0, min(41, 8 * nbytes + 1), n), seed=7)


DATA = {"random": random_db, "skewed": skewed, "clustered": clustered}


def planted(rng: np.random.Generator, db: np.ndarray, nq: int) -> np.ndarray:
    src = db[rng.integers(0, len(db), nq)]
    q = hm.datasets.flip_bits(src, rng.integers(0, min(40, 8 * db.shape[1]) + 1, nq), seed=3)
    q[-3:] = rng.integers(0, 256, (3, db.shape[1]), dtype=np.uint8)  # far from everything
    return q


def assert_same_range(a: hm.RangeSearchResult, b: tuple) -> None:
    np.testing.assert_array_equal(a.lims, b[0])
    np.testing.assert_array_equal(a.distances, b[1])
    np.testing.assert_array_equal(a.ids, b[2])


@pytest.mark.parametrize("kind", sorted(DATA))
@pytest.mark.parametrize("nbytes", [8, 16, 32])
def test_range_and_knn_match_oracle(kind: str, nbytes: int, rng: np.random.Generator) -> None:
    db = DATA[kind](rng, 6000, nbytes)
    ids = rng.permutation(50_000)[:6000].astype(np.int64)
    index = hm.MIHIndex(8 * nbytes)
    index.add(db, ids)
    assert index.substrings > 0  # the tables were built
    q = planted(rng, db, 40)
    for r in (0, 1, 3, 7, 10, 16, 24, 31, 40):
        assert_same_range(index.range_search(q, r), range_search(db, ids, q, r))
    for k in (1, 10, 100):
        d, i = index.search(q, k)
        ed, ei = knn(db, ids, q, k)
        np.testing.assert_array_equal(d, ed)
        np.testing.assert_array_equal(i, ei)


def test_identical_to_flat_index_at_every_radius(rng: np.random.Generator) -> None:
    db = clustered(rng, 20_000, 32)
    flat, mih = hm.FlatIndex(256), hm.MIHIndex(256)
    flat.add(db)
    mih.add(db)
    q = planted(rng, db, 30)
    for r in range(0, 41):
        a, b = mih.range_search(q, r), flat.range_search(q, r)
        np.testing.assert_array_equal(a.lims, b.lims)
        np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(mih.search(q, 5).ids, flat.search(q, 5).ids)


@pytest.mark.parametrize("substrings", [8, 9, 11, 16, 32, 64])
def test_fixed_substring_counts_stay_exact(substrings: int, rng: np.random.Generator) -> None:
    db = clustered(rng, 3000, 32)
    index = hm.MIHIndex(256, substrings=substrings)
    index.add(db)
    assert index.substrings == substrings
    q = planted(rng, db, 20)
    ids = np.arange(len(db))
    for r in (0, 9, 31):
        assert_same_range(index.range_search(q, r), range_search(db, ids, q, r))
    np.testing.assert_array_equal(index.search(q, 7).ids, knn(db, ids, q, 7)[1])


def test_incremental_adds_and_removes_stay_exact(rng: np.random.Generator) -> None:
    index = hm.MIHIndex(64)
    alive: dict[int, np.ndarray] = {}
    for step in range(12):
        batch = clustered(rng, int(rng.integers(1, 3000)), 8)
        for i, code in zip(index.add(batch).tolist(), batch, strict=True):
            alive[i] = code
        if step % 3 == 2:  # remove a third, plus ids that are not stored
            gone = rng.choice(list(alive), len(alive) // 3, replace=False)
            assert index.remove(np.concatenate([gone, [10**12]])) == len(gone)
            for i in gone.tolist():
                del alive[i]
        ids = np.array(sorted(alive), dtype=np.int64)
        db = np.array([alive[i] for i in ids.tolist()], dtype=np.uint8)
        q = planted(rng, db, 12)
        assert len(index) == len(ids)
        assert_same_range(index.range_search(q, 10), range_search(db, ids, q, 10))
        d, i = index.search(q, 10)
        np.testing.assert_array_equal(d, knn(db, ids, q, 10)[0])
        assert set(i.ravel().tolist()) <= set(alive)


def test_removed_ids_are_never_returned_and_others_keep_their_ids(rng: np.random.Generator) -> None:
    db = random_db(rng, 5000, 32)
    index = hm.MIHIndex(256)
    index.add(db, np.arange(100, 5100))
    assert index.remove([100, 101, 4000]) == 3
    assert index.remove([100]) == 0  # already gone
    res = index.range_search(db[:3], 0)
    assert res.lims.tolist() == [0, 0, 0, 1] and res.ids.tolist() == [102]
    assert 4000 not in index.search(db[3900], 50).ids  # removed: never returned
    assert index.search(db[3901], 1).ids.tolist() == [[4001]]  # neighbours keep their ids
    index.add(db[:1], ids=[100])  # a removed id may be used again
    assert index.search(db[0], 1).ids.tolist() == [[100]]


def test_threads_give_identical_results(rng: np.random.Generator) -> None:
    db = clustered(rng, 20_000, 32)
    index = hm.MIHIndex(256)
    index.add(db)
    q = planted(rng, db, 100)
    one = index.range_search(q, 31, threads=1)
    for threads in (2, 4):
        many = index.range_search(q, 31, threads=threads)
        np.testing.assert_array_equal(one.ids, many.ids)
        np.testing.assert_array_equal(
            index.search(q, 10, threads=1).ids, index.search(q, 10, threads=threads).ids
        )


def test_small_index_before_the_first_build(rng: np.random.Generator) -> None:
    db = random_db(rng, 50, 32, duplicates=10)
    index = hm.MIHIndex(256)
    index.add(db)
    assert index.substrings == 0  # linear until 1,025 hashes
    q = planted(rng, db, 5)
    assert_same_range(index.range_search(q, 31), range_search(db, np.arange(50), q, 31))
    empty = hm.MIHIndex(64)
    assert empty.search(np.zeros(8, np.uint8), 3).ids.shape == (1, 0)


def test_memory_is_a_small_multiple_of_the_codes(rng: np.random.Generator) -> None:
    index = hm.MIHIndex(256)
    index.add(random_db(rng, 200_000, 32))
    raw = 200_000 * 32
    assert raw < index.memory_bytes() < 4 * raw


def test_cost_model_choices() -> None:
    # PDQ at radius 31: about log2(N)-bit substrings, i.e. more tables for bigger N.
    m_1m = _core.choose_substrings(256, 1_000_000, 31)
    m_10m = _core.choose_substrings(256, 10_000_000, 31)
    assert 8 <= m_10m <= m_1m <= 16
    assert 256 // m_10m in range(20, 29)


def test_pickle_round_trip(rng: np.random.Generator) -> None:
    db = random_db(rng, 3000, 8)
    index = hm.MIHIndex(64, max_distance=6, substrings=4)
    index.add(db)
    index.remove([5])
    clone = pickle.loads(pickle.dumps(index))
    assert clone.substrings == 4 and len(clone) == 2999
    np.testing.assert_array_equal(clone.search(db[:20], 3).ids, index.search(db[:20], 3).ids)


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"substrings": 0}, hm.InvalidArgument),
        ({"substrings": 7}, hm.InvalidArgument),  # 256 / 7 > 32 bits per piece
        ({"substrings": 2.0}, hm.InvalidType),
        ({"max_distance": -1}, hm.InvalidArgument),
        ({"max_distance": 257}, hm.InvalidArgument),
    ],
)
def test_bad_parameters(kwargs: dict, exc: type) -> None:
    with pytest.raises(exc):
        hm.MIHIndex(256, **kwargs)


def test_bad_remove_ids() -> None:
    index = hm.MIHIndex(64)
    index.add(np.zeros((3, 8), np.uint8))
    with pytest.raises(hm.InvalidArgument, match="negative"):
        index.remove([-1])
    with pytest.raises(hm.InvalidType):
        index.remove([1.5])
    assert len(index) == 3


@given(
    nbytes=st.sampled_from([2, 8, 16, 32]),
    n=st.integers(1100, 2500),
    r=st.integers(0, 40),
    k=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_matches_oracle(nbytes: int, n: int, r: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    db = clustered(rng, n, nbytes)
    index = hm.MIHIndex(8 * nbytes)
    index.add(db)
    q = planted(rng, db, 6)
    ids = np.arange(n)
    r = min(r, 8 * nbytes)
    assert_same_range(index.range_search(q, r), range_search(db, ids, q, r))
    np.testing.assert_array_equal(index.search(q, k).distances, knn(db, ids, q, k)[0])


def test_searches_during_adds_and_removes_see_whole_batches(rng: np.random.Generator) -> None:
    import threading

    index = hm.MIHIndex(64)
    batches = [rng.integers(0, 256, (700, 8), dtype=np.uint8) for _ in range(16)]
    q = rng.integers(0, 256, (2, 8), dtype=np.uint8)
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            _, ids = index.search(q, 100_000, threads=1)
            batch_of = set((ids[0] // 700).tolist())
            for b in batch_of:  # every batch seen must be complete: no half-applied change
                if int(np.count_nonzero(ids[0] // 700 == b)) != 700:
                    errors.append(f"batch {b} partly visible")
                    return

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    for i, b in enumerate(batches):
        index.add(b, ids=np.arange(700 * i, 700 * (i + 1)))
        if i % 3 == 2:
            index.remove(np.arange(700 * (i - 1), 700 * i))
    done.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert len(index) == 700 * (16 - 5)


def test_plan_index_prefers_mih_for_big_lists_and_small_radii() -> None:
    big = hm.plan_index(10_000_000, 256, max_distance=31)
    assert big.kind == "MIHIndex" and big.mih_ms < big.flat_ms and 8 <= big.substrings <= 16
    assert hm.plan_index(1_000, 256, max_distance=31).kind == "FlatIndex"
    assert hm.plan_index(1_000_000, 256, max_distance=200).kind == "FlatIndex"  # radius too big
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        hm.plan_index(10, 64, max_distance=65)


@pytest.mark.parametrize("cls", [hm.FlatIndex, hm.MIHIndex])
def test_the_largest_id_does_not_disable_the_duplicate_check(cls: type) -> None:
    index = cls(64)
    index.add(np.zeros((2, 8), np.uint8), ids=[5, 2**63 - 1])
    with pytest.raises(hm.InvalidArgument, match="already"):
        index.add(np.ones((1, 8), np.uint8), ids=[5])
    with pytest.raises(hm.InvalidArgument, match="already"):
        index.add(np.ones((1, 8), np.uint8), ids=[2**63 - 1])
    with pytest.raises(hm.InvalidArgument, match="default ids"):
        index.add(np.ones((1, 8), np.uint8))
    assert len(index) == 2


def test_long_substrings_keep_memory_proportional(rng: np.random.Generator) -> None:
    index = hm.MIHIndex(64, max_distance=1)  # the cost model picks 32-bit pieces here
    db = random_db(rng, 2000, 8)
    index.add(db)
    assert index.memory_bytes() < 40 * db.nbytes
    q = planted(rng, db, 10)
    assert_same_range(index.range_search(q, 1), range_search(db, np.arange(2000), q, 1))


def test_a_rebuild_that_runs_out_of_memory_leaves_the_index_exact() -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import resource, numpy as np, hashmatch as hm
        rng = np.random.default_rng(3)
        db = rng.integers(0, 256, (3000, 8), dtype=np.uint8)
        index = hm.MIHIndex(64, substrings=2)
        index.add(db[:1000])
        vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
        resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + (16 << 20), resource.RLIM_INFINITY))
        index.add(db[1000:], ids=np.arange(1000, 3000))  # its rebuild cannot allocate
        index.remove(np.arange(1100))                    # nor can this compaction
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
        flat = hm.FlatIndex(64)
        flat.add(db[1100:], ids=np.arange(1100, 3000))
        a, b = index.range_search(db, 3), flat.range_search(db, 3)
        assert len(index) == 1900, len(index)
        assert np.array_equal(a.lims, b.lims) and np.array_equal(a.ids, b.ids)
        assert np.array_equal(index.search(db, 2).ids, flat.search(db, 2).ids)
        print("exact")
        """
    )
    env = {**__import__("os").environ, "SKBUILD_EDITABLE_VERBOSE": "0"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exact" in done.stdout


def test_knn_probing_path_on_a_large_index(rng: np.random.Generator) -> None:
    # Large enough that the radius-growing search finishes before its time budget sends it
    # to a flat scan, so the stopping rule (m * rho + t) is what decides the answer.
    db = clustered(rng, 300_000, 32)
    mih, flat = hm.MIHIndex(256), hm.FlatIndex(256)
    mih.add(db)
    flat.add(db)
    q = hm.datasets.flip_bits(db[rng.integers(0, len(db), 40)], rng.integers(0, 12, 40), seed=5)
    for k in (1, 3):
        a, b = mih.search(q, k, threads=1), flat.search(q, k)
        np.testing.assert_array_equal(a.distances, b.distances)
        np.testing.assert_array_equal(a.ids, b.ids)
