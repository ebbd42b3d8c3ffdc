"""``hashmatch dedup FILE``: every pair of near-duplicate hashes in one file, and the clusters
they form (:func:`hashmatch.find_duplicates`, :func:`hashmatch.cluster`)."""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt

import hashmatch as hm
from hashmatch._validation import check_max_distance, check_threads
from hashmatch.dedup import ClusterLabels
from hashmatch.formats import HashRecords

from . import common
from .common import Codes, duration

PAIRS_HEADER = ("id_a", "id_b", "distance")
CLUSTERS_HEADER = ("id", "cluster", "size", "representative")
WRITE_CHUNK = 100_000  # CSV rows formatted at a time
SUMMARY_PAIRS = 5  # pairs quoted by the summary


@dataclass
class _DedupInput:
    """The hashes of the file to deduplicate, with what identifies and ranks them."""

    codes: Codes
    labels: npt.NDArray[np.int64] | list[str] | None  # ids, keys, or None: row numbers
    id_source: str  # where the ids come from, for the reports
    qualities: npt.NDArray[np.int16] | None
    quality_column: str | None
    format: str
    skipped: list[tuple[int, str]]

    def ids(self, rows: npt.NDArray[np.int64]) -> list[int] | list[str]:
        """The ids of ``rows``, as written to the CSV files."""
        if self.labels is None:
            return cast(list[int], rows.tolist())
        if isinstance(self.labels, np.ndarray):
            return cast(list[int], self.labels[rows].tolist())
        keys = self.labels
        return [keys[row] for row in rows.tolist()]


def _read_dedup_input(
    path: str, format: str, bits: int | None, skip_invalid: bool, progress: bool
) -> _DedupInput:
    """Read every hash of ``path`` with :mod:`hashmatch.formats`, in one chunk."""
    data = common.read_hash_file(
        path, format=format, bits=bits, skip_invalid=skip_invalid, progress=progress
    )
    records = data.records
    labels, id_source = _dedup_labels(records, data.columns)
    quality_column = data.columns.get("quality") if records.qualities is not None else None
    return _DedupInput(
        codes=records.codes,
        labels=labels,
        id_source=id_source,
        qualities=records.qualities,
        quality_column=quality_column,
        format=data.format,
        skipped=data.skipped,
    )


def _dedup_labels(
    records: HashRecords, columns: dict[str, str]
) -> tuple[npt.NDArray[np.int64] | list[str] | None, str]:
    """What identifies each hash in the output: the file's integer ids (an ``id`` or
    ``indicator_id`` column); else its keys (``key``, ``content_id``, ``signal_id``,
    ``filename``... or the second column of a file without header) when every row has one
    and no two are equal; else the 0-based row number."""
    if records.ids is not None:
        return records.ids, f"column {columns['id']!r}"
    if records.keys is not None:
        keys = records.keys
        if None not in keys and len(set(keys)) == len(keys):
            return cast(list[str], keys), f"column {columns['key']!r}"
        return None, f"row numbers (column {columns['key']!r} has empty or repeated values)"
    return None, "row numbers"


IdsOf = Callable[[npt.NDArray[np.int64]], "list[int] | list[str]"]


