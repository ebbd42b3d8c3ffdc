"""Synthetic hash corpora with planted near-duplicates of known distance.

Real PDQ hashes have balanced, nearly independent bits, so uniform random codes are a fair
stand-in for a database; planted queries are copies of stored hashes with an exact number of
bits flipped (a re-encoded or lightly edited upload), so the true matches are known.

Each generator draws from its own random stream of the seed, so reusing one seed across them
(``random_codes(n, seed=0)`` as the database, ``planted_queries(db, seed=0)`` as the queries)
never makes one data set a copy of another.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hashmatch._validation import check_bits, check_count, check_max_distance
from hashmatch.dedup import find_matches
from hashmatch.errors import InvalidArgument

__all__ = ["PlantedQueries", "clustered_codes", "flip_bits", "planted_queries", "random_codes"]

# Streams of one seed: random_codes and flip_bits use the seed's own, the others a child each.
_QUERIES = 1
_CLUSTERED = 2
_FRESH_ROUNDS = 32  # draws of fresh queries before deciding the radius leaves no room for them


def _stream(seed: int, purpose: int) -> np.random.Generator:
    """A generator of its own for `purpose`: never the stream of ``default_rng(seed)``, nor of
    another purpose, whatever the seeds."""
    return np.random.default_rng(np.random.SeedSequence(_seed(seed), spawn_key=(purpose,)))


def _seed(seed: object) -> int:
    """A seed for numpy's generators: a non-negative integer."""
    return check_count(seed, "seed")


