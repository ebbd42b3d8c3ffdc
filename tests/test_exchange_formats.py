"""Exchange dialects: ThreatExchange, Tech Against Terrorism, StopNCII and NCMEC records into
FeedBatch (read_feed, parse_feed), and perception's base64 hashes."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashmatch.errors import HashFormatError, HashTypeMismatch, InvalidArgument, InvalidType
from hashmatch.formats import (
    FEED_DIALECTS,
    FeedBatch,
    HashRecords,
    from_base64,
    parse_feed,
    read_feed,
    read_hashes,
    to_base64,
    write_hashes,
)
from hypothesis import given
from hypothesis import strategies as st

import hashmatch

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "b" * 64
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


# -- fixtures written from python-threatexchange 1.2.17's record shapes


def te_indicator(
    id: str = "2880742865368386", indicator: str = PDQ_A, **fields: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": id,
        "indicator": indicator,
        "type": "HASH_PDQ",
        "last_updated": 1595458990,
        "should_delete": False,
        "descriptors": {
            "data": [
                {
                    "id": "3058061737574159",
                    "owner": {"id": "616912251743987"},
                    "status": "MALICIOUS",
                    "tags": ["media_type_photo", "nsfw"],
                    "reactions": [{"key": "HELPFUL", "value": "1,2"}],
                },
                {
                    "id": "3058061737574160",
                    "owner": {"id": "494491891138576"},
                    "status": "NON_MALICIOUS",
                    "tags": {"data": [{"text": "nsfw"}, {"text": "reviewed"}]},
                },
            ]
        },
    }
    record.update(fields)
    return record


def tat_entry(id: int = 124, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "hash_digest": PDQ_A,
        "algorithm": "PDQ",
        "ideology": "far-right",
        "file_type": "jpg",
        "deleted": False,
        "updated_on": 1704085200.0,
        "created_on": "2024-01-01T05:00:00Z",
        "id": id,
    }
    record.update(fields)
    return record


def stopncii_record(hash_value: str = PDQ_A, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "lastModtimestamp": 1700000000,
        "signalType": "ImagePDQ",
        "hashValue": hash_value,
        "hashStatus": "Active",
        "caseNumbers": {"CASE-1": "Active", "CASE-2": "Received"},
        "CSPFeedbacks": [
            {"feedbackValue": "Blocked", "tags": ["ncii", "reviewed"], "source": "csp1"},
            {"feedbackValue": "PendingReview", "tags": ["ncii"], "source": "csp2"},
        ],
    }
    record.update(fields)
    return record


def ncmec_entry(id: str = "43e17b7f-3a3f-4c5b", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": id,
        "member_id": 42,
        "entry_type": "image",
        "deleted": False,
        "classification": "A1",
        "fingerprints": {"MD5": MD5.upper(), "PDQ": PDQ_A, "NETCLEAN": "abc=="},
        "feedback": {},
    }
    record.update(fields)
    return record


def write_json(tmp_path: Path, value: object, name: str = "feed.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return path


def write_lines(tmp_path: Path, records: list[object], name: str = "feed.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# -- each dialect


def test_threatexchange_indicators() -> None:
    deleted = te_indicator("11", PDQ_B, should_delete=True, last_updated=1595459000)
    gone = te_indicator("12", PDQ_B)
    del gone["descriptors"]  # ThreatExchange sends some deletions without descriptors
    url = {"id": "13", "indicator": "http://x", "type": "URI", "last_updated": 1595459100}
    counts: dict[str, int] = {}
    batch = parse_feed([te_indicator(), deleted, gone, url], skipped=counts)
    assert isinstance(batch, FeedBatch)
    assert batch.upserts.keys == ["2880742865368386"]
    assert batch.upserts.codes.tobytes().hex() == PDQ_A
    assert batch.upserts.labels == [("media_type_photo", "nsfw", "reviewed")]
    assert batch.upserts.sources == ["threatexchange"]
    assert batch.upserts.extras == [{"type": "HASH_PDQ", "status": "MALICIOUS NON_MALICIOUS"}]
    assert batch.deletes == ("11", "12")
    assert batch.checkpoint == "1595459100"  # the URI record is the latest seen
    assert counts == {"URI": 1}
    assert batch.rejected == ()


def test_tat_entries_and_checkpoint(tmp_path: Path) -> None:
    records = [
        tat_entry(124),
        tat_entry(125, deleted=True, updated_on=1704085300.5),
        tat_entry(126, algorithm="MD5", hash_digest=MD5, file_type="mp4"),
    ]
    counts: dict[str, int] = {}
    batch = read_feed(write_json(tmp_path, records), skipped=counts)
    assert batch.upserts.keys == ["124"]
    assert batch.upserts.labels == [("far-right",)]
    assert batch.upserts.extras == [
        {"algorithm": "PDQ", "file_type": "jpg", "created_on": "2024-01-01T05:00:00Z"}
    ]
    assert batch.upserts.sources == ["tat"]
    assert batch.deletes == ("125",)
    assert batch.checkpoint == "1704085300.5,125"  # TAT's own "<updated_on>,<id>" cursor
    assert counts == {"md5": 1}
    video = read_feed(tmp_path / "feed.json", hash_type="video_md5")
    assert video.upserts.keys == ["126"] and video.upserts.codes.shape == (1, 16)
    assert video.deletes == ()  # the deleted record is a PDQ one


def test_tat_response_checkpoint(tmp_path: Path) -> None:
    response = {
        "count": 2,
        "next": None,
        "previous": None,
        "checkpoint": "1704085200,124",
        "results": [tat_entry(124)],
    }
    batch = read_feed(write_json(tmp_path, response))
    assert batch.checkpoint == "1704085200,124"
    assert batch.upserts.keys == ["124"]


def test_stopncii_statuses() -> None:
    records = [
        stopncii_record(PDQ_A.upper()),
        stopncii_record(PDQ_B, hashStatus="Withdrawn", lastModtimestamp=1700000050),
        stopncii_record("c" * 64, hashStatus="Deleted"),
        stopncii_record("d" * 64, hashStatus="Received", CSPFeedbacks=[]),
        {"signalType": "VideoTMK", "hashValue": "...", "hashStatus": "Active"},
    ]
    counts: dict[str, int] = {}
    batch = parse_feed(records, "stopncii", skipped=counts)
    assert batch.upserts.keys == [PDQ_A, "d" * 64]  # no record id: the lowercase hash
    assert batch.upserts.labels == [("ncii", "reviewed"), ()]
    assert batch.upserts.extras is not None
    assert batch.upserts.extras[0] == {
        "hashStatus": "Active",
        "caseNumbers": "CASE-1:Active CASE-2:Received",
    }
    assert batch.deletes == (PDQ_B, "c" * 64)
    assert batch.checkpoint == "1700000050"
    assert counts == {"VideoTMK": 1}


def test_stopncii_response(tmp_path: Path) -> None:
    response = {
        "count": 1,
        "nextPageToken": None,
        "nextSetTimestamp": 1700000999,
        "hasMoreRecords": False,
        "hashRecords": [stopncii_record()],
    }
    batch = read_feed(write_json(tmp_path, response))
    assert batch.checkpoint == "1700000999"
    assert len(batch.upserts) == 1


def test_ncmec_entries() -> None:
    records = [
        ncmec_entry(),
        ncmec_entry("e2", member_id=7, deleted=True, fingerprints={}),
        ncmec_entry("e3", fingerprints={"PDNA": "x", "MD5": MD5}),
    ]
    counts: dict[str, int] = {}
    batch = parse_feed({"updates": records, "max_timestamp": 1730000000}, skipped=counts)
    assert batch.upserts.keys == ["42-43e17b7f-3a3f-4c5b"]
    assert batch.upserts.labels == [("A1",)]
    assert batch.upserts.extras == [{"member_id": "42", "entry_type": "image"}]
    assert batch.deletes == ("7-e2",)
    assert batch.checkpoint == "1730000000"
    assert counts == {"PDNA": 1, "md5": 1}
    md5 = parse_feed(records, "ncmec", hash_type="md5")
    assert md5.upserts.keys == ["42-43e17b7f-3a3f-4c5b", "42-e3"]
    assert md5.upserts.codes[0].tobytes().hex() == MD5  # uppercase read, lowercase kept
    assert md5.checkpoint is None  # entries carry no time


# -- files: JSON, JSON lines, gzip, detection


@pytest.mark.parametrize(
    ("record", "name"),
    [
        (te_indicator(), "threatexchange"),
        (tat_entry(), "tat"),
        (stopncii_record(), "stopncii"),
        (ncmec_entry(), "ncmec"),
    ],
)
def test_detection_and_names(tmp_path: Path, record: dict[str, Any], name: str) -> None:
    path = write_lines(tmp_path, [record])
    auto = read_feed(path)
    named = read_feed(path, name)
    assert auto.upserts.sources == named.upserts.sources == [name]
    assert name in FEED_DIALECTS
    single = read_feed(write_json(tmp_path, record, "one.json"))  # one record, not an array
    assert single.upserts.keys == auto.upserts.keys


def test_detection_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(HashFormatError, match=r"feed.jsonl:1: cannot tell the exchange"):
        read_feed(write_lines(tmp_path, [{"hash": PDQ_A}, {"hash": PDQ_B}]))
    with pytest.raises(HashFormatError, match=r"one.json: cannot tell the exchange"):
        read_feed(write_json(tmp_path, {"hash": PDQ_A}, "one.json"))
    with pytest.raises(InvalidArgument, match="dialect"):
        read_feed(tmp_path / "feed.jsonl", "pytx")


def test_json_lines_gzip_blank_lines_and_bom(tmp_path: Path) -> None:
    text = "\ufeff" + json.dumps(tat_entry(1)) + "\n\n" + json.dumps(tat_entry(2)) + "\r\n"
    path = tmp_path / "feed.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert read_feed(path).upserts.keys == ["1", "2"]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("")
    batch = read_feed(path)
    assert len(batch) == 0 and batch.checkpoint is None
    assert batch.upserts.codes.shape == (0, 32)
    assert len(parse_feed([])) == 0


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"id": 1,\n "x": }]')
    with pytest.raises(HashFormatError, match=r"bad.json:2: expected JSON"):
        read_feed(path)
    path.write_text('"text"')
    with pytest.raises(HashFormatError, match="got a JSON str"):
        read_feed(path)


# -- strict and lenient


def test_strict_errors_name_the_record(tmp_path: Path) -> None:
    records = [tat_entry(1), tat_entry(2, hash_digest="0x" + PDQ_A[2:])]
    with pytest.raises(HashFormatError, match=r"feed.json\[1\]: tat record: hash_digest: .*0x"):
        read_feed(write_json(tmp_path, records))
    with pytest.raises(HashFormatError, match=r"feed.jsonl:2: tat record: hash_digest"):
        read_feed(write_lines(tmp_path, records))
    with pytest.raises(HashFormatError, match=r"records\[1\]: tat record: hash_digest"):
        parse_feed(records)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (tat_entry(hash_digest=PDQ_A[:-2]), "got 62"),
        (tat_entry(hash_digest=PDQ_A + "\n"), "whitespace"),
        (tat_entry(hash_digest=None), "got NoneType"),
        (tat_entry(deleted="yes"), "deleted: expected true or false"),
        (tat_entry(updated_on="soon"), "updated_on: expected a time"),
        (tat_entry(updated_on=float("nan")), "updated_on: expected a time"),
        (tat_entry(id=None), "expected a field 'id'"),
        (tat_entry(ideology=3), "ideology: expected a list of strings"),
    ],
)
def test_tat_malformed(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(HashFormatError, match=reason):
        parse_feed([record], "tat")
    batch = parse_feed([record], "tat", strict=False)
    assert len(batch) == 0
    assert len(batch.rejected) == 1 and reason.split(":")[0] in batch.rejected[0].reason


def test_lenient_counts_and_keys(tmp_path: Path) -> None:
    lines = [
        json.dumps(stopncii_record()),
        "{not json",
        json.dumps(stopncii_record("e" * 64, hashStatus="Gone")),
        json.dumps([1, 2]),
        json.dumps(stopncii_record("f" * 64)),
    ]
    path = tmp_path / "ncii.jsonl"
    path.write_text("\n".join(lines) + "\n")
    batch = read_feed(path, strict=False)
    assert batch.upserts.keys == [PDQ_A, "f" * 64]
    wheres = [r.where for r in batch.rejected]
    assert wheres == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert batch.rejected[1].key == "e" * 64
    assert "hashStatus" in batch.rejected[1].reason
    assert "invalid JSON" in batch.rejected[0].reason
    assert "expected a JSON object" in batch.rejected[2].reason


def test_ncmec_and_te_malformed() -> None:
    with pytest.raises(HashFormatError, match=r"fingerprints\.PDQ: expected a pdq hash"):
        parse_feed([ncmec_entry(fingerprints={"PDQ": "abc"})])
    with pytest.raises(HashFormatError, match="fingerprints: expected an object"):
        parse_feed([ncmec_entry(fingerprints=["PDQ"])])
    with pytest.raises(HashFormatError, match="descriptors: expected"):
        parse_feed([te_indicator(descriptors=[])])
    batch = parse_feed([te_indicator(should_delete=1)], strict=False)
    assert batch.rejected[0].key == "2880742865368386"


# -- batch semantics


def test_last_appearance_decides() -> None:
    records = [
        tat_entry(1, updated_on=1.0),
        tat_entry(2, updated_on=2.0),
        tat_entry(1, deleted=True, updated_on=3.0),
        tat_entry(2, deleted=True, updated_on=4.0),
        tat_entry(2, ideology="islamist", updated_on=5.0),
    ]
    batch = parse_feed(records)
    assert batch.deletes == ("1",)
    assert batch.upserts.keys == ["2"] and batch.upserts.labels == [("islamist",)]
    assert batch.checkpoint == "5,2"


def test_hash_type_argument() -> None:
    with pytest.raises(InvalidArgument, match="hash_type"):
        parse_feed([], hash_type="phash")
    with pytest.raises(InvalidType, match="records"):
        parse_feed("records")  # type: ignore[arg-type]


def test_batch_applies_to_a_list() -> None:
    batch = parse_feed([te_indicator(), te_indicator("2", PDQ_B)])
    hashes = hashmatch.from_hex([PDQ_A, PDQ_B])
    assert np.array_equal(batch.upserts.codes, hashes)


# -- perception base64


def test_perception_base64_matches_packbits() -> None:
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, size=(3, 256)).astype(bool)
    # perception: base64.b64encode(np.packbits(vector).tobytes()); hex: the same bytes
    strings = [base64.b64encode(np.packbits(v).tobytes()).decode() for v in bits]
    hexes = [np.packbits(v).tobytes().hex() for v in bits]
    codes = from_base64(strings)
    assert np.array_equal(codes, hashmatch.from_hex(hexes))
    assert to_base64(codes) == strings
    assert all(len(s) == 44 for s in strings)


def test_perception_base64_errors() -> None:
    with pytest.raises(HashFormatError, match=r"hashes\[1\]: expected padded standard base64"):
        from_base64(["/wAPAPAAAAE=", "/wAPAPAAAAE"])
    with pytest.raises(HashFormatError, match="base64"):
        from_base64(["/w-PAPAAAAE="])  # urlsafe alphabet
    with pytest.raises(HashTypeMismatch, match="expected 64 bits, got 256"):
        from_base64(["/wAPAPAAAAE=", base64.b64encode(bytes(32)).decode()])
    with pytest.raises(HashTypeMismatch):
        from_base64(["/wAPAPAAAAE="], bits=256)
    with pytest.raises(InvalidType):
        from_base64("/wAPAPAAAAE=")
    assert from_base64([], bits=64).shape == (0, 8)


@given(st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=5))
def test_base64_round_trip(rows: list[bytes]) -> None:
    codes = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 8)
    assert np.array_equal(from_base64(to_base64(codes)), codes)


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.booleans(), st.floats(0, 2e9, allow_nan=False)),
        max_size=30,
    )
)
def test_batch_is_last_state_per_key(events: list[tuple[int, bool, float]]) -> None:
    records = [tat_entry(i, deleted=d, updated_on=t, hash_digest=f"{i:064x}") for i, d, t in events]
    batch = parse_feed(records)
    last = {str(i): d for i, d, _ in events}
    assert set(batch.deletes) == {k for k, d in last.items() if d}
    assert set(batch.upserts.keys or []) == {k for k, d in last.items() if not d}
    assert len(set(batch.deletes)) == len(batch.deletes)
    if events:
        assert batch.checkpoint is not None
        assert float(batch.checkpoint.split(",")[0]) == max(t for _, _, t in events)


# -- python-threatexchange's plain entry lists through read_hashes


def test_pytx_dataset_csv_round_trip(tmp_path: Path) -> None:
    records = HashRecords(
        [PDQ_A, PDQ_B],
        labels=[("nsfw", "media_type_photo"), ()],
        sources=["Sample Data", None],
        extras=[
            {"signal_type": "pdq", "category": "POSITIVE_CLASS"},
            {"signal_type": "pdq", "category": "INVESTIGATION_SEED"},
        ],
    )
    path = tmp_path / "collab.csv"
    assert write_hashes(path, records, format="pytx_csv") == 2
    text = path.read_bytes().decode()
    assert text.startswith("signal_type,signal_str,collab,category,tags\r\n")
    assert f"pdq,{PDQ_A},Sample Data,POSITIVE_CLASS,nsfw media_type_photo\r\n" in text
    for fmt in ("pytx_csv", "auto"):
        reader = read_hashes(path, format=fmt)
        back = HashRecords.concat(reader)
        assert reader.format == ("pytx_csv" if fmt == "pytx_csv" else "csv")
        assert np.array_equal(back.codes, records.codes)
        assert back.labels == records.labels and back.sources == records.sources
        assert back.extras == records.extras


def test_pytx_csv_writer_refuses_what_it_cannot_say(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"labels\[0\]: expected labels without whitespace"):
        write_hashes(
            tmp_path / "a.csv", HashRecords([PDQ_A], labels=[("a b;",)]), format="pytx_csv"
        )
    with pytest.raises(InvalidArgument, match="signal_type"):
        write_hashes(tmp_path / "b.csv", HashRecords(["ff" * 8]), format="pytx_csv")
    with pytest.raises(InvalidArgument, match="contradicts"):
        write_hashes(tmp_path / "c.tsv", HashRecords([PDQ_A]), format="pytx_csv")


@pytest.mark.parametrize("fmt", ["pytx_local", "auto"])
def test_pytx_local_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "local.txt"
    path.write_text(f"pdq {PDQ_A}\npdq {PDQ_B}")  # no final line end, as pytx may leave it
    reader = read_hashes(path, format=fmt)
    assert HashRecords.concat(reader).codes.tobytes().hex() == PDQ_A + PDQ_B
    bare = tmp_path / "bare.txt"
    bare.write_text(f"{PDQ_A}\n\n{PDQ_B}\n")
    assert len(HashRecords.concat(read_hashes(bare, format="pytx_local"))) == 2


def test_te_state_files(tmp_path: Path) -> None:
    cli = tmp_path / "simple.HASH_PDQ.te"  # the CLI's: indicator, descriptor id, added on, tags
    cli.write_text(
        f"{PDQ_A},3058061737574159,2020-07-01T18:31:15+0000,media_type_photo nsfw\r\n"
        f'{PDQ_B},3058061737574160,2020-07-02T18:31:15+0000,""\r\n'
    )
    reader = read_hashes(cli)
    chunk = HashRecords.concat(reader)
    assert reader.format == "te_state"
    assert chunk.keys == ["3058061737574159", "3058061737574160"]
    assert chunk.labels == [("media_type_photo", "nsfw"), ()]
    assert chunk.extras == [
        {"added_on": "2020-07-01T18:31:15+0000"},
        {"added_on": "2020-07-02T18:31:15+0000"},
    ]
    hma = tmp_path / "state.csv"  # HMA's: indicator, indicator id, descriptor id, added on, tags
    hma.write_text(f"{PDQ_A},2880742865368386,6789,today,tag1 tag2\n")
    chunk = HashRecords.concat(read_hashes(hma, format="te_state"))
    assert chunk.keys == ["2880742865368386"]
    assert chunk.extras == [{"descriptor_id": "6789", "added_on": "today"}]
    assert chunk.labels == [("tag1", "tag2")]
    bad = tmp_path / "simple.HASH_MD5.te"
    bad.write_text(f"{PDQ_A},1,today\n")
    with pytest.raises(HashFormatError, match=r"simple.HASH_MD5.te:1: expected a ThreatExchange"):
        list(read_hashes(bad))
    bad.write_text(f"{PDQ_A},1,today,\n{PDQ_A[:-1]}x,2,today,\n")
    reader = read_hashes(bad, skip_invalid=True)
    assert len(HashRecords.concat(reader)) == 1 and reader.skipped[0][0] == 2


def test_deeply_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(HashFormatError, match="nested too deeply"):
        read_feed(path)
    path.write_text(json.dumps(tat_entry(1)) + "\n" + "[" * 100_000 + "\n")
    batch = read_feed(path, strict=False)
    assert batch.upserts.keys == ["1"] and "nested" in batch.rejected[0].reason
