"""Match results: one record per (query, entry) pair, and per-group aggregates.

Built from plain arrays: the hits of each searched list (:class:`hashmatch.storage.Hits`,
parallel arrays of query number, distance and row of a segment) become the columns of a
:class:`MatchResult`; the columns an entry contributes (key, labels, source) are the schema's
fields with ``in_matches`` (:mod:`hashmatch.schema`).

Queries can be *grouped*: the 8 dihedral variants of one image, or the frames of one video,
are several query hashes that stand for one thing. ``match(..., groups=...)`` numbers each
query's group, and :meth:`MatchResult.by_group` aggregates per (group, list, entry): the best
distance and the query that reached it ("best of the 8 rotations wins"), and how many of the
group's searched queries matched the entry (the fraction a video match needs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from hashmatch.dihedral import TRANSFORMS
from hashmatch.schema import FIELDS

if TYPE_CHECKING:
    import pandas

    from hashmatch.storage import Hits

__all__ = ["GroupMatch", "GroupedMatchResult", "Match", "MatchResult"]

R = TypeVar("R")
_ENTRY_COLUMNS = tuple(f for f in FIELDS if f.in_matches)  # key, source, labels


class Match(NamedTuple):
    """One match: query hash ``query`` is within ``distance`` of entry ``id`` of ``list``."""

    query: int
    list: str
    id: int
    key: str | None
    distance: int
    labels: tuple[str, ...]
    source: str | None
    transform: str | None = None
    """With ``dihedral=True``: the query's variant that matched (:data:`hashmatch.TRANSFORMS`)."""


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas needs pandas: pip install 'hashmatch[pandas]'") from None
    return pd


def _columns(per_list: Sequence[Sequence[Hits]], dihedral: bool) -> dict[str, npt.NDArray[Any]]:
    """Columns of every hit of every list, ordered by (query, distance, list, id); with
    ``dihedral``, also each hit's variant."""
    parts = [(number, hit) for number, hits in enumerate(per_list) for hit in hits]
    names = ("query", "list", "id", "distance", *(f.column for f in _ENTRY_COLUMNS))
    out: dict[str, list[npt.NDArray[Any]]] = {k: [] for k in names}
    if dihedral:
        out["variant"] = []
    for number, hit in parts:
        rows = hit.rows
        out["query"].append(hit.queries)
        out["list"].append(np.full(len(rows), number, np.int32))
        out["id"].append(hit.segment.ids[rows])
        out["distance"].append(hit.distances.astype(np.int32, copy=False))
        for f in _ENTRY_COLUMNS:
            out[f.column].append(hit.segment.columns.objects(f.name, rows))
        if dihedral:
            assert hit.variants is not None
            out["variant"].append(hit.variants)
    empty = {
        "query": np.int64,
        "list": np.int32,
        "id": np.int64,
        "distance": np.int32,
        "variant": np.uint8,
    }
    columns = {
        k: (v[0] if len(v) == 1 else np.concatenate(v)) if v else np.zeros(0, empty.get(k, object))
        for k, v in out.items()
    }
    # One segment with ids ascending by row (a compacted list): the index already returned
    # (query, distance, row) order, which is the wanted order.
    if len(parts) > 1 or (parts and parts[0][1].segment.order is not None):
        order = np.lexsort((columns["id"], columns["list"], columns["distance"], columns["query"]))
        columns = {k: v[order] for k, v in columns.items()}
    return columns


