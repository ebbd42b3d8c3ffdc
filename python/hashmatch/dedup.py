"""Bulk near-duplicate detection: every pair of hashes within a distance, and the clusters.

:func:`find_duplicates` joins a set of hashes with itself and :func:`find_matches` joins two
sets, exactly: every pair within ``max_distance`` is reported once, and nothing else. The C++
join picks its method with a cost model (:func:`plan_join`):

* **multi-index** for the usual radii: each hash is cut into substrings with radii such that
  any pair within ``max_distance`` has, in some substring, values within that substring's
  radius (the pigeonhole bound of multi-index hashing); only bucket pairs within the
  substring radius are compared. 1M PDQ hashes at distance 31 take seconds, not the half hour
  of a pairwise scan.
* **brute force**, a tiled SIMD scan of all pairs, when the radius is so large that nearly every
  pair would be a candidate anyway.

Work runs in units whose bounds depend only on the data, so results never depend on
``threads``; between units the call reports progress (``progress=True`` shows a tqdm bar) and
Ctrl-C stops it within a fraction of a second, leaving the process usable. Memory stays
bounded by the input, one bucketed copy of it, and the pairs found: no distance matrix.

:func:`cluster` turns pairs into clusters (connected components, "single linkage") with a
representative per cluster: the medoid, or the hash of highest quality.

Examples
--------
>>> import hashmatch as hm
>>> codes = hm.from_hex(["00" * 32, "00" * 31 + "01", "ff" * 32])
>>> pairs = hm.find_duplicates(codes, 31)
>>> pairs.i, pairs.j, pairs.distances
(array([0]), array([1]), array([1], dtype=int32))
>>> clusters = hm.cluster(pairs)
>>> clusters.labels, clusters.sizes
(array([0, 0, 1]), array([2, 1]))
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from hashmatch import _core
from hashmatch._validation import (
    _describe,
    _integer,
    as_codes,
    check_count,
    check_max_distance,
    check_threads,
)
from hashmatch.errors import HashTypeMismatch, InvalidArgument, InvalidType
from hashmatch.plotting import plot_clusters, plot_pairs
from hashmatch.progress import bar

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "Clusters",
    "JoinPlan",
    "Pairs",
    "cluster",
    "find_duplicates",
    "find_matches",
    "plan_join",
]

_METHODS = ("auto", "multi-index", "brute-force")
_SECONDS_PER_CALL = 0.2  # target length of one C++ call between progress updates
_MEDOID_EXACT = 4096  # clusters up to this size get an exact medoid (see Clusters)

Method = Literal["auto", "multi-index", "brute-force"]


class JoinPlan(NamedTuple):
    """How a join runs: its method, the multi-index substrings, and the cost model's estimates.

    Attributes
    ----------
    method : str
        ``"multi-index"`` or ``"brute-force"``.
    substrings : list of tuple of int
        ``(first_bit, bits, radius)`` of each substring probed (multi-index only); there may be
        fewer than the substrings asked for, and bits that never vary may be left out (the
        pigeonhole bound only needs the probed radii + 1 to add up to more than the
        threshold). Bit ``b`` here is bit ``b % 8`` of byte ``b // 8`` counted from the least
        significant bit: the join's own order, not the hex order of :func:`to_bits`.
    multi_index_seconds, brute_force_seconds : float
        The model's single-thread estimates of both methods (``inf`` where none fits).
    """

    method: str
    substrings: list[tuple[int, int, int]]
    multi_index_seconds: float
    brute_force_seconds: float


def _plan(raw: dict[str, Any]) -> JoinPlan:
    return JoinPlan(raw["method"], raw["substrings"], raw["mih_seconds"], raw["brute_seconds"])


def plan_join(n: int, bits: int, max_distance: int, *, n_other: int | None = None) -> JoinPlan:
    """The plan :func:`find_duplicates` (or :func:`find_matches`) would use.

    Parameters
    ----------
    n : int
        Hashes in the set (the first set of a cross join).
    bits : int
        Hash width in bits (a multiple of 8).
    max_distance : int
        Inclusive Hamming radius, in ``[0, bits]``.
    n_other : int, optional
        Hashes in the second set of a cross join; ``None`` plans a self-join.

    Returns
    -------
    JoinPlan

    Examples
    --------
    >>> hm.plan_join(1_000_000, 256, 31).method
    'multi-index'
    """
    n = check_count(n, "n")
    bits = _integer(bits, "bits", "a positive multiple of 8")
    if not 0 < bits <= 4096 or bits % 8:
        raise InvalidArgument(f"bits: expected a multiple of 8 in [8, 4096], got {bits}")
    radius = check_max_distance(max_distance, bits)
    other = n if n_other is None else check_count(n_other, "n_other")
    return _plan(_core.plan_join(bits, n, other, radius, n_other is None))


@dataclass(frozen=True, eq=False)
class Pairs:
    """Pairs of hashes within a distance, sorted by ``(i, j)``.

    From :func:`find_duplicates`: rows ``i < j`` of one set. From :func:`find_matches`: row
    ``i`` of the first set and row ``j`` of the second. Unpacks as ``i, j, distances``.

    Attributes
    ----------
    i, j : numpy.ndarray
        int64 row numbers.
    distances : numpy.ndarray
        int32 Hamming distances, each ``<= max_distance``.
    max_distance : int
        The inclusive radius searched.
    codes : numpy.ndarray
        The (first) set's packed hashes, for :func:`cluster`'s medoids.
    other_codes : numpy.ndarray or None
        The second set of a cross join, else None.
    ids, other_ids : numpy.ndarray or None
        Labels given for the rows (``ids=``, ``other_ids=``), if any.
    plan : JoinPlan
        How the join ran.
    seconds : float
        Wall time of the join.
    """

    i: npt.NDArray[np.int64]
    j: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int32]
    max_distance: int
    codes: npt.NDArray[np.uint8] = field(repr=False)
    other_codes: npt.NDArray[np.uint8] | None = field(repr=False)
    ids: npt.NDArray[Any] | None = field(repr=False)
    other_ids: npt.NDArray[Any] | None = field(repr=False)
    plan: JoinPlan = field(repr=False)
    seconds: float = field(repr=False)

    @property
    def self_join(self) -> bool:
        """True for pairs within one set (:func:`find_duplicates`)."""
        return self.other_codes is None

    @property
    def n(self) -> int:
        """Hashes in the (first) set."""
        return len(self.codes)

    def __len__(self) -> int:
        return len(self.i)

    def __iter__(self) -> Iterator[npt.NDArray[Any]]:
        return iter((self.i, self.j, self.distances))

    def __repr__(self) -> str:
        kind = "duplicates" if self.self_join else "matches"
        return (
            f"<Pairs: {len(self):,} {kind} within {self.max_distance} among {self.n:,} hashes "
            f"({self.plan.method}, {self.seconds:.3g} s)>"
        )

    def to_pandas(self) -> pd.DataFrame:
        """The pairs as a DataFrame: ``i``, ``j``, ``distance``, plus ``id_i`` / ``id_j`` when
        ids were given. Needs pandas."""
        import pandas as pd

        columns: dict[str, Any] = {"i": self.i, "j": self.j, "distance": self.distances}
        if self.ids is not None:
            columns["id_i"] = self.ids[self.i]
        second = self.ids if self.self_join else self.other_ids
        if second is not None:
            columns["id_j"] = second[self.j]
        return pd.DataFrame(columns)

    def threshold_curve(self) -> dict[str, npt.NDArray[np.int64]]:
        """How the duplicates grow with the threshold, for choosing one (self-joins only).

        Returns
        -------
        dict of numpy.ndarray
            For every threshold ``t`` in ``0 .. max_distance``: ``threshold``; ``pairs``
            within ``t``; ``clusters`` (connected components, singletons included);
            ``largest`` (size of the biggest cluster); ``clustered`` (hashes with at least
            one duplicate).
        """
        if not self.self_join:
            raise InvalidArgument("pairs: the threshold curve needs pairs from find_duplicates")
        clusters, largest, clustered = _core.threshold_curve(
            self.n, self.i, self.j, self.distances, self.max_distance
        )
        counts = np.bincount(self.distances, minlength=self.max_distance + 1)
        return {
            "threshold": np.arange(self.max_distance + 1, dtype=np.int64),
            "pairs": np.cumsum(counts).astype(np.int64),
            "clusters": clusters,
            "largest": largest,
            "clustered": clustered,
        }

    def plot(self, *, axes: Any = None) -> Figure:
        """Distance histogram and cluster growth by threshold (needs matplotlib).

        See :func:`hashmatch.plotting.plot_pairs`.
        """
        if not self.self_join:
            raise InvalidArgument("pairs: plots need pairs from find_duplicates")
        return plot_pairs(self, axes=axes)


class ClusterLabels:
    """What :class:`Clusters` and the tiled joins' clusters share: `labels`, `sizes`,
    `representatives` and `ids` arrays, and the views on them (:meth:`to_pandas`...)."""

    labels: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    representatives: npt.NDArray[np.int64]
    ids: npt.NDArray[Any] | None

    @property
    def n_clusters(self) -> int:
        """Number of clusters, singletons included."""
        return len(self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def members(self, label: int) -> npt.NDArray[np.int64]:
        """Rows of cluster `label`, in increasing order."""
        value = _integer(label, "label", f"a cluster number in [0, {self.n_clusters})")
        if not 0 <= value < self.n_clusters:
            raise InvalidArgument(
                f"label: expected a cluster number in [0, {self.n_clusters}), got {value}"
            )
        return np.flatnonzero(self.labels == value).astype(np.int64)

    def duplicates(self) -> npt.NDArray[np.bool_]:
        """Mask of the hashes to drop to keep one per cluster: all but the representatives."""
        keep = np.zeros(len(self.labels), dtype=bool)
        keep[self.representatives] = True
        return ~keep

    def to_pandas(self) -> pd.DataFrame:
        """One row per hash: ``row``, ``id`` (when ids were given), ``cluster``, ``size`` and
        ``representative`` (bool). Needs pandas."""
        import pandas as pd

        columns: dict[str, Any] = {"row": np.arange(len(self.labels), dtype=np.int64)}
        if self.ids is not None:
            columns["id"] = self.ids
        columns["cluster"] = self.labels
        columns["size"] = self.sizes[self.labels]
        columns["representative"] = ~self.duplicates()
        return pd.DataFrame(columns)


@dataclass(frozen=True, eq=False)
class Clusters(ClusterLabels):
    """Clusters of near-duplicate hashes: the connected components of the pairs graph.

    Every hash is in exactly one cluster (hashes without duplicates form clusters of one).
    Clusters are numbered ``0, 1, ...`` in order of their lowest row.

    Attributes
    ----------
    labels : numpy.ndarray
        int64 cluster number of every hash.
    sizes : numpy.ndarray
        int64 members of every cluster.
    representatives : numpy.ndarray
        int64 row of every cluster's representative: its medoid (the member with the smallest
        sum of distances to the other members; exact up to 4,096 members, beyond that the best
        of 4,096 members spread over the cluster), or its member of highest quality. Ties go to
        the lowest row.
    representative : str
        ``"medoid"`` or ``"quality"``.
    pairs : Pairs
        The pairs the clusters were built from, as given: when clustering at a lower
        ``max_distance`` than the pairs', only those within it linked hashes.
    max_distance : int
        The threshold used.
    ids : numpy.ndarray or None
        Labels of the rows, if given to :func:`find_duplicates`.
    """

    labels: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    representatives: npt.NDArray[np.int64]
    representative: str
    pairs: Pairs = field(repr=False)
    max_distance: int
    ids: npt.NDArray[Any] | None = field(repr=False)

    def __repr__(self) -> str:
        multi = int(np.count_nonzero(self.sizes > 1))
        largest = int(self.sizes.max()) if len(self.sizes) else 0
        return (
            f"<Clusters: {len(self.labels):,} hashes in {self.n_clusters:,} clusters, {multi:,} "
            f"with duplicates, largest {largest:,} (max_distance {self.max_distance})>"
        )

    def plot(self, *, axes: Any = None) -> Figure:
        """Cluster-size distribution (needs matplotlib); see
        :func:`hashmatch.plotting.plot_clusters`."""
        return plot_clusters(self, axes=axes)


def find_duplicates(
    hashes: object,
    max_distance: int,
    *,
    ids: object = None,
    threads: int | None = None,
    progress: bool = False,
    method: Method = "auto",
    substrings: int | None = None,
    chunk_rows: int | None = None,
    max_pairs: int | None = None,
) -> Pairs:
    """Every pair of hashes of one set within `max_distance`, exactly.

    Parameters
    ----------
    hashes : array-like
        The hashes: hex strings, bytes, ImageHash objects or an ``(n, nbytes)`` uint8 array
        (see :func:`hashmatch.from_hex`).
    max_distance : int
        Inclusive Hamming radius in ``[0, bits]`` (31 is the PDQ standard).
    ids : array-like, optional
        One label per hash (ints or strings), carried into :meth:`Pairs.to_pandas` and
        :meth:`Clusters.to_pandas`.
    threads : int, optional
        Threads to use (default: all cores). Results do not depend on it.
    progress : bool, optional
        Show a tqdm progress bar on stderr.
    method : {"auto", "multi-index", "brute-force"}, optional
        Override the cost model's choice (results are the same; speed is not).
    substrings : int, optional
        For ``method="multi-index"``, the number of substrings to cut hashes into.
    chunk_rows : int, optional
        Rows per unit of work (default: chosen from the plan). Results do not depend on it.
    max_pairs : int, optional
        Stop with :class:`~hashmatch.InvalidArgument` once more pairs than this are found (a
        guard against a threshold that links most of a big collection: every pair takes 20
        bytes). Default: no limit.

    Returns
    -------
    Pairs
        Pairs ``i < j`` with ``hamming(hashes[i], hashes[j]) <= max_distance``, sorted.

    Raises
    ------
    InvalidArgument, InvalidType, HashFormatError
        On bad hashes, a radius outside ``[0, bits]``, ids of the wrong length, or an unknown
        method.
    KeyboardInterrupt
        On Ctrl-C (the call stops within a fraction of a second).

    Examples
    --------
    >>> codes = hm.datasets.random_codes(1000, 64, seed=1)
    >>> codes[10] = codes[3]
    >>> pairs = hm.find_duplicates(codes, 0)
    >>> pairs.i, pairs.j
    (array([3]), array([10]))
    """
    codes, _ = as_codes(hashes)
    options = _JoinOptions(threads, progress, method, substrings, chunk_rows, max_pairs)
    return _join(codes, None, max_distance, ids, None, options)


def find_matches(
    hashes: object,
    others: object,
    max_distance: int,
    *,
    ids: object = None,
    other_ids: object = None,
    threads: int | None = None,
    progress: bool = False,
    method: Method = "auto",
    substrings: int | None = None,
    chunk_rows: int | None = None,
    max_pairs: int | None = None,
) -> Pairs:
    """Every pair of a hash of `hashes` and one of `others` within `max_distance`, exactly.

    "Which of these 1M new uploads match any of these 5M known hashes": one join instead of
    a million searches. Parameters are those of :func:`find_duplicates`, plus the second set
    `others` (same width) and its labels `other_ids`.

    Returns
    -------
    Pairs
        ``(i, j)`` with ``hamming(hashes[i], others[j]) <= max_distance``, sorted.

    Examples
    --------
    >>> known = hm.from_hex(["00" * 8, "ff" * 8])
    >>> uploads = hm.from_hex(["00" * 7 + "03", "0f" * 8])
    >>> pairs = hm.find_matches(uploads, known, 10)
    >>> pairs.i, pairs.j, pairs.distances
    (array([0]), array([0]), array([2], dtype=int32))
    """
    codes, _ = as_codes(hashes)
    other, _ = as_codes(others, name="others")
    if other.shape[1] != codes.shape[1]:
        raise HashTypeMismatch(
            f"others: expected {codes.shape[1] * 8}-bit hashes like `hashes`, "
            f"got {other.shape[1] * 8}-bit"
        )
    options = _JoinOptions(threads, progress, method, substrings, chunk_rows, max_pairs)
    return _join(codes, other, max_distance, ids, other_ids, options)


def _labels(ids: object, n: int, name: str) -> npt.NDArray[Any] | None:
    if ids is None:
        return None
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
        raise InvalidType(f"{name}: expected a sequence of {n} labels, got {_describe(ids)}")
    labels = np.asarray(ids)
    if labels.ndim != 1 or len(labels) != n:
        raise InvalidArgument(
            f"{name}: expected {n} labels (one per hash), got shape {labels.shape}"
        )
    return labels


class _JoinOptions(NamedTuple):
    """The keyword arguments :func:`find_duplicates` and :func:`find_matches` share, as given."""

    threads: int | None
    progress: bool
    method: str
    substrings: int | None
    chunk_rows: int | None
    max_pairs: int | None


class _Checked(NamedTuple):
    """:class:`_JoinOptions`, checked and in the C++ join's terms."""

    threads: int
    limit: int | None  # max_pairs
    forced: int  # substrings to use: -1 the cost model's choice, 0 brute force
    rows: int  # rows per unit of work, 0 the plan's choice


