"""Synthetic hash corpora with planted near-duplicates of known distance.

Real PDQ hashes have balanced, nearly independent bits, so uniform random codes are a fair
stand-in for a database; planted queries are copies of stored hashes with an exact number of
bits flipped (a re-encoded or lightly edited upload), so the true matches are known.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hashmatch._validation import check_bits
from hashmatch.errors import InvalidArgument

__all__ = ["PlantedQueries", "flip_bits", "planted_queries", "random_codes"]


def random_codes(n: int, bits: int = 256, *, seed: int = 0) -> npt.NDArray[np.uint8]:
    """``n`` uniform random packed hashes of ``bits`` bits.

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.datasets.random_codes(3, 64).shape
    (3, 8)
    """
    bits = check_bits(bits)
    return np.random.default_rng(seed).integers(0, 256, (n, bits // 8), dtype=np.uint8)


def flip_bits(
    codes: npt.NDArray[np.uint8], distances: npt.ArrayLike, *, seed: int = 0
) -> npt.NDArray[np.uint8]:
    """Copies of ``codes`` with exactly ``distances[i]`` distinct bits of row ``i`` flipped.

    Examples
    --------
    >>> import hashmatch as hm
    >>> c = hm.datasets.random_codes(4, 256)
    >>> hm.hamming(c, hm.datasets.flip_bits(c, [0, 1, 31, 256])).tolist()
    [0, 1, 31, 256]
    """
    codes = np.asarray(codes, dtype=np.uint8)
    d = np.broadcast_to(np.asarray(distances, dtype=np.int64), (len(codes),))
    bits = codes.shape[1] * 8
    if d.size and (d.min() < 0 or d.max() > bits):
        raise InvalidArgument(
            f"distances: expected values in [0, {bits}], got {d.min()}..{d.max()}"
        )
    rng = np.random.default_rng(seed)
    # A random permutation of bit positions per row; flip the first d[i] of them.
    order = np.argsort(rng.random((len(codes), bits)), axis=1)
    flip = np.zeros((len(codes), bits), dtype=bool)
    np.put_along_axis(flip, order, np.arange(bits)[None, :] < d[:, None], axis=1)
    return codes ^ np.packbits(flip, axis=1)


class PlantedQueries(NamedTuple):
    """Queries with known truth: ``queries[i]`` is ``database[source[i]]`` with exactly
    ``distance[i]`` bits flipped, or a fresh random hash where ``source[i] == -1``."""

    queries: npt.NDArray[np.uint8]
    source: npt.NDArray[np.int64]
    distance: npt.NDArray[np.int64]


def planted_queries(
    database: npt.NDArray[np.uint8],
    n_queries: int,
    *,
    max_distance: int = 31,
    match_fraction: float = 0.5,
    seed: int = 1,
) -> PlantedQueries:
    """Queries of which ``match_fraction`` are near-duplicates of stored hashes.

    Each planted query copies a random stored hash and flips a uniform random number of bits
    in ``[0, max_distance]``; the others are fresh random hashes (almost surely far from all).

    Examples
    --------
    >>> import hashmatch as hm
    >>> db = hm.datasets.random_codes(1000, 256)
    >>> q = hm.datasets.planted_queries(db, 10, max_distance=31, match_fraction=1.0)
    >>> bool((hm.hamming(q.queries, db[q.source]) == q.distance).all())
    True
    """
    if not 0.0 <= match_fraction <= 1.0:
        raise InvalidArgument(f"match_fraction: expected a value in [0, 1], got {match_fraction}")
    rng = np.random.default_rng(seed)
    n_planted = round(n_queries * match_fraction) if len(database) else 0
    source = np.full(n_queries, -1, dtype=np.int64)
    distance = np.full(n_queries, -1, dtype=np.int64)
    queries = rng.integers(0, 256, (n_queries, database.shape[1]), dtype=np.uint8)
    planted = rng.permutation(n_queries)[:n_planted]
    source[planted] = rng.integers(0, len(database), n_planted) if n_planted else []
    distance[planted] = rng.integers(0, max_distance + 1, n_planted)
    queries[planted] = flip_bits(database[source[planted]], distance[planted], seed=seed + 1)
    return PlantedQueries(queries, source, distance)
