"""The per-entry schema of a hash list, declared once.

An entry of a :class:`~hashmatch.HashList` is an id, a hash, and the metadata fields in
:data:`FIELDS`. Everything that handles entries is derived from this table: the arguments of
``HashList.add`` and ``update`` (normalised by each field's ``normalise``), the columnar
storage (:class:`Columns`), the sections of a saved list, the text formats' column names, and
the columns a :class:`~hashmatch.MatchResult` reports. Adding a field (a video id, a frame
timestamp) is one :class:`Field` here plus, where the field is public, one attribute of
:class:`~hashmatch.Entry` and of the match records.

Storage kinds (:mod:`hashmatch._columns`):

- ``"text"``: a :class:`~hashmatch._columns.Strings` column (UTF-8 blob + offsets; empty
  means none), saved as sections ``<section>.off`` and ``<section>.blob``;
- ``"interned"``: a :class:`~hashmatch._columns.Interned` column (a table of distinct values
  and a uint32 code per entry), saved as section ``<section>`` and meta table ``<table>``;
- ``"quality"``: int16 per entry, -1 for none, saved as section ``<section>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from hashmatch._columns import Interned, Strings, as_rows
from hashmatch.errors import IndexFormatError, InvalidArgument, InvalidType
from hashmatch.hashtypes import MISSING_QUALITY, QUALITY_MAX, check_qualities

__all__ = ["FIELDS", "MAX_EXTRAS_BYTES", "Columns", "Field", "field"]

MAX_EXTRAS_BYTES = 65536
"""Largest JSON text of one entry's extras."""

Kind = Literal["text", "interned", "quality"]
Column = Strings | Interned | npt.NDArray[np.int16]


# ---------------------------------------------------------------- value normalisation


def check_text(value: object, name: str) -> str | None:
    """A non-empty string without NUL, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidType(f"{name}: expected a str or None, got {type(value).__name__}")
    if not value or "\0" in value:
        raise InvalidArgument(f"{name}: expected a non-empty string without NUL, got {value!r}")
    return value


def per_entry(value: object, n: int, name: str, scalar: Callable[[object], bool]) -> list[Any]:
    """One value per entry: a scalar (``scalar(value)``) is repeated, a sequence must have n."""
    if scalar(value):
        return [value] * n
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence):
        raise InvalidType(f"{name}: expected one value or a sequence of {n}, got {value!r}")
    if len(value) != n:
        raise InvalidArgument(f"{name}: expected {n} values (one per hash), got {len(value)}")
    return list(value)


def label_set(value: object, name: str) -> tuple[str, ...]:
    """One entry's labels: a str or an iterable of str, as a sorted tuple without repeats.

    A label has no surrounding whitespace and no ``;``, so every label can be written to the
    text formats (where labels are joined with spaces or ``;``) and read back as it was."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidType(f"{name}: expected labels (str or iterable of str), got {value!r}")
    labels = set()
    for label in value:
        text = check_text(label, name)
        if text is not None:
            if text != text.strip() or ";" in text:
                raise InvalidArgument(
                    f"{name}: expected labels without surrounding whitespace or ';', got {text!r}"
                )
            labels.add(text)
    return tuple(sorted(labels))


def _keys(value: object, n: int, name: str) -> list[str | None]:
    if value is None:
        return [None] * n
    if isinstance(value, str):
        raise InvalidType(f"{name}: expected a sequence of str (one per hash), got one str")
    items = per_entry(value, n, name, lambda v: False)
    keys = [check_text(k, f"{name}[{i}]") for i, k in enumerate(items)]
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k is not None and seen.setdefault(k, i) != i:
            raise InvalidArgument(
                f"{name}[{i}]: expected unique keys, got duplicate {k!r} "
                f"(also at {name}[{seen[k]}])"
            )
    return keys


def _sources(value: object, n: int, name: str) -> list[str | None]:
    items = per_entry(value, n, name, lambda v: v is None or isinstance(v, str))
    return [check_text(s, name) for s in items]


def _labels(value: object, n: int, name: str) -> list[tuple[str, ...]]:
    """``str`` or a flat sequence of str: the same labels for every entry; else one set each."""
    if value is None:
        return [()] * n
    shared = isinstance(value, (str, frozenset, set)) or (
        isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value) and value
    )
    if shared or (isinstance(value, (tuple, list)) and not value and n != 0):
        return [label_set(value, name)] * n
    items = per_entry(value, n, name, lambda v: False)
    seen: dict[Any, tuple[str, ...]] = {}  # label sets repeat: normalise each one once
    out = []
    for i, v in enumerate(items):
        try:
            out.append(seen[v])
        except (KeyError, TypeError):  # new, or unhashable (a list)
            labels = label_set(v, f"{name}[{i}]")
            if isinstance(v, (tuple, str, frozenset)):
                seen[v] = labels
            out.append(labels)
    return out


