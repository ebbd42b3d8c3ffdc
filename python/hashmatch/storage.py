"""The storage engine of hash lists: immutable segments, snapshots and compaction.

A list's state is a :class:`Snapshot`: a tuple of :class:`Segment` (each an index over some
entries, whose ids inside the index are its row numbers, plus the codes, entry ids and metadata
:class:`~hashmatch.schema.Columns` of those rows) and a removed-rows mask per segment.
Snapshots are never modified: a write builds the next snapshot beside the current one
(:meth:`Snapshot.removing`, :meth:`Snapshot.adding`) and the owner publishes it with one
reference assignment, so readers that took the old one finish on it and new readers see all of
the write or none of it.

New entries go into new small segments and removed ones are masked, until
:func:`compaction_due` says the small segments or the removed entries pass an eighth of the
list (or there are too many small segments); :func:`compacted` then merges live rows into one
segment sorted by id. Searches over a snapshot (:meth:`Snapshot.range_hits`,
:meth:`Snapshot.knn`) return plain arrays per segment; :mod:`hashmatch.results` turns them into
match records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from hashmatch.errors import InvalidArgument
from hashmatch.schema import Columns

__all__ = ["Hits", "Segment", "Snapshot", "compacted", "compaction_due"]

COMPACT_FRACTION = 8  # compact once changes pass 1/8 of the live base segment...
COMPACT_MIN_ROWS = 1024  # ...or this many rows, whichever is larger
MAX_DELTA_SEGMENTS = 8  # more small segments than this: merge them together


class Segment:
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

    def range_search(
        self, codes: npt.NDArray[np.uint8], radius: int, threads: int
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.int32],
        npt.NDArray[np.int64],
        npt.NDArray[np.uint8] | None,
    ]:
        """(lims, distances, rows, variants) for validated queries: codes (nq, nbytes), or
        variant stacks (nq, v, nbytes), whose hits carry the best variant (else None).

        An approximate index's candidates are re-measured against this segment's own codes
        (the list's data), so a hit is always reported at its true distance and within the
        radius, whatever the approximate structure holds."""
        stacks = codes.ndim == 3
        if stacks:
            lims, distances, rows, variants = self.index.range_search_variants_validated(
                codes, radius, threads
            )
        else:
            lims, distances, rows = self.index.range_search_validated(codes, radius, threads)
            variants = None
        if getattr(self.index, "exact", True) or not len(rows):
            return lims, distances, rows, variants
        queries = np.repeat(np.arange(len(codes)), lims[1:] - lims[:-1])
        if stacks:
            each = pair_distances(codes[queries], self.codes[rows][:, None, :])
            true, variants = each.min(axis=1), each.argmin(axis=1).astype(np.uint8)
        else:
            true = pair_distances(codes[queries], self.codes[rows])
        keep = true <= radius
        kept = np.concatenate([[0], np.cumsum(keep)])[lims]
        order = np.lexsort((rows[keep], true[keep], queries[keep]))
        best = None if variants is None else variants[keep][order]
        return kept.astype(lims.dtype), true[keep][order], rows[keep][order], best

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

    def entry_values(self, row: int) -> dict[str, Any]:
        """Every field of one row: ``id``, ``codes`` (the hash) and the metadata fields."""
        values = {name: column[0] for name, column in self.columns.decoded([row]).items()}
        return {"id": int(self.ids[row]), "code": self.codes[row], **values}


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def pair_distances(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """Hamming distance of each pair of codes ``a[..., :]`` and ``b[..., :]`` (broadcast)."""
    result: npt.NDArray[np.int32] = _POPCOUNT[np.bitwise_xor(a, b)].sum(axis=-1, dtype=np.int32)
    return result


class Hits(NamedTuple):
    """Matches in one segment: parallel arrays of query number, distance and row, and for
    variant-stack queries the variant that matched (else None)."""

    segment: Segment
    queries: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int32]
    rows: npt.NDArray[np.int64]
    variants: npt.NDArray[np.uint8] | None = None


MakeSegment = Callable[[npt.NDArray[np.uint8], npt.NDArray[np.int64], Columns, bool], Segment]
"""``make(codes, ids, columns, base)``: a segment over these rows (``base``: the big one)."""


@dataclass(frozen=True)
class Snapshot:
    """One immutable state of a list: segments and the removed rows of each."""

    segments: tuple[Segment, ...]
    dead: tuple[npt.NDArray[np.bool_] | None, ...]
    next_id: int

    @cached_property
    def live(self) -> int:
        """Number of live entries (counted once per snapshot: snapshots never change)."""
        return sum(len(s) - (0 if d is None else int(d.sum())) for s, d in self.live_parts())

    def live_parts(self) -> Iterator[tuple[Segment, npt.NDArray[np.bool_] | None]]:
        return iter(zip(self.segments, self.dead, strict=True))

    def live_rows(self, i: int) -> npt.NDArray[np.int64]:
        dead = self.dead[i]
        n = len(self.segments[i])
        return np.arange(n) if dead is None else np.flatnonzero(~dead)

    def ids(self) -> npt.NDArray[np.int64]:
        """Ids of every live entry, ascending."""
        parts = [s.ids[self.live_rows(i)] for i, s in enumerate(self.segments)]
        return np.sort(np.concatenate(parts))

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
        """(segment, row) of each live key; -1 for keys not in the list."""
        seg = np.full(len(keys), -1, dtype=np.int64)
        row = np.full(len(keys), -1, dtype=np.int64)
        for i, (segment, dead) in enumerate(self.live_parts()):
            table = segment.key_rows()
            for j, key in enumerate(keys):
                r = table.get(key, -1)
                if r >= 0 and (dead is None or not dead[r]):
                    seg[j], row[j] = i, r
        return seg, row

    def sorted_live(self) -> Iterator[tuple[Segment, npt.NDArray[np.int64]]]:
        """(segment, rows) runs covering every live entry in id order."""
        n = len(self.segments)
        seg = np.concatenate([np.full(len(self.live_rows(i)), i) for i in range(n)])
        rows = np.concatenate([self.live_rows(i) for i in range(n)])
        ids = np.concatenate([s.ids[self.live_rows(i)] for i, s in enumerate(self.segments)])
        order = np.argsort(ids, kind="stable")
        seg, rows = seg[order], rows[order]
        if not len(seg):
            return
        cuts = np.flatnonzero(np.diff(seg)) + 1
        for s, r in zip(np.split(seg, cuts), np.split(rows, cuts), strict=True):
            yield self.segments[int(s[0])], r

    # ------------------------------------------------------------ searching

    def range_hits(
        self,
        codes: npt.NDArray[np.uint8],
        query_numbers: npt.NDArray[np.int64],
        radius: int,
        threads: int,
    ) -> list[Hits]:
        """Every live entry within ``radius`` of each validated query, per segment.

        ``codes`` is (nq, nbytes), or (nq, v, nbytes) variant stacks (each entry is then hit
        once per query, at its best variant). ``query_numbers[i]`` is reported as the query of
        ``codes[i]`` (the caller's numbering, e.g. positions in a batch before a quality
        filter).
        """
        out = []
        for segment, dead in self.live_parts():
            if not len(segment) or not len(codes):
                continue
            lims, distances, rows, variants = segment.range_search(codes, radius, threads)
            queries = np.repeat(query_numbers, lims[1:] - lims[:-1])
            if dead is not None and len(rows):
                keep = ~dead[rows]
                queries, distances, rows = queries[keep], distances[keep], rows[keep]
                variants = None if variants is None else variants[keep]
            out.append(Hits(segment, queries, distances, rows, variants))
        return out

    def knn(
        self, codes: npt.NDArray[np.uint8], k: int, threads: int, missing: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.uint8] | None]:
        """The k nearest live entries of each validated query: (distances, ids, variants),
        each of shape (nq, min(k, live)), ordered by (distance, id); ``missing`` is the
        distance reported with id -1 where an approximate index found fewer. ``codes`` is
        (nq, nbytes), or (nq, v, nbytes) variant stacks, whose entries are ranked by their
        best variant (reported in ``variants``; None for plain queries)."""
        width = min(k, self.live)
        nq = len(codes)
        stacks = codes.ndim == 3
        all_d, all_i = [np.zeros((nq, 0), np.int64)], [np.zeros((nq, 0), np.int64)]
        all_v = [np.zeros((nq, 0), np.uint8)]
        for segment, dead in self.live_parts():
            removed = 0 if dead is None else int(dead.sum())
            if len(segment) - removed == 0 or width == 0:
                continue
            d, rows, variants = _segment_knn(segment, dead, removed, codes, k, threads)
            d = d.astype(np.int64)
            bad = rows < 0
            safe = np.where(bad, 0, rows)
            if not getattr(segment.index, "exact", True):  # true distances, as range_hits
                if stacks:
                    each = pair_distances(codes[:, None], segment.codes[safe][:, :, None])
                    d, variants = each.min(axis=2), each.argmin(axis=2).astype(np.uint8)
                else:
                    d = pair_distances(codes[:, None, :], segment.codes[safe])
                d = d.astype(np.int64)
            if dead is not None:
                bad |= dead[safe]
            d[bad] = missing
            all_d.append(d)
            all_i.append(np.where(bad, -1, segment.ids[safe]))
            all_v.append(np.zeros(d.shape, np.uint8) if variants is None else variants)
        d, ids = np.concatenate(all_d, axis=1), np.concatenate(all_i, axis=1)
        order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), d), axis=1)
        d = np.take_along_axis(d, order, axis=1)[:, :width]
        ids = np.take_along_axis(ids, order, axis=1)[:, :width]
        best = None
        if stacks:
            best = np.take_along_axis(np.concatenate(all_v, axis=1), order, axis=1)[:, :width]
        return d.astype(np.int32), ids, best

    # ------------------------------------------------------------ the next snapshot

    def removing(self, ids: npt.NDArray[np.int64], keys: Sequence[str]) -> Snapshot:
        """This snapshot with the entries of these ids and keys masked (unknown ones ignored)."""
        if not len(ids) and not keys:
            return self
        dead = list(self.dead)
        seg, row = self.locate(ids)
        kseg, krow = self.locate_keys(keys)
        seg, row = np.concatenate([seg, kseg]), np.concatenate([row, krow])
        for i in np.unique(seg[seg >= 0]).tolist():
            mask = np.zeros(len(self.segments[i]), bool) if dead[i] is None else dead[i].copy()
            mask[row[seg == i]] = True
            dead[i] = mask
        return Snapshot(self.segments, tuple(dead), self.next_id)

    def adding(self, segment: Segment) -> Snapshot:
        """This snapshot with a new segment of entries (checked with :meth:`check_new`)."""
        next_id = self.next_id
        if len(segment):
            next_id = max(next_id, min(int(segment.ids.max()) + 1, np.iinfo(np.int64).max))
        return Snapshot((*self.segments, segment), (*self.dead, None), next_id)

    def check_new(self, ids: npt.NDArray[np.int64], columns: Columns) -> None:
        """Raise unless no id and no key of these new entries is live already."""
        seg, _ = self.locate(ids)
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
            kseg, _ = self.locate_keys(given)
            if (kseg >= 0).any():
                j = int(np.argmax(kseg >= 0))
                raise InvalidArgument(f"keys: key {given[j]!r} is already in the list")


def _segment_knn(
    segment: Segment,
    dead: npt.NDArray[np.bool_] | None,
    removed: int,
    codes: npt.NDArray[np.uint8],
    k: int,
    threads: int,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.uint8] | None]:
    """The index's nearest rows of each query, enough of them that the k nearest live ones
    are among them: k plus about twice the removed rows expected among them at first, then
    twice as many for the queries still short, up to the whole segment (not ``k + removed``
    for every query: with many removed rows awaiting compaction that was a scan per query).
    For an exact index "enough" also means every row at the k-th live distance was returned,
    so ties break by id exactly. Variant stacks are ranked by their best variant, which is
    returned too (else None)."""
    stacks = codes.ndim == 3

    def search(queries: npt.NDArray[np.uint8], wanted: int) -> tuple[Any, Any, Any]:
        if stacks:
            return tuple(segment.index.search(queries, wanted, dihedral=True, threads=threads))
        d, r = segment.index.search(queries, wanted, threads=threads)
        return d, r, None

    n = len(segment)
    want = min(k, n - removed)
    # about twice the removed rows expected among the first k, and a few more
    margin = 2 + -(-2 * k * removed // max(n - removed, 1))
    wanted = min(n, k) if dead is None else min(n, k + min(removed, margin))
    distances, rows, variants = search(codes, wanted)
    if dead is None:
        return distances, rows, variants
    exact = getattr(segment.index, "exact", True)
    while wanted < n:
        live = (rows >= 0) & ~dead[np.where(rows < 0, 0, rows)]
        count = live.sum(axis=1)
        short = count < want
        if exact:  # every row at the k-th live distance returned: the last one is farther
            unseen = np.iinfo(np.int32).max
            kth = np.sort(np.where(live, distances, unseen), axis=1)[:, want - 1]
            short |= kth >= distances[:, -1]
        redo = np.flatnonzero(short)
        if not len(redo):
            break
        wanted = min(n, 2 * wanted)
        more_d, more_rows, more_v = search(codes[redo], wanted)
        pad = wanted - rows.shape[1]
        distances = np.pad(distances, ((0, 0), (0, pad)), constant_values=np.iinfo(np.int32).max)
        rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
        distances[redo], rows[redo] = more_d, more_rows
        if variants is not None:
            variants = np.pad(variants, ((0, 0), (0, pad)))
            variants[redo] = more_v
    return distances, rows, variants


def compaction_due(snap: Snapshot) -> Literal["all", "deltas"] | None:
    """The compaction policy: ``"all"`` once new plus removed rows pass an eighth of the live
    base segment (at least 1024), ``"deltas"`` when there are more than 8 small segments."""
    base, deltas = snap.segments[0], snap.segments[1:]
    removed = [0 if d is None else int(d.sum()) for d in snap.dead]
    base_live = len(base) - removed[0]
    delta_rows = sum(len(s) for s in deltas)
    if delta_rows + sum(removed) > max(base_live // COMPACT_FRACTION, COMPACT_MIN_ROWS):
        return "all"
    if base_live == 0 and (delta_rows or removed[0]):
        return "all"
    if len(deltas) > MAX_DELTA_SEGMENTS:
        return "deltas"
    return None


def compacted(
    snap: Snapshot, make: MakeSegment, nbytes: int, *, deltas_only: bool = False
) -> Snapshot:
    """The same live entries in one segment sorted by id (or the base segment plus one merged
    segment of every small one, with ``deltas_only``)."""
    first = 1 if deltas_only else 0
    parts = [(s, snap.live_rows(i)) for i, s in enumerate(snap.segments) if i >= first and len(s)]
    if parts:
        codes = np.concatenate([s.codes[r] for s, r in parts])
        ids = np.concatenate([s.ids[r] for s, r in parts])
        columns = Columns.concat([s.columns.take(r) for s, r in parts])
    else:
        codes, ids = np.zeros((0, nbytes), np.uint8), np.zeros(0, np.int64)
        columns = Columns.of(0)
    order = np.argsort(ids, kind="stable")
    merged = make(codes[order], ids[order], columns.take(order).pruned(), True)
    if deltas_only:
        return Snapshot((snap.segments[0], merged), (snap.dead[0], None), snap.next_id)
    return Snapshot((merged,), (None,), snap.next_id)
