"""The two measured inputs of SCALE.md's serving model: one partition's cost, the router's.

Usage: python benchmarks/ray_scale.py partition N   (a replica's search cost at N hashes)
       python benchmarks/ray_scale.py router [P ...]   (the router's cost per call, P partitions)

``partition``: a PDQ HashList of N random hashes, saved and loaded with ``mmap=True`` as a
replica loads it (the file is kept in the temporary directory for reruns), pages warmed, then
``Matcher.match`` with one thread: one query (median and p99 of 1,000) and a 1,000-query
batch (best of 3), half of the queries planted within 31; prints the file's bytes per hash.

``router``: a ShardedMatcher over 200,000 hashes split P ways (default 1, 8, 32), one replica
per partition, on a local Ray with 2 CPUs: wall time and the driver's CPU time per one-query
call (mean of 100), the search being negligible. Needs the ray extra.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

import hashmatch as hm


def queries(codes: np.ndarray) -> np.ndarray:
    planted = hm.datasets.flip_bits(
        codes[:500], np.random.default_rng(0).integers(0, 32, len(codes[:500])).tolist()
    )
    return np.concatenate([planted, hm.datasets.random_codes(1000 - len(planted), seed=99)])


def partition_main(n: int) -> None:
    path = os.path.join(tempfile.gettempdir(), f"hashmatch-scale-{n}.hm")
    if not os.path.exists(path):
        built = hm.HashList("pdq")
        built.add(hm.datasets.random_codes(n, seed=1))
        built.save(path)
        del built
    matcher = hm.Matcher({"list": hm.HashList.load(path, mmap=True)})
    q = queries(hm.datasets.random_codes(min(n, 500), seed=1))
    for _ in range(2):
        matcher.match(q, threads=1)  # warm the pages
    one = []
    for i in range(len(q)):
        t0 = time.perf_counter()
        matcher.match(q[i : i + 1], threads=1)
        one.append(time.perf_counter() - t0)
    batch = []
    for _ in range(3):
        t0 = time.perf_counter()
        matcher.match(q, threads=1)
        batch.append(time.perf_counter() - t0)
    print(
        f"| {n:,} | {os.path.getsize(path) / n:.0f} B/hash | {np.median(one) * 1e3:.3f} ms "
        f"({np.percentile(one, 99) * 1e3:.3f}) | {min(batch) / len(q) * 1e3:.3f} ms |"
    )


def router_main(counts: list[int]) -> None:
    import ray
    from hashmatch.distributed import ShardedMatcher, write_partitions

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    codes = hm.datasets.random_codes(200_000, seed=1)
    whole = hm.HashList("pdq")
    whole.add(codes)
    q = queries(codes)
    print("| partitions | one query, wall | driver CPU per call |\n|---:|---:|---:|")
    for parts in counts:
        paths = {"list": write_partitions(whole, tempfile.mkdtemp(), parts)}
        options = {"num_cpus": 0}
        with ShardedMatcher(paths, replicas=1, threads=1, actor_options=options) as matcher:
            for i in range(20):
                matcher.match(q[i : i + 1])
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(100):
                matcher.match(q[i : i + 1])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"| {parts} | {wall * 10:.2f} ms | {cpu * 10:.2f} ms |")
    ray.shutdown()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "partition":
        partition_main(int(sys.argv[2]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "router":
        router_main([int(a) for a in sys.argv[2:]] or [1, 8, 32])
    else:
        sys.exit(__doc__)
