"""save/load: round trips, atomic writes, and every kind of damaged or foreign file."""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import hashmatch as hm
from hashmatch import io as hio


def small_file(tmp_path: Path) -> tuple[Path, hm.FlatIndex]:
    index = hm.FlatIndex(64)
    index.add(hm.datasets.random_codes(20, 64), ids=np.arange(100, 120))
    path = tmp_path / "small.hm"
    hm.save(index, path)
    return path, index


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_round_trip_preserves_every_entry(
    kind: str, tmp_path: Path, rng: np.random.Generator
) -> None:
    db = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    ids = rng.permutation(10**6)[:3000]
    index = (
        hm.FlatIndex(256) if kind == "flat" else hm.MIHIndex(256, max_distance=20, substrings=12)
    )
    index.add(db, ids)
    if isinstance(index, hm.MIHIndex):
        index.remove(ids[:10])
    hm.save(index, tmp_path / "x.hm")
    loaded = hm.load(tmp_path / "x.hm")
    assert type(loaded) is type(index) and loaded.bits == 256 and len(loaded) == len(index)
    a, b = index.contents(), loaded.contents()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    q = db[:50]
    np.testing.assert_array_equal(loaded.search(q, 5).ids, index.search(q, 5).ids)
    if isinstance(loaded, hm.MIHIndex):
        assert loaded.substrings == 12 and loaded._max_distance == 20


def test_empty_index_round_trips(tmp_path: Path) -> None:
    hm.save(hm.FlatIndex(8), tmp_path / "e.hm")
    loaded = hm.load(tmp_path / "e.hm")
    assert len(loaded) == 0 and loaded.bits == 8


def test_sections_are_aligned_for_memory_mapping(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = path.read_bytes()
    _, _, count = struct.unpack_from("<8sII", data)
    for i in range(count):
        _, offset, _, _, _ = struct.unpack_from("<24sQQII", data, 16 + 48 * i)
        assert offset % 64 == 0


def test_a_failed_save_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = small_file(tmp_path)
    before = path.read_bytes()
    bigger = hm.FlatIndex(64)
    bigger.add(hm.datasets.random_codes(500, 64))

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(hio.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        hm.save(bigger, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.hm"]


def test_readers_of_the_old_file_are_unaffected_by_a_save(tmp_path: Path) -> None:
    path, index = small_file(tmp_path)
    with open(path, "rb") as reader:  # a reader holding the old file
        index.add(hm.datasets.random_codes(5, 64, seed=9))
        hm.save(index, path)  # replaces the name, not the reader's file
        assert hio._parse(reader.read(), "old")  # the old file is still whole
    assert len(hm.load(path)) == 25


def test_truncation_anywhere_is_detected(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = path.read_bytes()
    for size in range(len(data)):
        path.write_bytes(data[:size])
        with pytest.raises(hm.IndexFormatError):
            hm.load(path)


def test_a_flipped_byte_anywhere_is_detected(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = bytearray(path.read_bytes())
    for i in range(len(data)):
        data[i] ^= 0x10
        path.write_bytes(data)
        with pytest.raises(hm.IndexFormatError):  # ChecksumError is one
            hm.load(path)
        data[i] ^= 0x10


def test_payload_corruption_is_a_checksum_error(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[-70] ^= 1  # inside the codes section
    path.write_bytes(data)
    with pytest.raises(hm.ChecksumError, match="codes"):
        hm.load(path)


def rewrite_header(data: bytes, version: int | None = None, count: int | None = None) -> bytes:
    magic, v, c = struct.unpack_from("<8sII", data)
    head = bytearray(data)
    struct.pack_into(
        "<8sII", head, 0, magic, v if version is None else version, c if count is None else count
    )
    end = 16 + 48 * c
    struct.pack_into("<I", head, end, zlib.crc32(bytes(head[:end])))
    return bytes(head)


def test_newer_version_gets_an_upgrade_message(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    path.write_bytes(rewrite_header(path.read_bytes(), version=2))
    with pytest.raises(hm.IndexFormatError, match="newer hashmatch"):
        hm.load(path)


def test_hostile_header_values_fail_before_allocating(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(rewrite_header(data, count=10**9))
    with pytest.raises(hm.IndexFormatError, match="sections"):
        hm.load(path)
    huge = bytearray(data)  # a section claiming 2^60 bytes, with a valid header checksum
    struct.pack_into("<Q", huge, 16 + 24 + 8, 2**60)
    c = struct.unpack_from("<I", huge, 12)[0]
    struct.pack_into("<I", huge, 16 + 48 * c, zlib.crc32(bytes(huge[: 16 + 48 * c])))
    path.write_bytes(huge)
    with pytest.raises(hm.IndexFormatError, match="outside the file"):
        hm.load(path)


@pytest.mark.parametrize("content", ["empty", "random", "pickle", "faiss"])
def test_foreign_files_are_refused_by_magic(content: str, tmp_path: Path) -> None:
    path = tmp_path / "foreign"
    if content == "faiss":
        faiss = pytest.importorskip("faiss")
        ix = faiss.IndexBinaryFlat(64)
        ix.add(np.zeros((3, 8), np.uint8))
        faiss.write_index_binary(ix, str(path))
    else:
        path.write_bytes(
            {"empty": b"", "random": os.urandom(300), "pickle": pickle.dumps({"a": 1})}[content]
        )
    with pytest.raises(hm.IndexFormatError, match="not a hashmatch index file"):
        hm.load(path)


def test_inconsistent_metadata_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.hm"
    codes = np.zeros((2, 8), np.uint8)
    for meta, ids in [
        ({"kind": "FlatIndex", "bits": 250}, [1, 2]),
        ({"kind": "Other", "bits": 64}, [1, 2]),
        ({"kind": "FlatIndex", "bits": 64}, [1, 1]),  # duplicate ids
        ({"kind": "FlatIndex", "bits": 64, "extra": 1}, [1, 2]),
    ]:
        sections = {
            "meta": str(meta).replace("'", '"').encode(),
            "ids": np.array(ids, "<i8").tobytes(),
            "codes": codes.tobytes(),
        }
        hio._write_atomically(path, sections)
        with pytest.raises(hm.IndexFormatError):
            hm.load(path)


def test_save_rejects_other_objects(tmp_path: Path) -> None:
    with pytest.raises(hm.InvalidType, match="index"):
        hm.save({"not": "an index"}, tmp_path / "x.hm")  # type: ignore[arg-type]
