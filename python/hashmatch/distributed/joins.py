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

Tasks are retried (``max_retries``) on exceptions and on worker crashes, except hashmatch
errors (bad or changed input rows: retrying cannot fix them), which the driver raises at once.
Ctrl-C cancels the tasks still running or queued; the tiles already finished stay, for a
later resume.

**Inputs on shared storage.** Besides in-memory hashes (numpy, Arrow), the inputs may be
files the driver never loads: a list of Parquet files (or a directory of them) with a hash
column (``column=``: fixed-size binary, binary, or hex strings), and saved
:class:`hashmatch.HashList` files (``.hm``, rows in entry-id order). Suffixes are matched in
any case. A str or path-like input is always a path (a list of str is hex hashes only when
every item is hex digits). A directory is walked recursively (Hive/Spark layouts such as
``dir/batch=2/part-0.parquet``), its files taken in sorted relative-path order, skipping
files and directories whose names start with ``.`` or ``_`` (``_SUCCESS``, ``_temporary``,
``.crc`` files) as ``pyarrow.dataset`` does, and files of other suffixes. The driver reads
only their metadata (row counts, schemas) to number the rows globally in file order and cut
the shards; Ray tasks, one per shard, read their rows and write the shard ``.npy`` files
(atomically, skipped when already there, retried like tiles). The job's fingerprint is each
file's path, size, modification time and row count, plus the parameters; a shard task
checks its files' size and modification time again, and the rows it reads, and raises
:class:`InputChanged` when a file changed since the job was set up. A file changed in place
with the same size and modification time is **not** detected. Row ids (the entry ids of
``.hm`` files, Parquet's ``id_column=``) are saved beside the shards and given by
:meth:`TiledJoin.ids`: integer ids of any width (and ``.hm`` entry ids) become int64,
string ids stay strings; integer ids in one file and strings in another are refused
(:class:`hashmatch.InvalidType`), and so are ``.hm`` files mixed with Parquet files without
``id_column`` (:class:`hashmatch.InvalidArgument`: their entry ids would be lost). A null or
malformed hash raises naming the file, the column, and the row in the file and in the
input.

**Clusters** (:meth:`TiledJoin.clusters`, :func:`cluster`) come from a union-find over the
tile files read one at a time (O(n) driver memory, never all the pairs at once); labels,
sizes and representatives equal :func:`hashmatch.cluster`'s.

Examples
--------
>>> import ray  # doctest: +SKIP
>>> from hashmatch.distributed import joins
>>> ray.init(num_cpus=2)  # doctest: +SKIP
>>> pairs = joins.find_duplicates(codes, 31, shards=8, work_dir="/shared/job")  # doctest: +SKIP
>>> clusters = hm.cluster(pairs)  # doctest: +SKIP
>>> inputs = ["/shared/a.parquet", "/shared/b.hm"]  # or a directory of them
>>> job = joins.TiledJoin("/shared/job2", inputs, 31, shards=8)  # doctest: +SKIP
>>> status = job.run()  # doctest: +SKIP
>>> clusters = job.clusters()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

import hashmatch as hm
from hashmatch._validation import as_codes, check_max_distance, check_threads
from hashmatch.dedup import (
    ClusterLabels,
    Pairs,
    _check_representative,
    best_quality,
    medoids,
)
from hashmatch.errors import HashmatchError, HashTypeMismatch, InvalidArgument, InvalidType
from hashmatch.files import atomic_text, atomic_write
from hashmatch.progress import bar

__all__ = [
    "InputChanged",
    "JobStatus",
    "TileFailed",
    "TiledClusters",
    "TiledJoin",
    "WorkDirMismatch",
    "cluster",
    "find_duplicates",
    "find_matches",
    "input_width",
    "read_codes",
]

_JOB_FILE = "job.json"
_FORMAT = 1  # version of the work directory's layout
_FAULTS = "faults"  # fault injection for tests: faults/<a>-<b> (or shard-<side>-<s>) holds
# "raise", "exit", "always", "count" or "sleep <seconds>"
_SUFFIXES = (".parquet", ".hm")  # file inputs


class TileFailed(HashmatchError, RuntimeError):
    """Tiles of a job failed after their retries; the finished tiles stay for a resume."""


class WorkDirMismatch(InvalidArgument):
    """The work directory holds another job (other inputs, radius or shards)."""


class InputChanged(InvalidArgument):
    """An input file changed (size, modification time or rows) after the job scanned it and
    before a shard task read it. Not retried: start the job again in a new work directory."""


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
    shards_written : int
        Shards of file inputs written by this call's tasks (0 for in-memory inputs, whose
        shards the driver writes).
    shard_seconds : float
        Wall time of writing those shards.
    """

    tiles: int
    resumed: int
    ran: int
    pairs: int
    seconds: float
    tile_seconds: dict[str, float]
    tile_peak_rss: dict[str, int]
    shards_written: int = 0
    shard_seconds: float = 0.0


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
    if isinstance(source, (str, os.PathLike)) and _kind(os.fspath(source)) == "parquet":
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


def input_width(source: str | os.PathLike[str], column: str = "hash") -> int:
    """The width in bits of the hashes in input files (Parquet files, a directory of them,
    ``.hm`` lists), from their metadata, as :class:`TiledJoin` reads them.

    Examples
    --------
    >>> import os, tempfile
    >>> from hashmatch.distributed import joins
    >>> path = os.path.join(tempfile.mkdtemp(), "list.hm")
    >>> listed = hm.HashList("phash")
    >>> _ = listed.add(hm.datasets.random_codes(3, 64, seed=1))
    >>> listed.save(path)
    >>> joins.input_width(path)
    64
    """
    files = _scan(os.fspath(source), column, None, "source")
    if files is None:  # pragma: no cover - a str is always a path here
        raise InvalidArgument(f"source: expected input files, got {source!r}")
    return files.nbytes * 8


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
class _File:
    """One input file as the driver saw it (metadata only)."""

    path: str
    kind: str  # "parquet" or "hm"
    rows: int
    size: int
    mtime_ns: int
    groups: tuple[int, ...]  # Parquet: the rows of each row group; .hm: ()


@dataclass(frozen=True)
class _Files:
    """Hashes in files on shared storage, rows numbered globally in file order."""

    files: tuple[_File, ...]
    column: str
    id_column: str | None
    nbytes: int
    id_type: Any = None  # the Arrow type every file's ids are cast to; None: no ids
    name: str = "codes"  # the argument that named the files

    @property
    def n(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def starts(self) -> list[int]:
        """The global row of each file's first row."""
        return [int(x) for x in np.cumsum([0] + [f.rows for f in self.files])[:-1]]

    @property
    def has_ids(self) -> bool:
        """Rows have ids: .hm files' entry ids, Parquet's `id_column`."""
        return self.id_type is not None

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(digest_size=16)
        described = [(f.path, f.size, f.mtime_ns, f.rows) for f in self.files]
        digest.update(json.dumps([described, self.column, self.id_column]).encode())
        return digest.hexdigest()


