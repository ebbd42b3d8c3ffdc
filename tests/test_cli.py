"""Tests of the ``hashmatch`` command line: demo, match and dedup (against numpy and scipy
oracles), info."""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse
import scipy.sparse.csgraph
from oracle import distances

import hashmatch as hm
from hashmatch import cli

main = cli.main
Codes = npt.NDArray[np.uint8]
HEADER = ["query_id", "list_id", "distance", "query_hash", "list_hash"]
# An editable install prints its rebuild check on stdout; keep subprocess output clean.
ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}


def pairwise(items: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``a, b, c, d`` as ``(a, b), (c, d)``."""
    it = iter(items)
    return zip(it, it, strict=True)


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


# ------------------------------------------------------------------------------------- dedup

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


def read_csv(path: Path | str, header: list[str]) -> list[list[str]]:
    text = path if isinstance(path, str) else path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == header
    return rows[1:]


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


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    data = buffer.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-distance", "257"], "--max-distance: expected an integer in [0, 256], got 257"),
        (["--max-distance", "-1"], "--max-distance: expected an integer in [0, 256], got -1"),
        (["--bits", "64", "--max-distance", "65"], "--max-distance: expected an integer in"),
        (["--bits", "12"], "--bits: expected a multiple of 8 in [8, 4096], got 12"),
        (["--bits", "64"], "{f}:1: expected 16 hex characters (64 bits, from bits=64), got 64"),
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
        [sys.executable, "-m", "hashmatch.cli", "dedup", "-", "--out", str(out), "--no-progress"],
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
    write_clusters = cli._write_clusters

    def interrupt_after_writing(*args: Any) -> None:
        write_clusters(*args)  # both files fully written, not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_write_clusters", interrupt_after_writing)
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
    cmd = [sys.executable, "-m", "hashmatch.cli", "dedup", str(path), "--out", str(out)]
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


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


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
    clusters = hm.cluster(hm.find_duplicates(hm.datasets.clustered_codes(20_000, seed=2), 31))
    assert report_line(out, "dedup").startswith(
        f"dedup       20,000 hashes, 30% near-duplicate copies: {len(clusters.pairs):,} pairs,"
        f" {(clusters.sizes > 1).sum():,} clusters with duplicates (largest {clusters.sizes.max()})"
    )
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
    assert "demo: exact range search, distance <= 10" in proc.stdout
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
