"""Pluggable search backends: our exact indexes and faiss's approximate binary indexes.

A hash list stores its hashes in segments, each an index behind the :class:`Backend` interface:
``add(hashes, ids)``, ``search(queries, k)`` and ``range_search(queries, max_distance)`` with
the results of :class:`~hashmatch.FlatIndex`. :func:`make_backend` builds one by name:

===================  ====================================================  =====
name                 class                                                 exact
===================  ====================================================  =====
``flat``             :class:`~hashmatch.FlatIndex`                         yes
``mih``              :class:`~hashmatch.MIHIndex`                          yes
``faiss-hnsw``       :class:`FaissHNSW` (``IndexBinaryHNSW``)              no
``faiss-ivf``        :class:`FaissIVF` (``IndexBinaryIVF``)                no
``faiss-multihash``  :class:`FaissMultiHash` (``IndexBinaryMultiHash``)    no
===================  ====================================================  =====

The faiss backends trade recall for speed or memory and keep our semantics where faiss's differ:

- ``range_search`` is inclusive (distance ``<= max_distance``); faiss's binary range search is
  strict (``<``), so it is called with ``max_distance + 1``.
- Results are sorted by (distance, id) within each query, in the same CSR layout (int64 ``lims``,
  int32 distances, int64 ids). Every distance reported is the true Hamming distance.
- ``search`` returns ``min(k, len(index))`` columns like ours, but an approximate index may find
  fewer than that for some queries. The missing entries are at the end of the row, with id
  ``-1`` and distance ``bits + 1`` (:data:`MISSING_ID`, :func:`missing_distance`). That distance
  is larger than any real one, so padding sorts last when rows from several segments are merged,
  and a ``distances <= max_distance`` filter drops it. Mask ``ids >= 0`` before using ids as row
  numbers, because ``labels[-1]`` is a real label. Exact backends never pad.
- Which of several hashes tied at the k-th distance are returned is up to faiss.

How much they miss depends on the data and parameters. On 1M uniform random PDQ hashes at
radius 31 (``benchmarks/test_backends.py``, defaults), range-search recall was 1.0 for
multi-hash (exact up to radius 31 by construction), 0.90 for IVF and 0.47 for HNSW, whose
graph search suits random 256-bit codes poorly; MIHIndex is exact and was faster than all but
IVF per query.

faiss is imported on first use, so ``flat`` and ``mih`` work without it. If ``OMP_WAIT_POLICY``
is unset at that moment, it is set to ``passive`` first: faiss's bundled OpenMP otherwise keeps
idle threads spinning after each call, which halved the speed of our next kernel on 2 cores.

Faiss backends are saved with :meth:`FaissBackend.to_bytes` (``faiss.serialize_index_binary``)
plus their name and :attr:`~FaissBackend.params`, and restored with :func:`backend_from_bytes`.
faiss's reader does not guard against hostile input, so only restore bytes whose integrity was
checked, for example by the checksum of the file they were stored in.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, Protocol, overload, runtime_checkable

import numpy as np
import numpy.typing as npt

from hashmatch._validation import (
    as_codes,
    check_bits,
    check_ids,
    check_k,
    check_max_distance,
    check_threads,
)
from hashmatch.distance import check_result_size
from hashmatch.errors import IndexFormatError, InvalidArgument, InvalidType
from hashmatch.indexes import FlatIndex, MIHIndex, RangeSearchResult, SearchResult

__all__ = [
    "BACKENDS",
    "EXACT_BACKENDS",
    "MISSING_ID",
    "Backend",
    "FaissBackend",
    "FaissHNSW",
    "FaissIVF",
    "FaissMultiHash",
    "backend_from_bytes",
    "backend_spec",
    "is_exact",
    "make_backend",
    "missing_distance",
]

MISSING_ID = -1
"""Id of the padding at the end of a kNN row for which an approximate backend found too few."""


def missing_distance(bits: int) -> int:
    """Distance of kNN padding: ``bits + 1``, more than any real distance.

    Examples
    --------
    >>> from hashmatch.backends import missing_distance
    >>> missing_distance(256)
    257
    """
    return check_bits(bits) + 1


@runtime_checkable
class Backend(Protocol):
    """What a hash list needs from an index; :class:`~hashmatch.FlatIndex` and
    :class:`~hashmatch.MIHIndex` satisfy it as they are.

    ``add`` stores hashes under int64 ids (by default continuing after the largest stored id).
    ``search`` and ``range_search`` return :class:`~hashmatch.SearchResult` and
    :class:`~hashmatch.RangeSearchResult`, sorted by (distance, id) within each query, with an
    inclusive radius. Approximate backends may miss hashes and pad kNN rows (see the module
    documentation), but every distance they report is true.
    """

    @property
    def bits(self) -> int:
        """Hash width in bits."""
        ...

    def __len__(self) -> int: ...

    def add(self, hashes: object, ids: object = None) -> npt.NDArray[np.int64]:
        """Store hashes under ``ids``; returns the int64 ids."""
        ...

    def search(self, queries: object, k: int, *, threads: int | None = None) -> SearchResult:
        """The (approximate) k nearest stored hashes of each query."""
        ...

    def range_search(
        self, queries: object, max_distance: int, *, threads: int | None = None
    ) -> RangeSearchResult:
        """The stored hashes (found) within ``max_distance`` of each query, inclusive."""
        ...


# ------------------------------------------------------------------------------------------
# faiss plumbing


def _faiss() -> Any:
    """Import faiss, with passive OpenMP idle threads unless the user chose otherwise."""
    if "faiss" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        import faiss  # type: ignore[import-untyped, unused-ignore]  # some faiss releases lack py.typed
    except ImportError as error:  # pragma: no cover - faiss is a test dependency
        raise ImportError(
            "the faiss backends need faiss: pip install faiss-cpu (or faiss-gpu)"
        ) from error
    return faiss


@contextmanager
def _omp_threads(faiss: Any, threads: int) -> Iterator[None]:
    """Run faiss with ``threads`` OpenMP threads, then restore this thread's previous setting."""
    previous = int(faiss.omp_get_max_threads())
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


