"""Tests of hash-list import and export (hashmatch.formats): round trips, peer formats, bad rows."""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashmatch.formats import (
    COLUMN_ALIASES,
    HashRecords,
    read_hashes,
    write_hashes,
)
from hashmatch.formats.records import SeenIds
from hypothesis import given
from hypothesis import strategies as st

import hashmatch as hm

A = "a" * 64
B = "b" * 64
C = "0123456789abcdef" * 4
D = "f" * 64


def put(path: Path, text: str, *, bom: bool = False, newline: str = "\n") -> Path:
    """Write ``text`` as UTF-8 bytes with the given line ends (and BOM), exactly."""
    data = text.replace("\n", newline).encode()
    path.write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    return path


def read_all(path: Path, **options: Any) -> HashRecords:
    return HashRecords.concat(read_hashes(path, **options))


def hexes(records: HashRecords) -> list[str]:
    return [bytes(row).hex() for row in records.codes]


def sample(n: int = 7, nbytes: int = 32, seed: int = 0) -> HashRecords:
    """Records with every column, awkward text included."""
    rng = np.random.default_rng(seed)
    keys: list[str | None] = ['a,b "q"', "tab\there", "line\nbreak\r\nx", None, "#not a comment"]
    labels = [("spam",), ("child safety",), (), ("a", "b c"), ("ünï", "código", "ラベル")]
    sources = ["collab one", None, "bank;2", "x,y", ""]
    return HashRecords(
        rng.integers(0, 256, (n, nbytes), dtype=np.uint8),
        ids=rng.permutation(10 * n)[:n],
        keys=[keys[i % len(keys)] for i in range(n)],
        labels=[labels[i % len(labels)] for i in range(n)],
        sources=[sources[i % len(sources)] for i in range(n)],
        qualities=np.array([(37 * i) % 102 - 1 for i in range(n)], dtype=np.int16),
        extras=[{"signal_type": "pdq", "note": f'n{i},"{i}"'} for i in range(n)],
    )


def assert_same(got: HashRecords, want: HashRecords, columns: tuple[str, ...]) -> None:
    """``got`` holds ``want``'s entries in the given columns and no others (but lines)."""
    np.testing.assert_array_equal(got.codes, want.codes)
    for name in ("ids", "keys", "labels", "sources", "qualities", "extras"):
        value = getattr(got, name)
        if name not in columns:
            assert value is None, name
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(want, name))
        else:
            expected = getattr(want, name)
            if name in ("keys", "sources"):
                expected = [v or None for v in expected]  # "" reads back as None
            assert value == expected, name


# ----------------------------------------------------------------------------- round trips

ALL = ("ids", "keys", "labels", "sources", "qualities", "extras")


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
@pytest.mark.parametrize("chunk_size", [1, 3, 1_000_000])
def test_round_trip_every_column(tmp_path: Path, fmt: str, chunk_size: int) -> None:
    records = sample()
    path = tmp_path / f"list.{fmt}"
    assert write_hashes(path, records, format=fmt) == len(records)
    chunks = list(read_hashes(path, chunk_size=chunk_size))
    assert [len(c) for c in chunks][:-1] == [chunk_size] * (len(chunks) - 1)
    assert_same(HashRecords.concat(chunks), records, ALL)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
@pytest.mark.parametrize("column", [None, *ALL])
def test_round_trip_one_optional_column(tmp_path: Path, fmt: str, column: str | None) -> None:
    full = sample(5)
    records = HashRecords(full.codes, **({column: getattr(full, column)} if column else {}))
    path = tmp_path / f"list.{fmt}"
    write_hashes(path, [records], format=fmt)
    reader = read_hashes(path)
    assert_same(HashRecords.concat(reader), records, (column,) if column else ())
    assert reader.format == fmt
    assert reader.columns["hash"] == "hash"


@pytest.mark.parametrize("chunk_size", [1, 3, 1_000_000])
def test_round_trip_hex_keeps_hashes_only(tmp_path: Path, chunk_size: int) -> None:
    records = sample(8, nbytes=8)
    path = tmp_path / "list.txt"
    assert write_hashes(path, [records], format="hex") == 8
    assert path.read_text() == "".join(h + "\n" for h in hexes(records))
    got = read_all(path, chunk_size=chunk_size)
    assert_same(got, records, ())
    assert got.lines is not None and got.lines.tolist() == list(range(1, 9))


def test_chunks_of_many_writes_read_back_as_one(tmp_path: Path) -> None:
    records = sample(10)
    parts = [
        HashRecords(
            records.codes[a:b],
            ids=records.ids[a:b] if records.ids is not None else None,
            labels=records.labels[a:b] if records.labels is not None else None,
        )
        for a, b in ((0, 4), (4, 4), (4, 10))
    ]
    path = tmp_path / "list.csv"
    assert write_hashes(path, iter(parts)) == 10
    assert_same(read_all(path, chunk_size=4), HashRecords.concat(parts), ("ids", "labels"))


