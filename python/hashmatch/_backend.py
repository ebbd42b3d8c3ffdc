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
from typing import (
    Any,
    ClassVar,
    Literal,
    NamedTuple,
    Protocol,
    TypeVar,
    overload,
    runtime_checkable,
)

import numpy as np
import numpy.typing as npt

from hashmatch._validation import (
    as_codes,
    as_variant_codes,
    check_bits,
    check_ids,
    check_k,
    check_max_distance,
    check_threads,
)
from hashmatch.errors import IndexFormatError, InvalidArgument, InvalidType

__all__ = [
    "Backend",
    "BackendBase",
    "DihedralRangeSearchResult",
    "DihedralSearchResult",
    "HashWidth",
    "RangeSearchResult",
    "SearchResult",
    "best_variants",
]

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


class DihedralSearchResult(NamedTuple):
    """k-nearest-neighbour results of variant-stack queries (``dihedral=True``); unpacks as
    ``distances, ids, variants``.

    A stored hash's distance to a query is the smallest over the query's variants; each stored
    hash appears at most once per query.

    Attributes
    ----------
    distances : numpy.ndarray
        int32, shape (nq, min(k, ntotal)), ascending along each row.
    ids : numpy.ndarray
        int64, same shape; ties in distance are ordered by id.
    variants : numpy.ndarray
        uint8, same shape: the variant that reached the distance, an index into
        :data:`hashmatch.TRANSFORMS` (the first such variant on a tie).
    """

    distances: npt.NDArray[np.int32]
    ids: npt.NDArray[np.int64]
    variants: npt.NDArray[np.uint8]