class _ReadWriteLock:
    """Many concurrent searches, or one ``add``: faiss's indexes are not synchronised."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _check_int(value: object, name: str, low: int, high: int) -> int:
    """An integer parameter in ``[low, high]`` (bools and floats are rejected)."""
    expected = f"an integer in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    if not low <= int(value) <= high:
        raise InvalidArgument(f"{name}: expected {expected}, got {int(value)}")
    return int(value)


def _empty_range(nq: int) -> RangeSearchResult:
    return RangeSearchResult(
        np.zeros(nq + 1, dtype=np.int64), np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
    )


def _sorted_range(
    lims: npt.NDArray[np.int64], distances: npt.NDArray[Any], ids: npt.NDArray[np.int64]
) -> RangeSearchResult:
    """The CSR result with each query's entries sorted by (distance, id)."""
    distances = distances.astype(np.int32)  # faiss reports float distances
    if len(ids) > 1:
        nq = len(lims) - 1
        query = np.repeat(np.arange(nq), np.diff(lims)) if nq > 1 else None
        order = np.lexsort((ids, distances) if query is None else (ids, distances, query))
        distances, ids = distances[order], ids[order]
    return RangeSearchResult(lims, distances, np.ascontiguousarray(ids, dtype=np.int64))


class FaissBackend:
    """Base of the faiss backends: validation, ids, threads, locking, sorting, serialization.

    The faiss index is an ``IndexBinaryIDMap`` around the class's index, so the ids given to
    ``add`` come back from searches. It is created at the first non-empty ``add`` (IVF trains
    then); an empty backend holds no faiss index.

    Thread safety: any number of threads may search at once; ``add`` waits for running searches
    and makes new ones wait. faiss releases the GIL during its calls.
    """

    name: ClassVar[str]
    """The backend's name for :func:`make_backend`."""
    faiss_class: ClassVar[str]
    """The faiss index class inside the ``IndexBinaryIDMap``."""
    exact: ClassVar[bool] = False
    """Whether every search returns the exact answer (never for these backends)."""

    def __init__(self, bits: int) -> None:
        self._bits = check_bits(bits)
        self._faiss = _faiss()
        self._index: Any = None
        self._lock = _ReadWriteLock()

    # -- what subclasses provide ------------------------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        """JSON-able constructor keywords: ``make_backend(name, bits, **params)`` rebuilds an
        empty backend configured the same way."""
        raise NotImplementedError

    def _new_index(self, codes: npt.NDArray[np.uint8] | None) -> Any:
        """The inner faiss index (not yet wrapped), trained on ``codes`` if it needs training
        (``None``: an untrained placeholder, only for serializing an empty backend)."""
        raise NotImplementedError

    def _configure(self, inner: Any) -> None:
        """Apply search-time parameters to a restored inner index (of :attr:`faiss_class`),
        whose structural parameters must match this backend's (else IndexFormatError)."""
        raise NotImplementedError

    def _knn(self, codes: npt.NDArray[np.uint8], k: int) -> tuple[Any, Any]:
        result: tuple[Any, Any] = self._index.search(codes, k)
        return result

    def _range(self, codes: npt.NDArray[np.uint8], radius: int) -> RangeSearchResult:
        lims, distances, ids = self._index.range_search(codes, radius + 1)  # faiss: strict <
        return _sorted_range(lims.astype(np.int64), distances, ids)

    # -- the Backend interface ----------------------------------------------------------------

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
        return 0 if self._index is None else int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    def add(
        self, hashes: object, ids: object = None, *, threads: int | None = None
    ) -> npt.NDArray[np.int64]:
        """Store hashes.

        Parameters
        ----------
        hashes : hashes
            Hex strings, bytes, ImageHash objects or a packed uint8 array (n, nbytes).
        ids : array_like of int, optional
            Non-negative int64 ids, unique and not already stored. By default ids continue from
            one more than the largest stored id (0, 1, 2, ... for a new backend).
        threads : int, optional
            Threads faiss may use to build; ``None`` (default) uses every available core.

        Returns
        -------
        numpy.ndarray
            The int64 ids of the added hashes.

        Raises
        ------
        HashTypeMismatch
            The hashes have another width than the backend.
        InvalidArgument
            Bad ids (negative, duplicated, already stored, wrong count). Nothing is added.
        """
        codes, _ = as_codes(hashes, name="hashes", nbytes=self.nbytes)
        nthreads = check_threads(threads)
        with self._lock.writing():
            stored = self._stored_ids()
            if ids is None:
                start = int(stored.max()) + 1 if len(stored) else 0
                if start + len(codes) - 1 > np.iinfo(np.int64).max:
                    raise InvalidArgument(
                        "ids: default ids would pass 2**63 - 1 (they continue after the largest "
                        "stored id); pass ids= explicitly"
                    )
                id_array = np.arange(start, start + len(codes), dtype=np.int64)
            else:
                id_array = check_ids(ids, len(codes)).copy()
                clash = np.flatnonzero(np.isin(id_array, stored))
                if clash.size:
                    raise InvalidArgument(f"ids: id {id_array[clash[0]]} is already in the index")
            if len(codes):
                with _omp_threads(self._faiss, nthreads):
                    index = self._index
                    if index is None:
                        index = self._faiss.IndexBinaryIDMap(self._new_index(codes))
                    index.add_with_ids(codes, id_array)
                    self._index = index
        return id_array

    def search(self, queries: object, k: int, *, threads: int | None = None) -> SearchResult:
        """Approximate k nearest neighbours of each query.

        Parameters
        ----------
        queries : hashes
            One hash or a batch (nq hashes) of this backend's width.
        k : int
            Neighbours wanted (>= 1).
        threads : int, optional
            Threads faiss may use; ``None`` (default) uses every available core.

        Returns
        -------
        SearchResult
            ``(distances, ids)`` of shape (nq, min(k, ntotal)), sorted by (distance, id) per
            row. Entries the backend did not find end the row with id ``-1`` and distance
            ``bits + 1``.
        """
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        k = check_k(k)
        nthreads = check_threads(threads)
        with self._lock.reading():
            width = min(k, self.ntotal)
            if width == 0 or len(codes) == 0:
                return SearchResult(
                    np.empty((len(codes), width), dtype=np.int32),
                    np.empty((len(codes), width), dtype=np.int64),
                )
            check_result_size(12 * len(codes) * width, "search")
            with _omp_threads(self._faiss, nthreads):
                distances, ids = self._knn(codes, width)
        distances = np.asarray(distances, dtype=np.int32)
        ids = np.asarray(ids, dtype=np.int64)
        distances[ids < 0] = self._bits + 1
        ids[ids < 0] = MISSING_ID
        order = np.lexsort((ids, distances))
        return SearchResult(
            np.take_along_axis(distances, order, axis=1), np.take_along_axis(ids, order, axis=1)
        )

    def range_search(
        self, queries: object, max_distance: int, *, threads: int | None = None
    ) -> RangeSearchResult:
        """The stored hashes found within ``max_distance`` of each query (inclusive).

        Parameters
        ----------
        queries : hashes
            One hash or a batch (nq hashes) of this backend's width.
        max_distance : int
            Largest distance reported, from 0 to ``bits``; inclusive, like our exact indexes.
        threads : int, optional
            Threads faiss may use; ``None`` (default) uses every available core.

        Returns
        -------
        RangeSearchResult
            ``(lims, distances, ids)`` in CSR layout, sorted by distance then id per query. An
            approximate backend may miss some matches, never reports a non-match.
        """
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        radius = check_max_distance(max_distance, self._bits)
        nthreads = check_threads(threads)
        with self._lock.reading():
            if self.ntotal == 0 or len(codes) == 0:
                return _empty_range(len(codes))
            with _omp_threads(self._faiss, nthreads):
                return self._range(codes, radius)

    # -- serialization --------------------------------------------------------------------------

    def to_bytes(self) -> npt.NDArray[np.uint8]:
        """The faiss index serialized by ``faiss.serialize_index_binary`` (ids included).

        Store it with :attr:`name`, :attr:`bits` and :attr:`params`; restore with
        :func:`backend_from_bytes`.
        """
        with self._lock.reading():
            index = self._index
            if index is None:
                index = self._faiss.IndexBinaryIDMap(self._new_index(None))
            data: npt.NDArray[np.uint8] = self._faiss.serialize_index_binary(index)
        return data

    @classmethod
    def from_bytes(cls, bits: int, params: dict[str, Any], data: object) -> FaissBackend:
        """Restore a backend saved by :meth:`to_bytes` with its ``bits`` and ``params``.

        Raises
        ------
        IndexFormatError
            ``data`` is not a serialized faiss binary index of this kind, width and structure.
        """
        backend = cls(bits, **params)
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = np.frombuffer(data, dtype=np.uint8)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1:
            raise InvalidType(f"data: expected bytes or a 1-D uint8 array, got {type(data)}")
        faiss = backend._faiss
        try:
            index = faiss.deserialize_index_binary(np.ascontiguousarray(data))
        except RuntimeError as error:
            raise IndexFormatError(f"data: not a serialized faiss binary index ({error})") from None
        if not isinstance(index, faiss.IndexBinaryIDMap):
            raise IndexFormatError(
                f"data: expected a faiss IndexBinaryIDMap, got {type(index).__name__}"
            )
        if int(index.d) != backend.bits:
            raise IndexFormatError(f"data: expected a {backend.bits}-bit index, got {index.d}")
        inner = faiss.downcast_IndexBinary(index.index)
        if not isinstance(inner, getattr(faiss, cls.faiss_class)):
            raise IndexFormatError(
                f"data: expected an {cls.faiss_class}, got {type(inner).__name__}"
            )
        backend._configure(inner)
        if int(index.ntotal):
            backend._index = index
        return backend

    def _stored_ids(self) -> npt.NDArray[np.int64]:
        if self._index is None:
            return np.empty(0, dtype=np.int64)
        ids: npt.NDArray[np.int64] = self._faiss.vector_to_array(self._index.id_map)
        return ids

    def __reduce__(self) -> tuple[Any, ...]:
        return (backend_from_bytes, (self.name, self._bits, self.params, self.to_bytes()))

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}(bits={self._bits}, {options}, ntotal={self.ntotal})"


