"""StopNCII.org's hash records (the ``FetchHashes`` API), as python-threatexchange fetches
them: ``signalType`` (``ImagePDQ``, ``VideoMD5``, ``VideoTMK``, ``Text``, ``URL``),
``hashValue``, ``hashStatus``, ``caseNumbers`` (case number to status),
``lastModtimestamp`` (seconds) and ``CSPFeedbacks`` (each with ``feedbackValue``, ``tags`` and
``source``).

StopNCII records have no id of their own: an entry's key is its lowercase hash. A record whose
``hashStatus`` is ``Withdrawn`` or ``Deleted`` (the statuses StopNCII's documentation says a
client must delete) deletes it; ``Received``, ``Active`` and ``Unknown`` create or update it.
Its labels are the feedbacks' tags, its extras the status and the case numbers. The checkpoint
is the latest ``lastModtimestamp``, or a whole response's ``nextSetTimestamp``.
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
    hash_field,
    labels_of,
    response_time,
    text_field,
    time_field,
)

__all__ = ["DELETED_STATUSES", "DIALECT", "SIGNAL_TYPES", "parse_record"]

SIGNAL_TYPES = {"ImagePDQ": "pdq", "VideoMD5": "md5"}
"""StopNCII's signal types and the hash type of each; the others are skipped."""

DELETED_STATUSES = frozenset({"Withdrawn", "Deleted"})
"""``hashStatus`` values that delete an entry."""
_STATUSES = DELETED_STATUSES | {"Received", "Active", "Unknown"}


def parse_record(record: Mapping[str, Any]) -> Upsert | Delete | OtherType:
    """One hash record: an upsert, a delete, or a signal type skipped."""
    signal_type = text_field(record, "signalType")
    time = time_field(record, "lastModtimestamp")
    hash_type = SIGNAL_TYPES.get(signal_type)
    if hash_type is None:
        return OtherType(signal_type, time)
    key = hash_field(record.get("hashValue"), "hashValue", hash_type)
    status = text_field(record, "hashStatus", key)
    if status not in _STATUSES:
        raise Malformed(
            f"hashStatus: expected one of {', '.join(sorted(_STATUSES))}, got {status!r}", key
        )
    if status in DELETED_STATUSES:
        return Delete(key, hash_type, time)
    feedbacks = record.get("CSPFeedbacks") or []
    if not isinstance(feedbacks, list) or not all(isinstance(f, Mapping) for f in feedbacks):
        raise Malformed("CSPFeedbacks: expected a list of feedback objects", key)
    labels: dict[str, None] = {}
    for i, feedback in enumerate(feedbacks):
        labels.update(
            dict.fromkeys(labels_of(feedback.get("tags"), f"CSPFeedbacks[{i}].tags", key))
        )
    extras = {"hashStatus": status}
    cases = record.get("caseNumbers") or {}
    if not isinstance(cases, Mapping):
        raise Malformed("caseNumbers: expected an object of case number to status", key)
    if cases:
        extras["caseNumbers"] = " ".join(f"{case}:{value}" for case, value in cases.items())
    return Upsert(key, hash_type, key, tuple(labels), extras, time)


DIALECT = Dialect(
    name="stopncii",
    fields=frozenset({"signalType", "hashValue"}),
    envelope="hashRecords",
    parse=parse_record,
    checkpoint_of=lambda response: response_time(response, "nextSetTimestamp"),
)
"""StopNCII hash records."""
