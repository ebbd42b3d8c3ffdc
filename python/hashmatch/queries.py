"""A batch of query hashes: validated codes, the quality filter, and query groups.

Every search entry point that takes uploads (``HashList.match``, ``Matcher.match``, and the
video and dihedral searches built on them) prepares its queries here once: the hashes are
checked for the width, qualities (0-100, :mod:`hashmatch.hashtypes`) decide which are searched,
and ``groups`` says which queries stand for one thing (the 8 dihedral variants of an image, the
frames of a video), so results can be aggregated per group
(:meth:`hashmatch.MatchResult.by_group`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hashmatch._validation import as_codes, as_variant_codes
from hashmatch.errors import InvalidArgument, InvalidType
from hashmatch.hashtypes import check_min_quality, check_qualities

__all__ = ["Queries", "check_groups"]


def check_groups(groups: object, n: int) -> npt.NDArray[np.int64] | None:
    """One non-negative group number per query hash (int64), or None."""
    if groups is None:
        return None
    if isinstance(groups, (str, bytes)) or not isinstance(groups, (Sequence, np.ndarray)):
        raise InvalidType(
            f"groups: expected one integer per query hash, got {type(groups).__name__}"
        )
    arr = np.asarray(groups)
    if arr.shape != (n,):
        raise InvalidArgument(
            f"groups: expected shape ({n},) (one per query hash), got {arr.shape}"
        )
    if n and arr.dtype.kind not in "iu":
        raise InvalidType(f"groups: expected integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if n and int(out.min()) < 0:
        raise InvalidArgument(f"groups[{int(np.argmin(out))}]: expected a group number >= 0")
    return out


class Queries(NamedTuple):
    """Validated query hashes: the codes searched ((n, nbytes), or (n, 8, nbytes) variant
    stacks for dihedral queries), their numbers in the batch, the numbers of those skipped for
    low quality, the batch size and each query's group (or None)."""

    codes: npt.NDArray[np.uint8]
    numbers: npt.NDArray[np.int64]
    skipped: npt.NDArray[np.int64]
    total: int
    groups: npt.NDArray[np.int64] | None

    @staticmethod
    def prepare(
        hashes: object,
        nbytes: int | None,
        qualities: object = None,
        min_quality: object = None,
        groups: object = None,
        dihedral: bool = False,
    ) -> Queries:
        """Check query hashes (variant stacks with ``dihedral``: one query, one quality and
        one group per stack), their qualities (0-100) and groups, and drop those below
        ``min_quality`` (which needs every query's quality)."""
        if dihedral:
            codes, _ = as_variant_codes(hashes, name="hashes", nbytes=nbytes)
        else:
            codes, _ = as_codes(hashes, name="hashes", nbytes=nbytes)
        n = len(codes)
        everything = np.arange(n, dtype=np.int64)
        q = None if qualities is None else check_qualities(qualities, n)
        group_of = check_groups(groups, n)
        if min_quality is None:
            return Queries(codes, everything, np.zeros(0, np.int64), n, group_of)
        threshold = check_min_quality(min_quality)
        if q is None:
            raise InvalidArgument("min_quality: needs qualities= (one score per query hash)")
        if (q < 0).any():
            i = int(np.argmax(q < 0))
            raise InvalidArgument(f"qualities[{i}]: missing; min_quality needs every query's score")
        keep = q >= threshold
        return Queries(
            np.ascontiguousarray(codes[keep]), everything[keep], everything[~keep], n, group_of
        )

    @property
    def width(self) -> int:
        """Bytes per hash."""
        return int(self.codes.shape[-1])
