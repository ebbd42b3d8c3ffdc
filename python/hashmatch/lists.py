"""Labelled hash lists for moderation services, searchable while they are refreshed.

A :class:`HashList` holds the entries of one shared hash list (one hash type): each entry has a
stable int64 id, an optional external key (a partner's signal or content id), a source, a set of
labels, an optional quality score and small JSON extras. Matching is exact (or approximate with
a faiss backend) and never waits for a refresh.

How it works
------------
A list is a *snapshot*: an immutable tuple of *segments* (each an index over its hashes plus
the metadata columns of its entries) and a deleted-rows mask per segment. Queries read the
current snapshot once and run on it to the end. A write (``add``, ``remove``, ``update``, a
``batch()``) builds a new snapshot beside the old one and publishes it with one reference
assignment, so new queries see all of the write or none of it and in-flight queries finish on
the old one. New entries go into a new small segment; removed ones are masked. Segments are
merged by a compaction once the small ones or the removed entries pass an eighth of the list,
which keeps the cost of writes amortised and queries close to one index's speed.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from hashmatch._columns import Columns, Interned, Strings
from hashmatch._validation import as_codes, check_ids, check_k, check_max_distance, check_threads
from hashmatch.codes import to_hex
from hashmatch.errors import EntryNotFound, IndexFormatError, InvalidArgument, InvalidType
from hashmatch.indexes import FlatIndex, MIHIndex, SearchResult, default_max_distance, plan_index

if TYPE_CHECKING:
    from hashmatch.matching import MatchResult

__all__ = ["HASH_TYPES", "Entry", "HashList", "ImportResult"]

HASH_TYPES: dict[str, int] = {
    "pdq": 256,
    "vpdq": 256,
    "phash": 64,
    "dhash": 64,
    "ahash": 64,
    "whash": 64,
}
"""Known hash types and their widths in bits. ``"raw"`` (any width, ``bits=`` required) covers
other binary hashes."""

_EXACT_BACKENDS = ("auto", "flat", "mih")
_FAISS_BACKENDS = ("faiss-hnsw", "faiss-ivf", "faiss-multihash")
_MAX_EXTRAS_BYTES = 65536
_UNSET: Any = object()


class Entry(NamedTuple):
    """One entry of a hash list."""

    id: int
    hash: str
    """The hash as lowercase hex."""
    key: str | None
    source: str | None
    labels: tuple[str, ...]
    quality: int | None
    extras: dict[str, Any]


# ---------------------------------------------------------------- segments and snapshots


class _Segment:
    """An immutable index over some entries, whose ids inside the index are its row numbers."""

    def __init__(
        self,
        index: Any,
        codes: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.int64],
        columns: Columns,
    ) -> None:
        self.index = index
        self.codes = codes
        self.ids = ids
        self.columns = columns
        increasing = len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))
        self.order: npt.NDArray[np.int64] | None = (
            None if increasing else np.argsort(ids, kind="stable")
        )
        self._keys: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def range_search(self, codes: npt.NDArray[np.uint8], radius: int, threads: int) -> Any:
        """(lims, distances, rows) for validated queries."""
        core = getattr(self.index, "_core", None)
        if core is not None:  # our exact indexes: arguments are already checked
            return core.range_search(codes, radius, threads)
        return self.index.range_search(codes, radius, threads=threads)

    def rows_of(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Row of each id in this segment, or -1."""
        sorted_ids = self.ids if self.order is None else self.ids[self.order]
        pos = np.searchsorted(sorted_ids, ids)
        pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
        found = (sorted_ids[pos] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)
        rows = pos if self.order is None else self.order[pos]
        return np.where(found, rows, -1).astype(np.int64)

    def key_rows(self) -> dict[str, int]:
        """Key -> row, built on first use (a few seconds per 10M keys) and kept."""
        with self._lock:
            if self._keys is None:
                keys = self.columns.keys.get(np.arange(len(self)))
                self._keys = {k: row for row, k in enumerate(keys) if k is not None}
            return self._keys


@dataclass(frozen=True)
class _Snapshot:
    segments: tuple[_Segment, ...]
    dead: tuple[npt.NDArray[np.bool_] | None, ...]
    next_id: int

    @property
    def live(self) -> int:
        return sum(len(s) - (0 if d is None else int(d.sum())) for s, d in self.live_parts())

    def live_parts(self) -> Iterator[tuple[_Segment, npt.NDArray[np.bool_] | None]]:
        return iter(zip(self.segments, self.dead, strict=True))

    def live_rows(self, i: int) -> npt.NDArray[np.int64]:
        dead = self.dead[i]
        n = len(self.segments[i])
        return np.arange(n) if dead is None else np.flatnonzero(~dead)

    def locate(self, ids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
        """(segment, row) of each live id; -1 for ids not in the list."""
        seg = np.full(len(ids), -1, dtype=np.int64)
        row = np.full(len(ids), -1, dtype=np.int64)
        for i, (segment, dead) in enumerate(self.live_parts()):
            rows = segment.rows_of(ids)
            hit = rows >= 0
            if dead is not None:
                hit[hit] = ~dead[rows[hit]]
            seg[hit], row[hit] = i, rows[hit]
        return seg, row

    def locate_keys(self, keys: Sequence[str]) -> tuple[npt.NDArray[np.int64], ...]:
        seg = np.full(len(keys), -1, dtype=np.int64)
        row = np.full(len(keys), -1, dtype=np.int64)
        for i, (segment, dead) in enumerate(self.live_parts()):
            table = segment.key_rows()
            for j, key in enumerate(keys):
                r = table.get(key, -1)
                if r >= 0 and (dead is None or not dead[r]):
                    seg[j], row[j] = i, r
        return seg, row


# ---------------------------------------------------------------- argument normalisation


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidType(f"{name}: expected a str or None, got {type(value).__name__}")
    if not value or "\0" in value:
        raise InvalidArgument(f"{name}: expected a non-empty string without NUL, got {value!r}")
    return value


def _per_entry(value: object, n: int, name: str, scalar: Callable[[object], bool]) -> list[Any]:
    """One value per entry: a scalar (``scalar(value)``) is repeated, a sequence must have n."""
    if scalar(value):
        return [value] * n
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence):
        raise InvalidType(f"{name}: expected one value or a sequence of {n}, got {value!r}")
    if len(value) != n:
        raise InvalidArgument(f"{name}: expected {n} values (one per hash), got {len(value)}")
    return list(value)