def _extras(value: object, n: int, name: str) -> list[str | None]:
    items = per_entry(value, n, name, lambda v: v is None or isinstance(v, Mapping))
    out: list[str | None] = []
    for i, item in enumerate(items):
        if item is None or (isinstance(item, Mapping) and not item):
            out.append(None)
            continue
        if not isinstance(item, Mapping) or not all(isinstance(k, str) for k in item):
            raise InvalidType(f"{name}[{i}]: expected a dict with str keys, got {item!r}")
        try:
            text = json.dumps(item, sort_keys=True, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"{name}[{i}]: expected JSON-serialisable values ({e})") from None
        if len(text.encode()) > MAX_EXTRAS_BYTES or "\0" in text:
            raise InvalidArgument(
                f"{name}[{i}]: expected at most {MAX_EXTRAS_BYTES} bytes of JSON without NUL"
            )
        out.append(text)
    return out


def _quality(value: object, n: int, name: str) -> npt.NDArray[np.int16]:
    return check_qualities(value, n, name)


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------- the fields


@dataclass(frozen=True)
class Field:
    """One per-entry metadata field.

    Attributes
    ----------
    name : str
        The field's name: the ``Entry`` attribute, the keyword of ``add``/``update`` (except
        ``source``'s historical ``source=``), the canonical text-file column.
    column : str
        Plural name of a column of many entries (``HashRecords`` and ``MatchResult``).
    argument : str
        The keyword of ``HashList.add`` / ``update`` that sets it.
    kind : {"text", "interned", "quality"}
        How it is stored (see the module docstring).
    section : str
        Section name (stem) in a saved list.
    table : str or None
        Meta table of an interned field.
    in_matches : bool
        Whether match results report it.
    """

    name: str
    column: str
    argument: str
    kind: Kind
    section: str
    table: str | None
    in_matches: bool
    _normalise: Callable[[object, int, str], Any]
    _to_table: Callable[[Any], Any] = lambda v: v
    _from_table: Callable[[Any], Any] = lambda v: v

    def normalise(self, value: object, n: int) -> Any:
        """``value`` as given to ``add`` for ``n`` entries -> the values to store (validated)."""
        return self._normalise(value, n, self.argument)

    def encode(self, values: Any) -> Column:
        """Normalised values -> a column."""
        if self.kind == "text":
            return Strings.encode(values)
        if self.kind == "interned":
            return Interned.encode(values)
        return np.asarray(values, dtype=np.int16)

    def empty(self, n: int) -> Column:
        """A column of ``n`` entries without a value."""
        if self.kind == "text":
            return Strings.empty(n)
        if self.kind == "interned":
            return Interned.constant(self.normalise(None, 1)[0], n)
        return np.full(n, MISSING_QUALITY, np.int16)

    def decode(self, column: Column, rows: npt.ArrayLike) -> list[Any]:
        """The Python values of ``rows`` (``Entry`` attributes)."""
        if isinstance(column, np.ndarray):
            return [None if v < 0 else v for v in column[as_rows(rows)].tolist()]
        try:  # a file loaded with verify=False may hold damaged text: say which section
            values = column.get(rows)
            if self.name == "extras":
                return [_json_object(v) if v else {} for v in values]
        except ValueError as e:  # UnicodeDecodeError, JSONDecodeError
            raise IndexFormatError(
                f"section {self.section!r}: an entry is not valid {self.name} ({e})"
            ) from None
        return values


FIELDS: tuple[Field, ...] = (
    Field("key", "keys", "keys", "text", "key", None, True, _keys),
    Field("source", "sources", "source", "interned", "source", "sources", True, _sources),
    Field(
        "labels",
        "labels",
        "labels",
        "interned",
        "labelset",
        "labelsets",
        True,
        _labels,
        _to_table=list,
        _from_table=tuple,
    ),
    Field("quality", "qualities", "quality", "quality", "quality", None, False, _quality),
    Field("extras", "extras", "extras", "text", "extra", None, False, _extras),
)
"""Every per-entry metadata field, in ``Entry`` order (after ``id`` and ``hash``)."""

