"""Argument checks and the hash coercion shared by every public function.

Private module: the helpers raise the :mod:`hashmatch.errors` family with
messages that name the argument, the expected value and the value received.
"""

from __future__ import annotations

import os
import re
import reprlib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import HashFormatError, HashTypeMismatch, InvalidArgument, InvalidType

__all__ = [
    "MAX_BITS",
    "MAX_BYTES",
    "MAX_COUNT",
    "MAX_THREADS",
    "as_codes",
    "check_bits",
    "check_count",
    "check_id_list",
    "check_ids",
    "check_k",
    "check_max_distance",
    "check_threads",
]

MAX_BYTES = 512
MAX_BITS = 8 * MAX_BYTES
MAX_THREADS = 1024
MAX_COUNT = 2**63 - 1
"""The largest count (``k``, a number of hashes) any function takes: what an int64 holds."""

_NOT_HEX = re.compile(r"[^0-9a-fA-F]")
_SPACE = re.compile(r"\s")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_PACK_HINT = "pack unpacked bits with hashmatch.from_bits(...) or np.packbits(..., axis=-1)"


def _describe(value: object) -> str:
    """Return ``"<type> <short repr>"`` of a received value, for messages."""
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _is_integer_type(kind: type) -> bool:
    """Return whether `kind` is a Python or numpy integer type (bool is not)."""
    return issubclass(kind, (int, np.integer)) and not issubclass(kind, bool)