def _label_set(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidType(f"{name}: expected labels (str or iterable of str), got {value!r}")
    labels = set()
    for label in value:
        text = _text(label, name)
        if text is not None:
            labels.add(text)
    return tuple(sorted(labels))


def _labels(value: object, n: int) -> list[tuple[str, ...]]:
    """``str`` or a sequence of str: the same labels for every entry; else one set per entry."""
    if value is None:
        return [()] * n
    shared = isinstance(value, (str, frozenset, set)) or (
        isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value) and value
    )
    if shared or (isinstance(value, (tuple, list)) and not value and n != 0):
        return [_label_set(value, "labels")] * n
    items = _per_entry(value, n, "labels", lambda v: False)
    seen: dict[Any, tuple[str, ...]] = {}  # label sets repeat: normalise each one once
    out = []
    for i, v in enumerate(items):
        try:
            out.append(seen[v])
        except (KeyError, TypeError):  # new, or unhashable (a list)
            labels = _label_set(v, f"labels[{i}]")
            if isinstance(v, (tuple, str, frozenset)):
                seen[v] = labels
            out.append(labels)
    return out


def check_quality(value: object, name: str) -> int | None:
    """A PDQ-style quality score: an integer from 0 to 100, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise InvalidType(f"{name}: expected an integer from 0 to 100, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            raise InvalidArgument(f"{name}: expected a quality from 0 to 100, got NaN")
        if not value.is_integer():
            raise InvalidArgument(f"{name}: expected an integer quality, got {value}")
    if not 0 <= value <= 100:
        raise InvalidArgument(f"{name}: expected a quality from 0 to 100, got {value}")
    return int(value)


def check_qualities(values: object, n: int, name: str = "qualities") -> npt.NDArray[np.int16]:
    """One quality per hash as int16, -1 where it is missing (None)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu" and values.shape == (n,):
        bad = np.flatnonzero((values < 0) | (values > 100))
        if bad.size:
            i = int(bad[0])
            raise InvalidArgument(f"{name}[{i}]: expected a quality from 0 to 100, got {values[i]}")
        return values.astype(np.int16)
    items = _per_entry(
        values, n, name, lambda v: v is None or isinstance(v, (int, float, np.number))
    )
    return np.array(
        [-1 if (q := check_quality(v, f"{name}[{i}]")) is None else q for i, v in enumerate(items)],
        dtype=np.int16,
    )


def _extras(value: object, n: int) -> list[str | None]:
    items = _per_entry(value, n, "extras", lambda v: v is None or isinstance(v, Mapping))
    out: list[str | None] = []
    for i, item in enumerate(items):
        if item is None or (isinstance(item, Mapping) and not item):
            out.append(None)
            continue
        if not isinstance(item, Mapping) or not all(isinstance(k, str) for k in item):
            raise InvalidType(f"extras[{i}]: expected a dict with str keys, got {item!r}")
        try:
            text = json.dumps(item, sort_keys=True, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"extras[{i}]: expected JSON-serialisable values ({e})") from None
        if len(text.encode()) > _MAX_EXTRAS_BYTES or "\0" in text:
            raise InvalidArgument(
                f"extras[{i}]: expected at most {_MAX_EXTRAS_BYTES} bytes of JSON without NUL"
            )
        out.append(text)
    return out


def _keys(value: object, n: int) -> list[str | None]:
    if value is None:
        return [None] * n
    if isinstance(value, str):
        raise InvalidType("keys: expected a sequence of str (one per hash), got one str")
    items = _per_entry(value, n, "keys", lambda v: False)
    keys = [_text(k, f"keys[{i}]") for i, k in enumerate(items)]
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k is not None and seen.setdefault(k, i) != i:
            raise InvalidArgument(
                f"keys[{i}]: expected unique keys, got duplicate {k!r} (also at keys[{seen[k]}])"
            )
    return keys


