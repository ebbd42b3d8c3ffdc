"""Tests of hashmatch.errors and hashmatch._validation (argument checks, as_codes)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashmatch._validation import (
    as_codes,
    check_bits,
    check_count,
    check_id_list,
    check_ids,
    check_k,
    check_max_distance,
    check_threads,
)
from hashmatch.errors import (
    ChecksumError,
    HashFormatError,
    HashmatchError,
    HashTypeMismatch,
    IndexFormatError,
    InvalidArgument,
    InvalidType,
)

RNG = np.random.default_rng(20240601)
BASE = RNG.integers(0, 256, size=(6, 32), dtype=np.uint8)

# ---------------------------------------------------------------- exceptions


@pytest.mark.parametrize(
    ("cls", "builtins"),
    [
        (InvalidArgument, (ValueError,)),
        (InvalidType, (TypeError,)),
        (HashFormatError, (ValueError, InvalidArgument)),
        (HashTypeMismatch, (TypeError, ValueError)),
        (IndexFormatError, (ValueError,)),
        (ChecksumError, (ValueError, IndexFormatError)),
    ],
)
def test_exception_family(cls: type[Exception], builtins: tuple[type[Exception], ...]) -> None:
    for base in (HashmatchError, *builtins):
        with pytest.raises(base, match="boom"):
            raise cls("boom")


def test_exception_family_excludes_unrelated_builtins() -> None:
    assert not issubclass(InvalidArgument, TypeError)
    assert not issubclass(InvalidType, ValueError)
    assert not issubclass(HashFormatError, TypeError)
    assert not issubclass(IndexFormatError, TypeError)
    assert not issubclass(HashmatchError, (ValueError, TypeError))


def test_hash_type_mismatch_caught_by_either_builtin() -> None:
    for caught in (TypeError, ValueError):
        try:
            raise HashTypeMismatch("x")
        except caught as exc:
            assert isinstance(exc, HashmatchError)


# ---------------------------------------------------------------- check_bits


@pytest.mark.parametrize("bits", [8, 64, 256, 4096, np.int64(256), np.uint16(64)])
def test_check_bits_accepts(bits: object) -> None:
    result = check_bits(bits)
    assert result == int(bits)  # type: ignore[call-overload]
    assert type(result) is int


@pytest.mark.parametrize("bits", [True, 256.0, "256", None, np.float64(64), np.bool_(True)])
def test_check_bits_rejects_types(bits: object) -> None:
    with pytest.raises(
        InvalidType, match=r"^bits: expected an integer multiple of 8 in \[8, 4096\]"
    ):
        check_bits(bits)


@pytest.mark.parametrize("bits", [0, -8, 250, 4, 4104, 8192])
def test_check_bits_rejects_values(bits: int) -> None:
    with pytest.raises(InvalidArgument, match=rf"^bits: expected .*\[8, 4096\], got {bits}$"):
        check_bits(bits)


def test_check_bits_custom_name() -> None:
    with pytest.raises(InvalidArgument, match=r"^nbits: "):
        check_bits(12, name="nbits")


# ---------------------------------------------------------------- check_k


@pytest.mark.parametrize("k", [1, 2, 10**6, np.int32(5), np.uint8(1)])
def test_check_k_accepts(k: object) -> None:
    assert check_k(k) == int(k)  # type: ignore[call-overload]


@pytest.mark.parametrize("k", [0, -1, np.int64(-5)])
def test_check_k_rejects_values(k: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^k: expected an integer >= 1, got -?\d+$"):
        check_k(k)


@pytest.mark.parametrize("k", [True, False, 1.0, math.nan, "3", None, np.float32(2)])
def test_check_k_rejects_types(k: object) -> None:
    with pytest.raises(InvalidType, match=rf"^k: expected an integer >= 1, got {type(k).__name__}"):
        check_k(k)


@pytest.mark.parametrize("k", [2**63, 2**64, 10**30, np.uint64(2**64 - 1)])
def test_check_k_rejects_what_no_c_integer_holds(k: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^k: expected an integer <= 2\*\*63 - 1, got \d+$"):
        check_k(k)
    assert check_k(2**63 - 1) == 2**63 - 1


def test_check_count() -> None:
    assert check_count(0, "n") == 0 and check_count(np.uint64(2**63 - 1), "n") == 2**63 - 1
    for value in (-1, 2**63, 2**64, np.uint64(2**64 - 1)):
        with pytest.raises(
            InvalidArgument, match=r"^n: expected a non-negative integer below 2\*\*63"
        ):
            check_count(value, "n")
    for value in (1.0, True, "3", None):
        with pytest.raises(InvalidType, match=r"^n: "):
            check_count(value, "n")


# ---------------------------------------------------------------- check_max_distance


@pytest.mark.parametrize("bits", [8, 64, 256])
def test_check_max_distance_boundaries(bits: int) -> None:
    assert check_max_distance(0, bits) == 0
    assert check_max_distance(bits, bits) == bits
    for bad in (-1, bits + 1):
        with pytest.raises(
            InvalidArgument, match=rf"max_distance: expected .*\[0, {bits}\], got {bad}"
        ):
            check_max_distance(bad, bits)


def test_check_max_distance_far_above_width() -> None:
    with pytest.raises(InvalidArgument, match=r"\[0, 256\], got 300"):
        check_max_distance(300, 256)


@pytest.mark.parametrize("value", [np.int8(31), np.uint64(31), np.int64(31)])
def test_check_max_distance_numpy_integers(value: object) -> None:
    result = check_max_distance(value, 256)
    assert result == 31
    assert type(result) is int


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 31.5, 31.0, True, False, "31", None, np.float32(31)]
)
def test_check_max_distance_rejects_types(value: object) -> None:
    with pytest.raises(
        InvalidType, match=r"^max_distance: expected an integer in \[0, 256\], got "
    ):
        check_max_distance(value, 256)


def test_check_max_distance_custom_name() -> None:
    with pytest.raises(InvalidArgument, match=r"^radius: expected an integer in \[0, 64\], got 65"):
        check_max_distance(65, 64, name="radius")


# ---------------------------------------------------------------- check_threads


def test_check_threads_none_is_usable_cores() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert check_threads(None) == expected


def test_check_threads_none_without_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert check_threads(None) == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert check_threads(None) == 1


@pytest.mark.parametrize("threads", [1, 2, 1024, np.int64(4), (os.cpu_count() or 1) + 1])
def test_check_threads_accepts(threads: object) -> None:
    assert check_threads(threads) == int(threads)  # type: ignore[call-overload]


@pytest.mark.parametrize("threads", [0, -1, 1025])
def test_check_threads_rejects_values(threads: int) -> None:
    with pytest.raises(
        InvalidArgument,
        match=rf"^threads: expected None or an integer in \[1, 1024\], got {threads}$",
    ):
        check_threads(threads)


@pytest.mark.parametrize("threads", [1.0, True, "2", math.nan])
def test_check_threads_rejects_types(threads: object) -> None:
    with pytest.raises(InvalidType, match=r"^threads: expected None or an integer"):
        check_threads(threads)


# ---------------------------------------------------------------- check_ids


def _gen() -> Any:
    return (i * 10 for i in range(3))


@pytest.mark.parametrize(
    "ids",
    [
        [0, 10, 20],
        (0, 10, 20),
        _gen(),
        [np.int64(0), np.uint64(10), 20],
        np.array([0, 10, 20], dtype=np.int8),
        np.array([0, 10, 20], dtype=np.uint32),
        np.array([0, 10, 20], dtype=np.uint64),
        np.array([0, 99, 10, 99, 20], dtype=np.int64)[::2],
    ],
)
def test_check_ids_accepts(ids: object) -> None:
    out = check_ids(ids, 3)
    assert out.dtype == np.int64
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, [0, 10, 20])


def test_check_ids_limits_and_empty() -> None:
    big = 2**63 - 1
    np.testing.assert_array_equal(check_ids(np.array([big], dtype=np.uint64), 1), [big])
    np.testing.assert_array_equal(check_ids([big], 1), [big])
    assert check_ids([], 0).shape == (0,)
    assert check_ids(np.empty(0, dtype=np.uint64), 0).dtype == np.int64


def test_check_ids_takes_an_empty_float_array_as_no_ids() -> None:
    # np.array([]) is float64: an empty list of ids all the same
    assert check_ids(np.array([]), 0).dtype == np.int64
    with pytest.raises(InvalidType, match="float64"):
        check_ids(np.array([1.0]), 1)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([], []),
        ((), []),
        (np.array([]), []),
        (iter([]), []),
        (5, [5]),
        (np.int64(5), [5]),
        (np.array(5), [5]),
        ([3, np.uint64(4)], [3, 4]),
        (np.array([3, 4], dtype=np.uint8), [3, 4]),
    ],
)
def test_check_id_list_accepts(ids: object, expected: list[int]) -> None:
    out = check_id_list(ids)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("ids", "error", "match"),
    [
        ("5", InvalidType, r"^ids: expected a sequence of integers, got str"),
        (None, InvalidType, r"^ids: expected a sequence of integers, got NoneType"),
        (True, InvalidType, r"^ids: expected a sequence of integers, got bool"),
        ([1.5], InvalidType, r"^ids\[0\]: expected integers, got float"),
        ([2**64], InvalidArgument, r"^ids\[0\]: expected an id in \[0, 2\*\*63 - 1\]"),
        ([1, 1], InvalidArgument, r"^ids\[1\]: expected unique ids"),
        (np.array([[1]]), InvalidArgument, r"^ids: expected a 1-D sequence"),
    ],
)
def test_check_id_list_rejects(ids: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check_id_list(ids)


def test_check_ids_does_not_modify_input() -> None:
    ids = np.array([3, 1, 2], dtype=np.uint16)
    check_ids(ids, 3)
    np.testing.assert_array_equal(ids, [3, 1, 2])
    assert ids.dtype == np.uint16


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([1.0, 2.0], r"^ids\[0\]: expected integers, got float 1\.0"),
        ([1, 2.5], r"^ids\[1\]: expected integers, got float"),
        (np.array([1.0, 2.0]), r"^ids: expected integers, got an array of dtype float64"),
        ([1, True], r"^ids\[1\]: expected integers, got bool"),
        (np.array([True, False]), r"^ids: expected integers, got an array of dtype bool"),
        (["1", "2"], r"^ids\[0\]: expected integers, got str"),
        (np.array(["1", "2"]), r"^ids: expected integers, got an array of dtype <U1"),
        ("12", r"^ids: expected a sequence of integers, got str"),
        (None, r"^ids: expected a sequence of integers, got NoneType"),
        (7, r"^ids: expected a sequence of integers, got int"),
        ({1, 2}, r"^ids: expected a sequence of integers, got set"),
        ({1: 0, 2: 0}, r"^ids: expected a sequence of integers, got dict"),
    ],
)
def test_check_ids_rejects_types(ids: object, match: str) -> None:
    with pytest.raises(InvalidType, match=match):
        check_ids(ids, 2)


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([0, -1], r"^ids\[1\]: expected a non-negative id, got -1$"),
        (np.array([5, -3], dtype=np.int32), r"^ids\[1\]: expected a non-negative id, got -3$"),
        ([0, 2**63], r"^ids\[1\]: expected an id in \[0, 2\*\*63 - 1\], got 9223372036854775808"),
        ([0, 2**70], r"^ids\[1\]: expected an id in \[0, 2\*\*63 - 1\], got"),
        ([-(2**64), 0], r"^ids\[0\]: expected an id in \[0, 2\*\*63 - 1\], got"),
        ([0, np.uint64(2**64 - 1)], r"^ids\[1\]: .* got 18446744073709551615"),
        (
            np.array([1, 2**64 - 1], dtype=np.uint64),
            r"^ids\[1\]: expected an id in \[0, 2\*\*63 - 1\], got 18446744073709551615",
        ),
        ([7, 7], r"^ids\[1\]: expected unique ids, got duplicate id 7 \(also at ids\[0\]\)$"),
    ],
)
def test_check_ids_rejects_values(ids: object, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        check_ids(ids, 2)


def test_check_ids_reports_first_duplicate() -> None:
    ids = [9, 4, 5, 4, 9, 5]
    with pytest.raises(InvalidArgument, match=r"^ids\[3\]: .*duplicate id 4 \(also at ids\[1\]\)$"):
        check_ids(ids, 6)


def test_check_ids_shape_and_length() -> None:
    with pytest.raises(InvalidArgument, match=r"^ids: expected 3 ids \(one per hash\), got 2$"):
        check_ids([1, 2], 3)
    with pytest.raises(
        InvalidArgument, match=r"^ids: expected a 1-D sequence, got shape \(2, 2\)$"
    ):
        check_ids(np.arange(4).reshape(2, 2), 4)
    with pytest.raises(InvalidArgument, match=r"^ids: expected a 1-D sequence, got shape \(\)$"):
        check_ids(np.array(5), 1)
    with pytest.raises(InvalidArgument, match=r"^labels: expected 1 ids"):
        check_ids([1, 2], 1, name="labels")


# ---------------------------------------------------------------- as_codes: kinds of input


@pytest.mark.parametrize(
    "single",
    [
        BASE[0].tobytes().hex(),
        BASE[0].tobytes().hex().upper(),
        np.str_(BASE[0].tobytes().hex()),
        BASE[0].tobytes(),
        bytearray(BASE[0].tobytes()),
        memoryview(BASE[0].tobytes()),
        BASE[0],
    ],
)
def test_as_codes_single(single: object) -> None:
    codes, is_single = as_codes(single, nbytes=32)
    assert is_single
    assert codes.shape == (1, 32)
    assert codes.dtype == np.uint8
    np.testing.assert_array_equal(codes[0], BASE[0])


_HEX = [row.tobytes().hex() for row in BASE]


@pytest.mark.parametrize(
    "batch",
    [
        _HEX,
        tuple(_HEX),
        [h.upper() for h in _HEX],
        [np.str_(h) for h in _HEX],
        np.array(_HEX),
        np.array(_HEX, dtype=object),
        [row.tobytes() for row in BASE],
        [bytearray(row.tobytes()) for row in BASE],
        memoryview(BASE),
        BASE,
    ],
)
def test_as_codes_batch(batch: object) -> None:
    codes, is_single = as_codes(batch)
    assert not is_single
    assert codes.dtype == np.uint8
    assert codes.flags.c_contiguous
    np.testing.assert_array_equal(codes, BASE)


def test_as_codes_generator() -> None:
    codes, is_single = as_codes(h for h in _HEX)
    assert not is_single
    np.testing.assert_array_equal(codes, BASE)


def test_as_codes_empty() -> None:
    for empty in ([], (), np.array([], dtype=str)):
        codes, is_single = as_codes(empty, nbytes=32)
        assert codes.shape == (0, 32)
        assert codes.dtype == np.uint8
        assert not is_single
        with pytest.raises(InvalidArgument, match=r"^hashes: cannot infer the hash width"):
            as_codes(empty)
    codes, _ = as_codes(np.empty((0, 8), dtype=np.uint8))
    assert codes.shape == (0, 8)


@pytest.mark.parametrize("bad", [None, 5, 3.5, {"a": "ff"}, {"ff"}, object(), np.uint8(3)])
def test_as_codes_rejects_types(bad: object) -> None:
    with pytest.raises(
        InvalidType, match=rf"^queries: expected a hex str, .* got {type(bad).__name__}$"
    ):
        as_codes(bad, name="queries")


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        (["ff", b"\xff"], r"^hashes\[1\]: expected str like hashes\[0\], got bytes$"),
        ([b"\xff", "ff"], r"^hashes\[1\]: expected bytes like hashes\[0\], got str$"),
        (["ff", "ff", None], r"^hashes\[2\]: expected str like hashes\[0\], got NoneType$"),
        ([None, "ff"], r"^hashes\[0\]: expected a hex str, bytes or an ImageHash, got NoneType$"),
        ([1, 2], r"^hashes\[0\]: expected a hex str, bytes or an ImageHash, got int$"),
        (np.array([1, 2], dtype=object), r"^hashes\[0\]: expected a hex str, .* got int$"),
    ],
)
def test_as_codes_rejects_mixed_kinds(batch: object, match: str) -> None:
    with pytest.raises(InvalidType, match=match):
        as_codes(batch)


def test_as_codes_ragged_bytes() -> None:
    with pytest.raises(
        HashFormatError, match=r"^hashes\[2\]: expected 32 bytes like hashes\[0\], got 16;"
    ):
        as_codes([bytes(32), bytes(32), bytes(16)])


# ---------------------------------------------------------------- as_codes: numpy arrays


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.float32, np.float64])
def test_as_codes_rejects_dtypes(dtype: type) -> None:
    arr = np.zeros((2, 32), dtype=dtype)
    with pytest.raises(
        InvalidType, match=rf"^hashes: expected dtype uint8, got {np.dtype(dtype).name}$"
    ):
        as_codes(arr, nbytes=32)


def test_as_codes_rejects_int8_memoryview() -> None:
    with pytest.raises(InvalidType, match="expected dtype uint8, got int8"):
        as_codes(memoryview(np.zeros(32, dtype=np.int8)))


def test_as_codes_rejects_bool_arrays_with_hint() -> None:
    for shape in [(4, 256), (256,), (4, 32)]:
        with pytest.raises(InvalidArgument, match=r"bool array.*from_bits.*np\.packbits"):
            as_codes(np.zeros(shape, dtype=bool), nbytes=32)


def test_as_codes_unpacked_bits_hint() -> None:
    bits = RNG.integers(0, 2, size=(4, 256), dtype=np.uint8)
    with pytest.raises(
        InvalidArgument, match=r"unpacked bits.*from_bits.*packbits\(\.\.\., axis=-1\)"
    ):
        as_codes(bits, nbytes=32)
    with pytest.raises(InvalidArgument, match="unpacked bits"):
        as_codes(bits[0], nbytes=32)
    not_bits = bits.copy()
    not_bits[0, 0] = 2  # same shape, real byte values: a plain width mismatch
    with pytest.raises(HashTypeMismatch, match="got 256 "):
        as_codes(not_bits, nbytes=32)
    codes, _ = as_codes(bits)  # without an expected width, 256-byte codes are legitimate
    assert codes.shape == (4, 256)


def test_as_codes_width_mismatch() -> None:
    msg = r"^hashes: expected 32 bytes per hash \(256 bits\), got 16 \(128 bits\)$"
    for wrong in (np.zeros((3, 16), np.uint8), np.zeros(16, np.uint8), bytes(16), "00" * 16):
        with pytest.raises(HashTypeMismatch, match=msg):
            as_codes(wrong, nbytes=32)
    with pytest.raises(ValueError, match="got 32 "):
        as_codes(np.zeros((1, 32), np.uint8), nbytes=8)
    with pytest.raises(TypeError, match="got 8 "):
        as_codes(np.zeros((1, 8), np.uint8), nbytes=32)


@pytest.mark.parametrize(
    ("arr", "match"),
    [
        (np.zeros((3, 0), np.uint8), r"^hashes: expected 1 to 512 bytes per hash, got 0$"),
        (np.zeros(0, np.uint8), r"^hashes: expected 1 to 512 bytes per hash, got 0$"),
        (np.zeros((2, 513), np.uint8), r"^hashes: expected 1 to 512 bytes per hash, got 513$"),
        (np.zeros((2, 3, 32), np.uint8), r"got 3-D shape \(2, 3, 32\)$"),
        (np.zeros((), np.uint8), r"got 0-D shape \(\)$"),
        (np.array([["ff", "ff"]]), r"^hashes: expected a 1-D array of hex strings, got shape"),
    ],
)
def test_as_codes_rejects_shapes(arr: np.ndarray[Any, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        as_codes(arr)


def test_as_codes_empty_width_with_nbytes() -> None:
    with pytest.raises(InvalidArgument, match=r"expected 32 bytes per hash \(256 bits\), got 0"):
        as_codes(np.zeros((3, 0), np.uint8), nbytes=32)


def test_as_codes_max_width() -> None:
    codes, _ = as_codes(np.ones((2, 512), np.uint8) * 7)
    assert codes.shape == (2, 512)


# ---------------------------------------------------------------- as_codes: memory layouts


def _double_rows() -> np.ndarray[Any, Any]:
    wide = np.zeros((12, 32), np.uint8)
    wide[::2] = BASE
    return wide[::2]


def _negative_strides() -> np.ndarray[Any, Any]:
    return BASE[::-1, ::-1].copy()[::-1, ::-1]


def _column_slice() -> np.ndarray[Any, Any]:
    wide = np.zeros((6, 40), np.uint8)
    wide[:, 3:35] = BASE
    return wide[:, 3:35]


def _strided_columns() -> np.ndarray[Any, Any]:
    wide = np.zeros((6, 64), np.uint8)
    wide[:, ::2] = BASE
    return wide[:, ::2]


def _read_only() -> np.ndarray[Any, Any]:
    return np.frombuffer(BASE.tobytes(), dtype=np.uint8).reshape(6, 32)


def _unaligned() -> np.ndarray[Any, Any]:
    return np.frombuffer(b"\x00" + BASE.tobytes(), dtype=np.uint8, offset=1).reshape(6, 32)


def _unaligned_writable() -> np.ndarray[Any, Any]:
    buf = np.zeros(6 * 32 + 1, np.uint8)
    buf[1:] = BASE.ravel()
    return buf[1:].reshape(6, 32)


LAYOUTS: list[Callable[[], np.ndarray[Any, Any]]] = [
    BASE.copy,
    lambda: np.asfortranarray(BASE),
    _double_rows,
    _negative_strides,
    _column_slice,
    _strided_columns,
    _read_only,
    _unaligned,
    _unaligned_writable,
]


def _check_layout(arr: np.ndarray[Any, Any]) -> None:
    snapshot = arr.copy()
    writeable = arr.flags.writeable
    codes, single = as_codes(arr, nbytes=32)
    assert not single
    assert type(codes) is np.ndarray
    assert codes.dtype == np.uint8
    assert codes.flags.c_contiguous
    np.testing.assert_array_equal(codes, BASE)
    np.testing.assert_array_equal(arr, snapshot)
    assert arr.flags.writeable == writeable
    row, single = as_codes(arr[2], nbytes=32)  # 1-D view of the same layout
    assert single
    np.testing.assert_array_equal(row, BASE[2:3])


@pytest.mark.parametrize("make", LAYOUTS)
def test_as_codes_layouts(make: Callable[[], np.ndarray[Any, Any]]) -> None:
    _check_layout(make())


def test_as_codes_memmap(tmp_path: Path) -> None:
    path = tmp_path / "codes.bin"
    out = np.memmap(path, dtype=np.uint8, mode="w+", shape=BASE.shape)
    out[:] = BASE
    out.flush()
    del out
    _check_layout(np.memmap(path, dtype=np.uint8, mode="r", shape=BASE.shape))
    with_header = np.memmap(path, dtype=np.uint8, mode="r", offset=32, shape=(5, 32))
    codes, _ = as_codes(with_header)
    np.testing.assert_array_equal(codes, BASE[1:])
    assert path.read_bytes() == BASE.tobytes()


def test_as_codes_copies_only_when_needed() -> None:
    codes, _ = as_codes(BASE)
    assert np.shares_memory(codes, BASE)
    codes, _ = as_codes(np.asfortranarray(BASE))
    assert not np.shares_memory(codes, BASE)


# ---------------------------------------------------------------- as_codes: ImageHash duck-typing


class ImageHash:
    """Minimal stand-in for imagehash.ImageHash: a 2-D bool matrix in ``.hash``."""

    def __init__(self, bits: Any) -> None:
        self.hash = np.asarray(bits, dtype=bool)


class NotAnImageHash:
    def __init__(self, bits: Any) -> None:
        self.hash = np.asarray(bits, dtype=bool)


def _matrix_hex(bits: np.ndarray[Any, Any]) -> str:
    """Reference: imagehash's own text, MSB-first over the row-major bits."""
    flat = "".join("1" if b else "0" for b in bits.ravel())
    return format(int(flat, 2), f"0{len(flat) // 4}x")