@dataclass(frozen=True)
class _EntryColumns:
    """The columns every result has: the entry matched (list, id and its reported fields) and
    the distance, one row per match."""

    lists: npt.NDArray[np.object_]
    ids: npt.NDArray[np.int64]
    keys: npt.NDArray[np.object_]
    distances: npt.NDArray[np.int32]
    labels: npt.NDArray[np.object_]
    sources: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class MatchResult(_EntryColumns):
    """Matches of a batch of query hashes: one record per (query, entry) pair.

    Columns are numpy arrays of equal length, ordered by query, distance, list and id.

    Attributes
    ----------
    queries : numpy.ndarray
        int64: the position of the query hash in the batch.
    lists : numpy.ndarray
        object: the name of the list the entry belongs to.
    ids : numpy.ndarray
        int64: the entry's id.
    keys : numpy.ndarray
        object: the entry's external key, or None.
    distances : numpy.ndarray
        int32: Hamming distance between the query and the entry.
    labels : numpy.ndarray
        object: the entry's labels (tuples of str).
    sources : numpy.ndarray
        object: the entry's source, or None.
    skipped : numpy.ndarray
        int64: queries not searched because their quality was below ``min_quality``.
    nqueries : int
        Number of query hashes in the batch (searched or skipped).
    query_groups : numpy.ndarray or None
        int64 per query hash of the batch: its group (``match(..., groups=)``), else None.
    list_names : tuple of str
        The lists searched, in registration order (the order of ``lists`` among equal
        distances).
    variants : numpy.ndarray or None
        uint8 per match with ``dihedral=True``: the query's variant that matched, an index
        into :data:`hashmatch.TRANSFORMS` (:attr:`transforms` names it); else None.
    query_times : numpy.ndarray or None
        float64 per query hash of the batch when the queries are a video's frames
        (:meth:`hashmatch.Matcher.match_video`): its timestamp in seconds; else None.
    """

    queries: npt.NDArray[np.int64]
    skipped: npt.NDArray[np.int64]
    nqueries: int
    query_groups: npt.NDArray[np.int64] | None = None
    list_names: tuple[str, ...] = ()
    variants: npt.NDArray[np.uint8] | None = None
    query_times: npt.NDArray[np.float64] | None = None

    @staticmethod
    def from_hits(
        names: Sequence[str],
        per_list: Sequence[Sequence[Hits]],
        nqueries: int,
        skipped: npt.NDArray[np.int64],
        query_groups: npt.NDArray[np.int64] | None = None,
        *,
        dihedral: bool = False,
    ) -> MatchResult:
        """The result of searching the lists ``names`` (``per_list[i]``: the hits of list i;
        with ``dihedral``, hits of variant-stack queries, which carry their variants)."""
        columns = _columns(per_list, dihedral)
        table = np.array(list(names) or [""], dtype=object)
        return MatchResult(
            queries=columns["query"],
            lists=table[columns["list"]],
            ids=columns["id"],
            distances=columns["distance"],
            skipped=skipped,
            nqueries=nqueries,
            query_groups=query_groups,
            list_names=tuple(names),
            variants=columns.get("variant"),
            **{f.column: columns[f.column] for f in _ENTRY_COLUMNS},
        )

    def __iter__(self) -> Iterator[Match]:
        return iter(self.to_records())

    def matched(self) -> npt.NDArray[np.int64]:
        """The queries with at least one match, ascending."""
        return np.unique(self.queries)

    @property
    def groups(self) -> npt.NDArray[np.int64]:
        """int64 per match: the group of its query (the query itself without ``groups=``)."""
        return self.queries if self.query_groups is None else self.query_groups[self.queries]

    @property
    def transforms(self) -> npt.NDArray[np.object_] | None:
        """object per match with ``dihedral=True``: the name of the variant that matched (see
        :data:`hashmatch.TRANSFORMS`); else None."""
        return _transform_names(self.variants)

    def to_records(self) -> list[Match]:
        """The matches as a list of :class:`Match` named tuples."""
        return _records(
            Match,
            self.queries, self.lists, self.ids, self.keys, self.distances, self.labels,
            self.sources, _or_nones(self.transforms, len(self)),
        )  # fmt: skip

    def to_pandas(self) -> pandas.DataFrame:
        """The matches as a DataFrame with columns query, list, id, key, distance, labels,
        source (and group, when the queries were grouped; transform, with ``dihedral=True``;
        time, for a video's frames); needs the ``pandas`` extra."""
        pd = _pandas()
        frame = {
            "query": self.queries,
            "list": pd.Categorical(self.lists),
            "id": self.ids,
            "key": self.keys,
            "distance": self.distances,
            "labels": self.labels,
            "source": self.sources,
        }
        if self.query_groups is not None:
            frame["group"] = self.groups
        if self.variants is not None:
            frame["transform"] = pd.Categorical.from_codes(self.variants, TRANSFORMS)
        if self.query_times is not None:
            frame["time"] = self.query_times[self.queries]
        return pd.DataFrame(frame)

    def by_group(self) -> GroupedMatchResult:
        """Aggregate the matches per (query group, list, entry).

        Each row has the best (smallest) distance any query of the group reached, the first
        query (lowest number) that reached it, and how many of the group's searched queries
        matched the entry. Without ``groups=``, every query is its own group.

        Examples
        --------
        >>> import hashmatch as hm
        >>> db = hm.datasets.random_codes(2, 256, seed=3)
        >>> banned = hm.HashList("pdq")
        >>> _ = banned.add(db, keys=["a", "b"])
        >>> # two query images, each as 2 variants (say, as uploaded and mirrored)
        >>> queries = hm.datasets.flip_bits(db[[0, 0, 1, 1]], [40, 9, 3, 60])
        >>> result = banned.match(queries, groups=[0, 0, 1, 1]).by_group()
        >>> [(g.group, g.key, g.distance, g.best_query, g.matched) for g in result]
        [(0, 'a', 9, 1, 1), (1, 'b', 3, 2, 1)]
        """
        groups = self.groups
        group_ids, sizes, searched = self._group_sizes()
        if not len(self):
            empty = np.zeros(0, np.int64)
            return GroupedMatchResult(
                lists=self.lists[:0], ids=empty, keys=self.keys[:0], distances=self.distances[:0],
                labels=self.labels[:0], sources=self.sources[:0], groups=empty,
                best_queries=empty, matched=empty, searched=empty, group_ids=group_ids,
                group_sizes=sizes, group_searched=searched,
                variants=None if self.variants is None else self.variants[:0],
            )  # fmt: skip
        list_codes = self._list_codes()
        # sort by (group, list, id, distance, query): the first row of each run is the best
        order = np.lexsort((self.queries, self.distances, self.ids, list_codes, groups))
        g, lc, ids = groups[order], list_codes[order], self.ids[order]
        starts = np.flatnonzero(
            np.concatenate(
                [[True], (g[1:] != g[:-1]) | (lc[1:] != lc[:-1]) | (ids[1:] != ids[:-1])]
            )
        )
        first = order[starts]
        # a query matching an entry is one pair: count distinct queries per run
        q = self.queries[order]
        new_query = np.concatenate([[True], q[1:] != q[:-1]])
        new_query[starts] = True
        matched = np.add.reduceat(new_query.astype(np.int64), starts)
        group_of = groups[first]
        rank = np.lexsort((ids[starts], lc[starts], self.distances[first], group_of))
        first, matched = first[rank], matched[rank]
        group_of = groups[first]
        return GroupedMatchResult(
            groups=group_of,
            lists=self.lists[first],
            ids=self.ids[first],
            keys=self.keys[first],
            distances=self.distances[first],
            labels=self.labels[first],
            sources=self.sources[first],
            best_queries=self.queries[first],
            matched=matched,
            searched=searched[np.searchsorted(group_ids, group_of)],
            group_ids=group_ids,
            group_sizes=sizes,
            group_searched=searched,
            variants=None if self.variants is None else self.variants[first],
        )

    def _list_codes(self) -> npt.NDArray[np.int64]:
        """Each match's list as its position in :attr:`list_names` (registration order)."""
        names, inverse = np.unique(self.lists.astype(str), return_inverse=True)
        position = {name: i for i, name in enumerate(self.list_names)}
        table = np.array([position.get(str(n), len(position)) for n in names], np.int64)
        return table[inverse.reshape(-1)]

    def _group_sizes(self) -> tuple[npt.NDArray[np.int64], ...]:
        """The distinct groups (ascending), their queries, and their searched queries."""
        groups = (
            np.arange(self.nqueries, dtype=np.int64)
            if self.query_groups is None
            else self.query_groups
        )
        group_ids, inverse = np.unique(groups, return_inverse=True)
        inverse = inverse.reshape(-1)
        sizes = np.bincount(inverse, minlength=len(group_ids)).astype(np.int64)
        skipped = np.bincount(inverse[self.skipped], minlength=len(group_ids)).astype(np.int64)
        return group_ids.astype(np.int64), sizes, sizes - skipped

    def __repr__(self) -> str:
        return (
            f"MatchResult({len(self)} matches, {len(self.matched())} of {self.nqueries} queries "
            f"matched, {len(self.skipped)} skipped)"
        )


