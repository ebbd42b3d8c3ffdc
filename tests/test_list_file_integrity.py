"""Hash-list files whose sections disagree with each other never load into wrong answers.

Each test rewrites sections of a saved list with every checksum recomputed (so only the
structure checks can catch the change), as a damaged or tampered file would arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hashmatch.io as hio
import numpy as np
import pytest
from oracle import distances

import hashmatch as hm

Sections = dict[str, Any]


def _saved(tmp_path: Path, backend: str = "flat", n: int = 200) -> tuple[Path, np.ndarray]:
    db = hm.datasets.random_codes(n, 256, seed=3)
    hl = hm.HashList("pdq", backend=backend)
    hl.add(db, keys=[f"k{i}" for i in range(n)], extras=[{"i": i} for i in range(n)])
    path = tmp_path / "list.hm"
    hl.save(path)
    return path, db


def _rewrite(path: Path, change: Callable[[dict[str, Any], Sections], None]) -> None:
    """Apply ``change(meta, sections)`` and write the file again with valid checksums."""
    sections = {k: bytearray(v) for k, v in hio.read_container(path).items()}
    meta = json.loads(bytes(sections.pop("meta")))
    change(meta, sections)
    hio.write_container(path, {"meta": json.dumps(meta).encode(), **sections})


def _swap_rows(meta: dict[str, Any], sections: Sections) -> None:
    rows = np.frombuffer(sections["ix.ids"], dtype="<i8").copy()
    rows[[0, 1]] = rows[[1, 0]]
    sections["ix.ids"] = bytearray(rows.tobytes())


def _edit_code(meta: dict[str, Any], sections: Sections) -> None:
    sections["codes"][0] ^= 0xFF


def _duplicate_row(meta: dict[str, Any], sections: Sections) -> None:
    rows = np.frombuffer(sections["ix.ids"], dtype="<i8").copy()
    rows[1] = rows[0]
    sections["ix.ids"] = bytearray(rows.tobytes())


@pytest.mark.parametrize("change", [_swap_rows, _edit_code, _duplicate_row])
@pytest.mark.parametrize("mmap", [False, True])
def test_index_rows_are_checked_against_the_list(
    tmp_path: Path, change: Callable[[dict[str, Any], Sections], None], mmap: bool
) -> None:
    path, db = _saved(tmp_path)
    _rewrite(path, change)
    with pytest.raises(hm.IndexFormatError, match=r"list\.hm"):
        hm.HashList.load(path, mmap=mmap)
    if change is not _duplicate_row:  # verify=False: no crash (answers may be wrong)
        hm.HashList.load(path, mmap=mmap, verify=False).match(db[:3])


def test_a_swapped_row_map_used_to_report_the_wrong_key(tmp_path: Path) -> None:
    path, db = _saved(tmp_path)
    _rewrite(path, _swap_rows)
    unverified = hm.HashList.load(path, verify=False)
    # what the unchecked file answers: entry 1's key for entry 0's hash
    assert unverified.match(db[:1]).keys.tolist() == ["k1"]
    with pytest.raises(hm.IndexFormatError, match=r"each of the list's rows once|another hash"):
        hm.HashList.load(path)


@pytest.mark.parametrize(
    ("section", "payload", "message"),
    [
        ("extra.blob", b"\xff\xfe", "not UTF-8|split characters"),
        ("extra.blob", b"[1, 2]", "not a JSON object"),
        ("extra.blob", b"{nope", "not a JSON object"),
        ("key.blob", b"\xc3", "not UTF-8|split characters"),
    ],
)
def test_metadata_is_validated_at_load(
    tmp_path: Path, section: str, payload: bytes, message: str
) -> None:
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff"], keys=["a"], extras={"x": 1})
    path = tmp_path / "list.hm"
    hl.save(path)

    def change(meta: dict[str, Any], sections: Sections) -> None:
        prefix = section.split(".")[0]
        sections[section] = bytearray(payload)
        sections[f"{prefix}.off"] = bytearray(np.array([0, len(payload)], "<u8").tobytes())

    _rewrite(path, change)
    with pytest.raises(hm.IndexFormatError, match=message):
        hm.HashList.load(path)
    # unverified: loads, and reading the entry names the section instead of a raw error
    loaded = hm.HashList.load(path, verify=False)
    with pytest.raises(hm.IndexFormatError, match=section.split(".")[0]):
        list(loaded.entries())
    with pytest.raises(hm.IndexFormatError):
        loaded.export(tmp_path / "out.csv")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("backend_params", "pdq"),
        ("bits", "256"),
        ("max_distance", True),
        ("hash_type", None),
        ("name", 3),
        ("backend", "nope"),
    ],
)
def test_meta_of_the_wrong_type_is_a_format_error(
    tmp_path: Path, field: str, value: object
) -> None:
    path, _ = _saved(tmp_path, n=5)
    _rewrite(path, lambda meta, sections: meta.__setitem__(field, value))
    with pytest.raises(hm.IndexFormatError, match=r"list\.hm"):
        hm.HashList.load(path)


@pytest.mark.parametrize(
    "backend", ["auto", "flat", "mih", "faiss-hnsw", "faiss-ivf", "faiss-multihash"]
)
def test_mutated_list_files_raise_or_answer_exactly(tmp_path: Path, backend: str) -> None:
    """Seeded structure-aware mutations: each load raises IndexFormatError or answers like a
    brute-force oracle over the file's own codes and entries."""
    rng = np.random.default_rng(7)
    path, db = _saved(tmp_path, backend=backend, n=300)
    original = {k: bytes(v) for k, v in hio.read_container(path).items()}
    queries = np.concatenate([db[:20], hm.datasets.random_codes(5, 256, seed=8)])
    names = [k for k in original if k != "meta" and len(original[k])]
    outcomes = {"rejected": 0, "exact": 0}
    for _ in range(60):
        name = names[int(rng.integers(len(names)))]
        data = bytearray(original[name])
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        hio.write_container(path, {**original, name: data})
        try:
            hl = hm.HashList.load(path, mmap=bool(rng.integers(2)))
        except hm.IndexFormatError:
            outcomes["rejected"] += 1
            continue
        entries = list(hl.entries())
        codes = hm.from_hex([e.hash for e in entries]) if entries else np.zeros((0, 32), "u1")
        ids = np.array([e.id for e in entries], np.int64)
        result = hl.match(queries)
        if backend.startswith("faiss"):  # approximate: every reported match must be true
            got = set(zip(result.queries.tolist(), result.ids.tolist(), strict=True))
            d = distances(queries, codes)
            for q, i in got:
                assert d[q, int(np.flatnonzero(ids == i)[0])] <= 31
        else:
            d = distances(queries, codes)
            q, j = np.nonzero(d <= 31)
            want = sorted(zip(q.tolist(), ids[j].tolist(), d[q, j].tolist(), strict=True))
            got_rows = zip(
                result.queries.tolist(), result.ids.tolist(), result.distances.tolist(), strict=True
            )
            assert sorted(got_rows) == want
            keys = {e.id: e.key for e in entries}
            assert result.keys.tolist() == [keys[i] for i in result.ids.tolist()]
        outcomes["exact"] += 1
    assert outcomes["rejected"] > 0


