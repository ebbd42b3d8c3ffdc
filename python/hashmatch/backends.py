"""Pluggable search backends: our exact indexes and faiss's approximate binary indexes.

Every backend, exact or not, has the same public face (:class:`Backend`): ``name``,
``params``, ``exact``, ``bits``, ``len()``, ``add``, ``search``, ``range_search`` (with the
results of :class:`~hashmatch.FlatIndex`), ``range_search_validated`` for callers that checked
their arguments, and ``to_sections()`` / ``from_sections(meta, sections, where)``, which
:func:`hashmatch.save`, :func:`hashmatch.load`, hash lists and pickling use.
:func:`make_backend` builds one by name (or ``"auto"``: the exact index
:func:`~hashmatch.plan_index` picks):

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

Faiss backends save as one section, ``faiss`` (:meth:`FaissBackend.to_bytes`:
``faiss.serialize_index_binary``), beside their name and :attr:`~FaissBackend.params`; they
load through :func:`hashmatch.load` or :func:`backend_from_sections` (or from the bytes alone
with :func:`backend_from_bytes`). faiss's reader does not guard against hostile input, so only
restore bytes whose integrity was checked: :func:`hashmatch.load` checks that section's
checksum even with ``verify=False``.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt

from hashmatch._backend import (
    Backend,
    BackendBase,
    Buffer,
    RangeSearchResult,
    SearchResult,
    read_meta,
    typed_section,
)
from hashmatch._validation import check_bits, check_max_distance
from hashmatch.distance import check_result_size
from hashmatch.errors import HashmatchError, IndexFormatError, InvalidArgument, InvalidType
from hashmatch.indexes import FlatIndex, MIHIndex, plan_index

__all__ = [
    "BACKENDS",
    "BACKEND_CLASSES",
    "EXACT_BACKENDS",
    "MISSING_ID",
    "Backend",
    "BackendBase",
    "FaissBackend",
    "FaissHNSW",
    "FaissIVF",
    "FaissMultiHash",
    "backend_class",
    "backend_from_bytes",
    "backend_from_sections",
    "backend_spec",
    "is_exact",
    "make_backend",
    "missing_distance",
]

MISSING_ID = -1
"""Id of the padding at the end of a kNN row for which an approximate backend found too few."""

_Faiss = TypeVar("_Faiss", bound="FaissBackend")


def missing_distance(bits: int) -> int:
    """Distance of kNN padding: ``bits + 1``, more than any real distance.

    Examples
    --------
    >>> from hashmatch.backends import missing_distance
    >>> missing_distance(256)
    257
    """
    return check_bits(bits) + 1


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


class FaissBackend(BackendBase):
    """Base of the faiss backends: ids, threads, locking, sorting, serialization.

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

    def _count(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def _next_free_id(self) -> int:
        stored = self.stored_ids()
        return int(stored.max()) + 1 if len(stored) else 0

    def _add_validated(
        self, codes: npt.NDArray[np.uint8], ids: npt.NDArray[np.int64] | None, threads: int
    ) -> npt.NDArray[np.int64]:
        with self._lock.writing():
            if ids is None:
                ids = self._default_ids(len(codes))
            else:
                clash = np.flatnonzero(np.isin(ids, self.stored_ids()))
                if clash.size:
                    raise InvalidArgument(f"ids: id {ids[clash[0]]} is already in the index")
            if len(codes):
                with _omp_threads(self._faiss, threads):
                    index = self._index
                    if index is None:
                        index = self._faiss.IndexBinaryIDMap(self._new_index(codes))
                    index.add_with_ids(codes, ids)
                    self._index = index
        return ids

    def _search_validated(self, codes: npt.NDArray[np.uint8], k: int, threads: int) -> SearchResult:
        with self._lock.reading():
            width = min(k, self.ntotal)
            if width == 0 or len(codes) == 0:
                return SearchResult(
                    np.empty((len(codes), width), dtype=np.int32),
                    np.empty((len(codes), width), dtype=np.int64),
                )
            check_result_size(12 * len(codes) * width, "search")
            with _omp_threads(self._faiss, threads):
                distances, ids = self._knn(codes, width)
        distances = np.asarray(distances, dtype=np.int32)
        ids = np.asarray(ids, dtype=np.int64)
        distances[ids < 0] = self._bits + 1
        ids[ids < 0] = MISSING_ID
        order = np.lexsort((ids, distances))
        return SearchResult(
            np.take_along_axis(distances, order, axis=1), np.take_along_axis(ids, order, axis=1)
        )

    def range_search_validated(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> RangeSearchResult:
        """:meth:`range_search` without the argument checks, for callers that made them
        (``codes`` C-contiguous uint8 (nq, nbytes), ``0 <= radius <= bits``, ``threads >= 1``)."""
        with self._lock.reading():
            if self.ntotal == 0 or len(codes) == 0:
                return _empty_range(len(codes))
            with _omp_threads(self._faiss, threads):
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
    def from_bytes(cls: type[_Faiss], bits: int, params: dict[str, Any], data: object) -> _Faiss:
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
        except (RuntimeError, MemoryError, ValueError) as error:  # bad_alloc on hostile sizes
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
        n = int(index.ntotal)
        # faiss trusts its stream: every count must agree with the others and fit in the data
        if n < 0 or n != int(inner.ntotal) or int(index.id_map.size()) != n or n > len(data):
            raise IndexFormatError(
                f"data: inconsistent faiss index sizes ({n} hashes, {int(inner.ntotal)} in the"
                f" inner index, {int(index.id_map.size())} ids, {len(data)} bytes)"
            )
        backend._configure(inner)
        if n:
            backend._index = index
        return backend

    def to_sections(self) -> tuple[dict[str, Any], dict[str, Buffer]]:
        """Container meta ``{"kind": <class name>, "bits": b, "params": {...}}`` and one
        section, ``faiss``: :meth:`to_bytes`.

        Examples
        --------
        >>> from hashmatch.backends import FaissMultiHash
        >>> meta, sections = FaissMultiHash(64).to_sections()
        >>> meta
        {'kind': 'FaissMultiHash', 'bits': 64, 'params': {'nhash': 8, 'b': 8, 'nflip': 1}}
        >>> sorted(sections)
        ['faiss']
        """
        meta = {"kind": type(self).__name__, "bits": self._bits, "params": self.params}
        return meta, {"faiss": self.to_bytes()}

    @classmethod
    def from_sections(
        cls: type[_Faiss],
        meta: Mapping[str, Any],
        sections: Mapping[str, Buffer],
        where: str,
        *,
        verify: bool = True,  # faiss's one section is always checksummed (see hashmatch.io)
    ) -> _Faiss:
        """The backend :meth:`to_sections` described.

        faiss's reader does not guard against hostile input: :func:`hashmatch.load` checks the
        checksum of the ``faiss`` section before this reads it, whatever ``verify`` says.

        Raises
        ------
        IndexFormatError
            Another kind, unknown fields, bad params or a section that does not hold a faiss
            index of this kind, width and structure.
        """
        params = meta.get("params")
        try:
            bits = read_meta(cls, meta, {"params"}, sections, {"faiss"}, where)
            if not isinstance(params, dict):
                raise IndexFormatError(f"{where}: 'params' is not an object")
            _check_params(cls.name, cls, params)
            return cls.from_bytes(bits, params, typed_section(sections["faiss"], "u1", "", where))
        except IndexFormatError as e:
            raise IndexFormatError(f"{where}: {e}" if where not in str(e) else str(e)) from None
        except HashmatchError as e:
            raise IndexFormatError(f"{where}: bad parameters: {e}") from None

    def stored_ids(self) -> npt.NDArray[np.int64]:
        """The ids of every stored hash, in faiss's order."""
        if self._index is None:
            return np.empty(0, dtype=np.int64)
        ids: npt.NDArray[np.int64] = self._faiss.vector_to_array(self._index.id_map)
        return ids

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
# the registry and the factory

BACKEND_CLASSES: dict[str, type[BackendBase]] = {
    cls.name: cls for cls in (FlatIndex, MIHIndex, FaissHNSW, FaissIVF, FaissMultiHash)
}
"""Every backend class by name (:attr:`Backend.name`)."""
BACKEND_KINDS: dict[str, type[BackendBase]] = {
    cls.__name__: cls for cls in BACKEND_CLASSES.values()
}
"""Every backend class by the ``kind`` its :meth:`~Backend.to_sections` meta carries (the class
name): what :func:`hashmatch.load` and :func:`backend_from_sections` dispatch on."""
_FAISS_CLASSES: dict[str, type[FaissBackend]] = {
    cls.name: cls for cls in (FaissHNSW, FaissIVF, FaissMultiHash)
}
EXACT_BACKENDS = tuple(name for name, cls in BACKEND_CLASSES.items() if cls.exact)
"""Names of the exact backends (our indexes)."""
BACKENDS = tuple(BACKEND_CLASSES)
"""Every backend name; :func:`make_backend` also takes ``"auto"``."""


def backend_class(name: str) -> type[BackendBase]:
    """The class of the backend called ``name`` (one of :data:`BACKENDS`).

    Examples
    --------
    >>> from hashmatch.backends import backend_class
    >>> backend_class("mih").__name__, backend_class("faiss-ivf").exact
    ('MIHIndex', False)
    """
    if not isinstance(name, str) or name not in BACKEND_CLASSES:
        raise InvalidArgument(f"name: expected one of {', '.join(BACKENDS)}; got {name!r}")
    return BACKEND_CLASSES[name]


def _check_params(name: str, cls: type, params: Mapping[str, Any]) -> None:
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


def make_backend(
    name: str,
    bits: int = 256,
    *,
    max_distance: int | None = None,
    n: int | None = None,
    **params: Any,
) -> Backend:
    """A new, empty backend by name: the one factory of indexes.

    Parameters
    ----------
    name : str
        ``"flat"``, ``"mih"`` (exact), ``"faiss-hnsw"``, ``"faiss-ivf"``,
        ``"faiss-multihash"`` (approximate; need faiss), or ``"auto"``: the exact index
        :func:`~hashmatch.plan_index` picks for ``n`` hashes searched at ``max_distance``.
    bits : int, default 256
        Hash width.
    max_distance : int, optional
        The radius most searches will use (default: the width's usual one). An MIHIndex
        (``"mih"`` or chosen by ``"auto"``) sizes its tables for it; the other backends only
        check it (searches at any radius work with every backend).
    n : int, optional
        How many hashes the backend will hold, for ``"auto"`` (default 0); others ignore it.
    **params
        The class's other keyword options: ``mih`` takes ``substrings``; the faiss backends
        those of :class:`FaissHNSW`, :class:`FaissIVF` and :class:`FaissMultiHash`; ``auto``
        none.

    Raises
    ------
    InvalidArgument
        An unknown name (the message lists the valid ones) or parameter, or a bad value.

    Examples
    --------
    >>> from hashmatch.backends import is_exact, make_backend
    >>> make_backend("mih", 64, max_distance=10)
    MIHIndex(bits=64, ntotal=0, substrings=0, max_distance=10)
    >>> make_backend("auto", 256, max_distance=31, n=10_000_000).name
    'mih'
    >>> make_backend("auto", 256, n=1000)
    FlatIndex(bits=256, ntotal=0)
    >>> backend = make_backend("faiss-multihash", 64, nflip=2)
    >>> backend
    FaissMultiHash(bits=64, nhash=8, b=8, nflip=2, ntotal=0)
    >>> is_exact(backend)
    False
    """
    if name == "auto":
        if params:
            raise InvalidArgument(
                f"params: auto takes no parameters (it picks flat or mih); got "
                f"{', '.join(sorted(params))}"
            )
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))):
            raise InvalidType(f"n: expected an integer, got {type(n).__name__}")
        plan = plan_index(0 if n is None else n, bits, max_distance=max_distance)
        name = "mih" if plan.kind == "MIHIndex" else "flat"
    cls = backend_class(name)
    _check_params(name, cls, params)
    if max_distance is not None:
        check_max_distance(max_distance, check_bits(bits))
        if cls is MIHIndex:
            params["max_distance"] = max_distance
    factory: Callable[..., Backend] = cls
    return factory(bits, **params)