_HEX = re.compile(r"\s*(0[xX])?[0-9a-fA-F]+\s*")


def _kind(path: str) -> str | None:
    """``"parquet"`` or ``"hm"`` by the file's suffix (any case), else None."""
    lowered = path.lower()
    return next((s[1:] for s in _SUFFIXES if lowered.endswith(s)), None)


def _hidden(name: str) -> bool:
    """Files and directories a directory input skips (as pyarrow.dataset does): names
    starting with ``.`` or ``_`` (``_SUCCESS``, ``_temporary``, ``.part-0.crc``)."""
    return name.startswith((".", "_"))


def _walk(directory: str) -> list[str]:
    """The ``.parquet`` and ``.hm`` files under `directory`, at any depth, sorted by their
    relative paths (component by component), skipping hidden names (:func:`_hidden`)."""
    found: list[tuple[tuple[str, ...], str]] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for entry in files:
            path = os.path.join(root, entry)
            if not _hidden(entry) and _kind(entry) is not None:
                parts = tuple(os.path.relpath(path, directory).split(os.sep))
                found.append((parts, path))
    return [path for _, path in sorted(found)]


def _input_paths(source: object, name: str) -> list[str] | None:
    """The input files named by `source` (directories expanded), or None when `source` is
    not paths (in-memory hashes). A str or path-like `source` is always a path; a list of
    them is hex strings only when every item is a str of hex digits."""
    if isinstance(source, (str, os.PathLike)):
        items: list[Any] = [source]
    elif (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(x, (str, os.PathLike)) for x in source)
    ):
        items = list(source)
        if all(isinstance(x, str) and _HEX.fullmatch(x) for x in items):
            return None  # hex strings
    else:
        return None
    paths: list[str] = []
    accepted = " or ".join(_SUFFIXES)
    for item in items:
        path = os.path.abspath(os.fspath(item))
        if os.path.isdir(path):
            found = _walk(path)
            if not found:
                raise InvalidArgument(f"{name}: no {accepted} files in {path}")
            paths.extend(found)
        elif not os.path.isfile(path):
            raise InvalidArgument(f"{name}: no such file or directory: {path}")
        elif _kind(path) is None:
            raise InvalidArgument(
                f"{name}: {path}: expected a {accepted} file (suffix in any case) or a "
                "directory of them"
            )
        else:
            paths.append(path)
    return paths


def _inside(path: str, directories: Sequence[str]) -> str | None:
    """The first of `directories` that holds `path` (or is it), else None; paths resolved."""
    real = os.path.realpath(path)
    for directory in directories:
        top = os.path.realpath(directory)
        if os.path.commonpath([real, top]) == top:
            return directory
    return None


def _input_directories(source: object) -> list[str]:
    """The directories among input paths `source` (none for in-memory hashes)."""
    items = [source] if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(items, (list, tuple)):
        return []
    return [os.fspath(x) for x in items if isinstance(x, (str, os.PathLike)) and os.path.isdir(x)]


def _check_outside(work_dir: str, source: object, name: str) -> None:
    """Refuse a work directory inside an input directory: its shards and tiles would be read
    as input by the next run."""
    directory = _inside(work_dir, _input_directories(source))
    if directory is not None:
        raise InvalidArgument(
            f"work_dir: {work_dir} is inside {name}'s directory {directory}, whose Parquet "
            "files are all input; choose a work directory outside it"
        )


def _hash_width(
    path: str, column: str, arrow_type: Any, rows: int, start: int, name: str
) -> int | None:
    """Bytes per hash of a Parquet column (None for an empty file of variable width); the
    file's first row is row `start` of `name`."""
    pa, pq = _import_arrow()
    if pa.types.is_fixed_size_binary(arrow_type):
        return int(arrow_type.byte_width)
    variable = (
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_string,
        pa.types.is_large_string,
    )
    if not any(check(arrow_type) for check in variable):
        raise InvalidType(
            f"column: {path}: {column!r} is {arrow_type}; expected fixed-size binary, "
            "binary or hex strings"
        )
    if rows == 0:
        return None
    first = next(pq.ParquetFile(path).iter_batches(batch_size=1, columns=[column]))
    return int(_located_codes(first.column(0), path, column, 0, start, name).shape[1])


def _located_codes(
    arrow: Any, path: str, column: str, lo: int, start: int, name: str
) -> npt.NDArray[np.uint8]:
    """:func:`read_codes` of rows ``lo...`` of a file's hash column; a null or bad hash
    raises naming the file, the column, the row in the file and the row in `name` (the
    file's first row is row `start` of `name`)."""

    def where(k: int) -> str:
        return f"column: {path}: {column!r} row {lo + k} (row {start + lo + k} of `{name}`)"

    if arrow.null_count:
        nulls = arrow.is_null()
        if hasattr(nulls, "combine_chunks"):
            nulls = nulls.combine_chunks()
        k = int(np.flatnonzero(nulls.to_numpy(zero_copy_only=False))[0])
        raise InvalidArgument(f"{where(k)}: expected a hash, got null")
    try:
        return read_codes(arrow)
    except HashmatchError as error:
        found = re.search(r"\[(\d+)\]", str(error))
        place = where(int(found.group(1))) if found else f"column: {path}: {column!r}"
        raise type(error)(f"{place}: {error}") from None


def _scan_file(
    path: str, column: str, id_column: str | None, name: str, start: int
) -> tuple[_File, int | None, Any]:
    """One input file's metadata, hash width (None: unknown, an empty file) and Arrow type
    of its ids (None: no ids); its first row is row `start` of `name`."""
    pa, pq = _import_arrow()
    stat = os.stat(path)
    if _kind(path) == "hm":
        listed = hm.HashList.load(path, mmap=True, verify=False)
        file = _File(path, "hm", len(listed), stat.st_size, stat.st_mtime_ns, ())
        return file, listed.nbytes, pa.int64()
    try:
        meta = pq.read_metadata(path)
    except Exception as error:
        raise InvalidArgument(f"{name}: {path}: not a Parquet file ({error})") from error
    schema = meta.schema.to_arrow_schema()
    for wanted, what in ((column, "column"), (id_column, "id_column")):
        if wanted is not None and wanted not in schema.names:
            raise InvalidArgument(
                f"{what}: {path} has no column {wanted!r} (it has {schema.names})"
            )
    rows = int(meta.num_rows)
    groups = tuple(int(meta.row_group(g).num_rows) for g in range(meta.num_row_groups))
    width = _hash_width(path, column, schema.field(column).type, rows, start, name)
    id_type = None if id_column is None else schema.field(id_column).type
    return _File(path, "parquet", rows, stat.st_size, stat.st_mtime_ns, groups), width, id_type


