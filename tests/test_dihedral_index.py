"""One-pass dihedral searches (issue 12): FlatIndex and MIHIndex against the numpy oracle on every
kernel, the default 8-separate-queries merge, and faiss."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hashmatch._backend import BackendBase, best_variants
from hypothesis import given
from hypothesis import strategies as st
from oracle import random_db, variant_knn, variant_range_search

import hashmatch as hm
from hashmatch import _core

WIDTHS = [8, 24, 64, 128, 256, 264, 520]
NV = len(hm.TRANSFORMS)


def radii(bits: int) -> list[int]:
    return sorted({r for r in (0, 1, 31, bits // 4, bits) if r <= bits})


def stacks_near(rng: np.random.Generator, db: np.ndarray, nq: int) -> np.ndarray:
    """Variant stacks of random hashes with one variant (at a random place, often the last) a
    stored hash with a few bits flipped; one stack is all random, one holds one hash 8 times."""
    nbytes = db.shape[1]
    stacks = rng.integers(0, 256, (nq, NV, nbytes), dtype=np.uint8)
    flips = rng.integers(0, min(12, 8 * nbytes) + 1, nq)
    near = hm.datasets.flip_bits(db[rng.integers(0, len(db), nq)], flips, seed=5)
    where = rng.integers(0, NV, nq)
    where[::2] = NV - 1  # the best variant last
    stacks[np.arange(nq), where] = near
    stacks[0, 2] = near[0]  # a second variant at the same distance: the first one is reported
    stacks[-1] = near[-1]  # all 8 variants identical
    return stacks


def assert_range(result: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> None:
    assert len(result) == 4
    for got, want in zip(result, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert result[3].dtype == np.uint8


def assert_knn(result: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> None:
    assert len(result) == 3
    for got, want in zip(result, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert result[2].dtype == np.uint8


def substring_counts(bits: int) -> list[int]:
    lo = -(-bits // 32)
    return sorted({lo, min(bits, lo + 2), min(bits, max(lo, bits // 8))})


def mih_variants(bits: int, db: np.ndarray, ids: np.ndarray) -> Iterator[tuple[str, hm.MIHIndex]]:
    """MIH indexes over (db, ids): several substring counts, all built; one with an unbuilt
    linear tail; one with removed ids (still awaiting compaction)."""
    for m in substring_counts(bits):
        index = hm.MIHIndex(bits, substrings=m)
        index.add(db, ids)
        index.compact()
        yield f"m={m}", index
    tail = hm.MIHIndex(bits, substrings=substring_counts(bits)[0])
    tail.add(db[:-200], ids[:-200])
    tail.compact()
    tail.add(db[-200:], ids[-200:])  # too few to trigger a rebuild: searched linearly
    yield "tail", tail


@pytest.mark.parametrize("bits", WIDTHS)
def test_every_kernel_matches_oracle(kernel: str, bits: int, rng: np.random.Generator) -> None:
    nbytes = bits // 8
    db = random_db(rng, 700, nbytes, duplicates=40)
    ids = rng.permutation(10_000)[: len(db)].astype(np.int64)
    stacks = stacks_near(rng, db, 7)
    flat = hm.FlatIndex(bits)
    flat.add(db, ids)
    indexes: list[tuple[str, BackendBase]] = [("flat", flat), *mih_variants(bits, db, ids)]
    for name, index in indexes:
        assert len(index) == len(db), name
        for r in radii(bits):
            assert_range(
                index.range_search(stacks, r, dihedral=True, threads=2),
                variant_range_search(db, ids, stacks, r),
            )
        for k in (1, 10, len(db) + 5):
            assert_knn(
                index.search(stacks, k, dihedral=True, threads=2), variant_knn(db, ids, stacks, k)
            )


def flipped(rng: np.random.Generator, code: np.ndarray, nflips: int) -> np.ndarray:
    """code with exactly nflips distinct bits flipped."""
    bits = np.unpackbits(code)
    where = rng.choice(len(bits), min(nflips, len(bits)), replace=False)
    bits[where] ^= 1
    return np.packbits(bits)


@pytest.mark.parametrize("bits", [64, 192, 256, 320, 512, 4096])
@pytest.mark.parametrize("nv", [1, 3, 5, 8])
def test_kernel_shapes_and_byte_counters(
    kernel: str, bits: int, nv: int, rng: np.random.Generator
) -> None:
    """Stacks of 1 to 8 variants (through the core: the public API takes 8), widths of 1 to
    64 words, an index whose last tile (and last block of 4 tiles) is partial, and distances
    placed right at bounds around 255: the AVX2 scan counts in saturating bytes, 255 meaning
    "255 or more", so a code at 255 or 256 must not pass a bound of 254, and wide codes (4096
    bits) must never wrap a byte counter."""
    nbytes = bits // 8
    db = rng.integers(0, 256, (299, nbytes), dtype=np.uint8)  # 37 tiles + 3 codes
    db[::7] = ~db[::7]  # dense and sparse codes: distances up to the full width
    db[1::11] = 0
    stacks = rng.integers(0, 256, (6, nv, nbytes), dtype=np.uint8)
    targets = [0, 31, 128, 254, 255, 256, bits - 1, bits]
    for q in range(len(stacks)):
        for j, t in enumerate(targets):  # stored codes at exact distances from some variant
            db[(40 * q + 9 * j + 5) % len(db)] = flipped(rng, stacks[q, (q + j) % nv], t)
    stacks[-1] = stacks[-1, :1]  # all variants identical: variant 0 reported
    ids = np.arange(len(db), dtype=np.int64)
    flat = hm.FlatIndex(bits)
    flat.add(db, ids)
    mih = hm.MIHIndex(bits)
    mih.add(db, ids)  # unbuilt: searched by the multi-needle scan too
    for index in (flat, mih):  # the core's entry points: the public API takes 8 variants
        for r in sorted({r for r in (0, 31, 127, 128, 253, 254, 255, 256, 257, bits) if r <= bits}):
            assert_range(
                tuple(index.range_search_variants_validated(stacks, r, 2)),
                variant_range_search(db, ids, stacks, r),
            )
        for k in (1, 40):
            assert_knn(
                tuple(index._search_variants_validated(stacks, k, 2)),
                variant_knn(db, ids, stacks, k),
            )


@pytest.mark.parametrize("bits", [64, 256])
def test_removed_ids_are_never_reported(kernel: str, bits: int, rng: np.random.Generator) -> None:
    db = random_db(rng, 3000, bits // 8, duplicates=50)
    ids = np.arange(len(db), dtype=np.int64)
    stacks = stacks_near(rng, db, 9)
    index = hm.MIHIndex(bits)
    index.add(db, ids)
    gone = rng.choice(len(db), 300, replace=False)  # below the compaction threshold
    index.remove(gone)
    keep = np.setdiff1d(ids, gone)
    for r in radii(bits):
        got = index.range_search(stacks, r, dihedral=True)
        assert not np.isin(got.ids, gone).any()
        assert_range(got, variant_range_search(db[keep], keep, stacks, r))
    for k in (1, 10, 5000):
        assert_knn(index.search(stacks, k, dihedral=True), variant_knn(db[keep], keep, stacks, k))


@pytest.mark.parametrize("kind", [hm.FlatIndex, hm.MIHIndex])
def test_edge_cases(kind: type[hm.FlatIndex] | type[hm.MIHIndex], rng: np.random.Generator) -> None:
    index = kind(64)
    stacks = rng.integers(0, 256, (3, NV, 8), dtype=np.uint8)
    # Empty index: no hits, (nq, 0) kNN.
    lims, d, i, v = index.range_search(stacks, 64, dihedral=True)
    assert lims.tolist() == [0, 0, 0, 0] and len(d) == len(i) == len(v) == 0
    d, i, v = index.search(stacks, 5, dihedral=True)
    assert d.shape == i.shape == v.shape == (3, 0)
    # Duplicate stored hashes: each reported once, ties by id.
    db = np.repeat(rng.integers(0, 256, (4, 8), dtype=np.uint8), 3, axis=0)
    index.add(db)
    # nq = 0.
    empty = np.zeros((0, NV, 8), dtype=np.uint8)
    assert index.range_search(empty, 10, dihedral=True).lims.tolist() == [0]
    assert index.search(empty, 3, dihedral=True).ids.shape == (0, 3)
    # k > n, radius max: everything, once each.
    d, i, v = index.search(stacks, 100, dihedral=True)
    assert d.shape == (3, 12) and all(sorted(row) == list(range(12)) for row in i.tolist())
    assert_knn((d, i, v), variant_knn(db, np.arange(12), stacks, 100))
    result = index.range_search(stacks, 64, dihedral=True)
    assert np.diff(result.lims).tolist() == [12, 12, 12]
    # Distance 0 on the last variant only; all 8 variants identical reports variant 0.
    stacks[0] = db[0] ^ 0xFF
    stacks[0, NV - 1] = db[0]
    stacks[1] = db[3]
    lims, d, i, v = index.range_search(stacks[:2], 0, dihedral=True)
    assert i.tolist() == [0, 1, 2, 3, 4, 5] and d.tolist() == [0] * 6
    assert v.tolist() == [NV - 1] * 3 + [0] * 3


@pytest.mark.parametrize("kind", [hm.FlatIndex, hm.MIHIndex])
def test_identical_to_separate_queries_merged(
    kind: type[hm.FlatIndex] | type[hm.MIHIndex], rng: np.random.Generator
) -> None:
    """The one-pass searches equal BackendBase's default: 8 separate searches, merged."""
    db = random_db(rng, 20_000, 32, duplicates=200)
    index = kind(256)
    index.add(db)
    stacks = stacks_near(rng, db, 40)
    for r in (0, 8, 31, 64, 256):
        one = index.range_search(stacks, r, dihedral=True)
        merged = BackendBase.range_search_variants_validated(index, stacks, r, 2)
        assert_range(one, tuple(merged))
    for k in (1, 10, 100):
        one_knn = index.search(stacks, k, dihedral=True)
        merged_knn = BackendBase._search_variants_validated(index, stacks, k, 2)
        assert_knn(one_knn, tuple(merged_knn))


