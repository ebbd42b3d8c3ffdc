"""Data for the sharded-matching tests: small labelled lists and queries with ties."""

from __future__ import annotations

from typing import Any

import numpy as np

import hashmatch as hm

COLUMNS = ("queries", "lists", "ids", "keys", "distances", "labels", "sources", "skipped")


def make_lists(seed: int, generation: int = 0) -> dict[str, hm.HashList]:
    """Two PDQ lists sharing some hashes (ties across lists and within a list) and a pHash
    list; ``generation`` changes entries and labels."""
    rng = np.random.default_rng(seed)
    base = hm.datasets.random_codes(240, 256, seed=seed)
    base[10:20] = base[0:10]  # same hash, different ids: ties broken by id
    terror = hm.HashList("pdq", name="terror", max_distance=40)
    n = 200 if generation == 0 else 180
    ids = rng.permutation(10_000)[:n]
    terror.add(
        base[:n],
        ids=ids,
        keys=[f"t{generation}-{i}" for i in ids],
        labels=[("terrorism", f"g{generation}") if i % 3 else ("violence",) for i in ids],
        source=[None if i % 4 == 0 else f"partner-{i % 2}" for i in ids],
    )
    csam = hm.HashList("pdq", name="csam")
    csam.add(base[100:240], labels="csam", source="ncmec")  # overlaps terror's 100..199
    phash = hm.HashList("phash", name="phash")
    phash.add(hm.datasets.random_codes(50, 64, seed=seed + 1), keys=[f"p{i}" for i in range(50)])
    return {"terror": terror, "csam": csam, "phash": phash}


def make_queries(lists: dict[str, hm.HashList], n: int, seed: int) -> dict[str, Any]:
    """PDQ queries: copies of listed hashes with a few bits flipped, and random ones;
    qualities (some below 50) and groups."""
    rng = np.random.default_rng(seed)
    codes = np.stack(
        [np.frombuffer(bytes.fromhex(e.hash), np.uint8) for e in lists["csam"].entries()]
    )
    picks = codes[rng.integers(0, len(codes), n)]
    flips = rng.integers(0, 30, n)
    queries = hm.datasets.flip_bits(picks, flips, seed=seed)
    queries[::7] = hm.datasets.random_codes(len(queries[::7]), 256, seed=seed + 2)
    return {
        "hashes": queries,
        "qualities": rng.integers(30, 100, n),
        "min_quality": 50,
        "groups": np.arange(n) // 3,
    }


def assert_same(got: hm.MatchResult, want: hm.MatchResult) -> None:
    """Every column, in order, with the same dtypes; and the batch's fields."""
    assert len(got) == len(want)
    for column in COLUMNS:
        a, b = getattr(got, column), getattr(want, column)
        assert a.dtype == b.dtype, column
        assert a.tolist() == b.tolist(), column
    assert got.nqueries == want.nqueries
    assert got.list_names == want.list_names
    for column in ("query_groups", "variants"):
        a, b = getattr(got, column), getattr(want, column)
        assert (a is None) == (b is None), column
        if a is not None:
            assert a.tolist() == b.tolist(), column
