"""Bulk near-duplicate detection at 10M hashes: the manual run behind benchmarks/RESULTS.md.

Usage: ``python benchmarks/dedup_10m.py [--n 10000000] [--bits 256] [--max-distance 31]
[--threads 2]``. Generates ``hm.datasets.clustered_codes(n, bits)``, runs
``hm.find_duplicates(..., progress=True)`` then ``hm.cluster(pairs)``, and prints wall times,
pairs, clusters, the join plan and memory: on Linux each phase's own peak RSS (``VmHWM``, reset
through ``/proc/self/clear_refs`` before the phase) and the largest of them, the process's peak;
and ``ru_maxrss``, which that reset lowers (see ``main``; ``--no-phase-peaks`` leaves it whole).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hashmatch as hm

GIB = 2**30
phase_peaks: list[int] = []  # each phase's own peak RSS, where the kernel tells it
measure_phases = True


def peak_rss() -> int:
    """The process's peak resident set since it started, in bytes (Linux: KiB units)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


def status(field: str) -> int | None:
    """A ``/proc/self/status`` memory field in bytes, or None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_phase_peak() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as control:
            control.write("5")
    except OSError:
        return False
    return True


def phase(name: str, run: Callable[[], Any]) -> Any:
    """Run one phase; print its wall time, the RSS before it and its own peak RSS."""
    before = status("VmRSS")
    resettable = measure_phases and reset_phase_peak()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = status("VmHWM") if resettable else None
    if peak is not None:
        phase_peaks.append(peak)
    memory = ""
    if before is not None and peak is not None:
        memory = f"; RSS before {before / GIB:.2f} GiB, peak during {peak / GIB:.2f} GiB"
    print(f"{name}: {seconds:.2f} s{memory}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="hashes (default 10M)")
    parser.add_argument("--bits", type=int, default=256, help="hash width (default 256: PDQ)")
    parser.add_argument("--max-distance", type=int, default=31, help="inclusive radius")
    parser.add_argument("--threads", type=int, default=2, help="threads for the join")
    parser.add_argument("--seed", type=int, default=0, help="clustered_codes seed")
    parser.add_argument(
        "--no-phase-peaks",
        action="store_true",
        help="do not reset the peak-RSS mark per phase (ru_maxrss is then the process's peak)",
    )
    args = parser.parse_args()
    global measure_phases
    measure_phases = not args.no_phase_peaks

    print(
        f"hashmatch {hm.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; n = {args.n:,}, {args.bits}-bit, max_distance "
        f"{args.max_distance}, {args.threads} threads"
    )
    plan = hm.plan_join(args.n, args.bits, args.max_distance)
    print(
        f"plan: {plan.method}, {len(plan.substrings)} substrings; model (1 thread): "
        f"multi-index {plan.multi_index_seconds:.1f} s, "
        f"brute force {plan.brute_force_seconds:.0f} s"
    )
    codes = phase(
        "clustered_codes", lambda: hm.datasets.clustered_codes(args.n, args.bits, seed=args.seed)
    )
    print(f"input: {codes.nbytes / GIB:.3f} GiB of codes ({codes.shape[0]:,} x {codes.shape[1]} B)")
    pairs = phase(
        "find_duplicates",
        lambda: hm.find_duplicates(codes, args.max_distance, threads=args.threads, progress=True),
    )
    print(f"  {pairs!r}; plan used: {pairs.plan.method}, {len(pairs.plan.substrings)} substrings")
    pair_bytes = pairs.i.nbytes + pairs.j.nbytes + pairs.distances.nbytes
    print(f"  pairs: {len(pairs):,} ({pair_bytes / GIB:.3f} GiB as int64 i, j and int32 d)")
    if len(pairs):
        counts = np.bincount(pairs.distances, minlength=args.max_distance + 1)
        print(f"  pairs by distance: {counts.tolist()}")
    clusters = phase("cluster", lambda: hm.cluster(pairs, threads=args.threads))
    multi = clusters.sizes[clusters.sizes > 1]
    print(
        f"  {clusters.n_clusters:,} clusters, {len(multi):,} with duplicates holding "
        f"{int(multi.sum()):,} hashes; largest {int(clusters.sizes.max()):,}; "
        f"{int(clusters.duplicates().sum()):,} hashes to drop"
    )
    # getrusage's ru_maxrss keeps the larger of the mm's high-water mark (which each phase
    # resets) and the marks of exited threads: a phase's peak may be missing from it.
    if phase_peaks:
        print(f"peak RSS of the process (largest phase peak): {max(phase_peaks) / GIB:.2f} GiB")
    note = " (lowered by the per-phase resets)" if phase_peaks else ""
    print(f"ru_maxrss: {peak_rss() / GIB:.2f} GiB{note}")


if __name__ == "__main__":
    main()
