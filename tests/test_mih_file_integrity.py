"""Saved MIHIndex files whose tables disagree with their rows, every checksum recomputed.

The tables (``starts``, ``residual``, ``slot``) are derived from the codes (``rows``): with
``verify=True`` a load checks them against the rows, so a crafted or damaged file raises
IndexFormatError instead of loading and then missing stored hashes. With ``verify=False``
that pass is skipped: the file still loads without crashing, but may answer wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashmatch.errors import IndexFormatError
from oracle import knn, range_search

import hashmatch as hm
from hashmatch import io as hio

Sections = dict[str, np.ndarray]
TABLE_SECTIONS = {"starts": "<u4", "residual": "u1", "slot": "<u4"}


def rewrite(path: Path, edit: Callable[[dict[str, Any], Sections], None]) -> None:
    """Re-pack a saved index after ``edit(meta, sections)`` changed its (writable) arrays:
    write_container recomputes every section's CRC-32 and the header's."""
    raw = hio.read_container(path)
    meta = json.loads(bytes(raw.pop("meta")))
    types = {"ids": "<i8", "rows": "<u8", **TABLE_SECTIONS}
    sections = {name: np.frombuffer(raw[name], types[name]).copy() for name in raw}
    edit(meta, sections)
    hio.write_container(path, {"meta": json.dumps(meta).encode(), **sections})


def tables(meta: dict[str, Any], sections: Sections) -> list[dict[str, Any]]:
    """Each table's layout and its views into the concatenated sections (writable)."""
    n = meta["layout"]["n"]
    out, start = [], 0
    for t, (lo, length, shift) in enumerate(meta["layout"]["tables"]):
        count = (1 << (length - shift)) + 1
        out.append(
            {
                "lo": lo,
                "len": length,
                "shift": shift,
                "starts": sections["starts"][start : start + count],
                "residual": sections["residual"][t * n : (t + 1) * n],
                "slot": sections["slot"][t * n : (t + 1) * n],
            }
        )
        start += count
    return out


def file_contents(meta: dict[str, Any], sections: Sections) -> tuple[np.ndarray, np.ndarray]:
    """The (codes, ids) a file holds: its own rows and ids, whatever its tables say."""
    n, nbytes = meta["layout"]["n"], meta["bits"] // 8
    rows = sections["rows"].view(np.uint8).reshape(n, -1)[:, :nbytes]
    return np.ascontiguousarray(rows), sections["ids"].copy()


def substring(code: np.ndarray, lo: int, length: int) -> int:
    """Bits [lo, lo + length) of a code in hex order (bit 0: the top bit of byte 0)."""
    bits = np.unpackbits(code)[lo : lo + length]
    return int("".join(map(str, bits)), 2)


def load_unverified(path: Path, mmap: bool = True) -> hm.MIHIndex:
    """The loader with its row checks off (what ``hm.load(path, verify=False)`` reads)."""
    raw = hio.read_container(path, mmap=mmap, verify=False)
    meta = json.loads(bytes(raw.pop("meta")))
    return hm.MIHIndex.from_sections(meta, raw, str(path), verify=False)


# -- the three mutations of the finding ------------------------------------------------------------

M = 20  # substrings: 12- and 13-bit pieces; at 3000 hashes a bucket shift of 4-5, so residuals < 32
N = 3000
TARGET_ROW = 123
TABLE = 7


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    codes = hm.datasets.random_codes(N, 256, seed=11)
    index = hm.MIHIndex(256, substrings=M)
    index.add(codes)
    path = tmp_path / "mih.hm"
    hm.save(index, path)
    return path


def entry_of(table: dict[str, Any], row: int) -> int:
    return int(np.flatnonzero(table["slot"] == row)[0])


def duplicate_slot(meta: dict[str, Any], sections: Sections) -> None:
    """(a) Table TABLE lists another row where TARGET_ROW was: TARGET_ROW is not in it."""
    table = tables(meta, sections)[TABLE]
    e = entry_of(table, TARGET_ROW)
    table["slot"][e] = table["slot"][e + 1 if e + 1 < N else e - 1]


def residual_out_of_range(meta: dict[str, Any], sections: Sections) -> None:
    """(b) TARGET_ROW's residual byte in table TABLE set past what its shift allows."""
    table = tables(meta, sections)[TABLE]
    assert table["shift"] < 8
    table["residual"][entry_of(table, TARGET_ROW)] = 1 << table["shift"]


def changed_row(meta: dict[str, Any], sections: Sections) -> None:
    """(c) TARGET_ROW's code changed (one bit in every table's piece), its entries not."""
    nbytes = meta["bits"] // 8
    row = sections["rows"].view(np.uint8).reshape(N, -1)[TARGET_ROW, :nbytes]
    bits = np.unpackbits(row)
    for lo, _, _ in meta["layout"]["tables"]:
        bits[lo] ^= 1
    row[:] = np.packbits(bits)