def _integer(value: object, name: str, expected: str) -> int:
    """Return `value` as an ``int`` if it is a Python or numpy integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"{name}: expected {expected}, got {_describe(value)}")
    return int(value)


def check_bits(bits: object, *, name: str = "bits") -> int:
    """Validate a hash width in bits.

    Parameters
    ----------
    bits : int
        A Python or numpy integer, multiple of 8, in ``[8, 4096]``.
    name : str, optional
        Argument name used in error messages.

    Returns
    -------
    int
        The width in bits.

    Raises
    ------
    InvalidType
        If `bits` is not an integer (bools and floats are rejected).
    InvalidArgument
        If `bits` is out of range or not a multiple of 8.
    """
    expected = f"a multiple of 8 in [8, {MAX_BITS}]"
    value = _integer(bits, name, f"an integer multiple of 8 in [8, {MAX_BITS}]")
    if value % 8 or not 8 <= value <= MAX_BITS:
        raise InvalidArgument(f"{name}: expected {expected}, got {value}")
    return value


def check_k(k: object) -> int:
    """Validate a number of nearest neighbours: an integer in ``[1, 2**63 - 1]``.

    Parameters
    ----------
    k : int
        A Python or numpy integer (more than are stored is fine: all of them are returned).

    Returns
    -------
    int
        `k` as a Python int.

    Raises
    ------
    InvalidType
        If `k` is not a Python or numpy integer (bool, float, NaN, str...).
    InvalidArgument
        If ``k < 1`` or ``k > 2**63 - 1`` (no C integer the search takes could hold it).
    """
    value = _integer(k, "k", "an integer >= 1")
    if value < 1:
        raise InvalidArgument(f"k: expected an integer >= 1, got {value}")
    if value > MAX_COUNT:
        raise InvalidArgument(f"k: expected an integer <= 2**63 - 1, got {value}")
    return value


def check_count(value: object, name: str) -> int:
    """Validate a count (a number of hashes, say): a non-negative integer below ``2**63``.

    Raises
    ------
    InvalidType
        If `value` is not a Python or numpy integer.
    InvalidArgument
        If `value` is negative or above ``2**63 - 1``.
    """
    expected = "a non-negative integer below 2**63"
    count = _integer(value, name, expected)
    if not 0 <= count <= MAX_COUNT:
        raise InvalidArgument(f"{name}: expected {expected}, got {count}")
    return count


def check_max_distance(value: object, bits: int, *, name: str = "max_distance") -> int:
    """Validate a Hamming distance threshold: an integer in ``[0, bits]``.

    The threshold is inclusive everywhere: a pair at exactly this distance matches.

    Parameters
    ----------
    value : int
        A Python or numpy integer.
    bits : int
        Hash width in bits, the largest possible distance.
    name : str, optional
        Argument name used in error messages.

    Returns
    -------
    int
        The threshold as a Python int.

    Raises
    ------
    InvalidType
        If `value` is not a Python or numpy integer. Floats are rejected, even
        integral ones such as ``31.0``, as are NaN, inf, bools and strings.
    InvalidArgument
        If `value` is negative or greater than `bits`.
    """
    expected = f"an integer in [0, {bits}]"
    distance = _integer(value, name, expected)
    if not 0 <= distance <= bits:
        raise InvalidArgument(f"{name}: expected {expected}, got {distance}")
    return distance


def check_threads(threads: object) -> int:
    """Validate a thread count; ``None`` means every core this process may use.

    Parameters
    ----------
    threads : int or None
        A Python or numpy integer in ``[1, 1024]``, or ``None``.

    Returns
    -------
    int
        ``len(os.sched_getaffinity(0))`` (or ``os.cpu_count()``) for ``None``,
        else `threads`. More threads than cores is allowed.

    Raises
    ------
    InvalidType
        If `threads` is neither ``None`` nor an integer.
    InvalidArgument
        If `threads` is outside ``[1, 1024]``.
    """
    if threads is None:
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    expected = f"None or an integer in [1, {MAX_THREADS}]"
    value = _integer(threads, "threads", expected)
    if not 1 <= value <= MAX_THREADS:
        raise InvalidArgument(f"threads: expected {expected}, got {value}")
    return value


def check_ids(ids: object, n: int, *, name: str = "ids") -> npt.NDArray[np.int64]:
    """Validate user ids, one per hash.

    Parameters
    ----------
    ids : sequence of int or integer ndarray
        Non-negative ids below ``2**63``, unique within the batch.
    n : int
        Number of hashes the ids belong to.
    name : str, optional
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        C-contiguous int64 array of shape ``(n,)``. An input that is already a
        C-contiguous int64 array is returned as is, without a copy.

    Raises
    ------
    InvalidType
        If `ids` is not a sequence of integers (floats, even ``1.0``, bools and
        strings are rejected).
    InvalidArgument
        On a wrong length or rank, a negative id, an id ``>= 2**63`` or a
        duplicate id.
    """
    arr: npt.NDArray[Any]
    if isinstance(ids, np.ndarray):
        arr = ids
        if arr.size == 0 and arr.dtype.kind == "f":  # np.array([]) is float64: no ids
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise InvalidType(f"{name}: expected integers, got an array of dtype {arr.dtype}")
    elif isinstance(ids, (str, bytes, bytearray, Mapping, AbstractSet)) or not isinstance(
        ids, Iterable
    ):
        raise InvalidType(f"{name}: expected a sequence of integers, got {type(ids).__name__}")
    else:
        items = list(ids)
        kinds = set(map(type, items))  # one pass in C; per-item checks only on error
        if not all(map(_is_integer_type, kinds)):
            i = next(i for i, x in enumerate(items) if not _is_integer_type(type(x)))
            raise InvalidType(f"{name}[{i}]: expected integers, got {_describe(items[i])}")
        if kinds - {int}:
            items = [int(x) for x in items]  # numpy scalars would be cast, not range-checked
        try:
            arr = np.array(items, dtype=np.int64)
        except OverflowError:
            i = next(i for i, x in enumerate(items) if not 0 <= x < 2**63)
            raise InvalidArgument(
                f"{name}[{i}]: expected an id in [0, 2**63 - 1], got {items[i]}"
            ) from None
    if arr.ndim != 1:
        raise InvalidArgument(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    if len(arr) != n:
        raise InvalidArgument(f"{name}: expected {n} ids (one per hash), got {len(arr)}")
    if arr.dtype == np.uint64 and n and arr.max() >= 2**63:
        i = int(np.argmax(arr >= 2**63))
        raise InvalidArgument(f"{name}[{i}]: expected an id in [0, 2**63 - 1], got {arr[i]}")
    out = np.ascontiguousarray(arr, dtype=np.int64)
    negative = np.flatnonzero(out < 0)
    if negative.size:
        i = int(negative[0])
        raise InvalidArgument(f"{name}[{i}]: expected a non-negative id, got {out[i]}")
    order = np.argsort(out, kind="stable")
    repeats = np.flatnonzero(out[order[1:]] == out[order[:-1]])
    if repeats.size:
        later = order[1:][repeats]
        j = int(np.argmin(later))
        i, earlier = int(later[j]), int(order[:-1][repeats][j])
        raise InvalidArgument(
            f"{name}[{i}]: expected unique ids, got duplicate id {out[i]}"
            f" (also at {name}[{earlier}])"
        )
    return out


def check_id_list(ids: object, *, name: str = "ids") -> npt.NDArray[np.int64]:
    """Validate ids to look up or remove: one integer, or a sequence or 1-D array of them,
    possibly empty (``[]``, ``()`` and ``np.array([])`` are no ids).

    Returns
    -------
    numpy.ndarray
        C-contiguous int64 array, as :func:`check_ids` gives it (unique non-negative ids).

    Raises
    ------
    InvalidType, InvalidArgument
        As :func:`check_ids`.
    """
    if isinstance(ids, np.ndarray):
        arr = ids.reshape(1) if ids.ndim == 0 else ids
        return check_ids(arr, len(arr), name=name)
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        return check_ids([ids], 1, name=name)
    if isinstance(ids, (str, bytes, bytearray, Mapping, AbstractSet)) or not isinstance(
        ids, Iterable
    ):
        return check_ids(ids, 0, name=name)  # raises InvalidType naming the argument
    items = list(ids)
    return check_ids(items, len(items), name=name)


def as_codes(
    hashes: object, *, name: str = "hashes", nbytes: int | None = None
) -> tuple[npt.NDArray[np.uint8], bool]:
    """Coerce any accepted form of hashes to packed uint8 codes.

    Parameters
    ----------
    hashes : str, bytes, ImageHash, numpy.ndarray or iterable
        One hash: a hex ``str`` (either case, nothing else: no ``0x``, no
        whitespace), raw ``bytes``/``bytearray``/``memoryview``, an
        ``imagehash.ImageHash`` or a 1-D uint8 array. Many hashes: an iterable of
        hex strings, of bytes or of ImageHash objects (one kind, one width), or
        a 2-D uint8 array of shape ``(n, nbytes)`` in any memory layout.
    name : str, optional
        Argument name used in error messages.
    nbytes : int, optional
        Required width in bytes (1 to 512). By default it is inferred from the
        first hash.

    Returns
    -------
    codes : numpy.ndarray
        C-contiguous uint8 array of shape ``(n, nbytes)``; bit 0 of a hash is the
        most significant bit of byte 0, as in hex text. Never a modified input:
        a C-contiguous uint8 input is returned as a (possibly read-only) view,
        any other layout is copied.
    single : bool
        True when `hashes` was one hash (then ``n == 1``).

    Raises
    ------
    InvalidType
        On an unsupported type or dtype, or mixed kinds of hashes in one batch.
    HashFormatError
        On text or bytes that cannot be parsed, or hashes of different widths.
    HashTypeMismatch
        When the width differs from `nbytes`.
    InvalidArgument
        On a bad array shape, unpacked bits, or an empty batch without `nbytes`.
    """
    if isinstance(hashes, str):
        return _hex_codes([hashes], name, nbytes, single=True), True
    if isinstance(hashes, (bytes, bytearray)):
        hashes = np.frombuffer(hashes, dtype=np.uint8)
    elif isinstance(hashes, memoryview):
        hashes = np.asarray(hashes)
    if _is_imagehash(hashes):
        return _imagehash_codes([hashes], name, nbytes, single=True), True
    if isinstance(hashes, np.ndarray) and hashes.dtype.kind not in "UO":
        return _array_codes(hashes, name, nbytes)
    if isinstance(hashes, np.ndarray):
        if hashes.ndim != 1:
            raise InvalidArgument(
                f"{name}: expected a 1-D array of hex strings, got shape {hashes.shape}"
            )
        items = hashes.tolist()
    elif isinstance(hashes, (Mapping, AbstractSet)) or not isinstance(hashes, Iterable):
        raise InvalidType(
            f"{name}: expected a hex str, bytes, an ImageHash, a uint8 array or an iterable"
            f" of hex str, bytes or ImageHash, got {type(hashes).__name__}"
        )
    else:
        items = list(hashes)
    return _batch_codes(items, name, nbytes), False


def _at(name: str, i: int, single: bool) -> str:
    """Name row `i` of argument `name` in messages (``hashes[3]``, or ``hashes``)."""
    return name if single else f"{name}[{i}]"


def _check_width(width: int, name: str, nbytes: int | None) -> None:
    """Check a width in bytes against the limits and the expected width."""
    if nbytes is None:
        expected = f"1 to {MAX_BYTES} bytes per hash"
    else:
        expected = f"{nbytes} bytes per hash ({8 * nbytes} bits)"
    if width < 1 or (nbytes is None and width > MAX_BYTES):
        raise InvalidArgument(f"{name}: expected {expected}, got {width}")
    if nbytes is not None and width != nbytes:
        raise HashTypeMismatch(f"{name}: expected {expected}, got {width} ({8 * width} bits)")


def _is_imagehash(obj: object) -> bool:
    """Duck-type ``imagehash.ImageHash`` without importing imagehash."""
    bits = getattr(obj, "hash", None)
    return (
        type(obj).__name__ == "ImageHash"
        and isinstance(bits, np.ndarray)
        and bits.ndim == 2
        and bits.dtype == np.bool_
    )


def _array_codes(
    arr: npt.NDArray[Any], name: str, nbytes: int | None
) -> tuple[npt.NDArray[np.uint8], bool]:
    """Validate a numpy array of packed codes; copy only if not C-contiguous."""
    if arr.dtype == np.bool_:
        raise InvalidArgument(
            f"{name}: expected packed uint8 codes, got a bool array of shape {arr.shape};"
            f" {_PACK_HINT}"
        )
    if arr.dtype != np.uint8:
        raise InvalidType(f"{name}: expected dtype uint8, got {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise InvalidArgument(
            f"{name}: expected shape (nbytes,) or (n, nbytes), got {arr.ndim}-D shape {arr.shape}"
        )
    width = arr.shape[-1]
    if nbytes is not None and width == 8 * nbytes and not (arr > 1).any():
        raise InvalidArgument(
            f"{name}: expected {nbytes} packed bytes per hash, got shape {arr.shape} of 0/1"
            f" values, which looks like unpacked bits; {_PACK_HINT}"
        )
    _check_width(width, name, nbytes)
    return np.ascontiguousarray(arr.reshape(-1, width)), arr.ndim == 1


def _batch_codes(items: list[Any], name: str, nbytes: int | None) -> npt.NDArray[np.uint8]:
    """Convert a list of hex strings, bytes or ImageHash objects (one kind)."""
    if not items:
        if nbytes is None:
            raise InvalidArgument(
                f"{name}: cannot infer the hash width from an empty sequence;"
                " pass at least one hash or a uint8 array of shape (0, nbytes)"
            )
        return np.empty((0, nbytes), dtype=np.uint8)
    first = items[0]
    if isinstance(first, (str, bytes, bytearray)):
        kind: type | tuple[type, ...] = str if isinstance(first, str) else (bytes, bytearray)
        if not all(issubclass(t, kind) for t in set(map(type, items))):  # one pass in C
            i = next(i for i, x in enumerate(items) if not isinstance(x, kind))
            raise InvalidType(
                f"{name}[{i}]: expected {'str' if kind is str else 'bytes'} like {name}[0],"
                f" got {type(items[i]).__name__}"
            )
        if isinstance(first, str):
            return _hex_codes(items, name, nbytes, single=False)
        _check_ragged(map(len, items), name, "bytes")
        _check_width(len(first), name, nbytes)
        return np.frombuffer(bytearray().join(items), dtype=np.uint8).reshape(-1, len(first))
    if _is_imagehash(first):
        return _imagehash_codes(items, name, nbytes, single=False)
    raise InvalidType(
        f"{name}[0]: expected a hex str, bytes or an ImageHash, got {type(first).__name__}"
    )


def _check_ragged(widths: Iterable[int], name: str, unit: str) -> None:
    """Raise HashFormatError naming the first row whose width differs from row 0."""
    sizes = np.fromiter(widths, dtype=np.intp)
    differ = np.flatnonzero(sizes != sizes[0])
    if differ.size:
        i = int(differ[0])
        raise HashFormatError(
            f"{name}[{i}]: expected {sizes[0]} {unit} like {name}[0], got {sizes[i]};"
            " all hashes in a batch must have the same width"
        )


def _imagehash_codes(
    items: list[Any], name: str, nbytes: int | None, *, single: bool
) -> npt.NDArray[np.uint8]:
    """Pack ImageHash bit matrices row-major, MSB first (as ``str(imagehash)``)."""
    for i, item in enumerate(items):
        if not _is_imagehash(item):
            raise InvalidType(
                f"{name}[{i}]: expected an ImageHash like {name}[0], got {type(item).__name__}"
            )
        size = item.hash.size
        if size % 8 or size == 0:
            raise HashFormatError(
                f"{_at(name, i, single)}: expected an ImageHash of a whole number of bytes,"
                f" got {size} bits (shape {item.hash.shape})"
            )
    _check_ragged((item.hash.size for item in items), name, "bits")
    codes = np.packbits(np.stack([item.hash.reshape(-1) for item in items]), axis=-1)
    _check_width(codes.shape[1], name, nbytes)
    return codes


def hex_hint(text: str) -> str:
    """A hint for a hash text that holds more than hex digits: a ``0x`` prefix, whitespace (a
    trailing line break, a space inside), or base64; ``""`` when it is none of these."""
    if text[:2] in ("0x", "0X") and _NOT_HEX.search(text[2:]) is None:
        return "; remove the 0x prefix"
    space = _SPACE.search(text)
    if space:
        return (
            f"; the hash contains whitespace ({space.group()!r} at position {space.start()}):"
            " a hash is one run of hex digits (strip line ends and spaces)"
        )
    if len(text) == 44 and _BASE64.fullmatch(text) and _NOT_HEX.search(text):
        return "; it looks like base64: decode it with base64.b64decode() and pass the bytes"
    return ""


def _hex_codes(
    items: list[str], name: str, nbytes: int | None, *, single: bool
) -> npt.NDArray[np.uint8]:
    """Parse equal-length hex strings, strictly, in one vectorised pass."""
    lengths = np.fromiter(map(len, items), dtype=np.intp, count=len(items))
    chars = int(lengths[0])
    ref = chars if nbytes is None else 2 * nbytes  # expected characters per hash
    if (lengths != chars).any():
        i = int(np.argmax(lengths != ref))
        like = f" like {name}[0]" if nbytes is None else ""
        raise HashFormatError(
            f"{name}[{i}]: expected {ref} hex characters ({4 * ref} bits){like}, got"
            f" {lengths[i]}; all hashes in a batch must have the same width" + hex_hint(items[i])
        )
    if chars % 2 or not 2 <= chars <= 2 * MAX_BYTES:
        expected = (
            f"an even number of hex characters from 2 to {2 * MAX_BYTES}"
            if nbytes is None
            else f"{ref} hex characters ({4 * ref} bits)"
        )
        raise HashFormatError(
            f"{_at(name, 0, single)}: expected {expected}, got {chars}" + hex_hint(items[0])
        )
    text = "".join(items)
    # bytearray.fromhex rejects every non-hex character except ASCII whitespace,
    # which it skips: the text is valid iff fromhex succeeds and skipped nothing.
    try:
        raw: bytearray | None = bytearray.fromhex(text)
    except ValueError:
        raw = None
    if raw is None or 2 * len(raw) != len(text):
        match = next(_NOT_HEX.finditer(text))  # fromhex failed: there is one
        row, pos = divmod(match.start(), chars)
        raise HashFormatError(
            f"{_at(name, row, single)}: invalid character {match.group()!r} at position {pos};"
            f" expected {ref} hex characters [0-9a-fA-F]" + hex_hint(items[row])
        )
    _check_width(chars // 2, name, nbytes)
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, chars // 2)


def as_variant_codes(
    queries: object, *, name: str = "queries", nbytes: int | None = None, variants: int = 8
) -> tuple[npt.NDArray[np.uint8], bool]:
    """Coerce queries given as variant stacks (see :mod:`hashmatch.dihedral`) to packed codes.

    Parameters
    ----------
    queries : numpy.ndarray or iterable
        A uint8 array of shape ``(nq, variants, nbytes)``, or ``(variants, nbytes)`` for one
        query; or an iterable of nq stacks, each ``variants`` hashes in any form
        :func:`as_codes` takes (hex strings, bytes, a 2-D uint8 array).
    name : str, optional
        Argument name used in error messages.
    nbytes : int, optional
        Required width in bytes; inferred from the first hash by default.
    variants : int, optional
        Variants per query (8 for the dihedral transforms).

    Returns
    -------
    codes : numpy.ndarray
        C-contiguous uint8 array of shape ``(nq, variants, nbytes)``.
    single : bool
        True when `queries` was one stack (then ``nq == 1``).

    Raises
    ------
    InvalidArgument
        On a stack that does not hold exactly `variants` hashes, or a bad shape.
    InvalidType, HashFormatError, HashTypeMismatch
        As :func:`as_codes`, naming the stack (``queries[3]``).
    """
    expected = f"variant stacks of shape (nq, {variants}, nbytes) or ({variants}, nbytes)"
    if isinstance(queries, np.ndarray) and queries.dtype.kind not in "UO":
        if queries.ndim not in (2, 3):
            raise InvalidArgument(f"{name}: expected {expected}, got shape {queries.shape}")
        single = queries.ndim == 2
        stacks = queries[None] if single else queries
        if stacks.shape[1] != variants:
            raise InvalidArgument(
                f"{name}: expected {variants} variants per query, got shape {queries.shape}"
            )
        flat, _ = _array_codes(stacks.reshape(-1, stacks.shape[-1]), name, nbytes)
        return flat.reshape(len(stacks), variants, flat.shape[-1]), single
    if isinstance(queries, (str, bytes, bytearray, memoryview, Mapping, AbstractSet)) or not (
        isinstance(queries, Iterable)
    ):
        raise InvalidType(f"{name}: expected {expected}, got {type(queries).__name__}")
    rows: list[npt.NDArray[np.uint8]] = []
    for i, stack in enumerate(queries):
        where = f"{name}[{i}]"
        if isinstance(stack, (str, bytes, bytearray, memoryview)):
            raise InvalidType(
                f"{where}: expected a stack of {variants} hashes (one query's variants), got"
                f" one hash; pass dihedral=False for plain queries"
            )
        codes, _ = as_codes(stack, name=where, nbytes=nbytes)
        if len(codes) != variants:
            raise InvalidArgument(f"{where}: expected {variants} variants, got {len(codes)}")
        nbytes = codes.shape[1]
        rows.append(codes)
    if not rows:
        if nbytes is None:
            raise InvalidArgument(f"{name}: an empty batch needs a known width")
        return np.zeros((0, variants, nbytes), dtype=np.uint8), False
    return np.ascontiguousarray(np.stack(rows)), False


def check_dihedral(value: object) -> bool:
    """``dihedral=`` must be a real bool: a truthy string or array is a mistake."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidType(f"dihedral: expected True or False, got {type(value).__name__}")
    return bool(value)