def _mismatch(name: str, expected: object, got: object) -> IndexFormatError:
    return IndexFormatError(f"data: the index has {name}={got}, the params say {expected}")


class FaissHNSW(FaissBackend):
    """faiss's HNSW graph over binary codes (``IndexBinaryHNSW``): fast approximate kNN.

    Parameters
    ----------
    bits : int, default 256
        Hash width: a multiple of 8 from 8 to 4096.
    M : int, default 32
        Graph degree (2 * M links on the base level); more raises recall, memory and build time.
    ef_search : int, default 64
        Candidates kept during a search (at least k); more raises recall and latency.
    ef_construction : int, default 40
        Candidates kept while inserting; more gives a better graph, slower to build.
    range_k : int, optional
        Nearest neighbours first fetched by a range search (default ``ef_search``).

    Notes
    -----
    faiss has no range search for binary HNSW, so ``range_search`` emulates it: a kNN search
    for ``range_k`` neighbours, kept where within the radius. For a query whose k-th neighbour
    is still within the radius, k doubles and that query is searched again, until the k-th
    neighbour is farther or k reaches ``ntotal``. Results stay approximate (the graph search
    may miss matches), and a query with many matches costs several searches.

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import FaissHNSW
    >>> db = hm.datasets.random_codes(1000, 256)
    >>> index = FaissHNSW(256, M=16)
    >>> index.add(db)[:3].tolist()
    [0, 1, 2]
    >>> q = hm.datasets.flip_bits(db[7:8], [31])
    >>> index.range_search(q, 31).ids.tolist(), index.range_search(q, 31).distances.tolist()
    ([7], [31])
    """

    name = "faiss-hnsw"
    faiss_class = "IndexBinaryHNSW"

    def __init__(
        self,
        bits: int = 256,
        *,
        M: int = 32,  # faiss's and the HNSW paper's name
        ef_search: int = 64,
        ef_construction: int = 40,
        range_k: int | None = None,
    ) -> None:
        self._M = _check_int(M, "M", 2, 512)
        self._ef_search = _check_int(ef_search, "ef_search", 1, 1 << 20)
        self._ef_construction = _check_int(ef_construction, "ef_construction", 1, 1 << 20)
        self._range_k = (
            self._ef_search if range_k is None else _check_int(range_k, "range_k", 1, 1 << 20)
        )
        super().__init__(bits)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "M": self._M,
            "ef_search": self._ef_search,
            "ef_construction": self._ef_construction,
            "range_k": self._range_k,
        }

    def _new_index(self, codes: npt.NDArray[np.uint8] | None) -> Any:
        inner = self._faiss.IndexBinaryHNSW(self._bits, self._M)
        inner.hnsw.efConstruction = self._ef_construction
        inner.hnsw.efSearch = self._ef_search
        return inner

    def _configure(self, inner: Any) -> None:
        if int(inner.hnsw.nb_neighbors(1)) != self._M:
            raise _mismatch("M", self._M, int(inner.hnsw.nb_neighbors(1)))
        inner.hnsw.efConstruction = self._ef_construction
        inner.hnsw.efSearch = self._ef_search

    def _knn(self, codes: npt.NDArray[np.uint8], k: int) -> tuple[Any, Any]:
        # Binary HNSW keeps only ef candidates (it does not raise ef to k): ask for enough.
        params = self._faiss.SearchParametersHNSW(efSearch=max(self._ef_search, k))
        result: tuple[Any, Any] = self._index.search(codes, k, params=params)
        return result

    def _range(self, codes: npt.NDArray[np.uint8], radius: int) -> RangeSearchResult:
        n = self.ntotal
        k = min(self._range_k, n)
        pending, batch = np.arange(len(codes)), codes
        parts: list[tuple[Any, Any, Any, Any]] = []  # (query numbers, hit mask, distances, ids)
        while True:
            distances, ids = self._knn(batch, k)
            hit = (distances <= radius) & (ids >= 0)
            more = hit[:, -1] if k < n else np.zeros(len(hit), dtype=bool)
            if not more.any():
                parts.append((pending, hit, distances, ids))
                break
            done = ~more
            parts.append((pending[done], hit[done], distances[done], ids[done]))
            pending = pending[more]
            batch, k = codes[pending], min(2 * k, n)
        lims = np.zeros(len(codes) + 1, dtype=np.int64)
        if len(parts) == 1:  # the usual case: no query had range_k matches
            np.cumsum(hit.sum(axis=1), out=lims[1:])
            return _sorted_range(lims, distances[hit], ids[hit])
        query = np.concatenate([np.repeat(q, h.sum(axis=1)) for q, h, _, _ in parts])
        grouped = np.argsort(query, kind="stable")
        np.cumsum(np.bincount(query, minlength=len(codes)), out=lims[1:])
        found_d = np.concatenate([d[h] for _, h, d, _ in parts])[grouped]
        found_i = np.concatenate([i[h] for _, h, _, i in parts])[grouped]
        return _sorted_range(lims, found_d, found_i)