def test_written_csv_is_what_peers_read(tmp_path: Path) -> None:
    records = HashRecords([A, B.upper()], ids=[1, 2], labels=[("spam", "scam"), ("child safety",)])
    path = tmp_path / "list.csv"
    write_hashes(path, records)
    assert path.read_bytes() == (
        f"hash,id,labels\r\n{A},1,spam scam\r\n{B},2,child safety;\r\n".encode()
    )


def test_write_empty_then_read(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    assert write_hashes(path, []) == 0
    assert path.read_bytes() == b"hash\r\n"
    assert list(read_hashes(path, bits=256)) == []
    with pytest.raises(hm.HashFormatError, match=r"empty\.csv: .*no data rows.*pass bits="):
        list(read_hashes(path))


def test_gzip_round_trip_and_detection_by_content(tmp_path: Path) -> None:
    records = sample(6)
    path = tmp_path / "list.csv.gz"
    write_hashes(path, records)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(path.read_bytes()).startswith(b"hash,id,key,labels,source,quality")
    assert_same(read_all(path), records, ALL)
    renamed = tmp_path / "list.data"  # no extension: gzip is recognised by its magic bytes
    renamed.write_bytes(path.read_bytes())
    reader = read_hashes(renamed)
    assert_same(HashRecords.concat(reader), records, ALL)
    assert reader.format == "csv"


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "list.txt.gz"
    data = gzip.compress(((A + "\n") * 1000).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(hm.HashFormatError, match=r"list\.txt\.gz: corrupt gzip data"):
        list(read_hashes(path))


# ------------------------------------------------------------------ text hygiene and sniffing


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_bom_crlf_blank_and_comment_lines(tmp_path: Path, newline: str, bom: bool) -> None:
    text = f"# exported 2024\n\nhash,id,tags\n{A},1,spam\n  # a comment\n\n{B.upper()},2,\n"
    path = put(tmp_path / "list.csv", text, bom=bom, newline=newline)
    got = read_all(path)
    assert hexes(got) == [A, B]
    assert got.ids is not None and got.ids.tolist() == [1, 2]
    assert got.labels == [("spam",), ()]
    assert got.lines is not None and got.lines.tolist() == [4, 7]
    hex_path = put(tmp_path / "list.txt", f"# c\n\n{A}\n {B} \n", bom=bom, newline=newline)
    got = read_all(hex_path)
    assert hexes(got) == [A, B]
    assert got.lines is not None and got.lines.tolist() == [3, 4]


def test_quoted_fields_keep_comment_and_blank_lines(tmp_path: Path) -> None:
    text = f'hash,key\n{A},"first\n# not a comment\n\nend"\n# a comment\n{B},"x,y"\n'
    got = read_all(put(tmp_path / "list.csv", text))
    assert got.keys == ["first\n# not a comment\n\nend", "x,y"]
    assert got.lines is not None and got.lines.tolist() == [2, 7]


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("a.txt", f"{A}\t7\n", "tsv"),
        ("a.txt", f"# x, y\n{A},7\n", "csv"),
        ("a.txt", f"{A}\n", "hex"),
        ("a.tab", f"{A}\n", "tsv"),
        ("a.tsv.gz", f"{A}\n", "tsv"),
        ("a.CSV", f"{A}\n", "csv"),
        ("a", f"hash\n{A}\n", "hex"),
    ],
)
def test_auto_format(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    reader = read_hashes(path)
    assert hexes(HashRecords.concat(reader)) == [A]
    assert reader.format == fmt


def test_explicit_format_wins(tmp_path: Path) -> None:
    path = put(tmp_path / "list.csv", f"{A}\t7\n")
    got = read_all(path, format="tsv")
    assert got.keys == ["7"]
    with pytest.raises(hm.HashFormatError, match=r"list\.csv:1: invalid character '\\t'"):
        list(read_hashes(path, format="hex"))


def test_headerless_csv_is_hash_key_then_extras(tmp_path: Path) -> None:
    reader = read_hashes(put(tmp_path / "list.csv", f"{A},k1,x,y\n{B},,z,w\n"))
    got = HashRecords.concat(reader)
    assert got.keys == ["k1", None]
    assert got.extras == [{"column3": "x", "column4": "y"}, {"column3": "z", "column4": "w"}]
    assert reader.columns == {"hash": "column1", "key": "column2"}


def test_cli_style_hex_comma_id_lines(tmp_path: Path) -> None:
    got = read_all(put(tmp_path / "list.txt", f"{A},photo-1\n{B},photo-2\n"))
    assert got.keys == ["photo-1", "photo-2"]  # without a header, the second column is the key
    assert got.ids is None
    message = bad(tmp_path, f"hash,id\n{A},photo-1\n")  # an id column holds integers
    assert message.endswith(
        "list.csv:2: expected an id: an integer from 0 to 2**63 - 1, got 'photo-1'; a text id"
        " is a key: name its column 'key'"
    )


# ----------------------------------------------------------------------------- peer formats


def test_python_threatexchange_dataset_csv(tmp_path: Path) -> None:
    # threatexchange dataset -P --csv: DictWriter, tags joined with " "
    text = (
        "signal_type,signal_str,collab,category,tags\r\n"
        f"pdq,{A},Sample Data,POSITIVE_CLASS,media_type_photo pwny\r\n"
        f"pdq,{B},Sample Data,POSITIVE_CLASS,\r\n"
    )
    reader = read_hashes(put(tmp_path / "collab.csv", text))
    got = HashRecords.concat(reader)
    assert hexes(got) == [A, B]
    assert got.labels == [("media_type_photo", "pwny"), ()]
    assert got.sources == ["Sample Data", "Sample Data"]
    assert got.extras == [
        {"signal_type": "pdq", "category": "POSITIVE_CLASS"},
        {"signal_type": "pdq", "category": "POSITIVE_CLASS"},
    ]
    assert reader.columns == {"hash": "signal_str", "source": "collab", "labels": "tags"}


def test_python_threatexchange_file_exchange_lines(tmp_path: Path) -> None:
    # LocalFileSignalExchangeAPI: "<signal_type> <signal>" a line
    got = read_all(put(tmp_path / "signals.txt", f"pdq {A}\npdq {B}\n"))
    assert hexes(got) == [A, B]
    with pytest.raises(hm.HashFormatError, match=r"signals\.txt:2: expected 'signal_type hash'"):
        list(read_hashes(put(tmp_path / "signals.txt", f"pdq {A}\n{B}\n")))


def test_hma_threatexchange_data_file(tmp_path: Path) -> None:
    # HMA 1.x te data files: hash, indicator_id, descriptor_id, timestamp, tags (" "-joined)
    text = (
        "hash,indicator_id,descriptor_id,timestamp,tags\n"
        f"{A},4179,99,2021-01-01,true_positive hma_test\n"
    )
    got = read_all(put(tmp_path / "1.hash_pdq.te", text))
    assert got.ids is not None and got.ids.tolist() == [4179]
    assert got.labels == [("true_positive", "hma_test")]
    assert got.extras == [{"descriptor_id": "99", "timestamp": "2021-01-01"}]


def test_threatexchange_ui_download(tmp_path: Path) -> None:
    # TE UI CSV download: td_raw_indicator, td_subjective_tags joined with ";"
    text = (
        "td_description,td_raw_indicator,td_subjective_tags,td_owner_name\n"
        f'"Testing, bulk",{A},testing;pwny;child safety,ISE App\n'
    )
    got = read_all(put(tmp_path / "pwny.csv", text))
    assert hexes(got) == [A]
    assert got.labels == [("testing", "pwny", "child safety")]
    assert got.extras == [{"td_description": "Testing, bulk", "td_owner_name": "ISE App"}]


def test_hma_bank_columns_and_header_spelling(tmp_path: Path) -> None:
    text = f"Signal Type,Signal-Value,Content_ID,Bank Member Tags,PDQ Quality\npdq,{A},c-1,x y,90\n"
    reader = read_hashes(put(tmp_path / "bank.csv", text))
    got = HashRecords.concat(reader)
    assert hexes(got) == [A]
    assert got.keys == ["c-1"]
    assert got.labels == [("x", "y")]
    assert got.qualities is not None and got.qualities.tolist() == [90]
    assert reader.columns == {
        "hash": "Signal-Value",
        "key": "Content_ID",
        "labels": "Bank Member Tags",
        "quality": "PDQ Quality",
    }


def test_a_column_ending_in_hash(tmp_path: Path) -> None:
    got = read_all(put(tmp_path / "list.csv", f"name,phash\nimg.jpg,{A[:16]}\n"))
    assert hexes(got) == [A[:16]]
    assert got.keys == ["img.jpg"]


@pytest.mark.parametrize("alias", sorted({a for names in COLUMN_ALIASES.values() for a in names}))
def test_every_alias_makes_a_header(tmp_path: Path, alias: str) -> None:
    hash_name = "hash" if alias not in COLUMN_ALIASES["hash"] else alias
    header = f"{hash_name},{alias}" if alias != hash_name else alias
    row = f"{A},1" if alias != hash_name else A
    reader = read_hashes(put(tmp_path / "list.csv", f"{header}\n{row}\n"))
    got = HashRecords.concat(reader)
    assert hexes(got) == [A]
    field = next(name for name, names in COLUMN_ALIASES.items() if alias in names)
    assert reader.columns[field] == alias


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("a b", ("a", "b")),
        ("  a\tb  ", ("a", "b")),
        ("a;b c", ("a", "b c")),
        ("a; b ;", ("a", "b")),
        ("child safety;", ("child safety",)),
        (";", ()),
        ("", ()),
        ("   ", ()),
    ],
)
def test_label_separators(tmp_path: Path, text: str, labels: tuple[str, ...]) -> None:
    got = read_all(put(tmp_path / "list.csv", f'hash,labels\n{A},"{text}"\n'))
    assert got.labels == [labels]


