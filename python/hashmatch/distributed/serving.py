"""Serving partitioned hash lists from Ray actors: replicas per partition and a router.

Layout: each list is split into P disjoint partition files (:func:`~hashmatch.distributed.
write_partitions`, :func:`~hashmatch.distributed.build_partitions`) on storage every node can
read. :class:`ShardedMatcher` starts R :class:`PartitionReplica` actors per partition; each
memory-maps its file, from a *path* each call names, so that a dead replica Ray restarts
(``max_restarts``) rebuilds itself from the current generation. A call fans the batch out to
one replica of every partition, fails over to another replica of a partition whose replica
died, errs or times out, and merges the answers in the order of
:class:`~hashmatch.MatchResult` (query, distance, list registration order, id): the result
equals a single-machine :class:`~hashmatch.Matcher` over the same entries. When no replica of
a partition answers, the call raises :class:`~hashmatch.PartitionUnavailable` naming it:
never a partial result.

Generations: :meth:`ShardedMatcher.refresh` gives every partition a new file (written beside
the old ones), has the replicas load it, then switches atomically; each call uses the
generation current when it started for every partition, and says which
(:attr:`ShardedMatchResult.generation`).

:class:`ShardedVideoMatcher` does the same for the partitions of one
:class:`~hashmatch.VideoIndex` (:mod:`hashmatch.distributed.videos`); both routers share the
replicas, the fan-out with failover and the generations of :class:`PartitionRouter`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from hashmatch._validation import check_threads
from hashmatch.errors import (
    IndexFormatError,
    InvalidArgument,
    InvalidType,
    PartitionUnavailable,
)
from hashmatch.files import atomic_write
from hashmatch.lists import HashList
from hashmatch.matching import match_frames, select_lists
from hashmatch.queries import Queries
from hashmatch.results import MatchResult
from hashmatch.videos import Candidates, Frames, MatchSettings, VideoIndex

__all__ = ["PartitionReplica", "PartitionRouter", "ShardedMatchResult", "ShardedMatcher"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Sharded matching needs Ray: pip install 'hashmatch[ray]'") from None
    return ray


Loaded = HashList | VideoIndex


@dataclass(frozen=True, repr=False)
class ShardedMatchResult(MatchResult):
    """A :class:`~hashmatch.MatchResult` of a :class:`ShardedMatcher`, with the generation of
    partition files every match of it comes from."""

    generation: int = 0


class PartitionReplica:
    """One replica of one partition: a hash list or a video index memory-mapped from its file.

    :class:`ShardedMatcher` and :class:`~hashmatch.distributed.ShardedVideoMatcher` run it as
    a Ray actor (it can also be used directly). It is built
    from a path, not an object, so a restarted actor rebuilds itself; a call for a generation
    it has not loaded (a restarted replica, a refresh it missed) loads that generation's file
    first. It keeps the ``keep`` newest generations loaded, and the one it loaded last.

    Parameters
    ----------
    path : str
        The partition file (:meth:`HashList.save` or :meth:`VideoIndex.save`).
    generation : int, default 0
        Its generation number.
    keep : int, default 2
        Generations kept loaded (the current one and the one before, for calls in flight
        during a refresh).
    verify : bool, default True
        Check the file when loading it (:func:`hashmatch.load`).
    cache_dir : str, optional
        A directory on the node's own disk: each partition file is first copied there (once
        per node; replicas on one node share the copy) and the copy is memory-mapped, so
        searches read local pages rather than a network filesystem's. A copy is named by the
        file's path, size and modification time, checked on load (a damaged copy is copied
        again), and removed when its generation is dropped. Default: map the file where it is.
    lazy : bool, default False
        Load nothing until the first call, which names its generation and file. Routers
        create their replicas so: a replica Ray restarts then loads the generation its first
        call asks for, not the one it was created with (whose files may be gone).

    Examples
    --------
    >>> import os, tempfile
    >>> from hashmatch.distributed import PartitionReplica
    >>> banned = hm.HashList("pdq", name="banned")
    >>> _ = banned.add(hm.datasets.random_codes(5, seed=1))
    >>> path = os.path.join(tempfile.mkdtemp(), "part.hm")
    >>> banned.save(path)
    >>> info = PartitionReplica(path, 3).info()
    >>> info["kind"], info["generation"], info["size"]
    ('HashList', 3, 5)
    """

    def __init__(
        self,
        path: str,
        generation: int = 0,
        *,
        keep: int = 2,
        verify: bool = True,
        cache_dir: str | None = None,
        lazy: bool = False,
    ) -> None:
        self._lists: dict[int, tuple[str, Loaded]] = {}
        self._copies: dict[int, str] = {}  # generation -> its copy in cache_dir
        self._keep = max(1, int(keep))
        self._verify = verify
        self._cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self._lock = threading.Lock()
        if not lazy:
            self.load(generation, path)

    def load(self, generation: int, path: str) -> dict[str, Any]:
        """Load (memory-map) generation ``generation`` from ``path`` (through the node's
        cache directory, if given); returns :meth:`info`."""
        return _summary(generation, self._load(generation, path))

    def _load(self, generation: int, path: str) -> Loaded:
        from hashmatch.io import load

        local = path if self._cache_dir is None else _node_copy(path, self._cache_dir)
        try:
            loaded = load(local, mmap=True, verify=self._verify)
        except IndexFormatError:
            if local == path:
                raise
            os.unlink(local)  # a damaged copy (the source is checked on the next load)
            local = _node_copy(path, self._cache_dir or "")
            loaded = load(local, mmap=True, verify=self._verify)
        if not isinstance(loaded, (HashList, VideoIndex)):
            raise InvalidType(
                f"path: {path} holds a {type(loaded).__name__}, not a HashList or a VideoIndex"
            )
        with self._lock:
            self._drop(generation)
            self._lists[generation] = (path, loaded)
            if local != path:
                self._copies[generation] = local
            # keep the `keep` newest generations, and the one just loaded (a call for an older
            # generation, still in flight during refreshes, gets its answer)
            newest = sorted(self._lists)[-self._keep :]
            for old in [g for g in self._lists if g not in newest and g != generation]:
                self._drop(old)
        return loaded

    def _drop(self, generation: int) -> None:
        """Forget a generation (under the lock) and remove its node-local copy, unless another
        generation uses the same copy; mapped pages stay readable after the unlink."""
        self._lists.pop(generation, None)
        copy = self._copies.pop(generation, None)
        if copy is not None and copy not in self._copies.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(copy)

    def unload(self, generation: int) -> None:
        """Forget generation ``generation`` (a refresh the router refused)."""
        with self._lock:
            self._drop(generation)

    def _loaded(self, generation: int, path: str) -> Loaded:
        with self._lock:
            loaded = self._lists.get(generation)
        if loaded is None or loaded[0] != path:
            return self._load(generation, path)
        return loaded[1]

    def _list(self, generation: int, path: str) -> HashList:
        loaded = self._loaded(generation, path)
        if not isinstance(loaded, HashList):
            raise InvalidType(f"path: {path} holds a {type(loaded).__name__}, not a HashList")
        return loaded

    def generations(self) -> list[int]:
        """The generations loaded, oldest first."""
        with self._lock:
            return sorted(self._lists)

    def info(self, generation: int | None = None) -> dict[str, Any]:
        """Kind (``"HashList"`` or ``"VideoIndex"``), radius, size and the rest of what a
        router checks of a loaded generation (default the newest): hash type and width of a
        list; name and quality floor of a video index."""
        with self._lock:
            if not self._lists:
                raise InvalidArgument("generation: this replica has loaded nothing yet")
            number = max(self._lists) if generation is None else generation
            if number not in self._lists:
                raise InvalidArgument(
                    f"generation: {number} is not loaded here (loaded: {sorted(self._lists)})"
                )
            loaded = self._lists[number][1]
        return _summary(number, loaded)

    def match(
        self,
        generation: int,
        path: str,
        queries: Queries,
        max_distance: int,
        threads: int | None = None,
    ) -> tuple[int, MatchResult]:
        """The matches of prepared queries in generation ``generation`` (loaded from ``path``
        if needed): ``(generation, result)``, the result's list named ``""``."""
        hash_list = self._list(generation, path)
        hits = hash_list.hits(queries, max_distance, threads=threads)
        result = MatchResult.from_hits(
            [""],
            [hits],
            queries.total,
            queries.skipped,
            queries.groups,
            dihedral=queries.codes.ndim == 3,
        )
        return generation, result

    def video_candidates(
        self,
        generation: int,
        path: str,
        queries: Sequence[Sequence[Frames]],
        settings: MatchSettings,
        threads: int | None = None,
    ) -> tuple[int, list[list[Candidates]]]:
        """The candidates of prepared query videos in generation ``generation`` of a video
        index partition (:meth:`hashmatch.VideoIndex.candidates`): ``(generation, them)``."""
        index = self._loaded(generation, path)
        if not isinstance(index, VideoIndex):
            raise InvalidType(f"path: {path} holds a {type(index).__name__}, not a VideoIndex")
        mine = replace(settings, threads=check_threads(threads))  # this node's cores
        return generation, index.candidates(queries, mine)

    def pid(self) -> int:
        """The replica's process id (drills: has Ray restarted it?)."""
        return os.getpid()

    def stall(self, seconds: float) -> None:
        """Test and drill hook: keep this replica busy for ``seconds`` (calls queued behind
        it wait, or time out)."""
        time.sleep(seconds)