def _write_pairs(
    out: IO[str],
    chunks: Iterable[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]],
    ids: IdsOf,
) -> None:
    """The pairs CSV: ``id_a,id_b,distance``, one row per pair, sorted by rows ``a < b``;
    from chunks of ``(rows a, rows b, distances)`` in that order."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAIRS_HEADER)
    for i, j, distances in chunks:
        for start in range(0, len(i), WRITE_CHUNK):
            stop = start + WRITE_CHUNK
            writer.writerows(
                zip(
                    ids(i[start:stop]),
                    ids(j[start:stop]),
                    distances[start:stop].tolist(),
                    strict=True,
                )
            )


def _write_clusters(
    out: IO[str], clusters: ClusterLabels, ids: IdsOf, only_duplicates: bool
) -> None:
    """The clusters CSV: ``id,cluster,size,representative`` (1 or 0), one row per hash (with
    ``only_duplicates``, per hash in a cluster of 2 or more), by cluster, then file order."""
    sizes = clusters.sizes[clusters.labels]
    rows = np.argsort(clusters.labels, kind="stable").astype(np.int64)
    if only_duplicates:
        rows = rows[sizes[rows] >= 2]
    representative = np.zeros(len(clusters.labels), dtype=np.int8)
    representative[clusters.representatives] = 1
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CLUSTERS_HEADER)
    for start in range(0, len(rows), WRITE_CHUNK):
        chunk = rows[start : start + WRITE_CHUNK]
        writer.writerows(
            zip(
                ids(chunk),
                clusters.labels[chunk].tolist(),
                sizes[chunk].tolist(),
                representative[chunk].tolist(),
                strict=True,
            )
        )


def _describe_join(pairs: hm.Pairs, threads: int) -> str:
    """How the join ran, and the cost model's single-thread estimates, in one line."""
    plan = pairs.plan
    method = plan.method
    if plan.method == "multi-index":
        method += f", {len(plan.substrings)} substrings"

    def estimate(seconds: float) -> str:
        return duration(max(seconds, 0.0)) if np.isfinite(seconds) else "n/a"

    return (
        f"{method} on {threads} thread{'' if threads == 1 else 's'} (cost model, 1 thread:"
        " multi-index"
        f" {estimate(plan.multi_index_seconds)}, brute force {estimate(plan.brute_force_seconds)})"
    )


@dataclass
class DedupStats:
    """Counts the reports quote."""

    hashes: int
    pairs: int
    clusters: int  # singletons included
    with_duplicates: int  # clusters of 2 or more
    clustered: int  # hashes in those
    largest: int

    @classmethod
    def of(cls, clusters: hm.Clusters) -> DedupStats:
        multi = clusters.sizes[clusters.sizes >= 2]
        return cls(
            hashes=len(clusters.labels),
            pairs=len(clusters.pairs),
            clusters=clusters.n_clusters,
            with_duplicates=len(multi),
            clustered=int(multi.sum()),
            largest=int(clusters.sizes.max()) if len(clusters.sizes) else 0,
        )


def _dedup_report(
    path: str,
    data: _DedupInput,
    clusters: hm.Clusters,
    threads: int,
    timings: tuple[float, float, float],
) -> list[str]:
    """The summary ``hashmatch dedup`` prints without output files, one string per line."""
    pairs, stats = clusters.pairs, DedupStats.of(clusters)
    t_read, t_join, t_cluster = map(duration, timings)
    bits = data.codes.shape[1] * 8
    quality = f"; quality: column {data.quality_column!r}" if data.quality_column else ""
    skipped = f"; {len(data.skipped):,} invalid rows skipped" if data.skipped else ""
    rep = "highest quality" if clusters.representative == "quality" else "medoid"
    lines = [
        f"hashmatch {hm.__version__} dedup: pairs within Hamming distance {pairs.max_distance}"
        " (inclusive), exact",
        f"input       {path}: {stats.hashes:,} {bits}-bit hashes ({data.format}; ids:"
        f" {data.id_source}{quality}){skipped}",
        f"pairs       {stats.pairs:,}",
        f"clusters    {stats.with_duplicates:,} with duplicates, holding {stats.clustered:,}"
        f" hashes; largest {stats.largest:,}; {stats.clusters:,} clusters in all",
        f"duplicates  {stats.hashes - stats.clusters:,} hashes to drop to keep one per cluster"
        f" (representative: {rep})",
        f"method      {_describe_join(pairs, threads)}",
        f"time        read {t_read}, join {t_join}, cluster {t_cluster}",
    ]
    shown = min(SUMMARY_PAIRS, stats.pairs)
    if shown:
        first = f"first {shown} pairs" if shown < stats.pairs else "pairs"
        lines.append(f"{first} (id_a, id_b, distance)")
        ids_a = list(map(str, data.ids(pairs.i[:shown])))
        ids_b = list(map(str, data.ids(pairs.j[:shown])))
        wa, wb = max(map(len, ids_a)), max(map(len, ids_b))
        for a, b, d in zip(ids_a, ids_b, pairs.distances[:shown].tolist(), strict=True):
            lines.append(f"  {a:<{wa}}  {b:<{wb}}  {d}")
    return lines


