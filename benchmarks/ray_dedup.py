"""Tiled self-join on a local Ray against single-machine ``find_duplicates``: the run behind
benchmarks/SCALE.md.

Usage: ``python benchmarks/ray_dedup.py [--n 10000000] [--shards 4] [--cpus 2]
[--max-distance 31] [--work-dir DIR] [--json OUT.json]``. Generates
``hm.datasets.clustered_codes(n, 256, seed=0)``, runs ``hm.find_duplicates(codes, r,
threads=cpus)``, then ``hashmatch.distributed.joins`` with ``shards`` shards on
``ray.init(num_cpus=cpus)`` (one thread per tile task, ``cpus`` tasks at a time), checks the
merged pairs equal the single-machine ones, and prints the phases, each tile's time and its
worker's peak RSS.
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
    equal = (
        np.array_equal(pairs.i, single.i)
        and np.array_equal(pairs.j, single.j)
        and np.array_equal(pairs.distances, single.distances)
    )
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
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=1)
    ray.shutdown()
    if args.work_dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
