"""Overhead of sharded matching (ShardedMatcher over Ray actors) over the single-machine Matcher.

Usage: python benchmarks/ray_serving.py [N] [PARTITIONS]   (default 1,000,000 PDQ hashes, 2)

Builds one PDQ HashList of N random hashes, writes it as PARTITIONS partition files, starts a
local Ray (2 CPUs) with one replica per partition, checks once that both answer identically,
then times single queries (median of 200) and 1,000-query batches (median of 5), half of the
queries planted within 31. Prints a Markdown table. Needs the ray extra.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
from hashmatch.distributed import ShardedMatcher, write_partitions

import hashmatch as hm


def median_seconds(call, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    import ray

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    parts = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    db = hm.datasets.random_codes(n, seed=11)
    truth = hm.datasets.planted_queries(db, 1200, max_distance=31, match_fraction=0.5, seed=12)
    queries = truth.queries
    whole = hm.HashList("pdq", name="list")
    whole.add(db, keys=[f"k{i}" for i in range(n)])
    matcher = hm.Matcher({"list": whole})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_partitions(whole, os.path.join(folder, "parts"), parts)
        with ShardedMatcher({"list": paths}, replicas=1, threads=1) as sharded:
            a, b = matcher.match(queries[:1000]), sharded.match(queries[:1000])
            assert a.ids.tolist() == b.ids.tolist() and a.queries.tolist() == b.queries.tolist()
            rows = []
            for label, size, rounds in (("one query", 1, 200), ("1,000-query batch", 1000, 5)):
                ours = median_seconds(
                    lambda i, s=size: matcher.match(queries[i % 200 : i % 200 + s]), rounds
                )
                theirs = median_seconds(
                    lambda i, s=size: sharded.match(queries[i % 200 : i % 200 + s]), rounds
                )
                rows.append((label, ours, theirs))
    ray.shutdown()
    print(f"{n:,} PDQ hashes, {parts} partitions, 1 replica each, local Ray with 2 CPUs")
    print("| call | Matcher (one process) | ShardedMatcher | overhead |")
    print("|---|---:|---:|---:|")
    for label, ours, theirs in rows:
        print(f"| {label} | {ours * 1e3:.2f} ms | {theirs * 1e3:.2f} ms | {theirs / ours:.2f}x |")


if __name__ == "__main__":
    main()
