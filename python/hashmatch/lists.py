"""Labelled hash lists for moderation services, searchable while they are refreshed.

A :class:`HashList` holds the entries of one shared hash list (one hash type): each entry has a
stable int64 id, an optional external key (a partner's signal or content id), a source, a set of
labels, an optional quality score and small JSON extras (the fields of
:mod:`hashmatch.schema`). Matching is exact (or approximate with a faiss backend) and never
waits for a refresh.

How it works
------------
A list is a facade over the storage engine (:mod:`hashmatch.storage`): its state is an
immutable *snapshot* of segments (each an index over its hashes plus the metadata columns of
its entries) and a deleted-rows mask per segment. Queries read the current snapshot once and
run on it to the end. A write (``add``, ``remove``, ``update``, a ``batch()``) builds a new
snapshot beside the old one and publishes it with one reference assignment, so new queries see
all of the write or none of it and in-flight queries finish on the old one. New entries go into
a new small segment; removed ones are masked. Segments are merged by a compaction once the
small ones or the removed entries pass an eighth of the list, which keeps the cost of writes
amortised and queries close to one index's speed.

Feeds
-----
:meth:`HashList.apply` applies one batch of an exchange feed (:class:`~hashmatch.formats.FeedBatch`:
records created, updated and deleted, keyed by the exchange's record id) as one such write, and
keeps the feed's checkpoint (:attr:`HashList.checkpoint`) and the records it refused
(:attr:`HashList.quarantined`, see :mod:`hashmatch.hygiene`) with the list, in its file too.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from hashmatch._backend import HashWidth
from hashmatch._columns import Interned
from hashmatch._listfile import LIST_FORMAT, segment_from_sections, segment_sections
from hashmatch._validation import (
    as_codes,
    as_variant_codes,
    check_dihedral,
    check_id_list,
    check_ids,
    check_k,
    check_max_distance,
    check_threads,
)
from hashmatch.backends import backend_from_bytes, make_backend
from hashmatch.codes import to_hex
from hashmatch.errors import (
    EntryNotFound,
    HashmatchError,
    HashTypeMismatch,
    IndexFormatError,
    InvalidArgument,
    InvalidType,
)
from hashmatch.formats import FeedBatch, HashRecords, Rejected, read_hashes, write_hashes
from hashmatch.hashtypes import HASH_TYPES, resolve
from hashmatch.hygiene import MinQuality, min_quality_for, screen, where_of
from hashmatch.indexes import DihedralSearchResult, SearchResult
from hashmatch.io import load, save
from hashmatch.queries import Queries
from hashmatch.results import MatchResult
from hashmatch.schema import FIELDS, Columns, check_text, label_set
from hashmatch.schema import field as field_named
from hashmatch.storage import Hits, Segment, Snapshot, compacted, compaction_due

__all__ = ["HASH_TYPES", "ApplyReport", "Entry", "HashList", "ImportResult"]

_EXACT_BACKENDS = ("auto", "flat", "mih")
_FAISS_BACKENDS = ("faiss-hnsw", "faiss-ivf", "faiss-multihash")


class _Unchanged:
    """Default of :meth:`HashList.update`'s fields: keep the entry's current value."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


class Entry(NamedTuple):
    """One entry of a hash list: its id, its hash and the fields of :mod:`hashmatch.schema`."""

    id: int
    hash: str
    """The hash as lowercase hex."""
    key: str | None
    source: str | None
    labels: tuple[str, ...]
    quality: int | None
    extras: dict[str, Any]

    @staticmethod
    def of(segment: Segment, row: int) -> Entry:
        """The entry at ``row`` of ``segment``."""
        values = segment.entry_values(row)
        code = values.pop("code")
        return Entry(hash=str(to_hex(code)), **values)


@dataclass
class _Pending:
    """Writes collected by :meth:`HashList.batch`, applied in one snapshot."""

    removes: list[npt.NDArray[np.int64]] = field(default_factory=list)
    remove_keys: list[str] = field(default_factory=list)
    adds: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], Columns]] = field(
        default_factory=list
    )