def _check_options(options: _JoinOptions, codes: npt.NDArray[np.uint8]) -> _Checked:
    nthreads = check_threads(options.threads)
    limit = None if options.max_pairs is None else check_count(options.max_pairs, "max_pairs")
    method = options.method
    if method not in _METHODS:
        raise InvalidArgument(
            f"method: expected one of {', '.join(map(repr, _METHODS))}, got {method!r}"
        )
    bits = codes.shape[1] * 8
    forced = 0 if method == "brute-force" else -1
    if options.substrings is not None:
        if method != "multi-index":
            raise InvalidArgument('substrings: only used with method="multi-index"')
        forced = _integer(options.substrings, "substrings", "a positive integer")
        if not 0 < forced <= bits:
            raise InvalidArgument(
                f"substrings: expected an integer in [1, {bits}] (the hash's bits), got {forced}"
            )
    rows = 0
    if options.chunk_rows is not None:
        rows = _integer(options.chunk_rows, "chunk_rows", "a positive integer")
        if rows <= 0:
            raise InvalidArgument(f"chunk_rows: expected a positive integer, got {rows}")
        rows = min(rows, max(len(codes), 1))
    return _Checked(nthreads, limit, forced, rows)


def _join(
    codes: npt.NDArray[np.uint8],
    other: npt.NDArray[np.uint8] | None,
    max_distance: int,
    ids: object,
    other_ids: object,
    options: _JoinOptions,
) -> Pairs:
    """The join of `codes` with itself (`other` None) or with `other`, arguments unchecked."""
    radius = check_max_distance(max_distance, codes.shape[1] * 8)
    labels = _labels(ids, len(codes), "ids")
    other_labels = None if other is None else _labels(other_ids, len(other), "other_ids")
    checked = _check_options(options, codes)
    start = time.perf_counter()
    differ = _bit_differences(codes, other)
    forced = checked.forced
    if options.method == "multi-index" and forced < 0:
        forced = _cheapest_multi_index(codes, other, radius, differ)
    # The C++ join borrows the arrays: hand it contiguous ones (as_codes made them so).
    core = _core.JoinCore(codes, other, radius, forced, checked.rows, differ)
    plan = _plan(core.plan)
    what = "duplicates" if other is None else "matches"
    parts = _run(core, checked.threads, options.progress, what, checked.limit)
    # Sorted straight into the result arrays; the chunks go as soon as they are merged.
    i, j, d = _core.merge_pairs(parts, len(codes), checked.threads)
    del parts
    return Pairs(
        i=i,
        j=j,
        distances=d,
        max_distance=radius,
        codes=codes,
        other_codes=other,
        ids=labels,
        other_ids=other_labels,
        plan=plan,
        seconds=time.perf_counter() - start,
    )


