"""save/load: round trips (read and memory-mapped), atomic writes, copy-on-write, and every
kind of damaged, foreign or hostile file."""

from __future__ import annotations

import gc
import json
import mmap
import os
import pickle
import struct
import subprocess
import sys
import threading
import tracemalloc
import weakref
import zlib
from pathlib import Path

import numpy as np
import oracle
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
    data[-70] ^= 1  # inside the tiles section (the codes)
    path.write_bytes(data)
    with pytest.raises(hm.ChecksumError, match="tiles"):
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
    path.write_bytes(rewrite_header(path.read_bytes(), version=3))  # 2 is a signed file
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
        hio.write_container(path, sections)
        with pytest.raises(hm.IndexFormatError):
            hm.load(path)


def test_save_rejects_other_objects(tmp_path: Path) -> None:
    with pytest.raises(hm.InvalidType, match="index"):
        hm.save({"not": "an index"}, tmp_path / "x.hm")  # type: ignore[arg-type]


# --- Native sections: zero-copy loads ---------------------------------------------------------

DATA = Path(__file__).parent / "data"
LOADS = [
    pytest.param({"mmap": False}, id="read"),
    pytest.param({"mmap": True}, id="mmap"),
    pytest.param({"mmap": True, "verify": False}, id="mmap-noverify"),
]


def build(kind: str, bits: int, state: str, rng: np.random.Generator) -> hm.FlatIndex | hm.MIHIndex:
    """An index in a given state: empty, with removed hashes, with an unindexed tail of new
    hashes, or after adds that passed the rebuild threshold."""
    index = hm.FlatIndex(bits) if kind == "flat" else hm.MIHIndex(bits)
    if state == "empty":
        return index
    nbytes = bits // 8
    index.add(
        rng.integers(0, 256, (1500, nbytes), dtype=np.uint8), ids=rng.permutation(10**6)[:1500]
    )
    if state == "removed" and isinstance(index, hm.MIHIndex):
        ids, _ = index.contents()
        index.remove(ids[::3])
    if state in ("tail", "rebuilt"):
        index.add(rng.integers(0, 256, (300 if state == "tail" else 1200, nbytes), dtype=np.uint8))
    return index


def assert_same_results(
    a: hm.FlatIndex | hm.MIHIndex, b: hm.FlatIndex | hm.MIHIndex, rng: np.random.Generator
) -> None:
    ids, codes = a.contents()
    got_ids, got_codes = b.contents()
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_array_equal(got_codes, codes)
    queries = rng.integers(0, 256, (12, a.nbytes), dtype=np.uint8)
    if len(codes):
        queries[:6] = hm.datasets.flip_bits(
            codes[rng.integers(0, len(codes), 6)], [0, 1, 2, 3, 5, 8]
        )
    radius = a.bits // 8
    expected_d, expected_i = oracle.knn(codes, ids, queries, 5)
    for index in (a, b):
        d, i = index.search(queries, 5)
        np.testing.assert_array_equal(d, expected_d)
        np.testing.assert_array_equal(i, expected_i)
        lims, rd, ri = index.range_search(queries, radius)
        e_lims, e_d, e_i = oracle.range_search(codes, ids, queries, radius)
        np.testing.assert_array_equal(lims, e_lims)
        np.testing.assert_array_equal(rd, e_d)
        np.testing.assert_array_equal(ri, e_i)


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize("state", ["empty", "removed", "tail", "rebuilt"])
@pytest.mark.parametrize("bits", [64, 72, 256])
@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_native_round_trip(
    kind: str,
    bits: int,
    state: str,
    load: dict[str, bool],
    tmp_path: Path,
    rng: np.random.Generator,
) -> None:
    index = build(kind, bits, state, rng)
    path = tmp_path / "x.hm"
    hm.save(index, path)
    loaded = hm.load(path, **load)
    assert type(loaded) is type(index) and loaded.bits == bits and len(loaded) == len(index)
    assert_same_results(index, loaded, rng)
    if isinstance(index, hm.MIHIndex):
        assert isinstance(loaded, hm.MIHIndex)
        assert loaded.substrings == index.substrings  # the saved tables, not a rebuild
        assert repr(loaded) == repr(index)
    # Default ids continue where they did.
    assert (
        loaded.add(hm.datasets.random_codes(1, bits)).tolist()
        == index.add(hm.datasets.random_codes(1, bits)).tolist()
    )