_BY_NAME = {f.name: f for f in FIELDS}


def field(name: str) -> Field:
    """The field called ``name``."""
    return _BY_NAME[name]


def check_table(f: Field, table: object) -> tuple[Any, ...] | None:
    """An interned field's meta table as read from a file, or None when malformed."""
    if not isinstance(table, list):
        return None
    if f.name == "source":
        ok = all(s is None or (isinstance(s, str) and s) for s in table)
    else:
        ok = all(isinstance(ls, list) and all(isinstance(x, str) and x for x in ls) for ls in table)
    return tuple(f._from_table(v) for v in table) if ok else None


def quality_in_range(q: npt.NDArray[np.int16]) -> bool:
    """Whether stored quality scores are all -1 (none) or 0..100."""
    return not len(q) or (int(q.min()) >= MISSING_QUALITY and int(q.max()) <= QUALITY_MAX)


# ---------------------------------------------------------------- columns of entries


class Columns:
    """Every metadata column of some entries: field name -> column, all of one length."""

    __slots__ = ("_columns", "_n")

    def __init__(self, columns: Mapping[str, Column], n: int) -> None:
        if set(columns) != set(_BY_NAME):
            raise ValueError(f"columns: expected {sorted(_BY_NAME)}, got {sorted(columns)}")
        if any(len(c) != n for c in columns.values()):
            raise ValueError("columns: lengths differ")
        self._columns = dict(columns)
        self._n = n

    @staticmethod
    def of(n: int, values: Mapping[str, Any] | None = None) -> Columns:
        """Columns of ``n`` entries from normalised ``values`` (field name -> values; fields
        left out are empty)."""
        values = values or {}
        return Columns(
            {f.name: f.encode(values[f.name]) if f.name in values else f.empty(n) for f in FIELDS},
            n,
        )

    @staticmethod
    def normalised(n: int, arguments: Mapping[str, object]) -> Columns:
        """Columns of ``n`` entries from ``add``-style arguments (argument name -> value)."""
        return Columns.of(n, {f.name: f.normalise(arguments.get(f.argument), n) for f in FIELDS})

    def __getitem__(self, name: str) -> Column:
        return self._columns[name]

    def __len__(self) -> int:
        """Number of entries."""
        return self._n

    @property
    def keys(self) -> Strings:
        """The ``key`` column."""
        column = self._columns["key"]
        assert isinstance(column, Strings)
        return column

    @property
    def quality(self) -> npt.NDArray[np.int16]:
        """The ``quality`` column: int16, -1 for none."""
        column = self._columns["quality"]
        assert isinstance(column, np.ndarray)
        return column

    def take(self, rows: npt.ArrayLike) -> Columns:
        rows = as_rows(rows)
        return Columns(
            {
                name: c[rows] if isinstance(c, np.ndarray) else c.take(rows)
                for name, c in self._columns.items()
            },
            len(rows),
        )

    @staticmethod
    def concat(parts: Sequence[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        out: dict[str, Column] = {}
        for f in FIELDS:
            cols = [p[f.name] for p in parts]
            if all(isinstance(c, Strings) for c in cols):
                out[f.name] = Strings.concat([c for c in cols if isinstance(c, Strings)])
            elif all(isinstance(c, Interned) for c in cols):
                out[f.name] = Interned.concat([c for c in cols if isinstance(c, Interned)])
            else:
                out[f.name] = np.concatenate([c for c in cols if isinstance(c, np.ndarray)])
        return Columns(out, sum(len(p) for p in parts))

    def pruned(self) -> Columns:
        """The same columns without interned table values no entry uses."""
        return Columns(
            {n: c.pruned() if isinstance(c, Interned) else c for n, c in self._columns.items()},
            self._n,
        )

    def decoded(self, rows: npt.ArrayLike) -> dict[str, list[Any]]:
        """Python values of every field at ``rows`` (field name -> list)."""
        return {f.name: f.decode(self[f.name], rows) for f in FIELDS}

    def objects(self, name: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
        """One field at ``rows`` as an object array (for result columns)."""
        column = self[name]
        if isinstance(column, Interned):
            return column.objects(rows)
        out = np.empty(len(rows), dtype=object)
        out[:] = field(name).decode(column, rows)
        return out

    def is_valid(self) -> bool:
        """Offsets and table codes are consistent, qualities in range."""
        return all(
            quality_in_range(c) if isinstance(c, np.ndarray) else c.is_valid()
            for c in self._columns.values()
        )
