"""What every search backend shares: the result types, the :class:`Backend` protocol and the
base class that validates arguments once for all of them.

A backend (our exact :class:`~hashmatch.FlatIndex` and :class:`~hashmatch.MIHIndex`, faiss's
approximate indexes in :mod:`hashmatch.backends`) is known by its public attributes only:

- ``name`` (``"flat"``, ``"mih"``, ``"faiss-hnsw"``, ...), ``params`` (JSON-able keywords such
  that ``make_backend(name, bits, **params)`` builds an empty backend configured the same way),
  ``exact``, ``bits`` and ``len()``;
- ``add``, ``search``, ``range_search`` (arguments validated) and ``range_search_validated``
  (arguments already validated: the hot path of a hash list's segments);
- ``to_sections() -> (meta, sections)`` and the classmethod ``from_sections(meta, sections,
  where)``: the backend as container sections (see :mod:`hashmatch.io`), which is also how it
  pickles.

Only :mod:`hashmatch.backends` knows the classes by name; the container and the hash lists ask
this protocol, never a backend's private fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar, runtime_checkable

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
from hashmatch.errors import IndexFormatError, InvalidArgument

__all__ = ["Backend", "BackendBase", "HashWidth", "RangeSearchResult", "SearchResult"]

Buffer = bytes | bytearray | memoryview | npt.NDArray[Any]
"""A section's contents: any C-contiguous buffer."""

_B = TypeVar("_B", bound="BackendBase")


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