class DihedralRangeSearchResult(NamedTuple):
    """Range-search results of variant-stack queries (``dihedral=True``) in CSR layout;
    unpacks as ``lims, distances, ids, variants``.

    Query ``i`` matched ``ids[lims[i]:lims[i + 1]]``, each stored hash once, at the smallest
    distance over the query's variants, sorted by distance then id.

    Attributes
    ----------
    lims : numpy.ndarray
        int64, shape (nq + 1,).
    distances : numpy.ndarray
        int32, shape (lims[-1],).
    ids : numpy.ndarray
        int64, shape (lims[-1],).
    variants : numpy.ndarray
        uint8, shape (lims[-1],): the variant that reached the distance, an index into
        :data:`hashmatch.TRANSFORMS` (the first such variant on a tie).
    """

    lims: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int32]
    ids: npt.NDArray[np.int64]
    variants: npt.NDArray[np.uint8]

    @property
    def nqueries(self) -> int:
        """Number of queries."""
        return len(self.lims) - 1

    def query(
        self, i: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
        """``(distances, ids, variants)`` of query ``i``."""
        lo, hi = int(self.lims[i]), int(self.lims[i + 1])
        return self.distances[lo:hi], self.ids[lo:hi], self.variants[lo:hi]


def best_variants(
    owners: npt.NDArray[np.int64],
    distances: npt.NDArray[np.int32],
    ids: npt.NDArray[np.int64],
    variants: npt.NDArray[np.uint8],
    nq: int,
) -> DihedralRangeSearchResult:
    """Keep, per (query, id), the hit of smallest (distance, variant), and lay the hits out per
    query sorted by (distance, id): the merge of a variant stack's separate searches.

    ``owners[j]`` is the query of hit ``j``; the inputs are parallel arrays in any order.
    """
    order = np.lexsort((variants, distances, ids, owners))
    owners, distances, ids, variants = owners[order], distances[order], ids[order], variants[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = (owners[1:] != owners[:-1]) | (ids[1:] != ids[:-1])
    owners, distances, ids, variants = owners[first], distances[first], ids[first], variants[first]
    order = np.lexsort((ids, distances, owners))
    lims = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(np.bincount(owners, minlength=nq), out=lims[1:])
    return DihedralRangeSearchResult(
        lims,
        np.ascontiguousarray(distances[order], dtype=np.int32),
        np.ascontiguousarray(ids[order], dtype=np.int64),
        np.ascontiguousarray(variants[order], dtype=np.uint8),
    )


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

    def range_search_variants_validated(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> DihedralRangeSearchResult:
        """:meth:`range_search` with ``dihedral=True`` for arguments already validated."""
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

    def _search_variants_validated(
        self, codes: npt.NDArray[np.uint8], k: int, threads: int
    ) -> DihedralSearchResult:
        """kNN of variant stacks ``codes`` (nq, v, nbytes): by default each variant searched as
        its own query, merged per query keeping each id's best variant. Exact for an exact
        backend: an id among the k best by its best variant is among that variant's k best."""
        nq, v, nbytes = codes.shape
        distances, ids = self._search_validated(codes.reshape(nq * v, nbytes), k, threads)
        width = distances.shape[1]
        owners = np.repeat(np.arange(nq, dtype=np.int64), v * width)
        variant = np.tile(np.repeat(np.arange(v, dtype=np.uint8), width), nq)
        keep = ids.ravel() >= 0  # an approximate backend pads short rows with -1
        merged = best_variants(
            owners[keep], distances.ravel()[keep], ids.ravel()[keep], variant[keep], nq
        )
        kk = min(k, self._count())
        out_d = np.full((nq, kk), self._bits + 1, dtype=np.int32)
        out_i = np.full((nq, kk), -1, dtype=np.int64)
        out_v = np.zeros((nq, kk), dtype=np.uint8)
        counts = np.minimum(np.diff(merged.lims), kk)
        rows = np.repeat(np.arange(nq), counts)
        cols = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        src = np.repeat(merged.lims[:-1], counts) + cols
        out_d[rows, cols] = merged.distances[src]
        out_i[rows, cols] = merged.ids[src]
        out_v[rows, cols] = merged.variants[src]
        return DihedralSearchResult(out_d, out_i, out_v)

    def range_search_variants_validated(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> DihedralRangeSearchResult:
        """:meth:`range_search` with ``dihedral=True`` without the argument checks.

        ``codes`` is a C-contiguous uint8 array (nq, v, nbytes) of variant stacks. By default
        each variant is searched as its own query and the hits merged, keeping each stored
        hash's best variant per query; exact backends override this with one pass.
        """
        nq, v, nbytes = codes.shape
        lims, distances, ids = self.range_search_validated(
            codes.reshape(nq * v, nbytes), radius, threads
        )
        rows = np.repeat(np.arange(nq * v, dtype=np.int64), np.diff(lims))
        return best_variants(rows // v, distances, ids, (rows % v).astype(np.uint8), nq)

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

    @overload
    def search(
        self,
        queries: object,
        k: int,
        *,
        dihedral: Literal[False] = False,
        threads: int | None = None,
    ) -> SearchResult: ...
    @overload
    def search(
        self, queries: object, k: int, *, dihedral: Literal[True], threads: int | None = None
    ) -> DihedralSearchResult: ...
    @overload
    def search(
        self, queries: object, k: int, *, dihedral: bool, threads: int | None = None
    ) -> SearchResult | DihedralSearchResult: ...

    def search(
        self, queries: object, k: int, *, dihedral: bool = False, threads: int | None = None
    ) -> SearchResult | DihedralSearchResult:
        """k nearest neighbours of each query: exact for exact backends.

        Parameters
        ----------
        queries : hashes
            One hash or a batch (nq hashes) of this index's width. With ``dihedral=True``,
            variant stacks: a uint8 array (nq, 8, nbytes) or nq lists of 8 hashes (see
            :mod:`hashmatch.dihedral`; ``hash_image(..., dihedral=True)`` computes them).
        k : int
            Neighbours wanted (>= 1). When fewer hashes are stored, all of them are returned.
        dihedral : bool, optional
            Match each query by its best variant (a rotated or mirrored upload): a stored
            hash's distance is the smallest over the 8 variants, and it is reported once.
        threads : int, optional
            Threads to use; ``None`` (default) uses every available core.

        Returns
        -------
        SearchResult or DihedralSearchResult
            ``(distances, ids)`` (and with ``dihedral=True`` the ``variants`` that matched),
            each of shape (nq, min(k, ntotal)), sorted by (distance, id) per row; a single
            query gives nq = 1. Exact backends never pad; an approximate one ends a row it
            could not fill with id ``-1`` and distance ``bits + 1``.
        """
        k = check_k(k)
        nthreads = check_threads(threads)
        if check_dihedral(dihedral):
            stacks, _ = as_variant_codes(queries, name="queries", nbytes=self.nbytes)
            return self._search_variants_validated(stacks, k, nthreads)
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        return self._search_validated(codes, k, nthreads)

    @overload
    def range_search(
        self,
        queries: object,
        max_distance: int,
        *,
        dihedral: Literal[False] = False,
        threads: int | None = None,
    ) -> RangeSearchResult: ...
    @overload
    def range_search(
        self,
        queries: object,
        max_distance: int,
        *,
        dihedral: Literal[True],
        threads: int | None = None,
    ) -> DihedralRangeSearchResult: ...
    @overload
    def range_search(
        self, queries: object, max_distance: int, *, dihedral: bool, threads: int | None = None
    ) -> RangeSearchResult | DihedralRangeSearchResult: ...

    def range_search(
        self,
        queries: object,
        max_distance: int,
        *,
        dihedral: bool = False,
        threads: int | None = None,
    ) -> RangeSearchResult | DihedralRangeSearchResult:
        """Every stored hash within ``max_distance`` of each query (inclusive).

        Parameters
        ----------
        queries : hashes
            One hash or a batch (nq hashes) of this index's width. With ``dihedral=True``,
            variant stacks: a uint8 array (nq, 8, nbytes) or nq lists of 8 hashes.
        max_distance : int
            Largest distance reported, from 0 to ``bits``; inclusive, so PDQ's standard match
            "distance <= 31" is ``max_distance=31``.
        dihedral : bool, optional
            Match each query by its best variant: a stored hash matches when any of the 8
            variants is within ``max_distance``, and is reported once, at its best variant.
        threads : int, optional
            Threads to use; ``None`` (default) uses every available core.

        Returns
        -------
        RangeSearchResult or DihedralRangeSearchResult
            ``(lims, distances, ids)`` in CSR layout (and with ``dihedral=True`` the
            ``variants`` that matched), sorted by distance then id per query. An approximate
            backend may miss some matches, never reports a non-match.

        Examples
        --------
        >>> import numpy as np
        >>> index = hm.FlatIndex(bits=8)
        >>> _ = index.add(["0f", "f0"])
        >>> stacks = np.array([[[0x0F]] * 7 + [[0xF1]]], dtype=np.uint8)  # 1 query, 8 variants
        >>> r = index.range_search(stacks, 1, dihedral=True)
        >>> r.ids.tolist(), r.distances.tolist(), r.variants.tolist()
        ([0, 1], [0, 1], [0, 7])
        """
        radius = check_max_distance(max_distance, self._bits)
        nthreads = check_threads(threads)
        if check_dihedral(dihedral):
            stacks, _ = as_variant_codes(queries, name="queries", nbytes=self.nbytes)
            return self.range_search_variants_validated(stacks, radius, nthreads)
        codes, _ = as_codes(queries, name="queries", nbytes=self.nbytes)
        return self.range_search_validated(codes, radius, nthreads)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as its container sections: unpickling borrows them, with no rebuild."""
        meta, sections = self.to_sections()
        return (_unpickle, (type(self), meta, sections))


def check_dihedral(value: object) -> bool:
    """``dihedral=`` must be a real bool: a truthy string or array is a mistake."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidType(f"dihedral: expected True or False, got {type(value).__name__}")
    return bool(value)


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