def _scan(source: object, column: str, id_column: str | None, name: str) -> _Files | None:
    """The metadata of the input files `source` names, checked; None for in-memory hashes."""
    paths = _input_paths(source, name)
    if paths is None:
        return None
    files: list[_File] = []
    widths: list[tuple[int, str]] = []
    id_types: list[Any] = []
    for path in paths:
        start = sum(f.rows for f in files)
        file, width, id_type = _scan_file(path, column, id_column, name, start)
        files.append(file)
        id_types.append(id_type)
        if width is not None:
            widths.append((width, path))
    if not widths:
        raise InvalidArgument(f"{name}: no hashes in {len(paths)} file(s)")
    for width, path in widths[1:]:
        if width != widths[0][0]:
            raise HashTypeMismatch(
                f"{name}: {path} holds {width * 8}-bit hashes, {widths[0][1]} "
                f"{widths[0][0] * 8}-bit"
            )
    id_type = _common_id_type(files, id_types, name)
    return _Files(tuple(files), column, id_column, widths[0][0], id_type, name)


def _common_id_type(files: list[_File], types: list[Any], name: str) -> Any:
    """The Arrow type all the files' ids are cast to (None: no ids): int64 when every file's
    ids are integers (``.hm`` entry ids are int64), a string type when all are strings, else
    the one type they all have."""
    pa, _ = _import_arrow()
    missing = [f.path for f, t in zip(files, types, strict=True) if t is None]
    if len(missing) == len(files):
        return None
    if missing:  # .hm files (entry ids) with Parquet files and no id_column
        hm_file = next(f.path for f in files if f.kind == "hm")
        raise InvalidArgument(
            f"id_column: `{name}` mixes .hm files, which have entry ids ({hm_file}), and "
            f"Parquet files without `id_column` ({missing[0]}); give the Parquet files' id "
            "column as id_column="
        )

    def family(arrow_type: Any) -> str:
        if pa.types.is_integer(arrow_type):
            return "integer"
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            return "string"
        return str(arrow_type)

    kinds = [family(t) for t in types]
    for file, kind, arrow_type in zip(files, kinds, types, strict=True):
        if kind != kinds[0]:
            raise InvalidType(
                f"id_column: {files[0].path} has {types[0]} ids, {file.path} {arrow_type}; "
                "expected integer ids in every file of `" + name + "` or strings in every one"
            )
    if kinds[0] == "integer":
        return pa.int64()
    if kinds[0] == "string":
        return pa.large_string() if any(map(pa.types.is_large_string, types)) else pa.string()
    return types[0]


def _check_unchanged(source: _Files, file: _File) -> None:
    """Raise :class:`InputChanged` when `file` is not as the job scanned it (size or
    modification time)."""
    try:
        stat = os.stat(file.path)
    except FileNotFoundError:
        raise InputChanged(
            f"{source.name}: {file.path} was removed after the job scanned it; "
            "start the job again in a new work_dir"
        ) from None
    if (stat.st_size, stat.st_mtime_ns) != (file.size, file.mtime_ns):
        raise InputChanged(
            f"{source.name}: {file.path} changed after the job scanned it (size {file.size} "
            f"-> {stat.st_size} bytes, modification time {file.mtime_ns} -> "
            f"{stat.st_mtime_ns} ns); start the job again in a new work_dir"
        )


def _read_rows(
    source: _Files, file: _File, start: int, lo: int, hi: int
) -> tuple[npt.NDArray[np.uint8], Any]:
    """Rows ``lo:hi`` of one input file (whose first row is row `start` of the side): the
    codes and an Arrow array of their ids cast to the job's id type (None without ids)."""
    pa, pq = _import_arrow()
    if file.kind == "hm":
        listed = hm.HashList.load(file.path, mmap=True, verify=False)
        code_parts = [np.zeros((0, source.nbytes), np.uint8)]
        id_parts = [np.zeros(0, np.int64)]
        at = 0
        for segment, rows in listed.snapshot().sorted_live():
            take = rows[max(lo - at, 0) : max(hi - at, 0)]
            at += len(rows)
            if len(take):
                code_parts.append(np.asarray(segment.codes[take]))
                id_parts.append(np.asarray(segment.ids[take], dtype=np.int64))
        codes, ids = np.concatenate(code_parts), pa.array(np.concatenate(id_parts))
    else:
        starts = np.cumsum((0, *file.groups))
        first = int(np.searchsorted(starts, lo, side="right")) - 1
        last = int(np.searchsorted(starts, hi, side="left"))
        columns = [source.column] + ([source.id_column] if source.id_column is not None else [])
        parquet = pq.ParquetFile(file.path)
        table = parquet.read_row_groups(list(range(first, last)), columns=columns)
        table = table.slice(lo - int(starts[first]), hi - lo)
        codes = _located_codes(
            table.column(source.column), file.path, source.column, lo, start, source.name
        )
        if codes.shape[1] != source.nbytes:
            raise HashTypeMismatch(
                f"column: {file.path} holds {codes.shape[1] * 8}-bit hashes in rows "
                f"{lo}..{hi}, the job {source.nbytes * 8}-bit"
            )
        ids = None
        if source.id_column is not None:
            ids = table.column(source.id_column).combine_chunks()
            if ids.null_count:
                row = lo + int(np.flatnonzero(np.asarray(ids.is_null()))[0])
                raise InvalidArgument(
                    f"id_column: {file.path}: {source.id_column!r} row {row} (row "
                    f"{start + row} of `{source.name}`) is null; every row needs an id"
                )
    if len(codes) != hi - lo:
        raise InputChanged(
            f"{source.name}: {file.path} has {len(codes)} rows in {lo}..{hi} of the file, "
            f"expected {hi - lo} ({file.rows} rows when the job scanned it); start the job "
            "again in a new work_dir"
        )
    if ids is not None and ids.type != source.id_type:
        try:
            ids = ids.cast(source.id_type)
        except pa.ArrowInvalid as error:
            raise InvalidArgument(
                f"id_column: {file.path}: ids of rows {lo}..{hi} do not fit "
                f"{source.id_type}: {error}"
            ) from None
    return codes, ids


@dataclass(frozen=True)
class _Shard:
    """What a task needs to write one shard from the input files (plain data)."""

    work_dir: str
    name: str  # "<side>-<s>"
    path: str
    source: _Files
    lo: int
    hi: int


def _ids_path(shard: str) -> str:
    return shard[: -len(".npy")] + ".ids.parquet"