# ------------------------------------------------------------------------------- bad inputs


def bad(tmp_path: Path, text: str, name: str = "list.csv", **options: Any) -> str:
    """The message of the error reading ``text`` raises (its type checked by the caller)."""
    path = put(tmp_path / name, text)
    with pytest.raises(hm.HashmatchError) as info:
        list(read_hashes(path, **options))
    assert isinstance(info.value, ValueError)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "options", "error", "message"),
    [
        (  # 1 char short, width from the first hash
            f"hash\n{A}\n{A[:63]}\n",
            {},
            hm.HashFormatError,
            r"list\.csv:3: expected 64 hex characters \(256 bits, like line 2\), got 63$",
        ),
        (  # well formed but another width than bits=
            f"hash\n{A[:62]}\n",
            {"bits": 256},
            hm.HashTypeMismatch,
            r"list\.csv:2: expected 64 hex characters \(256 bits, from bits=256\), got 62"
            r" \(248 bits\)",
        ),
        (  # mixed widths: a pHash in a PDQ list
            f"hash\n{A}\n{A[:16]}\n",
            {},
            hm.HashTypeMismatch,
            r"list\.csv:3: expected 64 hex characters \(256 bits, like line 2\), got 16"
            r" \(64 bits\); a file holds hashes of one width",
        ),
        (
            f"hash\n{A[:5]}g{A[6:]}\n",
            {},
            hm.HashFormatError,
            r"list\.csv:2: invalid character 'g' at position 5 of the hash; expected an even"
            r" number of hex characters",
        ),
        (  # non-ASCII digit
            f"hash\n\u0663{A[1:]}\n",
            {"bits": 256},
            hm.HashFormatError,
            r"list\.csv:2: invalid character '\u0663' at position 0",
        ),
        (  # separators inside a hash
            f"hash\n{A[:2]} {A[2:]}\n",
            {},
            hm.HashFormatError,
            r"list\.csv:2: invalid character ' ' at position 2",
        ),
        (
            f"hash\n0x{A[2:]}\n",
            {},
            hm.HashFormatError,
            r"list\.csv:2: invalid character 'x' at position 1",
        ),
        (  # base64 instead of hex
            "hash\n" + "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=" + "\n",
            {"bits": 256},
            hm.HashFormatError,
            r"list\.csv:2: invalid character .* it looks like base64",
        ),
        (
            f"hash,id\n{A},\n",
            {},
            hm.InvalidArgument,
            r"list\.csv:2: expected an id: an integer from 0 to 2\*\*63 - 1, got ''",
        ),
        (f"hash,id\n{A},-1\n", {}, hm.InvalidArgument, r"list\.csv:2: expected an id.*got '-1'"),
        (f"hash,id\n{A},1.5\n", {}, hm.InvalidArgument, r"list\.csv:2: expected an id.*'1\.5'"),
        (f"hash,id\n{A},1_0\n", {}, hm.InvalidArgument, r"list\.csv:2: expected an id.*'1_0'"),
        (
            f"hash,id\n{A},{2**63}\n",
            {},
            hm.InvalidArgument,
            rf"list\.csv:2: expected an id.*got '{2**63}'",
        ),
        (
            f"hash,id\n{A},7\n{B},8\n{C},7\n",
            {},
            hm.InvalidArgument,
            r"list\.csv:4: expected unique ids, got duplicate id 7 \(first on line 2\)",
        ),
        (
            f"hash,quality\n{A},NaN\n",
            {},
            hm.InvalidArgument,
            r"list\.csv:2: expected a quality: an integer from 0 to 100 \(or an empty field\),"
            r" got 'NaN'",
        ),
        (f"hash,quality\n{A},-1\n", {}, hm.InvalidArgument, r"list\.csv:2: .*quality.*'-1'"),
        (f"hash,quality\n{A},101\n", {}, hm.InvalidArgument, r"list\.csv:2: .*quality.*'101'"),
        (f"hash,quality\n{A},50.0\n", {}, hm.InvalidArgument, r"list\.csv:2: .*quality.*'50\.0'"),
        (
            "id,key,labels\n1,a,b\n",
            {},
            hm.HashFormatError,
            r"list\.csv:1: expected a hash column in the header, named one of hash, signal,"
            r".* got columns 'id', 'key', 'labels'",
        ),
        (
            f"pdq_hash,hash\n{A},{B}\n",
            {},
            hm.HashFormatError,
            r"list\.csv:1: expected one hash column, got 'pdq_hash', 'hash'; rename all but one",
        ),
        (
            f"hash,tags,labels\n{A},a,b\n",
            {},
            hm.HashFormatError,
            r"list\.csv:1: expected one labels column, got 'tags', 'labels'",
        ),
        (
            f"hash,id\n{A},1\n{B}\n",
            {},
            hm.HashFormatError,
            r"list\.csv:3: expected 2 fields like the header, got 1",
        ),
        (
            f'hash,key\n{A},"unclosed\n{B},x\n',
            {},
            hm.HashFormatError,
            r"list\.csv:2: cannot parse CSV: unexpected end of data",
        ),
        ("", {}, hm.HashFormatError, r"list\.csv: expected at least one hash .* no data rows"),
        (
            "# only a comment\n\n",
            {},
            hm.HashFormatError,
            r"list\.csv: expected at least one hash to take the hash width from, but the file"
            r" has no data rows; pass bits=",
        ),
        ("hash,id\n", {}, hm.HashFormatError, r"list\.csv: .*no data rows"),
    ],
)
def test_bad_input_names_file_line_and_expectation(
    tmp_path: Path, text: str, options: dict[str, Any], error: type, message: str
) -> None:
    path = put(tmp_path / "list.csv", text)
    with pytest.raises(error) as info:
        list(read_hashes(path, **options))
    assert re.search(re.escape(str(tmp_path)) + "/" + message, str(info.value)), str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_hex_file_hints_at_csv(tmp_path: Path) -> None:
    message = bad(tmp_path, f"{A}\n{B},7,x\n", name="list.txt", format="hex")
    assert "list.txt:2: invalid character ','" in message
    assert "pass format='csv' or 'tsv'" in message