def _check_hash_type(hash_type: object, bits: object) -> tuple[str, int]:
    if not isinstance(hash_type, str):
        raise InvalidType(f"hash_type: expected a str, got {type(hash_type).__name__}")
    name = hash_type.lower()
    if name == "raw":
        if bits is None:
            raise InvalidArgument("bits: hash_type 'raw' needs bits= (a multiple of 8)")
        from hashmatch._validation import check_bits

        return name, check_bits(bits)
    if name not in HASH_TYPES:
        known = ", ".join(sorted(HASH_TYPES))
        raise InvalidArgument(f"hash_type: expected one of {known} or 'raw', got {hash_type!r}")
    if bits is not None and bits != HASH_TYPES[name]:
        raise InvalidArgument(f"bits: {name} hashes have {HASH_TYPES[name]} bits, got {bits!r}")
    return name, HASH_TYPES[name]


# ---------------------------------------------------------------- the list


@dataclass
class _Pending:
    """Writes collected by :meth:`HashList.batch`, applied in one snapshot."""

    removes: list[npt.NDArray[np.int64]] = field(default_factory=list)
    remove_keys: list[str] = field(default_factory=list)
    adds: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], Columns]] = field(
        default_factory=list
    )


class HashList:
    """A labelled list of hashes of one type, matched exactly and refreshed live.

    Parameters
    ----------
    hash_type : str, default "pdq"
        One of :data:`HASH_TYPES` (``"pdq"``, ``"phash"``, ...) or ``"raw"`` with ``bits``.
    bits : int, optional
        Width for ``"raw"`` hashes; for named types it must match (or be omitted).
    max_distance : int, optional
        The match radius, inclusive (default 31 for 256-bit types, 10 for 64-bit ones).
    backend : str, default "auto"
        Index behind the list: ``"auto"`` (the exact index the cost model prefers for the list's
        size: :class:`MIHIndex` or :class:`FlatIndex`), ``"flat"``, ``"mih"``, or an approximate
        faiss index, ``"faiss-hnsw"``, ``"faiss-ivf"`` or ``"faiss-multihash"``, with
        ``backend_params`` passed to it. Approximate backends may miss matches; recently added
        entries are always searched exactly until the next compaction.
    backend_params : dict, optional
        Parameters of a faiss backend (see :mod:`hashmatch.backends`).
    name : str, optional
        A name for the list (a :class:`Matcher` reports matches under its own names).
    auto_compact : bool, default True
        Merge segments automatically when new or removed entries pass an eighth of the list.
        A service that prefers to choose when that work happens sets False and calls
        :meth:`compact`.

    Notes
    -----
    Thread safety: any number of threads may query (``match``, ``search``, ``get``,
    ``len``...) at once, also while another thread writes; queries never wait for writers and
    see every write either completely or not at all. Writes (``add``, ``remove``, ``update``,
    ``batch``, ``compact``, imports) are serialised by an internal lock.

    Examples
    --------
    >>> import hashmatch as hm
    >>> terror = hm.HashList("pdq", name="terror")
    >>> db = hm.datasets.random_codes(2, 256, seed=1)
    >>> terror.add(db, keys=["te:1", "te:2"], labels=["terrorism"], source="partner-a").tolist()
    [0, 1]
    >>> query = hm.datasets.flip_bits(db[:1], [20])
    >>> result = terror.match(query)
    >>> result.ids.tolist(), result.distances.tolist(), result.keys.tolist()
    ([0], [20], ['te:1'])
    >>> terror.get_key("te:2").labels
    ('terrorism',)
    """

    def __init__(
        self,
        hash_type: str = "pdq",
        *,
        bits: int | None = None,
        max_distance: int | None = None,
        backend: str = "auto",
        backend_params: Mapping[str, Any] | None = None,
        name: str | None = None,
        auto_compact: bool = True,
    ) -> None:
        self._hash_type, self._bits = _check_hash_type(hash_type, bits)
        self._max_distance = (
            default_max_distance(self._bits)
            if max_distance is None
            else check_max_distance(max_distance, self._bits)
        )
        if backend not in _EXACT_BACKENDS + _FAISS_BACKENDS:
            valid = ", ".join(_EXACT_BACKENDS + _FAISS_BACKENDS)
            raise InvalidArgument(f"backend: expected one of {valid}, got {backend!r}")
        self._backend = backend
        self._backend_params = dict(backend_params or {})
        if self._backend_params and backend not in _FAISS_BACKENDS:
            raise InvalidArgument(f"backend_params: the {backend!r} backend takes no parameters")
        self._name = _text(name, "name")
        self._auto_compact = bool(auto_compact)
        self._write_lock = threading.RLock()
        self._pending: _Pending | None = None
        empty = self._segment(
            np.zeros((0, self.nbytes), np.uint8), np.zeros(0, np.int64), _columns(0), base=True
        )
        self._snapshot = _Snapshot((empty,), (None,), 0)

    # ------------------------------------------------------------ properties

    @property
    def hash_type(self) -> str:
        """The hash type (``"pdq"``, ``"phash"``, ... or ``"raw"``)."""
        return self._hash_type

    @property
    def bits(self) -> int:
        """Hash width in bits."""
        return self._bits

    @property
    def nbytes(self) -> int:
        """Hash width in bytes."""
        return self._bits // 8

    @property
    def max_distance(self) -> int:
        """The match radius (inclusive) that :meth:`match` uses by default."""
        return self._max_distance

    @property
    def backend(self) -> str:
        """The backend name given at construction."""
        return self._backend

    @property
    def name(self) -> str | None:
        """The list's name, if any."""
        return self._name

    def __len__(self) -> int:
        return self._snapshot.live

    def __contains__(self, entry_id: object) -> bool:
        if isinstance(entry_id, bool) or not isinstance(entry_id, (int, np.integer)):
            return False
        return bool(self._snapshot.locate(np.array([entry_id], np.int64))[0][0] >= 0)

    def __repr__(self) -> str:
        snap = self._snapshot
        return (
            f"HashList({self._hash_type!r}, name={self._name!r}, entries={snap.live}, "
            f"max_distance={self._max_distance}, backend={self._backend!r}, "
            f"segments={len(snap.segments)})"
        )

    def stats(self) -> dict[str, Any]:
        """Internal layout: entries, segments and their sizes, removed entries awaiting
        compaction, and the index kind of each segment."""
        snap = self._snapshot
        return {
            "entries": snap.live,
            "segments": [
                {
                    "entries": len(s),
                    "removed": 0 if d is None else int(d.sum()),
                    "index": type(s.index).__name__,
                }
                for s, d in snap.live_parts()
            ],
            "next_id": snap.next_id,
        }

    # ------------------------------------------------------------ reading

    def ids(self) -> npt.NDArray[np.int64]:
        """Ids of every entry, ascending."""
        snap = self._snapshot
        parts = [s.ids[snap.live_rows(i)] for i, s in enumerate(snap.segments)]
        return np.sort(np.concatenate(parts))

    def get(self, entry_id: int) -> Entry:
        """The entry with this id.

        Raises
        ------
        EntryNotFound
            No entry has this id.
        """
        ids = check_ids([entry_id], 1, name="entry_id")
        snap = self._snapshot
        seg, row = snap.locate(ids)
        if seg[0] < 0:
            raise EntryNotFound(f"entry_id: no entry with id {entry_id}")
        return _entry(snap.segments[seg[0]], int(row[0]))

    def get_key(self, key: str) -> Entry:
        """The entry with this external key (the first lookup builds a key map).

        Raises
        ------
        EntryNotFound
            No entry has this key.
        """
        text = _text(key, "key")
        snap = self._snapshot
        seg, row = snap.locate_keys([text] if text else [])
        if not len(seg) or seg[0] < 0:
            raise EntryNotFound(f"key: no entry with key {key!r}")
        return _entry(snap.segments[seg[0]], int(row[0]))

    def entries(self) -> Iterator[Entry]:
        """Every entry, in id order (a consistent snapshot even during writes)."""
        snap = self._snapshot
        for segment, rows in _sorted_live(snap):
            for row in rows.tolist():
                yield _entry(segment, row)

    def match(
        self,
        hashes: object,
        *,
        max_distance: int | None = None,
        qualities: object = None,
        min_quality: float | None = None,
        threads: int | None = None,
    ) -> MatchResult:
        """Every entry within the match radius of each query hash.

        Parameters
        ----------
        hashes : hashes
            Query hashes of this list's width (hex, bytes, ImageHash or packed uint8 array).
        max_distance : int, optional
            Radius (inclusive); default :attr:`max_distance`.
        qualities : array_like of int, optional
            Quality score (0-100) of each query hash, as PDQ computes it.
        min_quality : int, optional
            Skip query hashes whose quality is below this (PDQ users commonly use 50); skipped
            queries are listed in ``result.skipped``. Needs ``qualities``.
        threads : int, optional
            Threads to use; default every core.

        Returns
        -------
        MatchResult
            One record per (query, entry) pair, ordered by query, distance, id.
        """
        from hashmatch.matching import MatchResult, match_lists

        codes, selected, skipped = prepare_queries(hashes, self.nbytes, qualities, min_quality)
        radius = (
            self._max_distance
            if max_distance is None
            else check_max_distance(max_distance, self._bits)
        )
        parts = [self._hits(codes, selected, radius, check_threads(threads))]
        return MatchResult.build(
            [self._name or "list"], match_lists(parts), len(selected) + len(skipped), skipped
        )

    def search(self, hashes: object, k: int, *, threads: int | None = None) -> SearchResult:
        """The k nearest entries of each query: ``(distances, ids)`` of shape (nq, min(k, len)).

        Exact for exact backends; with a faiss backend, missing neighbours are reported with
        id -1 and distance ``bits + 1``.
        """
        codes, _ = as_codes(hashes, name="hashes", nbytes=self.nbytes)
        k = check_k(k)
        nthreads = check_threads(threads)
        snap = self._snapshot
        width = min(k, snap.live)
        nq = len(codes)
        all_d, all_i = [np.zeros((nq, 0), np.int64)], [np.zeros((nq, 0), np.int64)]
        missing = self._bits + 1
        for segment, dead in snap.live_parts():
            removed = 0 if dead is None else int(dead.sum())
            if len(segment) - removed == 0 or width == 0:
                continue
            d, rows = segment.index.search(codes, min(k + removed, len(segment)), threads=nthreads)
            d = d.astype(np.int64)
            bad = rows < 0
            safe = np.where(bad, 0, rows)
            if dead is not None:
                bad |= dead[safe]
            d[bad] = missing
            all_d.append(d)
            all_i.append(np.where(bad, -1, segment.ids[safe]))
        d, ids = np.concatenate(all_d, axis=1), np.concatenate(all_i, axis=1)
        order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), d), axis=1)
        d = np.take_along_axis(d, order, axis=1)[:, :width]
        ids = np.take_along_axis(ids, order, axis=1)[:, :width]
        return SearchResult(d.astype(np.int32), ids)

    def _hits(
        self,
        codes: npt.NDArray[np.uint8],
        selected: npt.NDArray[np.int64],
        radius: int,
        threads: int,
    ) -> list[tuple[_Segment, npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]]:
        """Per segment: (segment, query number, distance, row) of every live hit."""
        snap = self._snapshot
        out = []
        for segment, dead in snap.live_parts():
            if not len(segment) or not len(codes):
                continue
            lims, distances, rows = segment.range_search(codes, radius, threads)
            queries = np.repeat(selected, lims[1:] - lims[:-1])
            if dead is not None and len(rows):
                keep = ~dead[rows]
                queries, distances, rows = queries[keep], distances[keep], rows[keep]
            out.append((segment, queries, distances, rows))
        return out

    # ------------------------------------------------------------ writing

    def add(
        self,
        hashes: object,
        *,
        ids: object = None,
        keys: object = None,
        labels: object = None,
        source: object = None,
        quality: object = None,
        extras: object = None,
    ) -> npt.NDArray[np.int64]:
        """Add entries; all-or-nothing, visible to queries atomically.

        Parameters
        ----------
        hashes : hashes
            Hashes of this list's width.
        ids : array_like of int, optional
            Non-negative int64 ids, unique and not in the list; default: continuing after the
            largest id the list has ever held.
        keys : sequence of str or None, optional
            External keys (a partner's signal id), unique in the list when given.
        labels : str, sequence of str, or sequence of sequences, optional
            A ``str`` or a flat sequence of str labels every entry; a sequence of label
            collections (one per hash) labels each entry separately.
        source : str or sequence of str, optional
            Where the entries come from (one for all, or one per hash).
        quality : int or sequence of int, optional
            Quality score 0-100 (one for all, or one per hash; None where unknown).
        extras : dict or sequence of dict, optional
            Small JSON-serialisable metadata (one for all, or one per hash).

        Returns
        -------
        numpy.ndarray
            The ids of the new entries.

        Raises
        ------
        InvalidArgument
            Duplicate or already used ids or keys, bad quality, ... Nothing is added.
        HashTypeMismatch
            Hashes of another width.
        """
        codes, _ = as_codes(hashes, name="hashes", nbytes=self.nbytes)
        n = len(codes)
        columns = _columns(
            n,
            keys=_keys(keys, n),
            sources=[
                _text(s, "source")
                for s in _per_entry(source, n, "source", lambda v: v is None or isinstance(v, str))
            ],
            labels=_labels(labels, n),
            extras=_extras(extras, n),
            quality=check_qualities(quality, n, "quality"),
        )
        with self._write_lock:
            snap = self._snapshot
            if ids is None:
                start = max(
                    [snap.next_id]
                    + [int(a[1].max()) + 1 for a in self._pending_adds() if len(a[1])]
                )
                if start + n - 1 > np.iinfo(np.int64).max:
                    raise InvalidArgument("ids: default ids would pass 2**63 - 1; pass ids=")
                id_array = np.arange(start, start + n, dtype=np.int64)
            else:
                id_array = check_ids(ids, n).copy()
            codes = np.array(codes, copy=True)
            if self._pending is not None:
                self._pending.adds.append((codes, id_array, columns))
            else:
                self._commit(_Pending(adds=[(codes, id_array, columns)]))
        return id_array

    def remove(self, ids: object = None, *, keys: object = None) -> int:
        """Remove entries by id and/or key; ids and keys not in the list are ignored.

        Returns
        -------
        int
            How many entries were removed (inside :meth:`batch`, how many ids and keys were
            given: they are resolved when the batch is applied).
        """
        id_array = np.zeros(0, np.int64) if ids is None else _id_list(ids)
        key_list = [k for k in _keys(keys, 0 if keys is None else len(_seq(keys, "keys"))) if k]
        with self._write_lock:
            if self._pending is not None:
                self._pending.removes.append(id_array)
                self._pending.remove_keys.extend(key_list)
                return int(len(id_array) + len(key_list))  # resolved at commit
            before = self._snapshot.live
            self._commit(_Pending(removes=[id_array], remove_keys=key_list))
            return before - self._snapshot.live

    def update(
        self,
        entry_id: int | None = None,
        *,
        key: str | None = None,
        hash: object = _UNSET,
        labels: object = _UNSET,
        source: object = _UNSET,
        quality: object = _UNSET,
        extras: object = _UNSET,
    ) -> Entry:
        """Change one entry's hash or metadata (found by id or key); its id stays the same.

        Returns
        -------
        Entry
            The updated entry.
        """
        with self._write_lock:
            if (entry_id is None) == (key is None):
                raise InvalidArgument("update: pass exactly one of entry_id or key")
            old = self.get(entry_id) if entry_id is not None else self.get_key(str(key))
            new_codes = (
                as_codes(old.hash, nbytes=self.nbytes)[0]
                if hash is _UNSET
                else as_codes(hash, name="hash", nbytes=self.nbytes)[0]
            )
            if len(new_codes) != 1:
                raise InvalidArgument(f"hash: expected one hash, got {len(new_codes)}")
            columns = _columns(
                1,
                keys=[old.key],
                sources=[old.source if source is _UNSET else _text(source, "source")],
                labels=[old.labels if labels is _UNSET else _label_set(labels, "labels")],
                extras=_extras(old.extras if extras is _UNSET else extras, 1),
                quality=check_qualities(
                    old.quality if quality is _UNSET else quality, 1, "quality"
                ),
            )
            ids = np.array([old.id], np.int64)
            self._commit(_Pending(removes=[ids], adds=[(new_codes.copy(), ids, columns)]))
            return self.get(old.id)

    @contextmanager
    def batch(self) -> Iterator[HashList]:
        """Group writes into one atomic refresh: queries see all of them or none.

        Removes are applied before adds, so a batch can replace entries (same ids or keys).
        If the block raises, nothing is applied.

        Examples
        --------
        >>> import hashmatch as hm
        >>> hl = hm.HashList("phash")
        >>> with hl.batch():
        ...     _ = hl.add(["00000000000000ff"], keys=["a"])
        ...     _ = hl.add(["ffffffffffffffff"], keys=["b"])
        >>> len(hl)
        2
        """
        with self._write_lock:
            if self._pending is not None:
                raise InvalidArgument("batch: batches do not nest")
            self._pending = _Pending()
            try:
                yield self
                pending = self._pending
            finally:
                self._pending = None
            self._commit(pending)

    def compact(self) -> None:
        """Merge every segment into one index and drop removed entries now."""
        with self._write_lock:
            self._publish(self._compacted(self._snapshot))

    def _pending_adds(self) -> list[tuple[Any, npt.NDArray[np.int64], Any]]:
        return [] if self._pending is None else self._pending.adds

    def _commit(self, pending: _Pending) -> None:
        """Apply removes then adds to a copy of the snapshot, then publish it (under the lock)."""
        snap = self._snapshot
        dead = list(snap.dead)
        if pending.removes or pending.remove_keys:
            ids = np.concatenate(pending.removes) if pending.removes else np.zeros(0, np.int64)
            seg, row = snap.locate(ids)
            kseg, krow = snap.locate_keys(pending.remove_keys)
            seg, row = np.concatenate([seg, kseg]), np.concatenate([row, krow])
            for i in np.unique(seg[seg >= 0]).tolist():
                mask = np.zeros(len(snap.segments[i]), bool) if dead[i] is None else dead[i].copy()
                mask[row[seg == i]] = True
                dead[i] = mask
        snap = _Snapshot(snap.segments, tuple(dead), snap.next_id)
        segments = list(snap.segments)
        next_id = snap.next_id
        if pending.adds:
            codes = np.concatenate([a[0] for a in pending.adds])
            ids = np.concatenate([a[1] for a in pending.adds])
            columns = Columns.concat([a[2] for a in pending.adds])
            check_ids(ids, len(ids))  # unique across the batch
            _check_new(snap, ids, columns)
            segments.append(self._segment(codes, ids, columns, base=False))
            dead.append(None)
            if len(ids):
                next_id = max(next_id, min(int(ids.max()) + 1, np.iinfo(np.int64).max))
        self._publish(_Snapshot(tuple(segments), tuple(dead), next_id))
        if self._auto_compact:
            self._maybe_compact()

    def _publish(self, snap: _Snapshot) -> None:
        self._snapshot = snap  # one reference assignment: atomic for readers

    def _maybe_compact(self) -> None:
        snap = self._snapshot
        base, deltas = snap.segments[0], snap.segments[1:]
        removed = [0 if d is None else int(d.sum()) for d in snap.dead]
        base_live = len(base) - removed[0]
        delta_rows = sum(len(s) for s in deltas)
        if delta_rows + sum(removed) > max(base_live // 8, 1024) or base_live == 0:
            self._publish(self._compacted(snap))
        elif len(deltas) > 8:
            self._publish(self._compacted(snap, deltas_only=True))

    def _compacted(self, snap: _Snapshot, *, deltas_only: bool = False) -> _Snapshot:
        first = 1 if deltas_only else 0
        parts = [
            (s, snap.live_rows(i)) for i, s in enumerate(snap.segments) if i >= first and len(s)
        ]
        codes = _concat([s.codes[r] for s, r in parts], np.zeros((0, self.nbytes), np.uint8))
        ids = _concat([s.ids[r] for s, r in parts], np.zeros(0, np.int64))
        columns = Columns.concat([s.columns.take(r) for s, r in parts]) if parts else _columns(0)
        order = np.argsort(ids, kind="stable")
        merged = self._segment(codes[order], ids[order], columns.take(order).pruned(), base=True)
        if deltas_only:
            return _Snapshot((snap.segments[0], merged), (snap.dead[0], None), snap.next_id)
        return _Snapshot((merged,), (None,), snap.next_id)

    def _segment(
        self,
        codes: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.int64],
        columns: Columns,
        *,
        base: bool,
    ) -> _Segment:
        """A segment over these entries: the configured backend for the base segment, the
        cost model's exact choice for small new ones."""
        index = self._new_index(len(codes), base)
        if len(codes):
            index.add(codes, np.arange(len(codes), dtype=np.int64))
        return _Segment(index, codes, ids, columns)

    def _new_index(self, n: int, base: bool) -> Any:
        kind = self._backend
        if kind in _FAISS_BACKENDS and not (base and n):
            kind = "auto"
        if kind in _FAISS_BACKENDS:
            from hashmatch.backends import make_backend

            return make_backend(kind, self._bits, **self._backend_params)
        if kind == "auto":
            kind = (
                "mih"
                if plan_index(n, self._bits, max_distance=self._max_distance).kind == ("MIHIndex")
                else "flat"
            )
        if kind == "mih":
            return MIHIndex(self._bits, max_distance=self._max_distance)
        return FlatIndex(self._bits)

    # ------------------------------------------------------------ persistence and files

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the list atomically (see :func:`hashmatch.save`); compacts it first."""
        from hashmatch.io import save

        save(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True
    ) -> HashList:
        """Open a list written by :meth:`save`; ``mmap=True`` maps it instead of reading it."""
        from hashmatch.io import load

        obj = load(path, mmap=mmap, verify=verify)
        if not isinstance(obj, HashList):
            raise IndexFormatError(f"{path}: holds a {type(obj).__name__}, not a HashList")
        return obj

    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "auto",
        skip_invalid: bool = False,
        progress: bool = False,
    ) -> ImportResult:
        """Add every entry of a hash-list file (hex, CSV or TSV; see :mod:`hashmatch.formats`)
        in one atomic refresh, streaming it in chunks.

        Ids come from the file's id column when it has one, else continue the list's. Other
        columns become extras (as strings; empty cells are left out). A bad
        row raises (naming file and line) and nothing is added, unless ``skip_invalid=True``:
        then bad rows are skipped and listed in the result.

        Examples
        --------
        >>> import os, tempfile, hashmatch as hm
        >>> path = os.path.join(tempfile.mkdtemp(), "shared.csv")
        >>> with open(path, "w") as f:
        ...     _ = f.write("hash,key,labels\\n" + "ab" * 32 + ",te:1,terrorism video\\n")
        >>> hl = hm.HashList("pdq")
        >>> hl.import_file(path).ids.tolist(), hl.get(0).labels
        ([0], ('terrorism', 'video'))
        """
        from hashmatch.formats import read_hashes

        added = []
        with self._write_lock:
            reader = read_hashes(
                path, format=format, bits=self._bits, skip_invalid=skip_invalid, progress=progress
            )
            with reader, self.batch():
                for chunk in reader:
                    q = chunk.qualities
                    added.append(
                        self.add(
                            chunk.codes,
                            ids=chunk.ids,
                            keys=chunk.keys,
                            labels=chunk.labels,
                            source=chunk.sources,
                            quality=None
                            if q is None
                            else [v if v >= 0 else None for v in q.tolist()],
                            extras=None
                            if chunk.extras is None
                            else [{k: v for k, v in e.items() if v} for e in chunk.extras],
                        )
                    )
        ids = np.concatenate(added) if added else np.zeros(0, np.int64)
        return ImportResult(ids, list(reader.skipped))

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        hash_type: str = "pdq",
        *,
        format: str = "auto",
        skip_invalid: bool = False,
        progress: bool = False,
        **options: Any,
    ) -> HashList:
        """A new list (``HashList(hash_type, **options)``) holding every entry of a file."""
        hash_list = cls(hash_type, **options)
        hash_list.import_file(path, format=format, skip_invalid=skip_invalid, progress=progress)
        return hash_list

    def export(
        self, path: str | os.PathLike[str], *, format: str = "csv", chunk_size: int = 1_000_000
    ) -> int:
        """Write every entry (id order) to a hex, CSV or TSV file, atomically; CSV and TSV
        carry ids, keys, labels, sources, qualities and extras, and :meth:`import_file` reads
        them back. Returns the number of entries written."""
        from hashmatch.formats import write_hashes

        return write_hashes(path, self._records(chunk_size), format=format)

    def _records(self, chunk_size: int) -> Iterator[Any]:
        from hashmatch.formats import HashRecords

        snap = self._snapshot
        for segment, rows in _sorted_live(snap):
            for lo in range(0, len(rows), chunk_size):
                r = rows[lo : lo + chunk_size]
                c = segment.columns
                extras = [json.loads(e) if e else {} for e in c.extras.get(r)]
                yield HashRecords(
                    segment.codes[r],
                    ids=segment.ids[r],
                    keys=c.keys.get(r),
                    labels=c.labels.get(r),
                    sources=c.sources.get(r),
                    qualities=c.quality[r],
                    extras=[{k: _extra_text(v) for k, v in e.items()} for e in extras],
                )

    def _to_sections(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from hashmatch._listfile import list_sections

        with self._write_lock:
            snap = self._snapshot
            if len(snap.segments) > 1 or snap.dead[0] is not None:
                snap = self._compacted(snap)
                self._publish(snap)
        return list_sections(self, snap.segments[0], snap.next_id)


# ---------------------------------------------------------------- helpers


class ImportResult(NamedTuple):
    """What :meth:`HashList.import_file` added, and the rows it skipped."""

    ids: npt.NDArray[np.int64]
    """Ids of the added entries, in file order."""
    skipped: list[tuple[int, str]]
    """(line, reason) of each bad row skipped (``skip_invalid=True``)."""


def _extra_text(value: object) -> str:
    """Extras are written to text files as strings; JSON for anything but a str."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _id_list(ids: object) -> npt.NDArray[np.int64]:
    """Ids given as one int, a sequence or an array (possibly empty)."""
    if isinstance(ids, np.ndarray):
        items: Any = ids.reshape(-1)
    elif isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        items = [ids]
    else:
        items = list(_seq(ids, "ids"))
    return check_ids(items, len(items), name="ids")


