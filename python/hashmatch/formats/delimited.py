"""The CSV and TSV dialects: rows parsed with the :mod:`csv` module (quoted fields may hold
separators, quotes and line breaks), columns found by header name (:data:`COLUMN_ALIASES`).

Without a header the first column is the hash, the second the key and any others are extras
named ``column3``, ``column4``...; but rows of the ThreatExchange shape ``signal_type,hash,...``
(``pdq,<hash>,...``) keep the type as the extra ``signal_type``, the hash second and the key
third.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any, ClassVar

from hashmatch.errors import HashFormatError, HashmatchError, InvalidArgument
from hashmatch.schema import FIELDS

from . import threatexchange
from .limits import BATCH_WEIGHT, FIELD_WEIGHT, check_length, shown
from .names import COLUMN_ALIASES, FIELD_OF, NOT_HEX, format_labels, normalise
from .records import HashRecords

if TYPE_CHECKING:
    from .reader import HashReader

__all__ = ["DELIMITERS", "PYTX_COLUMNS", "Layout", "PytxWriter", "Writer", "batches"]

DELIMITERS = {"csv": ",", "tsv": "\t"}
_WEIGHED = 32  # rows between looks at a batch's weight (rows are at most max_line_chars)


@dataclass
class Layout:
    """Where each column of a CSV/TSV file is: field index by canonical name, and extras."""

    width: int  # fields per row
    fields: dict[str, int]
    extras: list[tuple[str, int]]
    header_line: int | None


class _Cursor:
    """Where :func:`_record_lines` is: the first line of the record being read, whether the
    next line starts a record (set by the reader of ``csv.reader`` after each record), the
    characters of the record so far, and of the batch so far."""

    __slots__ = ("at_start", "batch", "chars", "start")

    def __init__(self) -> None:
        self.at_start = True
        self.start = 0
        self.chars = 0
        self.batch = 0


def _record_lines(reader: HashReader, lines: Iterator[str], cursor: _Cursor) -> Iterator[str]:
    """Physical lines for ``csv.reader``, but blank and ``#`` lines between records (a line
    inside a quoted field is kept whatever it holds); numbers the first line of each record
    and refuses a record longer than ``max_line_chars`` (its lines together)."""
    limit = reader.max_line_chars
    number = 0
    for line in lines:
        number += 1
        size = len(line)
        cursor.batch += size
        if cursor.at_start:
            if size > limit:
                check_length(reader, size, line, number)
            head = line[:1]
            if head == "#" or head == "\n" or head == "\r":
                continue
            if head.isspace():
                stripped = line.strip()
                if not stripped or stripped[0] == "#":
                    continue
            cursor.start = number
            cursor.at_start = False
            cursor.chars = size
        else:
            cursor.chars += size
            if cursor.chars > limit:
                check_length(reader, cursor.chars, line, cursor.start)
        yield line


def batches(reader: HashReader, lines: Iterator[str]) -> Iterator[HashRecords | None]:
    """CSV/TSV rows with the csv module, a batch at a time.

    The fields of a batch go into one flat list: no list per row survives to slow the garbage
    collector, and a column is a slice. A row of the wrong length is an error and leaves no
    fields (so a wide header costs nothing on short rows); without ``skip_invalid`` it ends
    the batch, which raises it. A batch also ends at :data:`BATCH_WEIGHT`.
    """
    cursor = _Cursor()
    rows = csv.reader(
        _record_lines(reader, lines, cursor),
        delimiter=DELIMITERS.get(reader.format, ","),
        strict=True,
    )
    try:
        first = next(rows, None)
        if first is None:
            return
        cursor.at_start = True
        layout = _layout(reader, first, cursor.start)
        data = rows if layout.header_line is not None else itertools.chain([first], rows)
        width, size = layout.width, reader._batch_rows
        fields: list[str] = []
        starts: list[int] = []
        errors: dict[int, HashmatchError] = {}
        cursor.batch = 0
        check_at = min(size, _WEIGHED)  # rows at which the batch's weight is next looked at
        for row in data:
            cursor.at_start = True
            starts.append(cursor.start)
            if len(row) == width:
                fields.extend(row)
            else:
                errors[len(starts) - 1] = _width_error(reader, layout, len(row), cursor.start)
                if not reader.skip_invalid:
                    check_at = len(starts)  # end the batch now: it raises this row
            if len(starts) >= check_at:
                weight = cursor.batch + FIELD_WEIGHT * len(fields)
                if (
                    len(starts) < size
                    and weight < BATCH_WEIGHT
                    and (reader.skip_invalid or not errors)
                ):
                    check_at = min(size, len(starts) + _WEIGHED)
                    continue
                reader._weight += weight
                yield _records(reader, fields, starts, errors, layout)
                fields, starts, errors = [], [], {}
                size = reader._batch_rows
                check_at = min(size, _WEIGHED)
                cursor.batch = 0
    except csv.Error as error:
        raise HashFormatError(
            f"{reader.path}:{cursor.start}: cannot parse {reader.format.upper()}: {error}"
        ) from None
    if starts:
        reader._weight += cursor.batch + FIELD_WEIGHT * len(fields)
        yield _records(reader, fields, starts, errors, layout)


def _headerless(reader: HashReader, row: list[str]) -> Layout:
    """The layout of a file without header: ``hash, key, extras...``, or the ThreatExchange
    shape ``signal_type, hash, key, extras...``."""
    if threatexchange.is_typed_row(row):
        fields = {"hash": 1, "key": 2} if len(row) > 2 else {"hash": 1}
        extras = [("signal_type", 0)] + [(f"column{i + 1}", i) for i in range(3, len(row))]
    else:
        fields = {"hash": 0, "key": 1} if len(row) > 1 else {"hash": 0}
        extras = [(f"column{i + 1}", i) for i in range(2, len(row))]
    reader.columns = {name: f"column{i + 1}" for name, i in fields.items()}
    return Layout(len(row), fields, extras, None)


def _layout(reader: HashReader, row: list[str], line: int) -> Layout:
    """Columns from a header line, or the layout of a file without one."""
    if reader.format == "te_state":
        return _state_layout(reader, row, line)
    names = [normalise(cell) for cell in row]
    first = row[0].strip() if row else ""
    first_is_hex = first != "" and NOT_HEX.search(first) is None
    is_header = not first_is_hex and any(
        name in FIELD_OF or name.endswith("hash") for name in names
    )
    if len(row) > reader.max_columns:
        raise HashFormatError(
            f"{reader.path}:{line}: expected at most {reader.max_columns:,} columns in the"
            f" {'header' if is_header else 'first row'}, got {len(row):,}; pass max_columns="
            " to read more"
        )
    if not is_header or threatexchange.is_typed_row(row):
        return _headerless(reader, row)
    found: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        if name in FIELD_OF:
            found.setdefault(FIELD_OF[name], []).append(i)
    if "hash" not in found:
        fallback = [i for i, name in enumerate(names) if name.endswith("hash")]
        if fallback:
            found["hash"] = fallback
    if "hash" not in found:
        raise HashFormatError(
            f"{reader.path}:{line}: expected a hash column in the header, named one of"
            f" {', '.join(COLUMN_ALIASES['hash'])} (or ending in 'hash'), got columns"
            f" {_listed(row)}"
        )
    for name, indices in found.items():
        if len(indices) > 1:
            raise HashFormatError(
                f"{reader.path}:{line}: expected one {name} column, got"
                f" {', '.join(repr(row[i]) for i in indices)}; rename all but one"
            )
    fields = {name: indices[0] for name, indices in found.items()}
    if reader.text_ids and "id" in fields:  # the id column is text: read it as the key
        if "key" in fields:
            fields.pop("key")
        fields["key"] = fields.pop("id")
    used = set(fields.values())
    extras = [(cell or f"column{i + 1}", i) for i, cell in enumerate(row) if i not in used]
    seen: set[str] = set()
    for name, _ in extras:
        if name in seen:
            raise HashFormatError(
                f"{reader.path}:{line}: expected unique column names, got {shown(name)} twice"
            )
        seen.add(name)
    reader.columns = {name: row[i] for name, i in sorted(fields.items(), key=itemgetter(1))}
    return Layout(len(row), fields, extras, line)


def _state_layout(reader: HashReader, row: list[str], line: int) -> Layout:
    """The columns of a python-threatexchange state file, by the number of fields."""
    columns = threatexchange.STATE_COLUMNS.get(len(row))
    if columns is None:
        raise HashFormatError(
            f"{reader.path}:{line}: expected a ThreatExchange state row of"
            f" {' or '.join(map(str, threatexchange.STATE_COLUMNS))} fields"
            f" (indicator, [indicator id,] descriptor id, added on, labels), got {len(row)}"
        )
    fields = {name: i for i, name in enumerate(columns) if name in COLUMN_ALIASES}
    extras = [(name, i) for i, name in enumerate(columns) if name not in COLUMN_ALIASES]
    reader.columns = {name: f"column{i + 1}" for name, i in fields.items()}
    return Layout(len(row), fields, extras, None)


def _listed(row: list[str], most: int = 20) -> str:
    """The first ``most`` cells of a header row, for an error message."""
    listed = ", ".join(map(shown, row[:most]))
    return listed if len(row) <= most else f"{listed}... ({len(row):,} in all)"


def _width_error(reader: HashReader, layout: Layout, got: int, line: int) -> HashFormatError:
    like = "the first row" if layout.header_line is None else "the header"
    return HashFormatError(
        f"{reader.path}:{line}: expected {layout.width} fields like {like}, got {got}"
    )


def _records(
    reader: HashReader,
    fields: list[str],
    starts: list[int],
    errors: dict[int, HashmatchError],
    layout: Layout,
) -> HashRecords | None:
    """Split a batch's fields into columns and parse them. ``fields`` holds the rows of the
    right width; the others (in ``errors``) get empty values in the columns used, no more."""
    width = layout.width
    columns: dict[str, list[Any]] = {name: fields[i::width] for name, i in layout.fields.items()}
    if layout.extras:
        names = [name for name, _ in layout.extras]
        values = zip(*(fields[i::width] for _, i in layout.extras), strict=True)
        columns["extras"] = [dict(zip(names, row, strict=True)) for row in values]
    if len(fields) != width * len(starts):  # rows of the wrong width: none of their fields
        good = [i for i in range(len(starts)) if i not in errors]
        for name, column in columns.items():
            spread: list[Any] = [{} if name == "extras" else ""] * len(starts)
            for i, value in zip(good, column, strict=True):
                spread[i] = value
            columns[name] = spread
    texts = list(map(str.strip, columns.pop("hash")))
    return reader._records(texts, starts, columns, errors)


# -------------------------------------------------------------------------------- writing


class Writer:
    """Writes chunks as CSV/TSV rows: a header ``hash`` then, when present, ``id, key, labels,
    source, quality`` and the extras' names; CRLF line ends (RFC 4180)."""

    # HashRecords column -> header name: the schema's field names (extras are written under
    # their own names)
    _NAMES: ClassVar[dict[str, str]] = {
        "ids": "id",
        **{f.column: f.name for f in FIELDS if f.name != "extras"},
    }

    def __init__(self, text: IO[str], format: str) -> None:
        self._csv = csv.writer(text, delimiter=DELIMITERS[format], lineterminator="\r\n")

    def header(self, present: tuple[str, ...], extra_names: list[str]) -> None:
        """The header line for the columns ``present`` (HashRecords field names)."""
        names = [self._NAMES[name] for name in present if name in self._NAMES]
        self._csv.writerow(["hash", *names, *extra_names])

    def rows(
        self, where: str, chunk: HashRecords, hexes: list[str], extra_names: list[str]
    ) -> None:
        """One row per entry of ``chunk``, its hashes given as ``hexes``."""
        columns: list[list[Any]] = [hexes]
        if chunk.ids is not None:
            columns.append(chunk.ids.tolist())
        if chunk.keys is not None:
            columns.append(["" if key is None else key for key in chunk.keys])
        if chunk.labels is not None:
            columns.append(_formatted_labels(where, chunk.labels))
        if chunk.sources is not None:
            columns.append(["" if source is None else source for source in chunk.sources])
        if chunk.qualities is not None:
            columns.append(["" if q < 0 else q for q in chunk.qualities.tolist()])
        if chunk.extras is not None:
            unknown = {key for extra in chunk.extras for key in extra} - set(extra_names)
            if unknown:
                raise InvalidArgument(
                    f"{where}.extras: expected the extras names of records[0] {extra_names},"
                    f" got also {sorted(unknown)}"
                )
            for name in extra_names:
                columns.append([extra.get(name, "") for extra in chunk.extras])
        self._csv.writerows(zip(*columns, strict=True))


