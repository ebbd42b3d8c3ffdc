"""Exact search indexes over packed hashes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from hashmatch import _core
from hashmatch._backend import (
    BackendBase,
    Buffer,
    DihedralRangeSearchResult,
    DihedralSearchResult,
    RangeSearchResult,
    SearchResult,
    check_keys,
    json_int,
    read_meta,
    typed_section,
)
from hashmatch._validation import (
    check_bits,
    check_count,
    check_dihedral,
    check_id_list,
    check_max_distance,
)
from hashmatch.dihedral import TRANSFORMS
from hashmatch.distance import check_result_size
from hashmatch.errors import HashmatchError, IndexFormatError, InvalidArgument, InvalidType
from hashmatch.hashtypes import default_max_distance as default_max_distance  # re-exported

__all__ = [
    "DihedralRangeSearchResult",
    "DihedralSearchResult",
    "FlatIndex",
    "IndexPlan",
    "MIHIndex",
    "RangeSearchResult",
    "SearchResult",
    "plan_index",
]

LAYOUT_VERSION = 1
"""Version of the saved search structures (``meta["layout"]["version"]``)."""

_Index = TypeVar("_Index", bound="_ExactIndex")
_Meta = Mapping[str, Any]
_Saved = dict[str, Any]
"""Arrays and sizes of a saved index, as ``_core.IndexCore(..., saved=)`` reads them."""


class _ExactIndex(BackendBase):
    """What our exact indexes share: a C++ core storing hashes with int64 ids, searched by SIMD
    kernels, and saved as the core's own arrays."""

    exact: ClassVar[bool] = True
    _SECTION_TYPES: ClassVar[dict[str, str]]
    """Section name -> little-endian dtype, in the order :meth:`to_sections` gives them."""

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

    def _count(self) -> int:
        return int(self._core.ntotal)

    def memory_bytes(self) -> int:
        """Bytes this index allocated for its hashes, ids and search structures.

        An index from :func:`hashmatch.load` reads the file's bytes in place (mapped or read
        into memory) and counts only what it has copied since, on ``add`` or ``remove``.
        """
        return int(self._core.memory_bytes())

    def _next_free_id(self) -> int:
        start = int(self._core.next_id)
        # next_id saturates at 2**63 - 1, so there it no longer says what is free.
        return start + 1 if start == np.iinfo(np.int64).max else start

    def _add_validated(
        self, codes: npt.NDArray[np.uint8], ids: npt.NDArray[np.int64] | None, threads: int
    ) -> npt.NDArray[np.int64]:
        id_array = self._default_ids(len(codes)) if ids is None else ids
        self._core.add(codes, id_array)
        return id_array

    def _search_validated(self, codes: npt.NDArray[np.uint8], k: int, threads: int) -> SearchResult:
        check_result_size(12 * len(codes) * min(k, self.ntotal), "search")
        distances, ids = self._core.search(codes, k, threads)
        return SearchResult(distances, ids)

    def range_search_validated(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> RangeSearchResult:
        """:meth:`range_search` without the argument checks, for callers that made them
        (``codes`` C-contiguous uint8 (nq, nbytes), ``0 <= radius <= bits``, ``threads >= 1``)."""
        lims, distances, ids = self._core.range_search(codes, radius, threads)
        return RangeSearchResult(lims, distances, ids)

    def _search_variants_validated(
        self, codes: npt.NDArray[np.uint8], k: int, threads: int
    ) -> DihedralSearchResult:
        """kNN of variant stacks (nq, v, nbytes) in one pass of the C++ core: every stored
        hash is compared with all variants at once and kept at its best one."""
        check_result_size(13 * len(codes) * min(k, self.ntotal), "search")
        distances, ids, variants = self._core.search_variants(codes, k, threads)
        return DihedralSearchResult(distances, ids, variants)

    def range_search_variants_validated(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> DihedralRangeSearchResult:
        """:meth:`range_search` with ``dihedral=True`` without the argument checks (``codes``
        C-contiguous uint8 (nq, v, nbytes), ``0 <= radius <= bits``, ``threads >= 1``), in one
        pass of the C++ core: each stored hash is compared with all variants at once (FlatIndex:
        one multi-needle scan; MIHIndex: every variant's buckets probed, each candidate verified
        once) and reported once, at its best variant."""
        lims, distances, ids, variants = self._core.range_search_variants(codes, radius, threads)
        return DihedralRangeSearchResult(lims, distances, ids, variants)

    def contents(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
        """Copies of the stored ``(ids, codes)`` in insertion order."""
        ids, codes = self._core.contents()
        return ids, codes

    # -- container sections ---------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "bits": self._bits}

    def to_sections(self) -> tuple[dict[str, Any], dict[str, Buffer]]:
        """The meta and native sections of this index, as :func:`hashmatch.save` writes them.

        An MIHIndex is compacted first (:meth:`MIHIndex.compact`), so the sections hold exactly
        its live hashes, all in the tables. The arrays are copies taken under the index's lock
        (a consistent snapshot even while other threads add or remove); section names are at
        most 16 characters, leaving room for a prefix within the container's 24.

        Returns
        -------
        meta : dict
            JSON-ready: ``kind``, ``bits``, parameters and ``layout`` (see :mod:`hashmatch.io`).
        sections : dict of str to numpy.ndarray
            Little-endian arrays by section name.

        Examples
        --------
        >>> import hashmatch as hm
        >>> index = hm.FlatIndex(64)
        >>> _ = index.add(["00000000000000ff"])
        >>> meta, sections = index.to_sections()
        >>> meta["layout"], sorted(sections)
        ({'version': 1, 'n': 1, 'next_id': 1}, ['ids', 'tiles'])
        """
        arrays = self._core.export()
        meta = self._meta()
        layout: dict[str, Any] = {
            "version": LAYOUT_VERSION,
            "n": int(arrays.pop("n")),
            "next_id": int(arrays.pop("next_id")),
        }
        if "tables" in arrays:
            layout["tables"] = [list(t) for t in arrays.pop("tables")]
        meta["layout"] = layout
        types = self._SECTION_TYPES
        return meta, {name: arrays[name].astype(types[name], copy=False) for name in types}

    @classmethod
    def from_sections(
        cls: type[_Index],
        meta: Mapping[str, Any],
        sections: Mapping[str, Buffer],
        where: str,
        *,
        verify: bool = True,
    ) -> _Index:
        """An index over saved sections, validated in full, zero-copy where possible.

        The index reads the section buffers in place (a memory-mapped file's pages) and keeps
        them alive; its first ``add`` or ``remove`` copies what it changes, so the buffers are
        never written. Files without a ``layout`` (hashmatch 0.1.0) are rebuilt by adding
        their hashes.

        The structure is always checked (sizes, table layout, bucket starts, slots below n,
        code padding, ids), so no search or update can crash or read out of bounds, whatever
        the sections hold. An MIHIndex's tables are derived from its rows: with ``verify=True``
        each table is also checked against the rows, in one linear pass per table (its slots
        list every row exactly once, each in the bucket and with the residual byte that row's
        code gives), so a loaded index answers exactly like a :class:`FlatIndex` over its
        hashes. ``verify=False`` skips that pass (0.5 to 0.8 s for 10M PDQ hashes on two
        cores: it reads every row once per table, in random order). Tables that disagree with
        the rows (a crafted or damaged file) then make range searches miss stored hashes, and
        ``search`` and ``range_search`` may disagree. A FlatIndex derives nothing: its
        ``tiles`` are the codes themselves, so both settings check the same.

        Parameters
        ----------
        meta : mapping
            The decoded meta (as :meth:`to_sections` gives it); its ``kind`` must be this
            class's name.
        sections : mapping of str to buffer
            Exactly the index's sections, by the names :meth:`to_sections` gives them.
        where : str
            Names the source (a file, a section prefix) in error messages.
        verify : bool, default True
            Check an MIHIndex's tables against its rows (exact answers guaranteed); see above.

        Raises
        ------
        IndexFormatError
            Another kind, an unknown layout, missing or unexpected sections, or inconsistent
            contents (sizes, table layout, bucket starts, slots, code padding, negative or
            duplicate ids; with ``verify``, a table entry that disagrees with its row, naming
            the table and its section).

        Examples
        --------
        >>> import hashmatch as hm
        >>> index = hm.MIHIndex(64)
        >>> _ = index.add(hm.datasets.random_codes(2000, 64))
        >>> copy = hm.MIHIndex.from_sections(*index.to_sections(), where="example")
        >>> len(copy), copy.substrings == index.substrings
        (2000, True)
        """
        try:
            if "layout" not in meta:
                return cls._from_legacy(meta, sections, where)
            layout = meta["layout"]
            if not isinstance(layout, dict):
                raise IndexFormatError(f"{where}: 'layout' is not an object")
            if layout.get("version") != LAYOUT_VERSION:
                raise IndexFormatError(
                    f"{where}: index layout version {layout.get('version')!r} (this hashmatch "
                    f"reads {LAYOUT_VERSION}; upgrade to read newer files)"
                )
            fields = {"layout", *cls._PARAM_FIELDS}
            bits = read_meta(cls, meta, fields, sections, cls._SECTION_TYPES, where)
            check_keys(layout, {"version", "n", "next_id", *cls._LAYOUT_FIELDS}, "layout", where)
            saved: dict[str, Any] = {
                "n": json_int(layout.get("n"), "n", where),
                "next_id": json_int(layout.get("next_id"), "next_id", where),
            }
            for name, dtype in cls._SECTION_TYPES.items():
                saved[name] = typed_section(sections[name], dtype, name, where)
            return cls._borrow(bits, saved, meta, where, verify)
        except IndexFormatError:
            raise
        except (HashmatchError, OverflowError, TypeError, ValueError) as e:
            raise IndexFormatError(f"{where}: inconsistent contents: {e}") from None

    _PARAM_FIELDS: ClassVar[tuple[str, ...]] = ()
    _LAYOUT_FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _borrow(
        cls: type[_Index], bits: int, saved: _Saved, meta: _Meta, where: str, verify: bool
    ) -> _Index:
        """An index over the checked ``saved`` arrays, whose core checks their structure (and,
        with ``verify``, what is derived from the codes against the codes)."""
        raise NotImplementedError

    @classmethod
    def _from_legacy(
        cls: type[_Index], meta: Mapping[str, Any], sections: Mapping[str, Buffer], where: str
    ) -> _Index:
        """Files of hashmatch 0.1.0: ids and n x bits/8 code bytes, added to a new index."""
        bits = read_meta(cls, meta, cls._PARAM_FIELDS, sections, ("ids", "codes"), where)
        index = cls(**{k: v for k, v in meta.items() if k != "kind"})
        ids = typed_section(sections["ids"], "<i8", "ids", where)
        raw = typed_section(sections["codes"], "u1", "codes", where)
        if len(raw) != len(ids) * (bits // 8):
            raise IndexFormatError(
                f"{where}: section 'codes' holds {len(raw)} bytes, expected {len(ids)} x "
                f"{bits // 8}"
            )
        if len(ids):
            index.add(raw.reshape(len(ids), bits // 8), ids)
        return index


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

    name: ClassVar[str] = "flat"
    _SECTION_TYPES: ClassVar[dict[str, str]] = {"ids": "<i8", "tiles": "<u8"}

    def __init__(self, bits: int = 256) -> None:
        super().__init__(_core.IndexCore("flat", check_bits(bits)))

    @property
    def params(self) -> dict[str, Any]:
        """A FlatIndex has no parameters: ``{}``."""
        return {}

    def __repr__(self) -> str:
        return f"FlatIndex(bits={self._bits}, ntotal={self.ntotal})"

    @classmethod
    def _borrow(cls, bits: int, saved: _Saved, meta: _Meta, where: str, verify: bool) -> FlatIndex:
        # The tiles are the codes, interleaved: nothing is derived from them to cross-check.
        return cls._from_core(_core.IndexCore("flat", bits, saved=saved))


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

    name: ClassVar[str] = "mih"
    _SECTION_TYPES: ClassVar[dict[str, str]] = {
        "ids": "<i8",
        "rows": "<u8",
        "starts": "<u4",
        "residual": "u1",
        "slot": "<u4",
    }
    _PARAM_FIELDS = ("max_distance", "substrings")
    _LAYOUT_FIELDS = ("tables",)

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

        Parameters
        ----------
        ids : int or sequence of int
            One id or several (unique, non-negative); an empty sequence removes nothing.

        Returns
        -------
        int
            How many hashes were removed. Other ids are never renumbered.
        """
        return int(self._core.remove(check_id_list(ids, name="ids")))

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

    @property
    def params(self) -> dict[str, Any]:
        """``max_distance`` and ``substrings`` (``None`` unless fixed at construction)."""
        return {"max_distance": self._max_distance, "substrings": self._fixed_substrings or None}

    def _meta(self) -> dict[str, Any]:
        return {**super()._meta(), **self.params}

    @classmethod
    def _borrow(cls, bits: int, saved: _Saved, meta: _Meta, where: str, verify: bool) -> MIHIndex:
        radius = check_max_distance(json_int(meta.get("max_distance"), "max_distance", where), bits)
        fixed = meta.get("substrings")
        count = 0 if fixed is None else _check_substrings(fixed, bits)
        tables = meta["layout"].get("tables")
        if not isinstance(tables, list) or not all(
            isinstance(t, list) and len(t) == 3 for t in tables
        ):
            raise IndexFormatError(f"{where}: 'layout.tables' must be a list of [lo, len, shift]")
        saved["tables"] = [
            tuple(json_int(v, "layout.tables", where, 2**32 - 1) for v in t) for t in tables
        ]
        core = _core.IndexCore("mih", bits, count, radius, saved=saved, check_rows=verify)
        return cls._from_core(core, _max_distance=radius, _fixed_substrings=count)


# A flat scan in a batch is compute-bound: about 0.25 ns per 64-bit word and query on the
# reference machine (1 G PDQ comparisons/s per core); see benchmarks/RESULTS.md.
_FLAT_BATCH_NS_PER_WORD = 0.25


def _flat_batch_variants(variants: int) -> float:
    """A batched scan's cost for variant stacks relative to plain queries: compute-bound, so
    every variant is a comparison (the one-pass kernel saves memory traffic, not popcounts)."""
    return float(variants)


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


def plan_index(
    n: int, bits: int = 256, *, max_distance: int | None = None, dihedral: bool = False
) -> IndexPlan:
    """Choose between MIHIndex and FlatIndex for range queries over ``n`` stored hashes.

    MIHIndex costs about the same per query alone or in a batch; a flat scan is cheapest per
    query in big batches, so this compares MIH's estimated cost with a batched scan's: when it
    picks MIHIndex, single queries gain even more. With ``dihedral=True`` the queries are
    variant stacks (``range_search(..., dihedral=True)``): MIH probes and verifies for each of
    the 8 variants, while a scan compares every stored hash with all of them in one pass.

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
    n = check_count(n, "n")
    variants = len(TRANSFORMS) if check_dihedral(dihedral) else 1
    substrings = int(_core.choose_substrings(bits, n, radius))
    mih_ns = _core.mih_cost(bits, substrings, n, radius, variants)[2]
    flat_ns = n * -(-bits // 64) * _FLAT_BATCH_NS_PER_WORD * _flat_batch_variants(variants)
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