class HashList(HashWidth):
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
        kind, self._bits = resolve(hash_type, bits)
        self._hash_type = kind.name
        self._max_distance = (
            kind.radius(self._bits)
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
        if backend in _FAISS_BACKENDS:  # checked now, not at the first compaction
            make_backend(backend, self._bits, **self._backend_params)
        self._name = check_text(name, "name")
        self._auto_compact = bool(auto_compact)
        self._write_lock = threading.RLock()
        self._pending: _Pending | None = None
        self._checkpoint: str | None = None
        self._quarantine: dict[object, Rejected] = {}  # key (or where, reason) -> record
        empty = self._segment(np.zeros((0, self.nbytes), np.uint8), np.zeros(0, np.int64))
        self._snapshot = Snapshot((empty,), (None,), 0)

    # ------------------------------------------------------------ properties

    @property
    def hash_type(self) -> str:
        """The hash type (``"pdq"``, ``"phash"``, ... or ``"raw"``)."""
        return self._hash_type

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

    @property
    def checkpoint(self) -> str | None:
        """The position of the feed this list follows (its cursor or last update time), as
        the last :meth:`apply` of a batch with a checkpoint set it; saved with the list."""
        return self._checkpoint

    @property
    def quarantined(self) -> tuple[Rejected, ...]:
        """The records :meth:`apply` refused and that the feed has not replaced since.

        One record per key: the latest refused version of a record (a later valid version or
        a deletion of its key takes it out), plus the refused records without a key (each
        once). Saved with the list. See :mod:`hashmatch.hygiene` for the rules."""
        return tuple(self._quarantine.values())

    def __len__(self) -> int:
        return self._snapshot.live

    def __contains__(self, entry_id: object) -> bool:
        if isinstance(entry_id, bool) or not isinstance(entry_id, (int, np.integer)):
            return False
        if not 0 <= int(entry_id) <= np.iinfo(np.int64).max:
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
        """What the list holds and how it is laid out.

        Returns
        -------
        dict
            ``entries``; ``segments`` (the entries, removed entries awaiting compaction and
            index kind of each); ``next_id``; the live entries counted by ``labels`` (label ->
            entries with it; ``unlabelled``: entries without any), by ``sources`` (source ->
            entries; ``unsourced``: entries without one) and by ``quality`` band
            (``missing``, ``0-49``, ``50-79``, ``80-100``); ``quarantined``: the number of
            records in :attr:`quarantined`.

        Examples
        --------
        >>> hl = hm.HashList("pdq")
        >>> _ = hl.add(["ab" * 32, "cd" * 32], labels=[["spam"], []], quality=[90, None])
        >>> s = hl.stats()
        >>> s["labels"], s["unlabelled"], s["quality"]
        ({'spam': 1}, 1, {'missing': 1, '0-49': 0, '50-79': 0, '80-100': 1})
        """
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
            **_profile(snap),
            "quarantined": len(self._quarantine),
        }

    # ------------------------------------------------------------ reading

    def ids(self) -> npt.NDArray[np.int64]:
        """Ids of every entry, ascending."""
        return self._snapshot.ids()

    def snapshot(self) -> Snapshot:
        """The list's current state: an immutable :class:`~hashmatch.storage.Snapshot` that
        later writes never change (searches on it see one consistent list)."""
        return self._snapshot

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
        return Entry.of(snap.segments[seg[0]], int(row[0]))

    def get_key(self, key: str) -> Entry:
        """The entry with this external key (the first lookup builds a key map).

        Raises
        ------
        EntryNotFound
            No entry has this key.
        """
        text = check_text(key, "key")
        snap = self._snapshot
        seg, row = snap.locate_keys([text] if text else [])
        if not len(seg) or seg[0] < 0:
            raise EntryNotFound(f"key: no entry with key {key!r}")
        return Entry.of(snap.segments[seg[0]], int(row[0]))

    def entries(self) -> Iterator[Entry]:
        """Every entry, in id order (a consistent snapshot even during writes)."""
        for segment, rows in self._snapshot.sorted_live():
            for row in rows.tolist():
                yield Entry.of(segment, row)

    def match(
        self,
        hashes: object,
        *,
        max_distance: int | None = None,
        qualities: object = None,
        min_quality: float | None = None,
        groups: object = None,
        dihedral: bool = False,
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
        groups : array_like of int, optional
            The group of each query (e.g. the frames of one video share a group number);
            :meth:`MatchResult.by_group` aggregates the matches per group.
        dihedral : bool, optional
            Each query is a stack of 8 variants (the rotations and mirrors of one image, in
            the order of :data:`hashmatch.TRANSFORMS`; ``hash_image(..., dihedral=True)``
            computes them): an entry matches when any variant is within the radius, and is
            reported once per query, at its best variant (``result.variants``). One quality
            and one group per stack.
        threads : int, optional
            Threads to use; default every core.

        Returns
        -------
        MatchResult
            One record per (query, entry) pair, ordered by query, distance, id.

        Examples
        --------
        A mirrored upload: the query's ``flip_left_right`` variant is the banked hash.

        >>> banned = hm.HashList("pdq")
        >>> _ = banned.add(hm.datasets.random_codes(3, 256, seed=1), keys=["a", "b", "c"])
        >>> stacks = hm.datasets.random_codes(8, 256, seed=2)[None]  # one query, 8 variants
        >>> stacks[0, hm.TRANSFORMS.index("flip_left_right")] = hm.from_hex(banned.get(1).hash)
        >>> [(m.key, m.distance, m.transform) for m in banned.match(stacks, dihedral=True)]
        [('b', 0, 'flip_left_right')]
        """
        queries = Queries.prepare(
            hashes, self.nbytes, qualities, min_quality, groups, dihedral=check_dihedral(dihedral)
        )
        radius = (
            self._max_distance
            if max_distance is None
            else check_max_distance(max_distance, self._bits)
        )
        hits = self.hits(queries, radius, threads=threads)
        return MatchResult.from_hits(
            [self._name or "list"],
            [hits],
            queries.total,
            queries.skipped,
            queries.groups,
            dihedral=queries.codes.ndim == 3,
        )

    def hits(
        self, queries: Queries, max_distance: int, *, threads: int | None = None
    ) -> list[Hits]:
        """Raw matches of prepared queries (:class:`Queries`) on the current snapshot, per
        segment: the building block of :meth:`match` and :class:`~hashmatch.Matcher`."""
        return self._snapshot.range_hits(
            queries.codes, queries.numbers, max_distance, check_threads(threads)
        )

    @overload
    def search(
        self,
        hashes: object,
        k: int,
        *,
        dihedral: Literal[False] = False,
        threads: int | None = None,
    ) -> SearchResult: ...
    @overload
    def search(
        self, hashes: object, k: int, *, dihedral: Literal[True], threads: int | None = None
    ) -> DihedralSearchResult: ...
    @overload
    def search(
        self, hashes: object, k: int, *, dihedral: bool, threads: int | None = None
    ) -> SearchResult | DihedralSearchResult: ...

    def search(
        self, hashes: object, k: int, *, dihedral: bool = False, threads: int | None = None
    ) -> SearchResult | DihedralSearchResult:
        """The k nearest entries of each query: ``(distances, ids)`` of shape (nq, min(k, len)).

        Exact for exact backends; with a faiss backend, missing neighbours are reported with
        id -1 and distance ``bits + 1``. With ``dihedral=True`` each query is a stack of 8
        variants (as in :meth:`match`), entries are ranked by their best variant, and the
        result also has the ``variants`` that reached each distance.
        """
        if check_dihedral(dihedral):
            codes, _ = as_variant_codes(hashes, name="hashes", nbytes=self.nbytes)
        else:
            codes, _ = as_codes(hashes, name="hashes", nbytes=self.nbytes)
        distances, ids, variants = self._snapshot.knn(
            codes, check_k(k), check_threads(threads), missing=self._bits + 1
        )
        if variants is None:
            return SearchResult(distances, ids)
        return DihedralSearchResult(distances, ids, variants)

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
        columns = Columns.normalised(
            n,
            dict(keys=keys, labels=labels, source=source, quality=quality, extras=extras),
        )
        return self._add(codes, ids, columns)

    def _add(
        self, codes: npt.NDArray[np.uint8], ids: object, columns: Columns
    ) -> npt.NDArray[np.int64]:
        n = len(codes)
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
        id_array = np.zeros(0, np.int64) if ids is None else check_id_list(ids)
        given = 0 if keys is None else len(_seq(keys, "keys"))
        key_list: list[str] = [k for k in field_named("key").normalise(keys, given) if k]
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
        hash: object = UNCHANGED,
        labels: object = UNCHANGED,
        source: object = UNCHANGED,
        quality: object = UNCHANGED,
        extras: object = UNCHANGED,
    ) -> Entry:
        """Change one entry's hash or metadata (found by id or key); its id stays the same.

        Fields left ``UNCHANGED`` keep their value; ``None`` clears ``source``, ``quality``
        or ``extras``. The arguments take one value each, as :meth:`add` takes for one hash.

        Returns
        -------
        Entry
            The updated entry.
        """
        with self._write_lock:
            if (entry_id is None) == (key is None):
                raise InvalidArgument("update: pass exactly one of entry_id or key")
            old = (
                self.get(entry_id)
                if entry_id is not None
                else self.get_key(str(check_text(key, "key")))
            )
            new_codes = (
                as_codes(old.hash, nbytes=self.nbytes)[0]
                if hash is UNCHANGED
                else as_codes(hash, name="hash", nbytes=self.nbytes)[0]
            )
            if len(new_codes) != 1:
                raise InvalidArgument(f"hash: expected one hash, got {len(new_codes)}")
            given = {"labels": labels, "source": source, "quality": quality, "extras": extras}
            current = old._asdict()
            columns = Columns.normalised(
                1,
                {
                    f.argument: [current[f.name]]
                    if given.get(f.argument, UNCHANGED) is UNCHANGED
                    else [label_set(labels, "labels")]
                    if f.name == "labels"
                    else given[f.argument]
                    for f in FIELDS
                },
            )
            ids = np.array([old.id], np.int64)
            if self._pending is not None:  # part of the batch: applied (or dropped) with it
                self._pending.removes.append(ids)
                self._pending.adds.append((new_codes.copy(), ids, columns))
                return Entry.of(Segment(None, new_codes, ids, columns), 0)
            self._commit(_Pending(removes=[ids], adds=[(new_codes.copy(), ids, columns)]))
            return self.get(old.id)

    def apply(
        self,
        batch: FeedBatch,
        *,
        strict: bool = False,
        min_quality: MinQuality = "auto",
        where: str | None = None,
    ) -> ApplyReport:
        """Apply one batch of an exchange feed as one atomic, idempotent refresh.

        Each upsert is matched to the list by its key: a new key adds an entry (with a new
        id), a known key whose hash or metadata differ updates its entry (keeping its id), an
        identical one changes nothing. Deleted keys are removed (unknown ones are ignored).
        Everything is checked before anything changes, and the result is published in one
        snapshot (as :meth:`batch`), so queries see the whole batch or none of it, and
        applying the same batch again changes nothing.

        Records that may not enter the index (see :mod:`hashmatch.hygiene`: a hash of the
        wrong length, all zeros or all ones, a quality below the floor; or a bad key, label,
        source or extra) and the batch's own ``rejected`` records are *quarantined*: listed
        in the report and in :attr:`quarantined`, never indexed. A quarantined version of a
        known key also removes that key's entry: the list then holds what the feed holds.

        Parameters
        ----------
        batch : FeedBatch
            Upserts (keyed records), deleted keys, the checkpoint and rejected records.
        strict : bool, default False
            Raise at the first record that would be quarantined (naming it and why), and
            change nothing.
        min_quality : "auto", int or None, default "auto"
            Quarantine hashes whose known quality is below this: ``"auto"`` is 50 for PDQ
            and vPDQ and no floor for types without a quality; None is no floor.
        where : str, optional
            What to call the upserts in reasons and errors (a file path): a record is then
            ``where:line`` when the records have line numbers, else ``where[row]``; by
            default ``upserts[row]``.

        Returns
        -------
        ApplyReport
            Counts of entries added, updated, removed and unchanged, the records quarantined
            by this batch and the list's checkpoint after it.

        Notes
        -----
        Within one batch the last upsert of a key wins, and a key both upserted and deleted
        is deleted. A column the upserts do not carry at all (``labels=None``,
        ``sources=None``...) keeps the entry's current value (new entries get none); a
        column they carry replaces it. The upserts' ``ids`` are not used: entries are known
        by their keys. A batch without a checkpoint keeps the list's.

        Raises
        ------
        InvalidArgument
            ``strict=True`` and a record would be quarantined (nothing is applied); or
            ``apply`` inside :meth:`batch`.
        HashTypeMismatch
            ``strict=True`` and the upserts are hashes of another width.

        Examples
        --------
        >>> from hashmatch.formats import FeedBatch, HashRecords
        >>> hl = hm.HashList("pdq")
        >>> page = HashRecords(["ab" * 32, "00" * 32], keys=["te:1", "te:2"], labels=[("t",), ()])
        >>> report = hl.apply(FeedBatch(page, checkpoint="2026-12-01T10:00"))
        >>> report.added, [(r.key, r.reason) for r in report.quarantined], hl.checkpoint
        (1, [('te:2', 'all-zero hash')], '2026-12-01T10:00')
        >>> hl.apply(FeedBatch(page)).unchanged  # applying it again changes nothing
        1
        >>> hl.apply(FeedBatch(HashRecords(["cd" * 32], keys=["te:1"]), deletes=("te:9",))).updated
        1
        """
        if not isinstance(batch, FeedBatch):
            raise InvalidType(f"batch: expected a FeedBatch, got {type(batch).__name__}")
        floor = min_quality_for(self._hash_type, min_quality)
        name = "upserts" if where is None else str(where)
        with self._write_lock:
            if self._pending is not None:
                raise InvalidArgument("apply: a feed batch cannot be applied inside batch()")
            snap = self._snapshot
            plan = _plan_feed(snap, self._bits, batch, name, floor, bool(strict))
            deleted = list(dict.fromkeys(batch.deletes))
            gone = [k for k, s in zip(deleted, snap.locate_keys(deleted)[0], strict=True) if s >= 0]
            refused = list(plan.refused)
            dropped = [
                k for k, s in zip(refused, snap.locate_keys(refused)[0], strict=True) if s >= 0
            ]
            pending = _Pending(remove_keys=gone + dropped)
            if len(plan.ids):
                pending.removes.append(plan.ids[~plan.new])
                pending.adds.append((plan.codes, plan.ids, plan.columns))
            if pending.remove_keys or pending.adds:
                self._commit(pending)  # one snapshot; a failure leaves the list as it was
            for key in (*deleted, *plan.winners):
                self._quarantine.pop(key, None)
            for key, record in plan.refused.items():
                self._quarantine.pop(key, None)  # the latest version last
                self._quarantine[key] = record
            for record in plan.keyless:
                self._quarantine.setdefault((record.where, record.reason), record)
            if batch.checkpoint is not None:
                self._checkpoint = batch.checkpoint
            return ApplyReport(
                added=int(plan.new.sum()),
                updated=int((~plan.new).sum()),
                removed=len(gone) + len(dropped),
                unchanged=plan.unchanged,
                quarantined=plan.quarantined,
                checkpoint=self._checkpoint,
            )

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
        removed = np.concatenate(pending.removes) if pending.removes else np.zeros(0, np.int64)
        snap = self._snapshot.removing(removed, pending.remove_keys)
        if pending.adds:
            codes = np.concatenate([a[0] for a in pending.adds])
            ids = np.concatenate([a[1] for a in pending.adds])
            columns = Columns.concat([a[2] for a in pending.adds])
            check_ids(ids, len(ids))  # unique across the batch
            snap.check_new(ids, columns)
            # Index the new rows only if they stay a segment of their own: a compaction due
            # now merges them from their codes (the first add to an empty list, say).
            unindexed = snap.adding(Segment(None, codes, ids, columns))
            due = compaction_due(unindexed) if self._auto_compact else None
            if due is None:
                snap = snap.adding(self._segment(codes, ids, columns, base=False))
            else:
                snap = self._compacted(unindexed, deltas_only=due == "deltas")
        elif self._auto_compact and (due := compaction_due(snap)) is not None:
            snap = self._compacted(snap, deltas_only=due == "deltas")
        self._publish(snap)  # once, complete: a failure above leaves the list as it was

    def _publish(self, snap: Snapshot) -> None:
        self._snapshot = snap  # one reference assignment: atomic for readers

    def _compacted(self, snap: Snapshot, *, deltas_only: bool = False) -> Snapshot:
        return compacted(snap, self._segment, self.nbytes, deltas_only=deltas_only)

    def _segment(
        self,
        codes: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.int64],
        columns: Columns | None = None,
        base: bool = True,
    ) -> Segment:
        """A segment over these entries: the configured backend for the base segment, the
        cost model's exact choice for small new ones."""
        index = self._new_index(len(codes), base)
        if len(codes):
            index.add(codes, np.arange(len(codes), dtype=np.int64))
        return Segment(index, codes, ids, Columns.of(len(codes)) if columns is None else columns)

    def _new_index(self, n: int, base: bool) -> Any:
        """The configured backend for a base segment with entries, else the exact index the
        cost model prefers (small new segments are searched exactly until compacted)."""
        approximate = self._backend in _FAISS_BACKENDS
        name = "auto" if approximate and not (base and n) else self._backend
        params = self._backend_params if name in _FAISS_BACKENDS else {}
        return make_backend(name, self._bits, max_distance=self._max_distance, n=n, **params)

    # ------------------------------------------------------------ persistence and files

    def save(self, path: str | os.PathLike[str], *, key: bytes | None = None) -> None:
        """Write the list atomically (see :func:`hashmatch.save`); compacts it first. With
        ``key`` (at least 16 bytes), the file is signed: see :func:`hashmatch.save`."""
        save(self, path, key=key)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        mmap: bool = False,
        verify: bool = True,
        key: bytes | None = None,
    ) -> HashList:
        """Open a list written by :meth:`save`; ``mmap=True`` maps it instead of reading it.

        With ``key``, the file must be signed with it (see :func:`hashmatch.load`).

        With ``verify=True`` (the default) every checksum is checked and every derived
        structure against what it derives from: the index holds exactly the list's codes, each
        row once; keys and extras are UTF-8, extras JSON objects; the meta fields have their
        types. ``verify=False`` still checks the structure (no file can crash the process or
        make a search read out of bounds) but not those cross-checks: a damaged or tampered
        file may then answer wrongly, and a damaged key or extras raises
        :class:`~hashmatch.IndexFormatError` when the entry is read. The cross-checks cost a
        pass over the codes and the metadata (JSON extras: about a microsecond each).
        """
        obj = load(path, mmap=mmap, verify=verify, key=key)
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
        added = []
        with self._write_lock:
            reader = read_hashes(
                path, format=format, bits=self._bits, skip_invalid=skip_invalid, progress=progress
            )
            with reader, self.batch():
                for chunk in reader:
                    given = {f.argument: getattr(chunk, f.column) for f in FIELDS}
                    if chunk.extras is not None:  # empty cells are no extras
                        given["extras"] = [{k: v for k, v in e.items() if v} for e in chunk.extras]
                    columns = Columns.normalised(len(chunk), given)
                    self._check_not_listed(reader.path, chunk, columns)
                    added.append(self._add(chunk.codes, chunk.ids, columns))
        ids = np.concatenate(added) if added else np.zeros(0, np.int64)
        return ImportResult(ids, list(reader.skipped))

    def _check_not_listed(self, path: str, chunk: Any, columns: Columns) -> None:
        """Raise naming the file and line of the first id or key of ``chunk`` already listed."""
        snap = self._snapshot
        taken = np.zeros(len(chunk), bool)
        if chunk.ids is not None:
            taken |= snap.locate(chunk.ids)[0] >= 0
        keys = columns.keys.get(np.arange(len(columns)))
        present = [(i, k) for i, k in enumerate(keys) if k is not None]
        if present:
            found = snap.locate_keys([k for _, k in present])[0] >= 0
            taken[np.asarray([i for i, _ in present])[found]] = True
        if taken.any():
            i = int(np.argmax(taken))
            line = f":{int(chunk.lines[i])}" if chunk.lines is not None else ""
            what = (
                f"id {int(chunk.ids[i])}"
                if chunk.ids is not None and snap.locate(chunk.ids[i : i + 1])[0][0] >= 0
                else f"key {keys[i]!r}"
            )
            raise InvalidArgument(
                f"{path}{line}: {what} is already in the list (nothing was imported; remove "
                "the listed entries first, or update() them)"
            )

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
        self, path: str | os.PathLike[str], *, format: str = "auto", chunk_size: int = 1_000_000
    ) -> int:
        """Write every entry (id order) to a hex, CSV or TSV file, atomically; CSV and TSV
        carry ids, keys, labels, sources, qualities and extras, and :meth:`import_file` reads
        them back. The format follows the extension (``.csv``, ``.tsv``/``.tab``,
        ``.txt``/``.hex``, each optionally ``.gz``) unless ``format`` names one; a format that
        contradicts the extension is refused. Returns the number of entries written."""
        return write_hashes(path, self._records(chunk_size), format=format)

    def _records(self, chunk_size: int) -> Iterator[HashRecords]:
        for segment, rows in self._snapshot.sorted_live():
            for lo in range(0, len(rows), chunk_size):
                r = rows[lo : lo + chunk_size]
                values = segment.columns.decoded(r)
                columns: dict[str, Any] = {f.column: values[f.name] for f in FIELDS}
                columns["qualities"] = segment.columns.quality[r]  # int16, -1 for none
                columns["extras"] = [
                    {k: _extra_text(v) for k, v in e.items()} for e in values["extras"]
                ]
                yield HashRecords(segment.codes[r], ids=segment.ids[r], **columns)

    def _to_sections(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """meta and sections of the list as saved (see :mod:`hashmatch._listfile`); the list
        is compacted first, so one sorted segment holds every entry."""
        with self._write_lock:
            snap = self._snapshot
            if len(snap.segments) > 1 or snap.dead[0] is not None:
                snap = self._compacted(snap)
                self._publish(snap)
        meta, sections = segment_sections(snap.segments[0])
        meta.update(
            kind="HashList",
            list_format=LIST_FORMAT,
            hash_type=self._hash_type,
            bits=self._bits,
            max_distance=self._max_distance,
            backend=self._backend,
            backend_params=self._backend_params,
            name=self._name,
            next_id=int(snap.next_id),
        )
        # Written only when set: a list that follows no feed stays readable by older versions.
        if self._checkpoint is not None:
            meta["checkpoint"] = self._checkpoint
        if self._quarantine:
            meta["quarantine"] = [list(r) for r in self._quarantine.values()]
        return meta, sections

    @classmethod
    def _from_sections(
        cls, meta: dict[str, Any], sections: dict[str, Any], where: str, verify: bool = True
    ) -> HashList:
        """The list that :meth:`_to_sections` wrote; every value is checked before use, and
        with ``verify`` every derived structure against what it derives from (see
        :func:`hashmatch._listfile.segment_from_sections`)."""
        types: dict[str, type | tuple[type, ...]] = {
            "hash_type": str,
            "bits": int,
            "max_distance": int,
            "backend": str,
            "backend_params": dict,
            "name": (str, type(None)),
        }
        for field_name, kind in types.items():
            value = meta.get(field_name)
            if field_name not in meta or isinstance(value, bool) or not isinstance(value, kind):
                raise IndexFormatError(
                    f"{where}: 'meta' field {field_name!r} is missing or of the wrong type "
                    f"({type(value).__name__})"
                )
        try:
            hash_list = cls(
                meta["hash_type"],
                bits=meta["bits"],
                max_distance=meta["max_distance"],
                backend=meta["backend"],
                backend_params=meta["backend_params"],
                name=meta["name"],
            )
        except (KeyError, TypeError, ValueError, HashmatchError) as e:
            raise IndexFormatError(f"{where}: 'meta' does not describe a hash list ({e})") from None
        segment, next_id = segment_from_sections(
            meta,
            sections,
            where,
            bits=hash_list.bits,
            faiss_index=lambda data: backend_from_bytes(
                hash_list.backend, hash_list.bits, hash_list._backend_params, data
            ),
            verify=verify,
        )
        hash_list._publish(Snapshot((segment,), (None,), next_id))
        hash_list._checkpoint, hash_list._quarantine = _feed_meta(meta, where)
        return hash_list

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its saved sections (compacted; no index is rebuilt on unpickling)."""
        meta, sections = self._to_sections()
        return (_unpickle, (meta, {k: _as_bytes(v) for k, v in sections.items()}))


# ---------------------------------------------------------------- helpers


class ImportResult(NamedTuple):
    """What :meth:`HashList.import_file` added, and the rows it skipped."""

    ids: npt.NDArray[np.int64]
    """Ids of the added entries, in file order."""
    skipped: list[tuple[int, str]]
    """(line, reason) of each bad row skipped (``skip_invalid=True``)."""


class ApplyReport(NamedTuple):
    """What :meth:`HashList.apply` did with one feed batch."""

    added: int
    """Entries added (new keys)."""
    updated: int
    """Entries whose hash or metadata changed (their ids stay)."""
    removed: int
    """Entries removed: deleted keys that were listed, and listed keys whose new version was
    quarantined."""
    unchanged: int
    """Upserts identical to their entry."""
    quarantined: list[Rejected]
    """Every record of the batch refused (the batch's own ``rejected`` first), with where it
    was and why."""
    checkpoint: str | None
    """The list's checkpoint after the batch."""


@dataclass
class _FeedPlan:
    """The changes a feed batch makes, computed and checked before any of them is made."""

    codes: npt.NDArray[np.uint8]  # the entries to add or replace
    ids: npt.NDArray[np.int64]
    new: npt.NDArray[np.bool_]  # True: a new entry, False: replaces the entry of that id
    columns: Columns
    unchanged: int
    winners: set[str]  # keys whose (final) upsert is listed after the batch
    refused: dict[str, Rejected]  # keys whose final version is quarantined
    keyless: list[Rejected]  # refused records without a key
    quarantined: list[Rejected]  # every refused record, for the report


def _refuse(strict: bool, record: Rejected) -> Rejected:
    """``record``, or in strict mode an error naming it."""
    if strict:
        key = "" if record.key is None else f" (key {record.key!r})"
        raise InvalidArgument(f"{record.where}{key}: {record.reason}; nothing was applied")
    return record


def _plan_feed(
    snap: Snapshot, bits: int, batch: FeedBatch, where: str, floor: int | None, strict: bool
) -> _FeedPlan:
    """The changes ``batch`` makes to ``snap`` (see :meth:`HashList.apply`)."""
    records = batch.upserts
    n = len(records)
    quarantined = [_refuse(strict, r) for r in batch.rejected]
    if strict and n and records.codes.shape[1] * 8 != bits:
        raise HashTypeMismatch(
            f"{where}: expected {bits}-bit hashes, got {records.codes.shape[1] * 8} bits;"
            " nothing was applied"
        )
    kept, screened = screen(records, bits=bits, min_quality=floor, where=where)
    reasons: dict[int, Rejected] = {}
    screened_rows = np.flatnonzero(~kept).tolist()
    for i, record in zip(screened_rows, screened, strict=True):
        reasons[i] = _refuse(strict, record)
    keys: list[str] = [str(k) for k in (records.keys or [])]
    for i, key in enumerate(keys):
        if i not in reasons and ("\0" in key or not key):
            reasons[i] = _refuse(
                strict, Rejected(where_of(records, i, where), None, f"bad key {key!r}")
            )
    deleted = set(batch.deletes)
    last = {key: i for i, key in enumerate(keys)}  # the last upsert of a key wins
    final = [i for i, key in enumerate(keys) if last[key] == i and key not in deleted]
    rows = [i for i in final if i not in reasons]
    listed = _Listed.of(snap, [keys[i] for i in rows])
    columns, bad = _feed_columns(records, rows, keys, listed)
    for i, message in bad.items():
        reasons[i] = _refuse(strict, Rejected(where_of(records, i, where), keys[i], message))
    if bad:
        keep = np.asarray([i not in bad for i in rows], bool)
        rows = [i for i in rows if i not in bad]
        listed = listed.take(keep)
        columns, _ = _feed_columns(records, rows, keys, listed)
    quarantined += [reasons[i] for i in sorted(reasons)]
    winners = {keys[i] for i in rows}
    refused = {keys[i]: reasons[i] for i in final if i in reasons and reasons[i].key is not None}
    for record in batch.rejected:
        if record.key is not None and record.key not in winners and record.key not in deleted:
            refused.setdefault(record.key, record)
    keyless = [r for r in quarantined if r.key is None]

    # Compare with the entries listed now: unchanged upserts are left out.
    codes = records.codes[rows] if rows else np.zeros((0, bits // 8), np.uint8)
    values = columns.decoded(np.arange(len(rows)))
    changed = ~listed.found | (listed.codes != codes).any(axis=1)
    for j in np.flatnonzero(~changed).tolist():
        changed[j] = any(listed.values[f.name][j] != values[f.name][j] for f in FIELDS)
    ids, new = listed.ids.copy(), ~listed.found
    start = snap.next_id
    if start + int(new.sum()) - 1 > np.iinfo(np.int64).max:
        raise InvalidArgument("ids: new entries would pass id 2**63 - 1; nothing was applied")
    ids[new] = np.arange(start, start + int(new.sum()), dtype=np.int64)
    take = np.flatnonzero(changed)
    return _FeedPlan(
        codes=np.ascontiguousarray(codes[take]),
        ids=ids[take],
        new=new[take],
        columns=columns.take(take),
        unchanged=len(rows) - len(take),
        winners=winners,
        refused=refused,
        keyless=keyless,
        quarantined=quarantined,
    )


@dataclass
class _Listed:
    """The entries listed under some keys: found or not, and the id, code and field values
    of each (zeros and None where not found)."""

    found: npt.NDArray[np.bool_]
    ids: npt.NDArray[np.int64]
    codes: npt.NDArray[np.uint8]
    values: dict[str, list[Any]]

    @staticmethod
    def of(snap: Snapshot, keys: list[str]) -> _Listed:
        """Looked up in ``snap``, one segment at a time."""
        seg, srow = snap.locate_keys(keys)
        n = len(keys)
        nbytes = snap.segments[0].codes.shape[1]
        ids = np.full(n, -1, np.int64)
        codes = np.zeros((n, nbytes), np.uint8)
        values: dict[str, list[Any]] = {f.name: [None] * n for f in FIELDS}
        for i in np.unique(seg[seg >= 0]).tolist():
            at = np.flatnonzero(seg == i)
            segment, rows = snap.segments[i], srow[at]
            ids[at], codes[at] = segment.ids[rows], segment.codes[rows]
            for name, decoded in segment.columns.decoded(rows).items():
                column = values[name]
                for j, value in zip(at.tolist(), decoded, strict=True):
                    column[j] = value
        return _Listed(seg >= 0, ids, codes, values)

    def take(self, keep: npt.NDArray[np.bool_]) -> _Listed:
        at = np.flatnonzero(keep).tolist()
        values = {name: [v[j] for j in at] for name, v in self.values.items()}
        return _Listed(self.found[keep], self.ids[keep], self.codes[keep], values)


def _feed_columns(
    records: HashRecords, rows: list[int], keys: list[str], listed: _Listed
) -> tuple[Columns, dict[int, str]]:
    """The columns of the upserts at ``rows`` (a column the records lack keeps the listed
    entry's value, ``listed``), and the reason each row with a bad value has (then the
    columns are those of no row)."""
    given: dict[str, list[Any]] = {"keys": [keys[i] for i in rows]}
    for f in FIELDS:
        if f.name == "key":
            continue
        column = getattr(records, f.column)
        if column is None:  # keep the listed value; none for new entries
            values = listed.values[f.name]
            if f.name == "labels":
                values = [() if v is None else v for v in values]
        elif f.name == "quality":
            values = [None if q < 0 else q for q in column[rows].tolist()]
        elif f.name == "extras":  # empty cells are no extras, as import_file reads them
            values = [{k: v for k, v in column[i].items() if v} for i in rows]
        else:
            values = [column[i] for i in rows]
        given[f.argument] = values
    try:
        return Columns.normalised(len(rows), given), {}
    except HashmatchError:
        pass
    bad = {}
    for j, i in enumerate(rows):
        try:
            Columns.normalised(1, {name: [v[j]] for name, v in given.items()})
        except HashmatchError as e:
            bad[i] = str(e).replace("[0]", "")
    return Columns.normalised(0, {}), bad


def _profile(snap: Snapshot) -> dict[str, Any]:
    """Live entries counted by label, source and quality band (see :meth:`HashList.stats`)."""
    labels: dict[str, int] = {}
    sources: dict[str, int] = {}
    unlabelled = unsourced = 0
    bands = {"missing": 0, "0-49": 0, "50-79": 0, "80-100": 0}
    for i, segment in enumerate(snap.segments):
        rows = snap.live_rows(i)
        for name in ("labels", "source"):
            column = segment.columns[name]
            if not isinstance(column, Interned):
                raise TypeError(f"column {name!r}: expected an interned column")
            counts = np.bincount(column.codes[rows], minlength=len(column.table)).tolist()
            for value, count in zip(column.table, counts, strict=True):
                if not count:
                    continue
                if name == "source":
                    if value is None:
                        unsourced += count
                    else:
                        sources[value] = sources.get(value, 0) + count
                elif not value:
                    unlabelled += count
                for label in value if name == "labels" else ():
                    labels[label] = labels.get(label, 0) + count
        q = segment.columns.quality[rows]
        bands["missing"] += int((q < 0).sum())
        bands["0-49"] += int(((q >= 0) & (q < 50)).sum())
        bands["50-79"] += int(((q >= 50) & (q < 80)).sum())
        bands["80-100"] += int((q >= 80).sum())
    return {
        "labels": dict(sorted(labels.items())),
        "unlabelled": unlabelled,
        "sources": dict(sorted(sources.items(), key=lambda kv: str(kv[0]))),
        "unsourced": unsourced,
        "quality": bands,
    }


def _as_bytes(section: Any) -> npt.NDArray[np.uint8]:
    """A section as flat bytes (a uint8 array: pickled without a text copy)."""
    return (
        np.frombuffer(section, dtype=np.uint8)
        if not isinstance(section, np.ndarray)
        else (np.ascontiguousarray(section).reshape(-1).view(np.uint8))
    )


def _feed_meta(meta: dict[str, Any], where: str) -> tuple[str | None, dict[object, Rejected]]:
    """The checkpoint and quarantine of a saved list (lists saved before feeds have none)."""
    checkpoint = meta.get("checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise IndexFormatError(
            f"{where}: 'meta' field 'checkpoint' is of the wrong type ({type(checkpoint).__name__})"
        )
    quarantine: dict[object, Rejected] = {}
    records = meta.get("quarantine", [])
    if not isinstance(records, list):
        records = None
    for item in records or ():
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not isinstance(item[0], str)
            or not isinstance(item[1], (str, type(None)))
            or not isinstance(item[2], str)
        ):
            records = None
            break
        record = Rejected(*item)
        quarantine[record.key if record.key is not None else (record.where, record.reason)] = record
    if records is None:
        raise IndexFormatError(
            f"{where}: 'meta' field 'quarantine' is not a list of [where, key, reason]"
        )
    return checkpoint, quarantine


def _unpickle(meta: dict[str, Any], sections: dict[str, Any]) -> HashList:
    return HashList._from_sections(meta, sections, "pickled HashList")


def _extra_text(value: object) -> str:
    """Extras are written to text files as strings; JSON for anything but a str."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _seq(value: object, name: str) -> Sequence[Any]:
    if isinstance(value, str) or not isinstance(value, (Sequence, np.ndarray)):
        raise InvalidType(f"{name}: expected a sequence, got {type(value).__name__}")
    return list(value)
