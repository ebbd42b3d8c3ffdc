"""Reading exchange feeds: records of ThreatExchange, Tech Against Terrorism, StopNCII or NCMEC,
as JSON or JSON lines, into one :class:`~hashmatch.formats.FeedBatch`.

Each exchange is a dialect (:data:`FEED_DIALECTS`; the modules ``threatexchange``, ``tat``,
``stopncii`` and ``ncmec`` say how its records read). A file holds a JSON array of records, a
whole API response (an object whose ``results``, ``hashRecords``, ``updates`` or ``data``
field is the array of records; its cursor, when it has one, is the checkpoint), one record,
or JSON lines (one record a line). Records already fetched by a client are read by
:func:`parse_feed`.

Rules every dialect follows:

* one hash type per batch (``hash_type=``, PDQ by default): the records of other types, and
  the other fingerprints of an NCMEC entry, are skipped and counted, not errors;
* a record appearing twice in a batch counts once, as its last appearance says (a delete after
  an update deletes; an update after a delete restores);
* strict reading (the default) raises :class:`~hashmatch.HashFormatError` at the first
  malformed record, naming it (``path[3]``, ``path:4`` for JSON lines, ``records[3]``);
  lenient reading (``strict=False``) sets it aside in the batch's ``rejected``;
* the checkpoint is the response's own cursor, else the one the dialect makes from the latest
  record by update time (rejected records are not counted), else None.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from hashmatch._validation import as_codes
from hashmatch.errors import HashFormatError, InvalidArgument, InvalidType
from hashmatch.files import check_path, open_input

from . import ncmec, stopncii, tat, threatexchange
from .exchange import HASH_TYPES, TYPE_ALIASES, Delete, Dialect, Malformed, OtherType, Upsert
from .feeds import FeedBatch, Rejected
from .limits import shown
from .reader import check_format
from .records import HashRecords

__all__ = ["DIALECTS", "FEED_DIALECTS", "detect_dialect", "parse_feed", "read_feed"]

DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (threatexchange.DIALECT, tat.DIALECT, stopncii.DIALECT, ncmec.DIALECT)
}
"""The exchange dialects by name."""

FEED_DIALECTS = ("auto", *DIALECTS)
"""The values of ``dialect=``."""


def read_feed(
    path: str | os.PathLike[str],
    dialect: str = "auto",
    *,
    hash_type: str = "pdq",
    strict: bool = True,
    skipped: dict[str, int] | None = None,
) -> FeedBatch:
    """Read a file of exchange records into one feed batch.

    Parameters
    ----------
    path : str or path-like
        A JSON file (an array of records, a whole API response, or one record) or a JSON
        lines file (one record a line; blank lines are skipped), optionally gzip-compressed;
        ``"-"`` reads standard input. The whole file is read into memory.
    dialect : {"auto", "threatexchange", "tat", "stopncii", "ncmec"}, optional
        The exchange. ``"auto"`` tells it by the response's records field, else by the fields
        of the first record (``indicator`` and ``type``: ThreatExchange; ``hash_digest`` and
        ``algorithm``: Tech Against Terrorism; ``signalType`` and ``hashValue``: StopNCII;
        ``id`` and ``fingerprints``: NCMEC).
    hash_type : {"pdq", "md5", "sha1", "sha256"}, optional
        The hash type of the batch (``video_md5`` is read as ``md5``); records of other types
        are skipped.
    strict : bool, optional
        Raise at the first malformed record (default), or set malformed records aside in
        ``rejected``.
    skipped : dict, optional
        A dict in which to count the records skipped for their type, by type name (the
        exchange's name for a type hashmatch does not hold, else hashmatch's).

    Returns
    -------
    FeedBatch
        The upserts (keyed by the exchange's record id, the exchange's name as source), the
        keys deleted, the checkpoint and the rejected records.

    Raises
    ------
    HashFormatError
        On a file that is not JSON or JSON lines (``path:line``), whose exchange cannot be
        told, or, when strict, on a malformed record (``path[i]`` or ``path:line``).

    Examples
    --------
    >>> import json, os, tempfile
    >>> from hashmatch.formats import read_feed
    >>> path = os.path.join(tempfile.mkdtemp(), "tat.json")
    >>> record = {"id": 7, "hash_digest": "f0" * 32, "algorithm": "PDQ", "ideology": "islamist",
    ...           "file_type": "jpg", "deleted": False, "updated_on": 1704085200.0}
    >>> with open(path, "w") as f:
    ...     json.dump([record, {**record, "id": 8, "deleted": True}], f)
    >>> batch = read_feed(path)
    >>> batch.upserts.keys, batch.upserts.labels, batch.deletes, batch.checkpoint
    (['7'], [('islamist',)], ('8',), '1704085200,8')
    """
    where = check_path(path)
    kind = check_format(dialect, FEED_DIALECTS, "dialect")
    with open_input(where) as source:
        data = source.stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise HashFormatError(f"{where}: expected UTF-8 JSON, got {error}") from None
    items, response = _load(where, text)
    return _gather(items, response, kind, hash_type, strict, skipped)


def parse_feed(
    records: Iterable[object] | Mapping[str, Any],
    dialect: str = "auto",
    *,
    hash_type: str = "pdq",
    strict: bool = True,
    skipped: dict[str, int] | None = None,
) -> FeedBatch:
    """Read exchange records already fetched (decoded JSON) into one feed batch.

    Parameters
    ----------
    records : iterable of dict, or dict
        The records, or a whole API response (a dict whose records field holds them).
    dialect, hash_type, strict, skipped
        As for :func:`read_feed`; errors name ``records[i]``.

    Returns
    -------
    FeedBatch

    Examples
    --------
    >>> from hashmatch.formats import parse_feed
    >>> response = {"nextSetTimestamp": 1700000100, "hashRecords": [
    ...     {"signalType": "ImagePDQ", "hashValue": "AB" * 32, "hashStatus": "Active",
    ...      "caseNumbers": {"c1": "Active"}, "lastModtimestamp": 1700000000},
    ...     {"signalType": "URL", "hashValue": "http://x", "hashStatus": "Active"}]}
    >>> counts = {}
    >>> batch = parse_feed(response, skipped=counts)
    >>> batch.upserts.keys == ["ab" * 32], batch.checkpoint, counts
    (True, '1700000100', {'URL': 1})
    """
    kind = check_format(dialect, FEED_DIALECTS, "dialect")
    if isinstance(records, Mapping):
        items, response = _unwrap("records", records, lambda i: f"records[{i}]")
    elif isinstance(records, (str, bytes)) or not isinstance(records, Iterable):
        raise InvalidType(
            f"records: expected a list of record dicts or a response dict, got"
            f" {type(records).__name__}"
        )
    else:
        items, response = [(f"records[{i}]", r) for i, r in enumerate(records)], None
    return _gather(items, response, kind, hash_type, strict, skipped)


def detect_dialect(record: Mapping[str, Any], where: str = "records[0]") -> Dialect:
    """The one dialect whose fields ``record`` has; raises HashFormatError if none or many."""
    found = [d for d in DIALECTS.values() if d.fields <= record.keys()]
    if len(found) != 1:
        names = ", ".join(sorted(map(str, record)))[:200]
        what = "no exchange" if not found else "several exchanges"
        raise HashFormatError(
            f"{where}: cannot tell the exchange: its fields ({names}) fit {what}; pass"
            f" dialect= one of {', '.join(map(repr, DIALECTS))}"
        )
    return found[0]


Items = list[tuple[str, object]]


def _load(path: str, text: str) -> tuple[Items, Mapping[str, Any] | None]:
    """The records of a file and its response object (None: records without one)."""
    if not text.strip():
        return [], None
    try:
        value = json.loads(text)
    except RecursionError:
        raise HashFormatError(
            f"{path}: expected JSON records, got JSON nested too deeply"
        ) from None
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise HashFormatError(
                f"{path}:{error.lineno}: expected JSON or JSON lines, got invalid JSON at"
                f" column {error.colno}: {error.msg}"
            ) from None
        return _lines(text, path), None  # one value after another: JSON lines
    if isinstance(value, list):
        return [(f"{path}[{i}]", r) for i, r in enumerate(value)], None
    if isinstance(value, dict):
        return _unwrap(path, value, lambda i: f"{path}[{i}]")
    raise HashFormatError(
        f"{path}: expected a JSON array of records, a response object or JSON lines, got a"
        f" JSON {type(value).__name__}"
    )


def _lines(text: str, path: str) -> Items:
    """The records of JSON lines; a line that is not JSON is a malformed record."""
    items: Items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append((f"{path}:{number}", json.loads(line)))
        except json.JSONDecodeError as error:
            items.append((f"{path}:{number}", Malformed(f"invalid JSON: {error.msg}")))
        except RecursionError:
            items.append((f"{path}:{number}", Malformed("JSON nested too deeply")))
    return items


def _unwrap(
    name: str, value: Mapping[str, Any], where: Any
) -> tuple[Items, Mapping[str, Any] | None]:
    """The records of a response object (its records field), or the object as one record."""
    for dialect in DIALECTS.values():
        records = value.get(dialect.envelope)
        if isinstance(records, list) and not dialect.fields <= value.keys():
            return [(where(i), r) for i, r in enumerate(records)], value
    return [(name, value)], None  # one record


def _gather(
    items: Items,
    response: Mapping[str, Any] | None,
    kind: str,
    hash_type: str,
    strict: bool,
    skipped: dict[str, int] | None,
) -> FeedBatch:
    """The batch of the records read."""
    if not isinstance(hash_type, str):
        raise InvalidType(f"hash_type: expected a str, got {type(hash_type).__name__}")
    wanted = TYPE_ALIASES.get(hash_type.lower(), hash_type.lower())
    if wanted not in HASH_TYPES:
        raise InvalidArgument(
            f"hash_type: expected one of {', '.join(map(repr, HASH_TYPES))}, got {hash_type!r}"
        )
    if skipped is not None and not isinstance(skipped, dict):
        raise InvalidType(f"skipped: expected a dict or None, got {type(skipped).__name__}")
    dialect = DIALECTS.get(kind)
    if dialect is None:  # auto: by the response's records field, else by the first record
        first = next(((w, r) for w, r in items if isinstance(r, Mapping)), None)
        if first is None:
            return FeedBatch(_records([], wanted, ""))
        if response is not None:
            dialect = next(
                d for d in DIALECTS.values() if isinstance(response.get(d.envelope), list)
            )
        else:
            dialect = detect_dialect(first[1], first[0])
    entries: dict[str, Upsert | Delete] = {}
    rejected: list[Rejected] = []
    latest: tuple[float, Mapping[str, Any]] | None = None
    for where, record in items:
        try:
            if isinstance(record, Malformed):
                raise record
            if not isinstance(record, Mapping):
                raise Malformed(f"expected a JSON object, got {shown(repr(record))}")
            parsed = dialect.parse(record)
        except Malformed as error:
            if strict:
                raise HashFormatError(f"{where}: {dialect.name} record: {error.reason}") from None
            rejected.append(Rejected(where, error.key, error.reason))
            continue
        results = parsed if isinstance(parsed, list) else [parsed]
        for result in results:
            if result.time is not None and (latest is None or result.time >= latest[0]):
                latest = (result.time, record)
        chosen = [
            r
            for r in results
            if (isinstance(r, Upsert) and r.hash_type == wanted)
            or (isinstance(r, Delete) and r.hash_type in (None, wanted))
        ]
        for result in chosen:
            entries.pop(result.key, None)  # the last appearance decides, and orders
            entries[result.key] = result
        if not chosen and skipped is not None:
            for result in results:
                name = result.type_name if isinstance(result, OtherType) else result.hash_type
                if name is not None:
                    skipped[name] = skipped.get(name, 0) + 1
    upserts = [e for e in entries.values() if isinstance(e, Upsert)]
    checkpoint = dialect.checkpoint_of(response) if response is not None else None
    if checkpoint is None and latest is not None:
        checkpoint = dialect.record_checkpoint(*latest)
    return FeedBatch(
        _records(upserts, wanted, dialect.name),
        tuple(e.key for e in entries.values() if isinstance(e, Delete)),
        checkpoint,
        tuple(rejected),
    )


def _records(upserts: list[Upsert], hash_type: str, source: str) -> HashRecords:
    """The upserts as hash-list entries."""
    nbytes = HASH_TYPES[hash_type] // 8
    if not upserts:
        codes = np.zeros((0, nbytes), dtype=np.uint8)
    else:
        codes = as_codes([u.hex for u in upserts], nbytes=nbytes)[0]
    return HashRecords(
        codes,
        keys=[u.key for u in upserts],
        labels=[u.labels for u in upserts],
        sources=[source] * len(upserts),
        extras=[u.extras for u in upserts],
    )
