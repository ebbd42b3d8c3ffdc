"""What every exchange dialect shares: the hash types the exchanges serve, what reading one
record gives (:class:`Upsert`, :class:`Delete`, :class:`OtherType`, or :class:`Malformed`
raised), the :class:`Dialect` a module declares, and the checks of record fields.

A dialect module (``threatexchange``, ``tat``, ``stopncii``, ``ncmec``) turns one record of its
exchange's API, a JSON object, into one of these; :mod:`hashmatch.formats.feed_reader` loads
the records, tells the dialect and gathers a :class:`~hashmatch.formats.FeedBatch`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hashmatch._validation import hex_hint

from .limits import shown

__all__ = [
    "HASH_TYPES",
    "Delete",
    "Dialect",
    "Malformed",
    "OtherType",
    "Upsert",
    "flag_field",
    "hash_field",
    "labels_of",
    "response_time",
    "seconds",
    "text_field",
    "time_field",
]

HASH_TYPES: dict[str, int] = {"pdq": 256, "md5": 128, "sha1": 160, "sha256": 256}
"""The hash types a feed batch may hold, by hashmatch's name, and their widths in bits. PDQ is
matched by Hamming distance; the cryptographic digests (``md5`` for pytx's ``video_md5``) only
exactly, at distance 0."""

TYPE_ALIASES = {"video_md5": "md5", "video_sha256": "sha256"}
"""python-threatexchange's signal-type names for hashmatch's."""

_HEX = re.compile(r"[0-9a-fA-F]+")


class Malformed(Exception):
    """A record that cannot be read: the reason, and its key when known. Not a public error:
    the feed reader turns it into a :class:`~hashmatch.formats.Rejected` or a
    :class:`~hashmatch.HashFormatError` naming the record."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key


@dataclass(frozen=True)
class Upsert:
    """A record created or updated: its key, hash type and lowercase hex hash, labels, the
    other fields kept as extras, and its update time (for the checkpoint)."""

    key: str
    hash_type: str
    hex: str
    labels: tuple[str, ...] = ()
    extras: dict[str, str] = field(default_factory=dict)
    time: float | None = None


@dataclass(frozen=True)
class Delete:
    """A record deleted: its key, its hash type when the record says it (None: any type), and
    its update time."""

    key: str
    hash_type: str | None = None
    time: float | None = None


@dataclass(frozen=True)
class OtherType:
    """A record of a type hashmatch does not hold (a URL, a text, a TMK video hash): skipped
    and counted under the exchange's type name, with its update time."""

    type_name: str
    time: float | None = None


Parsed = Upsert | Delete | OtherType | list[Upsert | Delete | OtherType]


@dataclass(frozen=True)
class Dialect:
    """One exchange's record shape.

    Attributes
    ----------
    name : str
        The dialect name (``read_feed(..., dialect=name)``), also the entries' ``source``.
    fields : frozenset of str
        Fields every record of this exchange has: a record with all of them is of this dialect
        (auto-detection needs exactly one dialect to match).
    envelope : str
        The field of a whole API response that holds its records (``results``...).
    parse : callable
        One record (a dict) to what it says; raises :class:`Malformed`.
    checkpoint_of : callable
        A whole response to the exchange's own cursor in it, or None.
    record_checkpoint : callable
        The checkpoint after a batch, from its latest record (by time) and that time; by
        default the time, in seconds.
    """

    name: str
    fields: frozenset[str]
    envelope: str
    parse: Callable[[Mapping[str, Any]], Parsed]
    checkpoint_of: Callable[[Mapping[str, Any]], str | None]
    record_checkpoint: Callable[[float, Mapping[str, Any]], str] = lambda time, record: seconds(
        time
    )


def seconds(value: float) -> str:
    """A time as text: an integer without ``.0``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def text_field(record: Mapping[str, Any], name: str, key: str | None = None) -> str:
    """``record[name]``, a non-empty string, stripped (an integer is read as its digits: ids
    are often numbers in JSON)."""
    value = record.get(name)
    if value is None:
        raise Malformed(f"expected a field {name!r}, got none", key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"{name}: expected a non-empty string, got {shown(repr(value))}", key)
    return value.strip()


def hash_field(value: object, name: str, hash_type: str, key: str | None = None) -> str:
    """A hex hash of ``hash_type``'s width, lowercased; uppercase is accepted, nothing else
    (no ``0x``, no whitespace)."""
    digits = HASH_TYPES[hash_type] // 4
    if not isinstance(value, str):
        raise Malformed(
            f"{name}: expected a {hash_type} hash, {digits} hex digits, got {type(value).__name__}",
            key,
        )
    if not _HEX.fullmatch(value):
        bad = re.search(r"[^0-9a-fA-F]", value)
        where = f" {bad.group()!r} at position {bad.start()}" if bad else ""
        raise Malformed(
            f"{name}: expected a {hash_type} hash, {digits} hex digits, got {shown(value)}"
            f" (invalid character{where}){hex_hint(value)}",
            key,
        )
    if len(value) != digits:
        raise Malformed(
            f"{name}: expected a {hash_type} hash, {digits} hex digits, got {len(value)}", key
        )
    return value.lower()


def time_field(record: Mapping[str, Any], name: str, key: str | None = None) -> float | None:
    """``record[name]``, a time in seconds (a number, or a string of one); None when absent."""
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        text = value
        try:
            value = float(text)
        except ValueError:
            reason = f"{name}: expected a time in seconds, got {shown(text)}"
            raise Malformed(reason, key) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Malformed(f"{name}: expected a time in seconds, got {value!r}", key)
    return float(value)


def flag_field(record: Mapping[str, Any], name: str, key: str | None = None) -> bool:
    """``record[name]``, true or false (false when absent)."""
    value = record.get(name, False)
    if not isinstance(value, bool):
        raise Malformed(f"{name}: expected true or false, got {shown(repr(value))}", key)
    return value


def response_time(response: Mapping[str, Any], name: str) -> str | None:
    """A whole response's time field ``name`` (seconds), as a checkpoint; None if it has
    none."""
    value = response.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return seconds(value)
    return None


def labels_of(values: object, name: str, key: str | None = None) -> tuple[str, ...]:
    """Labels from a list of strings (or one string), stripped, empty ones dropped, each once,
    in order."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise Malformed(f"{name}: expected a list of strings, got {shown(repr(values))}", key)
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