MUTATIONS = {
    "duplicate-slot": duplicate_slot,
    "residual": residual_out_of_range,
    "row": changed_row,
}


def only_table_finds(
    code: np.ndarray, layout: list[list[int]], table: int, radius: int
) -> np.ndarray:
    """A query within `radius` of `code` whose pieces are beyond every table's probe radius but
    `table`'s (the refined pigeonhole bound is tight): only that table can find `code`."""
    m = len(layout)
    rho, a = divmod(radius, m)
    bits = np.unpackbits(code)
    flips = 0
    for t, (lo, _, _) in enumerate(layout):
        if t != table:
            need = (rho if t <= a else rho - 1) + 1
            bits[lo : lo + need] ^= 1
            flips += need
    assert flips <= radius
    return np.packbits(bits)[None, :]


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("mmap", [True, False])
def test_verified_load_rejects_tables_that_disagree_with_the_rows(
    saved: Path, mutation: str, mmap: bool
) -> None:
    hm.load(saved, mmap=mmap, verify=True)  # the untouched file loads
    rewrite(saved, MUTATIONS[mutation])
    with pytest.raises(IndexFormatError, match=r"(slot|residual): table \d+: ") as info:
        hm.load(saved, mmap=mmap, verify=True)
    assert str(saved) in str(info.value)
    if mutation != "row":  # a changed row is seen by whichever table is checked first
        assert f"table {TABLE}:" in str(info.value)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("mmap", [True, False])
def test_unverified_load_survives_and_may_miss_stored_hashes(
    saved: Path, mutation: str, mmap: bool
) -> None:
    rewrite(saved, MUTATIONS[mutation])
    index = load_unverified(saved, mmap=mmap)  # no crash, no out-of-bounds read (sanitizers)
    raw = hio.read_container(saved)
    meta = json.loads(bytes(raw.pop("meta")))
    codes, ids = file_contents(
        meta,
        {k: np.frombuffer(v, "u1") for k, v in raw.items()}
        | {"rows": np.frombuffer(raw["rows"], "<u8"), "ids": np.frombuffer(raw["ids"], "<i8")},
    )
    radius = M - 1  # every table probes its query piece only: MIH beats a scan here
    if mutation == "row":
        query = codes[TARGET_ROW : TARGET_ROW + 1]  # the stored code itself
    else:
        query = only_table_finds(codes[TARGET_ROW], meta["layout"]["tables"], TABLE, radius)
    flat = hm.FlatIndex(256)
    flat.add(codes, ids)
    assert TARGET_ROW in flat.range_search(query, radius).ids  # the hash is stored...
    assert TARGET_ROW not in index.range_search(query, radius).ids  # ...and missed
    index.search(query, 5)  # answers (possibly wrong ones), no crash


def test_the_harm_is_real_on_the_old_loader_path(saved: Path) -> None:
    """search and range_search disagree on an unverified tampered file (why verify checks)."""
    rewrite(saved, changed_row)
    index = load_unverified(saved)
    code = index.contents()[1][TARGET_ROW : TARGET_ROW + 1]
    assert index.search(code, 1).ids[0, 0] == TARGET_ROW
    assert TARGET_ROW not in index.range_search(code, M - 1).ids


def test_the_checks_read_the_layout_not_a_fixed_width(tmp_path: Path) -> None:
    """substring() above agrees with the saved tables (the helpers test what the core reads)."""
    codes = hm.datasets.random_codes(2000, 72, seed=2)
    index = hm.MIHIndex(72)
    index.add(codes)
    meta, sections = index.to_sections()
    arrays = {k: np.asarray(v) for k, v in sections.items()}
    for table in tables(meta, arrays):
        e = 17
        row = int(table["slot"][e])
        key = substring(codes[row], table["lo"], table["len"])
        bucket = int(np.searchsorted(table["starts"], e, side="right")) - 1
        assert key >> table["shift"] == bucket
        assert int(table["residual"][e]) == key & ((1 << min(table["shift"], 8)) - 1)


# -- seeded structure-aware mutations ------------------------------------------------------------