def test_imagehash_duck_typing() -> None:
    bits = RNG.integers(0, 2, size=(8, 8)).astype(bool)
    bits[0, 0] = True
    h = ImageHash(bits)
    codes, single = as_codes(h)
    assert single
    assert codes.shape == (1, 8)
    assert codes[0].tobytes().hex() == _matrix_hex(bits)
    assert codes[0, 0] & 0x80  # bit (0, 0) is the most significant bit of byte 0
    np.testing.assert_array_equal(h.hash, bits)  # input untouched


def test_imagehash_batch_and_width() -> None:
    mats = [RNG.integers(0, 2, size=(16, 16)).astype(bool) for _ in range(3)]
    codes, single = as_codes([ImageHash(m) for m in mats], nbytes=32)
    assert not single
    assert [c.tobytes().hex() for c in codes] == [_matrix_hex(m) for m in mats]
    with pytest.raises(HashTypeMismatch, match=r"expected 8 bytes per hash \(64 bits\), got 32"):
        as_codes(ImageHash(mats[0]), nbytes=8)


@pytest.mark.parametrize("shape", [(3, 3), (6, 6), (9, 1)])
def test_imagehash_rejects_partial_bytes(shape: tuple[int, int]) -> None:
    bits = np.ones(shape, dtype=bool)
    size = bits.size
    with pytest.raises(HashFormatError, match=rf"whole number of bytes, got {size} bits"):
        as_codes(ImageHash(bits))
    with pytest.raises(HashFormatError, match=rf"^hashes\[1\]: .* got {size} bits"):
        as_codes([ImageHash(np.ones((8, 8), bool)), ImageHash(bits)])