def _summary(generation: int, loaded: Loaded) -> dict[str, Any]:
    """:meth:`PartitionReplica.info` of a loaded list or video index."""
    out: dict[str, Any] = {
        "generation": generation,
        "kind": type(loaded).__name__,
        "max_distance": loaded.max_distance,
        "size": len(loaded),
        "pid": os.getpid(),
    }
    if isinstance(loaded, HashList):
        out.update(hash_type=loaded.hash_type, bits=loaded.bits)
    else:
        out.update(name=loaded.name, min_quality=loaded.min_quality)
    return out


def _node_copy(path: str, cache_dir: str) -> str:
    """The copy of ``path`` in ``cache_dir``, made (atomically) if it is not there: named by
    the file's absolute path, size and modification time, so a new generation's file, or a
    file replaced in place, gets a new copy."""
    source = os.stat(path)
    tag = f"{os.path.abspath(path)}\0{source.st_size}\0{source.st_mtime_ns}"
    digest = hashlib.blake2b(tag.encode(), digest_size=10).hexdigest()
    local = os.path.join(cache_dir, f"{digest}-{os.path.basename(path)}")
    try:
        if os.stat(local).st_size == source.st_size:
            return local
    except FileNotFoundError:
        pass
    os.makedirs(cache_dir, exist_ok=True)
    with open(path, "rb") as src, atomic_write(local) as out:
        shutil.copyfileobj(src, out, 1 << 24)
    return local