def _records(record: Callable[..., R], *columns: npt.NDArray[Any]) -> list[R]:
    """One ``record(*row)`` per row of parallel columns."""
    return [record(*row) for row in zip(*(c.tolist() for c in columns), strict=True)]


_TRANSFORM_NAMES = np.array(TRANSFORMS, dtype=object)


def _transform_names(variants: npt.NDArray[np.uint8] | None) -> npt.NDArray[np.object_] | None:
    """The names of variant indexes (None stays None)."""
    return None if variants is None else _TRANSFORM_NAMES[variants]


def _or_nones(column: npt.NDArray[np.object_] | None, n: int) -> npt.NDArray[np.object_]:
    """The column, or n Nones when there is none."""
    return np.full(n, None, dtype=object) if column is None else column


class GroupMatch(NamedTuple):
    """One (query group, entry) pair of :meth:`MatchResult.by_group`."""

    group: int
    list: str
    id: int
    key: str | None
    distance: int
    """The best distance any query of the group reached."""
    best_query: int
    """The first query of the group at that distance."""
    matched: int
    """How many queries of the group matched the entry."""
    searched: int
    """How many queries of the group were searched (not skipped for quality)."""
    labels: tuple[str, ...]
    source: str | None
    transform: str | None = None
    """With ``dihedral=True``: the variant of the best query that matched."""


