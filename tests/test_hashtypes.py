"""Hash types and quality rules: one home, asked by lists, matching, files and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from hashmatch.hashtypes import (
    HASH_TYPES,
    check_min_quality,
    check_qualities,
    check_quality,
    default_max_distance,
    hash_type,
    hash_types,
    resolve,
)

import hashmatch as hm


def test_every_named_type_has_width_radius_and_grid() -> None:
    for t in hash_types():
        if t.name == "raw":
            assert t.bits is None and t.max_distance is None and t.grid is None
            continue
        assert HASH_TYPES[t.name] == t.bits
        rows, cols = t.grid or (0, 0)
        assert rows * cols == t.bits
        assert t.radius(t.bits or 0) == t.max_distance
    assert hash_type("pdq").max_distance == 31 and hash_type("PHash").max_distance == 10
    assert hash_type("pdq").has_quality and not hash_type("dhash").has_quality


def test_raw_radius_follows_the_width() -> None:
    raw = hash_type("raw")
    assert [raw.radius(b) for b in (64, 128, 256, 8)] == [10, 16, 31, 1]
    assert default_max_distance(128) == 16


def test_resolve_checks_width_against_the_type() -> None:
    assert resolve("pdq") == (hash_type("pdq"), 256)
    assert resolve("raw", 72)[1] == 72
    with pytest.raises(hm.InvalidArgument, match="bits: hash_type 'raw' needs bits="):
        resolve("raw")
    with pytest.raises(hm.InvalidArgument, match="bits: pdq hashes have 256 bits, got 64"):
        resolve("pdq", 64)
    with pytest.raises(hm.InvalidArgument, match=r"hash_type: expected one of .* got 'md5'"):
        hash_type("md5")
    with pytest.raises(hm.InvalidType, match="hash_type: expected a str"):
        hash_type(256)


def test_quality_rules_are_one_rule() -> None:
    assert check_quality(None, "q") is None
    assert check_quality(50.0, "q") == 50
    for bad in (101, -1, 50.5, float("nan")):
        with pytest.raises(hm.InvalidArgument, match="q:"):
            check_quality(bad, "q")
    with pytest.raises(hm.InvalidType):
        check_quality(True, "q")
    assert check_qualities([10, None, 100, -1], 4).tolist() == [10, -1, 100, -1]
    assert check_qualities(80, 2).tolist() == [80, 80]
    assert check_qualities(np.array([0, -1, 7], np.int32), 3).tolist() == [0, -1, 7]
    with pytest.raises(hm.InvalidArgument, match=r"qualities\[1\]: expected a quality"):
        check_qualities(np.array([0, 101]), 2)
    with pytest.raises(hm.InvalidArgument, match="expected 3 values"):
        check_qualities([1, 2], 3)
    with pytest.raises(hm.InvalidArgument, match=r"qualities\[1\]: missing"):
        check_qualities([1, None], 2, missing_ok=False)
    assert check_min_quality(50) == 50.0
    with pytest.raises(hm.InvalidArgument, match="min_quality"):
        check_min_quality(101)