def test_imagehash_rejects_ragged_and_mixed() -> None:
    a, b = ImageHash(np.ones((8, 8), bool)), ImageHash(np.ones((16, 16), bool))
    with pytest.raises(
        HashFormatError, match=r"^hashes\[1\]: expected 64 bits like hashes\[0\], got 256"
    ):
        as_codes([a, b])
    with pytest.raises(
        InvalidType, match=r"^hashes\[1\]: expected an ImageHash like hashes\[0\], got str"
    ):
        as_codes([a, "ff" * 8])


def test_imagehash_duck_type_is_strict() -> None:
    with pytest.raises(InvalidType, match="got NotAnImageHash"):
        as_codes(NotAnImageHash(np.ones((8, 8), bool)))
    fake = ImageHash(np.ones((8, 8), bool))
    fake.hash = np.ones((8, 8), dtype=np.uint8)
    with pytest.raises(InvalidType, match="got ImageHash"):
        as_codes(fake)


def test_real_imagehash() -> None:
    imagehash = pytest.importorskip("imagehash")
    image_mod = pytest.importorskip("PIL.Image")
    pixels = (RNG.random((64, 64)) * 255).astype(np.uint8)
    image = image_mod.fromarray(pixels)
    for h in (imagehash.phash(image), imagehash.dhash(image), imagehash.phash(image, hash_size=16)):
        codes, single = as_codes(h)
        assert single
        assert codes[0].tobytes().hex() == str(h)
        np.testing.assert_array_equal(as_codes(str(h))[0], codes)
