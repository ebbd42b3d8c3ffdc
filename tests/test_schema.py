"""The per-entry schema is declared once and everything else follows it."""

from __future__ import annotations

import numpy as np
import pytest
from hashmatch.results import MatchResult
from hashmatch.schema import FIELDS, Columns

import hashmatch as hm
from hashmatch import schema


def test_entry_is_id_hash_and_the_schema_fields() -> None:
    assert hm.Entry._fields == ("id", "hash", *(f.name for f in FIELDS))


def test_match_columns_are_the_fields_marked_in_matches() -> None:
    reported = {f.column for f in FIELDS if f.in_matches}
    assert reported <= set(MatchResult.__dataclass_fields__)
    assert reported <= set(hm.Match._fields) | {f.column for f in FIELDS}


def test_saved_sections_follow_the_schema() -> None:
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff"], keys=["k"], labels=["a"], source="s", quality=5, extras={"x": 1})
    meta, sections = hl._to_sections()
    expected = {"ids", "codes"}
    for f in FIELDS:
        if f.kind == "text":
            expected |= {f"{f.section}.off", f"{f.section}.blob"}
        else:
            expected.add(f.section)
        if f.table:
            assert f.table in meta
    assert expected == {s for s in sections if not s.startswith("ix.")}


def test_columns_take_concat_and_decode_every_field() -> None:
    a = Columns.normalised(
        2, {"keys": ["a", None], "labels": [("x", "y"), ()], "source": "s", "quality": [7, None]}
    )
    b = Columns.normalised(1, {"extras": [{"n": 1}], "labels": "z"})
    both = Columns.concat([a, b])
    assert len(both) == 3 and both.is_valid()
    decoded = both.take([2, 0]).decoded([0, 1])
    assert decoded == {
        "key": [None, "a"],
        "source": [None, "s"],
        "labels": [("z",), ("x", "y")],
        "quality": [None, 7],
        "extras": [{"n": 1}, {}],
    }


def test_field_errors_name_the_add_argument() -> None:
    with pytest.raises(hm.InvalidArgument, match=r"keys\[1\]: expected unique keys"):
        Columns.normalised(2, {"keys": ["a", "a"]})
    with pytest.raises(hm.InvalidArgument, match=r"quality\[0\]: expected a quality"):
        Columns.normalised(1, {"quality": [101]})
    with pytest.raises(hm.InvalidArgument, match=r"extras\[0\]: expected at most"):
        Columns.normalised(1, {"extras": [{"x": "y" * (schema.MAX_EXTRAS_BYTES + 1)}]})
    with pytest.raises(hm.InvalidType, match="source: expected a str"):
        Columns.normalised(1, {"source": [3]})
    assert np.array_equal(Columns.of(3).quality, [-1, -1, -1])
