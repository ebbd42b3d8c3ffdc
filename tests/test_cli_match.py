"""Tests of ``hashmatch match LIST QUERIES`` against a numpy oracle."""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ENV, MODULE, Codes, bad_run, hexes, write, write_csv
from hashmatch.cli import common, main

import hashmatch as hm

HEADER = ["query_id", "list_id", "distance", "query_hash", "list_hash"]


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


@dataclass
class Plain:
    """The corpus as two plain-hex files; ids are line numbers."""

    codes: Codes
    queries: Codes
    lst: Path
    qry: Path

    @property
    def ids_l(self) -> list[str]:
        return [str(i + 1) for i in range(len(self.codes))]

    @property
    def ids_q(self) -> list[str]:
        return [str(i + 1) for i in range(len(self.queries))]

    def expected(self, radius: int = 31) -> list[list[str]]:
        return oracle(self.codes, self.ids_l, self.queries, self.ids_q, radius)


@pytest.fixture
def plain(tmp_path: Path, corpus: tuple[Codes, Codes, list[int]]) -> Plain:
    codes, queries, _ = corpus
    lst = write(tmp_path / "list.txt", hexes(codes))
    qry = write(tmp_path / "q.txt", hexes(queries))
    return Plain(codes, queries, lst, qry)


# ------------------------------------------------------------------------------------- match