def random_codes(n: int, bits: int = 256, *, seed: int = 0) -> npt.NDArray[np.uint8]:
    """``n`` uniform random packed hashes of ``bits`` bits.

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.datasets.random_codes(3, 64).shape
    (3, 8)
    """
    bits = check_bits(bits)
    n = check_count(n, "n")
    return np.random.default_rng(_seed(seed)).integers(0, 256, (n, bits // 8), dtype=np.uint8)


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
    bits = codes.shape[1] * 8
    try:
        d = np.broadcast_to(np.asarray(distances, dtype=np.int64), (len(codes),))
    except (OverflowError, ValueError, TypeError):
        raise InvalidArgument(
            f"distances: expected integers in [0, {bits}], one or one per row"
        ) from None
    if d.size and (d.min() < 0 or d.max() > bits):
        raise InvalidArgument(
            f"distances: expected values in [0, {bits}], got {d.min()}..{d.max()}"
        )
    rng = np.random.default_rng(_seed(seed))
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
    in ``[0, max_distance]``; the others are fresh random hashes, each farther than
    ``max_distance`` from every stored hash (checked exactly; one that lands within is drawn
    again), so a range search at ``max_distance`` finds nothing for them.

    Raises
    ------
    InvalidArgument
        If fresh queries are wanted but random hashes keep landing within ``max_distance``
        of the database (a radius near half the width, e.g. 40 of 64 bits).

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
    radius = check_max_distance(max_distance, database.shape[1] * 8)
    rng = _stream(seed, _QUERIES)
    n_planted = round(n_queries * match_fraction) if len(database) else 0
    source = np.full(n_queries, -1, dtype=np.int64)
    distance = np.full(n_queries, -1, dtype=np.int64)
    queries = rng.integers(0, 256, (n_queries, database.shape[1]), dtype=np.uint8)
    planted = rng.permutation(n_queries)[:n_planted]
    source[planted] = rng.integers(0, len(database), n_planted) if n_planted else []
    distance[planted] = rng.integers(0, radius + 1, n_planted)
    queries[planted] = flip_bits(database[source[planted]], distance[planted], seed=seed + 1)
    _keep_fresh_far(queries, source < 0, database, radius, rng)
    return PlantedQueries(queries, source, distance)


def _keep_fresh_far(
    queries: npt.NDArray[np.uint8],
    fresh: npt.NDArray[np.bool_],
    database: npt.NDArray[np.uint8],
    radius: int,
    rng: np.random.Generator,
) -> None:
    """Draws the `fresh` rows of `queries` again, in place, until none is within `radius` of
    a database row (an exact join decides)."""
    rows = np.flatnonzero(fresh)
    for _ in range(_FRESH_ROUNDS):
        if len(rows) == 0 or len(database) == 0:
            return
        rows = rows[np.unique(find_matches(queries[rows], database, radius).i)]
        queries[rows] = rng.integers(0, 256, (len(rows), queries.shape[1]), dtype=np.uint8)
    if len(rows):
        raise InvalidArgument(
            f"max_distance: random {queries.shape[1] * 8}-bit hashes keep landing within "
            f"{radius} of the database, so fresh (non-matching) queries cannot be made; "
            "lower max_distance or use match_fraction=1.0"
        )


def clustered_codes(
    n: int,
    bits: int = 256,
    *,
    duplicates: float = 0.3,
    max_flips: int | None = None,
    skew: float = 0.0,
    seed: int = 0,
) -> npt.NDArray[np.uint8]:
    """A media collection with near-duplicate clusters: ``n`` hashes of which a fraction are
    re-uploads (copies of other hashes with up to ``max_flips`` random bits flipped).

    Parameters
    ----------
    n : int
        Hashes.
    bits : int, optional
        Width (256: PDQ; 64: pHash).
    duplicates : float, optional
        Fraction of the hashes that are copies, in ``[0, 1)``.
    max_flips : int, optional
        Bits flipped per copy are uniform in ``[0, max_flips]`` (a flip may undo another, so
        a copy is at most that far from its source). Default ``bits // 16`` (16 for PDQ).
    skew : float, optional
        0: every hash is equally likely to be copied. Above 0, copies favour a few popular
        sources (probability of source ``k`` proportional to ``1 / (k + 1) ** skew``), giving
        a heavy tail of big clusters, as viral media do.
    seed : int, optional

    Returns
    -------
    numpy.ndarray
        ``(n, bits // 8)`` uint8 codes; copies are spread at random positions.

    Examples
    --------
    >>> codes = hm.datasets.clustered_codes(1000, 64, seed=1)
    >>> len(hm.find_duplicates(codes, 4)) > 250
    True
    """
    bits = check_bits(bits)
    if not 0 <= duplicates < 1:
        raise InvalidArgument(f"duplicates: expected a fraction in [0, 1), got {duplicates}")
    flips = bits // 16 if max_flips is None else int(max_flips)
    if not 0 <= flips <= bits:
        raise InvalidArgument(f"max_flips: expected an integer in [0, {bits}], got {max_flips}")
    rng = _stream(seed, _CLUSTERED)
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    copies = int(n * duplicates)
    originals = n - copies
    if copies == 0 or originals == 0:
        return codes
    if skew > 0:
        weights = 1.0 / np.arange(1, originals + 1, dtype=np.float64) ** skew
        sources = rng.choice(originals, size=copies, p=weights / weights.sum())
    else:
        sources = rng.integers(0, originals, copies)
    chunk = 1 << 18
    for start in range(0, copies, chunk):  # bounded temporary memory at 10M hashes
        src = sources[start : start + chunk]
        block = codes[src].copy()
        if flips:
            count = rng.integers(0, flips + 1, len(src))
            positions = rng.integers(0, bits, (len(src), flips))
            for f in range(flips):
                rows = np.flatnonzero(count > f)
                byte, bit = np.divmod(positions[rows, f], 8)
                block[rows, byte] ^= (0x80 >> bit).astype(np.uint8)
        codes[originals + start : originals + start + len(src)] = block
    return codes[rng.permutation(n)]


_PICTURES = 3


def pictures(
    n: int, width: int = 320, height: int = 240, *, seed: int = 0
) -> npt.NDArray[np.uint8]:
    """``n`` synthetic photo-like RGB pictures, shape ``(n, height, width, 3)`` uint8.

    Each is a smooth colour field (a few random low-frequency waves) with random soft-edged
    discs and bars on top: structure at several scales, as photos have, so PDQ reports full
    quality and different pictures hash far apart (about 128 bits), while an edited copy (a
    re-encode, a resize) stays close. Used by ``hashmatch demo`` to make media to hash.

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.datasets.pictures(2, 64, 48).shape
    (2, 48, 64, 3)
    """
    n = check_count(n, "n")
    width, height = check_count(width, "width"), check_count(height, "height")
    if min(width, height) < 8:
        raise InvalidArgument(f"width, height: expected at least 8 pixels, got {width}x{height}")
    rng = _stream(seed, _PICTURES)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = y / height, x / width
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        field = np.zeros((height, width, 3), np.float32)
        for _ in range(4):  # low-frequency colour waves
            fx, fy = rng.uniform(-4, 4, 2)
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.cos(2 * np.pi * (fx * x + fy * y) + phase)
            field += wave[:, :, None] * rng.uniform(-60, 60, 3).astype(np.float32)
        for _ in range(int(rng.integers(6, 12))):  # discs and bars, soft-edged
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            if rng.random() < 0.5:
                inside = ((x - cx) / r) ** 2 + ((y - cy) / r) ** 2
            else:
                inside = np.maximum(np.abs(x - cx) / r, np.abs(y - cy) / (r / 3))
            mask = np.clip((1.0 - inside) * 8, 0, 1)[:, :, None]
            colour = rng.uniform(0, 255, 3).astype(np.float32)
            field = field * (1 - mask) + (colour - 128) * mask
        out[i] = np.clip(field + 128, 0, 255).astype(np.uint8)
    return out