class FaissIVF(FaissBackend):
    """faiss's inverted file over binary codes (``IndexBinaryIVF``, ``IndexBinaryFlat``
    quantizer): each hash is stored in the list of its nearest centroid, and a search scans
    the ``nprobe`` lists nearest to the query.

    Parameters
    ----------
    bits : int, default 256
        Hash width: a multiple of 8 from 8 to 4096.
    nlist : int, optional
        Number of lists (centroids). By default ``round(sqrt(n))`` of the first batch added.
    nprobe : int, default 16
        Lists scanned per query (at most ``nlist``); ``nprobe = nlist`` scans everything and
        is exact.

    Notes
    -----
    The centroids are trained by k-means on the first non-empty batch given to :meth:`add`
    (on a fixed random sample of ``64 * nlist`` of its rows when it has more), which must have
    at least ``nlist`` hashes. Later batches are assigned to those lists without retraining,
    so the first batch should represent the data; a hash list builds each segment from one
    batch. Uniform random hashes have no clusters to find, so recall at a given ``nprobe`` is
    lower on them than on real, clustered hashes.

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import FaissIVF
    >>> db = hm.datasets.random_codes(2000, 64)
    >>> index = FaissIVF(64, nprobe=8)
    >>> _ = index.add(db)
    >>> index.params
    {'nlist': 45, 'nprobe': 8}
    >>> index.search(db[5], k=1).ids.tolist()
    [[5]]
    """

    name = "faiss-ivf"
    faiss_class = "IndexBinaryIVF"
    TRAIN_ROWS_PER_LIST: ClassVar[int] = 64
    """k-means trains on at most this many rows per list (faiss warns below 39)."""

    def __init__(self, bits: int = 256, *, nlist: int | None = None, nprobe: int = 16) -> None:
        self._nlist = None if nlist is None else _check_int(nlist, "nlist", 1, 1 << 24)
        self._nprobe = _check_int(nprobe, "nprobe", 1, 1 << 24)
        super().__init__(bits)

    @property
    def params(self) -> dict[str, Any]:
        """``nlist`` is ``None`` until the first batch chose it."""
        return {"nlist": self._nlist, "nprobe": self._nprobe}

    def _new_index(self, codes: npt.NDArray[np.uint8] | None) -> Any:
        faiss = self._faiss
        if codes is None:
            nlist = self._nlist or 1
        else:
            n = len(codes)
            nlist = self._nlist or max(1, min(n, round(n**0.5)))
            if nlist > n:
                raise InvalidArgument(
                    f"hashes: the first batch trains the {nlist} lists of FaissIVF and needs "
                    f"at least nlist hashes, got {n}"
                )
        quantizer = faiss.IndexBinaryFlat(self._bits)
        inner = faiss.IndexBinaryIVF(quantizer, self._bits, nlist)  # keeps quantizer alive
        inner.cp.min_points_per_centroid = 1  # small batches are fine; no warning on stderr
        if codes is not None:
            rows = self.TRAIN_ROWS_PER_LIST * nlist
            if len(codes) > rows:
                sample = np.random.default_rng(0).choice(len(codes), rows, replace=False)
                codes = codes[np.sort(sample)]
            inner.train(codes)
            self._nlist = nlist
        inner.nprobe = min(self._nprobe, nlist)
        return inner

    def _configure(self, inner: Any) -> None:
        if inner.is_trained:
            if self._nlist is not None and int(inner.nlist) != self._nlist:
                raise _mismatch("nlist", self._nlist, int(inner.nlist))
            self._nlist = int(inner.nlist)  # chosen by the first batch when params say None
        inner.nprobe = min(self._nprobe, int(inner.nlist))


