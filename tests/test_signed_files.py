"""Signed files: save(..., key=) appends a keyed digest (HMAC-SHA256) of the whole file, which
load(..., key=) checks before using anything in it."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import hashmatch as hm
from hashmatch import io as hio

KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(32))
LOADS = [{"mmap": False}, {"mmap": True}, {"mmap": True, "verify": False}]


def saved(tmp_path: Path, key: bytes | None = KEY, name: str = "s.hm") -> tuple[Path, hm.MIHIndex]:
    index = hm.MIHIndex(64, max_distance=8)
    index.add(hm.datasets.random_codes(1500, 64, seed=2), ids=np.arange(1000, 2500))
    path = tmp_path / name
    hm.save(index, path, key=key)
    return path, index


def same(a: hm.MIHIndex, b: hm.MIHIndex) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.contents(), b.contents(), strict=True))


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize("key", [KEY, bytearray(KEY), memoryview(KEY), b"k" * 16, b"k" * 1000])
def test_a_signed_file_loads_with_its_key(
    key: bytes, load: dict[str, bool], tmp_path: Path
) -> None:
    path, index = saved(tmp_path, key=key)
    loaded = hm.load(path, key=key, **load)
    assert same(loaded, index)
    assert type(hm.load(path, key=bytes(key))) is hm.MIHIndex


@pytest.mark.parametrize("load", LOADS)
def test_a_signed_file_loads_without_a_key_with_its_checksums_checked(
    load: dict[str, bool], tmp_path: Path
) -> None:
    path, index = saved(tmp_path)
    assert same(hm.load(path, **load), index)
    data = bytearray(path.read_bytes())
    data[-48 - 64 - 100] ^= 1  # in the last section (the digest trailer is 48 bytes)
    path.write_bytes(data)
    with pytest.raises(hm.ChecksumError):
        hm.load(path, mmap=load["mmap"])


@pytest.mark.parametrize("load", LOADS)
def test_another_key_is_refused(load: dict[str, bool], tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    with pytest.raises(hm.IntegrityError, match="keyed digest mismatch"):
        hm.load(path, key=OTHER_KEY, **load)
    with pytest.raises(hm.IntegrityError):
        hm.load(path, key=KEY[:-1] + bytes([KEY[-1] ^ 1]), **load)


def recompute_checksums(data: bytearray) -> None:
    """Make every CRC of a container match its bytes again (as a tamperer would)."""
    _, _, count = struct.unpack_from("<8sII", data)
    for i in range(count):
        at = 16 + 48 * i
        name, offset, length, _, reserved = struct.unpack_from("<24sQQII", data, at)
        crc = zlib.crc32(data[offset : offset + length])
        struct.pack_into("<24sQQII", data, at, name, offset, length, crc, reserved)
    end = 16 + 48 * count
    struct.pack_into("<I", data, end, zlib.crc32(data[:end]))


@pytest.mark.parametrize("load", LOADS)
def test_a_tampered_file_with_valid_checksums_is_refused_with_the_key(
    load: dict[str, bool], tmp_path: Path
) -> None:
    path, index = saved(tmp_path)
    original = path.read_bytes()
    rows = hio.read_container(path)["rows"]
    at = original.index(bytes(rows[:64]))  # the first stored hash
    data = bytearray(original)
    data[at] ^= 0xFF
    recompute_checksums(data)
    path.write_bytes(data)
    # the checksums cannot tell; the MIH cross-checks catch this change, unless skipped
    with pytest.raises(hm.IndexFormatError, match="inconsistent contents"):
        hm.load(path, **{**load, "verify": True})
    tampered = hm.load(path, **{**load, "verify": False})
    assert not same(tampered, index)
    with pytest.raises(hm.IntegrityError, match="changed after it was signed"):
        hm.load(path, key=KEY, **load)


def test_every_changed_byte_of_a_signed_file_is_refused_with_the_key(tmp_path: Path) -> None:
    index = hm.FlatIndex(64)
    index.add(hm.datasets.random_codes(5, 64))
    path = tmp_path / "small.hm"
    hm.save(index, path, key=KEY)
    data = path.read_bytes()
    header_end = 16 + 48 * struct.unpack_from("<I", data, 12)[0] + 4
    for i in range(len(data)):
        changed = bytearray(data)
        changed[i] ^= 0x20
        if i >= header_end:
            recompute_checksums(changed)
        path.write_bytes(changed)
        algorithm = len(data) - 48 <= i < len(data) - 32  # the trailer's: unknown algorithm
        error = hm.IntegrityError if i >= header_end and not algorithm else hm.IndexFormatError
        with pytest.raises(error):
            hm.load(path, key=KEY)
    for size in range(len(data)):
        path.write_bytes(data[:size])
        for key in (KEY, None):
            with pytest.raises(hm.IndexFormatError):
                hm.load(path, key=key)
    path.write_bytes(data + bytes(64))  # or grown
    with pytest.raises(hm.IndexFormatError):
        hm.load(path, key=KEY)


@pytest.mark.parametrize("load", LOADS)
def test_an_unsigned_file_is_refused_with_a_key(load: dict[str, bool], tmp_path: Path) -> None:
    path, _ = saved(tmp_path, key=None)
    with pytest.raises(hm.IntegrityError, match="not signed"):
        hm.load(path, key=KEY, **load)
    for legacy in sorted((Path(__file__).parent / "data").glob("legacy-*.hm")):
        hm.load(legacy)
        with pytest.raises(hm.IntegrityError, match="not signed"):
            hm.load(legacy, key=KEY)


def test_a_signed_file_is_the_unsigned_one_with_version_2_and_a_digest(tmp_path: Path) -> None:
    signed, _ = saved(tmp_path)
    unsigned, _ = saved(tmp_path, key=None, name="u.hm")
    s, u = signed.read_bytes(), unsigned.read_bytes()
    assert struct.unpack_from("<I", u, 8)[0] == hio.FORMAT_VERSION == 1
    assert struct.unpack_from("<I", s, 8)[0] == hio.SIGNED_FORMAT_VERSION == 2
    assert len(s) == len(u) + 48 and s[:8] == u[:8]
    assert s[-48:-32] == b"hmac-sha256".ljust(16, b"\0")
    end = 16 + 48 * struct.unpack_from("<I", u, 12)[0]
    assert s[12:end] == u[12:end] and s[end + 4 : len(u)] == u[end + 4 :]  # all but the crc
    # A standard HMAC-SHA256 of all but the last 32 bytes (openssl can check it too).
    assert hmac.new(KEY, s[:-32], hashlib.sha256).digest() == s[-32:]


def test_messages_never_show_the_key_or_the_digest(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    unsigned, _ = saved(tmp_path, key=None, name="u.hm")
    data = bytearray(path.read_bytes())
    expected_digest = hmac.new(OTHER_KEY, bytes(data[:-32]), hashlib.sha256).digest()
    data[200] ^= 1
    recompute_checksums(data)
    (tmp_path / "t.hm").write_bytes(data)
    messages = []
    for target, key in [(path, OTHER_KEY), (tmp_path / "t.hm", OTHER_KEY), (unsigned, OTHER_KEY)]:
        with pytest.raises(hm.IntegrityError) as info:
            hm.load(target, key=key)
        messages.append(str(info.value))
    for bad in (OTHER_KEY[:15], OTHER_KEY.hex(), OTHER_KEY.decode("latin-1")):
        with pytest.raises((hm.InvalidArgument, hm.InvalidType)) as info:
            hm.load(path, key=bad)  # type: ignore[arg-type]
        messages.append(str(info.value))
    secrets = [OTHER_KEY, KEY, expected_digest, data[-32:]]
    for message in messages:
        for secret in secrets:
            for form in (repr(bytes(secret)), bytes(secret).hex(), bytes(secret).hex().upper()):
                assert form not in message, message
            assert bytes(secret).decode("latin-1")[:8] not in message


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        ("a" * 32, hm.InvalidType, r"^key: expected bytes, got str; pass key.encode\(\)"),
        (b"short", hm.InvalidArgument, r"^key: expected at least 16 bytes, got 5"),
        (b"", hm.InvalidArgument, r"^key: expected at least 16 bytes, got 0"),
        (12345, hm.InvalidType, r"^key: expected bytes, got int"),
        ([1] * 16, hm.InvalidType, r"^key: expected bytes, got list"),
    ],
)
def test_bad_keys_are_refused_before_anything_is_written(
    key: object, error: type[Exception], match: str, tmp_path: Path
) -> None:
    index = hm.FlatIndex(64)
    with pytest.raises(error, match=match):
        hm.save(index, tmp_path / "x.hm", key=key)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []
    with pytest.raises(error, match=match):
        hio.write_container(tmp_path / "x.hm", {"meta": b"{}"}, key=key)  # type: ignore[arg-type]
    hm.save(index, tmp_path / "x.hm")
    with pytest.raises(error, match=match):
        hm.load(tmp_path / "x.hm", key=key)  # type: ignore[arg-type]


def test_hash_lists_and_containers_take_a_key(tmp_path: Path) -> None:
    hl = hm.HashList("pdq")
    hl.add(hm.datasets.random_codes(50, 256), keys=[f"k{i}" for i in range(50)])
    hl.save(tmp_path / "list.hm", key=KEY)
    for mmap in (False, True):
        loaded = hm.HashList.load(tmp_path / "list.hm", mmap=mmap, key=KEY)
        assert len(loaded) == 50 and loaded.get_key("k7").id == 7
        assert len(hm.HashList.load(tmp_path / "list.hm", mmap=mmap)) == 50
    with pytest.raises(hm.IntegrityError):
        hm.HashList.load(tmp_path / "list.hm", key=OTHER_KEY)
    hl.save(tmp_path / "plain.hm")
    with pytest.raises(hm.IntegrityError, match="not signed"):
        hm.HashList.load(tmp_path / "plain.hm", key=KEY)
    hio.write_container(tmp_path / "c.hm", {"meta": b"{}", "data": b"abc"}, key=KEY)
    assert bytes(hio.read_container(tmp_path / "c.hm", key=KEY)["data"]) == b"abc"
    assert bytes(hio.read_container(tmp_path / "c.hm")["data"]) == b"abc"
    with pytest.raises(hm.IntegrityError):
        hio.read_container(tmp_path / "c.hm", key=OTHER_KEY)


def test_an_unknown_digest_algorithm_is_refused(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-48:-32] = b"hmac-sha512".ljust(16, b"\0")
    path.write_bytes(data)
    for key in (None, KEY):
        with pytest.raises(hm.IndexFormatError, match="unknown digest algorithm"):
            hm.load(path, key=key)
