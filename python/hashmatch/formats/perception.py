"""perception's hash strings: base64 of the packed bits.

Thorn's ``perception`` library writes a hash of bits (``dtype="bool"``: its PHash, DHash,
PDQHash...) as ``base64.b64encode(np.packbits(vector).tobytes())``, its default
``hash_format="base64"``; its ``hex`` format is the same bytes as hex. ``np.packbits`` puts
the first bit of the vector in the most significant bit of the first byte, which is
hashmatch's packing (:func:`hashmatch.from_hex` reads hex the same way), so the decoded bytes
are hashmatch's codes as they are, and ``perception``'s ``b64_to_hex`` gives the hex that
hashmatch reads. A 64-bit hash is 12 base64 characters, a 256-bit one 44 (with ``=``
padding).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from hashmatch._validation import as_codes, check_bits
from hashmatch.errors import HashFormatError, HashTypeMismatch, InvalidType

from .limits import shown

__all__ = ["from_base64", "to_base64"]

_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def from_base64(hashes: Iterable[str], *, bits: int | None = None) -> npt.NDArray[np.uint8]:
    """Packed codes of perception base64 hash strings.

    Parameters
    ----------
    hashes : iterable of str
        Standard base64 (``+/``, padded), one hash each, all of one width.
    bits : int, optional
        The width every hash must have; by default that of the first.

    Returns
    -------
    numpy.ndarray
        uint8 codes of shape ``(n, bits // 8)``.

    Raises
    ------
    HashFormatError
        On a string that is not padded standard base64 (``hashes[i]`` named).
    HashTypeMismatch
        On a hash of another width.

    Examples
    --------
    >>> from hashmatch.formats import from_base64, to_base64
    >>> codes = from_base64(["/wAPAPAAAAE="])
    >>> codes.tobytes().hex()
    'ff000f00f0000001'
    >>> to_base64(codes)
    ['/wAPAPAAAAE=']
    """
    if isinstance(hashes, (str, bytes)):
        raise InvalidType("hashes: expected a list of base64 strings, got one string; wrap it")
    nbytes = None if bits is None else check_bits(bits) // 8
    rows: list[bytes] = []
    for i, text in enumerate(hashes):
        if not isinstance(text, str):
            raise InvalidType(f"hashes[{i}]: expected a base64 str, got {type(text).__name__}")
        if len(text) % 4 or not _BASE64.fullmatch(text):
            raise HashFormatError(
                f"hashes[{i}]: expected padded standard base64 (A-Z a-z 0-9 + /, '=' padding, a"
                f" multiple of 4 characters), got {shown(text)}"
            )
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise HashFormatError(f"hashes[{i}]: invalid base64 {shown(text)}: {error}") from None
        if not raw:
            raise HashFormatError(f"hashes[{i}]: expected a hash, got an empty string")
        if nbytes is None:
            nbytes = len(raw)
        elif len(raw) != nbytes:
            raise HashTypeMismatch(
                f"hashes[{i}]: expected {8 * nbytes} bits, got {8 * len(raw)} ({shown(text)})"
            )
        rows.append(raw)
    if not rows:
        return np.zeros((0, nbytes or 0), dtype=np.uint8)
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), -1).copy()


def to_base64(codes: object) -> list[str]:
    """perception base64 strings of packed codes (anything :func:`hashmatch.from_hex`
    accepts: a uint8 array of shape ``(n, nbytes)``, a list of hex strings...).

    Examples
    --------
    >>> from hashmatch.formats import to_base64
    >>> to_base64(["ff000f00f0000001"])
    ['/wAPAPAAAAE=']
    """
    array, single = as_codes(codes, name="codes")
    if single:
        array = array.reshape(1, -1)
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in array]