@runtime_checkable
class Backend(Protocol):
    """What a hash list and the container need from an index; every class of
    :data:`hashmatch.backends.BACKEND_CLASSES` satisfies it.

    ``add`` stores hashes under int64 ids (by default continuing after the largest stored id).
    ``search`` and ``range_search`` return :class:`~hashmatch.SearchResult` and
    :class:`~hashmatch.RangeSearchResult`, sorted by (distance, id) within each query, with an
    inclusive radius. Approximate backends may miss hashes and pad kNN rows (see
    :mod:`hashmatch.backends`), but every distance they report is true.
    """

    name: ClassVar[str]
    """The backend's name for :func:`~hashmatch.backends.make_backend`."""
    exact: ClassVar[bool]
    """Whether every search returns the exact answer."""

    @property
    def bits(self) -> int:
        """Hash width in bits."""
        ...

    @property
    def params(self) -> dict[str, Any]:
        """JSON-able keywords: ``make_backend(name, bits, **params)`` builds an empty backend
        configured the same way."""
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

    def range_search_validated(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> RangeSearchResult:
        """:meth:`range_search` for arguments already validated."""
        ...

    def to_sections(self) -> tuple[dict[str, Any], dict[str, Buffer]]:
        """The backend as container meta (JSON-ready, naming its ``kind``) and sections."""
        ...

    @classmethod
    def from_sections(
        cls,
        meta: Mapping[str, Any],
        sections: Mapping[str, Buffer],
        where: str,
        *,
        verify: bool = True,
    ) -> Backend:
        """The backend that :meth:`to_sections` described; raises IndexFormatError. With
        ``verify``, derived structures are also checked against what they derive from."""
        ...


class HashWidth:
    """``bits`` and ``nbytes`` of an object holding hashes of one width (set ``_bits``)."""

    _bits: int

    @property
    def bits(self) -> int:
        """Hash width in bits."""
        return self._bits

    @property
    def nbytes(self) -> int:
        """Hash width in bytes."""
        return self._bits // 8


class BackendBase(HashWidth):
    """Argument validation, default ids and pickling shared by every backend.

    Subclasses set :attr:`name` and :attr:`exact` and provide ``_count``, ``_next_free_id``,
    ``_add_validated``, ``_search_validated``, :meth:`range_search_validated`, :attr:`params`,
    :meth:`to_sections` and :meth:`from_sections`.
    """

    name: ClassVar[str]
    """The backend's name for :func:`~hashmatch.backends.make_backend`."""
    exact: ClassVar[bool]
    """Whether every search returns the exact answer."""

    # -- what subclasses provide --------------------------------------------------------------

    def _count(self) -> int:
        raise NotImplementedError

    def _next_free_id(self) -> int:
        """Where default ids start (may be ``2**63``: none is left)."""
        raise NotImplementedError

    def _add_validated(
        self, codes: npt.NDArray[np.uint8], ids: npt.NDArray[np.int64] | None, threads: int
    ) -> npt.NDArray[np.int64]:
        raise NotImplementedError

    def _search_validated(self, codes: npt.NDArray[np.uint8], k: int, threads: int) -> SearchResult:
        raise NotImplementedError

    def range_search_validated(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> RangeSearchResult:
        """:meth:`range_search` without the argument checks, for callers that made them.

        Parameters
        ----------
        codes : numpy.ndarray
            C-contiguous uint8 array (nq, bits / 8), as :func:`hashmatch.codes` validation gives.
        radius : int
            0 to ``bits``, inclusive.
        threads : int
            A positive thread count (see ``check_threads``).
        """
        raise NotImplementedError

    @property
    def params(self) -> dict[str, Any]:
        """JSON-able keywords: ``make_backend(name, bits, **params)`` builds an empty backend
        configured the same way."""
        raise NotImplementedError

    def to_sections(self) -> tuple[dict[str, Any], dict[str, Buffer]]:
        """The backend as container meta and sections (see :mod:`hashmatch.io`)."""
        raise NotImplementedError

    @classmethod
    def from_sections(
        cls: type[_B],
        meta: Mapping[str, Any],
        sections: Mapping[str, Buffer],
        where: str,
        *,
        verify: bool = True,
    ) -> _B:
        """The backend :meth:`to_sections` described, validated in full."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        """Number of stored hashes."""
        return self._count()

    def __len__(self) -> int:
        return self._count()

    def add(
        self, hashes: object, ids: object = None, *, threads: int | None = None
    ) -> npt.NDArray[np.int64]:
        """Store hashes.

        Parameters
        ----------
        hashes : hashes
            Hex strings, bytes, ImageHash objects or a packed uint8 array (n, nbytes) of this
            index's width.
        ids : array_like of int, optional
            Non-negative int64 ids, unique within the batch and not already stored. By default
            ids continue from one more than the largest stored id (0, 1, 2, ... for a new index).
        threads : int, optional
            Threads a faiss backend may use to build (``None``: every available core); our
            exact indexes add on the calling thread.

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
        nthreads = check_threads(threads)
        id_array = None if ids is None else check_ids(ids, len(codes)).copy()
        return self._add_validated(codes, id_array, nthreads)

    def _default_ids(self, n: int) -> npt.NDArray[np.int64]:
        """``n`` ids continuing after the largest stored one."""
        start = self._next_free_id()
        if n and start + n - 1 > np.iinfo(np.int64).max:
            raise InvalidArgument(
                "ids: default ids would pass 2**63 - 1 (they continue after the largest "
                "stored id); pass ids= explicitly"
            )
        return np.arange(start, start + n, dtype=np.int64)

    def search(self, queries: object, k: int, *, threads: int | None = None) -> SearchResult:
        """k nearest neighbours of each query: exact for exact backends.

        Parameters
        ----------
        queries : hashes
            One hash or a batch (nq hashes) of this index's width.
        k : int
            Neighbours wanted (>= 1). When fewer hashes are stored, all of them are returned.
        threads : int, optional
            Threads to use; ``None`` (default) uses every available core.

        Returns
        -------
        SearchResult
            ``(distances, ids)``, each of shape (nq, min(k, ntotal)), sorted by (distance, id)
            per row; a single query gives nq = 1. Exact backends never pad; an approximate
            one ends a row it could not fill with id ``-1`` and distance ``bits + 1``.
        """
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        k = check_k(k)
        return self._search_validated(codes, k, check_threads(threads))

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
            ``(lims, distances, ids)`` in CSR layout, sorted by distance then id per query. An
            approximate backend may miss some matches, never reports a non-match.
        """
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        radius = check_max_distance(max_distance, self._bits)
        return self.range_search_validated(codes, radius, check_threads(threads))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as its container sections: unpickling borrows them, with no rebuild."""
        meta, sections = self.to_sections()
        return (_unpickle, (type(self), meta, sections))


def _unpickle(
    cls: type[BackendBase], meta: dict[str, Any], sections: dict[str, Buffer]
) -> BackendBase:
    return cls.from_sections(meta, sections, f"pickled {cls.__name__}")


# --- reading sections -------------------------------------------------------------------------


def typed_section(section: Buffer, dtype: str, name: str, where: str) -> npt.NDArray[Any]:
    """A zero-copy native-endian array over a section (a copy only if misaligned or on a
    big-endian CPU)."""
    raw = np.frombuffer(section, dtype=np.uint8)  # any C-contiguous buffer, as bytes
    itemsize = np.dtype(dtype).itemsize
    if raw.nbytes % itemsize:
        raise IndexFormatError(
            f"{where}: section {name!r} is {raw.nbytes} bytes, not a multiple of {itemsize}"
        )
    array = raw.view(dtype)
    if not array.flags.aligned or not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def json_int(value: object, name: str, where: str, top: int = 2**63 - 1) -> int:
    """A JSON integer from a file, in ``[0, top]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise IndexFormatError(f"{where}: {name!r} must be an integer in [0, {top}], got {value!r}")
    return value


def check_keys(obj: Mapping[str, Any], allowed: set[str], what: str, where: str) -> None:
    """Refuse fields of a file's JSON object that this version does not know."""
    if set(obj) - allowed:
        raise IndexFormatError(f"{where}: {what!r} has unknown fields {sorted(set(obj) - allowed)}")


def read_meta(
    cls: type,
    meta: Mapping[str, Any],
    fields: Iterable[str],
    sections: Mapping[str, Buffer],
    names: Iterable[str],
    where: str,
) -> int:
    """Check what every backend's saved meta shares: ``kind`` is the class's name, no fields
    but ``kind``, ``bits`` and ``fields``, exactly the sections ``names``; returns ``bits``."""
    if meta.get("kind") != cls.__name__:
        raise IndexFormatError(
            f"{where}: 'meta' does not describe a {cls.__name__}: {dict(meta)!r}"
        )
    check_keys(meta, {"kind", "bits", *fields}, "meta", where)
    if set(sections) != set(names):
        raise IndexFormatError(
            f"{where}: {cls.__name__} sections {sorted(sections)}, expected {sorted(names)}"
        )
    return check_bits(json_int(meta.get("bits"), "bits", where))