def test_empty_file_with_bits_yields_nothing(tmp_path: Path) -> None:
    for text in ("", "# nothing\n", "hash,id\n"):
        reader = read_hashes(put(tmp_path / "list.csv", text), bits=64)
        assert list(reader) == []
        assert reader.bits == 64 and reader.rows == 0


def test_duplicate_ids_across_chunks(tmp_path: Path) -> None:
    text = f"hash,id\n{A},1\n{B},2\n{C},3\n{D},2\n"
    message = bad(tmp_path, text, chunk_size=2)
    assert message.endswith("list.csv:5: expected unique ids, got duplicate id 2 (first on line 3)")


def test_duplicate_ids_over_many_small_chunks(rng: np.random.Generator) -> None:
    seen = SeenIds()  # sorted runs merged as chunks come: check against a dict
    first: dict[int, int] = {}
    line = 0
    for size in rng.integers(1, 40, 300).tolist():
        ids = rng.integers(0, 3000, size)
        lines = np.arange(line + 1, line + 1 + size, dtype=np.int64)
        line += size
        expected = [first.get(int(i), 0) for i in ids]
        assert seen.lines_of(ids).tolist() == expected
        new = [j for j, i in enumerate(ids.tolist()) if i not in first and i not in ids[:j]]
        for j in new:
            first[int(ids[j])] = int(lines[j])
        seen.add(ids[new], lines[new])


