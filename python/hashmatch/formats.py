"""Streaming import and export of hash-list files: plain hex, CSV and TSV.

Moderation teams exchange hash lists as plain text, one hex hash a line, or as CSV/TSV with a
hash column and metadata columns. :func:`read_hashes` streams such a file of any size in
chunks of parsed entries (:class:`HashRecords`); :func:`write_hashes` writes them back,
atomically, in a form :func:`read_hashes` reads back exactly.

Formats
-------
``hex``
    One hash a line. A line may also be ``signal_type hash`` (python-threatexchange's local
    file exchange writes ``pdq <hash>`` lines); the type word is dropped.
``csv``, ``tsv``
    Parsed with the :mod:`csv` module (quoted fields may hold separators, quotes and line
    breaks). With a header line, columns are found by name (:data:`COLUMN_ALIASES`); without
    one, the first column is the hash, the second the key and any others are extras named
    ``column3``, ``column4``...

Every format: a UTF-8 BOM is ignored, CRLF and LF line ends are accepted, blank lines and
lines starting with ``#`` (outside quoted fields) are skipped, gzip-compressed files are
recognised by their content and undecodable bytes become U+FFFD. Hashes are checked strictly
(hex digits only, one width for the whole file), as :func:`hashmatch.from_hex` does, except
that whitespace around a hash is removed.

Columns
-------
``write_hashes`` writes the canonical names ``hash, id, key, labels, source, quality`` and
then the extras; ``read_hashes`` also accepts the names used by the peers' exports (header
names are compared case-insensitively, spaces and dashes read as ``_``):

* python-threatexchange ``threatexchange dataset -P --csv``:
  ``signal_type, signal_str, collab, category, tags``;
* HMA 1.x banks: ``signal_type, signal_value, signal_id, bank_member_tags``; its
  ThreatExchange data files: ``hash, indicator_id, descriptor_id, timestamp, tags``;
* HMA 2 (OpenMediaMatch) content metadata: ``content_id``;
* the ThreatExchange UI's CSV download: ``td_raw_indicator, td_subjective_tags, td_owner_name``;
* ``pdq-photo-hasher`` output (``hash,quality,filename`` lines) once given that header line.

Columns that are none of these (``signal_type``, ``category``, ``timestamp``...) are kept as
*extras*, as strings.

Labels
------
python-threatexchange and HMA join tags with spaces (``"tag1 tag2"``, split with
``split(" ")``); the ThreatExchange UI joins them with semicolons (``"testing;pwny"``). So a
labels field that contains ``;`` is split on ``;`` (labels may then hold spaces), any other is
split on whitespace; labels are stripped and empty ones dropped. ``write_hashes`` joins labels
with spaces when none holds whitespace (what the peers read), else with ``;`` (adding a final
``;`` to a single label, so it is not split); a label that is empty, has surrounding
whitespace or holds ``;`` cannot be written.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import itertools
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt
from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

from ._validation import MAX_BYTES, _base64_hint, as_codes, check_bits, check_ids
from .codes import to_hex
from .errors import HashFormatError, HashmatchError, HashTypeMismatch, InvalidArgument, InvalidType

__all__ = ["COLUMN_ALIASES", "HashReader", "HashRecords", "read_hashes", "write_hashes"]

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "hash": (
        "hash",
        "signal",
        "signal_str",
        "signal_value",
        "pdq",
        "pdq_hash",
        "hash_value",
        "indicator",
        "raw_indicator",
        "td_raw_indicator",
    ),
    "id": ("id", "indicator_id"),
    "key": ("key", "content_id", "signal_id", "bank_member_id", "filename", "file", "path", "name"),
    "labels": ("labels", "label", "tags", "tag", "td_subjective_tags", "bank_member_tags"),
    "source": ("source", "collab", "collaboration", "bank", "bank_name", "privacy_group"),
    "quality": ("quality", "pdq_quality", "hash_quality"),
}
"""Header names read as each column; the first is the one :func:`write_hashes` writes. A
header without any of the hash names takes a column whose name ends in ``hash``."""

_PARSE_ROWS = 32_768  # rows parsed at a time: small batches stay in the CPU caches
_READ_FORMATS = ("auto", "hex", "csv", "tsv")
_DELIMITERS = {"csv": ",", "tsv": "\t"}
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}
_FIELD_OF = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")
_ID = re.compile(r"[0-9]{1,19}")  # [0-9] is ASCII only, unlike \d
_QUALITY = re.compile(r"[0-9]{0,3}")
_SEPARATORS = re.compile(r"[\s\-]+")
_WORD = re.compile(r"[^\W\d_]")  # a letter: text, not a malformed number
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)

Codes = npt.NDArray[np.uint8]
Int64s = npt.NDArray[np.int64]


# ------------------------------------------------------------------------------------ records


@dataclass(frozen=True, eq=False)
class HashRecords:
    """A chunk of hash-list entries: packed hashes and parallel metadata columns.

    A column is ``None`` when the file has no such column. Construction checks that every
    column has one value per hash and converts the arrays to the dtypes below.

    Attributes
    ----------
    codes : numpy.ndarray
        uint8 array of shape ``(n, bits // 8)`` (anything :func:`hashmatch.from_hex` accepts
        when constructing, e.g. a list of hex strings).
    ids : numpy.ndarray or None
        int64 ids, non-negative and unique.
    keys : list of (str or None), or None
        External keys (a partner's signal or content id, a file name); None where empty.
    labels : list of tuple of str, or None
        The labels of each entry, in file order (an empty tuple for none).
    sources : list of (str or None), or None
        Where each entry comes from (a collaboration, a bank); None where empty.
    qualities : numpy.ndarray or None
        int16 quality scores 0-100, -1 where missing.
    extras : list of dict or None
        The other columns of each row, by header name, as strings.
    lines : numpy.ndarray or None
        int64 1-based line numbers where each entry starts in the file it was read from.

    Examples
    --------
    >>> from hashmatch.formats import HashRecords
    >>> records = HashRecords(["ff00", "0a0b"], ids=[7, 9], labels=[("spam",), ()])
    >>> len(records), records.codes.shape, records.ids.tolist()
    (2, (2, 2), [7, 9])
    """

    codes: Codes
    ids: Int64s | None = None
    keys: list[str | None] | None = None
    labels: list[tuple[str, ...]] | None = None
    sources: list[str | None] | None = None
    qualities: npt.NDArray[np.int16] | None = None
    extras: list[dict[str, str]] | None = None
    lines: Int64s | None = None

    def __post_init__(self) -> None:
        codes, single = as_codes(self.codes, name="codes")
        if single:
            raise InvalidArgument(
                f"codes: expected a batch of hashes, shape (n, nbytes), got one hash of"
                f" {codes.shape[1]} bytes; wrap it in a list"
            )
        n = len(codes)
        object.__setattr__(self, "codes", codes)
        if self.ids is not None:
            object.__setattr__(self, "ids", check_ids(self.ids, n))
        for name, kinds, expected in (
            ("keys", (str, type(None)), "str or None"),
            ("sources", (str, type(None)), "str or None"),
            ("labels", (tuple,), "a tuple of str"),
            ("extras", (dict,), "a dict of str"),
        ):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _checked_list(value, n, name, kinds, expected))
        if self.labels is not None and not set(
            map(type, itertools.chain.from_iterable(self.labels))
        ) <= {str}:
            i = next(
                i for i, row in enumerate(self.labels) if not all(isinstance(x, str) for x in row)
            )
            raise InvalidType(f"labels[{i}]: expected a tuple of str, got {self.labels[i]!r}")
        if self.qualities is not None:
            object.__setattr__(self, "qualities", _checked_qualities(self.qualities, n))
        if self.lines is not None:
            lines = np.asarray(self.lines)
            if lines.dtype.kind not in "iu" or lines.shape != (n,):
                raise InvalidArgument(
                    f"lines: expected {n} integer line numbers, got {lines.dtype} of shape"
                    f" {lines.shape}"
                )
            object.__setattr__(self, "lines", lines.astype(np.int64))

    def __len__(self) -> int:
        return len(self.codes)

    @classmethod
    def concat(cls, chunks: Iterable[HashRecords]) -> HashRecords:
        """Join chunks (e.g. everything :func:`read_hashes` yields) into one.

        Parameters
        ----------
        chunks : iterable of HashRecords
            At least one chunk; all of one width and with the same columns.

        Returns
        -------
        HashRecords
            The entries of every chunk, in order.

        Examples
        --------
        >>> from hashmatch.formats import HashRecords
        >>> both = HashRecords.concat([HashRecords(["ff"], ids=[1]), HashRecords(["00"], ids=[2])])
        >>> both.ids.tolist()
        [1, 2]
        """
        parts = list(chunks)
        if not parts:
            raise InvalidArgument("chunks: expected at least one HashRecords, got none")
        for i, part in enumerate(parts):
            if not isinstance(part, HashRecords):
                raise InvalidType(f"chunks[{i}]: expected HashRecords, got {type(part).__name__}")
            if part._present() != parts[0]._present():
                raise InvalidArgument(
                    f"chunks[{i}]: expected the columns of chunks[0] {parts[0]._present()},"
                    f" got {part._present()}"
                )
            if part.codes.shape[1] != parts[0].codes.shape[1]:
                raise HashTypeMismatch(
                    f"chunks[{i}]: expected {parts[0].codes.shape[1]} bytes per hash like"
                    f" chunks[0], got {part.codes.shape[1]}"
                )
        return cls(**_joined(parts))  # checks the ids are unique over all chunks

    @classmethod
    def _unchecked(cls, columns: dict[str, Any]) -> HashRecords:
        """Records from columns already of the right types and lengths (no checks)."""
        records = object.__new__(cls)
        for name in cls.__dataclass_fields__:
            object.__setattr__(records, name, columns.get(name))
        return records

    def _present(self) -> tuple[str, ...]:
        """Names of the optional columns that are not None, in field order."""
        names = ("ids", "keys", "labels", "sources", "qualities", "extras", "lines")
        return tuple(name for name in names if getattr(self, name) is not None)


def _joined(parts: list[HashRecords]) -> dict[str, Any]:
    """The columns of chunks of one width and the same columns, end to end."""
    columns: dict[str, Any] = {}
    for name in ("codes", *parts[0]._present()):
        values = [getattr(part, name) for part in parts]
        if isinstance(values[0], np.ndarray):
            columns[name] = np.concatenate(values)
        else:
            columns[name] = list(itertools.chain.from_iterable(values))
    return columns


def _checked_list(
    value: object, n: int, name: str, kinds: tuple[type, ...], expected: str
) -> list[Any]:
    """``value`` as a list of ``n`` items of the given types."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise InvalidType(
            f"{name}: expected a list (one item per hash), got {type(value).__name__}"
        )
    items = list(value)
    if len(items) != n:
        raise InvalidArgument(f"{name}: expected {n} items (one per hash), got {len(items)}")
    if not set(map(type, items)) <= set(kinds):  # one pass in C; per-item only on error
        i = next(i for i, item in enumerate(items) if not isinstance(item, kinds))
        raise InvalidType(f"{name}[{i}]: expected {expected}, got {type(items[i]).__name__}")
    return items


