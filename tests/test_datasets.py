"""Synthetic corpora: planted truth is exact, and no two generators share a random stream, so a
seed reused across them (the natural thing to do) never makes one data set copy another."""

from __future__ import annotations

import numpy as np
import pytest

import hashmatch as hm
from hashmatch import datasets


def within(queries: np.ndarray, database: np.ndarray, radius: int) -> np.ndarray:
    """Rows of `queries` with a database row within `radius` (an exact join)."""
    return np.unique(hm.find_matches(queries, database, radius).i)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_fresh_queries_are_far_from_a_database_made_with_the_same_seed(seed: int) -> None:
    db = datasets.random_codes(2_000, 256, seed=seed)
    truth = datasets.planted_queries(db, 500, max_distance=31, match_fraction=0.0, seed=seed)
    assert (truth.source == -1).all() and (truth.distance == -1).all()
    assert within(truth.queries, db, 31).size == 0


def test_fresh_queries_are_far_from_a_clustered_database_with_the_same_seed() -> None:
    db = datasets.clustered_codes(2_000, 256, seed=3)
    truth = datasets.planted_queries(db, 500, match_fraction=0.5, seed=3)
    fresh = truth.source == -1
    assert within(truth.queries[fresh], db, 31).size == 0


def test_fresh_queries_near_a_stored_hash_by_chance_are_drawn_again() -> None:
    """64-bit hashes at radius 14: about 7% of random queries land within 14 of one of 20,000
    stored hashes (~35 of 500), so the truth is only right if those are replaced."""
    db = datasets.random_codes(20_000, 64, seed=5)
    truth = datasets.planted_queries(db, 500, max_distance=14, match_fraction=0.0, seed=6)
    assert within(truth.queries, db, 14).size == 0
    assert len(np.unique(truth.queries, axis=0)) == 500  # replaced, not dropped


def test_fresh_queries_that_cannot_be_far_are_refused() -> None:
    db = datasets.random_codes(2_000, 64, seed=5)  # at radius 40 of 64 bits, all hashes are near
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        datasets.planted_queries(db, 100, max_distance=40, match_fraction=0.5, seed=1)
    planted = datasets.planted_queries(db, 100, max_distance=40, match_fraction=1.0)
    assert (planted.source >= 0).all()  # no fresh queries wanted: nothing to refuse


def test_planted_truth_is_exact_and_the_same_for_the_same_seed() -> None:
    db = datasets.random_codes(1_000, 256, seed=2)
    truth = datasets.planted_queries(db, 400, max_distance=31, match_fraction=0.25, seed=2)
    planted = truth.source >= 0
    assert planted.sum() == 100
    distances = hm.hamming(truth.queries[planted], db[truth.source[planted]])
    np.testing.assert_array_equal(distances, truth.distance[planted])
    assert truth.distance[planted].min() >= 0 and truth.distance[planted].max() <= 31
    again = datasets.planted_queries(db, 400, max_distance=31, match_fraction=0.25, seed=2)
    for a, b in zip(truth, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = datasets.planted_queries(db, 400, max_distance=31, match_fraction=0.25, seed=3)
    assert not np.array_equal(truth.queries, other.queries)


def test_planted_queries_on_an_empty_database_are_all_fresh() -> None:
    truth = datasets.planted_queries(np.empty((0, 32), np.uint8), 5, match_fraction=1.0)
    assert truth.queries.shape == (5, 32) and (truth.source == -1).all()


@pytest.mark.parametrize("bits", [64, 256])
def test_clustered_and_random_codes_with_the_same_seed_share_no_hash(bits: int) -> None:
    clustered = datasets.clustered_codes(2_000, bits, seed=0)
    assert within(clustered, datasets.random_codes(2_000, bits, seed=0), 0).size == 0


def test_clustered_codes_have_the_duplicates_asked_for() -> None:
    codes = datasets.clustered_codes(4_000, 256, duplicates=0.3, seed=4)
    clusters = hm.cluster(codes, 16)  # copies are within max_flips = 16 of their source
    assert len(codes) - clusters.n_clusters == int(4_000 * 0.3)  # each copy joins its source
    again = datasets.clustered_codes(4_000, 256, duplicates=0.3, seed=4)
    np.testing.assert_array_equal(codes, again)


def test_bad_arguments_name_the_argument() -> None:
    db = datasets.random_codes(10, 64)
    with pytest.raises(hm.InvalidArgument, match="match_fraction"):
        datasets.planted_queries(db, 5, match_fraction=1.5)
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        datasets.planted_queries(db, 5, max_distance=65)
    with pytest.raises(hm.InvalidArgument, match="duplicates"):
        datasets.clustered_codes(10, 64, duplicates=1.0)
    with pytest.raises(hm.InvalidArgument, match="max_flips"):
        datasets.clustered_codes(10, 64, max_flips=65)
    with pytest.raises(hm.InvalidArgument, match="distances"):
        datasets.flip_bits(db, 65)


def test_pictures_are_deterministic_and_distinct() -> None:
    a = hm.datasets.pictures(3, 64, 48, seed=5)
    assert a.shape == (3, 48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, hm.datasets.pictures(3, 64, 48, seed=5))
    assert not np.array_equal(a, hm.datasets.pictures(3, 64, 48, seed=6))
    assert a.std() > 30  # structure, not a flat field
    with pytest.raises(hm.InvalidArgument, match="width"):
        hm.datasets.pictures(1, 4, 48)


def test_pictures_hash_like_photos() -> None:
    pytest.importorskip("pdqhash")
    hashed = hm.hash_image(list(hm.datasets.pictures(20, seed=1)))
    assert hashed.qualities.min() >= 50
    d = hm.cdist(hashed.codes, hashed.codes)[np.triu_indices(20, 1)]
    assert d.min() > 64  # different pictures are far apart
