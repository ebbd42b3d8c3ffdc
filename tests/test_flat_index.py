"""FlatIndex: exactness against the numpy oracle and faiss, edge cases, bad input, threads."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest
from conftest import WIDTHS_BYTES
from hypothesis import given
from hypothesis import strategies as st
from oracle import distances, knn, random_db, range_search

import hashmatch as hm


def build(db: np.ndarray, ids: np.ndarray | None = None) -> hm.FlatIndex:
    index = hm.FlatIndex(bits=8 * db.shape[1])
    index.add(db, ids)
    return index


def assert_range_equal(result: hm.RangeSearchResult, expected: tuple) -> None:
    lims, dist, ids = expected
    np.testing.assert_array_equal(result.lims, lims)
    np.testing.assert_array_equal(result.distances, dist)
    np.testing.assert_array_equal(result.ids, ids)


def queries_for(rng: np.random.Generator, db: np.ndarray, n: int) -> np.ndarray:
    """Random queries plus a stored row (distance 0) and its complement (distance = bits)."""
    q = rng.integers(0, 256, (n, db.shape[1]), dtype=np.uint8)
    if len(db):
        q[0] = db[len(db) // 2]
        q[1] = ~db[0]
    return q


# ---- exactness ---------------------------------------------------------------------------


@pytest.mark.parametrize("nbytes", WIDTHS_BYTES)
def test_knn_matches_oracle_every_kernel_and_width(
    kernel: str, nbytes: int, rng: np.random.Generator
) -> None:
    db = random_db(rng, 301, nbytes, duplicates=40)
    ids = rng.permutation(10_000)[:301].astype(np.int64)  # ties must break by id, not position
    q = queries_for(rng, db, 19)
    index = build(db, ids)
    for k in (1, 5, 301, 400):
        d, i = index.search(q, k, threads=2)
        ed, ei = knn(db, ids, q, k)
        np.testing.assert_array_equal(d, ed)
        np.testing.assert_array_equal(i, ei)
    assert d.dtype == np.int32 and i.dtype == np.int64


@pytest.mark.parametrize("nbytes", WIDTHS_BYTES)
def test_range_matches_oracle_every_kernel_and_width(
    kernel: str, nbytes: int, rng: np.random.Generator
) -> None:
    db = random_db(rng, 257, nbytes, duplicates=30)
    ids = np.arange(257, dtype=np.int64)[::-1].copy()
    q = queries_for(rng, db, 13)
    index = build(db, ids)
    bits = 8 * nbytes
    for r in sorted({0, 1, bits // 4, bits // 2 - 2, bits // 2, bits}):
        assert_range_equal(index.range_search(q, r, threads=2), range_search(db, ids, q, r))


@pytest.mark.parametrize("bits", [64, 256])
def test_planted_boundary_is_inclusive(kernel: str, bits: int) -> None:
    db = hm.datasets.random_codes(5000, bits, seed=3)
    r = 31 if bits == 256 else 10
    sources = np.arange(0, 5000, 50)
    dist = np.tile([0, r - 1, r, r + 1], len(sources) // 4 + 1)[: len(sources)]
    q = hm.datasets.flip_bits(db[sources], dist, seed=4)
    res = build(db).range_search(q, r)
    for j, (s, d) in enumerate(zip(sources, dist, strict=True)):
        qd, qi = res.query(j)
        assert (s in qi) == (d <= r), (s, d)
        if d <= r:
            assert qd[list(qi).index(s)] == d
    assert_range_equal(res, range_search(db, np.arange(5000), q, r))


@pytest.mark.parametrize("nbytes", [8, 16, 32, 5, 17, 40])
def test_faiss_parity(nbytes: int, rng: np.random.Generator) -> None:
    faiss = pytest.importorskip("faiss")
    db = random_db(rng, 2000, nbytes, duplicates=100)
    q = queries_for(rng, db, 50)
    ref = faiss.IndexBinaryFlat(8 * nbytes)
    ref.add(db)
    index = build(db)
    fd, _ = ref.search(q, 10)
    d, i = index.search(q, 10)
    np.testing.assert_array_equal(d, fd)  # ids may legitimately differ on ties
    np.testing.assert_array_equal(distances(q, db)[np.arange(len(q))[:, None], i], d)
    r = 8 * nbytes // 3
    flims, fdist, fids = ref.range_search(q, r + 1)  # faiss is strict <, we are inclusive <=
    ours = index.range_search(q, r)
    np.testing.assert_array_equal(ours.lims, flims)
    for j in range(len(q)):
        a = sorted(zip(*[x.tolist() for x in reversed(ours.query(j))], strict=True))
        lo, hi = flims[j], flims[j + 1]
        b = sorted(zip(fids[lo:hi].tolist(), fdist[lo:hi].tolist(), strict=True))
        assert a == b


@given(
    nbytes=st.sampled_from([1, 2, 5, 8, 12, 32, 33, 64]),
    n=st.integers(0, 60),
    nq=st.integers(0, 6),
    k=st.integers(1, 70),
    r_frac=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
    dup=st.integers(0, 20),
)
def test_hypothesis_search_and_range_match_oracle(nbytes, n, nq, k, r_frac, seed, dup) -> None:
    rng = np.random.default_rng(seed)
    db = random_db(rng, n, nbytes, duplicates=dup)
    ids = rng.permutation(4 * n + 1)[:n].astype(np.int64)
    q = queries_for(rng, db, nq) if nq >= 2 else rng.integers(0, 256, (nq, nbytes), dtype=np.uint8)
    index = build(db, ids)
    d, i = index.search(q, k)
    ed, ei = knn(db, ids, q, k)
    np.testing.assert_array_equal(d, ed)
    np.testing.assert_array_equal(i, ei)
    r = int(r_frac * 8 * nbytes)
    assert_range_equal(index.range_search(q, r), range_search(db, ids, q, r))


def test_threads_give_identical_results(rng: np.random.Generator) -> None:
    # Large enough that several threads are worth starting even for one query, so both
    # parallel paths run: few queries split the stored codes, many split the queries.
    db = random_db(rng, 300_001, 32, duplicates=3000)
    q = queries_for(rng, db, 64)
    index = build(db)
    base = index.search(q, 25, threads=1)
    base_range = index.range_search(q, 90, threads=1)
    ed, ei = knn(db, np.arange(len(db)), q[:3], 25)
    np.testing.assert_array_equal(base.distances[:3], ed)
    np.testing.assert_array_equal(base.ids[:3], ei)
    for threads in (2, 3, 8):
        for nq in (1, 3, 64):
            got = index.search(q[:nq], 25, threads=threads)
            np.testing.assert_array_equal(got.distances, base.distances[:nq])
            np.testing.assert_array_equal(got.ids, base.ids[:nq])
            rr = index.range_search(q[:nq], 90, threads=threads)
            np.testing.assert_array_equal(rr.lims, base_range.lims[: nq + 1])
            np.testing.assert_array_equal(rr.ids, base_range.ids[: base_range.lims[nq]])


def test_many_queries(rng: np.random.Generator) -> None:
    db = random_db(rng, 500, 32, duplicates=50)
    q = rng.integers(0, 256, (100_000, 32), dtype=np.uint8)
    q[::1000] = db[:100]
    index = build(db)
    d, i = index.search(q, 3)
    ed, ei = knn(db, np.arange(500), q, 3)
    np.testing.assert_array_equal(d, ed)
    np.testing.assert_array_equal(i, ei)


# ---- edge cases ---------------------------------------------------------------------------


def test_empty_index() -> None:
    index = hm.FlatIndex(256)
    d, i = index.search(["00" * 32, "ff" * 32], k=5)
    assert d.shape == (2, 0) and i.shape == (2, 0)
    res = index.range_search(["00" * 32], 256)
    assert res.lims.tolist() == [0, 0] and len(res.ids) == 0
    assert len(index) == 0 and index.ntotal == 0


def test_empty_query_batch() -> None:
    index = build(np.zeros((3, 8), np.uint8))
    d, i = index.search(np.zeros((0, 8), np.uint8), 2)
    assert d.shape == (0, 2) and i.shape == (0, 2)
    assert index.range_search(np.zeros((0, 8), np.uint8), 3).lims.tolist() == [0]


def test_k_larger_than_ntotal_returns_only_real_hits() -> None:
    index = hm.FlatIndex(64)
    index.add(["0000000000000000", "0000000000000001", "ffffffffffffffff"], ids=[7, 3, 5])
    d, i = index.search("0000000000000000", k=8)
    assert d.tolist() == [[0, 1, 64]] and i.tolist() == [[7, 3, 5]]


def test_duplicates_tie_break_by_id() -> None:
    index = hm.FlatIndex(64)
    index.add(["00000000000000ff"] * 4, ids=[40, 10, 30, 20])
    assert index.search("00000000000000ff", 3).ids.tolist() == [[10, 20, 30]]
    assert index.range_search("00000000000000ff", 0).ids.tolist() == [10, 20, 30, 40]


def test_default_ids_continue_after_explicit_ids() -> None:
    index = hm.FlatIndex(8)
    assert index.add(["00", "01"]).tolist() == [0, 1]
    assert index.add(["02"], ids=[10]).tolist() == [10]
    assert index.add(["03", "04"]).tolist() == [11, 12]
    ids, codes = index.contents()
    assert ids.tolist() == [0, 1, 10, 11, 12] and codes[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_pickle_round_trip(rng: np.random.Generator) -> None:
    db = random_db(rng, 100, 32)
    index = build(db, rng.permutation(1000)[:100])
    clone = pickle.loads(pickle.dumps(index))
    q = queries_for(rng, db, 5)
    np.testing.assert_array_equal(clone.search(q, 7).ids, index.search(q, 7).ids)
    assert clone.bits == 256 and len(clone) == 100


@pytest.mark.parametrize(
    "layout",
    ["fortran", "strided", "reversed", "column_slice", "readonly", "unaligned"],
)
def test_memory_layouts_give_identical_results(layout: str, rng: np.random.Generator) -> None:
    db = random_db(rng, 400, 32)
    q = queries_for(rng, db, 9)
    index = build(db)
    expected = index.search(q, 4)

    def relayout(a: np.ndarray) -> np.ndarray:
        if layout == "fortran":
            return np.asfortranarray(a)
        if layout == "strided":
            return np.repeat(a, 2, axis=0)[::2]
        if layout == "reversed":
            return a[::-1].copy()[::-1]
        if layout == "column_slice":
            wide = np.zeros((len(a), a.shape[1] + 3), np.uint8)
            wide[:, 2:-1] = a
            return wide[:, 2:-1]
        if layout == "readonly":
            return np.frombuffer(a.tobytes(), np.uint8).reshape(a.shape)
        buf = np.zeros(a.size + 1, np.uint8)
        view = buf[1:].reshape(a.shape)
        view[:] = a
        return view

    got = index.search(relayout(q), 4)
    np.testing.assert_array_equal(got.ids, expected.ids)
    other = build(relayout(db))
    np.testing.assert_array_equal(other.search(q, 4).distances, expected.distances)


# ---- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [0, 250, 4104, -8])
def test_bad_bits(bits: int) -> None:
    with pytest.raises(hm.InvalidArgument, match="bits"):
        hm.FlatIndex(bits)


@pytest.mark.parametrize("bits", [256.0, "256", None, True])
def test_bits_wrong_type(bits: object) -> None:
    with pytest.raises(hm.InvalidType, match="bits"):
        hm.FlatIndex(bits)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "k, exc",
    [
        (0, hm.InvalidArgument),
        (-1, hm.InvalidArgument),
        (1.5, hm.InvalidType),
        (True, hm.InvalidType),
        (float("nan"), hm.InvalidType),
    ],
)
def test_bad_k(k: object, exc: type) -> None:
    index = build(np.zeros((2, 8), np.uint8))
    with pytest.raises(exc, match="k"):
        index.search(np.zeros(8, np.uint8), k)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "r, exc",
    [
        (-1, hm.InvalidArgument),
        (65, hm.InvalidArgument),
        (31.5, hm.InvalidType),
        (float("nan"), hm.InvalidType),
        ("3", hm.InvalidType),
    ],
)
def test_bad_max_distance(r: object, exc: type) -> None:
    index = build(np.zeros((2, 8), np.uint8))
    with pytest.raises(exc, match="max_distance"):
        index.range_search(np.zeros(8, np.uint8), r)  # type: ignore[arg-type]


def test_numpy_integer_parameters_accepted() -> None:
    index = build(np.zeros((2, 8), np.uint8))
    assert index.search(np.zeros(8, np.uint8), np.int64(1)).ids.shape == (1, 1)
    assert index.range_search(np.zeros(8, np.uint8), np.uint8(64)).lims.tolist() == [0, 2]


@pytest.mark.parametrize("threads", [0, -1])
def test_bad_threads(threads: int) -> None:
    index = build(np.zeros((2, 8), np.uint8))
    with pytest.raises(hm.InvalidArgument, match="threads"):
        index.search(np.zeros(8, np.uint8), 1, threads=threads)


def test_width_mismatch_names_both_widths() -> None:
    index = hm.FlatIndex(256)
    with pytest.raises(hm.HashTypeMismatch, match=r"32 bytes.*16"):
        index.add(np.zeros((3, 16), np.uint8))
    with pytest.raises(hm.HashTypeMismatch):
        index.search("ff" * 8, 1)  # a pHash into a PDQ index
    with pytest.raises(ValueError):  # also catchable as ValueError
        index.range_search(np.zeros((1, 8), np.uint8), 3)


def test_unpacked_bits_get_a_packbits_hint() -> None:
    index = hm.FlatIndex(64)
    with pytest.raises(hm.InvalidArgument, match=r"packbits|from_bits"):
        index.add(np.random.default_rng(0).integers(0, 2, (4, 64)).astype(np.uint8))


@pytest.mark.parametrize(
    "ids, exc, match",
    [
        ([1, 1], hm.InvalidArgument, "duplicate"),
        ([-1, 2], hm.InvalidArgument, "negative"),
        ([1.7, 2], hm.InvalidType, "integer"),
        ([0], hm.InvalidArgument, "expected 2"),
        (np.array([2**64 - 1, 3], np.uint64), hm.InvalidArgument, "ids"),
    ],
)
def test_bad_ids_leave_index_unchanged(ids: object, exc: type, match: str) -> None:
    index = hm.FlatIndex(8)
    index.add(["00", "01"], ids=[5, 6])
    with pytest.raises(exc, match=match):
        index.add(["02", "03"], ids=ids)
    assert len(index) == 2 and index.contents()[0].tolist() == [5, 6]


def test_id_already_stored_is_rejected_atomically() -> None:
    index = hm.FlatIndex(8)
    index.add(["00", "01", "02"], ids=[10, 20, 30])
    with pytest.raises(hm.InvalidArgument, match="20"):
        index.add(["03", "04"], ids=[15, 20])
    assert len(index) == 3
    assert index.search("04", 1).ids.tolist() == [[10]]  # "04" itself was not added


# ---- runtime behaviour: GIL, interruption, concurrent mutation ------------------------------


def test_search_releases_the_gil(rng: np.random.Generator) -> None:
    index = build(rng.integers(0, 256, (200_000, 32), dtype=np.uint8))
    q = rng.integers(0, 256, (600, 32), dtype=np.uint8)
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.05)
    before = ticks
    index.search(q, 10, threads=1)
    during = ticks - before
    stop.set()
    t.join()
    # Holding the GIL for the whole call would leave the counter thread (almost) frozen.
    assert during > 10_000


def test_ctrl_c_interrupts_a_long_search_and_the_index_survives(rng: np.random.Generator) -> None:
    import _thread

    db = rng.integers(0, 256, (200_000, 32), dtype=np.uint8)
    index = build(db)
    q = rng.integers(0, 256, (100_000, 32), dtype=np.uint8)  # 2e10 comparisons: many seconds
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        index.range_search(q, 31, threads=2)
    timer.join()
    small = q[:5]
    assert_range_equal(
        index.range_search(small, 100), range_search(db, np.arange(len(db)), small, 100)
    )


def test_concurrent_searches_during_adds_see_whole_batches(rng: np.random.Generator) -> None:
    index = hm.FlatIndex(64)
    batches = [rng.integers(0, 256, (500, 8), dtype=np.uint8) for _ in range(30)]
    all_codes = np.concatenate(batches)
    q = rng.integers(0, 256, (3, 8), dtype=np.uint8)
    full = distances(q, all_codes)
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            d, i = index.search(q, 20_000, threads=2)
            m = i.shape[1]
            if m % 500 != 0 or sorted(i[0].tolist()) != list(range(m)):
                errors.append(f"saw a partial batch: {m} hashes")
                return
            if not np.array_equal(np.take_along_axis(full[:, :m], i, 1), d):
                errors.append("wrong distances")
                return

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    for b in batches:
        index.add(b)
    done.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert len(index) == 15_000
