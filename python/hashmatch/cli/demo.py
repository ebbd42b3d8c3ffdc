"""``hashmatch demo``: search a synthetic PDQ-like corpus with planted near-duplicates, check
that every one is found, deduplicate synthetic re-uploads, and (with the media extra) hash
generated pictures and a video and match edited re-uploads of them."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np

import hashmatch as hm
from hashmatch._validation import check_bits, check_threads

from . import common, demo_media
from .common import Codes, Index, duration, hex_of
from .dedup import DedupStats

KNN_QUERIES = 1_000
KNN_K = 10
DEMO_DEDUP = 100_000  # most clustered hashes the demo deduplicates


def _count(value: float) -> str:
    """A number with an SI prefix, e.g. ``7.52 G``."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.2f} {prefix}"
    return f"{value:.0f}"


def _percent(part: int, whole: int) -> str:
    """``part/whole`` as a percentage, or ``n/a`` when ``whole`` is zero."""
    return f"{100 * part / whole:.2f}%" if whole else "n/a"


# ---------------------------------------------------------------------------------------- demo


@dataclass
class _DemoTally:
    """Running totals of the demo's range search, kept per batch so results are not stored."""

    planted: int  # planted queries
    matches: int = 0
    planted_found: int = 0
    unmatched_fresh: int = 0
    unmatched_planted: int = 0
    examples: list[tuple[int, int, int]] = field(default_factory=list)  # query, db id, distance

    def add(
        self, start: int, result: hm.RangeSearchResult, truth: hm.datasets.PlantedQueries
    ) -> None:
        """Count a batch of results whose first query is row ``start``."""
        rows = common.result_rows(start, result)
        found = (result.ids == truth.source[rows]) & (result.distances == truth.distance[rows])
        self.matches += len(result.ids)
        self.planted_found += int(found.sum())
        empty = start + np.flatnonzero(np.diff(result.lims) == 0)
        planted_empty = int((truth.source[empty] >= 0).sum())
        self.unmatched_planted += planted_empty
        self.unmatched_fresh += len(empty) - planted_empty
        for i in np.flatnonzero(found)[: 3 - len(self.examples)].tolist():
            self.examples.append((int(rows[i]), int(result.ids[i]), int(result.distances[i])))


@dataclass
class _Knn:
    """Outcome of the demo's exact kNN pass."""

    queries: int
    seconds: float
    planted: int
    ok: int  # planted queries whose nearest neighbour is at most the planted distance


def _demo_knn(index: Index, truth: hm.datasets.PlantedQueries, threads: int) -> _Knn:
    """Exact kNN on the first queries; an exact search never misses the planted source."""
    m = min(KNN_QUERIES, len(truth.queries))
    t0 = time.perf_counter()
    distances, _ = index.search(truth.queries[:m], KNN_K, threads=threads)
    seconds = time.perf_counter() - t0
    planted = truth.source[:m] >= 0
    ok = int((distances[planted, 0] <= truth.distance[:m][planted]).sum())
    return _Knn(m, seconds, int(planted.sum()), ok)


def run(args: argparse.Namespace) -> int:
    """Run ``hashmatch demo``: generate, index, search, check recall, report."""
    bits = check_bits(args.bits, name="--bits")
    radius = common.radius(args.max_distance, bits)
    threads = check_threads(args.threads)
    t0 = time.perf_counter()
    db = hm.datasets.random_codes(args.n, bits, seed=args.seed)
    truth = hm.datasets.planted_queries(
        db, args.queries, max_distance=radius, match_fraction=0.5, seed=args.seed + 1
    )
    t1 = time.perf_counter()
    index, plan = common.build_index(db, radius, args.progress)
    t2 = time.perf_counter()
    tally = _DemoTally(planted=int((truth.source >= 0).sum()))
    for start, result in common.range_batches(index, truth.queries, radius, threads, args.progress):
        tally.add(start, result, truth)
    t3 = time.perf_counter()
    # kNN among random hashes: the neighbours of fresh queries are far, where a scan is best.
    flat = (
        index
        if isinstance(index, hm.FlatIndex)
        else common.build_index(db, radius, False, kind="FlatIndex")[0]
    )
    knn = _demo_knn(flat, truth, threads)
    timings = (t1 - t0, t2 - t1, t3 - t2)
    media = (
        demo_media.run(db, radius, args.seed, threads)
        if bits == 256
        else demo_media.MediaReport(["media       skipped: PDQ only (--bits 256)"], True)
    )
    passed = tally.planted_found == tally.planted and knn.ok == knn.planted and media.passed
    report = _demo_report(db, truth, radius, threads, timings, tally, knn, passed)
    report.insert(4, f"index       {common.describe_index(index, plan)}")
    examples = report.index("examples    (planted pairs found)")
    report[examples:examples] = [_demo_dedup(args, radius), *media.lines]
    print("\n".join(report))
    return 0 if passed else 1