def _write_shard(shard: _Shard) -> tuple[str, int]:
    """Read a shard's rows from the input files, write its ids then its codes, atomically
    (the ``.npy`` file is there only once the ids are).

    Raises :class:`InputChanged` when a file is not as the job scanned it (size,
    modification time, rows), and errors naming the file, column and row on bad hashes."""
    pa, pq = _import_arrow()
    _inject_fault(shard.work_dir, "shard-" + shard.name, "join")
    codes, ids = [], []
    for file, start in zip(shard.source.files, shard.source.starts, strict=True):
        lo, hi = max(shard.lo, start), min(shard.hi, start + file.rows)
        if lo < hi:
            _check_unchanged(shard.source, file)
            part, part_ids = _read_rows(shard.source, file, start, lo - start, hi - start)
            codes.append(part)
            ids.append(part_ids)
    result = np.concatenate(codes) if codes else np.zeros((0, shard.source.nbytes), np.uint8)
    if shard.source.has_ids:
        column = pa.concat_arrays(ids) if ids else pa.array([], type=shard.source.id_type)
        with atomic_write(_ids_path(shard.path)) as out:
            pq.write_table(pa.table({"id": column}), out)
    with atomic_write(shard.path) as out:
        np.save(out, np.ascontiguousarray(result, dtype=np.uint8))
    return shard.name, len(result)


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


def _inject_fault(work_dir: str, name: str, stage: str) -> None:
    """Test hook: ``faults/<name>`` in the work directory (``<a>-<b>`` for a tile,
    ``shard-<side>-<s>`` for a shard task) makes this task fail. ``raise`` raises once
    (before writing), ``exit`` kills the worker once in the middle of writing (leaving a
    temporary file), ``always`` raises on every attempt, ``sleep <seconds>`` sleeps before
    every attempt, ``count`` appends a line to ``faults/<name>.attempts`` on every attempt.
    Consumed (except ``always``, ``sleep`` and ``count``) by renaming."""
    marker = os.path.join(work_dir, _FAULTS, name)
    try:
        with open(marker, encoding="ascii") as file:
            kind = file.read().strip()
    except FileNotFoundError:
        return
    if kind == "count":
        if stage == "join":
            with open(marker + ".attempts", "a", encoding="ascii") as attempts:
                attempts.write("attempt\n")
        return
    if kind.startswith("sleep"):
        if stage == "join":
            time.sleep(float(kind.split()[1]))
        return
    if kind == "always" and stage == "join":
        raise RuntimeError(f"injected fault: {name} (always)")
    wanted = "join" if kind == "raise" else "write"
    if stage != wanted:
        return
    try:
        os.rename(marker, marker + ".fired")  # one attempt only wins the rename
    except FileNotFoundError:
        return
    if kind == "exit":
        os._exit(1)
    raise RuntimeError(f"injected fault: {name} (first attempt)")


def _run_tile(tile: _Tile) -> tuple[int, int, int, float, int]:
    """One tile: join two shards (or a shard with itself), write the pairs atomically.

    Returns ``(a, b, pairs, seconds, peak RSS of the worker so far in bytes, 0 if unknown)``."""
    pa, pq = _import_arrow()
    start = time.perf_counter()
    _inject_fault(tile.work_dir, _tile_name(tile.a, tile.b), "join")
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
        _inject_fault(tile.work_dir, _tile_name(tile.a, tile.b), "write")
        pq.write_table(table, out)
    return tile.a, tile.b, len(found), time.perf_counter() - start, _peak_rss()


@dataclass(frozen=True)
class _Raised:
    """A hashmatch error of a task (bad or changed input), returned rather than raised so
    that Ray does not retry the task: the driver raises it."""

    error: HashmatchError


def _guarded(function: Callable[[Any], Any], argument: Any) -> Any:
    """``function(argument)`` in a Ray task; a :class:`HashmatchError` is returned as
    :class:`_Raised` (retrying cannot fix the input), any other exception raised (retried)."""
    try:
        return function(argument)
    except HashmatchError as error:
        return _Raised(error)


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass(frozen=True, eq=False)
class TiledClusters(ClusterLabels):
    """Clusters from a tiled self-join (:meth:`TiledJoin.clusters`): the attributes and
    methods of :class:`hashmatch.Clusters` (``n_clusters``, ``members``, ``duplicates``,
    ``to_pandas``, same columns), except that `pairs` is the number of linking pairs, not a
    :class:`hashmatch.Pairs`: the pairs stay in the tile files. There is no ``plot``.

    Attributes
    ----------
    labels, sizes, representatives, representative, max_distance
        As :class:`hashmatch.Clusters` (equal to ``hm.cluster(hm.find_duplicates(...))``'s).
    pairs : int
        The pairs (within `max_distance`) that linked the rows.
    ids : numpy.ndarray or None
        Every row's id (see :meth:`TiledJoin.ids`), if the input has them: all of them in
        driver memory (8 bytes per row for integer ids, a Python object per row for string
        ids), read from the shards when :meth:`TiledJoin.clusters` returns.
    """

    labels: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    representatives: npt.NDArray[np.int64]
    representative: str
    max_distance: int
    pairs: int
    ids: npt.NDArray[Any] | None = field(repr=False)


def _union(
    parent: npt.NDArray[np.int64], i: npt.NDArray[np.int64], j: npt.NDArray[np.int64]
) -> None:
    """Link rows ``i[k]`` and ``j[k]`` in the union-find `parent` (every row points at a row
    no higher of its set; a root points at itself and is its set's lowest row)."""
    if not len(i):
        return
    ri, rj = _roots(parent, i), _roots(parent, j)
    linked = ri != rj
    ri, rj = ri[linked], rj[linked]
    if not len(ri):
        return
    nodes, inverse = np.unique(np.concatenate([ri, rj]), return_inverse=True)
    inverse = inverse.astype(np.int64).reshape(-1)
    zeros = np.zeros(len(ri), np.int32)
    labels, _ = hm._core.connected_components(
        len(nodes),
        np.ascontiguousarray(inverse[: len(ri)]),
        np.ascontiguousarray(inverse[len(ri) :]),
        zeros,
        0,
    )
    # nodes ascend and components are numbered by their lowest node: that node is the
    # first of each label
    lowest = np.zeros(int(labels.max()) + 1, np.int64)
    first = np.unique(labels, return_index=True)[1]
    lowest[labels[first]] = nodes[first]
    parent[nodes] = lowest[labels]