def test_save_compacts_an_mih_index_and_the_file_holds_its_tables(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    index = build("mih", 256, "tail", rng)
    index.remove(index.contents()[0][:10])
    hm.save(index, tmp_path / "x.hm")
    names = set(hio.read_container(tmp_path / "x.hm"))
    assert names == {"meta", "ids", "rows", "starts", "residual", "slot"}
    meta, sections = hio.index_sections(index)
    assert meta["layout"]["n"] == len(index) == 1790
    assert len(meta["layout"]["tables"]) == index.substrings
    assert sections["slot"].nbytes == 4 * index.substrings * len(index)
    assert all(len(name) <= 16 for name in sections)


def test_loaded_indexes_read_the_file_in_place(tmp_path: Path, rng: np.random.Generator) -> None:
    for kind in ("flat", "mih"):
        index = build(kind, 256, "rebuilt", rng)
        hm.save(index, tmp_path / "x.hm")
        mapped = hm.load(tmp_path / "x.hm", mmap=True)
        read = hm.load(tmp_path / "x.hm")
        # Only MIH's alive flags (1 byte per hash) are allocated; codes and tables are viewed.
        assert mapped.memory_bytes() == read.memory_bytes() <= len(index)
        assert index.memory_bytes() > 40 * len(index)


def test_mutating_a_mapped_index_copies_and_never_writes_the_file(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    for kind in ("flat", "mih"):
        index = build(kind, 72, "rebuilt", rng)
        path = tmp_path / f"{kind}.hm"
        hm.save(index, path)
        before, stat = path.read_bytes(), path.stat()
        loaded = hm.load(path, mmap=True)
        extra = rng.integers(0, 256, (2000, 9), dtype=np.uint8)
        for target in (index, loaded):
            target.add(extra[:5])
            if isinstance(target, hm.MIHIndex):
                target.remove(target.contents()[0][::4])
            target.add(extra[5:])  # passes the rebuild threshold
        assert loaded.memory_bytes() > 20 * len(loaded)  # now owned
        assert_same_results(index, loaded, rng)
        assert path.read_bytes() == before and path.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_searches_during_the_first_writes_to_a_mapped_index_stay_exact(
    kind: str, tmp_path: Path, rng: np.random.Generator
) -> None:
    index = build(kind, 64, "rebuilt", rng)
    hm.save(index, tmp_path / "x.hm")
    loaded = hm.load(tmp_path / "x.hm", mmap=True)
    ids, codes = index.contents()
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                found = loaded.range_search(codes[:20], 0).ids
                assert set(ids[:20]) <= set(found.tolist())  # the originals stay findable
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for step in range(6):  # copy-on-write, then growth and a rebuild
            loaded.add(rng.integers(0, 256, (400, 8), dtype=np.uint8))
            if isinstance(loaded, hm.MIHIndex) and step == 2:
                loaded.remove(ids[100:400])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert len(loaded) == len(index) + 2400 - (300 if kind == "mih" else 0)


def test_a_mapped_file_can_be_replaced_or_deleted_while_in_use(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    path = tmp_path / "x.hm"
    for kind in ("flat", "mih"):
        index = build(kind, 256, "rebuilt", rng)
        hm.save(index, path)
        loaded = hm.load(path, mmap=True)
        hm.save(hm.FlatIndex(256), path)  # atomic save over it: a new file under the name
        assert len(hm.load(path, mmap=True)) == 0
        path.unlink()
        gc.collect()
        assert_same_results(index, loaded, rng)


def test_the_mapping_lives_exactly_as_long_as_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    maps: list[weakref.ref[mmap.mmap]] = []

    class Recorded(mmap.mmap):
        def __init__(self, *args: object, **kwargs: object) -> None:
            maps.append(weakref.ref(self))

    monkeypatch.setattr(hio._mmap, "mmap", Recorded)
    index = build("mih", 64, "rebuilt", rng)
    hm.save(index, tmp_path / "x.hm")
    loaded = hm.load(tmp_path / "x.hm", mmap=True)
    gc.collect()
    assert len(maps) == 1 and maps[0]() is not None
    assert_same_results(index, loaded, rng)
    del loaded
    gc.collect()
    assert maps[0]() is None  # unmapped


def test_loaded_indexes_pickle_and_compact(tmp_path: Path, rng: np.random.Generator) -> None:
    index = build("mih", 64, "rebuilt", rng)
    hm.save(index, tmp_path / "x.hm")
    loaded = hm.load(tmp_path / "x.hm", mmap=True)
    copy = pickle.loads(pickle.dumps(loaded))
    assert_same_results(index, copy, rng)
    loaded.compact()  # nothing to do: still reading the file
    loaded.remove(index.contents()[0][:3])
    loaded.compact()
    assert len(loaded) == len(index) - 3


@pytest.mark.parametrize("name", ["legacy-flat-72.hm", "legacy-mih-64.hm"])
@pytest.mark.parametrize("load", LOADS)
def test_files_of_hashmatch_0_1_still_load(name: str, load: dict[str, bool]) -> None:
    if "flat" in name:
        expected_ids = np.random.default_rng(7).permutation(1000)[:37]
        expected = hm.FlatIndex(72)
        expected.add(hm.datasets.random_codes(37, 72, seed=1), ids=expected_ids)
    else:
        expected = hm.MIHIndex(64, max_distance=6, substrings=4)
        expected.add(hm.datasets.random_codes(1100, 64, seed=2))
        expected.remove(np.arange(0, 1100, 7))
    loaded = hm.load(DATA / name, **load)
    assert type(loaded) is type(expected)
    assert_same_results(expected, loaded, np.random.default_rng(0))
    if isinstance(loaded, hm.MIHIndex):
        assert loaded._max_distance == 6 and loaded._fixed_substrings == 4


def test_saving_while_another_thread_adds_writes_consistent_snapshots(tmp_path: Path) -> None:
    index = hm.MIHIndex(64)
    index.add(hm.datasets.random_codes(3000, 64))
    stop = threading.Event()

    def writer() -> None:
        seed = 0
        while not stop.is_set():
            seed += 1
            index.add(hm.datasets.random_codes(50, 64, seed=seed))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for i in range(8):
            hm.save(index, tmp_path / f"{i}.hm")
    finally:
        stop.set()
        thread.join()
    for i in range(8):
        loaded = hm.load(tmp_path / f"{i}.hm", mmap=True)
        ids, _ = loaded.contents()
        np.testing.assert_array_equal(ids, np.arange(len(ids)))


# --- Damaged and hostile files ----------------------------------------------------------------


def small_files(tmp_path: Path) -> list[Path]:
    flat = hm.FlatIndex(72)
    flat.add(hm.datasets.random_codes(11, 72), ids=np.arange(50, 61))
    mih = hm.MIHIndex(64, max_distance=8)
    mih.add(hm.datasets.random_codes(20, 64))
    mih.remove([3])
    paths = [tmp_path / "flat.hm", tmp_path / "mih.hm"]
    hm.save(flat, paths[0])
    hm.save(mih, paths[1])
    return paths


@pytest.mark.parametrize("load", LOADS)
def test_native_files_truncated_anywhere_or_with_a_flipped_byte_are_refused(
    load: dict[str, bool], tmp_path: Path
) -> None:
    for path in small_files(tmp_path):
        data = path.read_bytes()
        assert len(data) < 4096
        for size in range(len(data)):
            path.write_bytes(data[:size])
            with pytest.raises(hm.IndexFormatError):
                hm.load(path, **load)
        flipped = bytearray(data)
        for i in range(len(data)):
            flipped[i] ^= 0x04
            path.write_bytes(flipped)
            with pytest.raises(hm.IndexFormatError):  # ChecksumError is one
                hm.load(path, **load)
            flipped[i] ^= 0x04
        path.write_bytes(data)
        hm.load(path, **load)


def rewrite(path: Path, **changes: object) -> None:
    """Rewrite sections of a file, with valid checksums: a file crafted to pass them.

    ``meta`` takes a function of the decoded meta returning the new one; other sections take
    a function of a writable copy of their bytes (a numpy uint8 array) returning the new bytes,
    or None to drop the section; new names add sections.
    """
    sections: dict[str, object] = {
        name: bytes(view) for name, view in hio.read_container(path).items()
    }
    for name, change in changes.items():
        if name == "meta":
            meta = json.loads(sections["meta"])  # type: ignore[arg-type]
            sections["meta"] = json.dumps(change(meta)).encode()  # type: ignore[operator]
        else:
            old = np.frombuffer(sections.get(name, b""), np.uint8).copy()  # type: ignore[arg-type]
            new = change(old)  # type: ignore[operator]
            if new is None:
                del sections[name]
            else:
                sections[name] = np.asarray(new).tobytes()
    hio.write_container(path, sections)  # type: ignore[arg-type]


def u32(edit: object) -> object:
    """A section edit on a uint32 view of the bytes."""
    return lambda b: edit(b.view("<u4").copy())  # type: ignore[operator]


def i64(edit: object) -> object:
    return lambda b: edit(b.view("<i8").copy())  # type: ignore[operator]


def put(index: int, value: int) -> object:
    def edit(a: np.ndarray) -> np.ndarray:
        a[index] = value
        return a

    return edit


def set_layout(**fields: object) -> object:
    def edit(meta: dict[str, object]) -> dict[str, object]:
        meta["layout"].update(fields)  # type: ignore[attr-defined]
        return meta

    return edit


def set_table(t: int, i: int, value: object) -> object:
    def edit(meta: dict[str, object]) -> dict[str, object]:
        meta["layout"]["tables"][t][i] = value  # type: ignore[index]
        return meta

    return edit


def set_meta(**fields: object) -> object:
    def edit(meta: dict[str, object]) -> dict[str, object]:
        meta.update(fields)
        return meta

    return edit


def swap_first_nonempty_bucket(a: np.ndarray) -> np.ndarray:
    i = int(np.flatnonzero(np.diff(a[:64].astype(np.int64)) > 0)[0]) + 1  # a rising step
    a[i], a[i + 1] = a[i + 1] + 1, a[i]
    return a


HOSTILE_MIH = {
    "starts-decreasing": {"starts": u32(swap_first_nonempty_bucket)},
    "starts-first-not-zero": {"starts": u32(put(0, 1))},
    "starts-last-not-n": {"starts": u32(put(-1, 5))},
    "slot-equals-n": {"slot": u32(put(7, 2000))},
    "slot-huge": {"slot": u32(put(-1, 2**32 - 1))},
    "shift-above-len": {"meta": set_table(0, 2, 33)},
    "len-wrong": {"meta": set_table(1, 1, 3)},
    "lo-wrong": {"meta": set_table(1, 0, 0)},
    "len-huge": {"meta": set_table(0, 1, 2**32 - 1)},
    "table-not-a-triple": {"meta": set_table(0, 0, [1])},
    "table-count": {"meta": lambda m: set_layout(tables=m["layout"]["tables"][:-1])(m)},
    "no-tables": {"meta": set_layout(tables=[])},
    "substrings-mismatch": {"meta": set_meta(substrings=5)},
    "n-mismatch": {"meta": set_layout(n=1999)},
    "n-negative": {"meta": set_layout(n=-1)},
    "n-huge": {"meta": set_layout(n=2**63 - 1)},
    "n-too-big-for-json": {"meta": set_layout(n=2**70)},
    "n-bool": {"meta": set_layout(n=True)},
    "next-id-negative": {"meta": set_layout(next_id=-1)},
    "next-id-missing": {"meta": lambda m: {**m, "layout": {**m["layout"], "next_id": None}}},
    "layout-version": {"meta": set_layout(version=2)},
    "layout-extra-field": {"meta": set_layout(extra=1)},
    "bits-wrong": {"meta": set_meta(bits=56)},
    "bits-not-multiple-of-8": {"meta": set_meta(bits=63)},
    "max-distance-too-big": {"meta": set_meta(max_distance=65)},
    "kind-list": {"meta": set_meta(kind=[])},
    "kind-unknown": {"meta": set_meta(kind="Other")},
    "id-negative": {"ids": i64(put(5, -1))},
    "id-duplicate": {"ids": i64(put(5, 6))},
    "ids-short": {"ids": lambda b: b[:-8]},
    "ids-odd-size": {"ids": lambda b: b[:-3]},
    "rows-short": {"rows": lambda b: b[:-8]},
    "residual-short": {"residual": lambda b: b[:-1]},
    "slot-short": {"slot": lambda b: b[:-4]},
    "starts-short": {"starts": lambda b: b[:-4]},
    "section-missing": {"residual": lambda b: None},
    "section-extra": {"extra": lambda b: b"x"},
}
HOSTILE_FLAT = {
    "id-negative": {"ids": i64(put(0, -5))},
    "id-duplicate": {"ids": i64(put(1, 0))},
    "ids-unsorted-duplicate": {"ids": i64(lambda a: np.concatenate([a[:-1][::-1], a[:1]]))},
    "tiles-short": {"tiles": lambda b: b[:-8]},
    "tiles-long": {"tiles": lambda b: np.concatenate([b, np.zeros(8 * 9 * 8, np.uint8)])},
    "padding-bits": {"tiles": lambda b: put(8 * 8 + 7, 1)(b)},  # code 7's last word, byte 8
    "unused-tile-slot-padding": {"tiles": lambda b: put(len(b) - 1, 1)(b)},
    "unused-tile-slot-code": {"tiles": lambda b: put((16 + 7) * 8, 1)(b)},  # slot 15, word 0
    "n-mismatch": {"meta": set_layout(n=12)},
    "mih-fields-on-flat": {"meta": set_meta(substrings=4)},
}


def hostile_base(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.hm"
    if kind == "mih":
        index = hm.MIHIndex(64, substrings=6)
        index.add(hm.datasets.random_codes(2000, 64))
    else:
        index = hm.FlatIndex(72)  # 9 bytes: 7 bytes of padding in each code's second word
        index.add(hm.datasets.random_codes(13, 72), ids=np.arange(13))
    hm.save(index, path)
    return path


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize(
    "kind, case",
    [("mih", c) for c in HOSTILE_MIH] + [("flat", c) for c in HOSTILE_FLAT],
)
def test_hostile_files_with_valid_checksums_are_refused(
    kind: str, case: str, load: dict[str, bool], tmp_path: Path
) -> None:
    path = hostile_base(kind, tmp_path)
    hm.load(path, **load)  # the untouched file loads
    rewrite(path, **(HOSTILE_MIH if kind == "mih" else HOSTILE_FLAT)[case])
    with pytest.raises(hm.IndexFormatError) as info:
        hm.load(path, **load)
    assert str(path) in str(info.value)


def test_unsorted_unique_ids_are_accepted(tmp_path: Path) -> None:
    index = hm.FlatIndex(64)
    index.add(hm.datasets.random_codes(40, 64), ids=np.arange(40)[::-1] * 3)
    hm.save(index, tmp_path / "x.hm")
    loaded = hm.load(tmp_path / "x.hm", mmap=True, verify=False)
    assert loaded._core.next_id == 118
    with pytest.raises(hm.InvalidArgument, match="already"):
        loaded.add(hm.datasets.random_codes(1, 64), ids=[9])


def test_misaligned_section_buffers_are_copied(rng: np.random.Generator) -> None:
    index = build("mih", 64, "rebuilt", rng)
    meta, sections = hio.index_sections(index)
    shifted = {}
    for name, array in sections.items():
        raw = bytearray(b"\0" + array.tobytes())
        shifted[name] = memoryview(raw)[1:]
    assert_same_results(index, hio.index_from_sections(meta, shifted, where="shifted"), rng)


# --- Other kinds: the container and the loader registry ----------------------------------------


class Catalog:
    """Stands in for an object that embeds an index in its own file (like a HashList)."""

    def __init__(self, index: hm.MIHIndex, names: list[str]) -> None:
        self.index, self.names = index, names

    def _to_sections(self) -> tuple[dict[str, object], dict[str, object]]:
        meta, sections = hio.index_sections(self.index)
        return (
            {"kind": "TestCatalog", "index": meta},
            {
                "names": "\n".join(self.names).encode(),
                **{f"ix.{k}": v for k, v in sections.items()},
            },
        )


def load_catalog(meta: dict[str, object], sections: dict[str, memoryview], where: str) -> Catalog:
    inner = {k[3:]: v for k, v in sections.items() if k.startswith("ix.")}
    index = hio.index_from_sections(meta["index"], inner, where=f"{where} (index)")  # type: ignore[arg-type]
    assert isinstance(index, hm.MIHIndex)
    return Catalog(index, bytes(sections["names"]).decode().split("\n"))


@pytest.mark.parametrize("load", LOADS)
def test_objects_with_to_sections_round_trip_through_registered_loaders(
    load: dict[str, bool], tmp_path: Path, rng: np.random.Generator
) -> None:
    hio.register_kind("TestCatalog", load_catalog)
    catalog = Catalog(build("mih", 256, "rebuilt", rng), ["a", "b"])
    hm.save(catalog, tmp_path / "c.hm")
    loaded = hm.load(tmp_path / "c.hm", **load)
    assert isinstance(loaded, Catalog) and loaded.names == ["a", "b"]
    assert_same_results(catalog.index, loaded.index, rng)
    rewrite(tmp_path / "c.hm", **{"ix.slot": u32(put(0, 10**6))})
    with pytest.raises(hm.IndexFormatError, match=r"c\.hm \(index\).*slot"):
        hm.load(tmp_path / "c.hm", **load)


def test_unknown_kinds_and_reserved_names_are_refused(tmp_path: Path) -> None:
    hio.write_container(tmp_path / "x.hm", {"meta": b'{"kind": "HashList"}'})
    with pytest.raises(hm.IndexFormatError, match="known"):
        hm.load(tmp_path / "x.hm")  # hashmatch.lists does not exist (yet) or rejects it
    with pytest.raises(hm.InvalidArgument, match="built in"):
        hio.register_kind("FlatIndex", load_catalog)

    class Bad:
        def _to_sections(self) -> tuple[dict[str, object], dict[str, object]]:
            return {"kind": "Bad"}, {"meta": b""}

    with pytest.raises(hm.InvalidArgument, match="reserved"):
        hm.save(Bad(), tmp_path / "y.hm")
    with pytest.raises(hm.InvalidArgument, match="24 ASCII"):
        hio.write_container(tmp_path / "y.hm", {"x" * 25: b""})
    assert not (tmp_path / "y.hm").exists()


def test_container_checksums_of_big_sections_run_in_combined_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashmatch import _crc32

    for la, lb in [(0, 0), (3, 0), (0, 5), (1000, 4097), (77, 1 << 20)]:
        a, b = os.urandom(la), os.urandom(lb)
        assert _crc32.crc32_combine(zlib.crc32(a), zlib.crc32(b), lb) == zlib.crc32(a + b)
    monkeypatch.setattr(_crc32, "_CRC_PIECE", 1000)  # many pieces, on threads, even here
    payloads = [os.urandom(n) for n in (0, 1, 999, 1000, 1001, 25_000)]
    assert _crc32.crc32_all([memoryview(p) for p in payloads]) == [zlib.crc32(p) for p in payloads]
    path = tmp_path / "x.hm"
    hio.write_container(path, {f"s{i}": p for i, p in enumerate(payloads)})
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(data)
    with pytest.raises(hm.ChecksumError, match="s5"):
        hio.read_container(path, mmap=True)


# --- what load reads ---------------------------------------------------------------------------

UNBOUNDED_INPUTS = """
import os, resource, sys, tempfile
import hashmatch as hm
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # old hashmatch: MemoryError
fifo = os.path.join(tempfile.mkdtemp(), "fifo")
os.mkfifo(fifo)  # opening it to read would wait for a writer
for path in ("/dev/zero", "/dev/null", fifo):
    for mmap in (False, True):
        try:
            hm.load(path, mmap=mmap)
        except Exception as e:
            print(type(e).__name__, e)
"""


def test_devices_and_fifos_are_refused_without_reading_them() -> None:
    if not os.path.exists("/dev/zero") or not hasattr(os, "mkfifo"):
        pytest.skip("needs /dev/zero and FIFOs")
    run = subprocess.run(
        [sys.executable, "-c", UNBOUNDED_INPUTS], capture_output=True, text=True, timeout=120
    )
    lines = [line for line in run.stdout.splitlines() if not line.startswith(("Running", "--"))]
    assert run.returncode == 0, run.stderr
    assert len(lines) == 6
    for line, kind in zip(lines, ["character device"] * 4 + ["FIFO or pipe"] * 2, strict=True):
        assert line.startswith("IndexFormatError") and f"not a regular file (a {kind})" in line


def test_a_directory_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(hm.IndexFormatError, match=rf"^{tmp_path}: not a regular file \(a dir"):
        hm.load(tmp_path)
    with pytest.raises(FileNotFoundError):  # a missing file is still the OS's error
        hm.load(tmp_path / "missing.hm")


@pytest.mark.parametrize("mmap", [False, True])
def test_reads_are_bounded_by_the_header_and_the_file_size(mmap: bool, tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = path.read_bytes()
    with open(path, "r+b") as f:
        f.truncate(256 << 20)  # 256 MiB, sparse: more than the header declares
    tracemalloc.start()
    try:
        with pytest.raises(hm.IndexFormatError, match="expected the last section padded"):
            hm.load(path, mmap=mmap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the header was checked before the rest was read
    path.write_bytes(data)
    assert len(hm.load(path, mmap=mmap)) == 20
