"""Backends: faiss's approximate binary indexes behind the interface of our exact indexes.

Approximate backends may miss hashes, so every test checks what they report against the numpy
oracle (true distances, inclusive radius, (distance, id) order, CSR layout) and compares whole
answers only in configurations that find everything on small data ("easy" parameters).
"""

from __future__ import annotations

import doctest
import pickle
import threading
from typing import Any

import faiss
import numpy as np
import pytest
from hashmatch.backends import (
    BACKENDS,
    Backend,
    FaissBackend,
    FaissHNSW,
    FaissIVF,
    FaissMultiHash,
    backend_from_bytes,
    backend_spec,
    is_exact,
    make_backend,
)
from oracle import distances, knn, random_db, range_search

import hashmatch as hm
from hashmatch import backends

FAISS = ["faiss-hnsw", "faiss-ivf", "faiss-multihash"]

# Parameters with which each backend finds everything on a few hundred hashes: HNSW explores
# the whole small graph, IVF scans every list, multi-hash probes within the pigeonhole bound
# (for range search up to exact_radius; its kNN stays approximate).
EASY: dict[str, dict[str, Any]] = {
    "faiss-hnsw": {"M": 16, "ef_search": 512, "ef_construction": 200},
    "faiss-ivf": {"nlist": 8, "nprobe": 8},
    "faiss-multihash": {"b": 8, "nflip": 1},
}


def easy(name: str, bits: int) -> FaissBackend:
    backend = make_backend(name, bits, **EASY[name])
    assert isinstance(backend, FaissBackend)
    return backend


def easy_radius(backend: FaissBackend) -> int:
    """A radius at which the easy backend's range search is complete."""
    if isinstance(backend, FaissMultiHash):
        return backend.exact_radius
    return backend.bits // 8


def planted(rng: np.random.Generator, db: np.ndarray, nq: int, r: int) -> np.ndarray:
    """Near-duplicates of stored hashes at 0..r bits, and a few fresh random hashes."""
    q = hm.datasets.flip_bits(db[rng.integers(0, len(db), nq)], rng.integers(0, r + 1, nq))
    q[-3:] = rng.integers(0, 256, (3, db.shape[1]), dtype=np.uint8)
    return q


def assert_true_and_sorted(
    db: np.ndarray, ids: np.ndarray, q: np.ndarray, result: hm.RangeSearchResult, r: int
) -> None:
    """Every reported (query, id, distance) is real and within r; rows sorted by (d, id)."""
    lims = result.lims
    assert lims.dtype == np.int64 and result.distances.dtype == np.int32
    assert result.ids.dtype == np.int64
    assert lims[0] == 0 and len(lims) == len(q) + 1 and np.all(np.diff(lims) >= 0)
    assert lims[-1] == len(result.ids) == len(result.distances)
    row_of = {int(i): row for row, i in enumerate(ids.tolist())}
    full = distances(q, db)
    for qi in range(len(q)):
        d, i = result.query(qi)
        assert np.all(d <= r)
        np.testing.assert_array_equal(d, full[qi, [row_of[x] for x in i.tolist()]])
        assert np.all(np.lexsort((i, d)) == np.arange(len(i)))
        assert len(set(i.tolist())) == len(i)


def assert_same_range(a: hm.RangeSearchResult, b: tuple[np.ndarray, ...]) -> None:
    np.testing.assert_array_equal(a.lims, b[0])
    np.testing.assert_array_equal(a.distances, b[1])
    np.testing.assert_array_equal(a.ids, b[2])


# -- the interface -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_satisfies_the_protocol(name: str) -> None:
    backend = make_backend(name, 64)
    assert isinstance(backend, Backend)
    assert backend.bits == 64 and len(backend) == 0
    assert is_exact(backend) == (name in ("flat", "mih"))
    spec_name, params = backend_spec(backend)
    assert spec_name == name
    again = make_backend(spec_name, 64, **params)
    assert type(again) is type(backend) and backend_spec(again) == (name, params)


def test_make_backend_builds_our_exact_indexes() -> None:
    assert isinstance(make_backend("flat", 256), hm.FlatIndex)
    mih = make_backend("mih", 64, max_distance=6, substrings=4)
    assert isinstance(mih, hm.MIHIndex)
    assert backend_spec(mih) == ("mih", {"max_distance": 6, "substrings": 4})


