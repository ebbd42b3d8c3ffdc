"""Hash hygiene: the records a hash list refuses to index, and why.

Hash exchanges serve malformed entries now and then: an all-zero "PDQ" of 32 hex characters
(128 bits) crashed python-threatexchange and HMA index builds (facebook/ThreatExchange#1609).
Such a record must never crash a refresh and never enter the index silently. The rules,
for a list of ``bits``-bit hashes:

* **wrong length**: a hash of another width (a batch of them, as a
  :class:`~hashmatch.formats.HashRecords` holds one width; mixed widths in one file are
  rejected by the reader, row by row);
* **all zeros** and **all ones**: what a hasher writes for a blank or failed image, and what a
  broken export writes for a missing hash. They match every other degenerate hash and many
  flat images, so they are refused for every hash type;
* **low quality** (types with a quality score, PDQ and vPDQ): a known quality below the floor.
  The floor defaults to 50, the value PDQ's authors recommend and python-threatexchange and HMA
  apply (they drop hashes of quality < 50); a missing quality is no reason to refuse a hash.
  ``min_quality=None`` turns the rule off, an integer sets another floor.

:meth:`HashList.apply <hashmatch.HashList.apply>` screens every batch with :func:`screen`:
in lenient mode the refused records are *quarantined* (kept aside, each with where it was and
why, counted in the list's stats), in strict mode the first one raises and nothing changes.

Examples
--------
>>> from hashmatch.formats import HashRecords
>>> from hashmatch.hygiene import screen
>>> records = HashRecords(["00" * 32, "ab" * 32, "ff" * 32], keys=["a", "b", "c"],
...                       qualities=[100, 30, 100])
>>> kept, rejected = screen(records, bits=256, min_quality=50)
>>> kept.tolist()
[False, False, False]
>>> [r.reason for r in rejected]
['all-zero hash', 'quality 30 below the floor of 50', 'all-one hash']
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from hashmatch.errors import InvalidArgument, InvalidType
from hashmatch.formats import HashRecords, Rejected
from hashmatch.hashtypes import QUALITY_MAX, hash_type

__all__ = ["CUSTOMARY_MIN_QUALITY", "min_quality_for", "screen"]

CUSTOMARY_MIN_QUALITY = 50
"""The quality floor of PDQ hashes that PDQ's authors, python-threatexchange and HMA use."""

MinQuality = int | None | Literal["auto"]


def min_quality_for(hash_type_name: str, min_quality: object = "auto") -> int | None:
    """The quality floor for a hash type: ``"auto"`` is :data:`CUSTOMARY_MIN_QUALITY` for
    types with a quality score (PDQ, vPDQ) and none for the others; ``None`` is no floor; an
    integer 0-100 is that floor.

    Examples
    --------
    >>> min_quality_for("pdq"), min_quality_for("phash"), min_quality_for("pdq", 80)
    (50, None, 80)
    """
    if isinstance(min_quality, str) and min_quality == "auto":
        return CUSTOMARY_MIN_QUALITY if hash_type(hash_type_name).has_quality else None
    if min_quality is None:
        return None
    if isinstance(min_quality, bool) or not isinstance(min_quality, (int, np.integer)):
        raise InvalidType(
            f"min_quality: expected 'auto', None or an integer from 0 to {QUALITY_MAX}, got"
            f" {min_quality!r}"
        )
    if not 0 <= int(min_quality) <= QUALITY_MAX:
        raise InvalidArgument(
            f"min_quality: expected an integer from 0 to {QUALITY_MAX}, got {min_quality}"
        )
    return int(min_quality)


def where_of(records: HashRecords, row: int, where: str) -> str:
    """Where a record was: ``where:line`` when the records know their lines, else
    ``where[row]``."""
    if records.lines is not None:
        return f"{where}:{int(records.lines[row])}"
    return f"{where}[{row}]"


def screen(
    records: HashRecords, *, bits: int, min_quality: int | None, where: str = "upserts"
) -> tuple[npt.NDArray[np.bool_], list[Rejected]]:
    """Which records may enter a list of ``bits``-bit hashes, and why the others may not.

    Parameters
    ----------
    records : HashRecords
        The records to check.
    bits : int
        The list's hash width.
    min_quality : int or None
        Refuse hashes whose known quality is below this (see :func:`min_quality_for`).
    where : str, default "upserts"
        What the records are called in the reasons (a file path, ``"upserts"``).

    Returns
    -------
    kept : numpy.ndarray of bool
        True for each record that passes every rule.
    rejected : list of Rejected
        The others in record order: where each was (``where:line`` or ``where[row]``), its
        key and the first rule it breaks.
    """
    n = len(records)
    keys = records.keys if records.keys is not None else [None] * n
    got = records.codes.shape[1] * 8
    if got != bits:
        reason = f"wrong length: expected a {bits}-bit hash, got {got} bits"
        return np.zeros(n, bool), [
            Rejected(where_of(records, i, where), keys[i], reason) for i in range(n)
        ]
    codes = records.codes
    reasons = np.zeros(n, np.int8)  # 0 kept, 1 zeros, 2 ones, 3 quality
    if min_quality is not None and records.qualities is not None:
        q = records.qualities
        reasons[(q >= 0) & (q < min_quality)] = 3
    reasons[(codes == 0xFF).all(axis=1)] = 2
    reasons[~codes.any(axis=1)] = 1
    rejected = []
    for i in np.flatnonzero(reasons).tolist():
        if reasons[i] == 1:
            reason = "all-zero hash"
        elif reasons[i] == 2:
            reason = "all-one hash"
        else:  # reason 3: qualities are given
            quality = -1 if records.qualities is None else int(records.qualities[i])
            reason = f"quality {quality} below the floor of {min_quality}"
        rejected.append(Rejected(where_of(records, i, where), keys[i], reason))
    return reasons == 0, rejected
