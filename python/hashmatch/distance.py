"""Hamming distances between explicit sets of hashes."""

from __future__ import annotations

import functools
import os
from typing import overload

import numpy as np
import numpy.typing as npt

from hashmatch import _core
from hashmatch._validation import as_codes, check_threads
from hashmatch.errors import InvalidArgument

__all__ = ["cdist", "hamming"]


@functools.cache
def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def check_result_size(nbytes: int, what: str) -> None:
    """Refuse a result larger than this machine's memory before allocating it."""
    physical = _physical_memory()
    if physical is not None and nbytes > physical:
        raise MemoryError(
            f"{what}: the result would take {nbytes / 2**30:.1f} GiB, more than this machine's "
            f"{physical / 2**30:.1f} GiB of memory; process it in smaller batches"
        )


@overload
def hamming(a: str | bytes, b: str | bytes) -> int: ...
@overload
def hamming(a: object, b: object) -> npt.NDArray[np.uint16] | int: ...


def hamming(a: object, b: object) -> npt.NDArray[np.uint16] | int:
    """Hamming distances between hashes, row by row.

    Parameters
    ----------
    a, b : hashes
        Hex strings, bytes, ImageHash objects or packed uint8 arrays of shape (n, nbytes) or
        (nbytes,), of the same width. Two batches must have the same length; a single hash is
        compared with every row of the other side (broadcast).

    Returns
    -------
    int or numpy.ndarray
        An ``int`` when both sides are single hashes, else a uint16 array of shape (n,).

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.hamming("ff00", "0f00")
    4
    >>> hm.hamming("ff00", ["ff00", "00ff", "0f0f"]).tolist()
    [0, 16, 8]
    """
    ca, single_a = as_codes(a, name="a")
    cb, single_b = as_codes(b, name="b", nbytes=ca.shape[1])
    if single_a and single_b:
        return int(_core.hamming_rows(ca, cb, 1)[0])
    if single_a or single_b:
        one, many = (ca, cb) if single_a else (cb, ca)
        return np.asarray(_core.cdist(one, many, check_threads(None))[0])
    if len(ca) != len(cb):
        raise InvalidArgument(
            f"b: expected {len(ca)} hashes like a (or a single hash), got {len(cb)}"
        )
    return np.asarray(_core.hamming_rows(ca, cb, check_threads(None)))


def cdist(a: object, b: object, *, threads: int | None = None) -> npt.NDArray[np.uint16]:
    """All pairwise Hamming distances between two sets of hashes.

    Parameters
    ----------
    a : hashes
        n hashes (hex strings, bytes, ImageHash objects or a packed uint8 array).
    b : hashes
        m hashes of the same width.
    threads : int, optional
        Threads to use; ``None`` (default) uses every available core.

    Returns
    -------
    numpy.ndarray
        uint16 array of shape (n, m): ``out[i, j]`` is the distance between ``a[i]`` and ``b[j]``.

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.cdist(["ff", "0f"], ["ff", "00", "f0"]).tolist()
    [[0, 8, 4], [4, 4, 8]]
    """
    ca, _ = as_codes(a, name="a")
    cb, _ = as_codes(b, name="b", nbytes=ca.shape[1])
    check_result_size(2 * len(ca) * len(cb), "cdist")
    return np.asarray(_core.cdist(ca, cb, check_threads(threads)))