def _checked_qualities(value: object, n: int) -> npt.NDArray[np.int16]:
    """Qualities as int16 in [-1, 100] (-1: missing)."""
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int16)  # [] is float64
    if arr.dtype.kind not in "iu":
        raise InvalidType(f"qualities: expected integers (-1 for missing), got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise InvalidArgument(f"qualities: expected shape ({n},), got {arr.shape}")
    bad = np.flatnonzero((arr < -1) | (arr > 100))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(
            f"qualities[{i}]: expected an integer from 0 to 100 or -1 (missing), got {arr[i]}"
        )
    return arr.astype(np.int16)


# ------------------------------------------------------------------------------------ reading


def read_hashes(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    bits: int | None = None,
    chunk_size: int = 1_000_000,
    skip_invalid: bool = False,
    progress: bool = False,
) -> HashReader:
    """Stream the entries of a hash-list file, in chunks.

    Parameters
    ----------
    path : str or path-like
        A plain-hex, CSV or TSV file, optionally gzip-compressed. See the module documentation
        for the columns, header aliases and label separators read.
    format : {"auto", "hex", "csv", "tsv"}, optional
        ``"auto"`` goes by the extension (``.csv``, ``.tsv``/``.tab``, with or without
        ``.gz``), else by the first data line: a tab means TSV, a comma CSV, else hex.
    bits : int, optional
        Width every hash must have (256 for PDQ, 64 for pHash). By default it is that of the
        first well-formed hash, and then every hash must have it.
    chunk_size : int, optional
        At most this many entries per chunk. Memory is bounded by it, whatever the file size,
        but for the duplicate-id check: 16 bytes per id read.
    skip_invalid : bool, optional
        Skip bad rows instead of raising, and list them in :attr:`HashReader.skipped`.
    progress : bool, optional
        Show a progress bar (bytes read) on stderr.

    Returns
    -------
    HashReader
        An iterator of :class:`HashRecords`, each with the ``lines`` its entries come from.
        The file is opened on the first ``next()`` and closed at the end (or by ``close()``).

    Raises
    ------
    HashFormatError
        On a bad hash (``path:line``, what was expected and what was found), a file without a
        hash column, a CSV quoting error, or when `bits` is not given and the file holds no
        well-formed hash (e.g. an empty file). A file without rows yields nothing when `bits`
        is given.
    HashTypeMismatch
        On a well-formed hash of another width than `bits` or the first hash.
    InvalidArgument
        On a bad id (not an integer in ``[0, 2**63)``), a duplicate id, or a quality that is
        not an integer from 0 to 100 (an empty quality field means missing).

    Examples
    --------
    >>> import os, tempfile
    >>> from hashmatch.formats import read_hashes
    >>> path = os.path.join(tempfile.mkdtemp(), "list.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("hash,id,tags\\n" + "ff" * 32 + ",7,spam scam\\n" + "0f" * 32 + ",9,\\n")
    >>> reader = read_hashes(path)
    >>> for chunk in reader:
    ...     print(chunk.codes.shape, chunk.ids.tolist(), chunk.labels, chunk.lines.tolist())
    (2, 32) [7, 9] [('spam', 'scam'), ()] [2, 3]
    >>> reader.format, reader.bits, reader.columns, reader.skipped
    ('csv', 256, {'hash': 'hash', 'id': 'id', 'labels': 'tags'}, [])
    """
    return HashReader(
        path,
        format=format,
        bits=bits,
        chunk_size=chunk_size,
        skip_invalid=skip_invalid,
        progress=progress,
    )


@dataclass
class _Layout:
    """Where each column of a CSV/TSV file is: field index by canonical name, and extras."""

    width: int  # fields per row
    fields: dict[str, int]
    extras: list[tuple[str, int]]
    header_line: int | None


class HashReader:
    """Iterator of the :class:`HashRecords` chunks of a file; made by :func:`read_hashes`.

    Attributes
    ----------
    path : str
        The file, also the prefix (``path:line``) of error messages.
    format : str
        ``"hex"``, ``"csv"`` or ``"tsv"`` once the first chunk is read (``"auto"`` before).
    bits : int or None
        The hash width, once known.
    columns : dict
        Canonical column name to the header name it was read from (``column1``... without a
        header); filled once the first chunk is read.
    skipped : list of (int, str)
        With ``skip_invalid=True``, the line and the reason of every row skipped so far.
    rows : int
        Entries yielded so far.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "auto",
        bits: int | None = None,
        chunk_size: int = 1_000_000,
        skip_invalid: bool = False,
        progress: bool = False,
    ) -> None:
        self.path = _check_path(path)
        self.format = _check_format(format, _READ_FORMATS)
        self._nbytes = None if bits is None else check_bits(bits) // 8
        self._width_from = f", from bits={bits}" if bits is not None else ""
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
            raise InvalidType(f"chunk_size: expected an integer >= 1, got {chunk_size!r}")
        if chunk_size < 1:
            raise InvalidArgument(f"chunk_size: expected an integer >= 1, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self._batch_rows = min(_PARSE_ROWS, self.chunk_size)  # rows the next batch may have
        self.skip_invalid = bool(skip_invalid)
        self.progress = bool(progress)
        self.columns: dict[str, str] = {}
        self.skipped: list[tuple[int, str]] = []
        self.rows = 0
        self._seen = _SeenIds()
        self._size = os.stat(self.path).st_size  # a missing file fails here, not at next()
        self._chunks = self._read()

    @property
    def bits(self) -> int | None:
        """The hash width in bits, once known."""
        return None if self._nbytes is None else 8 * self._nbytes

    def __iter__(self) -> HashReader:
        return self

    def __next__(self) -> HashRecords:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading and close the file."""
        self._chunks.close()

    def __enter__(self) -> HashReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the file

    def _read(self) -> Generator[HashRecords, None, None]:
        """Open, sniff, parse chunk by chunk; raise on gzip corruption with the path."""
        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(open(self.path, "rb"))
            seekable = raw.seekable()  # not a pipe (/dev/stdin, a FIFO): progress in bytes
            stream: IO[bytes] | gzip.GzipFile = raw
            if raw.peek(2)[:2] == b"\x1f\x8b":
                stream = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
            text = stack.enter_context(
                io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
            )
            bar = stack.enter_context(
                tqdm(
                    total=self._size if seekable else None,
                    desc=os.path.basename(self.path),
                    unit="B",
                    unit_scale=True,
                    file=sys.stderr,
                    disable=not self.progress,
                    leave=False,
                    dynamic_ncols=True,
                )
            )
            try:
                head = _head(text)
                if self.format == "auto":
                    self.format = _sniff(self.path, head[-1] if head else "")
                lines = itertools.chain(head, text)
                if self.format == "hex":
                    batches = self._hex_batches(lines)
                else:
                    batches = self._csv_batches(lines, _DELIMITERS[self.format])
                done = 0
                parts: list[HashRecords] = []
                count = 0
                for records in batches:
                    if seekable:
                        bar.update(raw.tell() - done)
                        done = raw.tell()
                    if records is not None:
                        parts.append(records)
                        count += len(records)
                    if count == self.chunk_size:
                        yield self._chunk(parts)
                        parts, count = [], 0
                    self._batch_rows = min(_PARSE_ROWS, self.chunk_size - count)
                if parts:
                    yield self._chunk(parts)
            except _GZIP_ERRORS as error:
                raise HashFormatError(f"{self.path}: corrupt gzip data: {error}") from None
        if self._nbytes is None:
            what = "every row is invalid" if self.skipped else "the file has no data rows"
            raise HashFormatError(
                f"{self.path}: expected at least one hash to take the hash width from, but"
                f" {what}; pass bits= to read a file that may be empty"
            )

    def _chunk(self, parts: list[HashRecords]) -> HashRecords:
        """One chunk from the records of parse batches."""
        records = parts[0] if len(parts) == 1 else HashRecords._unchecked(_joined(parts))
        self.rows += len(records)
        return records

    def _hex_batches(self, lines: Iterator[str]) -> Iterator[HashRecords | None]:
        """Plain hex: ``hash`` or ``signal_type hash`` lines."""
        number = 0
        header_checked = False
        typed: bool | None = None  # 'signal_type hash' lines, decided by the first data line
        while texts := list(map(str.strip, itertools.islice(lines, self._batch_rows))):
            starts = list(range(number + 1, number + 1 + len(texts)))
            number += len(texts)
            if "" in texts or any(text.startswith("#") for text in texts):
                pairs = zip(texts, starts, strict=True)
                kept = [(t, n) for t, n in pairs if t and not t.startswith("#")]
                texts, starts = [t for t, _ in kept], [n for _, n in kept]
            if not header_checked and texts:
                header_checked = True
                self.columns = {"hash": "column1"}
                words = [_normalise(word) for word in texts[0].split()]
                if all(word in _FIELD_OF or word == "signal_type" for word in words):
                    texts, starts = texts[1:], starts[1:]  # a header such as "hash"
            if typed is None and texts:
                words = texts[0].split()
                typed = len(words) == 2 and _NOT_HEX.search(words[0]) is not None
            errors: dict[int, HashmatchError] = {}
            if typed:
                parts = [text.split() for text in texts]
                for i, words in enumerate(parts):
                    if len(words) != 2:
                        errors[i] = HashFormatError(
                            f"{self.path}:{starts[i]}: expected 'signal_type hash' like the"
                            f" first line, got {len(words)} words"
                        )
                texts = [words[-1] if len(words) == 2 else "" for words in parts]
            yield self._records(texts, starts, {}, errors)

    def _csv_batches(self, lines: Iterator[str], delimiter: str) -> Iterator[HashRecords | None]:
        """CSV/TSV rows with the csv module, a chunk at a time.

        The fields of a chunk go into one flat list (a row of the wrong length as empty
        fields, and an error): no list per row survives to slow the garbage collector, and
        a column is a slice.
        """
        cursor = _Cursor()
        reader = csv.reader(_record_lines(lines, cursor), delimiter=delimiter, strict=True)
        try:
            first = next(reader, None)
            if first is None:
                return
            cursor.at_start = True
            layout = self._layout(first, cursor.start)
            rows = reader if layout.header_line is not None else itertools.chain([first], reader)
            width, size = layout.width, self._batch_rows
            fields: list[str] = []
            starts: list[int] = []
            errors: dict[int, HashmatchError] = {}
            for row in rows:
                cursor.at_start = True
                starts.append(cursor.start)
                if len(row) == width:
                    fields.extend(row)
                else:
                    errors[len(starts) - 1] = self._width_error(layout, len(row), cursor.start)
                    fields.extend([""] * width)
                if len(starts) == size:
                    yield self._csv_records(fields, starts, errors, layout)
                    fields, starts, errors = [], [], {}
                    size = self._batch_rows
        except csv.Error as error:
            raise HashFormatError(
                f"{self.path}:{cursor.start}: cannot parse {self.format.upper()}: {error}"
            ) from None
        if starts:
            yield self._csv_records(fields, starts, errors, layout)

    def _layout(self, row: list[str], line: int) -> _Layout:
        """Columns from a header line, or the headerless layout (hash, key, extras...)."""
        names = [_normalise(cell) for cell in row]
        first_is_hex = bool(row) and not _NOT_HEX.search(row[0].strip()) and row[0].strip() != ""
        is_header = not first_is_hex and any(
            name in _FIELD_OF or name.endswith("hash") for name in names
        )
        if not is_header:
            fields = {"hash": 0, "key": 1} if len(row) > 1 else {"hash": 0}
            extras = [(f"column{i + 1}", i) for i in range(2, len(row))]
            self.columns = {name: f"column{i + 1}" for name, i in fields.items()}
            return _Layout(len(row), fields, extras, None)
        found: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            if name in _FIELD_OF:
                found.setdefault(_FIELD_OF[name], []).append(i)
        if "hash" not in found:
            fallback = [i for i, name in enumerate(names) if name.endswith("hash")]
            if fallback:
                found["hash"] = fallback
        if "hash" not in found:
            raise HashFormatError(
                f"{self.path}:{line}: expected a hash column in the header, named one of"
                f" {', '.join(COLUMN_ALIASES['hash'])} (or ending in 'hash'), got columns"
                f" {', '.join(map(repr, row))}"
            )
        for name, indices in found.items():
            if len(indices) > 1:
                raise HashFormatError(
                    f"{self.path}:{line}: expected one {name} column, got"
                    f" {', '.join(repr(row[i]) for i in indices)}; rename all but one"
                )
        fields = {name: indices[0] for name, indices in found.items()}
        used = set(fields.values())
        extras = [(cell or f"column{i + 1}", i) for i, cell in enumerate(row) if i not in used]
        extra_names = [name for name, _ in extras]
        if len(set(extra_names)) != len(extra_names):
            twice = next(name for name in extra_names if extra_names.count(name) > 1)
            raise HashFormatError(
                f"{self.path}:{line}: expected unique column names, got {twice!r} twice"
            )
        self.columns = {name: row[i] for name, i in sorted(fields.items(), key=itemgetter(1))}
        return _Layout(len(row), fields, extras, line)

    # -- parsing a chunk

    def _width_error(self, layout: _Layout, got: int, line: int) -> HashFormatError:
        like = "the first row" if layout.header_line is None else "the header"
        return HashFormatError(
            f"{self.path}:{line}: expected {layout.width} fields like {like}, got {got}"
        )

    def _csv_records(
        self,
        fields: list[str],
        starts: list[int],
        errors: dict[int, HashmatchError],
        layout: _Layout,
    ) -> HashRecords | None:
        """Split a chunk's fields into columns and parse them."""
        width = layout.width
        columns: dict[str, list[Any]] = {
            name: fields[i::width] for name, i in layout.fields.items()
        }
        texts = list(map(str.strip, columns.pop("hash")))
        if layout.extras:
            names = [name for name, _ in layout.extras]
            values = zip(*(fields[i::width] for _, i in layout.extras), strict=True)
            columns["extras"] = [dict(zip(names, row, strict=True)) for row in values]
        return self._records(texts, starts, columns, errors)

    def _records(
        self,
        texts: list[str],
        starts: list[int],
        columns: dict[str, list[Any]],
        errors: dict[int, HashmatchError],
    ) -> HashRecords | None:
        """Check and convert one chunk; raise the first bad row, or skip every bad row."""
        n = len(texts)
        if n == 0:
            return None
        codes = self._hashes(texts, starts, errors)
        out: dict[str, Any] = {}
        if "id" in columns:
            out["ids"] = self._integers(columns["id"], starts, errors, quality=False)
        if "quality" in columns:
            out["qualities"] = self._integers(columns["quality"], starts, errors, quality=True)
        if "key" in columns:
            out["keys"] = [value or None for value in columns["key"]]
        if "source" in columns:
            out["sources"] = [value or None for value in columns["source"]]
        if "labels" in columns:
            out["labels"] = list(map(_parse_labels, columns["labels"]))
        if "extras" in columns:
            out["extras"] = columns["extras"]
        if "ids" in out:
            self._check_unique(out["ids"], starts, errors)
        keep: list[int] | None = None
        if errors:
            bad = sorted(errors)
            if not self.skip_invalid:
                raise errors[bad[0]]
            self.skipped.extend((starts[i], str(errors[i])) for i in bad)
            keep = sorted(set(range(n)) - set(bad))
            if not keep:
                return None
        if codes is None:
            selected = texts if keep is None else [texts[i] for i in keep]
            codes, _ = as_codes(selected, nbytes=self._nbytes)
        elif keep is not None:
            codes = codes[keep]
        lines = np.array(starts, dtype=np.int64)
        if keep is not None:
            index = np.array(keep, dtype=np.intp)
            lines = lines[index]
            for name, value in out.items():
                out[name] = (
                    value[index] if isinstance(value, np.ndarray) else [value[i] for i in keep]
                )
        if "ids" in out:
            self._seen.add(out["ids"], lines)
        return HashRecords._unchecked({"codes": codes, "lines": lines, **out})

    def _hashes(
        self, texts: list[str], starts: list[int], errors: dict[int, HashmatchError]
    ) -> Codes | None:
        """Parse the chunk's hashes in one vectorised call; on failure, find the bad rows.

        Returns the codes when every row is good, else None (the rows left are parsed later).
        """
        if self._nbytes is None:  # take the width from the first well-formed hash
            for i, text in enumerate(texts):
                if i in errors:
                    continue
                error = self._hash_error(text, starts[i])
                if error is None:
                    self._nbytes = len(text) // 2
                    self._width_from = f", like line {starts[i]}"
                    break
                errors[i] = error  # judged as it would be in an earlier chunk
        if self._nbytes is not None and not errors:
            with contextlib.suppress(HashmatchError):
                return as_codes(texts, nbytes=self._nbytes)[0]
        good = re.compile(f"[0-9a-fA-F]{{{2 * (self._nbytes or 0)}}}")  # a fast first check
        for i, text in enumerate(texts):
            if i not in errors and not good.fullmatch(text):
                error = self._hash_error(text, starts[i])
                if error is not None:
                    errors[i] = error
        return None

    def _hash_error(self, text: str, line: int) -> HashmatchError | None:
        """What is wrong with one hash, or None if it is good for this file."""
        where = f"{self.path}:{line}"
        nbytes = self._nbytes
        if nbytes is None:
            expected = f"an even number of hex characters, 2 to {2 * MAX_BYTES}"
        else:
            expected = f"{2 * nbytes} hex characters ({8 * nbytes} bits{self._width_from})"
        if not text:
            return HashFormatError(f"{where}: expected {expected}, got an empty hash")
        bad = _NOT_HEX.search(text)
        if bad:
            hint = _base64_hint(text)
            if self.format == "hex" and ("," in text or "\t" in text):
                hint += "; a line with commas or tabs is CSV/TSV: pass format='csv' or 'tsv'"
            return HashFormatError(
                f"{where}: invalid character {bad.group()!r} at position {bad.start()} of the"
                f" hash; expected {expected} [0-9a-fA-F]{hint}"
            )
        if len(text) % 2 or len(text) > 2 * MAX_BYTES:
            return HashFormatError(f"{where}: expected {expected}, got {len(text)}")
        if nbytes is not None and len(text) != 2 * nbytes:
            return HashTypeMismatch(
                f"{where}: expected {expected}, got {len(text)} ({4 * len(text)} bits); a file"
                " holds hashes of one width"
            )
        return None

    def _integers(
        self,
        values: list[str],
        starts: list[int],
        errors: dict[int, HashmatchError],
        *,
        quality: bool,
    ) -> npt.NDArray[Any]:
        """Ids (int64, required) or qualities (int16, 0-100, empty: -1), strictly parsed."""
        texts = list(map(str.strip, values))
        pattern, dtype, top = (_QUALITY, np.int16, 100) if quality else (_ID, np.int64, 2**63 - 1)
        joined = "".join(texts)  # ASCII digits only, checked in two C loops
        empty = "" in texts
        if (joined.isdigit() or not joined) and joined.isascii() and (quality or not empty):
            numbers = [int(text) if text else -1 for text in texts] if empty else [*map(int, texts)]
            if max(numbers) <= top:
                return np.array(numbers, dtype=dtype)
        out = np.zeros(len(texts), dtype=dtype)
        for i, text in enumerate(texts):
            if pattern.fullmatch(text) and (number := int(text) if text else -1) <= top:
                out[i] = number
            elif quality:
                errors.setdefault(
                    i,
                    InvalidArgument(
                        f"{self.path}:{starts[i]}: expected a quality: an integer from 0 to 100"
                        f" (or an empty field), got {text!r}"
                    ),
                )
            else:
                hint = "; a text id is a key: name its column 'key'" if _WORD.search(text) else ""
                errors.setdefault(
                    i,
                    InvalidArgument(
                        f"{self.path}:{starts[i]}: expected an id: an integer from 0 to"
                        f" 2**63 - 1, got {text!r}{hint}"
                    ),
                )
        return out

    def _check_unique(
        self, ids: Int64s, starts: list[int], errors: dict[int, HashmatchError]
    ) -> None:
        """Reject an id met before in the file (in this chunk or an earlier one); the first
        row with it is kept."""
        rows = np.array([i for i in range(len(ids)) if i not in errors], dtype=np.intp)
        values = ids[rows]
        earlier = self._seen.lines_of(values)
        order = np.argsort(values, kind="stable")  # equal ids stay in file order
        ordered = values[order]
        opens = np.ones(len(values), dtype=bool)  # the first of its id, in sorted order
        opens[1:] = ordered[1:] != ordered[:-1]
        if opens.all() and not earlier.any():
            return
        position = np.arange(len(values))
        first = np.empty(len(values), dtype=np.intp)  # for each id, where it first occurs
        first[order] = order[np.maximum.accumulate(np.where(opens, position, 0))]
        for j in np.flatnonzero((first != position) | (earlier > 0)).tolist():
            line = int(earlier[j]) or starts[int(rows[first[j]])]
            errors[int(rows[j])] = InvalidArgument(
                f"{self.path}:{starts[int(rows[j])]}: expected unique ids, got duplicate id"
                f" {int(values[j])} (first on line {line})"
            )


@functools.lru_cache(maxsize=65_536)
def _parse_labels(text: str) -> tuple[str, ...]:
    """Labels of one field: split on ';' if it has one, else on whitespace."""
    if ";" in text:
        return tuple(label for label in (part.strip() for part in text.split(";")) if label)
    return tuple(text.split())


class _Cursor:
    """Where :func:`_record_lines` is: the first line of the record being read, and whether
    the next line starts a record (set by the reader of ``csv.reader`` after each record)."""

    __slots__ = ("at_start", "start")

    def __init__(self) -> None:
        self.at_start = True
        self.start = 0


def _record_lines(lines: Iterator[str], cursor: _Cursor) -> Iterator[str]:
    """Physical lines for ``csv.reader``, but blank and ``#`` lines between records (a line
    inside a quoted field is kept whatever it holds); numbers the first line of each record."""
    number = 0
    for line in lines:
        number += 1
        if cursor.at_start:
            head = line[:1]
            if head == "#" or head == "\n" or head == "\r":
                continue
            if head.isspace():
                stripped = line.strip()
                if not stripped or stripped[0] == "#":
                    continue
            cursor.start = number
            cursor.at_start = False
        yield line


class _SeenIds:
    """The ids of a file so far with their lines: sorted runs merged like a binary counter,
    so checking and adding m ids costs O(m log n) and memory is 16 bytes per id."""

    def __init__(self) -> None:
        self._runs: list[tuple[Int64s, Int64s]] = []

    def lines_of(self, ids: Int64s) -> Int64s:
        """The line of each id seen before, else 0."""
        out = np.zeros(len(ids), dtype=np.int64)
        for run, lines in self._runs:
            pos = np.minimum(np.searchsorted(run, ids), len(run) - 1)
            hit = run[pos] == ids
            out[hit] = lines[pos[hit]]
        return out

    def add(self, ids: Int64s, lines: Int64s) -> None:
        """Record new (unseen) ids."""
        if len(ids) == 0:
            return
        order = np.argsort(ids)
        self._runs.append((ids[order], lines[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (a, la), (b, lb) = self._runs[-2], self._runs[-1]
            merged, merged_lines = np.concatenate([a, b]), np.concatenate([la, lb])
            order = np.argsort(merged, kind="stable")
            self._runs[-2:] = [(merged[order], merged_lines[order])]


def _head(text: IO[str]) -> list[str]:
    """The lines up to and including the first data line (not blank, not a comment)."""
    head: list[str] = []
    for line in text:
        head.append(line)
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
    return head


def _sniff(path: str, first: str) -> str:
    """The format of a file: by extension, else by its first data line."""
    name = path.lower()
    name = name[:-3] if name.endswith(".gz") else name
    by_extension = _EXTENSIONS.get(os.path.splitext(name)[1])
    if by_extension:
        return by_extension
    if "\t" in first:
        return "tsv"
    return "csv" if "," in first else "hex"


def _normalise(name: str) -> str:
    """A header name for matching: lowercase, stripped, spaces and dashes as ``_``."""
    return _SEPARATORS.sub("_", name.strip().lower())


def _check_path(path: object) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidType(f"path: expected a str or path-like, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidType(f"path: expected a str path, got {type(text).__name__}")
    return text


def _check_format(format: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(format, str):
        raise InvalidType(f"format: expected a str, got {type(format).__name__}")
    if format not in allowed:
        raise InvalidArgument(
            f"format: expected one of {', '.join(map(repr, allowed))}, got {format!r}"
        )
    return format


# ------------------------------------------------------------------------------------ writing


def write_hashes(
    path: str | os.PathLike[str],
    records: Iterable[HashRecords] | HashRecords,
    *,
    format: str = "csv",
) -> int:
    """Write hash-list entries to a file, atomically; :func:`read_hashes` reads them back.

    Parameters
    ----------
    path : str or path-like
        Destination, gzip-compressed if it ends in ``.gz``. It is written as a temporary file
        in the same directory, flushed to disk and renamed over `path`, so a failure never
        leaves a partial file there.
    records : HashRecords or iterable of HashRecords
        Chunks of one width with the same columns (those of the first chunk are written);
        ids unique over all chunks. ``lines`` are not written.
    format : {"csv", "tsv", "hex"}, optional
        CSV/TSV: a header ``hash`` then, when present, ``id, key, labels, source, quality``
        and the extras' names; CRLF line ends (the csv module's default, RFC 4180). Hex: one
        lowercase hash a line (LF), nothing else.

    Returns
    -------
    int
        The number of entries written.

    Raises
    ------
    InvalidType
        If a chunk is not a HashRecords.
    InvalidArgument
        On chunks with other columns than the first, a duplicate id across chunks, a label that
        cannot be written (empty, with surrounding whitespace or holding ``;``), or an extras
        name that is empty or one of :data:`COLUMN_ALIASES`.
    HashTypeMismatch
        On chunks of different widths.

    Notes
    -----
    Empty keys and sources are written as empty fields and read back as None; extras values
    are written with ``str()``.

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> from hashmatch.formats import HashRecords, read_hashes, write_hashes
    >>> path = os.path.join(tempfile.mkdtemp(), "list.csv")
    >>> records = HashRecords(
    ...     ["ff" * 32, "0f" * 32], ids=[7, 9], keys=["a,b", None], labels=[("spam",), ()]
    ... )
    >>> write_hashes(path, records)
    2
    >>> print(Path(path).read_bytes().decode().replace("\\r\\n", "|"))
    hash,id,key,labels|ffff...ffff,7,"a,b",spam|0f0f...0f0f,9,,|
    >>> back = next(read_hashes(path))
    >>> back.keys, back.labels
    (['a,b', None], [('spam',), ()])
    """
    path = _check_path(path)
    format = _check_format(format, ("csv", "tsv", "hex"))
    chunks: Iterable[HashRecords] = (records,) if isinstance(records, HashRecords) else records
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Iterable):
        raise InvalidType(
            f"records: expected HashRecords or an iterable of them, got {type(records).__name__}"
        )
    compress = path.lower().endswith(".gz")
    with _atomic_file(path) as raw:
        stream: IO[bytes] | gzip.GzipFile = (
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0)
            if compress
            else raw
        )
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            writer = _RowWriter(text, format)
            for index, chunk in enumerate(chunks):
                writer.write(index, chunk)
            writer.finish()
        finally:
            text.detach()  # flushes; the file stays open for the fsync
            if compress:
                stream.close()
    return writer.rows


class _RowWriter:
    """Writes chunks as rows; the first chunk fixes the width and the columns."""

    def __init__(self, text: IO[str], format: str) -> None:
        self.text = text
        self.format = format
        self.rows = 0
        self.nbytes: int | None = None
        self.present: tuple[str, ...] = ()
        self.extra_names: list[str] = []
        self.seen = _SeenIds()
        self.csv = csv.writer(text, delimiter=_DELIMITERS.get(format, ","), lineterminator="\r\n")

    def write(self, index: int, chunk: object) -> None:
        """Write one chunk, checking it against the first."""
        where = f"records[{index}]"
        if not isinstance(chunk, HashRecords):
            raise InvalidType(f"{where}: expected HashRecords, got {type(chunk).__name__}")
        present = tuple(name for name in chunk._present() if name != "lines")
        nbytes = chunk.codes.shape[1]
        if self.nbytes is None:
            self.nbytes, self.present = nbytes, present
            if chunk.extras is not None:
                self.extra_names = _extra_names(chunk.extras)
            self._header()
        elif nbytes != self.nbytes:
            raise HashTypeMismatch(
                f"{where}: expected {self.nbytes} bytes per hash ({8 * self.nbytes} bits) like"
                f" records[0], got {nbytes} ({8 * nbytes} bits)"
            )
        elif present != self.present:
            raise InvalidArgument(
                f"{where}: expected the columns of records[0] {self.present}, got {present}"
            )
        if chunk.ids is not None:
            earlier = np.flatnonzero(self.seen.lines_of(chunk.ids))
            if earlier.size:
                i = int(earlier[0])
                raise InvalidArgument(
                    f"{where}.ids[{i}]: expected ids unique over all chunks, got id"
                    f" {chunk.ids[i]} again"
                )
            self.seen.add(chunk.ids, np.ones(len(chunk.ids), dtype=np.int64))
        hexes = cast(list[str], to_hex(chunk.codes))  # a list for a 2-D array
        if self.format == "hex":
            self.text.write("".join(h + "\n" for h in hexes))
        else:
            self.csv.writerows(zip(*self._columns(where, chunk, hexes), strict=True))
        self.rows += len(hexes)

    def finish(self) -> None:
        """Write the header of a file without any chunk."""
        if self.nbytes is None:
            self._header()

    def _header(self) -> None:
        if self.format == "hex":
            return
        names = {"ids": "id", "keys": "key", "labels": "labels", "sources": "source"}
        names["qualities"] = "quality"
        header = ["hash", *(names[name] for name in self.present if name in names)]
        self.csv.writerow(header + self.extra_names)

    def _columns(self, where: str, chunk: HashRecords, hexes: list[str]) -> list[list[Any]]:
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
            unknown = {key for extra in chunk.extras for key in extra} - set(self.extra_names)
            if unknown:
                raise InvalidArgument(
                    f"{where}.extras: expected the extras names of records[0]"
                    f" {self.extra_names}, got also {sorted(unknown)}"
                )
            for name in self.extra_names:
                columns.append([extra.get(name, "") for extra in chunk.extras])
        return columns


def _extra_names(extras: list[dict[str, str]]) -> list[str]:
    """The extras' column names, in order of first use; checked to read back as extras."""
    names = list(dict.fromkeys(key for extra in extras for key in extra))
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument(f"extras: expected non-empty str column names, got {name!r}")
        if _normalise(name) in _FIELD_OF:
            raise InvalidArgument(
                f"extras: expected names other than the columns' ({name!r} would be read as"
                f" the {_FIELD_OF[_normalise(name)]} column)"
            )
    return names


def _formatted_labels(where: str, labels: list[tuple[str, ...]]) -> list[str]:
    try:
        return list(map(_format_labels, labels))
    except InvalidArgument:
        for i, row in enumerate(labels):
            try:
                _format_labels(row)
            except InvalidArgument as error:
                raise InvalidArgument(f"{where}.labels[{i}]: {error}") from None
        raise


@functools.lru_cache(maxsize=65_536)
def _format_labels(labels: tuple[str, ...]) -> str:
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


def _new_file_mode(path: str) -> int:
    """Permissions for ``path``: those of the file it replaces, else the umask default."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def _atomic_file(path: str) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` (fsync, rename) only once the block succeeds."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as error:  # name the file asked for, not the temporary one
        raise OSError(error.errno, error.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
