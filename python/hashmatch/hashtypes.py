"""Hash types: the one place that knows what a ``"pdq"`` or a ``"phash"`` is.

Every module that needs a width, a default match radius or a quality rule asks
:func:`hash_type` (or :func:`default_max_distance` for a bare width) instead of keeping its own
table. A :class:`HashType` says:

- ``bits``: the width (``None`` for ``"raw"``, whose width is given by the caller);
- ``max_distance``: the customary match radius, inclusive (PDQ: 31, as Meta's PDQ and
  ThreatExchange use; 64-bit pHash/dHash: 10);
- ``quality``: whether hashes of this type come with a quality score, and its range (PDQ
  reports 0-100 and its users skip hashes below 50);
- ``grid``: the ``(rows, cols)`` layout of the hash's bits, row-major in the packed order of
  the hex text, that a dihedral transform of the image (a rotation by 90 degrees, a mirror)
  permutes; ``None`` where the bits are no such grid.

Quality scores follow one rule everywhere (:func:`check_quality`, :func:`check_qualities`,
:func:`check_min_quality`): an integer from 0 to 100, or missing (``None``, stored as -1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from hashmatch._validation import check_bits
from hashmatch.errors import InvalidArgument, InvalidType

__all__ = [
    "HASH_TYPES",
    "QUALITY_MAX",
    "HashType",
    "check_min_quality",
    "check_qualities",
    "check_quality",
    "default_max_distance",
    "hash_type",
    "hash_types",
]

QUALITY_MAX = 100
"""Quality scores run from 0 to this (PDQ's scale)."""
MISSING_QUALITY = -1
"""How a missing quality score is stored in int16 columns."""


@dataclass(frozen=True)
class HashType:
    """What one kind of perceptual hash is.

    Attributes
    ----------
    name : str
        Lowercase name (``"pdq"``, ``"vpdq"``, ``"phash"``, ... or ``"raw"``).
    bits : int or None
        Width in bits; ``None`` for ``"raw"`` (any multiple of 8, given by the caller).
    max_distance : int or None
        Default match radius, inclusive; ``None`` for ``"raw"`` (then it follows the width:
        :func:`default_max_distance`).
    has_quality : bool
        Whether hashers of this type report a 0-100 quality score with each hash.
    grid : (int, int) or None
        ``(rows, cols)`` of the bit grid a dihedral image transform permutes, or ``None``.
    description : str
        One line for humans.
    """

    name: str
    bits: int | None
    max_distance: int | None
    has_quality: bool
    grid: tuple[int, int] | None
    description: str

    @property
    def nbytes(self) -> int | None:
        """Width in bytes, or ``None`` for ``"raw"``."""
        return None if self.bits is None else self.bits // 8

    def radius(self, bits: int) -> int:
        """The default match radius for hashes of ``bits`` bits of this type."""
        return self.max_distance if self.max_distance is not None else default_max_distance(bits)


_TYPES: dict[str, HashType] = {
    t.name: t
    for t in (
        HashType("pdq", 256, 31, True, (16, 16), "Meta's PDQ image hash (256 bits, quality 0-100)"),
        HashType("vpdq", 256, 31, True, (16, 16), "one PDQ hash per sampled video frame (vPDQ)"),
        HashType("phash", 64, 10, False, (8, 8), "DCT perceptual hash (imagehash.phash)"),
        HashType("dhash", 64, 10, False, (8, 8), "difference hash (imagehash.dhash)"),
        HashType("ahash", 64, 10, False, (8, 8), "average hash (imagehash.average_hash)"),
        HashType("whash", 64, 10, False, (8, 8), "wavelet hash (imagehash.whash)"),
        HashType("raw", None, None, False, None, "any binary hash; the width is given"),
    )
}

HASH_TYPES: Mapping[str, int] = MappingProxyType(
    {name: t.bits for name, t in _TYPES.items() if t.bits is not None}
)
"""Known hash types and their widths in bits. ``"raw"`` (any width, ``bits=`` required) covers
other binary hashes."""


def hash_types() -> list[HashType]:
    """Every known hash type, ``"raw"`` last."""
    return list(_TYPES.values())


def hash_type(name: object, *, name_of: str = "hash_type") -> HashType:
    """The :class:`HashType` called ``name`` (case-insensitive).

    Examples
    --------
    >>> from hashmatch.hashtypes import hash_type
    >>> t = hash_type("PDQ")
    >>> t.bits, t.max_distance, t.grid
    (256, 31, (16, 16))
    """
    if not isinstance(name, str):
        raise InvalidType(f"{name_of}: expected a str, got {type(name).__name__}")
    found = _TYPES.get(name.lower())
    if found is None:
        known = ", ".join(sorted(n for n in _TYPES if n != "raw"))
        raise InvalidArgument(f"{name_of}: expected one of {known} or 'raw', got {name!r}")
    return found


def resolve(name: object, bits: object = None) -> tuple[HashType, int]:
    """The hash type ``name`` and its width: ``bits`` is required for ``"raw"`` and must agree
    with a named type's width when given."""
    kind = hash_type(name)
    if kind.bits is None:
        if bits is None:
            raise InvalidArgument("bits: hash_type 'raw' needs bits= (a multiple of 8)")
        return kind, check_bits(bits)
    if bits is not None and bits != kind.bits:
        raise InvalidArgument(f"bits: {kind.name} hashes have {kind.bits} bits, got {bits!r}")
    return kind, kind.bits


def default_max_distance(bits: int) -> int:
    """The customary match radius for a width: 31 for 256 bits (PDQ), 10 for 64 bits (pHash),
    else ``bits / 8``."""
    return {256: 31, 64: 10}.get(bits, max(1, bits // 8))


# ---------------------------------------------------------------- quality scores


def check_quality(value: object, name: str) -> int | None:
    """A quality score: an integer from 0 to 100 (floats only when integral), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise InvalidType(f"{name}: expected an integer from 0 to {QUALITY_MAX}, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            raise InvalidArgument(f"{name}: expected a quality from 0 to {QUALITY_MAX}, got NaN")
        if not value.is_integer():
            raise InvalidArgument(f"{name}: expected an integer quality, got {value}")
    if not 0 <= value <= QUALITY_MAX:
        raise InvalidArgument(f"{name}: expected a quality from 0 to {QUALITY_MAX}, got {value}")
    return int(value)


def check_qualities(
    values: object, n: int, name: str = "qualities", *, missing_ok: bool = True
) -> npt.NDArray[np.int16]:
    """One quality per hash as int16, -1 where missing (given as ``None`` or the integer -1).

    ``values`` is one score for every hash or a sequence/array of ``n``. With
    ``missing_ok=False`` every hash must have a score.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu" and values.ndim == 1:
        if values.shape != (n,):
            raise InvalidArgument(f"{name}: expected {n} values (one per hash), got {len(values)}")
        bad = np.flatnonzero((values < MISSING_QUALITY) | (values > QUALITY_MAX))
        if bad.size:
            i = int(bad[0])
            raise InvalidArgument(
                f"{name}[{i}]: expected a quality from 0 to {QUALITY_MAX}, got {values[i]}"
            )
        out = values.astype(np.int16)
    else:
        if values is None or isinstance(values, (int, float, np.number)):
            items: list[object] = [values] * n
        elif isinstance(values, (Sequence, np.ndarray)) and not isinstance(values, str):
            items = list(values.tolist() if isinstance(values, np.ndarray) else values)
            if len(items) != n:
                raise InvalidArgument(
                    f"{name}: expected {n} values (one per hash), got {len(items)}"
                )
        else:
            raise InvalidType(f"{name}: expected one score or a sequence of {n}, got {values!r}")
        out = np.array(
            [
                MISSING_QUALITY
                if _is_missing(v) or (q := check_quality(v, f"{name}[{i}]")) is None
                else q
                for i, v in enumerate(items)
            ],
            dtype=np.int16,
        )
    if not missing_ok and (out < 0).any():
        i = int(np.argmax(out < 0))
        raise InvalidArgument(f"{name}[{i}]: missing; every hash needs a quality score here")
    return out


def _is_missing(value: object) -> bool:
    """None, or the integer -1 that int16 quality columns store for "no score"."""
    return value is None or (
        isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == -1
    )


def check_min_quality(value: object, name: str = "min_quality") -> float:
    """A quality threshold: a number from 0 to 100 (hashes scoring below it are skipped)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidType(f"{name}: expected a number from 0 to {QUALITY_MAX}, got {value!r}")
    if math.isnan(value) or not 0 <= value <= QUALITY_MAX:
        raise InvalidArgument(f"{name}: expected a number from 0 to {QUALITY_MAX}, got {value}")
    return float(value)