class FaissMultiHash(FaissBackend):
    """faiss's multi-index hashing (``IndexBinaryMultiHash``): ``nhash`` hash tables, each
    keyed by ``b`` bits of the code; a search probes each table's bucket of the query and the
    buckets within ``nflip`` bit flips of it.

    Parameters
    ----------
    bits : int, default 256
        Hash width: a multiple of 8 from 8 to 4096.
    nhash : int, optional
        Number of tables (default ``bits // b``, which covers every bit).
    b : int, optional
        Bits per table key, 1 to 64 (default 16 for 128 bits or more, else 8): with
        ``nhash=16, b=16`` for PDQ and ``8, 8`` for 64-bit pHash, as ThreatExchange does.
    nflip : int, default 1
        Bit flips probed per table (at most ``b``); the probes grow as ``b ** nflip``.

    Notes
    -----
    By the pigeonhole principle a hash within ``r`` of the query differs from it in at most
    ``r // nhash`` bits of some table's key, so ``range_search`` is exact up to
    :attr:`exact_radius` ``= nhash * (nflip + 1) - 1`` (31 with the PDQ defaults) and
    approximate beyond. ``search`` only sees hashes that share a probed bucket with the query,
    so its rows are often padded.

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import FaissMultiHash
    >>> db = hm.datasets.random_codes(1000, 256)
    >>> index = FaissMultiHash(256)
    >>> index.params, index.exact_radius
    ({'nhash': 16, 'b': 16, 'nflip': 1}, 31)
    >>> _ = index.add(db)
    >>> q = hm.datasets.flip_bits(db[3:4], [31])
    >>> index.range_search(q, 31).ids.tolist()
    [3]
    """

    name = "faiss-multihash"
    faiss_class = "IndexBinaryMultiHash"

    def __init__(
        self, bits: int = 256, *, nhash: int | None = None, b: int | None = None, nflip: int = 1
    ) -> None:
        bits = check_bits(bits)
        self._b = (16 if bits >= 128 else 8) if b is None else _check_int(b, "b", 1, 64)
        most = bits // self._b
        if most < 1:
            raise InvalidArgument(f"b: expected at most bits = {bits}, got {self._b}")
        self._nhash = most if nhash is None else _check_int(nhash, "nhash", 1, most)
        self._nflip = _check_int(nflip, "nflip", 0, self._b)
        super().__init__(bits)

    @property
    def params(self) -> dict[str, Any]:
        return {"nhash": self._nhash, "b": self._b, "nflip": self._nflip}

    @property
    def exact_radius(self) -> int:
        """Largest radius at which ``range_search`` finds every match."""
        return self._nhash * (self._nflip + 1) - 1

    def _new_index(self, codes: npt.NDArray[np.uint8] | None) -> Any:
        inner = self._faiss.IndexBinaryMultiHash(self._bits, self._nhash, self._b)
        inner.nflip = self._nflip
        return inner

    def _configure(self, inner: Any) -> None:
        for key, value in (("nhash", self._nhash), ("b", self._b)):
            if int(getattr(inner, key)) != value:
                raise _mismatch(key, value, int(getattr(inner, key)))
        inner.nflip = self._nflip


