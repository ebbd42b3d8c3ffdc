"""Integer and id arguments of the index and list APIs at their limits: huge Python ints, numpy
ints and empty id lists give an error of the hashmatch family naming the argument (never an
OverflowError from the C++ boundary), or work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hashmatch.backends import make_backend

import hashmatch as hm

HUGE = [2**64, 2**63, np.uint64(2**64 - 1), 10**30]


def index(name: str) -> Any:
    if name.startswith("faiss"):
        pytest.importorskip("faiss")
    backend = make_backend(name, 64)  # type: ignore[call-overload]
    backend.add(hm.datasets.random_codes(300, 64, seed=3))
    return backend


BACKENDS = ["flat", "mih", "faiss-hnsw", "faiss-multihash"]


@pytest.mark.parametrize("k", HUGE)
@pytest.mark.parametrize("name", BACKENDS)
def test_search_with_a_huge_k_names_k(name: str, k: object) -> None:
    backend = index(name)
    with pytest.raises(hm.InvalidArgument, match=r"^k: expected an integer <= 2\*\*63 - 1"):
        backend.search("00" * 8, k)


def test_search_with_the_largest_k_returns_everything() -> None:
    for name in ("flat", "mih"):
        backend = index(name)
        assert backend.search("00" * 8, 2**63 - 1).ids.shape == (1, 300)
        assert backend.search("00" * 8, np.int64(2**63 - 1)).ids.shape == (1, 300)


@pytest.mark.parametrize("k", HUGE)
def test_hash_list_search_with_a_huge_k_names_k(k: object) -> None:
    hl = hm.HashList("pdq")
    hl.add(hm.datasets.random_codes(5, 256))
    with pytest.raises(hm.InvalidArgument, match=r"^k: "):
        hl.search("00" * 32, k)


@pytest.mark.parametrize(
    "radius", [2**64, -(2**64), np.uint64(2**64 - 1), np.int8(-1), np.int64(65)]
)
@pytest.mark.parametrize("name", ["flat", "mih"])
def test_range_search_radius_out_of_range_names_max_distance(name: str, radius: object) -> None:
    with pytest.raises(
        hm.InvalidArgument, match=r"^max_distance: expected an integer in \[0, 64\]"
    ):
        index(name).range_search("00" * 8, radius)


@pytest.mark.parametrize("threads", [2**64, np.uint64(2**64 - 1), 0])
def test_threads_out_of_range_names_threads(threads: object) -> None:
    with pytest.raises(hm.InvalidArgument, match=r"^threads: "):
        index("mih").search("00" * 8, 1, threads=threads)


@pytest.mark.parametrize("n", [2**64, 2**63, np.uint64(2**64 - 1)])
def test_plan_index_with_a_huge_n_names_n(n: object) -> None:
    with pytest.raises(
        hm.InvalidArgument, match=r"^n: expected a non-negative integer below 2\*\*63"
    ):
        hm.plan_index(n, 256)  # type: ignore[arg-type]
    assert hm.plan_index(2**63 - 1, 256).kind == "MIHIndex"


@pytest.mark.parametrize("empty", [[], (), np.array([]), np.array([], dtype=np.int64)])
def test_removing_no_ids_removes_nothing(empty: object) -> None:
    mih = index("mih")
    assert mih.remove(empty) == 0 and mih.remove(iter([])) == 0
    assert len(mih) == 300
    hl = hm.HashList("pdq")
    hl.add(hm.datasets.random_codes(3, 256))
    assert hl.remove(empty) == 0 and len(hl) == 3


@pytest.mark.parametrize("name", ["flat", "mih"])
def test_adding_no_hashes_with_no_ids_adds_nothing(name: str) -> None:
    backend = index(name)
    for empty_ids in ([], np.array([]), ()):
        assert backend.add(np.zeros((0, 8), np.uint8), ids=empty_ids).shape == (0,)
    assert len(backend) == 300


def test_mih_remove_takes_what_hash_lists_take() -> None:
    mih = index("mih")
    assert mih.remove(np.int64(7)) == 1  # one id, numpy or not
    assert mih.remove(i for i in (8, 9)) == 2  # any iterable
    assert mih.remove(np.array([[10, 11]]).ravel()) == 2
    assert mih.remove([2**63 - 1]) == 0  # not stored: ignored
    cases: list[tuple[object, type[Exception], str]] = [
        ([2**64], hm.InvalidArgument, r"^ids\[0\]: expected an id in \[0, 2\*\*63 - 1\]"),
        ([np.uint64(2**64 - 1)], hm.InvalidArgument, r"^ids\[0\]: expected an id"),
        ([1.0], hm.InvalidType, r"^ids"),
        ("12", hm.InvalidType, r"^ids: expected a sequence of integers, got str"),
        (None, hm.InvalidType, r"^ids: expected a sequence of integers, got NoneType"),
        ([-1], hm.InvalidArgument, r"^ids\[0\]: expected a non-negative id"),
    ]
    for ids, error, message in cases:
        with pytest.raises(error, match=message):
            mih.remove(ids)
    assert len(mih) == 295


@pytest.mark.parametrize(
    "call",
    [
        lambda ix: ix.search("00" * 8, 2**64),
        lambda ix: ix.range_search("00" * 8, 2**64),
        lambda ix: ix.remove([2**64]),
        lambda ix: ix.add(["00" * 8], ids=[2**64]),
        lambda ix: ix.search("00" * 8, 1, threads=2**64),
    ],
)
def test_no_overflow_error_escapes(call: Callable[[Any], object]) -> None:
    with pytest.raises(hm.HashmatchError):
        call(index("mih"))


def test_no_overflow_error_escapes_the_joins_and_datasets() -> None:
    codes = hm.datasets.random_codes(2, 64)
    calls = [
        lambda: hm.plan_join(2**64, 256, 31),
        lambda: hm.datasets.flip_bits(codes, [2**64, 0]),
        lambda: hm.datasets.random_codes(-1),
        lambda: hm.datasets.random_codes(2**64),
        lambda: hm.datasets.random_codes(2, seed=-1),
    ]
    for call in calls:
        with pytest.raises(hm.InvalidArgument):
            call()


def test_hash_list_remove_takes_what_indexes_take() -> None:
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff"] * 4)
    assert hl.remove(iter([0, 1])) == 2
    assert hl.remove(np.array([])) == 0
    assert hl.remove(np.int64(2)) == 1
    assert hl.ids().tolist() == [3]
