"""Exact self-joins and cross joins tiled over Ray tasks, resumable from a work directory.

The rows are cut into ``shards`` contiguous shards, saved as ``.npy`` files in `work_dir`
(which must be on storage every Ray node reads: a local directory for a local Ray, a shared
filesystem for a cluster). A self-join runs one task per shard pair ``(a, b)`` with
``a <= b`` (``a == b``: :func:`hashmatch.find_duplicates` of the shard, pairs ``i < j``;
``a < b``: :func:`hashmatch.find_matches` of shard ``a`` against shard ``b``); a cross join
runs one per ``(a, b)`` of the first set's shards against the second set's. These tiles
cover every pair of rows exactly once, so the merged pairs equal the single-machine join's.

Each tile writes its pairs, as global row numbers, to ``tiles/<a>-<b>.parquet`` (columns
``i`` int64, ``j`` int64, ``distance`` int32), atomically (a temporary file renamed over the
path): a tile's file is there whole or not at all, and a retried or re-run tile replaces it,
never adds to it. The tile files are the manifest: a job started again with the same inputs
and the same `work_dir` skips the tiles whose file is there (their metadata names the job and
the tile) and runs only the others. ``job.json`` records the job (inputs' fingerprint,
radius, shard bounds); a `work_dir` holding another job is refused.

Tasks are retried (``max_retries``) on exceptions and on worker crashes. Ctrl-C cancels the
tasks still running or queued; the tiles already finished stay, for a later resume.

Examples
--------
>>> import ray  # doctest: +SKIP
>>> from hashmatch.distributed import joins
>>> ray.init(num_cpus=2)  # doctest: +SKIP
>>> pairs = joins.find_duplicates(codes, 31, shards=8, work_dir="/shared/job")  # doctest: +SKIP
>>> clusters = hm.cluster(pairs)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

import hashmatch as hm
from hashmatch._validation import as_codes, check_max_distance, check_threads
from hashmatch.dedup import Pairs
from hashmatch.errors import HashmatchError, HashTypeMismatch, InvalidArgument
from hashmatch.files import atomic_text, atomic_write
from hashmatch.progress import bar

__all__ = [
    "JobStatus",
    "TileFailed",
    "TiledJoin",
    "WorkDirMismatch",
    "find_duplicates",
    "find_matches",
    "read_codes",
]

_JOB_FILE = "job.json"
_FORMAT = 1  # version of the work directory's layout
_FAULTS = "faults"  # fault injection for tests: faults/<a>-<b> holds "raise", "exit" or "always"


class TileFailed(HashmatchError, RuntimeError):
    """Tiles of a job failed after their retries; the finished tiles stay for a resume."""


class WorkDirMismatch(InvalidArgument):
    """The work directory holds another job (other inputs, radius or shards)."""


@dataclass(frozen=True)
class JobStatus:
    """What a run of a :class:`TiledJoin` did.

    Attributes
    ----------
    tiles : int
        Tiles of the job.
    resumed : int
        Tiles found finished in the work directory, not run again.
    ran : int
        Tiles run (and finished) by this call.
    pairs : int
        Pairs in all the finished tiles.
    seconds : float
        Wall time of the call.
    tile_seconds : dict of str to float
        Each tile run's own time in its task (join and write), by tile ``"<a>-<b>"``.
    tile_peak_rss : dict of str to int
        The peak resident memory of the worker that ran each tile, up to the tile's end, in
        bytes (workers are reused: it is a peak over the tiles the worker ran; 0 where the
        platform does not tell).
    """

    tiles: int
    resumed: int
    ran: int
    pairs: int
    seconds: float
    tile_seconds: dict[str, float]
    tile_peak_rss: dict[str, int]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "hashmatch.distributed needs Ray: pip install 'hashmatch[ray]'"
        ) from error
    return ray


def _import_arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "hashmatch.distributed needs pyarrow: pip install 'hashmatch[ray]'"
        ) from error
    return pa, pq


def read_codes(source: object, column: str = "hash") -> npt.NDArray[np.uint8]:
    """Hashes from an Arrow column, a Parquet file, or anything :func:`hashmatch.from_hex` takes.

    Parameters
    ----------
    source : str, pyarrow.Table, pyarrow.Array, pyarrow.ChunkedArray or array-like
        A ``.parquet`` path or an Arrow table (then its `column`), an Arrow array of fixed-size
        binary, binary or hex strings, or hashes as :func:`hashmatch.from_hex` takes them.
    column : str, optional
        The column of a table or Parquet file.

    Returns
    -------
    numpy.ndarray
        ``(n, nbytes)`` uint8.
    """
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(".parquet"):
        _, pq = _import_arrow()
        source = pq.read_table(os.fspath(source), columns=[column])
    if type(source).__module__.startswith("pyarrow"):
        pa, _ = _import_arrow()
        arrow: Any = source
        if isinstance(arrow, pa.Table):
            arrow = arrow.column(column)
        if isinstance(arrow, pa.ChunkedArray):
            arrow = arrow.combine_chunks()
        if pa.types.is_fixed_size_binary(arrow.type) and arrow.null_count == 0:
            width = arrow.type.byte_width
            flat = np.frombuffer(arrow.buffers()[1], dtype=np.uint8)
            start = arrow.offset * width
            return np.array(flat[start : start + len(arrow) * width]).reshape(-1, width)
        source = arrow.to_pylist()
    codes, _ = as_codes(source)
    return np.ascontiguousarray(codes)


def _bounds(n: int, shards: int) -> list[int]:
    return [n * s // shards for s in range(shards + 1)]


def _fingerprint(*arrays: npt.NDArray[np.uint8] | None) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        digest.update(f"{array.shape}".encode())
        for start in range(0, len(array), 1 << 20):  # in slices: no copy of the whole set
            digest.update(np.ascontiguousarray(array[start : start + (1 << 20)]).tobytes())
    return digest.hexdigest()


def _tile_name(a: int, b: int) -> str:
    return f"{a}-{b}"


@dataclass(frozen=True)
class _Tile:
    """What a task needs to run one tile (plain data: it travels to the workers)."""

    work_dir: str
    job: str  # the job's fingerprint, written into the tile's metadata
    a: int
    b: int
    first: str  # shard file of rows i
    second: str | None  # shard file of rows j (None: the diagonal tile of a self-join)
    offset_i: int
    offset_j: int
    max_distance: int
    threads: int

    @property
    def path(self) -> str:
        return os.path.join(self.work_dir, "tiles", _tile_name(self.a, self.b) + ".parquet")


def _inject_fault(tile: _Tile, stage: str) -> None:
    """Test hook: ``faults/<a>-<b>`` in the work directory makes this tile fail. ``raise``
    raises once (before writing), ``exit`` kills the worker once in the middle of writing
    (leaving a temporary file), ``always`` raises on every attempt. Consumed by renaming."""
    marker = os.path.join(tile.work_dir, _FAULTS, _tile_name(tile.a, tile.b))
    try:
        with open(marker, encoding="ascii") as file:
            kind = file.read().strip()
    except FileNotFoundError:
        return
    if kind == "always" and stage == "join":
        raise RuntimeError(f"injected fault: tile {tile.a}-{tile.b} (always)")
    wanted = "join" if kind == "raise" else "write"
    if stage != wanted:
        return
    try:
        os.rename(marker, marker + ".fired")  # one attempt only wins the rename
    except FileNotFoundError:
        return
    if kind == "exit":
        os._exit(1)
    raise RuntimeError(f"injected fault: tile {tile.a}-{tile.b} (first attempt)")


def _run_tile(tile: _Tile) -> tuple[int, int, int, float, int]:
    """One tile: join two shards (or a shard with itself), write the pairs atomically.

    Returns ``(a, b, pairs, seconds, peak RSS of the worker so far in bytes, 0 if unknown)``."""
    pa, pq = _import_arrow()
    start = time.perf_counter()
    _inject_fault(tile, "join")
    first = np.load(tile.first, mmap_mode="r")
    if tile.second is None:
        found = hm.find_duplicates(
            np.ascontiguousarray(first), tile.max_distance, threads=tile.threads
        )
    else:
        second = np.load(tile.second, mmap_mode="r")
        found = hm.find_matches(
            np.ascontiguousarray(first),
            np.ascontiguousarray(second),
            tile.max_distance,
            threads=tile.threads,
        )
    table = pa.table(
        {
            "i": pa.array(found.i + tile.offset_i, type=pa.int64()),
            "j": pa.array(found.j + tile.offset_j, type=pa.int64()),
            "distance": pa.array(found.distances, type=pa.int32()),
        }
    ).replace_schema_metadata({"hashmatch.job": tile.job, "hashmatch.tile": f"{tile.a}-{tile.b}"})
    with atomic_write(tile.path) as out:
        _inject_fault(tile, "write")
        pq.write_table(table, out)
    return tile.a, tile.b, len(found), time.perf_counter() - start, _peak_rss()


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024


class TiledJoin:
    """A self-join or cross join cut into shard-pair tiles, kept in a work directory.

    Parameters
    ----------
    work_dir : str or os.PathLike
        Directory for the shards, the tiles and ``job.json`` (created if missing). Every Ray
        node must read and write it under the same path.
    codes : array-like
        The hashes (the first set of a cross join); see :func:`read_codes`.
    max_distance : int
        Inclusive Hamming radius.
    shards : int
        Shards to cut each set into: a self-join has ``shards * (shards + 1) / 2`` tiles, a
        cross join ``shards ** 2``.
    others : array-like, optional
        The second set of a cross join; None for a self-join.

    Raises
    ------
    WorkDirMismatch
        When `work_dir` holds another job.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        codes: object,
        max_distance: int,
        *,
        shards: int,
        others: object = None,
    ) -> None:
        self.work_dir = os.path.abspath(os.fspath(work_dir))
        self.codes = read_codes(codes)
        self.others = None if others is None else read_codes(others)
        if self.others is not None and self.others.shape[1] != self.codes.shape[1]:
            raise HashTypeMismatch(
                f"others: expected {self.codes.shape[1] * 8}-bit hashes like `codes`, "
                f"got {self.others.shape[1] * 8}-bit"
            )
        self.max_distance = check_max_distance(max_distance, self.codes.shape[1] * 8)
        if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
            raise InvalidArgument(f"shards: expected a positive integer, got {shards!r}")
        self.shards = int(shards)
        self.bounds = _bounds(len(self.codes), self.shards)
        self.other_bounds = None if self.others is None else _bounds(len(self.others), self.shards)
        self.job = _fingerprint(self.codes, self.others)
        self.description = {
            "format": _FORMAT,
            "fingerprint": self.job,
            "kind": "self" if self.others is None else "cross",
            "n": len(self.codes),
            "n_other": None if self.others is None else len(self.others),
            "bits": self.codes.shape[1] * 8,
            "max_distance": self.max_distance,
            "shards": self.shards,
        }
        self._prepare()

    @property
    def self_join(self) -> bool:
        """True for a self-join."""
        return self.others is None

    def _shard(self, side: str, s: int) -> str:
        return os.path.join(self.work_dir, "shards", f"{side}-{s}.npy")

    def _prepare(self) -> None:
        """Check or write ``job.json``, and write the shards that are missing."""
        for sub in ("shards", "tiles"):
            os.makedirs(os.path.join(self.work_dir, sub), exist_ok=True)
        job_file = os.path.join(self.work_dir, _JOB_FILE)
        if os.path.exists(job_file):
            with open(job_file, encoding="utf-8") as file:
                found = json.load(file)
            if found != self.description:
                raise WorkDirMismatch(
                    f"work_dir: {self.work_dir} holds another job"
                    f" ({_differences(found, self.description)}); use an empty directory"
                )
        sides = [("a", self.codes, self.bounds)]
        if self.others is not None and self.other_bounds is not None:
            sides.append(("b", self.others, self.other_bounds))
        for side, codes, bounds in sides:
            for s in range(self.shards):
                path = self._shard(side, s)
                if not os.path.exists(path):
                    with atomic_write(path) as out:
                        np.save(out, codes[bounds[s] : bounds[s + 1]])
        if not os.path.exists(job_file):
            with atomic_text(job_file) as out:
                json.dump(self.description, out, indent=1, sort_keys=True)

    def tiles(self) -> list[_Tile]:
        """Every tile of the job, in row order."""
        threads = 1
        result = []
        for a in range(self.shards):
            for b in range(a if self.self_join else 0, self.shards):
                if self.self_join:
                    second = None if a == b else self._shard("a", b)
                    offset_j = self.bounds[b]
                else:
                    assert self.other_bounds is not None
                    second = self._shard("b", b)
                    offset_j = self.other_bounds[b]
                result.append(
                    _Tile(
                        self.work_dir,
                        self.job,
                        a,
                        b,
                        self._shard("a", a),
                        second,
                        self.bounds[a],
                        offset_j,
                        self.max_distance,
                        threads,
                    )
                )
        return result

    def _finished(self, tile: _Tile) -> int | None:
        """Pairs of a tile whose file is there and belongs to this job, else None."""
        _, pq = _import_arrow()
        if not os.path.exists(tile.path):
            return None
        try:
            meta = pq.read_metadata(tile.path)
        except Exception:  # a file not written by a tile task: run the tile again
            return None
        tags = meta.metadata or {}
        if (
            tags.get(b"hashmatch.job") != self.job.encode()
            or tags.get(b"hashmatch.tile") != f"{tile.a}-{tile.b}".encode()
        ):
            return None
        return int(meta.num_rows)

    def finished(self) -> list[tuple[int, int]]:
        """The tiles ``(a, b)`` whose pairs are in the work directory (the manifest)."""
        return [(t.a, t.b) for t in self.tiles() if self._finished(t) is not None]

    def run(
        self,
        *,
        max_retries: int = 3,
        threads_per_task: int = 1,
        progress: bool = False,
    ) -> JobStatus:
        """Run the tiles not yet finished as Ray tasks, and wait for them.

        Parameters
        ----------
        max_retries : int, optional
            Retries of a tile after an exception or a crash of its worker.
        threads_per_task : int, optional
            Threads (and Ray CPUs) per tile task.
        progress : bool, optional
            Show a tqdm bar: tiles done of all, pairs so far.

        Returns
        -------
        JobStatus

        Raises
        ------
        TileFailed
            When tiles still fail after their retries (once every other tile has finished).
        KeyboardInterrupt
            On Ctrl-C: the pending tasks are cancelled; finished tiles stay.
        """
        ray = _import_ray()
        threads = check_threads(threads_per_task)
        if not ray.is_initialized():
            ray.init()
        start = time.perf_counter()
        tiles = self.tiles()
        pairs, todo = 0, []
        for tile in tiles:
            count = self._finished(tile)
            if count is None:
                todo.append(tile)
            else:
                pairs += count
        resumed = len(tiles) - len(todo)
        task = ray.remote(_run_tile).options(
            num_cpus=threads, max_retries=max_retries, retry_exceptions=True
        )
        refs = [task.remote(replace(t, threads=threads)) for t in todo]
        pending = list(refs)
        failures: list[str] = []
        seconds: dict[str, float] = {}
        peaks: dict[str, int] = {}
        with bar(len(tiles), "tiles", "tile", enabled=progress) as shown:
            shown.update(resumed)
            shown.set_postfix(pairs=pairs, refresh=False)
            try:
                while pending:
                    ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                    for ref in ready:
                        try:
                            a, b, count, took, rss = ray.get(ref)
                        except Exception as error:
                            failures.append(f"{error}")
                            continue
                        pairs += count
                        seconds[_tile_name(a, b)] = took
                        peaks[_tile_name(a, b)] = rss
                        shown.update(1)
                        shown.set_postfix(pairs=pairs, refresh=False)
            except BaseException:
                for ref in pending:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
                raise
        if failures:
            raise TileFailed(
                f"{len(failures)} of {len(tiles)} tiles failed after {max_retries} retries"
                f" (the others are saved in {self.work_dir}; run again to resume): "
                + "; ".join(f[:300] for f in failures[:3])
            )
        return JobStatus(
            tiles=len(tiles),
            resumed=resumed,
            ran=len(todo),
            pairs=pairs,
            seconds=time.perf_counter() - start,
            tile_seconds=seconds,
            tile_peak_rss=peaks,
        )

    def _read_tiles(
        self,
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]]:
        _, pq = _import_arrow()
        for tile in self.tiles():
            if self._finished(tile) is None:
                raise InvalidArgument(
                    f"work_dir: tile {tile.a}-{tile.b} is not finished; run the job first"
                )
            table = pq.read_table(tile.path)
            yield (
                table.column("i").to_numpy().astype(np.int64, copy=False),
                table.column("j").to_numpy().astype(np.int64, copy=False),
                table.column("distance").to_numpy().astype(np.int32, copy=False),
            )

    def pairs(self) -> Pairs:
        """The merged pairs of every tile, sorted by ``(i, j)`` as :class:`hashmatch.Pairs`
        are: equal to :func:`hashmatch.find_duplicates` (or :func:`hashmatch.find_matches`)
        of the whole sets. ``plan`` is that of the first tile; ``seconds`` the merge's."""
        start = time.perf_counter()
        parts = list(self._read_tiles())
        i = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        j = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        d = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int32)
        del parts
        order = np.lexsort((j, i))
        first = self.bounds[1] - self.bounds[0]
        other = None
        if self.other_bounds is not None:
            other = self.other_bounds[1] - self.other_bounds[0]
        plan = hm.plan_join(first, self.codes.shape[1] * 8, self.max_distance, n_other=other)
        return Pairs(
            i=np.ascontiguousarray(i[order]),
            j=np.ascontiguousarray(j[order]),
            distances=np.ascontiguousarray(d[order]),
            max_distance=self.max_distance,
            codes=self.codes,
            other_codes=self.others,
            ids=None,
            other_ids=None,
            plan=plan,
            seconds=time.perf_counter() - start,
        )