# ------------------------------------------------------------------------------------------
# the factory

_FAISS_CLASSES: dict[str, type[FaissBackend]] = {
    cls.name: cls for cls in (FaissHNSW, FaissIVF, FaissMultiHash)
}
EXACT_BACKENDS = ("flat", "mih")
"""Names of the exact backends (our indexes)."""
BACKENDS = (*EXACT_BACKENDS, *_FAISS_CLASSES)
"""Every name :func:`make_backend` accepts."""


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in BACKENDS:
        raise InvalidArgument(f"name: expected one of {', '.join(BACKENDS)}; got {name!r}")
    return name


def _check_params(name: str, cls: type, params: dict[str, Any]) -> None:
    allowed = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"params: {name} takes {', '.join(allowed) or 'no parameters'}; "
            f"got {', '.join(unknown)}"
        )


@overload
def make_backend(name: Literal["flat"], bits: int = ..., **params: Any) -> FlatIndex: ...
@overload
def make_backend(name: Literal["mih"], bits: int = ..., **params: Any) -> MIHIndex: ...
@overload
def make_backend(name: Literal["faiss-hnsw"], bits: int = ..., **params: Any) -> FaissHNSW: ...
@overload
def make_backend(name: Literal["faiss-ivf"], bits: int = ..., **params: Any) -> FaissIVF: ...
@overload
def make_backend(
    name: Literal["faiss-multihash"], bits: int = ..., **params: Any
) -> FaissMultiHash: ...
@overload
def make_backend(name: str, bits: int = ..., **params: Any) -> Backend: ...


