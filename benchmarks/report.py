"""Markdown summary of a ``pytest benchmarks --benchmark-json=FILE`` run.

Usage: ``python benchmarks/report.py FILE``. One row per benchmark group (operation, hash width,
threads) with both libraries' median times, the speed-up (faiss median / hashmatch median) and
each library's rate: GB/s of stored hashes scanned for single queries, comparisons/s for batches.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

LIBRARIES = ("hashmatch", "faiss")


def format_time(seconds: float) -> str:
    """Seconds with a unit that keeps 3-4 significant digits."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_rate(extra: dict[str, Any]) -> str:
    """GB/s scanned for single-query benchmarks, else comparisons/s."""
    if "gb_per_s" in extra:
        return f"{extra['gb_per_s']:.1f} GB/s"
    return f"{extra['comparisons_per_s'] / 1e9:.2f} G cmp/s"


def header(run: dict[str, Any]) -> str:
    """One line on the corpus, machine and commit behind the numbers."""
    described = [b["extra_info"] for b in run["benchmarks"] if "scale" in b["extra_info"]]
    cpu = run["machine_info"].get("cpu", {}).get("brand_raw", run["machine_info"]["machine"])
    commit = run.get("commit_info", {})
    revision = commit.get("id", "unknown")[:10] + (" (dirty)" if commit.get("dirty") else "")
    corpus = ""
    if described:
        batch = max(e.get("queries", 0) for e in described)
        queries = f", {batch:,} queries per batch" if batch else ""
        stored = described[0].get("n", described[0].get("frames", 0))  # test_videos: frames
        corpus = f"Scale `{described[0]['scale']}`: {stored:,} stored hashes{queries}; "
    return (
        f"{corpus}{cpu}, {run['machine_info']['cpu'].get('count', '?')} CPUs; commit {revision}; "
        f"{run['datetime']}."
    )


def kind(group: str) -> str:
    """``sublinear`` (test_mih, test_backends), ``list`` (test_lists), ``load`` (test_load),
    ``join`` (test_join), ``dihedral`` (test_dihedral), ``video`` (test_videos) or ``flat``
    (test_flat), ``tx`` (test_threatexchange), ``ray`` (test_sharded)."""
    if group.startswith("tx-"):
        return "tx"
    if group.startswith("ray-"):
        return "ray"
    if group.startswith("video-"):
        return "video"
    if group.startswith("dihedral-"):
        return "dihedral"
    if group.startswith(("mih-", "backends-")):
        return "sublinear"
    if group.startswith("join-"):
        return "join"
    if group.startswith(("load-", "first-query-")):
        return "load"
    return "list" if group.startswith("list-") else "flat"