def test_first_bad_row_in_file_order_is_raised(tmp_path: Path) -> None:
    text = f"hash,id,quality\n{A},1,\n{B},2,500\n{A[:10]},3,\n{C},1,\n"
    assert "list.csv:3: expected a quality" in bad(tmp_path, text)


def test_uppercase_is_accepted_and_written_lowercase(tmp_path: Path) -> None:
    got = read_all(put(tmp_path / "list.txt", A.upper() + "\n"))
    out = tmp_path / "out.txt"
    write_hashes(out, got, format="hex")
    assert out.read_text() == A + "\n"


# ----------------------------------------------------------------------------- skip_invalid


def test_skip_invalid_collects_every_bad_row(tmp_path: Path) -> None:
    text = (
        "hash,id,quality\n"
        f"{A[:3]},9,\n"  # 2: bad hash before any good one
        f"{A},1,90\n"  # 3: sets the width
        f"{B[:16]},2,\n"  # 4: other width
        f"{B},x,\n"  # 5: bad id
        f"{B},3,nan\n"  # 6: bad quality
        f"{C},1,\n"  # 7: duplicate of line 3
        f"{C},4\n"  # 8: missing field
        f"{D},5,100\n"  # 9: good
    )
    for chunk_size in (1, 3, 100):
        reader = read_hashes(
            put(tmp_path / "list.csv", text), skip_invalid=True, chunk_size=chunk_size
        )
        got = HashRecords.concat(reader)
        assert hexes(got) == [A, D]
        assert got.ids is not None and got.ids.tolist() == [1, 5]
        assert got.lines is not None and got.lines.tolist() == [3, 9]
        assert [line for line, _ in reader.skipped] == [2, 4, 5, 6, 7, 8]
        reasons = [reason for _, reason in reader.skipped]
        assert "list.csv:2: expected an even number of hex characters" in reasons[0]
        assert (
            "list.csv:4: expected 64 hex characters (256 bits, like line 3), got 16" in reasons[1]
        )
        assert "list.csv:5: expected an id" in reasons[2]
        assert "list.csv:6: expected a quality" in reasons[3]
        assert "list.csv:7: expected unique ids, got duplicate id 1 (first on line 3)" in reasons[4]
        assert "list.csv:8: expected 3 fields like the header, got 2" in reasons[5]
        assert reader.rows == 2


def test_skip_invalid_a_skipped_id_is_not_taken(tmp_path: Path) -> None:
    text = f"hash,id\n{A[:5]},1\n{B},1\n"
    reader = read_hashes(put(tmp_path / "list.csv", text), skip_invalid=True)
    got = HashRecords.concat(reader)
    assert got.ids is not None and got.ids.tolist() == [1]
    assert got.lines is not None and got.lines.tolist() == [3]


def test_skip_invalid_all_bad_without_bits(tmp_path: Path) -> None:
    reader = read_hashes(put(tmp_path / "list.txt", "zz\nyy\n"), skip_invalid=True)
    with pytest.raises(hm.HashFormatError, match="every row is invalid; pass bits="):
        list(reader)
    assert [line for line, _ in reader.skipped] == [1, 2]


# ---------------------------------------------------------------------------------- writing