def test_match_equals_oracle_with_ids_line_numbers_bom_crlf_comments(
    tmp_path: Path,
    corpus: tuple[Codes, Codes, list[int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes, queries, planted = corpus
    # Small parse chunks and search batches: several of each, so their seams are covered.
    monkeypatch.setattr(common, "READ_CHUNK", 7)
    monkeypatch.setattr(common, "COMPARISONS_PER_CALL", 1)
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


def test_match_radius_and_pdq_default(plain: Plain, capsys: pytest.CaptureFixture[str]) -> None:
    for radius in (None, 32, 0):
        extra = [] if radius is None else ["--max-distance", str(radius)]
        assert main(["match", str(plain.lst), str(plain.qry), "--no-progress", *extra]) == 0
        expected = plain.expected(31 if radius is None else radius)
        assert csv_rows(capsys.readouterr().out) == expected
    assert any(row[2] == "32" for row in plain.expected(32))


def test_match_64_bit_phash_uses_the_library_default_distance(
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
    assert csv_rows(out) == oracle(codes, ids_l, queries, ids_q, 10)
    assert "(64 bits, distance <= 10)" in err


def test_match_out_is_atomic_and_keeps_mode(
    tmp_path: Path, plain: Plain, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "matches.csv"
    out.write_text("old\n")
    out.chmod(0o640)
    assert main(["match", str(plain.lst), str(plain.qry), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out == ""
    assert csv_rows(out.read_text()) == plain.expected()
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "matches.csv", "q.txt"]


def test_match_interrupted_leaves_no_partial_output(
    tmp_path: Path,
    plain: Plain,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lst, qry = plain.lst, plain.qry
    out = tmp_path / "matches.csv"
    out.write_text("old\n")
    monkeypatch.setattr(common, "COMPARISONS_PER_CALL", 1)  # batches of 16 queries
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
        ("ab" * 8, "expected 64 hex characters (256 bits, like line 1), got 16 (64 bits)"),
        ("ab" * 31 + "a", "expected 64 hex characters (256 bits, like line 1), got 63"),
        ("ab" * 32 + ",id,extra", "invalid character ',' at position 64 of the hash"),
        (",id", "invalid character ',' at position 0"),
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
    monkeypatch.setattr(common, "READ_CHUNK", 4)  # the width comes from the third line
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
    assert f"{lst}:4: expected 64 hex characters (256 bits, like line 3), got 16 (64 bits)" in err
    assert f"{lst}:104: invalid character 'x' at position 0" in err
    assert f"{qry}:3: invalid character '?' at position 63" in err
    assert "... and 2 more" in err  # five reasons quoted, the rest counted
    assert f"{len(good_q)} queries x 100 list hashes" in err


def test_match_headers_are_recognised_conservatively(
    tmp_path: Path, corpus: tuple[Codes, Codes, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, queries, _ = corpus
    rows = [f"pdq,{h},active" for h in hexes(codes)]
    lst = write(tmp_path / "list.txt", ["signal_type,signal,status", *rows])
    qry = write(tmp_path / "q.txt", ['"PDQ_hash"', *hexes(queries[:4])])
    assert main(["match", str(lst), str(qry), "--no-progress"]) == 0
    ids_l = [str(i + 2) for i in range(len(codes))]
    ids_q = [str(i + 2) for i in range(4)]
    assert csv_rows(capsys.readouterr().out) == oracle(codes, ids_l, queries[:4], ids_q, 31)
    odd = write(tmp_path / "odd.txt", ["hello,1", *hexes(queries[:4])])  # not a header word
    err = bad_run(["match", str(lst), str(odd)], capsys)
    assert f"{odd}:1: invalid character 'h' at position 0" in err


def test_match_width_from_bits_or_first_hash(
    tmp_path: Path, plain: Plain, capsys: pytest.CaptureFixture[str]
) -> None:
    lst, qry = plain.lst, plain.qry
    err = bad_run(["match", str(lst), str(qry), "--bits", "64"], capsys)
    assert (
        f"{lst}:1: expected 16 hex characters (64 bits, from --bits 64), got 64 (256 bits)" in err
    )
    phash = write(tmp_path / "p.txt", hexes(hm.datasets.random_codes(3, 64)))
    err = bad_run(["match", str(phash), str(qry)], capsys)
    assert f"{qry}:1: expected 16 hex characters (64 bits, like {phash}), got 64 (256 bits)" in err
    err = bad_run(["match", str(lst), str(qry), "--max-distance", "257"], capsys)
    assert "--max-distance: expected an integer in [0, 256], got 257" in err


def test_match_file_without_hashes_is_an_error(
    tmp_path: Path, plain: Plain, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: 0 queries, 0 matches and exit 0 for empty QUERIES (and for LIST with --bits), a
    silent miss; now an error naming the file, --bits or not."""
    lst = plain.lst
    empty = write(tmp_path / "empty.txt", ["# nothing", ""])
    for args in (
        [str(lst), str(empty)],
        [str(lst), str(empty), "--bits", "256"],
        [str(empty), str(lst), "--bits", "256"],
    ):
        err = bad_run(["match", *args], capsys)
        assert f"{empty}: expected at least one hash" in err and "the file has no data rows" in err
    err = bad_run(["match", str(empty), str(lst)], capsys)
    assert f"{empty}: expected at least one hash to take the hash width from" in err
    assert "pass --bits" in err and "bits=" not in err
    invalid = write(tmp_path / "invalid.txt", ["zz" * 32, "not a hash"])
    err = bad_run(["match", str(lst), str(invalid), "--skip-invalid"], capsys)
    assert f"{invalid}: expected at least one hash" in err and "every row was invalid" in err


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
    cmd = [*MODULE, "match", str(lst), str(lst), "--no-progress"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"query_id,list_id,distance,query_hash,list_hash\n"
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "Exception ignored" not in err


# ------------------------------------------------------------------ every format the reader reads


def as_kind(tmp_path: Path, name: str, codes: Codes, kind: str) -> tuple[Path, list[str]]:
    """``codes`` as a file of one layout, and the id ``match`` gives each row."""
    hx = hexes(codes)
    lines = [str(i + 1) for i in range(len(codes))]
    if kind == "threatexchange-no-header":  # signal type, signal value, then an id
        table = [["pdq", h, f"te{i}", "spam"] for i, h in enumerate(hx)]
        return write_csv(tmp_path / f"{name}.csv", table), [f"te{i}" for i in range(len(hx))]
    if kind == "threatexchange-typed-lines":  # 'pdq <hash>', upper case
        return write(tmp_path / f"{name}.txt", [f"pdq {h.upper()}" for h in hx]), lines
    if kind == "dataset-csv":  # threatexchange dataset -P --csv
        table = [["collab", "signal_type", "signal_str", "category", "tags"]]
        table += [["Sample Data", "pdq", h, "POSITIVE_CLASS", "a b"] for h in hx]
        return write_csv(tmp_path / f"{name}.csv", table), [str(i + 2) for i in range(len(hx))]
    if kind == "hma-bank-tsv-gz":  # HMA bank columns, tab-separated, gzipped
        table = [["signal_type", "signal_value", "signal_id", "bank_member_tags"]]
        table += [["pdq", h, f"s{i}", "x"] for i, h in enumerate(hx)]
        path = write_csv(tmp_path / f"{name}.tsv.gz", table, "\t")
        return path, [f"s{i}" for i in range(len(hx))]
    if kind == "te-ui-integer-ids":  # ThreatExchange UI columns, integer indicator ids
        table = [["td_raw_indicator", "indicator_id", "td_subjective_tags"]]
        table += [[h, str(1000 + i), "a;b"] for i, h in enumerate(hx)]
        return write_csv(tmp_path / f"{name}.csv", table), [str(1000 + i) for i in range(len(hx))]
    if kind == "headerless-tsv":
        table = [[h, f"k{i}"] for i, h in enumerate(hx)]
        return write_csv(tmp_path / f"{name}.tab", table, "\t"), [f"k{i}" for i in range(len(hx))]
    raise AssertionError(kind)


KINDS = [
    "threatexchange-no-header",
    "threatexchange-typed-lines",
    "dataset-csv",
    "hma-bank-tsv-gz",
    "te-ui-integer-ids",
    "headerless-tsv",
]


@pytest.mark.parametrize("kind", KINDS)
def test_match_reads_every_format_of_the_reader(
    tmp_path: Path,
    corpus: tuple[Codes, Codes, list[int]],
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    """Was: only 'hex' and 'hex,id' lines; a python-threatexchange CSV without header
    (pdq,<hash>,...) read as header lines, then '0 queries ... 0 matches', exit 0."""
    codes, queries, _ = corpus
    lst, ids_l = as_kind(tmp_path, "list", codes, kind)
    qry, ids_q = as_kind(tmp_path, "queries", queries, kind)
    assert main(["match", str(lst), str(qry), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    rows = csv_rows(out)
    assert rows == oracle(codes, ids_l, queries, ids_q, 31)
    assert len(rows) > 0
    assert f"{len(queries)} queries x {len(codes)} list hashes" in err


def test_match_refuses_a_hashmatch_file(
    tmp_path: Path, plain: Plain, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = hm.HashList("pdq")
    saved.add(plain.codes)
    path = tmp_path / "list.hm"
    saved.save(path)
    err = bad_run(["match", str(path), str(plain.qry)], capsys)
    assert f"{path}: this is a hashmatch file" in err and "load" in err


def test_match_reads_standard_input(plain: Plain) -> None:
    proc = subprocess.run(
        [*MODULE, "match", str(plain.lst), "-", "--no-progress"],
        input=plain.qry.read_text(),
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert csv_rows(proc.stdout) == plain.expected()


def test_match_refuses_to_write_over_an_input_or_to_read_stdin_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = hm.datasets.random_codes(3, 64)
    lst = write(tmp_path / "list.txt", hexes(codes))
    before = lst.read_text()
    link = tmp_path / "link.txt"
    link.symlink_to(lst)
    for out in (str(lst), str(link), f"{tmp_path}/./list.txt"):
        err = bad_run(["match", str(lst), str(lst), "--out", out], capsys)
        assert "--out:" in err and "is the input file" in err
    assert lst.read_text() == before
    err = bad_run(["match", "-", "-"], capsys)
    assert "LIST and QUERIES: standard input can be read once" in err


def test_match_reads_standard_input_from_a_socket(tmp_path: Path) -> None:
    import socket

    codes = hm.datasets.random_codes(3, 64)
    lst = write(tmp_path / "list.txt", hexes(codes))
    left, right = socket.socketpair()
    with left, right:
        right.sendall(("\n".join(hexes(codes[:1])) + "\n").encode())
        right.shutdown(socket.SHUT_WR)
        done = subprocess.run(
            [*MODULE, "match", str(lst), "-", "--no-progress"],
            stdin=left, capture_output=True, text=True, env=ENV, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("1,1,0,")
