"""Serving a partitioned :class:`~hashmatch.VideoIndex` from Ray actors.

The index is split into P disjoint partition files by video id
(:func:`~hashmatch.distributed.write_partitions`); :class:`ShardedVideoMatcher` starts R
:class:`~hashmatch.distributed.PartitionReplica` actors per partition (the replicas, failover,
timeouts and generations of :class:`~hashmatch.distributed.ShardedMatcher`). Each partition
answers with its candidates (:meth:`hashmatch.VideoIndex.candidates`): every banked video with
matching frames, its percentages, verdict and segments, the query frames it matched, and how
many of its videos each query frame matched. The router adds those counts over the partitions
to count ``common_frames`` exactly, keeps each banked video at the better hashing of the
upload, and orders the rows as :meth:`hashmatch.VideoIndex.match_many` does: the result equals
that of one index over the same videos.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hashmatch.distributed.serving import (
    PartitionRouter,
    Task,
    _check_paths,
    _ray,
)
from hashmatch.errors import InvalidArgument, InvalidType
from hashmatch.videos import (
    DEFAULT_COMMON_VIDEOS,
    DEFAULT_MIN_COMPARED_PCT,
    DEFAULT_MIN_QUERY_PCT,
    VideoMatchResult,
    combine_candidates,
    prepare_match,
)

__all__ = ["ShardedVideoMatchResult", "ShardedVideoMatcher"]

VIDEOS = "videos"
"""The one "list" of a video router (errors and ``PartitionUnavailable.list_name`` name it)."""


@dataclass(frozen=True, repr=False)
class ShardedVideoMatchResult(VideoMatchResult):
    """A :class:`~hashmatch.VideoMatchResult` of a :class:`ShardedVideoMatcher`, with the
    generation of partition files every row of it comes from."""

    generation: int = 0


@dataclass(frozen=True)
class _VideoInfo:
    name: str | None
    max_distance: int
    min_quality: int


class ShardedVideoMatcher(PartitionRouter):
    """Match query videos against a partitioned :class:`~hashmatch.VideoIndex` served by Ray
    actors.

    :meth:`match_many` answers as :meth:`hashmatch.VideoIndex.match_many` over the whole index
    (same rows, order and fields, ``common_frames`` counted over every partition). Ray must be
    initialised (``ray.init()``) before.

    Parameters
    ----------
    paths : sequence of path
        The partition files of one video index (:func:`~hashmatch.distributed.
        write_partitions`): the same name, radius and quality floor, disjoint video ids.
    replicas : int, default 2
        Actors per partition.
    generation : int, default 0
        The generation number of these files.
    timeout_s : float, default 30
        How long one replica may take to answer one call (or to load a file in
        :meth:`refresh`) before the call goes to the next replica of its partition.
    max_restarts : int, default 3
        Ray restarts of a dead replica (``-1``: without limit).
    threads : int, optional
        Threads each replica searches with (default every core of its node).
    actor_options : mapping, optional
        Further Ray actor options (``num_cpus``, ``resources``, ``scheduling_strategy``...).
    cache_dir : str or path-like, optional
        A directory on each node's own disk where replicas copy their partition files before
        mapping them (see :class:`PartitionReplica`); default: map them on the shared storage.

    Notes
    -----
    Failures, timeouts and refreshes work as in :class:`~hashmatch.distributed.ShardedMatcher`:
    when no replica of a partition answers, the call raises
    :class:`~hashmatch.PartitionUnavailable` (``list_name`` ``"videos"``, the partition and
    the generation), never a partial result.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, ray
    >>> from hashmatch.distributed import ShardedVideoMatcher, write_partitions
    >>> _ = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    >>> frames = hm.datasets.random_codes(40, seed=5)
    >>> bank = hm.VideoIndex(name="bank")
    >>> ids = bank.add_many([(frames[i : i + 10], [90] * 10, np.arange(10.0)) for i in (0, 10, 20)])
    >>> paths = write_partitions(bank, os.path.join(tempfile.mkdtemp(), "gen-0"), 2)
    >>> with ShardedVideoMatcher(paths, replicas=1) as sharded:
    ...     result = sharded.match((frames[12:20], [90] * 8, np.arange(8.0)))
    >>> result.generation, [(m.id, m.compared_pct, m.matched) for m in result]
    (0, [(1, 80.0, True)])
    >>> ray.shutdown()
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        replicas: int = 2,
        generation: int = 0,
        timeout_s: float = 30.0,
        max_restarts: int = 3,
        threads: int | None = None,
        actor_options: Mapping[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(
            _video_paths(paths, None),
            replicas=replicas,
            generation=generation,
            timeout_s=timeout_s,
            max_restarts=max_restarts,
            threads=threads,
            actor_options=actor_options,
            cache_dir=cache_dir,
        )

    def _describe(self, name: str, partition: int) -> str:
        return f"video index partition {partition}"

    def _check_infos(
        self,
        paths: Mapping[str, Sequence[str]],
        answers: Mapping[Task, Mapping[str, Any]],
        generation: int,
    ) -> dict[str, Any]:
        first: _VideoInfo | None = None
        for j, path in enumerate(paths[VIDEOS]):
            answer = answers[VIDEOS, j]
            if answer["kind"] != "VideoIndex":
                raise InvalidArgument(
                    f"paths[{j}]: {path} holds a {answer['kind']}, not a VideoIndex (a hash "
                    "list is served by ShardedMatcher)"
                )
            info = _VideoInfo(answer["name"], answer["max_distance"], answer["min_quality"])
            if first is None:
                first = info
            elif info != first:
                raise InvalidArgument(
                    f"paths[{j}]: partition {j} of generation {generation} is index "
                    f"{info.name!r} within {info.max_distance}, quality >= {info.min_quality}; "
                    f"partition 0 is {first.name!r} within {first.max_distance}, quality >= "
                    f"{first.min_quality} (partitions of one index must agree)"
                )
        return {VIDEOS: first}

    # ------------------------------------------------------------ properties

    @property
    def paths(self) -> tuple[str, ...]:
        """The partition files of the current generation."""
        return self._state.paths[VIDEOS]

    @property
    def name(self) -> str | None:
        """The index's name."""
        info: _VideoInfo = self._state.infos[VIDEOS]
        return info.name

    def __repr__(self) -> str:
        state = self._state
        return (
            f"ShardedVideoMatcher({self.name!r}: {len(state.paths[VIDEOS])} partitions x "
            f"{len(self._actors[VIDEOS][0])}, generation={state.number})"
        )

    # ------------------------------------------------------------ matching

    def match(
        self,
        video: object,
        *,
        max_distance: int | None = None,
        min_quality: int | None = None,
        min_query_pct: float = DEFAULT_MIN_QUERY_PCT,
        min_compared_pct: float = DEFAULT_MIN_COMPARED_PCT,
        min_duration: float = 0.0,
        max_gap: float | None = None,
        semantics: Literal["pytx", "cpp"] = "pytx",
        dihedral: bool = False,
        common_videos: int = DEFAULT_COMMON_VIDEOS,
        threads: int | None = None,
        timeout_s: float | None = None,
    ) -> ShardedVideoMatchResult:
        """Match one query video (or a list of hashings of one upload) on every partition.

        Parameters
        ----------
        video, max_distance, min_quality, min_query_pct, min_compared_pct, min_duration, \
max_gap, semantics, dihedral, common_videos
            As in :meth:`hashmatch.VideoIndex.match`.
        threads : int, optional
            Threads each replica searches with (default the matcher's).
        timeout_s : float, optional
            This call's time limit per replica (default the matcher's).

        Returns
        -------
        ShardedVideoMatchResult
            What :meth:`hashmatch.VideoIndex.match` over the whole index gives, and the
            generation it comes from.

        Raises
        ------
        PartitionUnavailable
            No replica of some partition answered.
        """
        return self.match_many(
            [video],
            max_distance=max_distance,
            min_quality=min_quality,
            min_query_pct=min_query_pct,
            min_compared_pct=min_compared_pct,
            min_duration=min_duration,
            max_gap=max_gap,
            semantics=semantics,
            dihedral=dihedral,
            common_videos=common_videos,
            threads=threads,
            timeout_s=timeout_s,
        )

    def match_many(
        self,
        videos: Sequence[object],
        *,
        timeout_s: float | None = None,
        threads: int | None = None,
        **options: Any,
    ) -> ShardedVideoMatchResult:
        """:meth:`match` for a batch of query videos (``VideoMatch.query`` numbers them);
        ``options`` as in :meth:`match`."""
        state = self._state  # one generation for the whole call
        info: _VideoInfo = state.infos[VIDEOS]
        settings, queries = prepare_match(
            videos, info.max_distance, info.min_quality, threads=threads, **options
        )
        answers: dict[Task, Any] = {}
        if queries:
            ref = _ray().put(queries)
            replica_threads = self._threads if threads is None else threads
            answers = self._call(
                state,
                [VIDEOS],
                lambda a, n, j, path: a.video_candidates.remote(
                    state.number, path, ref, settings, replica_threads
                ),
                timeout_s,
            )
        parts = [answers[VIDEOS, j] for j in range(len(state.paths[VIDEOS]))] if answers else []
        result = combine_candidates(parts, settings, len(queries))
        return ShardedVideoMatchResult(
            result.rows, result.nqueries, result.thresholds, generation=state.number
        )

    # ------------------------------------------------------------ refresh

    def refresh(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        generation: int | None = None,
        timeout_s: float | None = None,
    ) -> int:
        """Switch to a new generation of partition files (as many as before), atomically: see
        :meth:`hashmatch.distributed.ShardedMatcher.refresh`. Returns the new generation."""
        return self._switch(_video_paths(paths, self._state.paths), generation, timeout_s)


def _video_paths(
    paths: Sequence[str | os.PathLike[str]], current: Mapping[str, tuple[str, ...]] | None
) -> dict[str, tuple[str, ...]]:
    if isinstance(paths, (str, bytes, os.PathLike, Mapping)) or not isinstance(paths, Sequence):
        raise InvalidType(
            f"paths: expected a sequence of partition paths, got {type(paths).__name__}"
        )
    return _check_paths({VIDEOS: paths}, current, lambda name: "paths")