def make_backend(name: str, bits: int = 256, **params: Any) -> Backend:
    """A new, empty backend by name.

    Parameters
    ----------
    name : str
        ``"flat"``, ``"mih"`` (exact) or ``"faiss-hnsw"``, ``"faiss-ivf"``,
        ``"faiss-multihash"`` (approximate; need faiss).
    bits : int, default 256
        Hash width.
    **params
        The class's keyword options: ``mih`` takes ``max_distance`` and ``substrings``;
        the faiss backends those of :class:`FaissHNSW`, :class:`FaissIVF` and
        :class:`FaissMultiHash`.

    Raises
    ------
    InvalidArgument
        An unknown name (the message lists the valid ones) or parameter, or a bad value.

    Examples
    --------
    >>> from hashmatch.backends import is_exact, make_backend
    >>> make_backend("mih", 64, max_distance=10)
    MIHIndex(bits=64, ntotal=0, substrings=0, max_distance=10)
    >>> backend = make_backend("faiss-multihash", 64, nflip=2)
    >>> backend
    FaissMultiHash(bits=64, nhash=8, b=8, nflip=2, ntotal=0)
    >>> is_exact(backend)
    False
    """
    name = _check_name(name)
    cls: type = {"flat": FlatIndex, "mih": MIHIndex}.get(name) or _FAISS_CLASSES[name]
    _check_params(name, cls, params)
    backend: Backend = cls(bits, **params)
    return backend