PYTX_COLUMNS = ("signal_type", "signal_str", "collab", "category", "tags")
"""The columns of python-threatexchange's ``threatexchange dataset -P --csv``."""


class PytxWriter:
    """Writes chunks as ``threatexchange dataset -P --csv`` rows (:data:`PYTX_COLUMNS`):
    the extras ``signal_type`` (default ``pdq`` for 256-bit hashes) and ``category``, the
    hash, the source as ``collab`` and the labels as space-separated ``tags``. That format
    holds no ids, keys or qualities: they are not written."""

    def __init__(self, text: IO[str]) -> None:
        self._csv = csv.writer(text, lineterminator="\r\n")

    def header(self, present: tuple[str, ...], extra_names: list[str]) -> None:
        """The header line, whatever the columns."""
        self._csv.writerow(PYTX_COLUMNS)

    def rows(
        self, where: str, chunk: HashRecords, hexes: list[str], extra_names: list[str]
    ) -> None:
        """One row per entry of ``chunk``, its hashes given as ``hexes``."""
        n = len(hexes)
        extras = chunk.extras if chunk.extras is not None else [{}] * n
        default = "pdq" if chunk.codes.shape[1] == 32 else ""
        types = [extra.get("signal_type") or default for extra in extras]
        if "" in types:
            i = types.index("")
            raise InvalidArgument(
                f"{where}.extras[{i}]: expected a 'signal_type' extra (python-threatexchange's"
                f" type name) for a hash of {8 * chunk.codes.shape[1]} bits; only 256-bit"
                " hashes default to 'pdq'"
            )
        labels = chunk.labels if chunk.labels is not None else [()] * n
        for i, row in enumerate(labels):
            if any(label.split() != [label] for label in row):
                raise InvalidArgument(
                    f"{where}.labels[{i}]: expected labels without whitespace (tags are"
                    f" space-separated), got {row!r}"
                )
        sources = chunk.sources if chunk.sources is not None else [None] * n
        self._csv.writerows(
            (kind, h, source or "", extra.get("category", ""), " ".join(tags))
            for kind, h, source, extra, tags in zip(
                types, hexes, sources, extras, labels, strict=True
            )
        )


def _formatted_labels(where: str, labels: list[tuple[str, ...]]) -> list[str]:
    try:
        return list(map(format_labels, labels))
    except InvalidArgument:
        for i, row in enumerate(labels):
            try:
                format_labels(row)
            except InvalidArgument as error:
                raise InvalidArgument(f"{where}.labels[{i}]: {error}") from None
        raise
