"""The ThreatExchange family of formats: python-threatexchange, HMA (Hasher-Matcher-Actioner)
and the ThreatExchange UI.

Column names (read as hashmatch's columns, see :data:`hashmatch.formats.COLUMN_ALIASES`):

* python-threatexchange ``threatexchange dataset -P --csv``:
  ``signal_type, signal_str, collab, category, tags``;
* HMA 1.x banks: ``signal_type, signal_value, signal_id, bank_member_tags``; its
  ThreatExchange data files: ``hash, indicator_id, descriptor_id, timestamp, tags``;
* HMA 2 (OpenMediaMatch) content metadata: ``content_id``;
* the ThreatExchange UI's CSV download: ``td_raw_indicator, td_subjective_tags, td_owner_name``.

Row shapes without a header:

* ``signal_type hash`` lines (python-threatexchange's local file exchange writes
  ``pdq <hash>``), read by the hex dialect;
* ``signal_type,signal_value[,...]`` CSV/TSV rows (``pdq,<hash>,...``): the first field a
  known hash-type name, the second the hash; see :func:`is_typed_row`.
"""

from __future__ import annotations

import re

from hashmatch.hashtypes import hash_types

__all__ = ["COLUMNS", "SIGNAL_TYPES", "is_signal_type", "is_typed_row"]

COLUMNS: dict[str, tuple[str, ...]] = {
    "hash": (
        "signal",
        "signal_str",
        "signal_value",
        "indicator",
        "raw_indicator",
        "td_raw_indicator",
    ),
    "id": ("indicator_id",),
    "key": ("content_id", "signal_id", "bank_member_id"),
    "labels": ("td_subjective_tags", "bank_member_tags"),
    "source": ("collab", "collaboration", "bank", "bank_name", "privacy_group"),
}
"""The peers' header names for each of hashmatch's columns."""

SIGNAL_TYPES = frozenset(
    name
    for kind in hash_types()
    if kind.bits is not None
    for name in (kind.name, f"hash_{kind.name}")  # "pdq"; ThreatExchange's "HASH_PDQ"
)
"""Signal-type words (lowercase) that may stand before a hash on a row without header."""

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def is_signal_type(word: str) -> bool:
    """Whether ``word`` names a hash type (``pdq``, ``PDQ``, ``HASH_PDQ``...)."""
    return word.strip().lower() in SIGNAL_TYPES


def is_typed_row(fields: list[str]) -> bool:
    """Whether a first row without header is ``signal_type, hash, ...``: a hash-type name,
    then a well-formed hex hash."""
    return (
        len(fields) >= 2 and is_signal_type(fields[0]) and bool(_HEX.fullmatch(fields[1].strip()))
    )
