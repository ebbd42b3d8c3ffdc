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

State files (``read_hashes(..., format="te_state")``, told by the name
``simple.<indicator type>.te``): python-threatexchange's CLI cache of ThreatExchange
indicators, one file per indicator type, CSV rows without header: ``indicator,
first_descriptor_id, added_on, labels`` (the CLI's) or ``indicator, indicator_id,
first_descriptor_id, added_on, labels`` (HMA's); see :data:`STATE_COLUMNS`. The key is the
first id, the labels are space-separated; the indicator type is the file name's.

Exchange records (:data:`DIALECT`, read by :func:`hashmatch.formats.read_feed`): the
ThreatExchange ``threat_updates`` API's indicators, as python-threatexchange and HMA fetch
them: ``id``, ``indicator`` (the hash), ``type`` (``HASH_PDQ``, ``HASH_VIDEO_MD5``...),
``last_updated`` (seconds), ``should_delete`` and ``descriptors.data[]`` (each with ``id``,
``owner.id``, ``status`` and ``tags``, a list or ``{"data": [{"text": ...}]}``). A record is
deleted when ``should_delete`` is true or it has no ``descriptors`` (ThreatExchange sends
some deleted indicators so); an entry's labels are its descriptors' tags, its extras the
indicator ``type`` and the descriptors' ``status`` values; its key the indicator ``id``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from hashmatch.hashtypes import hash_types

from .exchange import (
    Delete,
    Dialect,
    Malformed,
    OtherType,
    Upsert,
    flag_field,
    hash_field,
    labels_of,
    text_field,
    time_field,
)

__all__ = [
    "COLUMNS",
    "DIALECT",
    "INDICATOR_TYPES",
    "SIGNAL_TYPES",
    "STATE_COLUMNS",
    "is_signal_type",
    "is_state_file",
    "is_typed_row",
    "parse_indicator",
]

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

STATE_COLUMNS: dict[int, tuple[str, ...]] = {
    4: ("hash", "key", "added_on", "labels"),
    5: ("hash", "key", "descriptor_id", "added_on", "labels"),
}
"""The columns of a state file's rows by their number of fields: the CLI's rows (the key is
the first descriptor id) and HMA's (the key is the indicator id)."""

_STATE_FILE = re.compile(r"simple\.[^.]+\.te(?:\.gz)?")


def is_state_file(path: str) -> bool:
    """Whether ``path`` is named like a state file, ``simple.<indicator type>.te``."""
    return bool(_STATE_FILE.fullmatch(os.path.basename(path)))


def is_signal_type(word: str) -> bool:
    """Whether ``word`` names a hash type (``pdq``, ``PDQ``, ``HASH_PDQ``...)."""
    return word.strip().lower() in SIGNAL_TYPES


def is_typed_row(fields: list[str]) -> bool:
    """Whether a first row without header is ``signal_type, hash, ...``: a hash-type name,
    then a well-formed hex hash."""
    return (
        len(fields) >= 2 and is_signal_type(fields[0]) and bool(_HEX.fullmatch(fields[1].strip()))
    )


INDICATOR_TYPES = {
    "HASH_PDQ": "pdq",
    "HASH_MD5": "md5",
    "HASH_VIDEO_MD5": "md5",
    "HASH_SHA1": "sha1",
    "HASH_SHA256": "sha256",
    "HASH_VIDEO_SHA256": "sha256",
}
"""ThreatExchange indicator types and the hash type of each; other types (``URI``,
``TEXT_STRING``, ``HASH_TMK``...) are skipped."""


def parse_indicator(record: Mapping[str, Any]) -> Upsert | Delete | OtherType:
    """One ``threat_updates`` indicator: an upsert, a delete, or a type skipped."""
    key = text_field(record, "id")
    kind = text_field(record, "type", key)
    time = time_field(record, "last_updated", key)
    hash_type = INDICATOR_TYPES.get(kind.upper())
    if hash_type is None:
        return OtherType(kind, time)
    if flag_field(record, "should_delete", key) or "descriptors" not in record:
        return Delete(key, hash_type, time)
    hex_hash = hash_field(record.get("indicator"), "indicator", hash_type, key)
    descriptors = record["descriptors"]
    data = descriptors.get("data", []) if isinstance(descriptors, Mapping) else None
    if not isinstance(data, list) or not all(isinstance(d, Mapping) for d in data):
        raise Malformed('descriptors: expected {"data": [descriptor objects]}', key)
    labels: dict[str, None] = {}
    statuses: dict[str, None] = {}
    for i, descriptor in enumerate(data):
        tags = descriptor.get("tags")
        if isinstance(tags, Mapping):  # the Graph API's edge shape
            edges = tags.get("data", [])
            tags = [t.get("text") if isinstance(t, Mapping) else t for t in edges]
        labels.update(dict.fromkeys(labels_of(tags, f"descriptors.data[{i}].tags", key)))
        status = descriptor.get("status")
        if isinstance(status, str) and status:
            statuses[status] = None
    extras = {"type": kind}
    if statuses:
        extras["status"] = " ".join(statuses)
    return Upsert(key, hash_type, hex_hash, tuple(labels), extras, time)


DIALECT = Dialect(
    name="threatexchange",
    fields=frozenset({"indicator", "type"}),
    envelope="data",
    parse=parse_indicator,
    checkpoint_of=lambda response: None,
)
"""ThreatExchange ``threat_updates`` indicators; the checkpoint is the latest
``last_updated`` (the API's ``start_time`` for the next pull)."""