def test_write_is_atomic_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("old contents\n")
    path.chmod(0o640)

    def chunks() -> Iterator[HashRecords]:
        yield HashRecords([A])
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed"):
        write_hashes(path, chunks())
    assert path.read_text() == "old contents\n"
    assert sorted(os.listdir(tmp_path)) == ["list.csv"]  # no temporary file left
    write_hashes(path, HashRecords([A]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the replaced file's permissions


@pytest.mark.parametrize(
    ("records", "error", "message"),
    [
        (
            [HashRecords([A]), HashRecords([A[:16]])],
            hm.HashTypeMismatch,
            r"records\[1\]: expected 32 bytes per hash \(256 bits\) like records\[0\], got 8",
        ),
        (
            [HashRecords([A], ids=[1]), HashRecords([B])],
            hm.InvalidArgument,
            r"records\[1\]: expected the columns of records\[0\] \('ids',\), got \(\)",
        ),
        (
            [HashRecords([A], ids=[1]), HashRecords([B, C], ids=[2, 1])],
            hm.InvalidArgument,
            r"records\[1\]\.ids\[1\]: expected ids unique over all chunks, got id 1 again",
        ),
        (
            [HashRecords([A, B], labels=[("ok",), ("bad;label",)])],
            hm.InvalidArgument,
            r"records\[0\]\.labels\[1\]: expected labels that are non-empty, .* got 'bad;label'",
        ),
        ([HashRecords([A], labels=[(" x",)])], hm.InvalidArgument, r"labels\[0\]: .*' x'"),
        ([HashRecords([A], labels=[("",)])], hm.InvalidArgument, r"labels\[0\]: .*got ''"),
        (
            [HashRecords([A], extras=[{"Tags": "x"}])],
            hm.InvalidArgument,
            r"extras: expected names other than the columns' \('Tags' would be read as the"
            r" labels column\)",
        ),
        (
            [HashRecords([A], extras=[{"a": "x"}]), HashRecords([B], extras=[{"b": "y"}])],
            hm.InvalidArgument,
            r"records\[1\]\.extras: expected the extras names of records\[0\] \['a'\], got also"
            r" \['b'\]",
        ),
        ([A], hm.InvalidType, r"records\[0\]: expected HashRecords, got str"),
    ],
)
def test_write_rejects(tmp_path: Path, records: Any, error: type, message: str) -> None:
    path = tmp_path / "list.csv"
    with pytest.raises(error, match=message):
        write_hashes(path, records)
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_write_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(hm.InvalidArgument, match=r"format: expected one of 'csv', 'tsv', 'hex'"):
        write_hashes(tmp_path / "x", [], format="json")
    with pytest.raises(hm.InvalidType, match="records: expected HashRecords or an iterable"):
        write_hashes(tmp_path / "x", 5)  # type: ignore[arg-type]


def test_missing_extras_are_written_empty(tmp_path: Path) -> None:
    path = tmp_path / "list.tsv"
    write_hashes(path, HashRecords([A, B], extras=[{"x": "1"}, {}]), format="tsv")
    assert read_all(path).extras == [{"x": "1"}, {"x": ""}]


# --------------------------------------------------------------------- records and the reader


def test_records_validation() -> None:
    with pytest.raises(hm.InvalidArgument, match=r"keys: expected 2 items \(one per hash\), got 1"):
        HashRecords([A, B], keys=["x"])
    with pytest.raises(hm.InvalidType, match=r"keys\[1\]: expected str or None, got int"):
        HashRecords([A, B], keys=["x", 5])
    with pytest.raises(hm.InvalidType, match=r"labels\[0\]: expected a tuple of str, got list"):
        HashRecords([A], labels=[["x"]])
    with pytest.raises(hm.InvalidType, match=r"labels\[1\]: expected a tuple of str"):
        HashRecords([A, B], labels=[(), ("x", 3)])
    with pytest.raises(hm.InvalidArgument, match=r"qualities\[0\]: expected a quality from 0"):
        HashRecords([A], qualities=[101])
    with pytest.raises(hm.InvalidArgument, match=r"qualities\[0\]: expected a quality .* NaN"):
        HashRecords([A], qualities=[np.nan])  # the one quality rule: hashtypes.check_qualities
    with pytest.raises(hm.InvalidArgument, match="duplicate id 3"):
        HashRecords([A, B], ids=[3, 3])
    with pytest.raises(hm.InvalidArgument, match="codes: expected a batch of hashes"):
        HashRecords(A)  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match="chunks: expected at least one"):
        HashRecords.concat([])
    records = HashRecords(np.zeros((0, 8), np.uint8), ids=[])
    assert len(records) == 0 and records.ids is not None and records.ids.dtype == np.int64


def test_reader_arguments(tmp_path: Path) -> None:
    path = put(tmp_path / "list.txt", A + "\n")
    with pytest.raises(FileNotFoundError):
        read_hashes(tmp_path / "missing.csv")
    with pytest.raises(hm.InvalidArgument, match=r"format: expected one of 'auto', 'hex'"):
        read_hashes(path, format="xml")
    with pytest.raises(hm.InvalidArgument, match=r"chunk_size: expected an integer >= 1, got 0"):
        read_hashes(path, chunk_size=0)
    with pytest.raises(hm.InvalidType, match=r"chunk_size: expected an integer >= 1, got 1\.5"):
        read_hashes(path, chunk_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match="bits: expected a multiple of 8"):
        read_hashes(path, bits=250)
    with pytest.raises(hm.InvalidType, match="path: expected a str or path-like, got int"):
        read_hashes(3)  # type: ignore[arg-type]


def test_reader_streams_and_closes(tmp_path: Path) -> None:
    path = put(tmp_path / "list.txt", "".join(f"{i:064x}\n" for i in range(10)))
    with read_hashes(path, chunk_size=4) as reader:
        assert reader.format == "auto" and reader.bits is None
        first = next(reader)
        assert len(first) == 4 and reader.format == "hex" and reader.bits == 256
    with pytest.raises(StopIteration):
        next(reader)
    assert [len(c) for c in read_hashes(path, chunk_size=4)] == [4, 4, 2]


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hashmatch.progress's policy: shown when asked for and stderr is a terminal."""
    path = put(tmp_path / "list.txt", A + "\n")
    for stderr, progress, shown in (
        (Terminal(), True, True),
        (Terminal(), False, False),
        (io.StringIO(), True, False),
    ):
        monkeypatch.setattr(sys, "stderr", stderr)
        assert len(read_all(path, progress=progress)) == 1
        assert ("list.txt" in stderr.getvalue()) == shown


# ------------------------------------------------------------------------------- properties

labels_text = st.text(min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and ";" not in s and "\0" not in s
)
free_text = st.text(min_size=1, max_size=12).filter(lambda s: "\0" not in s)  # csv on 3.10


@st.composite
def records_strategy(draw: st.DrawFn) -> tuple[HashRecords, tuple[str, ...]]:
    n = draw(st.integers(0, 12))
    nbytes = draw(st.sampled_from([1, 8, 32]))
    columns = tuple(name for name in ALL if draw(st.booleans()))
    data = draw(st.binary(min_size=n * nbytes, max_size=n * nbytes))
    values: dict[str, Any] = {}
    if "ids" in columns:
        values["ids"] = draw(
            st.lists(st.integers(0, 2**63 - 1), min_size=n, max_size=n, unique=True)
        )
    for name in ("keys", "sources"):
        if name in columns:
            values[name] = draw(st.lists(st.none() | free_text, min_size=n, max_size=n))
    if "labels" in columns:
        tuples = st.lists(labels_text, max_size=4).map(tuple)
        values["labels"] = draw(st.lists(tuples, min_size=n, max_size=n))
    if "qualities" in columns:
        qualities = draw(st.lists(st.integers(-1, 100), min_size=n, max_size=n))
        values["qualities"] = np.array(qualities, dtype=np.int16)  # -1: missing, in an array
    if "extras" in columns:
        value = st.text(max_size=8).filter(lambda s: "\0" not in s)
        values["extras"] = [{"note": draw(value), "x y": draw(value)} for _ in range(n)]
    codes = np.frombuffer(data, dtype=np.uint8).reshape(n, nbytes)
    return HashRecords(codes, **values), columns


@given(records_strategy(), st.sampled_from(["csv", "tsv"]), st.integers(1, 5), st.booleans())
def test_property_write_read_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    drawn: tuple[HashRecords, tuple[str, ...]],
    fmt: str,
    chunk_size: int,
    compress: bool,
) -> None:
    records, columns = drawn
    path = tmp_path_factory.mktemp("prop") / ("list.out.gz" if compress else "list.out")
    assert write_hashes(path, records, format=fmt) == len(records)
    bits = 8 * records.codes.shape[1]
    chunks = list(read_hashes(path, format=fmt, bits=bits, chunk_size=chunk_size))
    if len(records) == 0:
        assert chunks == []
        return
    assert all(len(c) <= chunk_size for c in chunks)
    assert_same(HashRecords.concat(chunks), records, columns)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_reads_a_pipe(tmp_path: Path) -> None:
    """/dev/stdin or a FIFO cannot seek: read it all the same (progress counts no bytes)."""
    import threading

    codes = hm.datasets.random_codes(300, 64, seed=2)
    fifo = tmp_path / "hashes.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as out:
            out.write("hash,id\n")
            out.writelines(f"{hm.to_hex(c)},{i}\n" for i, c in enumerate(codes))

    writer = threading.Thread(target=feed)
    writer.start()
    records = HashRecords.concat(read_hashes(fifo, progress=True))
    writer.join()
    np.testing.assert_array_equal(records.codes, codes)
    assert records.ids.tolist() == list(range(300))