@dataclass(frozen=True)
class GroupedMatchResult(_EntryColumns):
    """Matches aggregated per (query group, list, entry), ordered by group, best distance,
    list and id; see :meth:`MatchResult.by_group`.

    Attributes
    ----------
    groups, lists, ids, keys, distances, labels, sources : numpy.ndarray
        As in :class:`MatchResult`; ``distances`` is the best distance in the group.
    best_queries : numpy.ndarray
        int64: the first query of the group that reached that distance.
    matched : numpy.ndarray
        int64: queries of the group that matched the entry.
    searched : numpy.ndarray
        int64: queries of the group that were searched (the denominator of
        :attr:`fractions`).
    group_ids, group_sizes, group_searched : numpy.ndarray
        int64: every group of the batch (ascending), its queries, and those searched.
    variants : numpy.ndarray or None
        uint8 with ``dihedral=True``: the variant of the best query that matched.
    """

    groups: npt.NDArray[np.int64]
    best_queries: npt.NDArray[np.int64]
    matched: npt.NDArray[np.int64]
    searched: npt.NDArray[np.int64]
    group_ids: npt.NDArray[np.int64]
    group_sizes: npt.NDArray[np.int64]
    group_searched: npt.NDArray[np.int64]
    variants: npt.NDArray[np.uint8] | None = None

    @property
    def transforms(self) -> npt.NDArray[np.object_] | None:
        """Names of :attr:`variants` (see :data:`hashmatch.TRANSFORMS`), or None."""
        return _transform_names(self.variants)

    @property
    def fractions(self) -> npt.NDArray[np.float64]:
        """Share of the group's searched queries that matched the entry (0 to 1)."""
        return self.matched / np.maximum(self.searched, 1)

    def __iter__(self) -> Iterator[GroupMatch]:
        return iter(self.to_records())

    def to_records(self) -> list[GroupMatch]:
        """The rows as :class:`GroupMatch` named tuples."""
        return _records(
            GroupMatch,
            self.groups, self.lists, self.ids, self.keys, self.distances, self.best_queries,
            self.matched, self.searched, self.labels, self.sources,
            _or_nones(self.transforms, len(self)),
        )  # fmt: skip

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a DataFrame (columns as :class:`GroupMatch`, plus ``fraction``)."""
        pd = _pandas()
        extra = (
            {}
            if self.variants is None
            else {"transform": pd.Categorical.from_codes(self.variants, TRANSFORMS)}
        )
        return pd.DataFrame(
            {
                "group": self.groups,
                "list": pd.Categorical(self.lists),
                "id": self.ids,
                "key": self.keys,
                "distance": self.distances,
                "best_query": self.best_queries,
                "matched": self.matched,
                "searched": self.searched,
                "fraction": self.fractions,
                "labels": self.labels,
                "source": self.sources,
                **extra,
            }
        )

    def __repr__(self) -> str:
        return (
            f"GroupedMatchResult({len(self)} (group, entry) pairs, {len(self.group_sizes)} groups)"
        )