def _demo_dedup(args: argparse.Namespace, radius: int) -> str:
    """One report line: ``hashmatch dedup``'s join and clustering on synthetic re-uploads."""
    n = min(args.n, DEMO_DEDUP)
    codes = hm.datasets.clustered_codes(n, args.bits, seed=args.seed + 2)
    t0 = time.perf_counter()
    pairs = hm.find_duplicates(
        codes, radius, threads=args.threads, progress=common.library_progress(args.progress)
    )
    clusters = hm.cluster(pairs, threads=args.threads)
    seconds = time.perf_counter() - t0
    stats = DedupStats.of(clusters)
    return (
        f"dedup       {n:,} hashes, 30% near-duplicate copies: {stats.pairs:,} pairs,"
        f" {stats.with_duplicates:,} clusters with duplicates (largest {stats.largest})"
        f" in {duration(seconds)} ({pairs.plan.method})"
    )


def _demo_report(
    db: Codes,
    truth: hm.datasets.PlantedQueries,
    radius: int,
    threads: int,
    timings: tuple[float, float, float],
    tally: _DemoTally,
    knn: _Knn,
    passed: bool,
) -> list[str]:
    """The demo report, one string per line."""
    n, nq, bits, planted = len(db), len(truth.queries), db.shape[1] * 8, tally.planted
    t_gen, t_build, t_search = (max(t, 1e-9) for t in timings)  # no division by zero
    features = hm.cpu_features()
    flags = " ".join(k for k in ("popcnt", "avx2", "avx512_vpopcntdq", "neon") if features.get(k))
    lines = [
        f"hashmatch {hm.__version__} demo: exact range search, distance <= {radius}",
        f"kernel      {features['kernel']} (CPU: {flags or 'no popcount ISA'}), {threads} threads",
        f"corpus      {n:,} random {bits}-bit hashes ({db.nbytes / 2**20:.1f} MiB)",
        f"queries     {nq:,}: {planted:,} planted at distance 0..{radius}, {nq - planted:,} fresh",
        f"generate    {t_gen:.2f} s",
        f"build       {t_build:.2f} s",
        f"search      {t_search:.2f} s (range_search,"
        f" {common.queries_per_call(n):,} queries per call)",
        f"throughput  {nq / t_search:,.0f} queries/s,"
        f" {_count(n * nq / t_search)} hash comparisons/s equivalent",
        f"matches     {tally.matches:,} ({tally.planted_found:,} planted,"
        f" {tally.matches - tally.planted_found:,} other)",
        f"recall      {_percent(tally.planted_found, planted)}"
        f" ({tally.planted_found:,}/{planted:,} planted pairs found at their exact distance)",
        f"no match    {tally.unmatched_fresh + tally.unmatched_planted:,} queries"
        f" ({tally.unmatched_fresh:,} fresh, {tally.unmatched_planted:,} planted)",
        f"{f'kNN k={KNN_K}':<11} {knn.queries:,} queries in {knn.seconds:.2f} s"
        f" ({knn.queries / max(knn.seconds, 1e-9):,.0f} queries/s, FlatIndex);"
        f" nearest <= planted distance {knn.ok:,}/{knn.planted:,}",
        "examples    (planted pairs found)",
    ]
    for q, i, d in tally.examples:
        lines.append(f"  query {q:<9,} {hex_of(truth.queries[q])}")
        lines.append(f"  db {i:<12,} {hex_of(db[i])}  distance {d}")
    lines.append(f"result      {'PASS' if passed else 'FAIL'}")
    return lines


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``demo`` command's options."""
    demo = commands.add_parser(
        "demo",
        help="search a synthetic corpus with planted near-duplicates and check recall",
        description="Build a random PDQ-like corpus, plant near-duplicate queries at known"
        " distances, search them exactly and check that every planted pair is found.",
    )
    demo.add_argument(
        "--n",
        type=common.int_at_least(1),
        default=1_000_000,
        help="corpus size (default 1,000,000)",
    )
    demo.add_argument(
        "--queries",
        type=common.int_at_least(1),
        default=10_000,
        help="number of queries (default 10,000)",
    )
    demo.add_argument("--bits", type=int, default=256, help="hash width (default 256, PDQ)")
    demo.add_argument(
        "--seed", type=common.int_at_least(0), default=0, help="random seed (default 0)"
    )
    common.add_common(demo)
    demo.set_defaults(handler=run)
