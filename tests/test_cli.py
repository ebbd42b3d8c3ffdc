"""Tests of the ``hashmatch`` command line: demo, match (against a numpy oracle), info."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import hashmatch as hm
from hashmatch import cli

main = cli.main
Codes = npt.NDArray[np.uint8]
HEADER = ["query_id", "list_id", "distance", "query_hash", "list_hash"]
# An editable install prints its rebuild check on stdout; keep subprocess output clean.
ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}


def hexes(codes: Codes) -> list[str]:
    return [bytes(row).hex() for row in codes]


def write(path: Path, lines: list[str], *, bom: bool = False, newline: str = "\n") -> Path:
    """Write ``lines`` as bytes, so the test controls BOM and line endings exactly."""
    data = "".join(line + newline for line in lines).encode()
    path.write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    return path


def oracle(
    list_codes: Codes, list_ids: list[str], queries: Codes, query_ids: list[str], radius: int
) -> list[list[str]]:
    """Expected CSV rows: brute-force distances, by query, then distance, then list order."""
    d = np.bitwise_count(queries[:, None] ^ list_codes[None]).sum(-1)
    rows = []
    for q in range(len(queries)):
        for i in np.lexsort((np.arange(len(list_codes)), d[q])):
            if d[q, i] <= radius:
                rows.append(
                    [query_ids[q], list_ids[i], str(d[q, i]), hexes(queries[q : q + 1])[0],
                     hexes(list_codes[i : i + 1])[0]]
                )  # fmt: skip
    return rows


def csv_rows(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == HEADER
    return rows[1:]


@pytest.fixture
def corpus() -> tuple[Codes, Codes, list[int]]:
    """A list with duplicates and near neighbours, and queries at exact planted distances.

    Returns the list codes, the query codes and the planted distances (-1: fresh query).
    """
    codes = hm.datasets.random_codes(300, 256, seed=11)
    codes[299] = codes[5]  # equal hashes: ties broken by list order
    codes[10] = hm.datasets.flip_bits(codes[11:12], [4], seed=3)[0]  # two matches, two distances
    planted = [0, 1, 3, 30, 31, 32, 33, 31, 0, 17] * 4
    sources = [5, 7, 11, 20, 21, 22, 23, 24, 25, 26] * 4
    near = hm.datasets.flip_bits(codes[sources], planted, seed=4)
    fresh = hm.datasets.random_codes(8, 256, seed=12)
    return codes, np.concatenate([near, fresh]), planted + [-1] * 8


# ------------------------------------------------------------------------------------- match


def test_match_equals_oracle_with_ids_line_numbers_bom_crlf_comments(
    tmp_path: Path,
    corpus: tuple[Codes, Codes, list[int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes, queries, planted = corpus
    # Small parse chunks and search batches: several of each, so their seams are covered.
    monkeypatch.setattr(cli, "PARSE_CHUNK", 7)
    monkeypatch.setattr(cli, "COMPARISONS_PER_CALL", 1)
    list_ids = [f"TE-{i}" for i in range(len(codes))]
    list_lines = ["# exported list", "hash,id", ""]
    list_lines += [f"  {h} ,  {i} " for h, i in zip(hexes(codes), list_ids, strict=True)]
    lst = write(tmp_path / "list.csv", list_lines, bom=True, newline="\r\n")
    query_lines, query_ids = ["# queries, no ids: the id is the line number", ""], []
    for h in hexes(queries):
        query_lines += [h.upper(), "", "# between"]
        query_ids.append(str(len(query_lines) - 2))
    qry = write(tmp_path / "queries.txt", query_lines)

    assert main(["match", str(lst), str(qry), "--threads", "1", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    rows = csv_rows(out)
    assert rows == oracle(codes, list_ids, queries, query_ids, 31)
    distances = {int(r[2]) for r in rows}
    assert 31 in distances and 32 not in distances  # inclusive threshold
    assert sum(d in range(32) for d in planted) <= len(rows)
    assert f"{len(queries)} queries x {len(codes)} list hashes" in err
    assert f"{len(rows)} matches" in err


def test_match_radius_and_pdq_default(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", hexes(codes))
    qry = write(tmp_path / "q.txt", hexes(queries))
    ids_l = [str(i + 1) for i in range(len(codes))]
    ids_q = [str(i + 1) for i in range(len(queries))]
    for radius in (None, 32, 0):
        extra = [] if radius is None else ["--max-distance", str(radius)]
        assert main(["match", str(lst), str(qry), "--no-progress", *extra]) == 0
        expected = oracle(codes, ids_l, queries, ids_q, 31 if radius is None else radius)
        assert csv_rows(capsys.readouterr().out) == expected
    assert any(row[2] == "32" for row in oracle(codes, ids_l, queries, ids_q, 32))


def test_match_64_bit_phash_scales_default_distance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = hm.datasets.random_codes(200, 64, seed=5)
    queries = hm.datasets.flip_bits(codes[:12], [0, 2, 7, 8, 9, 12] * 2, seed=6)
    lst = write(tmp_path / "list.txt", [f"{h},p{i}" for i, h in enumerate(hexes(codes))])
    qry = write(tmp_path / "q.txt", [f"{h},q{i}" for i, h in enumerate(hexes(queries))])
    assert main(["match", str(lst), str(qry), "--bits", "64", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    ids_l = [f"p{i}" for i in range(len(codes))]
    ids_q = [f"q{i}" for i in range(len(queries))]
    assert csv_rows(out) == oracle(codes, ids_l, queries, ids_q, 8)
    assert "(64 bits, distance <= 8)" in err


def test_match_out_is_atomic_and_keeps_mode(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", hexes(codes))
    qry = write(tmp_path / "q.txt", hexes(queries))
    out = tmp_path / "matches.csv"
    out.write_text("old\n")
    out.chmod(0o640)
    assert main(["match", str(lst), str(qry), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out == ""
    ids_l = [str(i + 1) for i in range(len(codes))]
    ids_q = [str(i + 1) for i in range(len(queries))]
    assert csv_rows(out.read_text()) == oracle(codes, ids_l, queries, ids_q, 31)
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "matches.csv", "q.txt"]


def test_match_interrupted_leaves_no_partial_output(
    tmp_path: Path,
    corpus: tuple[Codes, Codes, list[int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", hexes(codes))
    qry = write(tmp_path / "q.txt", hexes(queries))
    out = tmp_path / "matches.csv"
    out.write_text("old\n")
    monkeypatch.setattr(cli, "COMPARISONS_PER_CALL", 1)  # batches of 16 queries
    search = hm.FlatIndex.range_search
    calls = []

    def interrupt_second_call(self: hm.FlatIndex, *args: object, **kw: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C after a first batch was written
        return search(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(hm.FlatIndex, "range_search", interrupt_second_call)
    assert main(["match", str(lst), str(qry), "--out", str(out), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "matches.csv", "q.txt"]


def bad_run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main``, expect exit 2 with a one-line error and no CSV; return the error."""
    assert main([*args, "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("hashmatch: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    return err


def test_match_bad_hex_names_file_and_line(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", hexes(codes))
    lines = hexes(queries[:5])
    lines[3] = lines[3][:10] + "g" + lines[3][11:]
    qry = write(tmp_path / "q.txt", ["# c", *lines])
    out = tmp_path / "o.csv"
    err = bad_run(["match", str(lst), str(qry), "--out", str(out)], capsys)
    assert f"{qry}:5: invalid character 'g' at position 10" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "q.txt"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("ab" * 8, "expected 32 bytes per hash (256 bits), got 8 (64 bits)"),
        ("ab" * 31 + "a", "expected 64 hex characters (256 bits), got 63"),
        ("ab" * 32 + ",id,extra", "expected 'hash' or 'hash,id', got 3 comma-separated fields"),
        (",id", "expected 64 hex characters (256 bits), got 0"),
        ("hash,id", "invalid character 'h' at position 0"),  # a header only on the first line
    ],
)
def test_match_bad_list_row_names_file_and_line(
    tmp_path: Path,
    corpus: tuple[Codes, Codes, list[int]],
    capsys: pytest.CaptureFixture[str],
    row: str,
    reason: str,
) -> None:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", [*hexes(codes[:3]), row, *hexes(codes[3:])])
    qry = write(tmp_path / "q.txt", hexes(queries))
    err = bad_run(["match", str(lst), str(qry)], capsys)
    assert f"{lst}:4: {reason}" in err


def test_match_reports_the_first_bad_row(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, _, _ = corpus
    lines = [*hexes(codes[:3]), "nothex", "a,b,c", "abc"]
    lst = write(tmp_path / "list.txt", lines)
    err = bad_run(["match", str(lst), str(lst)], capsys)
    assert f"{lst}:4: invalid character 'n' at position 0" in err


def test_match_skip_invalid_counts_and_continues(
    tmp_path: Path,
    corpus: tuple[Codes, Codes, list[int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes, queries, _ = corpus
    monkeypatch.setattr(cli, "PARSE_CHUNK", 4)  # the width comes from the third line
    list_lines = ["zz" * 32, "abc", *hexes(codes[:1]), "0" * 16, *hexes(codes[1:100]), "x,y,z"]
    lst = write(tmp_path / "list.txt", list_lines)
    query_lines = hexes(queries)
    for i in (2, 9, 10):
        query_lines[i] = query_lines[i][:-1] + "?"
    qry = write(tmp_path / "q.txt", query_lines)
    args = ["match", str(lst), str(qry), "--skip-invalid", "--no-progress"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    good_q = [i for i in range(len(queries)) if i not in (2, 9, 10)]
    ids_l = ["3"] + [str(i + 4) for i in range(1, 100)]
    ids_q = [str(i + 1) for i in good_q]
    assert csv_rows(out) == oracle(codes[:100], ids_l, queries[good_q], ids_q, 31)
    assert "skipped 7 invalid rows:" in err
    assert f"{lst}:1: invalid character 'z' at position 0" in err
    assert f"{lst}:2: expected an even number of hex characters" in err
    assert f"{lst}:4: expected 32 bytes per hash (256 bits), got 8 (64 bits)" in err
    assert f"{lst}:104: expected 'hash' or 'hash,id'" in err
    assert f"{qry}:3: invalid character '?' at position 63" in err
    assert "... and 2 more" in err  # five reasons quoted, the rest counted
    assert f"{len(good_q)} queries x 100 list hashes" in err


def test_match_headers_are_recognised_conservatively(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", ["signal_type,signal,status", *hexes(codes)])
    qry = write(tmp_path / "q.txt", ['"PDQ_hash"', *hexes(queries[:4])])
    assert main(["match", str(lst), str(qry), "--no-progress"]) == 0
    ids_l = [str(i + 2) for i in range(len(codes))]
    ids_q = [str(i + 2) for i in range(4)]
    assert csv_rows(capsys.readouterr().out) == oracle(codes, ids_l, queries[:4], ids_q, 31)
    odd = write(tmp_path / "odd.txt", ["hello,1", *hexes(queries[:4])])  # not a header word
    err = bad_run(["match", str(lst), str(odd)], capsys)
    assert f"{odd}:1: expected 64 hex characters (256 bits), got 5" in err


def test_match_width_from_bits_or_first_hash(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", hexes(codes))
    qry = write(tmp_path / "q.txt", hexes(queries))
    err = bad_run(["match", str(lst), str(qry), "--bits", "64"], capsys)
    assert f"{lst}:1: expected 8 bytes per hash (64 bits), got 32 (256 bits)" in err
    phash = write(tmp_path / "p.txt", hexes(hm.datasets.random_codes(3, 64)))
    err = bad_run(["match", str(phash), str(qry)], capsys)
    assert f"{qry}:1: expected 8 bytes per hash (64 bits), got 32 (256 bits)" in err
    err = bad_run(["match", str(lst), str(qry), "--max-distance", "257"], capsys)
    assert "--max-distance: expected an integer in [0, 256], got 257" in err


def test_match_empty_files(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, _, _ = corpus
    lst = write(tmp_path / "list.txt", hexes(codes))
    empty = write(tmp_path / "empty.txt", ["# nothing", ""])
    assert main(["match", str(lst), str(empty), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert csv_rows(out) == [] and "0 queries" in err
    err = bad_run(["match", str(empty), str(lst)], capsys)
    assert f"{empty}: no valid hash found to take the hash width from; pass --bits" in err
    assert main(["match", str(empty), str(lst), "--bits", "256", "--no-progress"]) == 0
    assert csv_rows(capsys.readouterr().out) == []


def test_match_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.txt"
    err = bad_run(["match", str(missing), str(missing)], capsys)
    assert f"{missing}: No such file or directory" in err
    lst = write(tmp_path / "list.txt", ["00" * 32])
    err = bad_run(["match", str(lst), str(lst), "--out", str(tmp_path / "no" / "o.csv")], capsys)
    assert f"{tmp_path / 'no' / 'o.csv'}: No such file or directory" in err


def test_match_stdout_closed_early_exits_quietly(tmp_path: Path) -> None:
    codes = hm.datasets.random_codes(3000, 256, seed=8)
    lst = write(tmp_path / "list.txt", hexes(codes))  # ~450 kB of CSV: more than a pipe holds
    cmd = [sys.executable, "-m", "hashmatch.cli", "match", str(lst), str(lst), "--no-progress"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"query_id,list_id,distance,query_hash,list_hash\n"
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "Exception ignored" not in err


# -------------------------------------------------------------------------------------- demo

DEMO_SMALL = ["demo", "--n", "20000", "--queries", "200", "--no-progress"]


def report_line(out: str, label: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(label))


def test_demo_small_finds_every_planted_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DEMO_SMALL) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no progress bars
    assert 15 <= len(out.splitlines()) <= 25
    assert "(100/100 planted pairs found" in report_line(out, "recall")
    assert report_line(out, "recall").split()[1] == "100.00%"
    assert report_line(out, "corpus").split()[1] == "20,000"
    assert report_line(out, "matches") == "matches     100 (100 planted, 0 other)"
    assert report_line(out, "no match") == "no match    100 queries (100 fresh, 0 planted)"
    assert report_line(out, "kNN k=10").endswith("nearest <= planted distance 100/100")
    assert report_line(out, "kernel").split()[1] == hm.cpu_features()["kernel"]
    assert report_line(out, "result") == "result      PASS"
    # Each example is a planted pair: the printed hashes are at the printed distance.
    lines = out.splitlines()
    start = lines.index(report_line(out, "examples")) + 1
    for query_line, db_line in zip(lines[start:-1:2], lines[start + 1 : -1 : 2], strict=True):
        distance = int(db_line.split()[-1])
        assert hm.hamming(query_line.split()[-1], db_line.split()[-3]) == distance


def test_demo_reports_failure_when_a_pair_is_missed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for cls in (hm.FlatIndex, hm.MIHIndex):  # whichever the demo's cost model picks
        search = cls.range_search

        def off_by_one(
            self: hm.FlatIndex, queries: object, max_distance: int, *, _search=search, **kw: object
        ) -> object:
            return _search(self, queries, max_distance - 1, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(cls, "range_search", off_by_one)
    assert main([*DEMO_SMALL, "--max-distance", "2"]) == 1
    out = capsys.readouterr().out
    assert report_line(out, "recall").split()[1] != "100.00%"
    assert report_line(out, "result") == "result      FAIL"


def run(args: list[str], exe: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = (exe or [sys.executable, "-m", "hashmatch.cli"]) + args
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)


def test_demo_as_module_subprocess() -> None:
    proc = run(["demo", "--n", "5000", "--queries", "100", "--bits", "64", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert report_line(proc.stdout, "recall").split()[1] == "100.00%"
    assert "demo: exact range search, distance <= 8" in proc.stdout
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------- info, usage, version


def test_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"hashmatch {hm.__version__}"
    assert report_line(out, "kernel ").split()[1] == hm.cpu_features()["kernel"]
    assert "available_kernels" in out and "threads" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--version"], 0, f"hashmatch {hm.__version__}"),
        ([], 2, "required: COMMAND"),
        (["demo", "--n", "0"], 2, "argument --n: expected an integer >= 1, got 0"),
        (["demo", "--threads", "two"], 2, "argument --threads: expected an integer, got 'two'"),
        (["match", "only-one-file"], 2, "required: QUERIES"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_usage(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(args) == code
    out, err = capsys.readouterr()
    assert message in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--bits", "64", "--max-distance", "65"],
            "--max-distance: expected an integer in [0, 64], got 65",
        ),
        (["--max-distance", "-1"], "--max-distance: expected an integer in [0, 256], got -1"),
        (["--bits", "12"], "--bits: expected a multiple of 8 in [8, 4096], got 12"),
        (["--threads", "2000"], "threads: expected None or an integer in [1, 1024], got 2000"),
    ],
)
def test_bad_demo_argument_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    err = bad_run(["demo", "--n", "10", *args], capsys)
    assert err == f"hashmatch: error: {message}\n"


def console_script() -> list[str]:
    path = shutil.which("hashmatch")
    if path is None:
        pytest.skip("the hashmatch console script is not on PATH")
    return [path]


@pytest.mark.parametrize("exe", [console_script, lambda: [sys.executable, "-m", "hashmatch.cli"]])
def test_version_from_the_shell(exe: Callable[[], list[str]]) -> None:
    proc = run(["--version"], exe())
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"hashmatch {hm.__version__}"
