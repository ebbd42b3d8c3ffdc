"""Tests of ``hashmatch dedup FILE`` against numpy and scipy oracles."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse
import scipy.sparse.csgraph
from cli_helpers import (
    ENV,
    MODULE,
    Codes,
    Terminal,
    bad_run,
    hexes,
    pairwise,
    read_csv,
    report_line,
    run,
    write,
    write_csv,
)
from hashmatch.cli import dedup as dedup_command
from hashmatch.cli import main
from oracle import distances

import hashmatch as hm

PAIRS_HEADER = ["id_a", "id_b", "distance"]
CLUSTERS_HEADER = ["id", "cluster", "size", "representative"]


@pytest.fixture
def clustered() -> Codes:
    """A small collection of near-duplicate clusters, with pairs at the edges of radius 31:
    an exact copy, pairs at 31 and 32, and a chain 6-7-8 whose ends are more than 31 apart."""
    codes = hm.datasets.clustered_codes(300, 256, duplicates=0.4, max_flips=40, seed=7)
    codes[1] = codes[0]
    codes[3] = hm.datasets.flip_bits(codes[2:3], [31], seed=1)[0]
    codes[5] = hm.datasets.flip_bits(codes[4:5], [32], seed=2)[0]
    codes[7] = hm.datasets.flip_bits(codes[6:7], [20], seed=3)[0]
    codes[8] = hm.datasets.flip_bits(codes[7:8], [20], seed=4)[0]
    assert hm.hamming(codes[6], codes[8]) > 31
    return codes


def pair_oracle(codes: Codes, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute force: rows ``i < j`` within ``radius``, sorted by (i, j), and their distances."""
    d = distances(codes, codes)
    i, j = np.nonzero(np.triu(d <= radius, k=1))  # row-major: sorted by (i, j)
    return i, j, d[i, j]


def component_oracle(codes: Codes, radius: int) -> npt.NDArray[np.int32]:
    """Cluster of every row: scipy's connected components of the oracle's pairs graph."""
    i, j, _ = pair_oracle(codes, radius)
    n = len(codes)
    graph = scipy.sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return labels


def expected_pairs(codes: Codes, ids: list[str], radius: int) -> list[list[str]]:
    i, j, d = pair_oracle(codes, radius)
    return [[ids[a], ids[b], str(c)] for a, b, c in zip(i, j, d, strict=True)]


def check_clusters(
    rows: list[list[str]],
    codes: Codes,
    ids: list[str],
    radius: int,
    qualities: list[int] | None = None,
    only_duplicates: bool = False,
) -> None:
    """The clusters CSV against scipy's components of the oracle pairs: the same partition,
    numbered in order of first row, grouped by cluster then in file order, true sizes, and one
    representative per cluster: the medoid (exact) or the member of highest quality."""
    n = len(codes)
    truth = component_oracle(codes, radius)
    sizes = np.bincount(truth)
    row_of = {id_: row for row, id_ in enumerate(ids)}
    listed = [row_of[r[0]] for r in rows]
    expected_rows = [r for r in range(n) if not only_duplicates or sizes[truth[r]] > 1]
    assert sorted(listed) == expected_rows  # each hash once
    labels = np.full(n, -1)
    labels[listed] = [int(r[1]) for r in rows]
    assert listed == sorted(listed, key=lambda r: (labels[r], r))  # by cluster, then file
    # The same partition as scipy, numbered 0, 1, ... by first row (of all hashes).
    kept = np.array(expected_rows, dtype=np.int64)
    assert len(set(zip(labels[kept], truth[kept], strict=True))) == len(set(truth[kept]))
    assert len(set(labels[kept])) == len(set(truth[kept]))
    _, first = np.unique(truth, return_index=True)
    numbering = {int(truth[f]): k for k, f in enumerate(sorted(first))}
    assert [int(labels[r]) for r in kept] == [numbering[int(truth[r])] for r in kept]
    d = distances(codes, codes)
    for r, row in zip(listed, rows, strict=True):
        assert int(row[2]) == sizes[truth[r]]
        members = np.flatnonzero(truth == truth[r])
        if qualities is None:  # medoid, ties to the lowest row
            best = members[np.argmin(d[np.ix_(members, members)].sum(1))]
        else:  # highest quality (-1: missing), ties to the lowest row
            best = members[np.argmax(np.array(qualities)[members])]
        assert row[3] == ("1" if r == best else "0"), (r, members, best)