def _differences(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
    return ", ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} asked" for k in keys)


def find_duplicates(
    hashes: object,
    max_distance: int,
    *,
    shards: int,
    work_dir: str | os.PathLike[str],
    max_retries: int = 3,
    threads_per_task: int = 1,
    progress: bool = False,
) -> Pairs:
    """:func:`hashmatch.find_duplicates` as Ray tasks, one per shard pair; resumable.

    Parameters
    ----------
    hashes : array-like
        See :func:`read_codes`.
    max_distance : int
        Inclusive Hamming radius.
    shards : int
        Shards to cut the rows into (``shards * (shards + 1) / 2`` tiles).
    work_dir : str or os.PathLike
        Shards, tiles and manifest; run again with the same directory to resume.
    max_retries, threads_per_task, progress
        See :meth:`TiledJoin.run`.

    Returns
    -------
    Pairs
        Equal to ``hashmatch.find_duplicates(hashes, max_distance)``; cluster them with
        :func:`hashmatch.cluster`.
    """
    job = TiledJoin(work_dir, hashes, max_distance, shards=shards)
    job.run(max_retries=max_retries, threads_per_task=threads_per_task, progress=progress)
    return job.pairs()


def find_matches(
    hashes: object,
    others: object,
    max_distance: int,
    *,
    shards: int,
    work_dir: str | os.PathLike[str],
    max_retries: int = 3,
    threads_per_task: int = 1,
    progress: bool = False,
) -> Pairs:
    """:func:`hashmatch.find_matches` as Ray tasks, one per pair of a shard of `hashes` and
    one of `others` (``shards ** 2`` tiles); resumable. Parameters as
    :func:`find_duplicates`.

    Returns
    -------
    Pairs
        Equal to ``hashmatch.find_matches(hashes, others, max_distance)``.
    """
    job = TiledJoin(work_dir, hashes, max_distance, shards=shards, others=others)
    job.run(max_retries=max_retries, threads_per_task=threads_per_task, progress=progress)
    return job.pairs()
