"""NCMEC's hash-sharing entries (its XML ``entries`` API, as python-threatexchange's
``NCMECEntryUpdate`` holds them, written as JSON): ``id``, ``member_id`` (the ESP that
uploaded it), ``entry_type`` (``image``, ``video``), ``deleted``, ``classification`` and
``fingerprints``, a map of algorithm (``PDQ``, ``MD5``, ``SHA1``, ``PDNA``, ``NETCLEAN``...)
to value.

An entry's key is ``"<member_id>-<id>"`` (python-threatexchange's, as entry ids are per
member), its labels the classification, its extras the entry type and member. A deleted entry
(a tombstone, without fingerprints) deletes the key whatever the hash type. Entries carry no
time: the checkpoint is a whole response's ``max_timestamp``, else none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .exchange import (
    Delete,
    Dialect,
    Malformed,
    OtherType,
    Upsert,
    flag_field,
    hash_field,
    labels_of,
    response_time,
    text_field,
)

__all__ = ["DIALECT", "FINGERPRINTS", "parse_entry"]

FINGERPRINTS = {"PDQ": "pdq", "MD5": "md5", "SHA1": "sha1"}
"""NCMEC's fingerprint names and the hash type of each; the others are skipped."""


def parse_entry(record: Mapping[str, Any]) -> Delete | list[Upsert | Delete | OtherType]:
    """One entry: a delete, or an upsert for each fingerprint of a known type and the other
    fingerprint types (the feed reader keeps the type it reads)."""
    key = f"{text_field(record, 'member_id')}-{text_field(record, 'id')}"
    if flag_field(record, "deleted", key):
        return Delete(key)
    fingerprints = record.get("fingerprints")
    if not isinstance(fingerprints, Mapping):
        raise Malformed("fingerprints: expected an object of algorithm to value", key)
    labels = labels_of(record.get("classification"), "classification", key)
    extras = {"member_id": str(record["member_id"])}
    entry_type = record.get("entry_type")
    if isinstance(entry_type, str) and entry_type:
        extras["entry_type"] = entry_type
    out: list[Upsert | Delete | OtherType] = []
    for algorithm, value in fingerprints.items():
        hash_type = FINGERPRINTS.get(str(algorithm).upper())
        if hash_type is None:
            out.append(OtherType(str(algorithm)))
        else:
            hex_hash = hash_field(value, f"fingerprints.{algorithm}", hash_type, key)
            out.append(Upsert(key, hash_type, hex_hash, labels, extras))
    return out


DIALECT = Dialect(
    name="ncmec",
    fields=frozenset({"id", "fingerprints"}),
    envelope="updates",
    parse=parse_entry,
    checkpoint_of=lambda response: response_time(response, "max_timestamp"),
)
"""NCMEC hash-sharing entries."""
