"""Names every dialect shares: the columns and their header aliases, the labels field, and the
file-name extensions that say a file's format."""

from __future__ import annotations

import functools
import os
import re

from hashmatch.errors import InvalidArgument

from . import threatexchange

__all__ = [
    "COLUMN_ALIASES",
    "EXTENSIONS",
    "FIELD_OF",
    "NOT_HEX",
    "format_labels",
    "format_of_name",
    "normalise",
    "parse_labels",
]

_PEERS = threatexchange.COLUMNS

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "hash": ("hash", *_PEERS["hash"], "pdq", "pdq_hash", "hash_value"),
    "id": ("id", *_PEERS["id"]),
    "key": ("key", *_PEERS["key"], "filename", "file", "path", "name"),
    "labels": ("labels", "label", *_PEERS["labels"], "tags", "tag"),
    "source": ("source", *_PEERS["source"]),
    "quality": ("quality", "pdq_quality", "hash_quality"),
}
"""Header names read as each column; the first is the one :func:`write_hashes` writes. A
header without any of the hash names takes a column whose name ends in ``hash``."""

FIELD_OF = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
"""The column each alias names."""

EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "hex", ".hex": "hex"}
"""The format a file name's extension says (before an optional ``.gz``)."""

NOT_HEX = re.compile(r"[^0-9a-fA-F]")
"""A character that is not a hex digit."""

_SEPARATORS = re.compile(r"[\s\-]+")


def format_of_name(path: str) -> str | None:
    """The format ``path``'s extension says (``.csv``, ``.tsv``/``.tab``, ``.txt``/``.hex``,
    each optionally followed by ``.gz``), or None."""
    name = path.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return EXTENSIONS.get(os.path.splitext(name)[1])


def normalise(name: str) -> str:
    """A header name for matching: lowercase, stripped, spaces and dashes as ``_``."""
    return _SEPARATORS.sub("_", name.strip().lower())


_CACHED_LABELS = 256  # longer labels fields are split each time: the cache holds short ones


def parse_labels(text: str) -> tuple[str, ...]:
    """Labels of one field: split on ';' if it has one, else on whitespace."""
    return _parse_labels(text) if len(text) <= _CACHED_LABELS else _split_labels(text)


@functools.lru_cache(maxsize=65_536)
def _parse_labels(text: str) -> tuple[str, ...]:
    return _split_labels(text)


def _split_labels(text: str) -> tuple[str, ...]:
    if ";" in text:
        return tuple(label for label in (part.strip() for part in text.split(";")) if label)
    return tuple(text.split())


@functools.lru_cache(maxsize=65_536)
def format_labels(labels: tuple[str, ...]) -> str:
    """One labels field: space-joined (as the peers write), else ';'-joined."""
    for label in labels:
        if not label or label.strip() != label or ";" in label:
            raise InvalidArgument(
                f"expected labels that are non-empty, without surrounding whitespace and"
                f" without ';', got {label!r}"
            )
    if all(label.split() == [label] for label in labels):
        return " ".join(labels)
    return ";".join(labels) + (";" if len(labels) == 1 else "")