# ------------------------------------------------------------------- regressions (reshape)


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_headerless_signal_type_rows(tmp_path: Path, delimiter: str) -> None:
    """python-threatexchange / HMA rows without header: signal type, then the hash (was: the
    first row taken for a header, every hash rejected)."""
    rows = [["pdq", A, "te-1", "x"], ["PDQ", B, "", "y"], ["pdq", C, "te-3", "z"]]
    name = "signals.csv" if delimiter == "," else "signals.tsv"
    text = "".join(delimiter.join(row) + "\n" for row in rows)
    reader = read_hashes(put(tmp_path / name, text))
    got = HashRecords.concat(reader)
    assert hexes(got) == [A, B, C]
    assert got.keys == ["te-1", None, "te-3"]
    assert got.extras == [
        {"signal_type": "pdq", "column4": "x"},
        {"signal_type": "PDQ", "column4": "y"},
        {"signal_type": "pdq", "column4": "z"},
    ]
    assert reader.columns == {"hash": "column2", "key": "column3"}
    two = HashRecords.concat(read_hashes(put(tmp_path / "two.csv", f"pdq,{A}\nhash_pdq,{B}\n")))
    assert hexes(two) == [A, B] and two.keys is None
    with pytest.raises(hm.HashFormatError, match=r"bad\.csv:2: invalid character 'p'"):
        list(read_hashes(put(tmp_path / "bad.csv", f"pdq,{A}\n{B},pdq\n")))  # one shape a file


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("x.csv", "csv"),
        ("x.tsv", "tsv"),
        ("x.tab", "tsv"),
        ("x.txt", "hex"),
        ("x.hex", "hex"),
        ("x.csv.gz", "csv"),
        ("x.tsv.gz", "tsv"),
        ("x.TAB.GZ", "tsv"),
        ("x.txt.gz", "hex"),
        ("x.list", "csv"),  # no format in the name: CSV, as before
    ],
)
@pytest.mark.parametrize("explicit", [False, True])
def test_write_format_follows_the_extension(
    tmp_path: Path, name: str, fmt: str, explicit: bool
) -> None:
    """Was: CSV whatever the name, so x.tsv.gz held CSV and did not read back."""
    records = HashRecords([A, B], ids=[3, 4], labels=[("x",), ()])
    path = tmp_path / name
    options = {"format": fmt} if explicit else {}
    assert write_hashes(path, records, **options) == 2
    data = path.read_bytes()
    if name.lower().endswith(".gz"):
        assert data[:2] == b"\x1f\x8b"
        data = gzip.decompress(data)
    else:
        assert data[:2] != b"\x1f\x8b"
    first = data.decode().splitlines()[0]
    assert first == {"csv": "hash,id,labels", "tsv": "hash\tid\tlabels", "hex": A}[fmt]
    reader = read_hashes(path)
    got = HashRecords.concat(reader)
    assert reader.format == fmt
    assert_same(got, records, () if fmt == "hex" else ("ids", "labels"))