_SAMPLE_ROWS = 4096  # rows sampled for the per-bit statistics of the cost model


def _bit_differences(
    codes: npt.NDArray[np.uint8], other: npt.NDArray[np.uint8] | None
) -> npt.NDArray[np.float64]:
    """Per bit (in the join's word order: byte b // 8, bit b % 8 from the least significant),
    the chance that it differs between a hash of `codes` and one of `other` (or of `codes`),
    from evenly spaced samples. Bits every hash shares (zero padding, a common prefix) make
    multi-index buckets fuller: the cost model then plans around them or scans instead."""

    def ones(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        if len(rows) == 0:
            return np.full(rows.shape[1] * 8, 0.5)
        step = max(1, len(rows) // _SAMPLE_ROWS)
        bits = np.unpackbits(rows[::step], axis=1, bitorder="little")
        return np.asarray(bits.mean(axis=0, dtype=np.float64))

    first = ones(codes)
    second = first if other is None else ones(other)
    return np.ascontiguousarray(first * (1 - second) + (1 - first) * second)


def _cheapest_multi_index(
    codes: npt.NDArray[np.uint8],
    other: npt.NDArray[np.uint8] | None,
    radius: int,
    differ: npt.NDArray[np.float64],
) -> int:
    """The multi-index substring count with the lowest modelled cost (method="multi-index")."""
    bits = codes.shape[1] * 8
    n_other = len(codes) if other is None else len(other)
    best, best_cost = 0, float("inf")
    for m in range(1, min(bits, max(radius + 1, 64)) + 1):
        try:
            cost = _core.plan_join(bits, len(codes), n_other, radius, other is None, m, differ)[
                "mih_seconds"
            ]
        except InvalidArgument:
            continue
        if cost < best_cost:
            best, best_cost = m, cost
    return best


Chunk = tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.uint16]]