def grouped(run: dict[str, Any], which: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Benchmarks of one kind by group then library (or parameter), in run order."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in run["benchmarks"]:
        if kind(bench["group"]) == which:
            name = bench["extra_info"].get("library") or bench.get("param") or bench["name"]
            groups.setdefault(bench["group"], {})[name] = bench
    return groups


def table(run: dict[str, Any]) -> str:
    """The Markdown table, groups in run order."""
    groups = grouped(run, "flat")
    if not groups:
        return ""
    lines = [
        "| group | hashmatch median | faiss median | speed-up | hashmatch rate | faiss rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group, by_library in groups.items():
        cells = [f"`{group}`"]
        medians = {lib: b["stats"]["median"] for lib, b in by_library.items()}
        cells += [format_time(medians[lib]) if lib in medians else "-" for lib in LIBRARIES]
        both = all(lib in medians for lib in LIBRARIES)
        cells.append(f"{medians['faiss'] / medians['hashmatch']:.2f}x" if both else "-")
        cells += [
            format_rate(by_library[lib]["extra_info"]) if lib in by_library else "-"
            for lib in LIBRARIES
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mih_table(run: dict[str, Any]) -> str:
    """Sublinear search (benchmarks/test_mih.py): every index of a group against faiss's
    IndexBinaryMultiHash, with p99 latency, recall, build time and memory where recorded."""
    groups = grouped(run, "sublinear")
    if not groups:
        return ""
    lines = [
        "| group | index | median | p99 | vs faiss-multihash | recall | build | memory / raw |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for group, by_library in groups.items():
        reference = by_library.get("faiss-multihash", {}).get("stats", {}).get("median")
        for library, bench in by_library.items():
            extra, median = bench["extra_info"], bench["stats"]["median"]
            cells = [
                f"`{group}`",
                library,
                format_time(median),
                format_time(extra["p99_ms"] / 1e3) if "p99_ms" in extra else "-",
                f"{reference / median:.1f}x" if reference else "-",
                f"{extra['recall']:.4f}" if "recall" in extra else "-",
                f"{extra['build_s']:.2f} s" if "build_s" in extra else "-",
                f"{extra['memory_x_raw']:.2f}x" if "memory_x_raw" in extra else "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def list_table(run: dict[str, Any]) -> str:
    """Hash lists (benchmarks/test_lists.py): each variant's median, and the labelled list's
    time over the bare index's where a group has both."""
    groups = grouped(run, "list")
    if not groups:
        return ""
    lines = ["| group | variant | median | vs bare index |", "|---|---|---:|---:|"]
    for group, variants in groups.items():
        bare = variants.get("bare-index", {}).get("stats", {}).get("median")
        for variant, bench in variants.items():
            median = bench["stats"]["median"]
            ratio = f"{median / bare:.2f}x" if bare and variant != "bare-index" else "-"
            lines.append(f"| `{group}` | {variant} | {format_time(median)} | {ratio} |")
    return "\n".join(lines)


def load_table(run: dict[str, Any]) -> str:
    """Opening saved indexes (benchmarks/test_load.py): each load mode's times, with the file's
    size and save time."""
    groups = grouped(run, "load")
    if not groups:
        return ""
    lines = [
        "| group | mode | median | min | file | save |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for group, by_mode in groups.items():
        for mode, bench in by_mode.items():
            extra, stats = bench["extra_info"], bench["stats"]
            cells = [
                f"`{group}`",
                mode,
                format_time(stats["median"]),
                format_time(stats["min"]),
                f"{extra['file_bytes'] / 1e6:,.0f} MB",
                f"{extra['save_seconds']:.2f} s",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dihedral_table(run: dict[str, Any]) -> str:
    """Dihedral queries (benchmarks/test_dihedral.py): each way of answering one 8-variant
    stack, its p50/p99, and its time over one single-variant flat scan and over our one-pass
    search of the same kind (flat or MIH)."""
    groups = grouped(run, "dihedral")
    if not groups:
        return ""
    lines = [
        "| group | search | median | p99 | / 1-variant flat scan | / our one-pass |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for group, by_library in groups.items():
        medians = {lib: b["stats"]["median"] for lib, b in by_library.items()}
        single = medians.get("hashmatch-flat-1variant")
        for library, bench in by_library.items():
            extra, median = bench["extra_info"], medians[library]
            own = (
                "hashmatch-mih-onepass"
                if "multihash" in library or "mih" in library
                else ("hashmatch-flat-onepass")
            )
            cells = [
                f"`{group}`",
                library,
                format_time(median),
                format_time(extra["p99_ms"] / 1e3) if "p99_ms" in extra else "-",
                f"{median / single:.2f}x" if single else "-",
                f"{median / medians[own]:.2f}x" if own in medians else "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """Like :func:`format_time`, in minutes or hours past two minutes."""
    if seconds >= 7200:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 120:
        return f"{seconds / 60:.3g} min"
    return format_time(seconds)


def format_ratio(ratio: float) -> str:
    """``1.0x``, ``37.5x``, ``10,863x``."""
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.1f}x"


def join_table(run: dict[str, Any]) -> str:
    """Joins (benchmarks/test_join.py): every library's time for the whole join, measured or
    extrapolated from the rows it searched, its pairs, and its time over hashmatch's."""
    groups = grouped(run, "join")
    if not groups:
        return ""
    lines = [
        "| group | library | time | rows searched | pairs found | time / hashmatch |",
        "|---|---|---:|---|---:|---:|",
    ]
    for group, by_library in groups.items():
        first = next(iter(by_library.values()))["extra_info"]
        known = f" x {first['known']:,}" if first.get("known") else ""
        label = f"`{group}` ({first['rows']:,}{known}, r = {first['max_distance']})"
        reference = by_library.get("hashmatch", {}).get("extra_info", {}).get("time_s")
        for library, bench in by_library.items():
            extra = bench["extra_info"]
            extrapolated = extra.get("extrapolated", False)
            searched = f"all {extra['total_rows']:,}"
            if extrapolated:
                searched = (
                    f"{extra['sampled_rows']:,} of {extra['total_rows']:,} "
                    f"({extra['extrapolation']})"
                )
            cells = [
                label,
                library,
                format_duration(extra["time_s"]) + (" (extrapolated)" if extrapolated else ""),
                searched,
                f"{extra['pairs']:,}",
                format_ratio(extra["time_s"] / reference) if reference else "-",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def video_table(run: dict[str, Any]) -> str:
    """Video matching (benchmarks/test_videos.py): each library's median (and p90 of single
    query videos) per group, and pytx's time over hashmatch's."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in run["benchmarks"]:
        if kind(bench["group"]) == "video":
            extra = bench["extra_info"]
            name = extra.get("how") or extra["library"]
            rows.setdefault(bench["group"], {})[name] = bench
    if not rows:
        return ""
    lines = [
        "| group | library | median | p90 | rounds | pytx / hashmatch |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for group, by_name in rows.items():
        ours = next(
            (b["stats"]["median"] for n, b in by_name.items() if not n.startswith("pytx")), None
        )
        for name, bench in by_name.items():
            stats = bench["stats"]
            data = sorted(stats.get("data", []))
            p90 = format_time(data[int(0.9 * (len(data) - 1))]) if len(data) >= 10 else "-"
            ratio = (
                format_ratio(stats["median"] / ours) if name.startswith("pytx") and ours else "-"
            )
            cells = [
                f"`{group}`", name, format_time(stats["median"]), p90, str(stats["rounds"]),
                ratio,
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tx_table(run: dict[str, Any]) -> str:
    """pytx/HMA indexes (benchmarks/test_threatexchange.py): ours and pytx's PDQIndex and
    PDQIndex2 per group, with each pytx index's time over ours and the recorded sizes."""
    groups = grouped(run, "tx")
    if not groups:
        return ""
    lines = [
        "| group | library | median | / hashmatch | pickled | RSS after |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for group, by_library in groups.items():
        ours = by_library.get("hashmatch", {}).get("stats", {}).get("median")
        for name, bench in by_library.items():
            extra, median = bench["extra_info"], bench["stats"]["median"]
            cells = [
                f"`{group}`", name, format_time(median),
                format_ratio(median / ours) if ours and name != "hashmatch" else "-",
                f"{extra['pickled_bytes'] / 2**20:,.0f} MiB" if "pickled_bytes" in extra else "-",
                f"{extra['rss_mib_after']:,.0f} MiB" if "rss_mib_after" in extra else "-",
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ray_table(run: dict[str, Any]) -> str:
    """Sharded matching and tiled joins on Ray (benchmarks/test_sharded.py): each path's median
    and its time over the single-process one (``matcher`` / ``find-duplicates``)."""
    groups = grouped(run, "ray")
    if not groups:
        return ""
    lines = ["| group | path | median | vs one process |", "|---|---|---:|---:|"]
    for group, by_library in groups.items():
        medians = {lib: b["stats"]["median"] for lib, b in by_library.items()}
        single = medians.get("matcher", medians.get("find-duplicates"))
        for library, median in medians.items():
            ratio = f"{median / single:.2f}x" if single else "-"
            lines.append(f"| `{group}` | {library} | {format_time(median)} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    """Print the report of the JSON file given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", help="output of pytest --benchmark-json")
    run = json.load(open(parser.parse_args().json_file, encoding="utf-8"))
    if not run["benchmarks"]:
        raise SystemExit("no benchmarks in this file (was it run with --benchmark-disable?)")
    print(header(run))
    parts = (
        table, mih_table, list_table, load_table, join_table, dihedral_table, video_table,
        tx_table, ray_table,
    )  # fmt: skip
    for part in (make(run) for make in parts):
        if part:
            print()
            print(part)


if __name__ == "__main__":
    main()
