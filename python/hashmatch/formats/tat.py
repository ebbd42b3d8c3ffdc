"""Tech Against Terrorism's hash list (the TCAP ``hash-list`` API) records, as
python-threatexchange fetches them: ``hash_digest``, ``algorithm`` (``PDQ``, ``MD5``...),
``ideology`` (``islamist``, ``far-right``), ``file_type``, ``deleted``, ``created_on``,
``updated_on`` (seconds) and ``id``.

An entry's key is the record ``id``, its labels the ideology, its extras the algorithm, file
type and creation time; ``deleted: true`` deletes it. The checkpoint is TAT's own cursor,
``"<updated_on>,<id>"`` of the latest record (the API's ``after`` parameter), or the
``checkpoint`` of a whole response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .exchange import (
    Delete,
    Dialect,
    OtherType,
    Upsert,
    flag_field,
    hash_field,
    labels_of,
    seconds,
    text_field,
    time_field,
)

__all__ = ["ALGORITHMS", "DIALECT", "parse_entry"]

ALGORITHMS = {"PDQ": "pdq", "MD5": "md5", "SHA1": "sha1", "SHA256": "sha256"}
"""TAT's algorithm names and the hash type of each; other algorithms are skipped."""


def parse_entry(record: Mapping[str, Any]) -> Upsert | Delete | OtherType:
    """One hash-list entry: an upsert, a delete, or an algorithm skipped."""
    key = text_field(record, "id")
    algorithm = text_field(record, "algorithm", key)
    time = time_field(record, "updated_on", key)
    hash_type = ALGORITHMS.get(algorithm.upper())
    if hash_type is None:
        return OtherType(algorithm, time)
    if flag_field(record, "deleted", key):
        return Delete(key, hash_type, time)
    hex_hash = hash_field(record.get("hash_digest"), "hash_digest", hash_type, key)
    extras = {"algorithm": algorithm}
    for name in ("file_type", "created_on"):
        value = record.get(name)
        if value is not None and value != "":
            extras[name] = str(value)
    labels = labels_of(record.get("ideology"), "ideology", key)
    return Upsert(key, hash_type, hex_hash, labels, extras, time)


def _response_checkpoint(response: Mapping[str, Any]) -> str | None:
    value = response.get("checkpoint")
    return value if isinstance(value, str) and value else None


DIALECT = Dialect(
    name="tat",
    fields=frozenset({"hash_digest", "algorithm"}),
    envelope="results",
    parse=parse_entry,
    checkpoint_of=_response_checkpoint,
    record_checkpoint=lambda time, record: f"{seconds(time)},{record.get('id')}",
)
"""Tech Against Terrorism hash-list entries."""