def _run(
    core: _core.JoinCore, nthreads: int, progress: bool, what: str, limit: int | None
) -> list[Chunk]:
    """Runs every unit of the join in calls of about _SECONDS_PER_CALL, with a progress bar;
    returns the calls' chunks of pairs (at most `limit` pairs in all, else an error)."""
    parts: list[Chunk] = []
    total = core.units
    done, batch, found = 0, nthreads, 0
    with bar(total, f"finding {what}", "unit", enabled=progress) as shown:
        while done < total:
            end = min(total, done + batch)
            started = time.perf_counter()
            part = core.run(done, end, nthreads)
            elapsed = time.perf_counter() - started
            parts.append(part)
            found += len(part[0])
            if limit is not None and found > limit:
                raise InvalidArgument(
                    f"max_pairs: more than {limit:,} pairs found after "
                    f"{end / total:.0%} of the join; lower max_distance or raise max_pairs"
                )
            shown.update(end - done)
            shown.set_postfix(pairs=found, refresh=False)
            per_unit = elapsed / (end - done)
            batch = max(nthreads, min(4 * batch, int(_SECONDS_PER_CALL / max(per_unit, 1e-6))))
            done = end
    return parts


def _check_qualities(quality: npt.NDArray[Any] | None, n: int) -> None:
    if quality is not None and (quality.ndim != 1 or len(quality) != n):
        raise InvalidArgument(
            f"qualities: expected {n} values (one per hash), got shape {quality.shape}"
        )