def _roots(parent: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The roots of `rows` (pointer jumping), compressing their paths."""
    found = parent[rows]
    while True:
        up = parent[found]
        if np.array_equal(up, found):
            break
        found = up
    parent[rows] = found
    return found


_BLOCK = 1 << 20  # rows per block of the driver's passes over all rows
_MEDOID_ROWS = 1 << 24  # members whose codes clusters() gathers at a time (~0.9 GB)


def _flatten(parent: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Cluster labels from a union-find, numbered by lowest row (in place: `parent` becomes
    the labels; extra memory is per block of rows)."""
    changed = True
    while changed:  # pointer jumping, block by block, until every row points at its root
        changed = False
        for start in range(0, len(parent), _BLOCK):
            block = parent[start : start + _BLOCK]
            up = parent[block]
            if not np.array_equal(up, block):
                block[:] = up
                changed = True
    count = 0
    for start in range(0, len(parent), _BLOCK):  # roots -> their rank; roots come first
        block = parent[start : start + _BLOCK]
        roots = block == np.arange(start, start + len(block), dtype=np.int64)
        rank = count + np.cumsum(roots) - 1
        count += int(roots.sum())
        block[roots] = rank[roots]
        fixed = ~roots
        block[fixed] = parent[block[fixed]]  # a lower row: already a label
    return parent


class TiledJoin:
    """A self-join or cross join cut into shard-pair tiles, kept in a work directory.

    Parameters
    ----------
    work_dir : str or os.PathLike
        Directory for the shards, the tiles and ``job.json`` (created if missing). Every Ray
        node must read and write it under the same path.
    codes : array-like, path or list of paths
        The hashes (the first set of a cross join): in memory (see :func:`read_codes`), or
        files on shared storage: ``.parquet`` and ``.hm`` paths (any case), or directories of
        them (walked recursively, skipping names starting with ``.`` or ``_``; their files
        in sorted relative-path order), never loaded by the driver. A str is always a path.
    max_distance : int
        Inclusive Hamming radius.
    shards : int
        Shards to cut each set into: a self-join has ``shards * (shards + 1) / 2`` tiles, a
        cross join ``shards ** 2``.
    others : array-like, path or list of paths, optional
        The second set of a cross join; None for a self-join.
    column : str, optional
        The hash column of Parquet inputs (fixed-size binary, binary or hex strings).
    id_column : str, optional
        A Parquet column of row ids (see :meth:`ids`); ``.hm`` inputs have their entry ids.
        Integer ids are cast to int64, string ids stay strings; needed when ``.hm`` files
        are mixed with Parquet files.

    Raises
    ------
    WorkDirMismatch
        When `work_dir` holds another job (or the input files changed since).
    InvalidArgument, InvalidType, HashTypeMismatch
        On missing files, unknown suffixes, missing columns, ids of mixed kinds, a null
        first hash, or hashes of different widths.

    Examples
    --------
    >>> import tempfile
    >>> import ray  # doctest: +SKIP
    >>> ray.init(num_cpus=2)  # doctest: +SKIP
    >>> codes = hm.datasets.clustered_codes(2000, 256, seed=1)
    >>> job = TiledJoin(tempfile.mkdtemp(), codes, 31, shards=2)
    >>> len(job.tiles()), job.finished()
    (3, [])
    >>> job.run().tiles  # doctest: +SKIP
    3
    >>> job.clusters().n_clusters == hm.cluster(codes, 31).n_clusters  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        codes: object,
        max_distance: int,
        *,
        shards: int,
        others: object = None,
        column: str = "hash",
        id_column: str | None = None,
    ) -> None:
        self.work_dir = os.path.abspath(os.fspath(work_dir))
        for source, name in ((codes, "codes"), (others, "others")):
            _check_outside(self.work_dir, source, name)
        self.files = _scan(codes, column, id_column, "codes")
        self.codes = None if self.files is not None else read_codes(codes)
        self.other_files = None if others is None else _scan(others, column, id_column, "others")
        self.others = None
        if others is not None and self.other_files is None:
            self.others = read_codes(others)
        self.n, self.nbytes = self._size(self.codes, self.files)
        self.n_other: int | None = None
        if others is not None:
            self.n_other, other_bytes = self._size(self.others, self.other_files)
            if other_bytes != self.nbytes:
                raise HashTypeMismatch(
                    f"others: expected {self.nbytes * 8}-bit hashes like `codes`, "
                    f"got {other_bytes * 8}-bit"
                )
        self.max_distance = check_max_distance(max_distance, self.nbytes * 8)
        if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
            raise InvalidArgument(f"shards: expected a positive integer, got {shards!r}")
        self.shards = int(shards)
        self.bounds = _bounds(self.n, self.shards)
        self.other_bounds = None if self.n_other is None else _bounds(self.n_other, self.shards)
        if self.files is None and self.other_files is None:
            self.job = _fingerprint(self.codes, self.others)
        else:
            parts = [
                x.fingerprint() if isinstance(x, _Files) else _fingerprint(x)
                for x in (self.files or self.codes, self.other_files or self.others)
                if x is not None
            ]
            self.job = hashlib.blake2b("/".join(parts).encode(), digest_size=16).hexdigest()
        self.description = {
            "format": _FORMAT,
            "fingerprint": self.job,
            "kind": "self" if self.self_join else "cross",
            "n": self.n,
            "n_other": self.n_other,
            "bits": self.nbytes * 8,
            "max_distance": self.max_distance,
            "shards": self.shards,
        }
        self._prepare()

    @staticmethod
    def _size(codes: npt.NDArray[np.uint8] | None, files: _Files | None) -> tuple[int, int]:
        if files is not None:
            return files.n, files.nbytes
        assert codes is not None
        return len(codes), codes.shape[1]

    @property
    def self_join(self) -> bool:
        """True for a self-join."""
        return self.n_other is None

    def _shard(self, side: str, s: int) -> str:
        return os.path.join(self.work_dir, "shards", f"{side}-{s}.npy")

    def _sides(self) -> list[tuple[str, npt.NDArray[np.uint8] | None, _Files | None, list[int]]]:
        sides = [("a", self.codes, self.files, self.bounds)]
        if self.other_bounds is not None:
            sides.append(("b", self.others, self.other_files, self.other_bounds))
        return sides

    def _prepare(self) -> None:
        """Check or write ``job.json``, and write the in-memory inputs' missing shards (file
        inputs' shards are written by tasks, in :meth:`run`)."""
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
        for side, codes, _, bounds in self._sides():
            for s in range(self.shards):
                path = self._shard(side, s)
                if codes is not None and not os.path.exists(path):
                    with atomic_write(path) as out:
                        np.save(out, codes[bounds[s] : bounds[s + 1]])
        if not os.path.exists(job_file):
            with atomic_text(job_file) as out:
                json.dump(self.description, out, indent=1, sort_keys=True)

    def _missing_shards(self) -> list[_Shard]:
        """The shards of file inputs not written yet."""
        missing = []
        for side, _, files, bounds in self._sides():
            for s in range(self.shards):
                path = self._shard(side, s)
                if files is not None and not os.path.exists(path):
                    name = f"{side}-{s}"
                    missing.append(
                        _Shard(self.work_dir, name, path, files, bounds[s], bounds[s + 1])
                    )
        return missing

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
        """Write the missing shards of file inputs, then run the tiles not yet finished, as
        Ray tasks, and wait for them.

        Parameters
        ----------
        max_retries : int, optional
            Retries of a shard or tile task after an exception or a crash of its worker.
        threads_per_task : int, optional
            Threads (and Ray CPUs) per tile task.
        progress : bool, optional
            Show tqdm bars: shards written, then tiles done of all and pairs so far.

        Returns
        -------
        JobStatus

        Raises
        ------
        TileFailed
            When tiles (or shards) still fail after their retries (once every other one
            has finished).
        InputChanged
            When a shard task finds an input file changed since the job scanned it.
        HashmatchError
            When a shard task finds bad input rows (nulls, malformed hashes, hashes of
            another width); raised at once, never retried.
        KeyboardInterrupt
            On Ctrl-C: the pending tasks are cancelled; finished tiles stay.
        """
        ray = _import_ray()
        threads = check_threads(threads_per_task)
        if not ray.is_initialized():
            ray.init()
        start = time.perf_counter()
        shards = self._missing_shards()
        shard_start = time.perf_counter()
        if shards:
            writer = ray.remote(_guarded).options(max_retries=max_retries, retry_exceptions=True)
            refs = [writer.remote(_write_shard, shard) for shard in shards]
            failed = _wait(ray, refs, len(refs), 0, "shards", progress, lambda result: 0)
            if failed:
                raise TileFailed(
                    f"{len(failed)} of {len(shards)} shards failed after {max_retries} "
                    f"retries (run again to resume): " + "; ".join(f[:300] for f in failed[:3])
                )
        shard_seconds = time.perf_counter() - shard_start
        tiles = self.tiles()
        pairs, todo = 0, []
        for tile in tiles:
            count = self._finished(tile)
            if count is None:
                todo.append(tile)
            else:
                pairs += count
        resumed = len(tiles) - len(todo)
        task = ray.remote(_guarded).options(
            num_cpus=threads, max_retries=max_retries, retry_exceptions=True
        )
        refs = [task.remote(_run_tile, replace(t, threads=threads)) for t in todo]
        seconds: dict[str, float] = {}
        peaks: dict[str, int] = {}

        def done(result: tuple[int, int, int, float, int]) -> int:
            a, b, count, took, rss = result
            seconds[_tile_name(a, b)] = took
            peaks[_tile_name(a, b)] = rss
            return count

        total = [pairs]
        failures = _wait(ray, refs, len(tiles), resumed, "tiles", progress, done, total)
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
            pairs=total[0],
            seconds=time.perf_counter() - start,
            tile_seconds=seconds,
            tile_peak_rss=peaks,
            shards_written=len(shards),
            shard_seconds=shard_seconds,
        )

    def _read_tiles(
        self, columns: Sequence[str] = ("i", "j", "distance"), tiles: list[_Tile] | None = None
    ) -> Iterator[list[npt.NDArray[Any]]]:
        """Each tile's columns (of ``tiles``, default all), one tile at a time."""
        _, pq = _import_arrow()
        for tile in self.tiles() if tiles is None else tiles:
            if self._finished(tile) is None:
                raise InvalidArgument(
                    f"work_dir: tile {tile.a}-{tile.b} is not finished; run the job first"
                )
            table = pq.read_table(tile.path, columns=list(columns))
            yield [table.column(c).to_numpy() for c in columns]

    def _load(self, side: str) -> npt.NDArray[np.uint8]:
        """All the codes of one side, from memory or (file inputs) from the shards."""
        codes = self.codes if side == "a" else self.others
        if codes is not None:
            return codes
        return np.concatenate([np.load(self._shard(side, s)) for s in range(self.shards)])

    def ids(self, side: str = "a") -> npt.NDArray[Any] | None:
        """Each row's id, in row order (``side="b"``: the second set of a cross join):
        ``.hm`` inputs' entry ids and Parquet's `id_column`, from the shards' ``.ids.parquet``
        files; None for in-memory inputs and Parquet without `id_column`. Needs the shards
        (after :meth:`run`)."""
        files = self.files if side == "a" else self.other_files
        if files is None or not files.has_ids:
            return None
        _, pq = _import_arrow()
        parts = [
            pq.read_table(_ids_path(self._shard(side, s))).column("id").to_numpy()
            for s in range(self.shards)
        ]
        return np.concatenate(parts)

    def iter_pairs(
        self,
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]]:
        """The pairs ``(i, j, distances)`` of a finished job in ``(i, j)`` order, one shard of
        rows ``i`` at a time: the tiles of shard ``a`` (``(a, b)``, ``b >= a`` in a self-join,
        every ``b`` in a cross join) hold every pair whose ``i`` is in it, so each chunk is
        those tiles' pairs sorted. Memory: one shard's pairs. Concatenated, the chunks are
        :meth:`pairs`.

        Examples
        --------
        >>> from hashmatch.distributed import joins
        >>> job = joins.TiledJoin("/shared/job", "/shared/in/", 31, shards=64)  # doctest: +SKIP
        >>> status = job.run()  # doctest: +SKIP
        >>> for i, j, distances in job.iter_pairs():  # doctest: +SKIP
        ...     print(len(i), "pairs whose first row is in this shard")
        """
        by_shard: dict[int, list[_Tile]] = {}
        for tile in self.tiles():
            by_shard.setdefault(tile.a, []).append(tile)
        for a in range(self.shards):
            i, j, d = _joined(list(self._read_tiles(tiles=by_shard.get(a, []))))
            order = np.lexsort((j, i))
            yield (
                np.ascontiguousarray(i[order], dtype=np.int64),
                np.ascontiguousarray(j[order], dtype=np.int64),
                np.ascontiguousarray(d[order], dtype=np.int32),
            )

    def write_pairs(self, path: str | os.PathLike[str]) -> int:
        """Write the pairs of a finished job to a Parquet file, in ``(i, j)`` order, one row
        group per shard of rows ``i`` (:meth:`iter_pairs`: memory holds one shard's pairs),
        atomically. Columns ``i``, ``j`` (int64 rows), ``distance`` (int32), and ``id_i``
        (``id_j``) when the first (second) set's input has ids (:meth:`ids`; a self-join has
        both or neither). Returns the number of pairs."""
        pa, pq = _import_arrow()
        side_a, side_b = self.ids("a"), None if self.self_join else self.ids("b")
        ids_i = None if side_a is None else pa.array(side_a)  # typed: ints or strings
        ids_j = ids_i if self.self_join else None if side_b is None else pa.array(side_b)

        def table(i: npt.NDArray[np.int64], j: npt.NDArray[np.int64], d: Any) -> Any:
            columns = {
                "i": pa.array(i, pa.int64()),
                "j": pa.array(j, pa.int64()),
                "distance": pa.array(d, pa.int32()),
            }
            if ids_i is not None:
                columns["id_i"] = ids_i.take(pa.array(i, pa.int64()))
            if ids_j is not None:
                columns["id_j"] = ids_j.take(pa.array(j, pa.int64()))
            return pa.table(columns)

        total = 0
        with atomic_write(path) as out:
            empty = np.zeros(0, np.int64)
            writer = pq.ParquetWriter(out, table(empty, empty, empty.astype(np.int32)).schema)
            try:
                for i, j, d in self.iter_pairs():
                    writer.write_table(table(i, j, d))
                    total += len(i)
            finally:
                writer.close()
        return total

    def pairs(self) -> Pairs:
        """The merged pairs of every tile, sorted by ``(i, j)`` as :class:`hashmatch.Pairs`
        are: equal to :func:`hashmatch.find_duplicates` (or :func:`hashmatch.find_matches`)
        of the whole sets. ``plan`` is that of the first tile; ``seconds`` the merge's. All
        the pairs (and, for file inputs, all the codes, from the shards) are loaded: for very
        large jobs use :meth:`iter_pairs`, :meth:`write_pairs` or :meth:`clusters`."""
        start = time.perf_counter()
        i, j, d = _joined(list(self.iter_pairs()))
        first = self.bounds[1] - self.bounds[0]
        other = None
        if self.other_bounds is not None:
            other = self.other_bounds[1] - self.other_bounds[0]
        plan = hm.plan_join(first, self.nbytes * 8, self.max_distance, n_other=other)
        return Pairs(
            i=i,
            j=j,
            distances=d,
            max_distance=self.max_distance,
            codes=self._load("a"),
            other_codes=None if self.self_join else self._load("b"),
            ids=self.ids("a"),
            other_ids=None if self.self_join else self.ids("b"),
            plan=plan,
            seconds=time.perf_counter() - start,
        )

    def clusters(
        self,
        max_distance: int | None = None,
        *,
        representative: str | None = None,
        qualities: object = None,
        threads: int | None = None,
        labels_path: str | os.PathLike[str] | None = None,
        only_duplicates: bool = False,
    ) -> TiledClusters:
        """Clusters of a finished self-join by a union-find over the tile files, one tile at
        a time: equal to ``hm.cluster(hm.find_duplicates(codes, max_distance))``.

        Driver memory: 8 bytes per row (the union-find, turned in place into the labels),
        about 17 bytes per cluster (sizes, representatives), one tile's pairs, and for
        medoids about 56 bytes per row that has duplicates (its row, label and code, read
        from the shard files with mmap) for at most 16M such rows at a time (clusters in
        groups, one pass over the labels per group); never all the pairs nor all the codes.
        Measured: 56 bytes per row at 10M (benchmarks/RESULTS.md).

        Parameters
        ----------
        max_distance : int, optional
            Pairs within this distance link their rows; default (and at most) the job's.
        representative : {"medoid", "quality"}, optional
            As :func:`hashmatch.cluster`; ``"quality"`` needs `qualities` (one per row).
        qualities : array-like, optional
            One quality per row.
        threads : int, optional
            Threads for the medoids.
        labels_path : str or os.PathLike, optional
            Also write the labels to this Parquet file: columns ``row``, ``id`` (when the
            input has ids) and ``cluster``, written one shard at a time.
        only_duplicates : bool, default False
            Write to `labels_path` only the rows of clusters of 2 or more.

        Returns
        -------
        TiledClusters

        Examples
        --------
        >>> clusters = job.clusters()  # doctest: +SKIP
        >>> clusters.labels[:5], clusters.sizes[:3]  # doctest: +SKIP
        """
        if not self.self_join:
            raise InvalidArgument(
                "others: clusters need a self-join; this job is a cross join (given `others`)"
            )
        radius = self.max_distance
        if max_distance is not None:
            radius = check_max_distance(max_distance, self.nbytes * 8)
            if radius > self.max_distance:
                raise InvalidArgument(
                    f"max_distance: expected at most the job's radius {self.max_distance}, "
                    f"got {radius}"
                )
        quality, chosen = _check_representative(qualities, representative)
        if quality is not None and (quality.ndim != 1 or len(quality) != self.n):
            raise InvalidArgument(
                f"qualities: expected {self.n} values (one per row), got shape {quality.shape}"
            )
        nthreads = check_threads(threads)
        parent = np.arange(self.n, dtype=np.int64)
        linked = 0
        for i, j, d in self._read_tiles():
            near = d <= radius
            linked += int(near.sum())
            _union(parent, i[near].astype(np.int64), j[near].astype(np.int64))
        labels = _flatten(parent)
        count = int(labels.max()) + 1 if len(labels) else 0
        sizes = np.bincount(labels, minlength=count).astype(np.int64, copy=False)
        if chosen == "quality":
            assert quality is not None
            reps = best_quality(quality, labels)
        else:
            reps = self._medoids(labels, sizes, nthreads)
        if labels_path is not None:
            self._write_labels(os.fspath(labels_path), labels, sizes, only_duplicates)
        return TiledClusters(labels, sizes, reps, chosen, radius, linked, self.ids("a"))

    def _medoids(
        self, labels: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64], threads: int
    ) -> npt.NDArray[np.int64]:
        """Each cluster's medoid: singletons are their own; the clusters with duplicates go
        to the C++ medoids in groups (in label order) of at most ``_MEDOID_ROWS`` members
        (a bigger cluster alone), on their members' codes gathered from the shards (mmap) in
        row order. One pass over the labels per group."""
        reps = np.zeros(len(sizes), np.int64)
        multi = sizes > 1
        for start in range(0, len(labels), _BLOCK):
            block = labels[start : start + _BLOCK]
            alone = np.flatnonzero(~multi[block])
            reps[block[alone]] = alone + start
        big = np.flatnonzero(multi)
        ends = np.cumsum(sizes[big])
        first = 0
        while first < len(big):
            done = int(ends[first - 1]) if first else 0
            stop = max(first + 1, int(np.searchsorted(ends, done + _MEDOID_ROWS, side="right")))
            group = big[first:stop]
            reps[group] = self._group_medoids(labels, multi, group, threads)
            first = stop
        return reps

    def _group_medoids(
        self,
        labels: npt.NDArray[np.int64],
        multi: npt.NDArray[np.bool_],
        group: npt.NDArray[np.int64],
        threads: int,
    ) -> npt.NDArray[np.int64]:
        """The medoids of the clusters `group` (ascending labels, each with duplicates)."""
        low, high = int(group[0]), int(group[-1])
        parts = []
        for start in range(0, len(labels), _BLOCK):
            block = labels[start : start + _BLOCK]
            inside = (block >= low) & (block <= high) & multi[block]
            parts.append(np.flatnonzero(inside) + start)
        rows = np.concatenate(parts).astype(np.int64)
        del parts
        local = np.searchsorted(group, labels[rows]).astype(np.int64)
        codes = np.empty((len(rows), self.nbytes), np.uint8)
        cuts = np.searchsorted(rows, self.bounds)
        for s in range(self.shards):
            shard = np.load(self._shard("a", s), mmap_mode="r")
            members = rows[cuts[s] : cuts[s + 1]] - self.bounds[s]
            codes[cuts[s] : cuts[s + 1]] = shard[members]
        return rows[medoids(codes, local, len(group), threads)]

    def _write_labels(
        self,
        path: str,
        labels: npt.NDArray[np.int64],
        sizes: npt.NDArray[np.int64],
        only_duplicates: bool,
    ) -> None:
        pa, pq = _import_arrow()
        has_ids = self.files is not None and self.files.has_ids
        writer = None
        with atomic_write(path) as out:
            try:
                for s in range(self.shards):
                    lo, hi = self.bounds[s], self.bounds[s + 1]
                    keep = np.arange(hi - lo)
                    if only_duplicates:
                        keep = keep[sizes[labels[lo:hi]] >= 2]
                    columns: dict[str, Any] = {"row": pa.array(keep + lo, pa.int64())}
                    if has_ids:
                        ids = pq.read_table(_ids_path(self._shard("a", s))).column("id")
                        columns["id"] = ids.take(pa.array(keep, pa.int64()))
                    columns["cluster"] = pa.array(labels[lo:hi][keep])
                    table = pa.table(columns)
                    if writer is None:
                        writer = pq.ParquetWriter(out, table.schema)
                    writer.write_table(table)
            finally:
                if writer is not None:
                    writer.close()