def mutate(rng: np.random.Generator, meta: dict[str, Any], sections: Sections) -> str:
    """One random change to the arrays (the meta is left alone); returns what it did."""
    n = meta["layout"]["n"]
    table = tables(meta, sections)[int(rng.integers(len(meta["layout"]["tables"])))]
    kinds = [
        "byte",
        "slot",
        "swap-slots",
        "swap-near",
        "residual",
        "row-bit",
        "starts",
        "swap-rows",
    ]
    benign = ["swap-entries", "id"]  # these keep the file consistent
    kind = str(rng.choice(benign if rng.random() < 0.3 else kinds))
    if kind == "byte":  # any byte of any array
        name = str(rng.choice(sorted(sections)))
        raw = sections[name].view(np.uint8)
        raw[rng.integers(len(raw))] ^= np.uint8(1 << int(rng.integers(8)))
    elif kind == "slot":
        table["slot"][rng.integers(n)] = rng.integers(n)
    elif kind in ("swap-slots", "swap-near"):  # a permutation still, often within one bucket
        i = int(rng.integers(n))
        j = (
            int(rng.integers(n))
            if kind == "swap-slots"
            else min(n - 1, i + int(rng.integers(1, 4)))
        )
        table["slot"][[i, j]] = table["slot"][[j, i]]
    elif kind == "residual":
        table["residual"][rng.integers(n)] = rng.integers(256)
    elif kind == "row-bit":  # one bit of one code (padding bits included)
        raw = sections["rows"].view(np.uint8)
        raw[rng.integers(len(raw))] ^= np.uint8(1 << int(rng.integers(8)))
    elif kind == "starts":  # move a bucket boundary by one
        starts = table["starts"]
        v = int(rng.integers(1, len(starts) - 1)) if len(starts) > 2 else 0
        starts[v] = max(0, int(starts[v]) + int(rng.choice([-1, 1])))
    elif kind == "swap-entries":  # two entries of one bucket trade places: still consistent
        starts = table["starts"]
        full = np.flatnonzero(np.diff(starts.astype(np.int64)) >= 2)
        if len(full):
            begin = int(starts[full[rng.integers(len(full))]])
            for name in ("slot", "residual"):
                table[name][[begin, begin + 1]] = table[name][[begin + 1, begin]]
    elif kind == "id":  # another id: answers must follow the file's ids
        sections["ids"][rng.integers(n)] = rng.integers(0, 2**40)
    else:  # two rows exchange codes: every table now disagrees, unless they were equal
        i, j = rng.integers(n, size=2)
        rows = sections["rows"].reshape(n, -1)
        rows[[i, j]] = rows[[j, i]]
    return kind


def mutate_file(
    rng: np.random.Generator, path: Path
) -> tuple[list[str], tuple[np.ndarray, np.ndarray]]:
    """One or two random mutations of a saved file, re-checksummed; what they were and the
    (codes, ids) the mutated file holds."""
    kinds: list[str] = []
    contents: list[tuple[np.ndarray, np.ndarray]] = []

    def edit(meta: dict[str, Any], sections: Sections) -> None:
        for _ in range(int(rng.integers(1, 3))):
            kinds.append(mutate(rng, meta, sections))
        contents.append(file_contents(meta, sections))

    rewrite(path, edit)
    return kinds, contents[0]


@pytest.mark.parametrize("bits", [64, 72, 256])
def test_random_mutations_raise_or_answer_exactly(bits: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(bits)
    codes = hm.datasets.random_codes(1500, bits, seed=bits)
    codes[100:110] = codes[0]  # duplicate codes: ties and identical keys
    index = hm.MIHIndex(bits)
    index.add(codes)
    index.compact()
    original = tmp_path / "original.hm"
    hm.save(index, original)
    data = original.read_bytes()
    path = tmp_path / "mutated.hm"
    outcomes: dict[str, int] = {}
    for trial in range(60):
        path.write_bytes(data)
        kinds, (db, ids) = mutate_file(rng, path)
        try:
            loaded = hm.load(path, mmap=bool(trial % 2), verify=True)
        except IndexFormatError:
            outcomes["raised"] = outcomes.get("raised", 0) + 1
            continue
        outcomes["loaded"] = outcomes.get("loaded", 0) + 1
        layout = json.loads(bytes(hio.read_container(path)["meta"]))["layout"]["tables"]
        m = len(layout)
        queries = np.concatenate(
            [
                hm.datasets.flip_bits(
                    db[rng.integers(len(db), size=6)], rng.integers(0, bits // 6, 6), seed=trial
                ),
                db[rng.integers(len(db), size=2)],
                # stored codes only one (random) table can find at radius m - 1
                *(
                    only_table_finds(db[r], layout, int(rng.integers(m)), m - 1)
                    for r in rng.integers(len(db), size=4)
                ),
            ]
        )
        for radius in (0, 3, m - 1, bits // 16, bits // 8):
            got = loaded.range_search(queries, radius)
            want = range_search(db, ids, queries, radius)
            np.testing.assert_array_equal(got.lims, want[0], err_msg=str(kinds))
            np.testing.assert_array_equal(got.distances, want[1], err_msg=str(kinds))
            np.testing.assert_array_equal(got.ids, want[2], err_msg=str(kinds))
        for k in (1, 7):
            d, i = loaded.search(queries, k)
            wd, wi = knn(db, ids, queries, k)
            np.testing.assert_array_equal(d, wd, err_msg=str(kinds))
            np.testing.assert_array_equal(i, wi, err_msg=str(kinds))
    # Both outcomes occur: the mutations reach the checks, and the benign ones reach searches.
    assert outcomes.get("raised", 0) > 10 and outcomes.get("loaded", 0) > 5, outcomes