def backend_from_sections(
    meta: Mapping[str, Any], sections: Mapping[str, Buffer], where: str, *, verify: bool = True
) -> Backend:
    """The backend whose :meth:`~Backend.to_sections` gave ``meta`` and ``sections``,
    dispatched on ``meta["kind"]`` (:data:`BACKEND_KINDS`) and validated in full (with
    ``verify``, derived structures too: an MIHIndex's tables against its rows).

    Raises
    ------
    IndexFormatError
        An unknown kind or inconsistent contents; the message starts with ``where``.

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import backend_from_sections
    >>> index = hm.FlatIndex(64)
    >>> _ = index.add(["00000000000000ff"], ids=[7])
    >>> backend_from_sections(*index.to_sections(), where="example").contents()[0].tolist()
    [7]
    """
    kind = meta.get("kind")
    if not isinstance(kind, str) or kind not in BACKEND_KINDS:
        raise IndexFormatError(f"{where}: 'meta' does not describe a known index: {dict(meta)!r}")
    backend: Backend = BACKEND_KINDS[kind].from_sections(meta, sections, where, verify=verify)
    return backend


def backend_from_bytes(name: str, bits: int, params: dict[str, Any], data: object) -> Backend:
    """Restore a faiss backend from :meth:`FaissBackend.to_bytes`, its name, bits and params.

    Exact backends are not stored as bytes (see :func:`backend_from_sections`).

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
    backend_class(name)
    if name not in _FAISS_CLASSES:
        raise InvalidArgument(
            f"name: expected a faiss backend ({', '.join(_FAISS_CLASSES)}) to restore from "
            f"bytes, got {name!r}; exact backends are rebuilt from their sections"
        )
    if not isinstance(params, dict):
        raise InvalidType(f"params: expected a dict, got {type(params).__name__}")
    cls = _FAISS_CLASSES[name]
    _check_params(name, cls, params)
    return cls.from_bytes(bits, params, data)


def is_exact(backend: Backend) -> bool:
    """Whether ``backend`` always returns exact results: its ``exact`` attribute (``False``
    when it has none).

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import is_exact
    >>> is_exact(hm.FlatIndex(64))
    True
    """
    return getattr(backend, "exact", False) is True


def backend_spec(backend: Backend) -> tuple[str, dict[str, Any]]:
    """``(backend.name, backend.params)``: ``make_backend(name, backend.bits, **params)``
    builds an empty backend configured like ``backend``; both are JSON-able.

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.backends import backend_spec
    >>> backend_spec(hm.MIHIndex(256))
    ('mih', {'max_distance': 31, 'substrings': None})
    """
    name = getattr(type(backend), "name", None)
    if not isinstance(name, str) or not isinstance(backend, BACKEND_CLASSES.get(name, ())):
        raise InvalidType(
            f"backend: expected a backend from make_backend, got {type(backend).__name__}"
        )
    return name, backend.params
