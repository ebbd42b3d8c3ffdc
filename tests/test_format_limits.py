"""The reader's limits: parsing costs time and memory in proportion to the input, whatever it
holds (a wide first row, an endless line, a gzip file that expands to GBs), and over-long
lines and too many columns are refused naming ``path:line``.

The costly cases run in a subprocess that reports its peak resident memory (``VmHWM``), under
an address-space limit so that a regression fails with MemoryError instead of swapping."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hashmatch.formats import HashRecords, read_hashes
from hashmatch.formats import names as format_names
from hashmatch.formats import reader as format_reader
from hashmatch.formats.limits import MAX_COLUMNS, MAX_LINE_CHARS

import hashmatch as hm

A = "a" * 64
B = "b" * 64
WIDE = 100_000  # commas of the wide first row of the finding (a 245-byte gzip file)


def read_all(path: Path, **options: Any) -> HashRecords:
    return HashRecords.concat(read_hashes(path, **options))


def wide_file(path: Path, rows: int, *, header: str = "") -> Path:
    """The finding's file: a first row of 100,000 commas, then ``rows`` short rows."""
    path.write_bytes(gzip.compress((header + "," * WIDE + "\n" + "a\n" * rows).encode(), 9))
    return path


def peak(code: str, path: Path, budget_mib: int = 2048) -> dict[str, Any]:
    """Run ``code`` (``path`` as ``PATH``; it sets ``out``) in a fresh interpreter limited to
    ``budget_mib`` of address space; ``out`` and the growth of the peak RSS over the imports."""
    script = (
        textwrap.dedent(
            f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({budget_mib} << 20, {budget_mib} << 20))
        import hashmatch as hm
        from hashmatch.formats import read_hashes
        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        before = hwm()
        PATH = {str(path)!r}
        out = None
        """
        )
        + textwrap.dedent(code)
        + "\nprint(json.dumps({'out': out, 'mib': hwm() - before}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists() or sys.platform != "linux",
    reason="measures peak memory with /proc/self/status",
)

# -- the finding: a wide first row


def test_wide_first_row_is_refused_by_the_column_limit(tmp_path: Path) -> None:
    path = wide_file(tmp_path / "wide.csv.gz", 50)
    with pytest.raises(hm.HashFormatError) as caught:
        read_all(path)
    assert str(caught.value) == (
        f"{path}:1: expected at most 1,024 columns in the first row, got 100,001; pass"
        " max_columns= to read more"
    )


@needs_proc
def test_wide_first_row_costs_nothing_on_short_rows(tmp_path: Path) -> None:
    """With the column limit raised, every short row is skipped without building the
    100,000 empty fields and extras of the first row's width."""
    path = wide_file(tmp_path / "wide.csv.gz", 5000)
    got = peak(
        """
        reader = read_hashes(PATH, max_columns=200_000, skip_invalid=True, bits=256)
        rows = sum(len(chunk) for chunk in reader)
        out = [rows, len(reader.skipped), reader.skipped[1][1]]
        """,
        path,
    )
    rows, skipped, reason = got["out"]
    assert (rows, skipped) == (0, 5001)
    assert reason == f"{path}:2: expected 100001 fields like the first row, got 1"
    assert got["mib"] < 200  # 5000 rows of the first's width: about 30 GiB


def test_wide_first_row_raises_at_the_first_short_row(tmp_path: Path) -> None:
    path = wide_file(tmp_path / "wide.csv.gz", 50_000, header="hash,id")
    with pytest.raises(hm.HashFormatError, match=rf"^{path}:2: expected 100002 fields like the"):
        read_all(path, max_columns=200_000)


def test_a_wrong_width_row_leaves_no_fields(tmp_path: Path) -> None:
    """Skipped rows of another width are invisible in what is read: the good rows keep
    their columns and extras, the skipped ones are listed in file order."""
    path = tmp_path / "list.csv"
    path.write_text(
        f"hash,id,note,when\n{A},1,x,\n{A},2\n{B},3,y,2021\nzz,4,,\n{A},5,1,2,3\n",
    )
    reader = read_hashes(path, skip_invalid=True)
    got = HashRecords.concat(reader)
    assert got.ids.tolist() == [1, 3]
    assert got.extras == [{"note": "x", "when": ""}, {"note": "y", "when": "2021"}]
    assert got.lines.tolist() == [2, 4]
    assert [line for line, _ in reader.skipped] == [3, 5, 6]
    assert "expected 4 fields like the header, got 2" in reader.skipped[0][1]
    assert "expected 4 fields like the header, got 5" in reader.skipped[2][1]


# -- long lines


@pytest.mark.parametrize(
    ("name", "before"),
    [("list.txt", f"{A}\n{B}\n"), ("list.csv", f"hash,id\n{A},1\n"), ("list.tsv", f"{A}\tk\n" * 2)],
)
@pytest.mark.parametrize("end", ["\n", ""])
def test_a_long_line_is_refused_naming_path_and_line(
    tmp_path: Path, name: str, before: str, end: str
) -> None:
    path = tmp_path / name
    path.write_text(before + "c" * (MAX_LINE_CHARS + 1) + end + f"{A}\n")
    with pytest.raises(hm.HashFormatError) as caught:
        read_all(path)
    assert str(caught.value) == (
        f"{path}:3: expected lines of at most 1,048,576 characters, got a longer one; pass"
        " max_line_chars= to read longer lines"
    )


def test_a_long_first_or_comment_line_is_refused(tmp_path: Path) -> None:
    for text, line in [("x" * 3000, 1), ("# " + "x" * 3000, 1), (f"{A}\n\n#" + "x" * 3000, 3)]:
        path = tmp_path / "list.csv"
        path.write_text(text + f"\n{A}\n")
        with pytest.raises(hm.HashFormatError, match=rf"^{path}:{line}: expected lines of at"):
            read_all(path, max_line_chars=2000)


def test_a_row_counts_the_lines_of_its_quoted_fields(tmp_path: Path) -> None:
    """A quoted field may hold line breaks: the row's lines count together."""
    path = tmp_path / "list.csv"
    field = '"' + "x\n" * 60 + '"'  # 61 short lines, 122 characters
    path.write_text(f"hash,key\n{A},{field}\n{B},k\n")
    assert len(read_all(path, max_line_chars=200)) == 2
    with pytest.raises(hm.HashFormatError, match=rf"^{path}:2: expected lines of at most 100 "):
        read_all(path, max_line_chars=100)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r", ""])
def test_max_line_chars_excludes_the_line_end(tmp_path: Path, end: str) -> None:
    for fmt, row in [("hex", A), ("csv", f"{A},k")]:
        path = tmp_path / f"list.{fmt}"
        path.write_bytes(f"{row}{end or chr(10)}{row}{end}".encode())
        assert len(read_all(path, format=fmt, max_line_chars=len(row))) == 2
        with pytest.raises(hm.HashFormatError, match=rf"^{path}:1: expected lines of at most"):
            read_all(path, format=fmt, max_line_chars=len(row) - 1)


@needs_proc
def test_an_endless_line_in_gzip_is_refused_without_holding_it(tmp_path: Path) -> None:
    """200 MB of 'a' without a line end, in 200 KB of gzip: refused after the first MiB."""
    path = tmp_path / "endless.txt.gz"
    block = b"a" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(200):
            out.write(block)
    got = peak(
        """
        try:
            list(read_hashes(PATH))
        except hm.HashFormatError as error:
            out = str(error)
        """,
        path,
    )
    assert got["out"].startswith(f"{path}:1: expected lines of at most 1,048,576 characters")
    assert got["mib"] < 100


@needs_proc
def test_a_gzip_bomb_of_wide_rows_is_streamed_in_bounded_chunks(tmp_path: Path) -> None:
    """20,000 rows of 1,024 short fields (60 MB, 60 KB of gzip): their extras would take
    some 2 GiB in one chunk; chunks end early at the weight limit (here 64 MiB) instead."""
    path = tmp_path / "bomb.csv.gz"
    row = (A + ",k" + ",ab" * 1022 + "\n").encode()
    with gzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(20):
            out.write(row * 1000)
    got = peak(
        """
        import hashmatch.formats.reader
        hashmatch.formats.reader.CHUNK_WEIGHT = 64 << 20
        reader = read_hashes(PATH, bits=256)
        sizes = []
        for chunk in reader:
            sizes.append(len(chunk))
            del chunk
        out = [sum(sizes), len(sizes)]
        """,
        path,
        budget_mib=4096,
    )
    rows, chunks = got["out"]
    assert rows == 20_000 and chunks > 10
    assert got["mib"] < 400


# -- configurable limits, normal files unchanged


def test_limits_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"hash,id,a,b\n{A},1,x,y\n")
    assert read_all(path, max_columns=4).extras == [{"a": "x", "b": "y"}]
    with pytest.raises(hm.HashFormatError, match=rf"^{path}:1: expected at most 3 columns in"):
        read_all(path, max_columns=3)
    headerless = tmp_path / "rows.csv"
    headerless.write_text(f"{A},k,x\n{B},k2,y\n")
    with pytest.raises(hm.HashFormatError, match=r":1: expected at most 2 columns in the first"):
        read_all(headerless, max_columns=2)
    assert read_all(headerless, max_columns=3).extras == [{"column3": "x"}, {"column3": "y"}]
    assert (MAX_LINE_CHARS, MAX_COLUMNS) == (1 << 20, 1024)