def test_identical_to_faiss(rng: np.random.Generator) -> None:
    """faiss's binary range search (strict <, so radius + 1) over the 8 variants, merged per
    query by best variant, gives exactly our hits, distances and variants."""
    faiss = pytest.importorskip("faiss")
    db = random_db(rng, 30_000, 32, duplicates=100)
    stacks = stacks_near(rng, db, 25)
    theirs = faiss.IndexBinaryFlat(256)
    theirs.add(db)
    for r in (10, 31, 70):
        lims, distances, ids = theirs.range_search(stacks.reshape(-1, 32), r + 1)
        rows = np.repeat(np.arange(len(stacks) * NV), np.diff(lims.astype(np.int64)))
        hit_variants = (rows % NV).astype(np.uint8)
        expected = best_variants(
            rows // NV, distances.astype(np.int32), ids.astype(np.int64), hit_variants, len(stacks)
        )
        for kind in (hm.FlatIndex, hm.MIHIndex):
            index = kind(256)
            index.add(db)
            assert_range(index.range_search(stacks, r, dihedral=True), tuple(expected))


def test_variant_count_checked_in_the_core() -> None:
    core = _core.IndexCore("flat", 64)
    for nv in (0, 9):
        with pytest.raises(hm.InvalidArgument, match="variants per query"):
            core.range_search_variants(np.zeros((1, nv, 8), dtype=np.uint8), 3, 1)
        with pytest.raises(hm.InvalidArgument, match="variants per query"):
            core.search_variants(np.zeros((1, nv, 8), dtype=np.uint8), 3, 1)


