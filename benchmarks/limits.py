"""This machine's limits, to state benchmark results relative to them.

Usage: ``python benchmarks/limits.py`` (a few seconds; needs gcc and an x86-64 CPU with AVX2).
Compiles ``limits.c`` (``-O2 -mavx2 -mpopcnt``, no ``-march=native``) into a temporary directory
and prints a Markdown table of:

* memory read bandwidth: a 1 GiB buffer streamed with AVX2 loads by 1 and 2 threads, which
  bounds a single query's scan of stored hashes that do not fit in cache;
* the XOR + popcount ceiling: 256-bit codes in L1 compared with one query by one thread, the
  best of scalar POPCNT and the AVX2 nibble lookup (Mula), which bounds comparisons/s per core.

Every rate is also given in the other unit (1 comparison of 256-bit codes reads 32 bytes).
"""

from __future__ import annotations

import platform
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("limits.c")
FLAGS = ["-O2", "-mavx2", "-mpopcnt", "-pthread"]
THREADS = ["1", "2"]
CODE_BYTES = 32
METHODS = {"scalar": "scalar POPCNT", "avx2": "AVX2 nibble LUT (Mula)"}


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0]} ({len(names)} logical CPUs)" if names else platform.machine()


def measure() -> list[list[str]]:
    """Compile and run limits.c; its output lines split into words."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "limits"
        subprocess.run(["gcc", *FLAGS, str(SOURCE), "-o", str(exe)], check=True)
        out = subprocess.run([str(exe), *THREADS], check=True, capture_output=True, text=True)
    return [line.split() for line in out.stdout.splitlines()]


def row(label: str, threads: str, bytes_per_s: float) -> str:
    """A table row with the rate in GB/s and in 256-bit comparisons/s."""
    gb_per_s, g_cmp_per_s = bytes_per_s / 1e9, bytes_per_s / CODE_BYTES / 1e9
    return f"| {label} | {threads} | {gb_per_s:.1f} | {g_cmp_per_s:.2f} |"


def main() -> None:
    """Measure and print the table."""
    results = measure()
    popcount = {w[1]: (float(w[2]), w[3]) for w in results if w[0] == "popcount"}
    if len({matches for _, matches in popcount.values()}) != 1:
        raise SystemExit(f"popcount methods disagree on the match count: {popcount}")
    print(f"CPU: {cpu_model()}; gcc {' '.join(FLAGS)}")
    print()
    print("| limit | threads | GB/s | G comparisons/s (256-bit) |")
    print("|---|---:|---:|---:|")
    for w in results:
        if w[0] == "bandwidth":
            print(row("memory read bandwidth (1 GiB, AVX2 loads)", w[1], float(w[2])))
    for method, (rate, _) in popcount.items():
        print(row(f"XOR + popcount, {METHODS[method]} (16 KiB, L1)", "1", rate * CODE_BYTES))
    best = max(popcount, key=lambda method: popcount[method][0])
    print(row(f"**popcount ceiling** (best: {best})", "1", popcount[best][0] * CODE_BYTES))


if __name__ == "__main__":
    main()