def _ray_joins(args: argparse.Namespace, threads: int) -> Any:
    """:mod:`hashmatch.distributed.joins` on the Ray of --ray-address, else the one this
    process already joined, else a local one of --threads CPUs."""
    try:
        import ray

        from hashmatch.distributed import joins
    except ImportError as error:
        raise hm.InvalidArgument(
            f"--ray: needs Ray and pyarrow (pip install 'hashmatch[ray]'): {error}"
        ) from error
    if not ray.is_initialized():
        if args.ray_address is not None:
            ray.init(address=args.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False)
    return joins


def _ray_duplicates(
    args: argparse.Namespace, codes: Codes, radius: int, threads: int, progress: bool
) -> hm.Pairs:
    """The self-join of hashes read by this process as tiles on Ray."""
    joins = _ray_joins(args, threads)
    return cast(
        hm.Pairs,
        joins.find_duplicates(
            codes, radius, shards=_shards(args), work_dir=args.work_dir, progress=progress
        ),
    )


def _shards(args: argparse.Namespace) -> int:
    return 4 if args.shards is None else int(args.shards)


def _is_shared_input(path: str) -> bool:
    """FILE is read by the Ray tasks, not by this process: a directory of Parquet files, a
    Parquet file or a saved hash list (``.hm``)."""
    return os.path.isdir(path) or path.lower().endswith((".parquet", ".hm"))


def _parquet_clusters(args: argparse.Namespace) -> bool:
    """--clusters names a Parquet file (written by the tiled join's labels writer)."""
    return args.clusters is not None and args.clusters.lower().endswith(".parquet")


