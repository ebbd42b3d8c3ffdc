"""Dihedral queries through hash lists and matchers: each query is a stack of 8 variants (the
rotations and mirrors of one image); an entry matches on its best variant, once per query."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import distances, random_db

import hashmatch as hm


def stacks_near(rng: np.random.Generator, db: np.ndarray, n: int) -> np.ndarray:
    """n variant stacks: random variants, one of which (a random one) is a stored hash with
    up to 40 bits flipped; some stacks hold the near hash twice, at two distances."""
    stacks = random_db(rng, n * 8, db.shape[1]).reshape(n, 8, db.shape[1])
    picks = rng.integers(0, len(db), n)
    where = rng.integers(0, 8, n)
    near = hm.datasets.flip_bits(db[picks], rng.integers(0, 41, n).tolist())
    stacks[np.arange(n), where] = near
    twice = np.flatnonzero(rng.random(n) < 0.3)
    other = (where[twice] + 3) % 8
    stacks[twice, other] = hm.datasets.flip_bits(
        db[picks[twice]], rng.integers(0, 41, len(twice)).tolist()
    )
    return stacks


def oracle(stacks: np.ndarray, db: np.ndarray, radius: int) -> list[tuple[int, int, int, int]]:
    """(query, distance, id, variant) for every entry within radius of a query's best variant;
    the variant is the first reaching the best distance. Sorted by (query, distance, id)."""
    out = []
    for q, stack in enumerate(stacks):
        d = distances(stack, db)  # (8, n)
        best, arg = d.min(axis=0), d.argmin(axis=0)
        for j in np.flatnonzero(best <= radius):
            out.append((q, int(best[j]), int(j), int(arg[j])))
    return sorted(out)


def rows(result: hm.MatchResult) -> list[tuple[int, int, int, int]]:
    assert result.variants is not None
    return list(
        zip(
            result.queries.tolist(),
            result.distances.tolist(),
            result.ids.tolist(),
            result.variants.tolist(),
            strict=True,
        )
    )


@pytest.mark.parametrize("backend", ["flat", "mih"])
def test_list_match_is_the_best_variant_of_each_stack(
    rng: np.random.Generator, backend: str
) -> None:
    hl = hm.HashList("pdq", backend=backend, auto_compact=False)
    db = random_db(rng, 3000, 32)
    db[100] = db[7]  # a duplicate hash under two entries
    hl.add(db[:2000])
    hl.add(db[2000:])  # a second segment
    gone = rng.choice(3000, 200, replace=False)
    hl.remove(gone)  # removed rows awaiting compaction
    stacks = stacks_near(rng, db, 60)
    stacks[0] = db[7]  # all 8 variants equal
    result = hl.match(stacks, dihedral=True)
    live = np.setdiff1d(np.arange(3000), gone)
    expected = [r for r in oracle(stacks, db, 31) if r[2] in set(live.tolist())]
    assert rows(result) == expected
    assert result.nqueries == 60
    assert result.transforms is not None
    assert result.transforms.tolist() == [hm.TRANSFORMS[v] for v in result.variants.tolist()]
    hl.compact()
    assert rows(hl.match(stacks, dihedral=True)) == expected


def test_dihedral_match_equals_the_best_of_eight_separate_queries(
    rng: np.random.Generator,
) -> None:
    hl = hm.HashList("pdq")
    db = random_db(rng, 2000, 32)
    hl.add(db)
    stacks = stacks_near(rng, db, 40)
    one_pass = hl.match(stacks, dihedral=True)
    separate = hl.match(stacks.reshape(-1, 32), groups=np.repeat(np.arange(40), 8)).by_group()
    assert separate.variants is None
    assert one_pass.queries.tolist() == separate.groups.tolist()
    assert one_pass.ids.tolist() == separate.ids.tolist()
    assert one_pass.distances.tolist() == separate.distances.tolist()
    assert (one_pass.variants == separate.best_queries % 8).all()


def test_faiss_backend_reports_true_distances_and_best_variants(
    rng: np.random.Generator,
) -> None:
    pytest.importorskip("faiss")
    hl = hm.HashList("pdq", backend="faiss-multihash")
    db = random_db(rng, 2000, 32)
    hl.add(db)
    stacks = stacks_near(rng, db, 40)
    got = rows(hl.match(stacks, dihedral=True))
    expected = oracle(stacks, db, 31)
    assert set(got) <= set(expected)  # approximate: may miss, never invents or misreports
    assert len(got) >= 0.8 * len(expected)


def test_qualities_and_groups_are_per_stack(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    db = random_db(rng, 500, 32)
    hl.add(db, keys=[f"k{i}" for i in range(500)])
    stacks = np.repeat(db[:4, None], 8, axis=1)
    stacks[:, 0] = random_db(rng, 4, 32)  # the original is far; every other variant is exact
    result = hl.match(
        stacks, dihedral=True, qualities=[90, 20, 80, 95], min_quality=50, groups=[0, 0, 1, 1]
    )
    assert result.skipped.tolist() == [1]
    assert result.queries.tolist() == [0, 2, 3]
    assert result.transforms is not None
    assert result.transforms.tolist() == ["rotate_90"] * 3
    grouped = result.by_group()
    assert grouped.transforms is not None
    assert [(g.group, g.key, g.matched, g.searched, g.transform) for g in grouped] == [
        (0, "k0", 1, 1, "rotate_90"),
        (1, "k2", 1, 2, "rotate_90"),
        (1, "k3", 1, 2, "rotate_90"),
    ]


def test_matcher_dihedral_over_several_lists(rng: np.random.Generator) -> None:
    a, b = hm.HashList("pdq", name="a"), hm.HashList("pdq", name="b")
    da, dbb = random_db(rng, 300, 32), random_db(rng, 300, 32)
    a.add(da)
    b.add(dbb)
    stacks = random_db(rng, 3 * 8, 32).reshape(3, 8, 32)
    stacks[0, 5] = da[10]
    stacks[1, 2] = dbb[20]
    stacks[2, 7] = da[30]
    stacks[2, 6] = dbb[40]
    matcher = hm.Matcher(
        {"a": a, "b": b},
    )
    result = matcher.match(stacks, dihedral=True)
    assert [(m.query, m.list, m.id, m.distance, m.transform) for m in result] == [
        (0, "a", 10, 0, "flip_left_right"),
        (1, "b", 20, 0, "rotate_180"),
        (2, "a", 30, 0, "transverse"),
        (2, "b", 40, 0, "transpose"),
    ]
    frame = result.to_pandas()
    assert frame["transform"].tolist() == [
        "flip_left_right",
        "rotate_180",
        "transverse",
        "transpose",
    ]
    assert "transform" not in matcher.match(stacks[:, 0]).to_pandas().columns


def test_plain_results_have_no_transform(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    db = random_db(rng, 10, 32)
    hl.add(db)
    result = hl.match(db[:2])
    assert result.variants is None and result.transforms is None
    assert [m.transform for m in result] == [None, None]


def test_empty_and_single_stacks(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    db = random_db(rng, 10, 32)
    hl.add(db)
    empty = hl.match(np.zeros((0, 8, 32), np.uint8), dihedral=True)
    assert len(empty) == 0 and empty.nqueries == 0
    assert empty.variants is not None and empty.variants.dtype == np.uint8
    one = hl.match(np.repeat(db[3:4], 8, axis=0), dihedral=True)  # one (8, nbytes) stack
    assert one.nqueries == 1 and one.ids.tolist() == [3] and one.variants.tolist() == [0]
    as_hex = hl.match([hm.to_hex(np.repeat(db[4:5], 8, axis=0))], dihedral=True)
    assert as_hex.ids.tolist() == [4]
    assert len(hm.HashList("pdq").match(np.repeat(db[3:4], 8, axis=0), dihedral=True)) == 0


def test_bad_dihedral_queries_are_named(rng: np.random.Generator) -> None:
    hl = hm.HashList("pdq")
    hl.add(random_db(rng, 10, 32))
    with pytest.raises(hm.InvalidType, match="dihedral"):
        hl.match(random_db(rng, 8, 32), dihedral="yes")  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match=r"hashes: expected 8 variants"):
        hl.match(random_db(rng, 7, 32)[None], dihedral=True)
    with pytest.raises(hm.InvalidType, match=r"hashes\[0\]: expected a stack of 8"):
        hl.match(["00" * 32], dihedral=True)
    with pytest.raises(hm.HashTypeMismatch, match="hashes"):
        hl.match(random_db(rng, 8, 8)[None], dihedral=True)
    with pytest.raises(hm.InvalidArgument, match="groups"):
        hl.match(random_db(rng, 16, 32).reshape(2, 8, 32), dihedral=True, groups=[0] * 16)
    with pytest.raises(hm.InvalidArgument, match="qualities"):
        hl.match(random_db(rng, 16, 32).reshape(2, 8, 32), dihedral=True, qualities=[50] * 16)


@pytest.mark.parametrize("backend", ["flat", "mih"])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_list_search_ranks_entries_by_their_best_variant(
    rng: np.random.Generator, backend: str, k: int
) -> None:
    hl = hm.HashList("pdq", backend=backend, auto_compact=False)
    db = random_db(rng, 1500, 32)
    db[50] = db[9]
    hl.add(db[:1000])
    hl.add(db[1000:])
    gone = rng.choice(1500, 300, replace=False)
    hl.remove(gone)
    stacks = stacks_near(rng, db, 25)
    result = hl.search(stacks, k, dihedral=True)
    live = np.setdiff1d(np.arange(1500), gone)
    for q, stack in enumerate(stacks):
        d = distances(stack, db[live])
        best, arg = d.min(axis=0), d.argmin(axis=0)
        order = np.lexsort((live, best))[:k]
        assert result.ids[q].tolist() == live[order].tolist()
        assert result.distances[q].tolist() == best[order].tolist()
        assert result.variants[q].tolist() == arg[order].tolist()


def test_list_search_with_faiss_reports_true_best_variants(rng: np.random.Generator) -> None:
    pytest.importorskip("faiss")
    hl = hm.HashList("pdq", backend="faiss-hnsw")
    db = random_db(rng, 1000, 32)
    hl.add(db)
    stacks = stacks_near(rng, db, 10)
    result = hl.search(stacks, 3, dihedral=True)
    for q in range(10):
        found = result.ids[q] >= 0
        d = distances(stacks[q], db[result.ids[q][found]])
        assert result.distances[q][found].tolist() == d.min(axis=0).tolist()
        assert result.variants[q][found].tolist() == d.argmin(axis=0).tolist()
    plain = hl.search(stacks[:, 0], 3)
    assert len(plain) == 2  # plain queries keep the two-array result