def backend_from_bytes(name: str, bits: int, params: dict[str, Any], data: object) -> Backend:
    """Restore a faiss backend from :meth:`FaissBackend.to_bytes`, its name, bits and params.

    Exact backends are not stored as bytes (a hash list saves their hashes).

    Raises
    ------
    InvalidArgument
        ``name`` is not a faiss backend's, or the params are bad.
    IndexFormatError
        ``data`` does not hold a faiss index of that kind, width and structure.

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import backend_from_bytes, backend_spec, make_backend
    >>> backend = make_backend("faiss-ivf", 64)
    >>> _ = backend.add(hm.datasets.random_codes(100, 64))
    >>> name, params = backend_spec(backend)
    >>> copy = backend_from_bytes(name, 64, params, backend.to_bytes())
    >>> copy
    FaissIVF(bits=64, nlist=10, nprobe=16, ntotal=100)
    """
    name = _check_name(name)
    if name not in _FAISS_CLASSES:
        raise InvalidArgument(
            f"name: expected a faiss backend ({', '.join(_FAISS_CLASSES)}) to restore from "
            f"bytes, got {name!r}; exact backends are rebuilt from their hashes"
        )
    if not isinstance(params, dict):
        raise InvalidType(f"params: expected a dict, got {type(params).__name__}")
    cls = _FAISS_CLASSES[name]
    _check_params(name, cls, params)
    return cls.from_bytes(bits, params, data)


def is_exact(backend: Backend) -> bool:
    """Whether ``backend`` always returns exact results.

    True for :class:`~hashmatch.FlatIndex` and :class:`~hashmatch.MIHIndex`, else the
    backend's ``exact`` attribute (``False`` when it has none).

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import is_exact
    >>> is_exact(hm.FlatIndex(64))
    True
    """
    if isinstance(backend, (FlatIndex, MIHIndex)):
        return True
    return getattr(backend, "exact", False) is True


def backend_spec(backend: Backend) -> tuple[str, dict[str, Any]]:
    """``(name, params)`` such that ``make_backend(name, backend.bits, **params)`` builds an
    empty backend configured like ``backend``; both are JSON-able.

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import backend_spec
    >>> backend_spec(hm.MIHIndex(256))
    ('mih', {'max_distance': 31, 'substrings': None})
    """
    if isinstance(backend, FaissBackend):
        return backend.name, backend.params
    if isinstance(backend, MIHIndex):
        return "mih", {
            "max_distance": backend._max_distance,
            "substrings": backend._fixed_substrings or None,
        }
    if isinstance(backend, FlatIndex):
        return "flat", {}
    raise InvalidType(
        f"backend: expected a backend from make_backend, got {type(backend).__name__}"
    )
