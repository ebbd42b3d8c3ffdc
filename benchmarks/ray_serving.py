"""Overhead of sharded matching (ShardedMatcher over Ray actors) over the single-machine Matcher.

Usage: python benchmarks/ray_serving.py [N] [PARTITIONS]   (default 1,000,000 PDQ hashes, 2)
       python benchmarks/ray_serving.py videos [VIDEOS] [FRAMES] [PARTITIONS]
                                                    (default 2,000 videos x 300 frames, 2)

Builds one PDQ HashList of N random hashes, writes it as PARTITIONS partition files, starts a
local Ray (2 CPUs) with one replica per partition, checks once that both answer identically,
then times single queries (median of 200) and 1,000-query batches (median of 5), half of the
queries planted within 31. Prints a Markdown table. Needs the ray extra.

``videos``: the same for a VideoIndex of VIDEOS banked videos of FRAMES frames (a new random
hash every 4 frames, a few bits flipped in between) against ShardedVideoMatcher: per query
video of FRAMES frames, median of 20, for a re-encoded copy of a banked video and for a video
matching nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
from hashmatch.distributed import ShardedMatcher, ShardedVideoMatcher, write_partitions

import hashmatch as hm


def median_seconds(call, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def synthetic_video(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A new random hash every 4 frames (1 a second), a few bits flipped in between."""
    rng = np.random.default_rng(seed)
    scenes = hm.datasets.random_codes(frames // 4 + 1, seed=seed)
    codes = hm.datasets.flip_bits(
        scenes[np.arange(frames) // 4], rng.integers(0, 6, frames).tolist(), seed=seed
    )
    return codes, np.full(frames, 100), np.arange(frames, dtype=np.float64)


def videos_main(count: int, frames: int, parts: int) -> None:
    import ray

    t0 = time.perf_counter()
    whole = hm.VideoIndex(name="bank")
    whole.add_many([synthetic_video(frames, 1000 + i) for i in range(count)])
    built = time.perf_counter() - t0
    copy = synthetic_video(frames, 1000 + count // 2)
    rng = np.random.default_rng(5)
    copy = (hm.datasets.flip_bits(copy[0], rng.integers(0, 8, frames).tolist(), seed=6), *copy[1:])
    nothing = synthetic_video(frames, 7)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        paths = write_partitions(whole, os.path.join(folder, "parts"), parts)
        with ShardedVideoMatcher(paths, replicas=1, threads=1) as sharded:
            for label, query in (("copy of a banked video", copy), ("matching nothing", nothing)):
                want = whole.match(query, threads=1)
                assert sharded.match(query).rows == want.rows and (len(want) > 0) == (query is copy)
                ours = median_seconds(lambda i, q=query: whole.match(q, threads=1), 20)
                theirs = median_seconds(lambda i, q=query: sharded.match(q), 20)
                rows.append((label, ours, theirs))
    ray.shutdown()
    print(
        f"{count:,} videos x {frames} frames ({whole.frames:,} frames, built in {built:.0f} s), "
        f"{parts} partitions, 1 replica each (1 thread), local Ray with 2 CPUs"
    )
    print(f"| query video ({frames} frames) | VideoIndex (one process, 1 thread) | "
          "ShardedVideoMatcher | ratio |")  # fmt: skip
    print("|---|---:|---:|---:|")
    for label, ours, theirs in rows:
        print(f"| {label} | {ours * 1e3:.1f} ms | {theirs * 1e3:.1f} ms | {theirs / ours:.2f}x |")


def main() -> None:
    import ray

    if len(sys.argv) > 1 and sys.argv[1] == "videos":
        args = [int(a) for a in sys.argv[2:]]
        videos_main(*(args + [2000, 300, 2][len(args) :]))
        return

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