def test_faiss_list_answers_follow_the_lists_own_codes(tmp_path: Path) -> None:
    """faiss keeps its own copy of the codes; an approximate list reports what its codes say."""
    path, db = _saved(tmp_path, backend="faiss-multihash")
    _rewrite(path, _edit_code)  # row 0's code in the list, not in faiss
    hl = hm.HashList.load(path)
    stored = hm.from_hex([e.hash for e in hl.entries()])
    queries = db[:5]
    result = hl.match(queries)
    true = distances(queries, stored)
    for q, i, d in zip(result.queries, result.ids, result.distances, strict=True):
        assert d == true[q, i] <= hl.max_distance
    # faiss holds db[0] for row 0 (distance 0); the list holds it with 8 bits flipped
    assert result.distances[(result.queries == 0) & (result.ids == 0)].tolist() == [8]
    d, ids = hl.search(queries, 2)
    assert np.all(d[ids >= 0] == true[np.nonzero(ids >= 0)[0], ids[ids >= 0]])


def test_damaged_faiss_sections_raise_format_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    path, _ = _saved(tmp_path, backend="faiss-multihash", n=50)
    original = {k: bytes(v) for k, v in hio.read_container(path).items()}
    for _ in range(300):
        data = bytearray(original["ix.faiss"])
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        hio.write_container(path, {**original, "ix.faiss": data})
        try:
            hm.HashList.load(path).match(hm.datasets.random_codes(2, 256, seed=1))
        except hm.IndexFormatError:
            pass


def test_next_id_beyond_int64_is_a_format_error(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path, n=5)
    _rewrite(path, lambda meta, sections: meta.__setitem__("next_id", 2**63))
    with pytest.raises(hm.IndexFormatError, match="next_id"):
        hm.HashList.load(path)
