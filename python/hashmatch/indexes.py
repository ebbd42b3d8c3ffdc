"""Exact search indexes over packed hashes."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from hashmatch import _core
from hashmatch._validation import (
    as_codes,
    check_bits,
    check_ids,
    check_k,
    check_max_distance,
    check_threads,
)
from hashmatch.distance import check_result_size
from hashmatch.errors import InvalidArgument, InvalidType
from hashmatch.hashtypes import default_max_distance

__all__ = ["FlatIndex", "IndexPlan", "MIHIndex", "RangeSearchResult", "SearchResult", "plan_index"]


class SearchResult(NamedTuple):
    """k-nearest-neighbour results; unpacks as ``distances, ids``.

    Attributes
    ----------
    distances : numpy.ndarray
        int32, shape (nq, min(k, ntotal)), ascending along each row.
    ids : numpy.ndarray
        int64, same shape; ties in distance are ordered by id.
    """

    distances: npt.NDArray[np.int32]
    ids: npt.NDArray[np.int64]


class RangeSearchResult(NamedTuple):
    """Range-search results in CSR layout; unpacks as ``lims, distances, ids``.

    The results of query ``i`` are ``distances[lims[i]:lims[i + 1]]`` and
    ``ids[lims[i]:lims[i + 1]]``, sorted by distance then id.

    Attributes
    ----------
    lims : numpy.ndarray
        int64, shape (nq + 1,).
    distances : numpy.ndarray
        int32, shape (lims[-1],).
    ids : numpy.ndarray
        int64, shape (lims[-1],).
    """

    lims: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int32]
    ids: npt.NDArray[np.int64]

    @property
    def nqueries(self) -> int:
        """Number of queries."""
        return len(self.lims) - 1

    def query(self, i: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """``(distances, ids)`` of query ``i``.

        Examples
        --------
        >>> import hashmatch as hm
        >>> index = hm.FlatIndex(bits=8)
        >>> _ = index.add(["00", "01", "ff"])
        >>> index.range_search(["00"], 1).query(0)[1].tolist()
        [0, 1]
        """
        lo, hi = int(self.lims[i]), int(self.lims[i + 1])
        return self.distances[lo:hi], self.ids[lo:hi]


_Index = TypeVar("_Index", bound="_ExactIndex")


class _ExactIndex:
    """What every exact index shares: storage of hashes with int64 ids, kNN and range search."""

    def __init__(self, core: _core.IndexCore) -> None:
        self._bits = int(core.bits)
        self._core = core

    @classmethod
    def _from_core(cls: type[_Index], core: _core.IndexCore, **attributes: Any) -> _Index:
        """An index of this class around an existing core (a loaded file), with ``attributes``
        set as the constructor would have set them."""
        index = cls.__new__(cls)
        index.__dict__.update(attributes)
        _ExactIndex.__init__(index, core)
        return index

    @property
    def bits(self) -> int:
        """Hash width in bits."""
        return self._bits

    @property
    def nbytes(self) -> int:
        """Hash width in bytes."""
        return self._bits // 8

    @property
    def ntotal(self) -> int:
        """Number of stored hashes."""
        return int(self._core.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    def memory_bytes(self) -> int:
        """Bytes this index allocated for its hashes, ids and search structures.

        An index from :func:`hashmatch.load` reads the file's bytes in place (mapped or read
        into memory) and counts only what it has copied since, on ``add`` or ``remove``.
        """
        return int(self._core.memory_bytes())

    def add(self, hashes: object, ids: object = None) -> npt.NDArray[np.int64]:
        """Store hashes.

        Parameters
        ----------
        hashes : hashes
            Hex strings, bytes, ImageHash objects or a packed uint8 array (n, nbytes) of this
            index's width.
        ids : array_like of int, optional
            Non-negative int64 ids, unique within the batch and not already stored. By default
            ids continue from one more than the largest stored id (0, 1, 2, ... for a new index).

        Returns
        -------
        numpy.ndarray
            The int64 ids of the added hashes.

        Raises
        ------
        HashTypeMismatch
            The hashes have another width than the index.
        InvalidArgument
            Bad ids (negative, duplicated, already stored, wrong count). Nothing is added.
        """
        codes, _ = as_codes(hashes, name="hashes", nbytes=self.nbytes)
        if ids is None:
            start, top = int(self._core.next_id), int(np.iinfo(np.int64).max)
            if len(codes) and (start == top or start + len(codes) - 1 > top):
                # next_id saturates at 2**63 - 1, so there it no longer says what is free.
                raise InvalidArgument(
                    "ids: default ids would pass 2**63 - 1 (they continue after the largest "
                    "stored id); pass ids= explicitly"
                )
            id_array = np.arange(start, start + len(codes), dtype=np.int64)
        else:
            id_array = check_ids(ids, len(codes)).copy()
        self._core.add(codes, id_array)
        return id_array

    def search(self, queries: object, k: int, *, threads: int | None = None) -> SearchResult:
        """Exact k nearest neighbours of each query.

        Parameters
        ----------
        queries : hashes
            One hash or a batch (nq hashes) of this index's width.
        k : int
            Neighbours wanted (>= 1). When fewer hashes are stored, all of them are returned:
            results never contain placeholder ids or distances.
        threads : int, optional
            Threads to use; ``None`` (default) uses every available core.

        Returns
        -------
        SearchResult
            ``(distances, ids)``, each of shape (nq, min(k, ntotal)); a single query gives nq = 1.
        """
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        k = check_k(k)
        check_result_size(12 * len(codes) * min(k, self.ntotal), "search")
        distances, ids = self._core.search(codes, k, check_threads(threads))
        return SearchResult(distances, ids)

    def range_search(
        self, queries: object, max_distance: int, *, threads: int | None = None
    ) -> RangeSearchResult:
        """Every stored hash within ``max_distance`` of each query (inclusive).

        Parameters
        ----------
        queries : hashes
            One hash or a batch (nq hashes) of this index's width.
        max_distance : int
            Largest distance reported, from 0 to ``bits``; inclusive, so PDQ's standard match
            "distance <= 31" is ``max_distance=31``.
        threads : int, optional
            Threads to use; ``None`` (default) uses every available core.

        Returns
        -------
        RangeSearchResult
            ``(lims, distances, ids)`` in CSR layout, sorted by distance then id per query.
        """
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        radius = check_max_distance(max_distance, self._bits)
        lims, distances, ids = self._core.range_search(codes, radius, check_threads(threads))
        return RangeSearchResult(lims, distances, ids)

    def contents(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
        """Copies of the stored ``(ids, codes)`` in insertion order."""
        ids, codes = self._core.contents()
        return ids, codes


class FlatIndex(_ExactIndex):
    """Exact brute-force index of fixed-width hashes, scanned by SIMD kernels.

    Every query is compared with every stored hash, so results are exact. Suits big query
    batches; a single query over millions of hashes reads them all (see :class:`MIHIndex`).

    Parameters
    ----------
    bits : int, default 256
        Hash width: a multiple of 8 from 8 to 4096 (PDQ: 256; pHash/dHash: 64).

    Notes
    -----
    Thread safety: any number of threads may search at once; ``add`` waits for running
    searches and makes new ones wait until its batch is fully in. Every call releases the GIL.

    Examples
    --------
    >>> import hashmatch as hm
    >>> index = hm.FlatIndex(bits=64)
    >>> index.add(["ffffffffffffffff", "0000000000000000", "00000000000000ff"]).tolist()
    [0, 1, 2]
    >>> distances, ids = index.search(["0000000000000001"], k=2)
    >>> distances.tolist(), ids.tolist()
    ([[1, 7]], [[1, 2]])
    >>> lims, distances, ids = index.range_search(["0000000000000001"], max_distance=8)
    >>> ids[lims[0]:lims[1]].tolist()
    [1, 2]
    """

    def __init__(self, bits: int = 256) -> None:
        super().__init__(_core.IndexCore("flat", check_bits(bits)))

    def __repr__(self) -> str:
        return f"FlatIndex(bits={self._bits}, ntotal={self.ntotal})"

    def __reduce__(self) -> tuple[Any, ...]:
        ids, codes = self.contents()
        return (_rebuild, (FlatIndex, {"bits": self._bits}, codes, ids))


class MIHIndex(_ExactIndex):
    """Exact multi-index hashing: sublinear search for few queries at small radii.

    Each hash is cut into ``substrings`` pieces indexed in separate tables. A hash within ``r``
    of a query has, in some table, a piece within ``r // substrings`` of the query's piece
    (pigeonhole principle, Norouzi et al.), so probing those buckets and verifying the
    candidates finds every match, exactly. Results are identical to :class:`FlatIndex` at every
    radius and k; a query whose probes would cost more than a scan is answered by a scan.

    Parameters
    ----------
    bits : int, default 256
        Hash width: a multiple of 8 from 8 to 4096.
    max_distance : int, optional
        The radius most queries will use (default 31 for PDQ, 10 for 64-bit hashes), used to
        choose the number of substrings. Searches at other radii stay exact.
    substrings : int, optional
        Tables to build, overriding the cost model (each piece must be 1 to 32 bits).

    Notes
    -----
    New hashes are searched linearly until a rebuild of the tables, done automatically once
    they exceed an eighth of the indexed ones; removed hashes are dropped at rebuilds. Thread
    safety as :class:`FlatIndex`: concurrent searches, exclusive ``add``/``remove``.

    Examples
    --------
    >>> import hashmatch as hm
    >>> db = hm.datasets.random_codes(20_000, 256)
    >>> index = hm.MIHIndex(256)
    >>> _ = index.add(db)
    >>> q = hm.datasets.flip_bits(db[:1], [12])
    >>> index.range_search(q, 31).ids.tolist()
    [0]
    >>> index.remove([0])
    1
    >>> index.range_search(q, 31).ids.tolist()
    []
    """

    def __init__(
        self, bits: int = 256, *, max_distance: int | None = None, substrings: int | None = None
    ) -> None:
        bits = check_bits(bits)
        radius = (
            default_max_distance(bits)
            if max_distance is None
            else check_max_distance(max_distance, bits)
        )
        count = 0 if substrings is None else _check_substrings(substrings, bits)
        self._max_distance = radius
        self._fixed_substrings = count
        super().__init__(_core.IndexCore("mih", bits, count, radius))

    @property
    def substrings(self) -> int:
        """Tables in use (0 until the first build, at 1,025 hashes)."""
        return int(self._core.substrings)

    def remove(self, ids: object) -> int:
        """Remove the hashes with these ids; ids not stored are ignored.

        Returns
        -------
        int
            How many hashes were removed. Other ids are never renumbered.
        """
        id_array = np.atleast_1d(np.asarray(ids))
        return int(self._core.remove(check_ids(id_array, len(id_array), name="ids")))

    def compact(self) -> None:
        """Drop removed hashes and index the recently added ones now.

        Both otherwise happen automatically, once enough hashes are removed or added (until
        then removed hashes hold memory and new ones are scanned linearly). :func:`hashmatch.save`
        compacts before writing. A full rebuild when there is anything to do; otherwise free.

        Examples
        --------
        >>> import hashmatch as hm
        >>> index = hm.MIHIndex(64)
        >>> _ = index.add(hm.datasets.random_codes(100, 64))
        >>> index.substrings  # 100 hashes: scanned linearly until 1,025 are added
        0
        >>> index.compact()
        >>> index.substrings > 0
        True
        """
        self._core.compact()

    def __repr__(self) -> str:
        return (
            f"MIHIndex(bits={self._bits}, ntotal={self.ntotal}, substrings={self.substrings}, "
            f"max_distance={self._max_distance})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        ids, codes = self.contents()
        params = {
            "bits": self._bits,
            "max_distance": self._max_distance,
            "substrings": self._fixed_substrings or None,
        }
        return (_rebuild, (MIHIndex, params, codes, ids))


# A flat scan in a batch is compute-bound: about 0.25 ns per 64-bit word and query on the
# reference machine (1 G PDQ comparisons/s per core); see benchmarks/RESULTS.md.
_FLAT_BATCH_NS_PER_WORD = 0.25


class IndexPlan(NamedTuple):
    """Which exact index suits a range-search workload, with the cost model's estimates."""

    kind: str
    """``"MIHIndex"`` or ``"FlatIndex"``."""
    substrings: int
    """Tables an MIHIndex would build."""
    mih_ms: float
    """Estimated MIHIndex time per query, in milliseconds."""
    flat_ms: float
    """Estimated FlatIndex time per query within a batch, in milliseconds."""