def dedup(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Run ``hashmatch dedup``, expect success, return stdout and stderr."""
    assert main(["dedup", *args, "--no-progress"]) == 0
    return capsys.readouterr()


def dedup_inputs(tmp_path: Path, codes: Codes, kind: str) -> tuple[Path, list[str]]:
    """A file of ``codes`` in one of several layouts, and the id each row gets in the output."""
    rows = list(range(len(codes)))
    hx = hexes(codes)
    if kind == "hex":  # no ids: 0-based row numbers; comments and blank lines are not rows
        path = write(tmp_path / "h.txt", ["# exported", "", *hx[:10], "", *hx[10:]])
        return path, [str(r) for r in rows]
    if kind == "hex-typed":  # python-threatexchange's 'pdq <hash>' lines, upper case
        return write(tmp_path / "h.te", [f"pdq {h.upper()}" for h in hx]), [str(r) for r in rows]
    if kind == "csv-id":  # integer ids, not in row order
        ids = [str(id_) for id_ in np.random.default_rng(1).permutation(10**6)[: len(codes)]]
        path = write_csv(tmp_path / "h.csv", [["hash", "id"], *zip(hx, ids, strict=True)])
        return path, ids
    if kind == "csv-key-gz":  # text keys that need quoting, hash column second, gzipped
        keys = [f'img {r}, "v2".jpg' if r % 3 else f"img{r}.jpg" for r in rows]
        table = [["content_id", "PDQ Hash"], *zip(keys, hx, strict=True)]
        return write_csv(tmp_path / "h.csv.gz", table), keys
    if kind == "tsv-headerless":  # the second column of a file without header is the key
        keys = [f"k{r}" for r in rows]
        return write_csv(tmp_path / "h.tsv", list(zip(hx, keys, strict=True)), "\t"), keys
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["hex", "hex-typed", "csv-id", "csv-key-gz", "tsv-headerless"])
def test_dedup_pairs_and_clusters_equal_oracle(
    tmp_path: Path, clustered: Codes, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path, ids = dedup_inputs(tmp_path, clustered, kind)
    pairs, clusters = tmp_path / "pairs.csv", tmp_path / "clusters.csv"
    out, err = dedup([str(path), "--out", str(pairs), "--clusters", str(clusters)], capsys)
    assert out == ""
    expected = expected_pairs(clustered, ids, 31)
    assert read_csv(pairs, PAIRS_HEADER) == expected
    assert [ids[0], ids[1], "0"] in expected and [ids[2], ids[3], "31"] in expected
    assert not any(row[:2] == [ids[4], ids[5]] for row in expected)  # 32 apart
    check_clusters(read_csv(clusters, CLUSTERS_HEADER), clustered, ids, 31)
    assert f"hashmatch: 300 hashes (256 bits, distance <= 31): {len(expected)} pairs;" in err


def test_dedup_threshold_is_inclusive_and_chains_link(
    tmp_path: Path, clustered: Codes, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = dedup_inputs(tmp_path, clustered, "hex")
    for radius in (31, 32, 0, 20):
        out, _ = dedup([str(path), "--max-distance", str(radius), "--out", "-"], capsys)
        rows = read_csv(out, PAIRS_HEADER)
        assert rows == expected_pairs(clustered, ids, radius)
        assert (["2", "3", "31"] in rows) == (radius >= 31)
        assert (["4", "5", "32"] in rows) == (radius >= 32)
        assert ["0", "1", "0"] in rows
    out, _ = dedup([str(path), "--max-distance", "20", "--clusters", "-"], capsys)
    rows = read_csv(out, CLUSTERS_HEADER)
    cluster_of = {r[0]: r[1] for r in rows}
    assert cluster_of["6"] == cluster_of["7"] == cluster_of["8"]  # 6 and 8 are 40 apart
    check_clusters(rows, clustered, ids, 20)


def test_dedup_representative_by_quality(
    tmp_path: Path, clustered: Codes, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(5)
    qualities = rng.integers(0, 4, len(clustered)) * 30  # many ties: lowest row wins them
    qualities[rng.random(len(clustered)) < 0.2] = -1  # missing: ranks last
    keys = [f"photo{r}.jpg" for r in range(len(clustered))]
    table = [["hash", "quality", "filename"]]  # pdq-photo-hasher's columns
    for h, q, k in zip(hexes(clustered), qualities.tolist(), keys, strict=True):
        table.append([h, "" if q < 0 else str(q), k])
    path = write_csv(tmp_path / "photos.csv", table)
    out, _ = dedup([str(path), "--clusters", "-"], capsys)
    check_clusters(read_csv(out, CLUSTERS_HEADER), clustered, keys, 31, qualities.tolist())
    out, _ = dedup([str(path), "--clusters", "-", "--representative", "medoid"], capsys)
    check_clusters(read_csv(out, CLUSTERS_HEADER), clustered, keys, 31)
    out, _ = dedup([str(path)], capsys)
    assert "quality: column 'quality'" in out and "representative: highest quality" in out


def test_dedup_only_duplicates(
    tmp_path: Path, clustered: Codes, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = dedup_inputs(tmp_path, clustered, "csv-id")
    out, _ = dedup([str(path), "--clusters", "-", "--only-duplicates"], capsys)
    rows = read_csv(out, CLUSTERS_HEADER)
    check_clusters(rows, clustered, ids, 31, only_duplicates=True)
    assert 0 < len(rows) < len(clustered) and min(int(r[2]) for r in rows) == 2


def test_dedup_64_bit_default_distance_is_the_librarys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = hm.datasets.clustered_codes(300, 64, max_flips=14, seed=3)
    codes[1] = hm.datasets.flip_bits(codes[0:1], [10], seed=1)[0]
    codes[3] = hm.datasets.flip_bits(codes[2:3], [11], seed=1)[0]
    path = write(tmp_path / "phash.txt", hexes(codes))
    default = hm.indexes.default_max_distance(64)
    assert default == 10
    ids = [str(r) for r in range(len(codes))]
    out, err = dedup([str(path), "--out", "-"], capsys)
    rows = read_csv(out, PAIRS_HEADER)
    assert rows == expected_pairs(codes, ids, default)
    assert ["0", "1", "10"] in rows and ["2", "3", "11"] not in rows
    assert "(64 bits, distance <= 10)" in err


def test_dedup_summary_reports_real_numbers(
    tmp_path: Path, clustered: Codes, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = dedup_inputs(tmp_path, clustered, "csv-id")
    started = time.perf_counter()
    out, err = dedup([str(path), "--threads", "1"], capsys)
    seconds = time.perf_counter() - started
    assert err == ""
    i, j, d = pair_oracle(clustered, 31)
    sizes = np.bincount(component_oracle(clustered, 31))
    lines = out.splitlines()
    assert lines[0].endswith("dedup: pairs within Hamming distance 31 (inclusive), exact")
    assert report_line(out, "input") == (
        f"input       {path}: 300 256-bit hashes (csv; ids: column 'id')"
    )
    assert report_line(out, "pairs ") == f"pairs       {len(i):,}"
    assert report_line(out, "clusters") == (
        f"clusters    {(sizes > 1).sum():,} with duplicates, holding {sizes[sizes > 1].sum():,}"
        f" hashes; largest {sizes.max()}; {len(sizes):,} clusters in all"
    )
    assert report_line(out, "duplicates").startswith(
        f"duplicates  {len(clustered) - len(sizes)} hashes to drop to keep one per cluster"
    )
    plan = hm.plan_join(len(clustered), 256, 31)
    assert report_line(out, "method").startswith(f"method      {plan.method}")
    assert " on 1 thread (cost model, 1 thread: multi-index " in report_line(out, "method")
    timing = re.fullmatch(
        r"time        read ([0-9.]+) (ms|s), join ([0-9.]+) (ms|s), cluster ([0-9.]+) (ms|s)",
        report_line(out, "time"),
    )
    assert timing is not None
    values = [float(v) * (1e-3 if unit == "ms" else 1) for v, unit in pairwise(timing.groups())]
    assert values[1] > 0 and sum(values) <= seconds  # measured, within the command's run
    start = lines.index("first 5 pairs (id_a, id_b, distance)") + 1
    shown = [line.split() for line in lines[start:]]
    assert shown == [[ids[a], ids[b], str(c)] for a, b, c in zip(i[:5], j[:5], d[:5], strict=True)]


def test_dedup_skip_invalid(
    tmp_path: Path, clustered: Codes, capsys: pytest.CaptureFixture[str]
) -> None:
    hx = hexes(clustered)
    lines = [hx[0], "zz" * 32, *hx[1:50], "ab" * 8, *hx[50:], "abc"]
    path = write(tmp_path / "h.txt", lines)
    out, err = dedup([str(path), "--skip-invalid", "--out", "-"], capsys)
    ids = [str(r) for r in range(len(clustered))]  # rows among the hashes read
    assert read_csv(out, PAIRS_HEADER) == expected_pairs(clustered, ids, 31)
    assert "hashmatch: skipped 3 invalid rows:" in err
    assert f"{path}:2: invalid character 'z' at position 0" in err
    assert f"{path}:52: expected 64 hex characters (256 bits, like line 1), got 16" in err
    assert f"{path}:{len(lines)}: " in err
    assert "300 hashes (256 bits" in err


def test_dedup_key_column_with_repeats_falls_back_to_rows(
    tmp_path: Path, clustered: Codes, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [f"k{r % 100}" for r in range(len(clustered))]  # repeated: not an identifier
    path = write_csv(
        tmp_path / "h.csv", [["hash", "key"], *zip(hexes(clustered), keys, strict=True)]
    )
    out, err = dedup([str(path), "--out", "-"], capsys)
    rows = [str(r) for r in range(len(clustered))]
    assert read_csv(out, PAIRS_HEADER) == expected_pairs(clustered, rows, 31)
    assert "ids: row numbers (column 'key' has empty or repeated values)" in err


def test_dedup_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "empty.csv", ["hash,id"])
    out, _ = dedup([str(path), "--bits", "256", "--out", "-"], capsys)
    assert read_csv(out, PAIRS_HEADER) == []
    out, _ = dedup([str(path), "--bits", "256"], capsys)
    assert report_line(out, "pairs ") == "pairs       0" and "first" not in out
    err = bad_run(["dedup", str(path)], capsys)
    assert f"{path}: expected at least one hash" in err
    assert "pass --bits to read a file that may be empty" in err  # was: bits=, Python's
    assert "bits=" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-distance", "257"], "--max-distance: expected an integer in [0, 256], got 257"),
        (["--max-distance", "-1"], "--max-distance: expected an integer in [0, 256], got -1"),
        (["--bits", "64", "--max-distance", "65"], "--max-distance: expected an integer in"),
        (["--bits", "12"], "--bits: expected a multiple of 8 in [8, 4096], got 12"),
        (["--bits", "64"], "{f}:1: expected 16 hex characters (64 bits, from --bits 64), got 64"),
        (["--representative", "quality"], "--representative quality: {f} has no quality column"),
        (["--out", "-", "--clusters", "-"], "--out and --clusters: expected two destinations"),
        (["--out", "{f}"], "--out: '{f}' is the input file; choose another"),
        (["--out", "{d}/no/pairs.csv"], "{d}/no/pairs.csv: No such file or directory"),
        (["--threads", "2000"], "threads: expected None or an integer in [1, 1024], got 2000"),
        (["--out", "-", "--only-duplicates"], "--only-duplicates: applies to --clusters"),
    ],
)
def test_dedup_bad_arguments(
    tmp_path: Path,
    clustered: Codes,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    path = write(tmp_path / "h.txt", hexes(clustered))
    args = [a.format(f=path, d=tmp_path) for a in args]
    outputs = ["--out", str(tmp_path / "p.csv"), "--clusters", str(tmp_path / "c.csv")]
    if "--out" in args:
        outputs = []
    err = bad_run(["dedup", str(path), *outputs, *args], capsys)
    assert message.format(f=path, d=tmp_path) in err
    assert [p.name for p in tmp_path.iterdir()] == ["h.txt"]  # no output, no temporary file


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("ab" * 8, "expected 64 hex characters (256 bits, like line 2), got 16 (64 bits)"),
        ("ab" * 5 + "g" + "ab" * 26 + "a", "invalid character 'g' at position 10 of the hash"),
        ("ab" * 31 + "a", "expected 64 hex characters (256 bits, like line 2), got 63"),
    ],
)
def test_dedup_bad_row_names_file_and_line(
    tmp_path: Path,
    clustered: Codes,
    capsys: pytest.CaptureFixture[str],
    row: str,
    reason: str,
) -> None:
    path = write(tmp_path / "h.txt", ["# list", *hexes(clustered[:40]), row, *hexes(clustered)])
    pairs, clusters = tmp_path / "p.csv", tmp_path / "c.csv"
    pairs.write_text("old\n")
    err = bad_run(["dedup", str(path), "--out", str(pairs), "--clusters", str(clusters)], capsys)
    assert f"{path}:42: {reason}" in err
    assert pairs.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.txt", "p.csv"]


def test_dedup_missing_file_and_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.csv"
    err = bad_run(["dedup", str(missing), "--out", str(tmp_path / "p.csv")], capsys)
    assert err == f"hashmatch: error: {missing}: No such file or directory\n"
    assert list(tmp_path.iterdir()) == []


def test_dedup_reads_standard_input(tmp_path: Path, clustered: Codes) -> None:
    out = tmp_path / "pairs.csv"
    proc = subprocess.run(
        [*MODULE, "dedup", "-", "--out", str(out), "--no-progress"],
        input="\n".join(hexes(clustered)) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    pairs = hm.find_duplicates(clustered, 31)
    rows = out.read_text().splitlines()
    assert rows[0] == "id_a,id_b,distance"
    assert rows[1:] == [f"{i},{j},{d}" for i, j, d in zip(*pairs, strict=True)]


def test_dedup_interrupted_leaves_no_partial_output(
    tmp_path: Path,
    clustered: Codes,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path / "h.txt", hexes(clustered))
    pairs, clusters = tmp_path / "p.csv", tmp_path / "c.csv"
    pairs.write_text("old pairs\n")
    write_clusters = dedup_command._write_clusters

    def interrupt_after_writing(*args: Any) -> None:
        write_clusters(*args)  # both files fully written, not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(dedup_command, "_write_clusters", interrupt_after_writing)
    args = ["dedup", str(path), "--out", str(pairs), "--clusters", str(clusters), "--no-progress"]
    assert main(args) == 130
    out, err = capsys.readouterr()
    assert out == "" and err == "hashmatch: interrupted\n"
    assert pairs.read_text() == "old pairs\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.txt", "p.csv"]


def test_dedup_ctrl_c_in_a_real_process(tmp_path: Path) -> None:
    """SIGINT during a long join: exit 130 quickly, one line on stderr, no output file."""
    codes = hm.datasets.random_codes(100_000, 256, seed=2)  # ~10 s of brute force at 100
    path = write(tmp_path / "h.txt", hexes(codes))
    out = tmp_path / "pairs.csv"
    cmd = [*MODULE, "dedup", str(path), "--out", str(out)]
    cmd += ["--max-distance", "100", "--threads", "1", "--no-progress"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV) as proc:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".pairs.csv.") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline  # opened: in main
            time.sleep(0.01)
        time.sleep(0.5)  # reading or joining
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert time.monotonic() - started < 5
    assert stdout == b"" and stderr == b"hashmatch: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.txt"]


def test_dedup_subprocess_to_stdout(tmp_path: Path, clustered: Codes) -> None:
    path, ids = dedup_inputs(tmp_path, clustered, "csv-key-gz")
    proc = run(["dedup", str(path), "--out", "-", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert read_csv(proc.stdout, PAIRS_HEADER) == expected_pairs(clustered, ids, 31)
    assert "Traceback" not in proc.stderr and "pairs;" in proc.stderr


@pytest.mark.parametrize(("stderr", "flags", "shown"), [
    (Terminal, [], True), (Terminal, ["--no-progress"], False), (io.StringIO, [], False)
])  # fmt: skip
def test_dedup_progress_bars_only_on_a_terminal(
    tmp_path: Path,
    clustered: Codes,
    monkeypatch: pytest.MonkeyPatch,
    stderr: type[io.StringIO],
    flags: list[str],
    shown: bool,
) -> None:
    path = write(tmp_path / "h.txt", hexes(clustered))
    err = stderr()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["dedup", str(path), "--out", str(tmp_path / "p.csv"), *flags]) == 0
    text = err.getvalue()
    assert ("finding duplicates" in text) == shown  # the join's bar
    assert ("h.txt" in text) == shown  # the reader's bar
    assert text.rstrip().splitlines()[-1].startswith("hashmatch: 300 hashes")


def test_dedup_help_documents_the_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dedup", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in (
        "--out PAIRS.csv",
        "'id_a,id_b,distance'",
        "'id,cluster,size,representative'",
        "--only-duplicates",
        "--skip-invalid",
        "0-based row number",
        "31 for 256-bit PDQ, 10 for 64-bit pHash",
    ):
        assert phrase in text
    assert main(["--help"]) == 0
    assert "dedup" in capsys.readouterr().out


def test_dedup_outputs_to_one_file_by_two_spellings_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "in.txt", hexes(hm.datasets.random_codes(5, 64)))
    out = tmp_path / "a.csv"
    err = bad_run(
        ["dedup", str(path), "--out", str(out), "--clusters", f"{tmp_path}/./a.csv"], capsys
    )
    assert "--out and --clusters: expected two destinations" in err
    assert not out.exists()
