"""Splitting a hash list into disjoint partitions, in memory or streamed from a file.

An entry goes to partition ``partition_of(id, P)``: a fixed mix of its id (the SplitMix64
finaliser) modulo P, the same on every machine and in every run, so the partitions of one
list are disjoint and every id keeps its partition across generations. Entries keep their ids
(and keys, labels, sources, qualities, extras), so ids stay unique across the partitions and
the matches of the partitions together are the matches of the whole list.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np
import numpy.typing as npt

from hashmatch.errors import InvalidArgument, InvalidType
from hashmatch.formats import HashRecords, read_hashes
from hashmatch.lists import HashList
from hashmatch.schema import FIELDS
from hashmatch.videos import VideoEntry, VideoIndex

__all__ = [
    "build_partitions",
    "build_video_partitions",
    "partition",
    "partition_of",
    "partition_paths",
    "write_partitions",
]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _check_parts(parts: object) -> int:
    if isinstance(parts, bool) or not isinstance(parts, (int, np.integer)):
        raise InvalidType(f"parts: expected an int, got {type(parts).__name__}")
    if parts < 1:
        raise InvalidArgument(f"parts: expected at least 1 partition, got {parts}")
    return int(parts)


def partition_of(ids: npt.ArrayLike, parts: int) -> npt.NDArray[np.int64]:
    """The partition (0 to ``parts - 1``) of each id: SplitMix64's finaliser of the id, modulo
    ``parts``.

    Examples
    --------
    >>> from hashmatch.distributed import partition_of
    >>> partition_of([0, 1, 2, 3, 4, 5], 3).tolist()
    [0, 1, 1, 2, 2, 0]
    """
    p = _check_parts(parts)
    x = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(p)).astype(np.int64)


def _empty_like(hash_list: HashList) -> HashList:
    """An empty list with the options of ``hash_list`` (type, width, radius, backend, name)."""
    return HashList(
        hash_list.hash_type,
        bits=hash_list.bits,
        max_distance=hash_list.max_distance,
        backend=hash_list.backend,
        backend_params=hash_list._backend_params or None,
        name=hash_list.name,
    )


def _chunks(hash_list: HashList, chunk_size: int) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """(codes, ids, add() arguments) of every entry of one snapshot, in id order."""
    for segment, rows in hash_list.snapshot().sorted_live():
        for lo in range(0, len(rows), chunk_size):
            r = rows[lo : lo + chunk_size]
            values = segment.columns.decoded(r)
            yield segment.codes[r], segment.ids[r], {f.argument: values[f.name] for f in FIELDS}


def _take(values: Sequence[Any] | npt.NDArray[Any] | None, where: npt.NDArray[np.int64]) -> Any:
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return values[where]
    return [values[i] for i in where.tolist()]


def partition(
    hash_list: HashList | VideoIndex, parts: int, *, chunk_size: int = 1_000_000
) -> list[Any]:
    """Split a list into ``parts`` disjoint lists (entry ``i`` to ``partition_of(i, parts)``),
    or a :class:`~hashmatch.VideoIndex` into ``parts`` disjoint indexes (by video id).

    Every entry keeps its id and fields, every partition the list's hash type, radius, backend
    and name; matching the partitions and merging (:class:`ShardedMatcher`) gives the matches
    of the whole list. Every video keeps its id, key, labels, source and frames, every video
    partition the index's name, radius and quality floor (:class:`ShardedVideoMatcher`).

    Parameters
    ----------
    hash_list : HashList or VideoIndex
        The list (or video index) to split (one consistent snapshot of it).
    parts : int
        Number of partitions, at least 1.
    chunk_size : int, optional
        Entries copied per step.

    Returns
    -------
    list of HashList or of VideoIndex
        ``parts`` lists (some may be empty).

    Examples
    --------
    >>> import hashmatch as hm
    >>> from hashmatch.distributed import partition
    >>> banned = hm.HashList("pdq", name="banned")
    >>> _ = banned.add(hm.datasets.random_codes(10, seed=1))
    >>> [len(p) for p in partition(banned, 3)]
    [3, 5, 2]
    >>> import numpy as np
    >>> videos = hm.VideoIndex(name="videos")
    >>> frames = hm.datasets.random_codes(4, seed=2), [90] * 4, np.arange(4.0)
    >>> _ = videos.add_many([frames] * 6)
    >>> [p.ids.tolist() for p in partition(videos, 2)]
    [[0, 2, 3, 4, 5], [1]]
    """
    if isinstance(hash_list, VideoIndex):
        return _partition_videos(hash_list, _check_parts(parts))
    if not isinstance(hash_list, HashList):
        raise InvalidType(
            f"hash_list: expected a HashList or a VideoIndex, got {type(hash_list).__name__}"
        )
    p = _check_parts(parts)
    out = [_empty_like(hash_list) for _ in range(p)]
    with ExitStack() as stack:  # one atomic write per partition
        for part in out:
            stack.enter_context(part.batch())
        for codes, ids, arguments in _chunks(hash_list, chunk_size):
            where = partition_of(ids, p)
            for j in range(p):
                rows = np.flatnonzero(where == j)
                if len(rows):
                    out[j].add(
                        codes[rows],
                        ids=ids[rows],
                        **{k: _take(v, rows) for k, v in arguments.items()},
                    )
    return out


def _partition_videos(index: VideoIndex, parts: int) -> list[VideoIndex]:
    """The videos of ``index`` in ``parts`` disjoint indexes, by :func:`partition_of` of their
    ids; each partition added in one update."""
    out = [
        VideoIndex(name=index.name, max_distance=index.max_distance, min_quality=index.min_quality)
        for _ in range(parts)
    ]
    entries = list(index.entries())
    where = partition_of([e.id for e in entries], parts).tolist()
    for j, part in enumerate(out):
        _bank(part, [e for e, w in zip(entries, where, strict=True) if w == j])
    return out


def _bank(index: VideoIndex, entries: Sequence[VideoEntry]) -> None:
    """Add videos as entries describe them (ids, keys, labels, sources, frames), in one update."""
    index.add_many(
        [(e.codes, e.qualities, e.timestamps) for e in entries],
        keys=[e.key for e in entries],
        labels=[e.labels for e in entries],
        sources=[e.source for e in entries],
        ids=[e.id for e in entries],
    )


def partition_paths(directory: str | os.PathLike[str], parts: int) -> list[str]:
    """The file names :func:`write_partitions` and :func:`build_partitions` use in
    ``directory``: ``part-00000-of-00003.hm``, ..."""
    p = _check_parts(parts)
    return [os.path.join(os.fspath(directory), f"part-{j:05d}-of-{p:05d}.hm") for j in range(p)]


def write_partitions(
    hash_list: HashList | VideoIndex, directory: str | os.PathLike[str], parts: int
) -> list[str]:
    """Split a list or a video index (:func:`partition`) and save each partition in
    ``directory`` (created if needed; one directory per generation); returns the paths, in
    partition order."""
    os.makedirs(directory, exist_ok=True)
    paths = partition_paths(directory, parts)
    for part, path in zip(partition(hash_list, parts), paths, strict=True):
        part.save(path)
    return paths


def build_partitions(
    source: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    parts: int,
    hash_type: str = "pdq",
    *,
    format: str = "auto",
    chunk_size: int = 1_000_000,
    skip_invalid: bool = False,
    **options: Any,
) -> list[str]:
    """Build partition files from a hash-list file (hex, CSV or TSV) without holding it all.

    The file is streamed in chunks (:func:`hashmatch.formats.read_hashes`); each chunk's
    entries are routed by id (:func:`partition_of`) and each partition's rows (codes, ids,
    fields) spilled to a scratch directory beside the output (about one copy of the input in
    all, whatever `parts`), then each partition is built and saved in turn, so memory holds
    one chunk or one partition at a time. Ids come from the file's id column, else are
    numbered from 0 in file order (as :meth:`HashList.import_file` numbers them in an empty
    list).

    Parameters
    ----------
    source : str or path-like
        The hash-list file.
    directory : str or path-like
        Where to write the partition files (created if needed; use one per generation).
    parts : int
        Number of partitions.
    hash_type : str, default "pdq"
        The lists' hash type; ``options`` are further :class:`HashList` options (``name``,
        ``max_distance``, ``bits`` for ``"raw"``, ``backend``...).
    format, chunk_size, skip_invalid
        As in :func:`hashmatch.formats.read_hashes`.

    Returns
    -------
    list of str
        The partition files, in partition order.
    """
    p = _check_parts(parts)
    os.makedirs(directory, exist_ok=True)
    lists = [HashList(hash_type, **options) for _ in range(p)]  # checks the options up front
    scratch = tempfile.mkdtemp(prefix=".partitions-", dir=directory)
    try:
        spills: list[list[str]] = [[] for _ in range(p)]
        next_id = 0
        with read_hashes(
            source, format=format, bits=lists[0].bits, chunk_size=chunk_size,
            skip_invalid=skip_invalid,
        ) as reader:  # fmt: skip
            for number, chunk in enumerate(reader):
                ids = chunk.ids
                if ids is None:
                    ids = np.arange(next_id, next_id + len(chunk), dtype=np.int64)
                    next_id += len(chunk)
                where = partition_of(ids, p)
                for j in range(p):
                    rows = np.flatnonzero(where == j)
                    if not len(rows):
                        continue
                    spill = os.path.join(scratch, f"{j}-{number}.pickle")
                    records = _records(chunk, ids, rows)  # only this partition's rows
                    with open(spill, "wb") as f:
                        pickle.dump(records, f, protocol=pickle.HIGHEST_PROTOCOL)
                    spills[j].append(spill)
        built = []
        for j in range(p):
            with lists[j].batch():
                for spill in spills[j]:
                    with open(spill, "rb") as f:  # written above by this call
                        codes, part_ids, given = pickle.load(f)
                    lists[j].add(codes, ids=part_ids, **given)
                    os.unlink(spill)
            built.append(os.path.join(scratch, f"part-{j}.hm"))
            lists[j].save(built[-1])
            lists[j] = HashList(hash_type, **options)  # release the partition
        return _publish(built, partition_paths(directory, p))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def build_video_partitions(
    videos: Iterable[VideoEntry | str | os.PathLike[str]],
    directory: str | os.PathLike[str],
    parts: int,
    *,
    name: str | None = None,
    max_distance: int = 31,
    min_quality: int = 50,
    chunk_size: int = 1_000,
) -> list[str]:
    """Build :class:`~hashmatch.VideoIndex` partition files from a stream of banked videos
    without holding them all.

    Videos are read ``chunk_size`` at a time, routed by id (:func:`partition_of`, as
    :func:`partition` routes them), and each partition's videos spilled to a scratch directory
    beside the output (one copy of the frames in all); then each partition is built and saved
    in turn, so memory holds one chunk or one partition. The partitions equal those of
    :func:`partition` of one index holding every video.

    Parameters
    ----------
    videos : iterable of VideoEntry or path
        Each a :class:`~hashmatch.VideoEntry` (id, key, labels, source and frames: e.g.
        another index's :meth:`~hashmatch.VideoIndex.entries`, or entries you make), or a vPDQ
        file (:func:`hashmatch.read_vpdq`), banked with an id one above the largest seen so
        far (0 for the first) and the file's path as its source. An entry whose id is None is
        numbered the same way.
    directory : str or path-like
        Where to write the partition files (created if needed; use one per generation).
    parts : int
        Number of partitions.
    name, max_distance, min_quality
        The :class:`~hashmatch.VideoIndex` options of every partition.
    chunk_size : int, default 1000
        Videos read before they are spilled.

    Returns
    -------
    list of str
        The partition files, in partition order.

    Raises
    ------
    InvalidArgument
        Two videos with one id, or one key (named with their positions in `videos`). Nothing
        is written then: the partition files appear together, once all are built.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from hashmatch.distributed import build_video_partitions
    >>> from hashmatch.videos import VideoEntry
    >>> def banked(i):  # e.g. read from a database, one video at a time
    ...     codes = hm.datasets.random_codes(5, seed=i)
    ...     return VideoEntry(100 + i, f"v{i}", ("terror",), None, codes,
    ...                       np.full(5, 90, np.int16), np.arange(5.0))
    >>> paths = build_video_partitions((banked(i) for i in range(10)), tempfile.mkdtemp(), 3)
    >>> sorted(v for p in paths for v in hm.VideoIndex.load(p).ids.tolist())[:3]
    [100, 101, 102]
    """
    from hashmatch.formats.vpdq import read_vpdq

    p = _check_parts(parts)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidArgument(f"chunk_size: expected an int >= 1, got {chunk_size!r}")

    def empty() -> VideoIndex:
        return VideoIndex(name=name, max_distance=max_distance, min_quality=min_quality)

    empty()  # checks the options up front
    os.makedirs(directory, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".partitions-", dir=directory)
    try:
        spills: list[list[str]] = [[] for _ in range(p)]
        next_id = 0
        chunk: list[VideoEntry] = []
        seen_ids: dict[Any, int] = {}  # id -> position in `videos` (the index checks, too late)
        seen_keys: dict[Any, int] = {}  # key -> position: partitions only check their own

        def spill() -> None:
            where = partition_of([e.id for e in chunk], p).tolist()
            for j in range(p):
                mine = [e for e, w in zip(chunk, where, strict=True) if w == j]
                if mine:
                    path = os.path.join(scratch, f"{j}-{len(spills[j])}.pickle")
                    with open(path, "wb") as f:
                        pickle.dump(mine, f, protocol=pickle.HIGHEST_PROTOCOL)
                    spills[j].append(path)
            chunk.clear()

        for number, video in enumerate(videos):
            if isinstance(video, (str, os.PathLike)):
                frames = read_vpdq(video)
                video = VideoEntry(
                    next_id, None, (), os.fspath(video), frames.codes, frames.qualities,
                    frames.timestamps,
                )  # fmt: skip
            elif not isinstance(video, VideoEntry):
                raise InvalidType(
                    f"videos[{number}]: expected a VideoEntry or a vPDQ file path, got "
                    f"{type(video).__name__}"
                )
            elif video.id is None:
                video = video._replace(id=next_id)
            video_id = _video_id(video.id, number)
            _first_use(seen_ids, video_id, number, "id")
            if video.key is not None:
                _first_use(seen_keys, video.key, number, "key")
            next_id = max(next_id, video_id + 1)
            chunk.append(video)
            if len(chunk) >= chunk_size:
                spill()
        if chunk:
            spill()
        built = []
        for j in range(p):
            index = empty()
            for path in spills[j]:
                with open(path, "rb") as f:  # written above by this call
                    _bank(index, pickle.load(f))
                os.unlink(path)
            built.append(os.path.join(scratch, f"part-{j}.hm"))
            index.save(built[-1])  # one rebuild, at the save
            del index
        return _publish(built, partition_paths(directory, p))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _first_use(seen: dict[Any, int], value: object, number: int, what: str) -> None:
    """Record that videos[number] uses `value`; refuse a value an earlier video used."""
    if seen.setdefault(value, number) != number:
        raise InvalidArgument(
            f"videos[{number}]: {what} {value!r} is also that of videos[{seen[value]}]"
        )


def _video_id(value: object, number: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"videos[{number}].id: expected an int or None, got {value!r}")
    return int(value)


def _publish(built: Sequence[str], paths: Sequence[str]) -> list[str]:
    """Move partition files built in a scratch directory to their paths, once all are built:
    a failed build leaves no partial generation."""
    for source, target in zip(built, paths, strict=True):
        os.replace(source, target)
    return list(paths)


def _records(
    chunk: HashRecords, ids: npt.NDArray[np.int64], rows: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], dict[str, Any]]:
    """``rows`` of a chunk read from a file: their codes, ids and the :meth:`HashList.add`
    arguments of their fields, as :meth:`HashList.import_file` adds them (empty extras
    cells are no extras)."""
    given = {f.argument: _take(getattr(chunk, f.column), rows) for f in FIELDS}
    if given["extras"] is not None:
        given["extras"] = [{k: v for k, v in e.items() if v} for e in given["extras"]]
    return np.ascontiguousarray(chunk.codes[rows]), ids[rows], given