@dataclass(frozen=True)
class _ListInfo:
    hash_type: str
    bits: int
    max_distance: int


@dataclass(frozen=True)
class _Generation:
    """One generation: its number, each list's partition files and what they hold."""

    number: int
    paths: dict[str, tuple[str, ...]]
    infos: dict[str, Any]


Task = tuple[str, int]  # (list name, partition)
_R = TypeVar("_R", bound="PartitionRouter")


class PartitionRouter:
    """What the sharded routers share: R :class:`PartitionReplica` actors per partition of
    each list, the fan-out to one replica of every partition with failover, and generations
    switched atomically. Subclasses check what the partitions hold (:meth:`_check_infos`) and
    match; see :class:`ShardedMatcher` and :class:`~hashmatch.distributed.ShardedVideoMatcher`.

    Examples
    --------
    >>> from hashmatch.distributed import PartitionRouter, ShardedMatcher
    >>> issubclass(ShardedMatcher, PartitionRouter)
    True
    """

    def __init__(
        self,
        paths: dict[str, tuple[str, ...]],
        *,
        replicas: int,
        generation: int,
        timeout_s: float,
        max_restarts: int,
        threads: int | None,
        actor_options: Mapping[str, Any] | None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        ray = _ray()
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise InvalidArgument(f"replicas: expected an int >= 1, got {replicas!r}")
        if isinstance(generation, bool) or not isinstance(generation, int):
            raise InvalidType(f"generation: expected an int, got {generation!r}")
        self._timeout = _check_timeout(timeout_s)
        self._threads = None if threads is None else check_threads(threads)
        options = {
            "max_restarts": int(max_restarts),
            "max_task_retries": 0,  # the router fails over itself
            **dict(actor_options or {}),
        }
        actor = ray.remote(PartitionReplica).options(**options)
        cache = None if cache_dir is None else os.fspath(cache_dir)
        self._actors: dict[str, list[list[Any]]] = {
            name: [
                [actor.remote(p, generation, cache_dir=cache, lazy=True) for _ in range(replicas)]
                for p in parts
            ]
            for name, parts in paths.items()
        }
        self._rotation = itertools.count()
        self._refresh_lock = threading.Lock()
        try:
            infos = self._fan_out(
                generation,
                _tasks(paths),
                lambda a, n, j: a.load.remote(generation, paths[n][j]),
                every_replica=True,
            )
            self._state = _Generation(
                generation, paths, self._check_infos(paths, infos, generation)
            )
        except BaseException:
            self.close()  # no orphaned actors
            raise

    def _check_infos(
        self,
        paths: Mapping[str, Sequence[str]],
        answers: Mapping[Task, Mapping[str, Any]],
        generation: int,
    ) -> dict[str, Any]:
        """What each list's partitions hold (:meth:`PartitionReplica.info`), checked to fit
        together; raises :class:`~hashmatch.InvalidArgument` otherwise."""
        raise NotImplementedError

    def _check_refresh(self, old: _Generation, new: Mapping[str, Any], number: int) -> None:
        """Refuse a new generation whose partitions hold what the old one's callers cannot
        query (raises :class:`~hashmatch.InvalidArgument`); by default any is accepted."""

    def _describe(self, name: str, partition: int) -> str:
        """A partition, as errors name it."""
        return f"list {name!r} partition {partition}"

    # ------------------------------------------------------------ properties

    @property
    def generation(self) -> int:
        """The current generation number."""
        return self._state.number

    def replicas(self, name: str, partition: int) -> list[Any]:
        """The Ray actor handles of one partition's replicas (for tests and drills)."""
        return list(self._actors[name][partition])

    # ------------------------------------------------------------ calls

    def _call(
        self,
        state: _Generation,
        names: Sequence[str],
        submit: Callable[[Any, str, int, str], Any],
        timeout_s: float | None,
    ) -> dict[Task, Any]:
        """``submit(actor, name, partition, path)`` on one replica of every partition of the
        lists ``names`` in generation ``state``, with failover; each partition's answer, checked
        to come from that generation."""
        timeout = self._timeout if timeout_s is None else _check_timeout(timeout_s)
        tasks = [(n, j) for n in names for j in range(len(state.paths[n]))]
        answers = self._fan_out(
            state.number,
            tasks,
            lambda a, n, j: submit(a, n, j, state.paths[n][j]),
            timeout,
        )
        out: dict[Task, Any] = {}
        for (name, j), (number, value) in answers.items():
            if number != state.number:  # pragma: no cover - a replica bug
                raise PartitionUnavailable(
                    f"{self._describe(name, j)}: answered from generation {number}, "
                    f"not {state.number}",
                    name,
                    j,
                    state.number,
                )
            out[name, j] = value
        return out

    def _switch(
        self,
        paths: dict[str, tuple[str, ...]],
        generation: int | None,
        timeout_s: float | None,
    ) -> int:
        """:meth:`refresh` of checked paths (the same lists and partition counts)."""
        timeout = self._timeout if timeout_s is None else _check_timeout(timeout_s)
        with self._refresh_lock:
            old = self._state
            number = old.number + 1 if generation is None else generation
            if isinstance(number, bool) or not isinstance(number, int) or number <= old.number:
                raise InvalidArgument(
                    f"generation: expected an int greater than the current {old.number}, "
                    f"got {generation!r}"
                )
            try:
                loaded = self._fan_out(
                    number,
                    _tasks(paths),
                    lambda a, n, j: a.load.remote(number, paths[n][j]),
                    timeout,
                    every_replica=True,
                )
                infos = self._check_infos(paths, loaded, number)
                self._check_refresh(old, infos, number)
            except BaseException:
                self._unload(number)  # refused: the replicas keep serving the old generation
                raise
            self._state = _Generation(number, paths, infos)
            return number

    def _unload(self, generation: int) -> None:
        """Have every replica forget ``generation`` (best effort: a dead one has nothing)."""
        ray = _ray()
        refs = [a.unload.remote(generation) for ps in self._actors.values() for p in ps for a in p]
        ray.wait(refs, num_returns=len(refs), timeout=self._timeout)

    def close(self) -> None:
        """Stop every replica."""
        ray = _ray()
        for partitions in self._actors.values():
            for actors in partitions:
                for actor in actors:
                    ray.kill(actor, no_restart=True)

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ fan-out

    def _fan_out(
        self,
        generation: int,
        tasks: list[Task],
        submit: Callable[[Any, str, int], Any],
        timeout: float | None = None,
        *,
        every_replica: bool = False,
    ) -> dict[Task, Any]:
        """Run ``submit(actor, name, partition)`` on one replica of each task's partition
        (rotating), failing over to the next replica on an error or after ``timeout``; the
        first answer of each. With ``every_replica``, run it on every replica at once and
        keep the first success of each partition."""
        ray = _ray()
        limit = self._timeout if timeout is None else timeout
        start = next(self._rotation)
        orders: dict[Task, list[Any]] = {}
        pending: dict[Any, tuple[Task, int, float]] = {}  # ref -> task, attempt, deadline
        errors: dict[Task, list[str]] = {t: [] for t in tasks}
        answers: dict[Task, Any] = {}

        def send(task: Task, attempt: int) -> None:
            actor = orders[task][attempt]
            pending[submit(actor, *task)] = (task, attempt, time.monotonic() + limit)

        for task in tasks:
            actors = self._actors[task[0]][task[1]]
            shift = start % len(actors)
            orders[task] = actors[shift:] + actors[:shift]
            for attempt in range(len(actors) if every_replica else 1):
                send(task, attempt)

        def failed(task: Task, attempt: int, why: str) -> None:
            errors[task].append(f"replica {attempt + 1} of {len(orders[task])}: {why}")
            if task in answers:
                return
            if every_replica:
                if len(errors[task]) < len(orders[task]):
                    return
            elif attempt + 1 < len(orders[task]):
                send(task, attempt + 1)
                return
            name, j = task
            raise PartitionUnavailable(
                f"{self._describe(name, j)} (generation {generation}): no replica "
                f"answered ({'; '.join(errors[task])})",
                name,
                j,
                generation,
            )

        while pending:
            now = time.monotonic()
            wait = max(0.0, min(d for _, _, d in pending.values()) - now)
            ready, rest = ray.wait(list(pending), num_returns=1, timeout=wait)
            if ready and rest:  # and whatever else is done: one wait per wave, not per answer
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready += more
            for ref in ready:
                task, attempt, _ = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except Exception as e:
                    failed(task, attempt, f"{type(e).__name__}: {_first_line(e)}")
                else:
                    answers.setdefault(task, value)
            now = time.monotonic()
            for ref, (task, attempt, deadline) in list(pending.items()):
                if deadline <= now:
                    del pending[ref]
                    failed(task, attempt, f"no answer within {limit:g} s")
        return answers


class ShardedMatcher(PartitionRouter):
    """Match query hashes against partitioned lists served by Ray actors.

    Each list is given as its partition files (one generation); every partition gets
    ``replicas`` :class:`PartitionReplica` actors. :meth:`match` answers as
    :meth:`hashmatch.Matcher.match` over the whole lists (same rows, order and columns).
    Ray must be initialised (``ray.init()``) before.

    Parameters
    ----------
    lists : mapping of str to sequence of path
        Each list's partition files, in registration order (the order of ``lists`` among
        equal distances, as in :class:`~hashmatch.Matcher`). Every partition of a list must
        hold the same hash type, width and radius, and the ids must be disjoint across
        partitions (as :func:`~hashmatch.distributed.partition` makes them).
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
        Threads each replica matches with (default every core of its node).
    actor_options : mapping, optional
        Further Ray actor options (``num_cpus``, ``resources``, ``scheduling_strategy``...).
    cache_dir : str or path-like, optional
        A directory on each node's own disk where replicas copy their partition files before
        mapping them (see :class:`PartitionReplica`); default: map them on the shared storage.

    Notes
    -----
    Failures: a replica that dies, raises or passes ``timeout_s`` is given up for that call
    and the partition's next replica is asked, until every replica of it was tried; then the
    call raises :class:`~hashmatch.PartitionUnavailable`, naming the list, partition and
    generation, with each replica's error. A call never returns a partial result. Ray
    restarts dead replicas (up to ``max_restarts``); a restarted one loads the current
    generation on its first call.

    Thread safety: :meth:`match` may run in any number of threads, also during
    :meth:`refresh`; refreshes are serialised.
    """

    def __init__(
        self,
        lists: Mapping[str, Sequence[str | os.PathLike[str]]],
        *,
        replicas: int = 2,
        generation: int = 0,
        timeout_s: float = 30.0,
        max_restarts: int = 3,
        threads: int | None = None,
        actor_options: Mapping[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(lists, Mapping) or not lists:
            raise InvalidType(
                "lists: expected a non-empty mapping of list names to partition paths, "
                f"got {lists!r}"
            )
        super().__init__(
            _check_paths(lists, None),
            replicas=replicas,
            generation=generation,
            timeout_s=timeout_s,
            max_restarts=max_restarts,
            threads=threads,
            actor_options=actor_options,
            cache_dir=cache_dir,
        )

    def _check_infos(
        self,
        paths: Mapping[str, Sequence[str]],
        answers: Mapping[Task, Mapping[str, Any]],
        generation: int,
    ) -> dict[str, Any]:
        return _list_infos(paths, answers, generation)

    def _check_refresh(self, old: _Generation, new: Mapping[str, Any], number: int) -> None:
        for name, info in new.items():
            was: _ListInfo = old.infos[name]
            if (info.hash_type, info.bits) != (was.hash_type, was.bits):
                raise InvalidArgument(
                    f"lists[{name!r}]: generation {number} holds {info.hash_type} hashes of "
                    f"{info.bits} bits, generation {old.number} {was.hash_type} of {was.bits} "
                    "bits; a list keeps its hash type across generations (serve another type "
                    "from a new ShardedMatcher)"
                )

    # ------------------------------------------------------------ properties

    @property
    def names(self) -> list[str]:
        """Names of the lists, in registration order."""
        return list(self._actors)

    @property
    def paths(self) -> dict[str, tuple[str, ...]]:
        """Each list's partition files in the current generation."""
        return dict(self._state.paths)

    def __repr__(self) -> str:
        state = self._state
        inner = ", ".join(
            f"{n}: {len(p)} partitions x {len(self._actors[n][0])}" for n, p in state.paths.items()
        )
        return f"ShardedMatcher({{{inner}}}, generation={state.number})"

    # ------------------------------------------------------------ matching

    def match(
        self,
        hashes: object,
        *,
        hash_type: str | None = None,
        qualities: object = None,
        min_quality: float | None = None,
        groups: object = None,
        dihedral: bool = False,
        timeout_s: float | None = None,
    ) -> ShardedMatchResult:
        """Match query hashes against every list of their hash type, on every partition.

        Parameters
        ----------
        hashes, hash_type, qualities, min_quality, groups, dihedral
            As in :meth:`hashmatch.Matcher.match`.
        timeout_s : float, optional
            This call's time limit per replica (default the matcher's).

        Returns
        -------
        ShardedMatchResult
            The :class:`~hashmatch.MatchResult` a :class:`~hashmatch.Matcher` over the whole
            lists gives, and the generation it comes from.

        Raises
        ------
        PartitionUnavailable
            No replica of some partition answered.
        """
        ray = _ray()
        state = self._state  # one generation for the whole call
        kinds = {n: (i.hash_type, i.bits) for n, i in state.infos.items()}
        queries, chosen = select_lists(
            kinds, hashes, hash_type, qualities, min_quality, groups, dihedral
        )
        answers: dict[Task, MatchResult] = {}
        if chosen and len(queries.numbers):
            ref = ray.put(queries)
            answers = self._call(
                state,
                chosen,
                lambda a, n, j, path: a.match.remote(
                    state.number, path, ref, state.infos[n].max_distance, self._threads
                ),
                timeout_s,
            )
        parts = [(chosen.index(name), result) for (name, _), result in answers.items()]
        return _merge(chosen, parts, queries, state.number)

    def match_video(
        self,
        video: object,
        *,
        hash_type: str | None = None,
        min_quality: int = 50,
        dihedral: bool = False,
        timeout_s: float | None = None,
    ) -> ShardedMatchResult:
        """Match every frame of a video against the lists of still images, on every partition:
        what :meth:`hashmatch.Matcher.match_video` over the whole lists gives (``queries``
        are the frames' positions, ``query_times`` their timestamps), and the generation.

        Parameters
        ----------
        video, hash_type, min_quality, dihedral
            As in :meth:`hashmatch.Matcher.match_video`.
        timeout_s : float, optional
            This call's time limit per replica (default the matcher's).
        """
        return match_frames(
            self.match,
            video,
            hash_type=hash_type,
            min_quality=min_quality,
            dihedral=dihedral,
            timeout_s=timeout_s,
        )

    # ------------------------------------------------------------ refresh

    def refresh(
        self,
        lists: Mapping[str, Sequence[str | os.PathLike[str]]],
        *,
        generation: int | None = None,
        timeout_s: float | None = None,
    ) -> int:
        """Switch to a new generation of partition files, atomically.

        Every replica is asked to load its new file; once at least one replica of every
        partition has (the others load it on their next call), new calls use the new
        generation. Calls already running finish on the old one, whose files must stay in
        place until they have (write each generation to its own directory).

        Parameters
        ----------
        lists : mapping of str to sequence of path
            The new partition files of every list: the same lists, each with as many
            partitions as before.
        generation : int, optional
            The new generation number, greater than the current (default current + 1).
        timeout_s : float, optional
            Time limit per replica load (default the matcher's).

        Returns
        -------
        int
            The new generation number.

        Raises
        ------
        PartitionUnavailable
            No replica of some partition loaded its new file; the old generation stays.
        """
        return self._switch(_check_paths(lists, self._state.paths), generation, timeout_s)


# ---------------------------------------------------------------- helpers


def _check_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidType(f"timeout_s: expected a number of seconds, got {value!r}")
    if not value > 0:
        raise InvalidArgument(f"timeout_s: expected a positive number of seconds, got {value}")
    return float(value)


def _check_paths(
    lists: Mapping[str, Sequence[str | os.PathLike[str]]],
    current: Mapping[str, tuple[str, ...]] | None,
    where: Callable[[str], str] = lambda name: f"lists[{name!r}]",
) -> dict[str, tuple[str, ...]]:
    """Each list's partition files as absolute paths; with ``current``, the same lists and
    partition counts as it. ``where(name)`` names a list's paths in errors."""
    if not isinstance(lists, Mapping):
        raise InvalidType(f"lists: expected a mapping of list names to paths, got {lists!r}")
    out: dict[str, tuple[str, ...]] = {}
    for name, parts in lists.items():
        if not isinstance(name, str) or not name:
            raise InvalidType(f"lists: expected non-empty str names, got {name!r}")
        if isinstance(parts, (str, bytes, os.PathLike)) or not isinstance(parts, Sequence):
            raise InvalidType(f"{where(name)}: expected a sequence of partition paths")
        if not parts:
            raise InvalidArgument(f"{where(name)}: expected at least one partition")
        out[name] = tuple(os.path.abspath(os.fspath(p)) for p in parts)
    if current is not None:
        if list(out) != list(current):
            raise InvalidArgument(
                f"lists: expected the lists {list(current)} (in that order), got {list(out)}"
            )
        for name, parts in out.items():
            if len(parts) != len(current[name]):
                raise InvalidArgument(
                    f"{where(name)}: expected {len(current[name])} partitions (one file per "
                    f"partition; repartitioning needs a new ShardedMatcher), got {len(parts)}"
                )
    return out


def _list_infos(
    paths: Mapping[str, Sequence[str]], answers: Mapping[Task, Mapping[str, Any]], generation: int
) -> dict[str, _ListInfo]:
    """Each list's hash type, width and radius (in the order of ``paths``: the registration
    order), checked to agree across its partitions."""
    infos: dict[str, _ListInfo] = {}
    for name, j in ((n, j) for n, parts in paths.items() for j in range(len(parts))):
        answer = answers[name, j]
        if answer["kind"] != "HashList":
            raise InvalidArgument(
                f"lists[{name!r}]: partition {j} ({paths[name][j]}) holds a {answer['kind']}, "
                "not a HashList (a VideoIndex is served by ShardedVideoMatcher)"
            )
        info = _ListInfo(answer["hash_type"], answer["bits"], answer["max_distance"])
        if infos.setdefault(name, info) != info:
            first = infos[name]
            raise InvalidArgument(
                f"lists[{name!r}]: partition {j} of generation {generation} holds "
                f"{info.hash_type}/{info.bits} bits within {info.max_distance}, partition 0 "
                f"{first.hash_type}/{first.bits} bits within {first.max_distance}"
            )
    return infos


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else "(no message)"


_EMPTY = {"queries": np.int64, "ids": np.int64, "distances": np.int32, "variants": np.uint8}


def _merge(
    names: Sequence[str],
    parts: Sequence[tuple[int, MatchResult]],
    queries: Queries,
    generation: int,
) -> ShardedMatchResult:
    """The partitions' results as one, in :class:`MatchResult` order (query, distance, list
    registration order, id)."""
    dihedral = queries.codes.ndim == 3
    columns = ("queries", "ids", "keys", "distances", "labels", "sources")
    merged: dict[str, npt.NDArray[Any]] = {}
    for column in (*columns, *(("variants",) if dihedral else ())):
        values = [getattr(r, column) for _, r in parts]
        merged[column] = (
            np.concatenate(values) if values else np.zeros(0, _EMPTY.get(column, object))
        )
    codes = (
        np.concatenate([np.full(len(r), i, np.int32) for i, r in parts])
        if parts
        else np.zeros(0, np.int32)
    )
    order = np.lexsort((merged["ids"], codes, merged["distances"], merged["queries"]))
    table = np.array(list(names) or [""], dtype=object)
    merged = {k: v[order] for k, v in merged.items()}
    given = {f.name for f in fields(MatchResult)}
    assert set(merged) <= given
    return ShardedMatchResult(
        lists=table[codes[order]],
        skipped=queries.skipped,
        nqueries=queries.total,
        query_groups=queries.groups,
        list_names=tuple(names),
        generation=generation,
        **merged,
    )


def _tasks(paths: Mapping[str, Sequence[str]]) -> list[Task]:
    """Every (list, partition) of ``paths``."""
    return [(n, j) for n, parts in paths.items() for j in range(len(parts))]
