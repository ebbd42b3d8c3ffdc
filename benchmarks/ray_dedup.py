"""Tiled self-join on a local Ray against single-machine ``find_duplicates``: the run behind
benchmarks/SCALE.md.

Usage: ``python benchmarks/ray_dedup.py [--n 10000000] [--shards 4] [--cpus 2]
[--max-distance 31] [--work-dir DIR] [--json OUT.json]``. Generates
``hm.datasets.clustered_codes(n, 256, seed=0)``, runs ``hm.find_duplicates(codes, r,
threads=cpus)``, then ``hashmatch.distributed.joins`` with ``shards`` shards on
``ray.init(num_cpus=cpus)`` (one thread per tile task, ``cpus`` tasks at a time), checks the
merged pairs equal the single-machine ones, and prints the phases, each tile's time and its
worker's peak RSS. Then: the streaming clusters over the tile files
(``TiledJoin.clusters``) against ``hm.cluster`` of the single-machine pairs, and the same
job from ``--files`` Parquet files (fixed-size binary, written in setup, untimed) whose
shards Ray tasks write, against the in-memory job; both checked equal.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import shutil
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from hashmatch.distributed import joins

import hashmatch as hm

GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--max-distance", type=int, default=31)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--files", type=int, default=8, help="Parquet input files")
    args = parser.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="hm-ray-bench-")
    result: dict[str, object] = {"n": args.n, "shards": args.shards, "cpus": args.cpus}

    t = time.perf_counter()
    codes = hm.datasets.clustered_codes(args.n, 256, seed=0)
    print(f"generate      {time.perf_counter() - t:8.1f} s")

    t = time.perf_counter()
    single = hm.find_duplicates(codes, args.max_distance, threads=args.cpus)
    result["single_s"] = time.perf_counter() - t
    print(
        f"single-machine find_duplicates {result['single_s']:8.1f} s, {len(single):,} pairs,"
        f" {single.plan.method} {len(single.plan.substrings)} substrings"
    )

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    t = time.perf_counter()
    job = joins.TiledJoin(work, codes, args.max_distance, shards=args.shards)
    result["shard_write_s"] = time.perf_counter() - t
    status = job.run(progress=True)
    result["tiles_s"] = status.seconds
    t = time.perf_counter()
    pairs = job.pairs()
    result["merge_s"] = time.perf_counter() - t
    equal = same_pairs(pairs, single)
    result["equal"] = bool(equal)
    result["pairs"] = len(pairs)
    result["tile_seconds"] = status.tile_seconds
    result["tile_peak_rss_gib"] = {k: v / GIB for k, v in status.tile_peak_rss.items()}
    total = result["shard_write_s"] + status.seconds + result["merge_s"]  # type: ignore[operator]
    result["tiled_total_s"] = total
    result["tiled_over_single"] = total / result["single_s"]  # type: ignore[operator]
    diag = [v for k, v in status.tile_seconds.items() if k.split("-")[0] == k.split("-")[1]]
    off = [v for k, v in status.tile_seconds.items() if k.split("-")[0] != k.split("-")[1]]
    result["diagonal_tile_s_mean"] = float(np.mean(diag))
    result["off_diagonal_tile_s_mean"] = float(np.mean(off)) if off else None
    result["task_seconds_sum"] = float(sum(status.tile_seconds.values()))
    print(f"shards write  {result['shard_write_s']:8.1f} s")
    print(
        f"tiles         {status.seconds:8.1f} s ({status.tiles} tiles on {args.cpus} CPUs;"
        f" task-seconds {result['task_seconds_sum']:.1f})"
    )
    print(f"merge         {result['merge_s']:8.1f} s")
    print(
        f"tiled total   {total:8.1f} s = {result['tiled_over_single']:.2f}x single; equal: {equal}"
    )
    for key in sorted(status.tile_seconds, key=lambda k: tuple(map(int, k.split("-")))):
        print(
            f"  tile {key:>5}: {status.tile_seconds[key]:7.2f} s,"
            f" worker peak RSS {status.tile_peak_rss[key] / GIB:.2f} GiB"
        )
    result.update(clusters_and_files(args, work, codes, single, job))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=1)
    ray.shutdown()
    if args.work_dir is None:
        shutil.rmtree(work)


def same_pairs(a: hm.Pairs, b: hm.Pairs) -> bool:
    """The same pairs, distances and order."""
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def clusters_and_files(
    args: argparse.Namespace,
    work: str,
    codes: np.ndarray,
    single: hm.Pairs,
    job: joins.TiledJoin,
) -> dict[str, object]:
    """Streaming clusters vs hm.cluster; Parquet-file input vs in-memory input."""
    result: dict[str, object] = {}
    t = time.perf_counter()
    expected = hm.cluster(single, threads=args.cpus)
    result["hm_cluster_s"] = time.perf_counter() - t
    t = time.perf_counter()
    streamed = job.clusters(threads=args.cpus)
    result["streaming_clusters_s"] = time.perf_counter() - t
    result["clusters_equal"] = bool(
        np.array_equal(streamed.labels, expected.labels)
        and np.array_equal(streamed.sizes, expected.sizes)
        and np.array_equal(streamed.representatives, expected.representatives)
    )
    print(
        f"hm.cluster    {result['hm_cluster_s']:8.1f} s; streaming clusters over the tiles"
        f" {result['streaming_clusters_s']:.1f} s ({streamed.n_clusters:,} clusters);"
        f" equal: {result['clusters_equal']}"
    )
    folder = os.path.join(work, "input")
    os.makedirs(folder)
    bounds = [len(codes) * k // args.files for k in range(args.files + 1)]
    for k in range(args.files):
        rows = codes[bounds[k] : bounds[k + 1]]
        column = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(32), len(rows), [None, pa.py_buffer(np.ascontiguousarray(rows))]
        )
        pq.write_table(pa.table({"hash": column}), os.path.join(folder, f"{k:04d}.parquet"))
    t = time.perf_counter()
    files_job = joins.TiledJoin(
        os.path.join(work, "files-job"), folder, args.max_distance, shards=args.shards
    )
    result["files_scan_s"] = time.perf_counter() - t
    status = files_job.run()
    t = time.perf_counter()
    pairs = files_job.pairs()
    result["files_merge_s"] = time.perf_counter() - t
    result["files_shard_tasks_s"] = status.shard_seconds
    result["files_tiles_s"] = status.seconds - status.shard_seconds
    result["files_equal"] = same_pairs(pairs, single)
    print(
        f"file input    {args.files} Parquet files: scan {result['files_scan_s']:.2f} s,"
        f" shard tasks {status.shard_seconds:.1f} s, tiles {result['files_tiles_s']:.1f} s,"
        f" merge {result['files_merge_s']:.1f} s; equal: {result['files_equal']}"
    )
    return result


if __name__ == "__main__":
    main()
