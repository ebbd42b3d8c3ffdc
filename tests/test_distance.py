"""hamming and cdist against the numpy oracle, plus metric properties."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import WIDTHS_BYTES
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracle import distances

import hashmatch as hm


@pytest.mark.parametrize("nbytes", WIDTHS_BYTES)
def test_cdist_and_hamming_match_oracle(kernel: str, nbytes: int, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, (23, nbytes), dtype=np.uint8)
    b = rng.integers(0, 256, (37, nbytes), dtype=np.uint8)
    b[5] = a[3]
    b[6] = ~a[4]
    expected = distances(a, b)
    got = hm.cdist(a, b, threads=2)
    assert got.dtype == np.uint16 and got.shape == (23, 37)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(hm.hamming(a, b[:23]), np.diagonal(expected[:, :23]))
    np.testing.assert_array_equal(hm.hamming(a[3], b), expected[3])  # one against many
    np.testing.assert_array_equal(hm.hamming(b, a[3]), expected[3])
    assert hm.hamming(a[4], b[6]) == 8 * nbytes


def test_hamming_of_two_hex_strings_is_an_int() -> None:
    d = hm.hamming("f" * 64, "0" * 64)
    assert d == 256 and isinstance(d, int)


def test_cdist_empty_sides() -> None:
    assert hm.cdist(np.zeros((0, 8), np.uint8), np.zeros((3, 8), np.uint8)).shape == (0, 3)
    assert hm.cdist(np.zeros((2, 8), np.uint8), np.zeros((0, 8), np.uint8)).shape == (2, 0)


def test_cdist_threads_identical(rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, (70, 32), dtype=np.uint8)
    b = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    np.testing.assert_array_equal(hm.cdist(a, b, threads=1), hm.cdist(a, b, threads=3))


def test_mismatched_widths_and_lengths() -> None:
    with pytest.raises(hm.HashTypeMismatch, match="8 bytes"):
        hm.cdist(np.zeros((2, 8), np.uint8), np.zeros((2, 4), np.uint8))
    with pytest.raises(hm.InvalidArgument, match="expected 3 hashes"):
        hm.hamming(np.zeros((3, 8), np.uint8), np.zeros((2, 8), np.uint8))


def test_huge_cdist_is_refused_before_allocating() -> None:
    a = np.zeros((2**18, 8), np.uint8)  # 2 MiB of hashes, a 128 GiB distance matrix
    with pytest.raises(MemoryError, match="GiB"):
        hm.cdist(a, a)


codes = st.integers(1, 40).flatmap(
    lambda nbytes: st.tuples(*[hnp.arrays(np.uint8, (nbytes,)) for _ in range(3)])
)


@given(codes)
def test_metric_properties(abc: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    a, b, c = abc
    bits = 8 * len(a)
    assert hm.hamming(a, a) == 0
    assert hm.hamming(a, b) == hm.hamming(b, a)
    assert hm.hamming(a, c) <= hm.hamming(a, b) + hm.hamming(b, c)
    assert hm.hamming(a, ~b) == bits - hm.hamming(a, b)
    assert hm.hamming(a, b) == int(np.bitwise_count(a ^ b).sum())
