"""Grouped queries: dihedral variants (best wins) and video frames (fractions) per group."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import distances as hamming_matrix

import hashmatch as hm


def _brute_by_group(
    db: np.ndarray, queries: np.ndarray, groups: np.ndarray, radius: int
) -> dict[tuple[int, int], tuple[int, int, int]]:
    """(group, id) -> (best distance, first query at it, matched queries), by brute force."""
    d = hamming_matrix(queries, db)
    out: dict[tuple[int, int], tuple[int, int, int]] = {}
    for q, j in zip(*np.nonzero(d <= radius), strict=True):
        key = (int(groups[q]), int(j))
        best, first, count = out.get(key, (10**9, -1, 0))
        dist = int(d[q, j])
        if dist < best or (dist == best and q < first):
            best, first = dist, int(q)
        out[key] = (best, first, count + 1)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_by_group_matches_a_brute_force_aggregate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    db = hm.datasets.clustered_codes(300, 64, seed=seed)
    base = db[rng.integers(0, len(db), 40)]
    queries = hm.datasets.flip_bits(base, rng.integers(0, 14, len(base)), seed=seed)
    groups = np.sort(rng.integers(0, 12, len(queries)))
    hl = hm.HashList("raw", bits=64, max_distance=10)
    hl.add(db)
    result = hl.match(queries, groups=groups).by_group()
    expected = _brute_by_group(db, queries, groups, 10)
    got = {(g.group, g.id): (g.distance, g.best_query, g.matched) for g in result.to_records()}
    assert got == expected
    order = list(
        zip(result.groups.tolist(), result.distances.tolist(), result.ids.tolist(), strict=True)
    )
    assert order == sorted(order)
    group_ids, sizes = np.unique(groups, return_counts=True)
    assert result.group_ids.tolist() == group_ids.tolist()
    assert result.group_sizes.tolist() == sizes.tolist()
    assert np.all(
        result.fractions == result.matched / sizes[np.searchsorted(group_ids, result.groups)]
    )


def test_skipped_queries_do_not_count_in_the_fraction() -> None:
    db = hm.datasets.random_codes(1, 256, seed=4)
    queries = np.repeat(db, 4, axis=0)
    hl = hm.HashList("pdq")
    hl.add(db, keys=["video-a"])
    result = hl.match(
        queries, groups=[0, 0, 0, 0], qualities=[90, 90, 10, 90], min_quality=50
    ).by_group()
    assert (result.matched.tolist(), result.searched.tolist()) == ([3], [3])
    assert result.fractions.tolist() == [1.0] and result.group_sizes.tolist() == [4]


def test_matcher_groups_across_lists_and_without_groups() -> None:
    db = hm.datasets.random_codes(4, 256, seed=9)
    a, b = hm.HashList("pdq"), hm.HashList("pdq")
    a.add(db[:2])
    b.add(db[2:])
    matcher = hm.Matcher({"a": a, "b": b})
    result = matcher.match(db[[0, 2, 3]], groups=[5, 5, 1])
    grouped = result.by_group()
    assert [(g.group, g.list, g.id) for g in grouped] == [(1, "b", 1), (5, "a", 0), (5, "b", 0)]
    assert result.groups.tolist() == [5, 5, 1]
    assert set(result.to_pandas().columns) >= {"group"}
    plain = matcher.match(db[[1]]).by_group()
    assert [(g.group, g.list, g.id, g.distance) for g in plain] == [(0, "a", 1, 0)]
    assert len(hm.HashList("pdq").match(db[:1]).by_group()) == 0
    frame = grouped.to_pandas()
    assert frame["fraction"].tolist() == [1.0, 0.5, 0.5]


def test_bad_groups_name_the_argument() -> None:
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff"])
    with pytest.raises(hm.InvalidArgument, match=r"groups: expected shape \(2,\)"):
        hl.match(["00000000000000ff"] * 2, groups=[0])
    with pytest.raises(hm.InvalidArgument, match=r"groups\[1\]: expected a group number >= 0"):
        hl.match(["00000000000000ff"] * 2, groups=[0, -1])
    with pytest.raises(hm.InvalidType, match="groups: expected integers"):
        hl.match(["00000000000000ff"], groups=[0.5])
    with pytest.raises(hm.InvalidType, match="groups: expected one integer per query hash"):
        hl.match(["00000000000000ff"], groups="a")


def test_groups_are_any_non_negative_numbers_and_lists_keep_registration_order() -> None:
    db = hm.datasets.random_codes(2, 256, seed=5)
    zeta, alpha = hm.HashList("pdq"), hm.HashList("pdq")
    zeta.add(db[:1])
    alpha.add(hm.datasets.flip_bits(db[:1], [20]))
    matcher = hm.Matcher({"zeta": zeta, "alpha": alpha})
    result = matcher.match(db[:1], groups=[10**12]).by_group()  # e.g. an upload id
    assert [(g.group, g.list, g.distance) for g in result] == [
        (10**12, "zeta", 0),
        (10**12, "alpha", 20),
    ]
    assert result.group_ids.tolist() == [10**12] and result.group_sizes.tolist() == [1]
    tie = hm.HashList("pdq")
    tie.add(db[:1])
    same = hm.Matcher({"zeta": zeta, "alpha": tie}).match(db[:1]).by_group()
    assert [g.list for g in same] == ["zeta", "alpha"]  # equal distances: registration order