def _check_representative(
    qualities: object, representative: str | None
) -> tuple[npt.NDArray[Any] | None, str]:
    """The qualities as an array (or None) and the representative rule chosen, checked."""
    quality = None
    if qualities is not None:
        quality = np.asarray(qualities)
        if quality.dtype.kind not in "iuf" or (
            quality.dtype.kind == "f" and np.isnan(quality).any()
        ):
            raise InvalidType(f"qualities: expected numbers without NaN, got dtype {quality.dtype}")
    chosen = representative or ("quality" if quality is not None else "medoid")
    if chosen not in ("medoid", "quality"):
        raise InvalidArgument(f"representative: expected 'medoid' or 'quality', got {chosen!r}")
    if chosen == "quality" and quality is None:
        raise InvalidArgument('qualities: required with representative="quality"')
    return quality, chosen


def medoids(
    codes: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], count: int, threads: int
) -> npt.NDArray[np.int64]:
    """Row of each cluster's medoid (see :class:`Clusters`), by the C++ core. Only the order
    of the rows within each cluster matters: the rows of some clusters, kept in order and
    with their labels renumbered ``0 .. count-1``, give those clusters' medoids."""
    return _core.medoids(codes, labels, count, _MEDOID_EXACT, threads)


def best_quality(quality: npt.NDArray[Any], labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Row of each cluster's member of highest quality, ties to the lowest row."""
    n = len(labels)
    # Highest quality first, then lowest row: the first row of each cluster in that order.
    # Ranks, not a float cast: int64 qualities above 2**53 keep their order.
    rank = np.unique(quality, return_inverse=True)[1].reshape(-1)
    order = np.lexsort((np.arange(n), -rank, labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]] if n else np.zeros(0, bool)
    return order[first].astype(np.int64)


def cluster(
    hashes_or_pairs: object,
    max_distance: int | None = None,
    *,
    linkage: Literal["single"] = "single",
    qualities: object = None,
    representative: Literal["medoid", "quality"] | None = None,
    ids: object = None,
    threads: int | None = None,
    progress: bool = False,
) -> Clusters:
    """Group hashes into clusters of near-duplicates.

    Parameters
    ----------
    hashes_or_pairs : array-like or Pairs
        Hashes (then :func:`find_duplicates` runs first), or the :class:`Pairs` of an earlier
        :func:`find_duplicates` call: clustering them again at a lower `max_distance` needs
        no new join.
    max_distance : int, optional
        Pairs within this distance link their hashes. Required with hashes; with pairs it
        defaults to their radius and may only be lower.
    linkage : {"single"}, optional
        ``"single"``: clusters are the connected components of the pairs graph (two hashes
        share a cluster when a chain of near-duplicates links them).
    qualities : array-like, optional
        One quality per hash (e.g. PDQ's 0-100 score), for ``representative="quality"``.
    representative : {"medoid", "quality"}, optional
        Which member represents a cluster; default ``"quality"`` when qualities are given,
        else ``"medoid"``.
    ids : array-like, optional
        Labels of the hashes (with hashes; pairs carry their own).
    threads, progress
        As for :func:`find_duplicates`.

    Returns
    -------
    Clusters

    Examples
    --------
    >>> codes = hm.from_hex(["00" * 8, "00" * 7 + "01", "00" * 7 + "03", "ff" * 8])
    >>> clusters = hm.cluster(codes, 1)
    >>> clusters.labels, clusters.representatives
    (array([0, 0, 0, 1]), array([1, 3]))
    """
    if linkage != "single":
        raise InvalidArgument(f"linkage: expected 'single' (connected components), got {linkage!r}")
    nthreads = check_threads(threads)
    quality, chosen = _check_representative(qualities, representative)
    if isinstance(hashes_or_pairs, Pairs):
        pairs = hashes_or_pairs
        if not pairs.self_join:
            raise InvalidArgument(
                "hashes_or_pairs: expected pairs from find_duplicates, got a cross join's"
            )
        if ids is not None:
            raise InvalidArgument(
                "ids: pairs carry the ids given to find_duplicates; pass them there"
            )
        _check_qualities(quality, pairs.n)
        radius = pairs.max_distance
        if max_distance is not None:
            radius = check_max_distance(max_distance, pairs.codes.shape[1] * 8)
            if radius > pairs.max_distance:
                raise InvalidArgument(
                    f"max_distance: expected at most the pairs' radius {pairs.max_distance}, "
                    f"got {radius} "
                    "(pairs farther apart were never found; run find_duplicates again)"
                )
    else:
        if max_distance is None:
            raise InvalidArgument(
                "max_distance: required when clustering hashes (31 is the PDQ standard)"
            )
        codes, _ = as_codes(hashes_or_pairs, name="hashes_or_pairs")
        _check_qualities(quality, len(codes))  # before the join, not after it
        pairs = find_duplicates(codes, max_distance, ids=ids, threads=nthreads, progress=progress)
        radius = pairs.max_distance
    n = pairs.n

    # The pairs' arrays are read in place: no copy, whatever their number.
    labels, count = _core.connected_components(n, pairs.i, pairs.j, pairs.distances, radius)
    sizes = np.bincount(labels, minlength=count).astype(np.int64)
    if chosen == "medoid":
        reps = medoids(pairs.codes, labels, count, nthreads)
    else:
        assert quality is not None
        reps = best_quality(quality, labels)
    return Clusters(
        labels=labels,
        sizes=sizes,
        representatives=reps,
        representative=chosen,
        pairs=pairs,
        max_distance=radius,
        ids=pairs.ids,
    )
