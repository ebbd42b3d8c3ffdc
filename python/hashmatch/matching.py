"""Matching uploads against several hash lists at once, with typed match records."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from hashmatch._validation import as_codes, check_max_distance, check_threads
from hashmatch.errors import EntryNotFound, InvalidArgument, InvalidType
from hashmatch.lists import HASH_TYPES, HashList, prepare_queries

if TYPE_CHECKING:
    import pandas

    from hashmatch.lists import _Segment

__all__ = ["Match", "MatchResult", "Matcher"]

_Hits = list[tuple["_Segment", npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]]


class Match(NamedTuple):
    """One match: query hash ``query`` is within ``distance`` of entry ``id`` of ``list``."""

    query: int
    list: str
    id: int
    key: str | None
    distance: int
    labels: tuple[str, ...]
    source: str | None


def match_lists(per_list: Sequence[_Hits]) -> dict[str, Any]:
    """Columns of every hit of every list, ordered by (query, distance, list, id)."""
    parts = [(number, *hit) for number, hits in enumerate(per_list) for hit in hits]
    if not parts:
        return {
            "query": np.zeros(0, np.int64),
            "list": np.zeros(0, np.int32),
            "id": np.zeros(0, np.int64),
            "distance": np.zeros(0, np.int32),
            "key": np.zeros(0, object),
            "labels": np.zeros(0, object),
            "source": np.zeros(0, object),
        }
    columns: dict[str, list[Any]] = {
        k: [] for k in ("query", "list", "id", "distance", "key", "labels", "source")
    }
    for number, segment, queries, distances, rows in parts:
        c = segment.columns
        keys = np.empty(len(rows), dtype=object)
        keys[:] = c.keys.get(rows)
        columns["query"].append(queries)
        columns["list"].append(np.full(len(rows), number, np.int32))
        columns["id"].append(segment.ids[rows])
        columns["distance"].append(distances)
        columns["key"].append(keys)
        columns["labels"].append(c.labels.objects(rows))
        columns["source"].append(c.sources.objects(rows))
    out = {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in columns.items()}
    # One segment with ids ascending by row (a compacted list): the index already returned
    # (query, distance, row) order, which is the wanted order.
    if len(parts) > 1 or parts[0][1].order is not None:
        order = np.lexsort((out["id"], out["list"], out["distance"], out["query"]))
        out = {k: v[order] for k, v in out.items()}
    return out


@dataclass(frozen=True)
class MatchResult:
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
    """

    queries: npt.NDArray[np.int64]
    lists: npt.NDArray[np.object_]
    ids: npt.NDArray[np.int64]
    keys: npt.NDArray[np.object_]
    distances: npt.NDArray[np.int32]
    labels: npt.NDArray[np.object_]
    sources: npt.NDArray[np.object_]
    skipped: npt.NDArray[np.int64]
    nqueries: int

    @staticmethod
    def build(
        names: Sequence[str],
        columns: Mapping[str, Any],
        nqueries: int,
        skipped: npt.NDArray[np.int64],
    ) -> MatchResult:
        table = np.array(list(names) or [""], dtype=object)
        return MatchResult(
            queries=columns["query"],
            lists=table[columns["list"]],
            ids=columns["id"],
            keys=columns["key"],
            distances=columns["distance"],
            labels=columns["labels"],
            sources=columns["source"],
            skipped=skipped,
            nqueries=nqueries,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Match]:
        return iter(self.to_records())

    def matched(self) -> npt.NDArray[np.int64]:
        """The queries with at least one match, ascending."""
        return np.unique(self.queries)

    def to_records(self) -> list[Match]:
        """The matches as a list of :class:`Match` named tuples."""
        return [
            Match(*row)
            for row in zip(
                self.queries.tolist(),
                self.lists.tolist(),
                self.ids.tolist(),
                self.keys.tolist(),
                self.distances.tolist(),
                self.labels.tolist(),
                self.sources.tolist(),
                strict=True,
            )
        ]

    def to_pandas(self) -> pandas.DataFrame:
        """The matches as a DataFrame with columns query, list, id, key, distance, labels,
        source (needs the ``pandas`` extra)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas needs pandas: pip install 'hashmatch[pandas]'") from None
        return pd.DataFrame(
            {
                "query": self.queries,
                "list": pd.Categorical(self.lists),
                "id": self.ids,
                "key": self.keys,
                "distance": self.distances,
                "labels": self.labels,
                "source": self.sources,
            }
        )

    def __repr__(self) -> str:
        return (
            f"MatchResult({len(self)} matches, {len(self.matched())} of {self.nqueries} queries "
            f"matched, {len(self.skipped)} skipped)"
        )


@dataclass(frozen=True)
class _Registered:
    hash_list: HashList
    max_distance: int


class Matcher:
    """Match query hashes against several hash lists, each with its own type and radius.

    Parameters
    ----------
    lists : mapping of str to HashList, optional
        Lists to register under these names, each at its own ``max_distance``.

    Notes
    -----
    Thread safety: ``match`` may run in any number of threads while lists are added, replaced
    or refreshed; each call sees one consistent set of lists (the one current when it
    started) and each list's current snapshot. Registration changes are serialised.

    Examples
    --------
    >>> import hashmatch as hm
    >>> db = hm.datasets.random_codes(3, 256, seed=7)
    >>> terror, csam = hm.HashList("pdq"), hm.HashList("pdq")
    >>> _ = terror.add(db[:2], keys=["t1", "t2"], labels=["terrorism"])
    >>> _ = csam.add(db[2:], keys=["c1"], labels=["csam"])
    >>> matcher = hm.Matcher({"terror": terror, "csam": csam})
    >>> queries = hm.datasets.flip_bits(db[[2, 0]], [5, 30])
    >>> result = matcher.match(queries, qualities=[90, 40], min_quality=50)
    >>> [(m.query, m.list, m.key, m.distance) for m in result]
    [(0, 'csam', 'c1', 5)]
    >>> result.skipped.tolist()
    [1]
    """

    def __init__(self, lists: Mapping[str, HashList] | None = None) -> None:
        self._lists: dict[str, _Registered] = {}
        self._lock = threading.Lock()
        for name, hash_list in (lists or {}).items():
            self.add_list(name, hash_list)

    def add_list(self, name: str, hash_list: HashList, *, max_distance: int | None = None) -> None:
        """Register a list under ``name``, matched at ``max_distance`` (default: the list's)."""
        if not isinstance(name, str) or not name:
            raise InvalidType(f"name: expected a non-empty str, got {name!r}")
        with self._lock:
            if name in self._lists:
                raise InvalidArgument(f"name: a list named {name!r} is already registered")
            self._set(name, hash_list, max_distance)

    def replace(self, name: str, hash_list: HashList, *, max_distance: int | None = None) -> None:
        """Swap in another list under ``name`` atomically (e.g. one freshly loaded from disk);
        queries already running finish on the old one."""
        with self._lock:
            if name not in self._lists:
                raise EntryNotFound(f"name: no list named {name!r}")
            self._set(name, hash_list, max_distance)

    def remove_list(self, name: str) -> None:
        """Stop matching against the list ``name``."""
        with self._lock:
            if name not in self._lists:
                raise EntryNotFound(f"name: no list named {name!r}")
            lists = dict(self._lists)
            del lists[name]
            self._lists = lists

    def _set(self, name: str, hash_list: HashList, max_distance: int | None) -> None:
        if not isinstance(hash_list, HashList):
            raise InvalidType(f"hash_list: expected a HashList, got {type(hash_list).__name__}")
        radius = (
            hash_list.max_distance
            if max_distance is None
            else check_max_distance(max_distance, hash_list.bits)
        )
        lists = dict(self._lists)  # copy-on-write: readers keep the dict they took
        lists[name] = _Registered(hash_list, radius)
        self._lists = lists

    def __getitem__(self, name: str) -> HashList:
        try:
            return self._lists[name].hash_list
        except KeyError:
            raise EntryNotFound(f"name: no list named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._lists

    def __len__(self) -> int:
        return len(self._lists)

    @property
    def names(self) -> list[str]:
        """Names of the registered lists, in registration order."""
        return list(self._lists)

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{n}: {r.hash_list.hash_type} <= {r.max_distance} ({len(r.hash_list)})"
            for n, r in self._lists.items()
        )
        return f"Matcher({{{inner}}})"

    def match(
        self,
        hashes: object,
        *,
        hash_type: str | None = None,
        qualities: object = None,
        min_quality: float | None = None,
        threads: int | None = None,
    ) -> MatchResult:
        """Match query hashes against every registered list of their hash type.

        Parameters
        ----------
        hashes : hashes
            Query hashes, all of one type.
        hash_type : str, optional
            Which lists to search. By default, the lists whose width equals the queries' (it
            must then be one hash type: a 64-bit pHash is not compared with a 64-bit dHash).
        qualities : array_like of int, optional
            Quality score (0-100) of each query hash.
        min_quality : int, optional
            Skip query hashes whose quality is below this; they are reported in
            ``result.skipped``. Needs ``qualities``.
        threads : int, optional
            Threads to use; default every core.

        Returns
        -------
        MatchResult
        """
        registered = self._lists  # one consistent set of lists for the whole call
        nthreads = check_threads(threads)
        kind = _check_type(hash_type)
        codes, _ = as_codes(hashes, name="hashes", nbytes=_width(registered, kind))
        width = codes.shape[1] * 8
        if kind is None:
            chosen = [(n, r) for n, r in registered.items() if r.hash_list.bits == width]
            types = sorted({r.hash_list.hash_type for _, r in chosen})
            if len(types) > 1:
                raise InvalidArgument(
                    f"hash_type: {width}-bit queries could be any of {', '.join(types)}; "
                    "pass hash_type= to say which lists to search"
                )
        else:
            chosen = [
                (n, r)
                for n, r in registered.items()
                if r.hash_list.hash_type == kind and r.hash_list.bits == width
            ]
        codes, selected, skipped = prepare_queries(codes, codes.shape[1], qualities, min_quality)
        hits = [r.hash_list._hits(codes, selected, r.max_distance, nthreads) for _, r in chosen]
        return MatchResult.build(
            [name for name, _ in chosen], match_lists(hits), len(selected) + len(skipped), skipped
        )


def _check_type(hash_type: object) -> str | None:
    if hash_type is None:
        return None
    if not isinstance(hash_type, str):
        raise InvalidType(f"hash_type: expected a str, got {type(hash_type).__name__}")
    kind = hash_type.lower()
    if kind not in HASH_TYPES and kind != "raw":
        known = ", ".join(sorted(HASH_TYPES))
        raise InvalidArgument(f"hash_type: expected one of {known} or 'raw', got {hash_type!r}")
    return kind


def _width(registered: Mapping[str, _Registered], kind: str | None) -> int | None:
    """The query width in bytes that the lists imply, when they imply one."""
    if kind is not None and kind != "raw":
        return HASH_TYPES[kind] // 8
    widths = {
        r.hash_list.nbytes
        for r in registered.values()
        if kind is None or r.hash_list.hash_type == kind
    }
    return widths.pop() if len(widths) == 1 else None
