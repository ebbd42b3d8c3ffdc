"""Tests of hashmatch.codes: hex text and bit-array codecs."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from hashmatch.codes import from_bits, from_hex, to_bits, to_hex
from hashmatch.errors import HashFormatError, HashTypeMismatch, InvalidArgument, InvalidType
from hypothesis import given
from hypothesis import strategies as st

import hashmatch as hm

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
RNG = np.random.default_rng(7)


@st.composite
def code_rows(draw: st.DrawFn) -> tuple[int, list[bytes]]:
    width = draw(st.integers(1, 512))
    rows = draw(st.lists(st.binary(min_size=width, max_size=width), max_size=20))
    return width, rows


def _codes(width: int, rows: list[bytes]) -> np.ndarray[Any, Any]:
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), width)


# ---------------------------------------------------------------- from_hex / to_hex


@given(code_rows())
def test_hex_round_trip(data: tuple[int, list[bytes]]) -> None:
    width, rows = data
    codes = _codes(width, rows)
    text = to_hex(codes)
    assert text == [row.hex() for row in rows]
    for parsed in (
        from_hex(text, bits=8 * width),
        from_hex([t.upper() for t in text], bits=8 * width),
    ):
        assert parsed.dtype == np.uint8
        assert parsed.shape == (len(rows), width)
        np.testing.assert_array_equal(parsed, codes)


@given(st.binary(min_size=1, max_size=512))
def test_hex_round_trip_single(raw: bytes) -> None:
    text = to_hex(np.frombuffer(raw, dtype=np.uint8))
    assert text == raw.hex()
    parsed = from_hex(text.upper())
    assert parsed.shape == (len(raw),)
    assert parsed.tobytes() == raw


def test_from_hex_known_values() -> None:
    np.testing.assert_array_equal(from_hex("00ff10"), np.array([0, 255, 16], np.uint8))
    codes = from_hex([PDQ, PDQ.upper()], bits=256)
    assert codes.shape == (2, 32)
    assert codes[0].tobytes() == bytes.fromhex(PDQ)
    np.testing.assert_array_equal(codes[0], codes[1])
    assert from_hex(np.str_(PDQ)).tobytes() == bytes.fromhex(PDQ)
    assert from_hex(np.array([PDQ, PDQ])).shape == (2, 32)


def test_from_hex_results_are_writable_copies() -> None:
    codes = from_hex([PDQ])
    codes[0, 0] = 0  # a fresh array, not a view of immutable text
    assert codes[0, 0] == 0


def test_to_hex_normalises_to_lowercase() -> None:
    assert to_hex(PDQ.upper()) == PDQ
    assert to_hex(from_hex("ABCDEF")) == "abcdef"
    assert to_hex(["AbCd", "00FF"]) == ["abcd", "00ff"]


def test_to_hex_shapes() -> None:
    codes = from_hex([PDQ, "00" * 32])
    assert to_hex(codes) == [PDQ, "00" * 32]
    assert to_hex(codes[0]) == PDQ
    assert to_hex(np.asfortranarray(codes)) == [PDQ, "00" * 32]
    assert to_hex(np.empty((0, 32), np.uint8)) == []
    assert to_hex(bytes.fromhex(PDQ)) == PDQ


def test_to_hex_validates() -> None:
    with pytest.raises(InvalidType, match=r"^codes: expected dtype uint8, got int64$"):
        to_hex(np.zeros((2, 8), np.int64))
    with pytest.raises(InvalidType, match=r"^codes: expected a hex str, .* got NoneType$"):
        to_hex(None)


BAD_TEXT = [
    # (input, exception, message regex); every case is parsed with bits=256
    (PDQ[:-1], HashFormatError, r"^hashes: expected 64 hex characters \(256 bits\), got 63$"),
    (PDQ + "0", HashFormatError, r"^hashes: expected 64 hex characters \(256 bits\), got 65$"),
    ("", HashFormatError, r"^hashes: expected 64 hex characters \(256 bits\), got 0$"),
    ("g" + PDQ[1:], HashFormatError, r"^hashes: invalid character 'g' at position 0;"),
    (PDQ[:10] + "z" + PDQ[11:], HashFormatError, r"invalid character 'z' at position 10;"),
    ("0x" + PDQ[2:], HashFormatError, r"invalid character 'x' at position 1;"),
    (" " + PDQ[1:], HashFormatError, r"invalid character ' ' at position 0;"),
    (PDQ[:-1] + "\n", HashFormatError, r"invalid character '\\n' at position 63;"),
    (PDQ[:-2] + "\r\n", HashFormatError, r"invalid character '\\r' at position 62;"),
    (PDQ[:8] + "\t" + PDQ[9:], HashFormatError, r"invalid character '\\t' at position 8;"),
    (PDQ[:30] + "  " + PDQ[32:], HashFormatError, r"invalid character ' ' at position 30;"),
    (PDQ[:2] + "_" + PDQ[3:], HashFormatError, r"invalid character '_' at position 2;"),
    (PDQ[:2] + ":" + PDQ[3:], HashFormatError, r"invalid character ':' at position 2;"),
    ("\u0663" * 64, HashFormatError, r"invalid character '\u0663' at position 0;"),
    (PDQ[:5] + "\uff11" + PDQ[6:], HashFormatError, r"invalid character '\uff11' at position 5;"),
    (PDQ[:16], HashTypeMismatch, r"^hashes: expected 32 bytes per hash \(256 bits\), got 8 \(64"),
    (PDQ[:32], HashTypeMismatch, r"^hashes: expected 32 bytes per hash \(256 bits\), got 16 \(128"),
    (PDQ * 2, HashTypeMismatch, r"^hashes: expected 32 bytes .* got 64 \(512 bits\)$"),
    (None, InvalidType, r"^hashes: expected a hex str, .* got NoneType$"),
    (256, InvalidType, r"^hashes: expected a hex str, .* got int$"),
    (1.5, InvalidType, r"^hashes: expected a hex str, .* got float$"),
]


@pytest.mark.parametrize(("text", "exc", "match"), BAD_TEXT)
def test_from_hex_rejects(text: object, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        from_hex(text, bits=256)


def test_from_hex_invalid_character_names_row_and_position() -> None:
    rows = [PDQ] * 5
    rows[3] = PDQ[:5] + "g" + PDQ[6:]
    expected = (
        "hashes[3]: invalid character 'g' at position 5; expected 64 hex characters [0-9a-fA-F]"
    )
    with pytest.raises(HashFormatError) as info:
        from_hex(rows, bits=256)
    assert str(info.value) == expected
    rows[3] = PDQ[:40] + "\u00e9" + PDQ[41:]  # non-ASCII
    with pytest.raises(
        HashFormatError, match=r"^hashes\[3\]: invalid character '\u00e9' at position 40;"
    ):
        from_hex(rows)


def test_from_hex_wrong_length_in_batch() -> None:
    zero32 = "0" * 32  # ThreatExchange#1609: a 32-char entry among PDQ hashes
    with pytest.raises(
        HashFormatError, match=r"^hashes\[2\]: expected 64 hex characters \(256 bits\), got 32; all"
    ):
        from_hex([PDQ, PDQ, zero32, PDQ], bits=256)
    with pytest.raises(
        HashFormatError, match=r"^hashes\[2\]: expected 64 hex .* like hashes\[0\], got 32; all"
    ):
        from_hex([PDQ, PDQ, zero32, PDQ])
    with pytest.raises(HashFormatError, match=r"^hashes\[0\]: expected 64 hex .* got 32;"):
        from_hex([zero32, PDQ], bits=256)  # measured against bits, not against row 0
    with pytest.raises(HashFormatError, match=r"^hashes\[0\]: expected 64 hex .* got 63$"):
        from_hex([PDQ[:-1]] * 3, bits=256)


def test_from_hex_width_without_bits() -> None:
    assert from_hex("ab" * 512).shape == (512,)
    for text, got in (("abc", 3), ("ab" * 513, 1026)):
        with pytest.raises(
            HashFormatError, match=rf"even number of hex characters from 2 to 1024, got {got}$"
        ):
            from_hex(text)
    with pytest.raises(HashTypeMismatch, match="got 8 "):
        from_hex([PDQ[:16]] * 4, bits=256)  # a whole batch of pHashes into a PDQ width
    with pytest.raises(InvalidArgument, match="cannot infer the hash width"):
        from_hex([])
    assert from_hex([], bits=64).shape == (0, 8)


def test_from_hex_base64_hint() -> None:
    b64 = base64.b64encode(b"\xfb" * 32).decode()
    assert len(b64) == 44
    for call in (
        lambda: from_hex(b64, bits=256),
        lambda: from_hex(b64),
        lambda: from_hex([PDQ, b64]),
    ):
        with pytest.raises(HashFormatError, match="looks like base64"):
            call()
    with pytest.raises(HashFormatError, match="looks like base64"):
        from_hex("0" * 42 + "zz", bits=176)
    with pytest.raises(HashFormatError) as info:
        from_hex("0" * 42 + "-z", bits=176)  # '-' is not a base64 character
    assert "base64" not in str(info.value)
    assert from_hex("ab" * 22).shape == (22,)  # 44 valid hex chars: no hint, no error


def test_from_hex_bits_argument() -> None:
    assert from_hex(PDQ, bits=np.int64(256)).shape == (32,)
    with pytest.raises(
        InvalidArgument, match=r"^bits: expected a multiple of 8 in \[8, 4096\], got 250$"
    ):
        from_hex(PDQ, bits=250)
    with pytest.raises(InvalidType, match=r"^bits: expected an integer"):
        from_hex(PDQ, bits=256.0)  # type: ignore[arg-type]


def test_from_hex_round_trips_a_large_batch() -> None:
    codes = RNG.integers(0, 256, size=(200_000, 32), dtype=np.uint8)
    np.testing.assert_array_equal(from_hex(to_hex(codes), bits=256), codes)


# ---------------------------------------------------------------- from_bits / to_bits


def test_from_bits_bit_order_matches_hex() -> None:
    np.testing.assert_array_equal(from_bits([1, 0, 0, 0, 0, 0, 0, 0]), np.array([0x80], np.uint8))
    np.testing.assert_array_equal(
        from_bits([[1, 0, 0, 0, 0, 0, 0, 0]]), np.array([[0x80]], np.uint8)
    )
    bits = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]  # 0xa0 0x0f
    assert to_hex(from_bits(bits)) == "a00f"
    assert to_bits("a00f").tolist() == bits
    assert to_bits(["80", "01"]).tolist() == [[1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1]]


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int8, np.int64, np.uint64])
def test_from_bits_dtypes(dtype: type) -> None:
    bits = RNG.integers(0, 2, size=(3, 64))
    packed = from_bits(bits.astype(dtype))
    assert packed.dtype == np.uint8
    assert packed.shape == (3, 8)
    expected = [format(int("".join(map(str, row)), 2), "016x") for row in bits]  # MSB first
    assert to_hex(packed) == expected


@given(st.integers(1, 64), st.integers(0, 10), st.data())
def test_bits_round_trip(nbytes: int, n: int, data: st.DataObject) -> None:
    flat = data.draw(st.lists(st.integers(0, 1), min_size=n * nbytes * 8, max_size=n * nbytes * 8))
    bits = np.array(flat, dtype=np.uint8).reshape(n, 8 * nbytes)
    packed = from_bits(bits)
    assert packed.shape == (n, nbytes)
    unpacked = to_bits(packed)
    assert unpacked.dtype == np.uint8
    np.testing.assert_array_equal(unpacked, bits)
    np.testing.assert_array_equal(from_bits(bits.astype(bool)), packed)


def test_to_bits_shapes() -> None:
    codes = from_hex([PDQ, PDQ])
    assert to_bits(codes).shape == (2, 256)
    assert to_bits(codes[0]).shape == (256,)
    np.testing.assert_array_equal(from_bits(to_bits(codes)), codes)
    assert to_bits(np.empty((0, 4), np.uint8)).shape == (0, 32)


@pytest.mark.parametrize(
    ("bits", "exc", "match"),
    [
        (
            [[0] * 8, [0, 0, 0, 2, 0, 0, 0, 0]],
            InvalidArgument,
            r"^bits_array\[1, 3\]: expected 0 or 1, got 2$",
        ),
        ([0, 1, -1, 0, 0, 0, 0, 0], InvalidArgument, r"^bits_array\[2\]: expected 0 or 1, got -1$"),
        (
            [1] * 250,
            InvalidArgument,
            r"^bits_array\.shape\[-1\]: expected a multiple of 8 .* got 250$",
        ),
        (np.zeros((2, 0), bool), InvalidArgument, r"^bits_array\.shape\[-1\]: .* got 0$"),
        (np.zeros((2, 4104), bool), InvalidArgument, r"^bits_array\.shape\[-1\]: .* got 4104$"),
        (np.zeros((2, 2, 8), bool), InvalidArgument, r"got 3-D shape \(2, 2, 8\)$"),
        (
            [0.0] * 8,
            InvalidType,
            r"^bits_array: expected bools or integers 0/1, got dtype float64$",
        ),
        ("01010101", InvalidType, r"^bits_array: expected bools or integers 0/1, got dtype <U8$"),
    ],
)
def test_from_bits_rejects(bits: object, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        from_bits(bits)


def test_to_bits_rejects_unpacked_input() -> None:
    with pytest.raises(InvalidArgument, match="from_bits"):
        to_bits(np.zeros((2, 256), dtype=bool))


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("0x" + "ab" * 32, "remove the 0x prefix"),
        ("0X" + "ab" * 31, "remove the 0x prefix"),
        ("ab" * 32 + "\n", r"whitespace \('\\n' at position 64\)"),
        ("ab" * 16 + " " + "ab" * 16, r"whitespace \(' ' at position 32\)"),
    ],
)
def test_hex_errors_hint_at_prefixes_and_whitespace(text: str, hint: str) -> None:
    with pytest.raises(hm.HashFormatError, match=hint):
        hm.from_hex([text], bits=256)
    with pytest.raises(hm.HashFormatError, match=hint):
        hm.HashList("pdq").add([text])