@pytest.mark.parametrize(
    ("name", "fmt", "says"),
    [("x.tsv.gz", "csv", "tsv"), ("x.csv", "tsv", "csv"), ("x.txt", "csv", "hex")],
)
def test_write_format_contradicting_the_extension_is_refused(
    tmp_path: Path, name: str, fmt: str, says: str
) -> None:
    with pytest.raises(hm.InvalidArgument) as info:
        write_hashes(tmp_path / name, HashRecords([A]), format=fmt)
    message = str(info.value)
    assert f"format: {fmt!r} contradicts the file name {name!r}" in message
    assert f"says {says!r}" in message
    assert os.listdir(tmp_path) == []


def test_hashmatch_file_is_refused_with_a_pointer_to_load(tmp_path: Path) -> None:
    hash_list = hm.HashList("pdq")
    hash_list.add([A])
    path = tmp_path / "list.hm"
    hash_list.save(path)
    with pytest.raises(hm.HashFormatError, match=r"list\.hm: this is a hashmatch file.*load"):
        list(read_hashes(path))
    copy = tmp_path / "list.csv"  # whatever it is called
    copy.write_bytes(path.read_bytes())
    with pytest.raises(hm.HashFormatError, match=r"list\.csv: this is a hashmatch file"):
        list(read_hashes(copy))


@pytest.mark.parametrize(
    ("field", "hint"),
    [
        ("0x" + A, "remove the 0x prefix"),
        ("0X" + A[:62], "remove the 0x prefix"),
        (A[:32] + " " + A[32:], "the hash contains whitespace (' ' at position 32)"),
        (A + "\n", None),  # a trailing line break is whitespace around the hash: removed
        (A[:10] + "\n" + A[10:], "the hash contains whitespace ('\\n' at position 10)"),
        (A[:10] + "\t" + A[10:], "the hash contains whitespace ('\\t' at position 10)"),
    ],
)
def test_hash_errors_hint_at_prefix_and_whitespace(
    tmp_path: Path, field: str, hint: str | None
) -> None:
    path = put(tmp_path / "list.csv", f'hash,id\n{B},1\n"{field}",2\n')
    if hint is None:
        assert hexes(read_all(path)) == [B, A]
        return
    with pytest.raises(hm.HashFormatError) as info:
        list(read_hashes(path))
    assert str(info.value).startswith(f"{path}:3: invalid character")
    assert hint in str(info.value)


def test_write_hashes_accepts_auto(tmp_path: Path) -> None:
    assert write_hashes(tmp_path / "x.tsv", HashRecords([A]), format="auto") == 1
    assert (tmp_path / "x.tsv").read_bytes() == f"hash\r\n{A}\r\n".encode()
