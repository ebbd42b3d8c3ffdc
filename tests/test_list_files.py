"""HashList files: round trips (read and memory-mapped), every damaged byte region refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from oracle import random_db

import hashmatch as hm
from hashmatch import io as hio


def labelled_list(rng: np.random.Generator, n: int, backend: str = "auto") -> hm.HashList:
    hl = hm.HashList("pdq", name="partner", max_distance=25, backend=backend)
    hl.add(
        random_db(rng, n, 32, duplicates=3),
        keys=[f"k{i}" if i % 3 else None for i in range(n)],
        labels=[("terrorism", "video") if i % 2 else ("self-harm",) for i in range(n)],
        source=["te" if i % 4 else None for i in range(n)],
        quality=[None if i % 5 == 0 else i % 101 for i in range(n)],
        extras=[{"i": i, "s": "é"} if i % 6 == 0 else None for i in range(n)],
    )
    hl.remove([1, 2])
    hl.add(random_db(rng, 3, 32), ids=[10**9, 10**9 + 1, 10**9 + 2], labels="late")
    return hl


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("backend", ["flat", "mih", "faiss-ivf"])
def test_round_trip_preserves_entries_and_results(
    mmap: bool, backend: str, tmp_path: Path, rng: np.random.Generator
) -> None:
    hl = labelled_list(rng, 3000, backend)
    path = tmp_path / "list.hm"
    hl.save(path)
    back = hm.HashList.load(path, mmap=mmap)
    assert list(back.entries()) == list(hl.entries())
    assert (back.hash_type, back.bits, back.max_distance, back.name, back.backend) == (
        "pdq",
        256,
        25,
        "partner",
        backend,
    )
    queries = np.concatenate([random_db(rng, 20, 32), back._snapshot.segments[0].codes[:30]])
    a, b = hl.match(queries), back.match(queries)
    assert a.ids.tolist() == b.ids.tolist() and a.labels.tolist() == b.labels.tolist()
    assert back.get_key("k4").id == 4
    # A loaded list keeps working as a list: new ids continue, removes and adds apply.
    assert back.add(random_db(rng, 1, 32)).tolist() == [10**9 + 3]
    assert back.remove([4]) == 1 and len(back) == len(hl)
    assert hm.load(path).__class__ is hm.HashList


def test_empty_list_round_trips(tmp_path: Path) -> None:
    hm.HashList("phash").save(tmp_path / "e.hm")
    back = hm.HashList.load(tmp_path / "e.hm", mmap=True)
    assert len(back) == 0 and back.bits == 64 and back.add(["00" * 8]).tolist() == [0]


def test_loading_an_index_file_as_a_list_is_refused(tmp_path: Path) -> None:
    hm.save(hm.FlatIndex(64), tmp_path / "i.hm")
    with pytest.raises(hm.IndexFormatError, match="not a HashList"):
        hm.HashList.load(tmp_path / "i.hm")


def test_every_damaged_byte_region_is_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    hl = labelled_list(rng, 40)
    path = tmp_path / "small.hm"
    hl.save(path)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.hm"
    step = max(1, len(data) // 400)  # bounded: about 400 offsets over every region of the file
    for offset in range(0, len(data), step):
        flipped = bytearray(data)
        flipped[offset] ^= 0x41
        damaged.write_bytes(bytes(flipped))
        for mmap in (False, True):
            with pytest.raises(hm.IndexFormatError):
                hm.HashList.load(damaged, mmap=mmap)
    for length in range(0, len(data), step):
        damaged.write_bytes(data[:length])
        with pytest.raises(hm.IndexFormatError):
            hm.HashList.load(damaged)


def rewrite(path: Path, out: Path, changes: dict[str, bytes]) -> None:
    """Rewrite sections of a file with valid checksums: a hostile, not a damaged, file."""
    sections = {k: bytes(v) for k, v in hio.read_container(path, mmap=False, verify=True).items()}
    sections.update(changes)
    hio.write_container(out, sections)


@pytest.mark.parametrize(
    ("section", "make"),
    [
        ("ids", lambda n: np.arange(n, 0, -1, dtype="<i8").tobytes()),  # not increasing
        ("key.off", lambda n: np.full(n + 1, 7, "<u8").tobytes()),  # offsets past the blob
        ("labelset", lambda n: np.full(n, 99, "<u4").tobytes()),  # no such label set
        ("quality", lambda n: np.full(n, 300, "<i2").tobytes()),
        ("codes", lambda n: b"\0" * 5),
        ("ix.ids", lambda n: (np.arange(n, dtype="<i8") + 5).tobytes()),  # rows past the list
    ],
)
def test_hostile_sections_are_refused(
    section: str, make: object, tmp_path: Path, rng: np.random.Generator
) -> None:
    hl = hm.HashList("pdq", backend="flat")
    hl.add(random_db(rng, 20, 32), keys=[f"k{i}" for i in range(20)], labels="x")
    hl.save(tmp_path / "ok.hm")
    rewrite(tmp_path / "ok.hm", tmp_path / "bad.hm", {section: make(20)})  # type: ignore[operator]
    for mmap in (False, True):
        with pytest.raises(hm.IndexFormatError):
            hm.HashList.load(tmp_path / "bad.hm", mmap=mmap, verify=False)


def test_meta_with_unknown_fields_or_format_is_refused(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    import json

    hl = hm.HashList("pdq")
    hl.add(random_db(rng, 5, 32))
    hl.save(tmp_path / "ok.hm")
    meta = json.loads(bytes(hio.read_container(tmp_path / "ok.hm", mmap=False)["meta"]))
    for change, message in [
        ({"list_format": 2}, "hash-list format 2"),
        ({"surprise": 1}, "unknown fields"),
        ({"hash_type": "md5"}, "does not describe a hash list"),
        ({"count": 6}, "section"),
    ]:
        rewrite(
            tmp_path / "ok.hm",
            tmp_path / "bad.hm",
            {"meta": json.dumps({**meta, **change}).encode()},
        )
        with pytest.raises(hm.IndexFormatError, match=message):
            hm.HashList.load(tmp_path / "bad.hm")


@pytest.mark.parametrize("name", ["faiss", "mih"])
def test_lists_saved_by_0_1_0_still_load(name: str) -> None:
    """Files written before the reshape (a faiss list's index as ``{"faiss": true}``)."""
    path = Path(__file__).parent / "data" / f"legacy-list-{name}.hm"
    hl = hm.HashList.load(path)
    db = hm.datasets.random_codes(40, 256, seed=11)
    assert (len(hl), hl.name, hl.stats()["next_id"]) == (39, "legacy", 40)
    assert 5 not in hl and hl.get(6) == hm.Entry(
        6, hm.to_hex(db[6]), "k6", "p", ("a",), 6, {"x": 1}
    )
    result = hl.match(db[[7]])
    assert (result.ids.tolist(), result.keys.tolist(), result.labels.tolist()) == (
        [7], ["k7"], [("b", "c")]
    )  # fmt: skip


@pytest.mark.parametrize("suffix", [".tsv.gz", ".csv", ".txt", ".tab"])
def test_export_follows_the_extension_and_reads_back(tmp_path: Path, suffix: str) -> None:
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff", "0f0f0f0f0f0f0f0f"], keys=["a", "b"], labels=["x y"])
    path = tmp_path / f"list{suffix}"
    assert hl.export(path) == 2
    back = hm.HashList.from_file(path, "phash")
    assert [e.hash for e in back.entries()] == [e.hash for e in hl.entries()]
    if suffix not in (".txt",):
        assert [e.key for e in back.entries()] == ["a", "b"]