def _wait(
    ray: Any,
    refs: list[Any],
    total: int,
    already: int,
    what: str,
    progress: bool,
    done: Callable[[Any], int],
    pairs: list[int] | None = None,
) -> list[str]:
    """Wait for Ray tasks with a progress bar (`already` of `total` done before); `done`
    takes each result and gives the pairs it adds to ``pairs[0]``. Returns the failures'
    messages; a :class:`HashmatchError` of a task (bad or changed input, returned as
    :class:`_Raised` by :func:`_guarded`, so not retried) is raised as is. Ctrl-C (or
    any error) cancels the pending tasks."""
    pending = list(refs)
    failures: list[str] = []
    with bar(total, what, what[:-1], enabled=progress) as shown:
        shown.update(already)
        if pairs is not None:
            shown.set_postfix(pairs=pairs[0], refresh=False)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in ready:
                    try:
                        result = ray.get(ref)
                    except Exception as error:
                        cause = getattr(error, "cause", None)
                        if isinstance(cause, HashmatchError) and not isinstance(cause, TileFailed):
                            raise cause from None
                        failures.append(f"{error}")
                        continue
                    if isinstance(result, _Raised):  # bad or changed input: not retried
                        raise result.error
                    count = done(result)
                    shown.update(1)
                    if pairs is not None:
                        pairs[0] += count
                        shown.set_postfix(pairs=pairs[0], refresh=False)
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
    return failures