def test_module_examples_run() -> None:
    result = doctest.testmod(backends, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# -- what the faiss backends report ------------------------------------------------------------


@pytest.mark.parametrize("bits", [64, 256])
@pytest.mark.parametrize("name", FAISS)
def test_default_parameters_report_only_true_sorted_results(
    name: str, bits: int, rng: np.random.Generator
) -> None:
    db = random_db(rng, 2000, bits // 8, duplicates=200)
    ids = rng.permutation(10**6)[: len(db)].astype(np.int64)
    backend = make_backend(name, bits)
    np.testing.assert_array_equal(backend.add(db, ids), ids)
    q = planted(rng, db, 50, bits // 6)
    for r in (0, bits // 16, bits // 6):
        assert_true_and_sorted(db, ids, q, backend.range_search(q, r), r)
    d, i = backend.search(q, 10)
    assert d.shape == i.shape == (len(q), 10)
    assert d.dtype == np.int32 and i.dtype == np.int64
    real = i >= 0
    full = distances(q, db)
    rows = np.searchsorted(np.sort(ids), i[real])
    np.testing.assert_array_equal(d[real], full[np.nonzero(real)[0], np.argsort(ids)[rows]])
    assert np.all(d[~real] == bits + 1)
    for row_d, row_i in zip(d, i, strict=True):
        assert np.all(np.lexsort((row_i, row_d)) == np.arange(len(row_i)))


@pytest.mark.parametrize("bits", [64, 256])
@pytest.mark.parametrize("name", FAISS)
def test_easy_parameters_find_the_exact_range_answer(
    name: str, bits: int, rng: np.random.Generator
) -> None:
    db = random_db(rng, 400, bits // 8, duplicates=40)
    ids = np.arange(400, dtype=np.int64) * 3 + 5
    backend = easy(name, bits)
    backend.add(db, ids)
    r = easy_radius(backend)
    q = planted(rng, db, 40, r)
    for radius in (0, r // 2, r):
        assert_same_range(backend.range_search(q, radius), range_search(db, ids, q, radius))


@pytest.mark.parametrize("name", FAISS)
def test_radius_is_inclusive(name: str, rng: np.random.Generator) -> None:
    db = hm.datasets.random_codes(300, 256, seed=3)
    backend = easy(name, 256)
    backend.add(db)
    r = min(easy_radius(backend), 31)
    q = hm.datasets.flip_bits(db[:20], np.full(20, r))  # each exactly r from its source
    at_r, below = backend.range_search(q, r), backend.range_search(q, r - 1)
    for qi in range(20):
        d, i = at_r.query(qi)
        assert i.tolist() == [qi] and d.tolist() == [r]
        assert below.query(qi)[1].tolist() == []


def test_faiss_binary_range_search_is_strict() -> None:
    """Why the backends pass max_distance + 1: faiss reports distance < radius only."""
    db = hm.datasets.random_codes(100, 256, seed=4)
    raw = faiss.IndexBinaryFlat(256)
    raw.add(db)
    q = hm.datasets.flip_bits(db[:1], [9])
    assert raw.range_search(q, 9)[2].tolist() == []
    assert raw.range_search(q, 10)[2].tolist() == [0]


@pytest.mark.parametrize("name", ["faiss-hnsw", "faiss-ivf"])
def test_easy_knn_has_the_exact_distances(name: str, rng: np.random.Generator) -> None:
    db = random_db(rng, 400, 8, duplicates=60)
    ids = rng.permutation(400).astype(np.int64)
    backend = easy(name, 64)
    backend.add(db, ids)
    q = planted(rng, db, 30, 8)
    for k in (1, 7, 50):
        d, i = backend.search(q, k)
        expected_d, _ = knn(db, ids, q, k)
        np.testing.assert_array_equal(d, expected_d)  # which tied ids come back is faiss's call
        for row_d, row_i in zip(d, i, strict=True):
            assert np.all(np.lexsort((row_i, row_d)) == np.arange(k))


def test_ties_are_ordered_by_id() -> None:
    db = np.repeat(hm.datasets.random_codes(1, 64, seed=5), 12, axis=0)
    for name in FAISS:
        backend = easy(name, 64)
        backend.add(db, np.arange(12)[::-1] * 10)
        assert backend.range_search(db[0], 0).ids.tolist() == list(range(0, 120, 10))
        assert backend.search(db[0], 12).ids.tolist() == [list(range(0, 120, 10))]


@pytest.mark.parametrize("name", FAISS)
def test_k_larger_than_ntotal_gives_ntotal_columns(name: str) -> None:
    db = hm.datasets.random_codes(5, 64, seed=6)
    backend = make_backend(name, 64)
    backend.add(db)
    d, i = backend.search(db[:2], 100)
    assert d.shape == i.shape == (2, 5)
    assert i[:, 0].tolist() == [0, 1] and d[:, 0].tolist() == [0, 0]


def test_missing_knn_results_are_padded_at_the_end_of_the_row() -> None:
    """Multi-hash only sees hashes sharing a probed bucket: a far query finds nothing."""
    db = hm.datasets.random_codes(50, 256, seed=7)
    db[:, ::2] &= 0x7F  # the first bit of every 16-bit table key is 0 ...
    backend = FaissMultiHash(256, nflip=0)
    backend.add(db)
    far = db[:1] | np.tile([0x80, 0], 16).astype(np.uint8)  # ... and 1 here: no key matches
    q = np.concatenate([db[:1], far])
    d, i = backend.search(q, 4)
    assert d.shape == (2, 4)
    assert i[0, 0] == 0 and d[0, 0] == 0
    assert i[1].tolist() == [backends.MISSING_ID] * 4
    assert d[1].tolist() == [backends.missing_distance(256)] * 4 == [257] * 4
    assert np.all(np.diff(d, axis=1) >= 0)


@pytest.mark.parametrize("name", FAISS)
def test_empty_backend_and_empty_batches(name: str) -> None:
    backend = make_backend(name, 64)
    q = hm.datasets.random_codes(3, 64)
    d, i = backend.search(q, 5)
    assert d.shape == i.shape == (3, 0) and d.dtype == np.int32 and i.dtype == np.int64
    res = backend.range_search(q, 10)
    assert res.lims.tolist() == [0, 0, 0, 0] and res.lims.dtype == np.int64
    assert res.ids.size == res.distances.size == 0
    assert backend.add(np.empty((0, 8), np.uint8)).tolist() == []
    assert len(backend) == 0
    backend.add(q)
    none = np.empty((0, 8), np.uint8)
    assert backend.search(none, 2).ids.shape == (0, 2)
    assert backend.range_search(none, 3).lims.tolist() == [0]


@pytest.mark.parametrize("name", FAISS)
def test_ids(name: str) -> None:
    db = hm.datasets.random_codes(30, 64, seed=8)
    backend = easy(name, 64)
    top = 2**63 - 1
    assert backend.add(db[:10], [top, 7, 3, 0, 1, 2, 4, 5, 6, 8]).tolist()[:2] == [top, 7]
    with pytest.raises(hm.InvalidArgument, match="ids: default ids would pass 2"):
        backend.add(db[10:12])
    backend2 = easy(name, 64)
    backend2.add(db[:10], np.arange(10, 20))
    assert backend2.add(db[10:13]).tolist() == [20, 21, 22]  # continue after the largest
    with pytest.raises(hm.InvalidArgument, match="ids: id 21 is already in the index"):
        backend2.add(db[13:15], [30, 21])
    with pytest.raises(hm.InvalidArgument, match="duplicate"):
        backend2.add(db[13:15], [30, 30])
    with pytest.raises(hm.InvalidArgument, match="non-negative"):
        backend2.add(db[13:14], [-1])
    assert len(backend2) == 13  # refused batches add nothing
    assert backend2.range_search(db[12], 0).ids.tolist() == [22]


@pytest.mark.parametrize("name", FAISS)
def test_width_mismatch(name: str) -> None:
    backend = make_backend(name, 256)
    with pytest.raises(hm.HashTypeMismatch):
        backend.add(hm.datasets.random_codes(3, 64))
    backend.add(hm.datasets.random_codes(30, 256))
    with pytest.raises(hm.HashTypeMismatch):
        backend.range_search("ff" * 8, 3)
    with pytest.raises(hm.InvalidArgument):
        backend.range_search("ff" * 32, 257)
    with pytest.raises(hm.InvalidArgument):
        backend.search("ff" * 32, 0)
    with pytest.raises(hm.InvalidType):
        backend.search("ff" * 32, 1.0)  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument):
        backend.search("ff" * 32, 1, threads=0)


# -- approximate backends in exact configurations ----------------------------------------------


def test_ivf_scanning_every_list_has_recall_one(rng: np.random.Generator) -> None:
    db = hm.datasets.random_codes(5000, 256, seed=9)
    q = hm.datasets.planted_queries(db, 200, max_distance=31, seed=10).queries
    ivf = FaissIVF(256, nlist=20, nprobe=20)
    ivf.add(db)
    exact = hm.FlatIndex(256)
    exact.add(db)
    assert_same_range(ivf.range_search(q, 31), exact.range_search(q, 31))
    np.testing.assert_array_equal(ivf.search(q, 5).distances, exact.search(q, 5).distances)


def test_ivf_chooses_nlist_from_the_first_batch_and_trains_on_a_sample() -> None:
    ivf = FaissIVF(64)
    assert ivf.params == {"nlist": None, "nprobe": 16}
    ivf.add(hm.datasets.random_codes(10_000, 64))  # 64 * 100 < 10,000: trains on a sample
    assert ivf.params == {"nlist": 100, "nprobe": 16}
    ivf.add(hm.datasets.random_codes(3, 64, seed=1))  # later batches: no retraining
    assert len(ivf) == 10_003 and ivf.params["nlist"] == 100
    with pytest.raises(hm.InvalidArgument, match="at least nlist hashes, got 3"):
        FaissIVF(64, nlist=4).add(hm.datasets.random_codes(3, 64))
    one = FaissIVF(64)
    one.add(hm.datasets.random_codes(1, 64))
    assert one.params["nlist"] == 1


def test_multihash_range_search_is_exact_up_to_exact_radius(rng: np.random.Generator) -> None:
    backend = FaissMultiHash(256)  # ThreatExchange's PDQ set-up: 16 tables of 16 bits, 1 flip
    assert backend.exact_radius == 31
    centers = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    db = hm.datasets.flip_bits(centers[rng.integers(0, 40, 3000)], rng.integers(0, 40, 3000))
    backend.add(db)
    q = planted(rng, db, 60, 31)
    ids = np.arange(len(db))
    assert_same_range(backend.range_search(q, 31), range_search(db, ids, q, 31))


def test_hnsw_range_search_follows_queries_with_many_matches(rng: np.random.Generator) -> None:
    """300 matches with range_k = 4: k doubles while the k-th neighbour is in range."""
    center = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    near = hm.datasets.flip_bits(np.repeat(center, 300, axis=0), rng.integers(0, 9, 300))
    db = np.concatenate([near, rng.integers(0, 256, (200, 32), dtype=np.uint8)])
    backend = FaissHNSW(256, M=16, ef_search=16, ef_construction=200, range_k=4)
    backend.add(db)
    q = np.concatenate([center, db[350:352]])
    ids = np.arange(len(db))
    result = backend.range_search(q, 8)
    assert_true_and_sorted(db, ids, q, result, 8)
    # HNSW's graph search misses some of a dense cluster (here ~15%), but far more than 4
    # are found; the lone random hashes find themselves.
    assert 250 <= result.lims[1] <= 300
    assert result.ids[result.lims[1] :].tolist() == [350, 351]
    everything = backend.range_search(center, 256)  # k grows to ntotal
    assert 450 <= everything.lims[1] <= 500


# -- serialization -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAISS)
def test_serialization_round_trip_gives_identical_results(
    name: str, rng: np.random.Generator
) -> None:
    db = random_db(rng, 1500, 32, duplicates=50)
    ids = rng.permutation(10**5)[:1500].astype(np.int64)
    backend = make_backend(name, 256)
    assert isinstance(backend, FaissBackend)
    backend.add(db, ids)
    q = planted(rng, db, 40, 31)
    data = backend.to_bytes()
    assert data.dtype == np.uint8 and data.ndim == 1
    spec_name, params = backend_spec(backend)
    copies = [
        backend_from_bytes(spec_name, 256, params, data),
        backend_from_bytes(spec_name, 256, params, data.tobytes()),
        pickle.loads(pickle.dumps(backend)),
    ]
    for copy in copies:
        assert type(copy) is type(backend) and len(copy) == 1500
        assert backend_spec(copy) == (spec_name, params)
        assert_same_range(copy.range_search(q, 31), backend.range_search(q, 31))
        a, b = copy.search(q, 8), backend.search(q, 8)
        np.testing.assert_array_equal(a.distances, b.distances)
        np.testing.assert_array_equal(a.ids, b.ids)
        more = hm.datasets.random_codes(5, 256, seed=11)
        assert copy.add(more).tolist() == list(range(ids.max() + 1, ids.max() + 6))


@pytest.mark.parametrize("name", FAISS)
def test_empty_backend_round_trip(name: str) -> None:
    backend = make_backend(name, 64)
    assert isinstance(backend, FaissBackend)
    copy = backend_from_bytes(name, 64, backend.params, backend.to_bytes())
    assert len(copy) == 0 and backend_spec(copy) == backend_spec(backend)
    db = hm.datasets.random_codes(100, 64)
    copy.add(db)
    assert copy.search(db[4], 1).ids.tolist() == [[4]]


def test_search_parameters_come_from_params_and_structure_is_checked() -> None:
    db = hm.datasets.random_codes(500, 64)
    ivf = FaissIVF(64, nlist=10, nprobe=2)
    ivf.add(db)
    data = ivf.to_bytes()
    wide = backend_from_bytes("faiss-ivf", 64, {"nlist": 10, "nprobe": 10}, data)
    assert_same_range(wide.range_search(db[:20], 8), range_search(db, np.arange(500), db[:20], 8))
    chosen = backend_from_bytes("faiss-ivf", 64, {}, data)  # nlist=None: read from the index
    assert chosen.params == {"nlist": 10, "nprobe": 16}
    with pytest.raises(hm.IndexFormatError, match="nlist=10, the params say 11"):
        backend_from_bytes("faiss-ivf", 64, {"nlist": 11, "nprobe": 2}, data)
    with pytest.raises(hm.IndexFormatError, match="expected an IndexBinaryHNSW"):
        backend_from_bytes("faiss-hnsw", 64, {}, data)
    with pytest.raises(hm.IndexFormatError, match="expected a 128-bit index, got 64"):
        backend_from_bytes("faiss-ivf", 128, {"nprobe": 2}, data)
    hnsw = FaissHNSW(64, M=8)
    hnsw.add(db)
    with pytest.raises(hm.IndexFormatError, match="M=8, the params say 32"):
        backend_from_bytes("faiss-hnsw", 64, {}, hnsw.to_bytes())
    mh = FaissMultiHash(64, b=4)
    mh.add(db)
    with pytest.raises(hm.IndexFormatError, match="nhash=16, the params say 8"):
        backend_from_bytes("faiss-multihash", 64, {}, mh.to_bytes())


def test_bad_bytes() -> None:
    with pytest.raises(hm.IndexFormatError, match="not a serialized faiss binary index"):
        backend_from_bytes("faiss-hnsw", 64, {}, b"definitely not faiss")
    flat = faiss.IndexBinaryFlat(64)
    with pytest.raises(hm.IndexFormatError, match="IndexBinaryIDMap"):
        backend_from_bytes("faiss-hnsw", 64, {}, faiss.serialize_index_binary(flat))
    with pytest.raises(hm.InvalidType, match="data"):
        backend_from_bytes("faiss-hnsw", 64, {}, "text")
    with pytest.raises(hm.InvalidArgument, match="exact backends are rebuilt"):
        backend_from_bytes("mih", 64, {}, b"")
    with pytest.raises(hm.InvalidType, match="params"):
        backend_from_bytes("faiss-hnsw", 64, None, b"")  # type: ignore[arg-type]


# -- parameters and errors ---------------------------------------------------------------------


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(hm.InvalidArgument) as error:
        make_backend("faiss-lsh", 256)
    for name in BACKENDS:
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("name", "params", "exc", "match"),
    [
        ("flat", {"substrings": 3}, hm.InvalidArgument, "flat takes no parameters"),
        ("flat", {"max_distance": 65}, hm.InvalidArgument, "max_distance"),  # a planning hint
        ("auto", {"substrings": 3}, hm.InvalidArgument, "auto takes no parameters"),
        ("auto", {"n": -1}, hm.InvalidArgument, "n: expected a non-negative"),
        ("faiss-hnsw", {"m": 3}, hm.InvalidArgument, "faiss-hnsw takes M, ef_search"),
        ("faiss-hnsw", {"M": 1}, hm.InvalidArgument, r"M: expected an integer in \[2, 512\]"),
        ("faiss-hnsw", {"ef_search": True}, hm.InvalidType, "ef_search"),
        ("faiss-hnsw", {"range_k": 0}, hm.InvalidArgument, "range_k"),
        ("faiss-ivf", {"nprobe": 0}, hm.InvalidArgument, "nprobe"),
        ("faiss-ivf", {"nlist": 2.0}, hm.InvalidType, "nlist"),
        ("faiss-multihash", {"b": 65}, hm.InvalidArgument, "b: expected"),
        ("faiss-multihash", {"b": 16, "nhash": 5}, hm.InvalidArgument, r"nhash: .*\[1, 4\]"),
        ("faiss-multihash", {"b": 4, "nflip": 5}, hm.InvalidArgument, r"nflip: .*\[0, 4\]"),
        ("mih", {"max_distance": 65}, hm.InvalidArgument, "max_distance"),
    ],
)
def test_bad_params(name: str, params: dict[str, Any], exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        make_backend(name, 64, **params)


@pytest.mark.parametrize("name", BACKENDS)
def test_bad_bits(name: str) -> None:
    with pytest.raises(hm.InvalidArgument, match="bits"):
        make_backend(name, 60)


def test_multihash_defaults_follow_the_width() -> None:
    assert FaissMultiHash(64).params == {"nhash": 8, "b": 8, "nflip": 1}
    assert FaissMultiHash(256).params == {"nhash": 16, "b": 16, "nflip": 1}
    assert FaissMultiHash(8).exact_radius == 1
    assert FaissHNSW(64, ef_search=20).params["range_k"] == 20


def test_is_exact_and_spec_for_foreign_objects() -> None:
    assert not is_exact(object())  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidType, match="backend"):
        backend_spec(object())  # type: ignore[arg-type]


# -- threads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAISS)
def test_threads_argument_is_used_and_the_setting_restored(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = hm.datasets.random_codes(3000, 64)
    backend = easy(name, 64)
    seen: list[int] = []
    original = faiss.omp_set_num_threads

    def record(n: int) -> None:
        seen.append(n)
        original(n)

    monkeypatch.setattr(faiss, "omp_set_num_threads", record)
    previous = faiss.omp_get_max_threads()
    try:
        original(1)
        backend.add(db, threads=2)
        assert faiss.omp_get_max_threads() == 1
        backend.search(db[:50], 3, threads=2)
        assert faiss.omp_get_max_threads() == 1
        backend.range_search(db[:50], 5, threads=3)
        assert faiss.omp_get_max_threads() == 1
        assert seen == [2, 1, 2, 1, 3, 1]
        with pytest.raises(hm.InvalidArgument, match="threads"):
            backend.search(db[:5], 3, threads=0)
        assert faiss.omp_get_max_threads() == 1
    finally:
        original(previous)


@pytest.mark.parametrize("name", FAISS)
def test_threads_give_identical_results(name: str, rng: np.random.Generator) -> None:
    db = random_db(rng, 4000, 32)
    backend = make_backend(name, 256)
    backend.add(db)
    q = planted(rng, db, 100, 31)
    one = backend.range_search(q, 31, threads=1)
    assert_same_range(backend.range_search(q, 31, threads=2), tuple(one))
    np.testing.assert_array_equal(backend.search(q, 5, threads=1), backend.search(q, 5, threads=2))


def test_concurrent_searches_during_adds_see_whole_batches(rng: np.random.Generator) -> None:
    backend = FaissIVF(64, nlist=4, nprobe=4)
    backend.add(hm.datasets.random_codes(400, 64, seed=1))
    batches = [hm.datasets.random_codes(400, 64, seed=s) for s in range(2, 12)]
    sizes: list[int] = []
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for _ in range(40):
                lims = backend.range_search(batches[0][:1], 64).lims  # every stored hash
                sizes.append(int(lims[-1]))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    for batch in batches:
        backend.add(batch)
    for t in threads:
        t.join()
    assert not errors
    assert all(size % 400 == 0 for size in sizes)
