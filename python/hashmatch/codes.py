"""Conversions between hash text, packed codes and bit arrays.

hashmatch stores a hash as packed bytes (a row of a uint8 array) in the same bit
order as its hex text: bit 0 of the hash is the most significant bit of byte 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._validation import as_codes, check_bits
from .errors import InvalidArgument, InvalidType

__all__ = ["from_bits", "from_hex", "to_bits", "to_hex"]


def from_hex(hashes: object, *, bits: int | None = None) -> npt.NDArray[np.uint8]:
    """Parse hex text into packed codes.

    Parameters
    ----------
    hashes : str or iterable of str
        One hex string, or many of the same length. Upper and lower case are
        accepted; anything else (``0x`` prefix, whitespace, separators,
        non-ASCII digits) is rejected. Other forms accepted by every hashmatch
        function (bytes, ImageHash, uint8 arrays) are accepted as well.
    bits : int, optional
        Required width in bits (e.g. 256 for PDQ, 64 for pHash). By default the
        width is that of the first hash.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(n, bits // 8)``, or ``(bits // 8,)`` for one str.

    Raises
    ------
    HashFormatError
        On a bad character, an odd or inconsistent length.
    HashTypeMismatch
        If the width differs from `bits`.
    InvalidType
        If `hashes` is not a str or an iterable of str (or another accepted form).

    Examples
    --------
    >>> from hashmatch.codes import from_hex
    >>> from_hex("ff01")
    array([255,   1], dtype=uint8)
    >>> from_hex(["ff01", "0A0B"], bits=16)
    array([[255,   1],
           [ 10,  11]], dtype=uint8)
    """
    nbytes = None if bits is None else check_bits(bits) // 8
    codes, single = as_codes(hashes, nbytes=nbytes)
    return codes.reshape(-1) if single else codes


def to_hex(codes: object) -> list[str] | str:
    """Format packed codes as lowercase hex text.

    Parameters
    ----------
    codes : numpy.ndarray or any hash form
        uint8 array of shape ``(n, nbytes)`` or ``(nbytes,)``, or anything
        :func:`from_hex` accepts (hex text is normalised to lowercase).

    Returns
    -------
    list of str or str
        One string of ``2 * nbytes`` characters per hash; a single str for one hash.

    Examples
    --------
    >>> import numpy as np
    >>> from hashmatch.codes import to_hex
    >>> to_hex(np.array([[255, 1], [10, 11]], dtype=np.uint8))
    ['ff01', '0a0b']
    >>> to_hex(np.array([255, 1], dtype=np.uint8))
    'ff01'
    """
    packed, single = as_codes(codes, name="codes")
    text = packed.data.hex()
    step = 2 * packed.shape[1]
    rows = [text[i : i + step] for i in range(0, len(text), step)]
    return rows[0] if single else rows


def from_bits(bits_array: object) -> npt.NDArray[np.uint8]:
    """Pack arrays of 0/1 bits into codes.

    Parameters
    ----------
    bits_array : array_like of bool or int
        Shape ``(n, nbits)`` or ``(nbits,)``, values 0 or 1, `nbits` a multiple
        of 8 in ``[8, 4096]``. Bit 0 becomes the most significant bit of byte 0.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(n, nbits // 8)``, or ``(nbits // 8,)`` for 1-D input.

    Raises
    ------
    InvalidType
        If the values are not bools or integers.
    InvalidArgument
        On a value other than 0/1, a bad rank or a bad `nbits`.

    Examples
    --------
    >>> from hashmatch.codes import from_bits
    >>> from_bits([1, 0, 0, 0, 0, 0, 0, 1])
    array([129], dtype=uint8)
    """
    arr: npt.NDArray[Any] = np.asarray(bits_array)
    if arr.dtype.kind not in "biu":
        raise InvalidType(f"bits_array: expected bools or integers 0/1, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise InvalidArgument(
            f"bits_array: expected shape (nbits,) or (n, nbits), got {arr.ndim}-D shape {arr.shape}"
        )
    check_bits(arr.shape[-1], name="bits_array.shape[-1]")
    if arr.dtype != np.bool_:
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            pos = np.unravel_index(int(np.argmax(bad)), arr.shape)
            where = ", ".join(str(int(p)) for p in pos)
            raise InvalidArgument(f"bits_array[{where}]: expected 0 or 1, got {arr[pos]}")
    return np.packbits(arr, axis=-1)


def to_bits(codes: object) -> npt.NDArray[np.uint8]:
    """Unpack codes into arrays of 0/1 bits, the inverse of :func:`from_bits`.

    Parameters
    ----------
    codes : numpy.ndarray or any hash form
        uint8 array of shape ``(n, nbytes)`` or ``(nbytes,)``, or anything
        :func:`from_hex` accepts.

    Returns
    -------
    numpy.ndarray
        uint8 array of 0/1 of shape ``(n, 8 * nbytes)``, or ``(8 * nbytes,)`` for one hash.

    Examples
    --------
    >>> from hashmatch.codes import to_bits
    >>> to_bits("81")
    array([1, 0, 0, 0, 0, 0, 0, 1], dtype=uint8)
    """
    packed, single = as_codes(codes, name="codes")
    unpacked = np.unpackbits(packed, axis=-1)
    return unpacked.reshape(-1) if single else unpacked