def plan_index(n: int, bits: int = 256, *, max_distance: int | None = None) -> IndexPlan:
    """Choose between MIHIndex and FlatIndex for range queries over ``n`` stored hashes.

    MIHIndex costs about the same per query alone or in a batch; a flat scan is cheapest per
    query in big batches, so this compares MIH's estimated cost with a batched scan's: when it
    picks MIHIndex, single queries gain even more.

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.plan_index(10_000_000, 256, max_distance=31).kind
    'MIHIndex'
    >>> hm.plan_index(2_000, 256, max_distance=31).kind
    'FlatIndex'
    """
    bits = check_bits(bits)
    radius = (
        default_max_distance(bits)
        if max_distance is None
        else check_max_distance(max_distance, bits)
    )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidArgument(f"n: expected a non-negative integer, got {n!r}")
    substrings = int(_core.choose_substrings(bits, int(n), radius))
    mih_ns = _core.mih_cost(bits, substrings, int(n), radius)[2]
    flat_ns = int(n) * -(-bits // 64) * _FLAT_BATCH_NS_PER_WORD
    best = "MIHIndex" if mih_ns < flat_ns else "FlatIndex"
    return IndexPlan(best, substrings, mih_ns / 1e6, flat_ns / 1e6)


def _check_substrings(value: object, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"substrings: expected an integer, got {type(value).__name__}")
    count = int(value)
    if not 1 <= count <= bits or -(-bits // count) > 32:
        raise InvalidArgument(
            f"substrings: expected {-(-bits // 32)} to {bits} (pieces of 1 to 32 bits) for "
            f"{bits}-bit hashes, got {count}"
        )
    return count


def _rebuild(
    cls: type[_ExactIndex],
    params: dict[str, Any],
    codes: npt.NDArray[np.uint8],
    ids: npt.NDArray[np.int64],
) -> _ExactIndex:
    index = cls(**params)
    index.add(codes, ids)
    return index