def test_cost_model_counts_every_variant() -> None:
    one = _core.mih_cost(256, 16, 10_000_000, 31)
    eight = _core.mih_cost(256, 16, 10_000_000, 31, 8)
    assert eight[0] == pytest.approx(8 * one[0]) and eight[1] == pytest.approx(8 * one[1])
    assert one[3] < eight[3] < 8 * one[3]  # one multi-needle scan costs less than 8 scans
    assert hm.plan_index(10_000_000, 256, max_distance=31, dihedral=True).kind == "MIHIndex"
    plan = hm.plan_index(50_000, 256, max_distance=31, dihedral=True)
    assert plan.mih_ms > hm.plan_index(50_000, 256, max_distance=31).mih_ms


@given(
    nbytes=st.sampled_from([1, 3, 8, 9, 32, 33]),
    n=st.integers(0, 400),
    nq=st.integers(0, 5),
    radius_share=st.floats(0, 1),
    k=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
    mih=st.booleans(),
)
def test_property_matches_oracle(
    nbytes: int, n: int, nq: int, radius_share: float, k: int, seed: int, mih: bool
) -> None:
    rng = np.random.default_rng(seed)
    bits = 8 * nbytes
    db = random_db(rng, n, nbytes, duplicates=n // 10)
    ids = rng.permutation(4 * n + 1)[:n].astype(np.int64)
    stacks = (
        stacks_near(rng, db, nq) if n and nq else rng.integers(0, 256, (nq, NV, nbytes), np.uint8)
    )
    index: hm.FlatIndex | hm.MIHIndex = hm.MIHIndex(bits) if mih else hm.FlatIndex(bits)
    index.add(db, ids)
    if mih:
        index.compact()
    r = round(radius_share * bits)
    assert_range(
        index.range_search(stacks, r, dihedral=True), variant_range_search(db, ids, stacks, r)
    )
    assert_knn(index.search(stacks, k, dihedral=True), variant_knn(db, ids, stacks, k))