def _seq(value: object, name: str) -> Sequence[Any]:
    if isinstance(value, str) or not isinstance(value, (Sequence, np.ndarray)):
        raise InvalidType(f"{name}: expected a sequence, got {type(value).__name__}")
    return list(value)


def _concat(parts: list[npt.NDArray[Any]], empty: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.concatenate(parts) if parts else empty


def _columns(
    n: int,
    *,
    keys: Sequence[str | None] | None = None,
    sources: Sequence[str | None] | None = None,
    labels: Sequence[tuple[str, ...]] | None = None,
    extras: Sequence[str | None] | None = None,
    quality: npt.NDArray[np.int16] | None = None,
) -> Columns:
    return Columns(
        Strings.encode(keys) if keys is not None else Strings.empty(n),
        Interned.encode(sources) if sources is not None else Interned.constant(None, n),
        Interned.encode(labels) if labels is not None else Interned.constant((), n),
        Strings.encode(extras) if extras is not None else Strings.empty(n),
        quality if quality is not None else np.full(n, -1, np.int16),
    )


def _check_new(snap: _Snapshot, ids: npt.NDArray[np.int64], columns: Columns) -> None:
    seg, _ = snap.locate(ids)
    taken = np.flatnonzero(seg >= 0)
    if taken.size:
        raise InvalidArgument(
            f"ids[{int(taken[0])}]: id {int(ids[taken[0]])} is already in the list "
            "(use update() to change an entry)"
        )
    keys = columns.keys.get(np.arange(len(columns)))
    given = [k for k in keys if k is not None]
    if len(set(given)) != len(given):
        seen: set[str] = set()
        twice = next(k for k in given if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise InvalidArgument(f"keys: key {twice!r} is added twice in one batch")
    if given:
        kseg, _ = snap.locate_keys(given)
        if (kseg >= 0).any():
            j = int(np.argmax(kseg >= 0))
            raise InvalidArgument(f"keys: key {given[j]!r} is already in the list")


def _entry(segment: _Segment, row: int) -> Entry:
    c = segment.columns
    extras = c.extras.get([row])[0]
    quality = int(c.quality[row])
    return Entry(
        id=int(segment.ids[row]),
        hash=str(to_hex(segment.codes[row])),
        key=c.keys.get([row])[0],
        source=c.sources.get([row])[0],
        labels=c.labels.get([row])[0],
        quality=None if quality < 0 else quality,
        extras=json.loads(extras) if extras else {},
    )


def _sorted_live(snap: _Snapshot) -> Iterator[tuple[_Segment, npt.NDArray[np.int64]]]:
    """(segment, rows) runs covering every live entry in id order."""
    seg = np.concatenate([np.full(len(snap.live_rows(i)), i) for i in range(len(snap.segments))])
    rows = np.concatenate([snap.live_rows(i) for i in range(len(snap.segments))])
    ids = np.concatenate([s.ids[snap.live_rows(i)] for i, s in enumerate(snap.segments)])
    order = np.argsort(ids, kind="stable")
    seg, rows = seg[order], rows[order]
    if not len(seg):
        return
    cuts = np.flatnonzero(np.diff(seg)) + 1
    for s, r in zip(np.split(seg, cuts), np.split(rows, cuts), strict=True):
        yield snap.segments[int(s[0])], r


def prepare_queries(
    hashes: object, nbytes: int, qualities: object, min_quality: object
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Query codes that pass the quality filter, their query numbers, and the skipped ones."""
    codes, _ = as_codes(hashes, name="hashes", nbytes=nbytes)
    n = len(codes)
    everything = np.arange(n, dtype=np.int64)
    q = None if qualities is None else check_qualities(qualities, n)
    if min_quality is None:
        return codes, everything, np.zeros(0, np.int64)
    threshold = check_quality_threshold(min_quality)
    if q is None:
        raise InvalidArgument("min_quality: needs qualities= (one score per query hash)")
    if (q < 0).any():
        i = int(np.argmax(q < 0))
        raise InvalidArgument(f"qualities[{i}]: missing; min_quality needs every query's score")
    keep = q >= threshold
    return np.ascontiguousarray(codes[keep]), everything[keep], everything[~keep]


def check_quality_threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidType(f"min_quality: expected a number from 0 to 100, got {value!r}")
    if math.isnan(value) or not 0 <= value <= 100:
        raise InvalidArgument(f"min_quality: expected a number from 0 to 100, got {value}")
    return float(value)


def _register() -> None:
    from hashmatch._listfile import list_from_sections
    from hashmatch.io import register_kind

    register_kind("HashList", list_from_sections)


_register()