def _joined(
    parts: Sequence[Sequence[npt.NDArray[Any]]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Chunks of ``(i, j, distances)`` as three arrays (int64, int64, int32)."""
    types = (np.int64, np.int64, np.int32)
    i, j, d = (
        np.concatenate([p[k] for p in parts]).astype(t, copy=False) if parts else np.zeros(0, t)
        for k, t in enumerate(types)
    )
    return i, j, d


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
    column: str = "hash",
    id_column: str | None = None,
) -> Pairs:
    """:func:`hashmatch.find_duplicates` as Ray tasks, one per shard pair; resumable.

    Parameters
    ----------
    hashes : array-like, path or list of paths
        In memory (see :func:`read_codes`), or ``.parquet`` / ``.hm`` files or directories
        of them on shared storage (see :class:`TiledJoin`).
    max_distance : int
        Inclusive Hamming radius.
    shards : int
        Shards to cut the rows into (``shards * (shards + 1) / 2`` tiles).
    work_dir : str or os.PathLike
        Shards, tiles and manifest; run again with the same directory to resume.
    max_retries, threads_per_task, progress
        See :meth:`TiledJoin.run`.
    column, id_column
        Parquet inputs' hash and id columns; see :class:`TiledJoin`.

    Returns
    -------
    Pairs
        Equal to ``hashmatch.find_duplicates(hashes, max_distance)``; cluster them with
        :func:`hashmatch.cluster`.
    """
    job = TiledJoin(
        work_dir, hashes, max_distance, shards=shards, column=column, id_column=id_column
    )
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
    column: str = "hash",
    id_column: str | None = None,
) -> Pairs:
    """:func:`hashmatch.find_matches` as Ray tasks, one per pair of a shard of `hashes` and
    one of `others` (``shards ** 2`` tiles); resumable. Parameters as
    :func:`find_duplicates`.

    Returns
    -------
    Pairs
        Equal to ``hashmatch.find_matches(hashes, others, max_distance)``.
    """
    job = TiledJoin(
        work_dir,
        hashes,
        max_distance,
        shards=shards,
        others=others,
        column=column,
        id_column=id_column,
    )
    job.run(max_retries=max_retries, threads_per_task=threads_per_task, progress=progress)
    return job.pairs()


def cluster(
    hashes: object,
    max_distance: int,
    *,
    shards: int,
    work_dir: str | os.PathLike[str],
    max_retries: int = 3,
    threads_per_task: int = 1,
    progress: bool = False,
    column: str = "hash",
    id_column: str | None = None,
    representative: str | None = None,
    qualities: object = None,
    labels_path: str | os.PathLike[str] | None = None,
) -> TiledClusters:
    """:func:`hashmatch.cluster` of hashes as a tiled self-join on Ray, then a streaming
    union-find over the tile files (see :meth:`TiledJoin.clusters`); resumable.

    Parameters are those of :func:`find_duplicates`, plus `representative`, `qualities` and
    `labels_path` of :meth:`TiledJoin.clusters`.

    Returns
    -------
    TiledClusters
        Labels, sizes and representatives equal to ``hashmatch.cluster(hashes, max_distance)``.

    Examples
    --------
    >>> from hashmatch.distributed import joins
    >>> clusters = joins.cluster(
    ...     "/shared/hashes/", 31, shards=8, work_dir="/shared/job"
    ... )  # doctest: +SKIP
    """
    job = TiledJoin(
        work_dir, hashes, max_distance, shards=shards, column=column, id_column=id_column
    )
    job.run(max_retries=max_retries, threads_per_task=threads_per_task, progress=progress)
    return job.clusters(representative=representative, qualities=qualities, labels_path=labels_path)