@pytest.mark.parametrize("name", ["max_line_chars", "max_columns"])
def test_bad_limits(tmp_path: Path, name: str) -> None:
    path = tmp_path / "list.txt"
    path.write_text(A + "\n")
    for value, error in [(0, hm.InvalidArgument), ("9", hm.InvalidType), (True, hm.InvalidType)]:
        with pytest.raises(error, match=rf"^{name}: expected an integer >= 1"):
            read_hashes(path, **{name: value})


def test_chunks_end_early_at_the_weight_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashmatch.formats import delimited

    path = tmp_path / "list.csv"
    path.write_text("hash,id,note\n" + "".join(f"{A},{i},n{i}\n" for i in range(100)))
    whole = read_all(path)
    monkeypatch.setattr(format_reader, "CHUNK_WEIGHT", 1000)
    monkeypatch.setattr(delimited, "BATCH_WEIGHT", 300)
    chunks = list(read_hashes(path))
    assert 1 < len(chunks) < 100 and max(map(len, chunks)) < 100
    got = HashRecords.concat(chunks)
    assert got.ids.tolist() == whole.ids.tolist() and got.extras == whole.extras
    assert got.lines.tolist() == whole.lines.tolist()


@pytest.mark.parametrize("fmt", ["hex", "csv"])
def test_batches_end_early_at_the_weight_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Small batches read the same as one, skipped rows and line numbers included."""
    from hashmatch.formats import delimited, hex

    path = tmp_path / f"list.{fmt}"
    rows = [A, B, "zz", "", "# c", A.upper(), "0x" + A, B] * 300
    text = "\n".join(
        f"{r},{i}" if fmt == "csv" and r and r[0] != "#" else r for i, r in enumerate(rows)
    )
    path.write_text(text + "\n")

    def read() -> tuple[list[int], list[tuple[int, str]]]:
        reader = read_hashes(path, skip_invalid=True, chunk_size=500)
        return HashRecords.concat(reader).lines.tolist(), reader.skipped

    want = read()
    for module in (delimited, hex):
        monkeypatch.setattr(module, "BATCH_WEIGHT", 300)
    assert read() == want
    assert len(want[0]) == 4 * 300 and len(want[1]) == 2 * 300


def test_error_messages_show_long_values_shortened(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"hash,id\n{A}," + "9" * 5000 + "\n")
    with pytest.raises(hm.InvalidArgument) as caught:
        read_all(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: expected an id: an integer from 0 to 2**63 - 1, got '99")
    assert message.endswith("... (5,000 characters)") and len(message) < 300


def test_long_labels_fields_are_not_cached() -> None:
    format_names._parse_labels.cache_clear()
    text = "spam " * 100
    assert format_names.parse_labels(text) == ("spam",) * 100
    assert format_names.parse_labels("a;b c") == ("a", "b c")
    assert format_names._parse_labels.cache_info().currsize == 1


def test_many_words_on_a_signal_type_line(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"pdq {A}\npdq {B}" + " x" * 1000 + "\n")
    with pytest.raises(
        hm.HashFormatError,
        match=r":2: expected 'signal_type hash' like the first"
        r" line, got 1002 words$",
    ):
        read_all(path)