def _run_shared_input(args: argparse.Namespace, threads: int, progress: bool) -> int:
    """``hashmatch dedup PATH --ray`` on Parquet or ``.hm`` input: this process reads only
    the files' metadata; Ray tasks write the shards and the tiles; clusters come from a
    union-find over the tile files (:class:`hashmatch.distributed.joins.TiledJoin`)."""
    if args.representative == "quality":
        raise hm.InvalidArgument(
            "--representative quality: not with Parquet or .hm input (no quality is read);"
            " use medoid"
        )
    if args.format != "auto" or args.skip_invalid:
        raise hm.InvalidArgument(
            "--format, --skip-invalid: apply to text hash files, not Parquet or .hm input"
        )
    joins = _ray_joins(args, threads)
    parquet_labels = _parquet_clusters(args)
    if os.path.isdir(args.file):
        for option, path in (("--out", args.out), ("--clusters", args.clusters)):
            if path not in (None, "-") and joins._inside(path, [args.file]) is not None:
                raise hm.InvalidArgument(
                    f"{option}: {path} is inside the input directory {args.file}, whose"
                    " Parquet files are all input; write it elsewhere"
                )
    t0 = time.perf_counter()
    with (
        common.maybe_output(args.out) as pairs_file,
        common.maybe_output(None if parquet_labels else args.clusters) as clusters_file,
    ):
        width = joins.input_width(args.file, column=args.column)
        if args.bits is not None and args.bits != width:
            raise hm.HashTypeMismatch(
                f"--bits: {args.file} holds {width}-bit hashes, not {args.bits}-bit"
            )
        radius = common.radius(args.max_distance, width)
        job = joins.TiledJoin(
            args.work_dir,
            args.file,
            radius,
            shards=_shards(args),
            column=args.column,
            id_column=args.id_column,
        )
        status = job.run(progress=progress, threads_per_task=1)
        t1 = time.perf_counter()
        clusters = job.clusters(
            representative=args.representative,
            threads=threads,
            labels_path=args.clusters if parquet_labels else None,
            only_duplicates=args.only_duplicates,
        )
        t2 = time.perf_counter()
        row_ids = clusters.ids

        def ids(rows: npt.NDArray[np.int64]) -> list[int] | list[str]:
            if row_ids is None:
                return cast(list[int], rows.tolist())
            return cast("list[int] | list[str]", row_ids[rows].tolist())

        if pairs_file is not None:
            _write_pairs(pairs_file, job.iter_pairs(), ids)  # one shard's pairs at a time
        if clusters_file is not None:
            _write_clusters(clusters_file, clusters, ids, args.only_duplicates)
    multi = clusters.sizes[clusters.sizes >= 2]
    print(
        f"hashmatch: {job.n:,} hashes ({width} bits, distance <= {radius}) in {args.file}:"
        f" {clusters.pairs:,} pairs; {len(multi):,} clusters with duplicates holding"
        f" {int(multi.sum()):,} hashes, largest {int(clusters.sizes.max(initial=0)):,};"
        f" ids: {'from the input' if row_ids is not None else 'row numbers'};"
        f" {status.tiles} tiles ({status.resumed} resumed), join {duration(t1 - t0)},"
        f" cluster {duration(t2 - t1)}, write {duration(time.perf_counter() - t2)}",
        file=sys.stderr,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``hashmatch dedup``: every near-duplicate pair of one file, and the clusters."""
    threads = check_threads(args.threads)
    bits = common.bits_option(args.bits)
    if bits is not None and args.max_distance is not None:  # fail before reading
        check_max_distance(args.max_distance, bits, name="--max-distance")
    common.check_paths([("FILE", args.file)], [("--out", args.out), ("--clusters", args.clusters)])
    if args.only_duplicates and args.clusters is None:
        raise hm.InvalidArgument("--only-duplicates: applies to --clusters, which is not given")
    progress = common.library_progress(args.progress)
    if not args.ray and (args.shards is not None or args.work_dir is not None):
        raise hm.InvalidArgument("--shards, --work-dir: apply to --ray, which is not given")
    if args.ray and args.work_dir is None:
        raise hm.InvalidArgument("--ray: needs --work-dir (shards, tiles and their manifest)")
    if args.ray and _is_shared_input(args.file):
        return _run_shared_input(args, threads, progress)
    if _parquet_clusters(args):
        raise hm.InvalidArgument(
            "--clusters: a .parquet file is written with --ray on Parquet or .hm input; give a"
            " .csv name"
        )
    if args.column != "hash" or args.id_column is not None:
        raise hm.InvalidArgument("--column, --id-column: apply to Parquet or .hm input with --ray")
    t0 = time.perf_counter()
    # Opened first: a bad destination fails before the work; written atomically, so an
    # error or Ctrl-C leaves neither file (nor a partial one) behind.
    with (
        common.maybe_output(args.out) as pairs_file,
        common.maybe_output(args.clusters) as clusters_file,
    ):
        data = _read_dedup_input(args.file, args.format, bits, args.skip_invalid, args.progress)
        width = data.codes.shape[1] * 8
        radius = common.radius(args.max_distance, width)
        if args.representative == "quality" and data.qualities is None:
            raise hm.InvalidArgument(
                f"--representative quality: {args.file} has no quality column (quality,"
                " pdq_quality or hash_quality)"
            )
        t1 = time.perf_counter()
        if args.ray:
            pairs = _ray_duplicates(args, data.codes, radius, threads, progress)
        else:
            pairs = hm.find_duplicates(data.codes, radius, threads=threads, progress=progress)
        t2 = time.perf_counter()
        clusters = hm.cluster(
            pairs,
            qualities=data.qualities,
            representative=args.representative,
            threads=threads,
        )
        t3 = time.perf_counter()
        if pairs_file is not None:
            _write_pairs(pairs_file, [(pairs.i, pairs.j, pairs.distances)], data.ids)
        if clusters_file is not None:
            _write_clusters(clusters_file, clusters, data.ids, args.only_duplicates)
    common.report_skipped(data.skipped)
    if args.out is None and args.clusters is None:
        print(
            "\n".join(
                _dedup_report(args.file, data, clusters, threads, (t1 - t0, t2 - t1, t3 - t2))
            )
        )
        return 0
    stats = DedupStats.of(clusters)
    print(
        f"hashmatch: {stats.hashes:,} hashes ({width} bits, distance <= {radius}):"
        f" {stats.pairs:,} pairs; {stats.with_duplicates:,} clusters with duplicates holding"
        f" {stats.clustered:,} hashes, largest {stats.largest:,}; ids: {data.id_source};"
        f" read {duration(t1 - t0)}, join {duration(t2 - t1)} ({pairs.plan.method}),"
        f" cluster {duration(t3 - t2)}, write {duration(time.perf_counter() - t3)}",
        file=sys.stderr,
    )
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``dedup`` command's options."""
    dedup = commands.add_parser(
        "dedup",
        help="find every pair of near-duplicate hashes in one file, and their clusters",
        description="Find every pair of hashes of FILE within --max-distance, exactly (a"
        " multi-index or brute-force self-join chosen by a cost model), and group them into"
        " clusters: two hashes share a cluster when a chain of such pairs links them. Without"
        " --out or --clusters, print a summary. FILE is plain hex (one hash a line, or"
        " 'signal_type hash'), CSV or TSV, optionally gzip-compressed, with the column names of"
        " ThreatExchange, HMA and pdq-photo-hasher exports (hash/signal/pdq_hash...,"
        " id/indicator_id, key/content_id/signal_id/filename..., quality...) or rows"
        " 'pdq,<hash>,...' without header. The id of a hash"
        " in the output is its integer id column if the file has one; else its key column"
        " (e.g. filename, or the second column of a CSV without header) if every row has a"
        " distinct one; else its 0-based row number among the hashes read.",
        epilog="Outputs: --out CSV 'id_a,id_b,distance', one row per pair (row of id_a before"
        " row of id_b), sorted by rows; --clusters CSV 'id,cluster,size,representative', one"
        " row per hash grouped by cluster (numbered 0, 1... in order of their first row), then"
        " in file order; representative is 1 for the one hash kept per cluster, else 0. Both"
        " are written atomically: an error or Ctrl-C never leaves a partial file.",
    )
    dedup.add_argument(
        "file",
        metavar="FILE",
        help="hashes: hex, CSV or TSV (.gz too); - reads standard input. With --ray also a"
        " Parquet file, a directory of them, or a saved hash list (.hm), which only the Ray"
        " tasks read",
    )
    dedup.add_argument(
        "--out",
        default=None,
        metavar="PAIRS.csv",
        help="write the pairs as CSV: id_a,id_b,distance ('-': stdout)",
    )
    dedup.add_argument(
        "--clusters",
        default=None,
        metavar="CLUSTERS.csv",
        help="write one row per hash as CSV: id,cluster,size,representative ('-': stdout);"
        " with --ray on Parquet or .hm input, a .parquet name writes row,id,cluster as Parquet,"
        " one shard at a time",
    )
    dedup.add_argument(
        "--only-duplicates",
        action="store_true",
        help="--clusters lists only the hashes of clusters of 2 or more",
    )
    dedup.add_argument(
        "--representative",
        choices=("quality", "medoid"),
        default=None,
        help="the hash kept per cluster: that of highest quality (a missing quality ranks"
        " last; ties: first in the file) or the medoid, with the smallest sum of distances to"
        " the others (estimated from 4,096 members in bigger clusters) (default: quality if"
        " FILE has a quality column, else medoid; with --ray on Parquet or .hm input,"
        " qualities are not read: medoid)",
    )
    dedup.add_argument(
        "--ray",
        action="store_true",
        help="run the join as shard-pair tiles on Ray (needs hashmatch[ray]); same output."
        " A run stopped (Ctrl-C, a failed tile) resumes from the tiles in --work-dir",
    )
    dedup.add_argument(
        "--shards",
        type=int,
        default=None,
        metavar="K",
        help="with --ray: cut the hashes into K shards, K*(K+1)/2 tiles (default 4)",
    )
    dedup.add_argument(
        "--work-dir",
        default=None,
        metavar="DIR",
        help="with --ray: directory for the shards, tile pairs (Parquet) and job manifest, on"
        " storage every Ray node reads",
    )
    dedup.add_argument(
        "--column",
        default="hash",
        metavar="NAME",
        help="with --ray on Parquet input: the hash column (fixed-size binary, binary or hex;"
        " default hash)",
    )
    dedup.add_argument(
        "--id-column",
        default=None,
        metavar="NAME",
        help="with --ray on Parquet input: the column of ids written to the outputs (default:"
        " global row numbers; .hm input: the entry ids)",
    )
    dedup.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="with --ray: the Ray cluster to join (default: a local Ray of --threads CPUs)",
    )
    common.add_input_options(
        dedup, "hash width every hash must have (default: that of the first hash)"
    )
    common.add_common(dedup)
    dedup.set_defaults(handler=run)
