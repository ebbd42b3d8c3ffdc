"""The streaming reader core: open (through :func:`hashmatch.files.open_input`), tell the
format, hand the lines to the dialect, and check every row strictly, in batches."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import itertools
import os
import re
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from hashmatch._validation import MAX_BYTES, as_codes, check_bits, hex_hint
from hashmatch.errors import (
    HashFormatError,
    HashmatchError,
    HashTypeMismatch,
    InvalidArgument,
    InvalidType,
)
from hashmatch.files import check_path, open_input
from hashmatch.progress import bar

from . import delimited, hex, threatexchange
from .limits import CHUNK_WEIGHT, MAX_COLUMNS, MAX_LINE_CHARS, check_length, shown
from .names import NOT_HEX, format_of_name, parse_labels
from .records import HashRecords, SeenIds, joined

__all__ = ["HashReader", "check_format", "check_positive", "read_hashes"]

READ_FORMATS = ("auto", "hex", "csv", "tsv", "pytx_csv", "pytx_local", "te_state")
DIALECTS: dict[str, Callable[[HashReader, Iterator[str]], Iterator[HashRecords | None]]] = {
    "hex": hex.batches,
    "csv": delimited.batches,
    "tsv": delimited.batches,
    "pytx_csv": delimited.batches,  # CSV, the header of `threatexchange dataset --csv`
    "pytx_local": hex.batches,  # `signal_type hash` lines or bare hashes
    "te_state": delimited.batches,  # CSV without header, columns by position
}
"""The parser of each format: it yields the records of each batch of rows (None: none kept)."""

_PARSE_ROWS = 32_768  # rows parsed at a time: small batches stay in the CPU caches
_ID = re.compile(r"[0-9]{1,19}")  # [0-9] is ASCII only, unlike \d
_QUALITY = re.compile(r"[0-9]{0,3}")
_WORD = re.compile(r"[^\W\d_]")  # a letter: text, not a malformed number
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)

Codes = npt.NDArray[np.uint8]
Int64s = npt.NDArray[np.int64]


def read_hashes(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    bits: int | None = None,
    chunk_size: int = 1_000_000,
    skip_invalid: bool = False,
    progress: bool = False,
    max_line_chars: int = MAX_LINE_CHARS,
    max_columns: int = MAX_COLUMNS,
) -> HashReader:
    """Stream the entries of a hash-list file, in chunks.

    Parameters
    ----------
    path : str or path-like
        A plain-hex, CSV or TSV file, optionally gzip-compressed; ``"-"`` reads standard
        input. A hashmatch file (``.hm``) is refused. See the module documentation
        for the columns, header aliases and label separators read.
    format : {"auto", "hex", "csv", "tsv"}, optional
        ``"auto"`` goes by the extension (``.csv``, ``.tsv``/``.tab``, ``.hex``, with or
        without ``.gz``), else (``.txt`` and any other name) by the first data line: a tab
        means TSV, a comma CSV, else hex.
    bits : int, optional
        Width every hash must have (256 for PDQ, 64 for pHash). By default it is that of the
        first well-formed hash, and then every hash must have it.
    chunk_size : int, optional
        At most this many entries per chunk. Memory is bounded by it, whatever the file size,
        but for the duplicate-id check: 16 bytes per id read. A chunk also ends early once
        its rows hold about a GiB of text and fields (:data:`CHUNK_WEIGHT`), so that a small
        gzip file that expands to huge rows is read in chunks of bounded size.
    skip_invalid : bool, optional
        Skip bad rows instead of raising, and list them in :attr:`HashReader.skipped`.
    progress : bool, optional
        Show a progress bar (bytes read) on stderr.
    max_line_chars : int, optional
        The longest line read, in characters (bytes, for ASCII), line end excluded; a CSV/TSV
        row whose quoted fields hold line breaks counts all its lines. Default 1 MiB.
    max_columns : int, optional
        The most columns (fields of the header, or of the first row) of a CSV/TSV file.
        Default 1,024.

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
        well-formed hash (e.g. an empty file), and on a line longer than `max_line_chars` or
        a header or first row of more than `max_columns` fields (even with `skip_invalid`).
        A file without rows yields nothing when `bits` is given.
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
        max_line_chars=max_line_chars,
        max_columns=max_columns,
    )


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

    The arguments are those of :func:`read_hashes`, and three for front ends such as the
    command line: ``text_ids`` reads an ``id`` column as text, into ``keys`` (in place of a
    key column); ``bits_option`` is how the error for a file without hashes names the width
    option (``None``: it does not suggest one); ``bits_from`` says where a given width comes
    from in the errors of hashes of another width (default ``"from bits=N"``).
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
        text_ids: bool = False,
        bits_option: str | None = "bits=",
        bits_from: str | None = None,
        max_line_chars: int = MAX_LINE_CHARS,
        max_columns: int = MAX_COLUMNS,
    ) -> None:
        self.path = check_path(path)
        self.format = check_format(format, READ_FORMATS)
        self._nbytes = None if bits is None else check_bits(bits) // 8
        self._width_from = f", {bits_from or f'from bits={bits}'}" if bits is not None else ""
        self.text_ids = bool(text_ids)
        self.bits_option = bits_option
        self.chunk_size = check_positive("chunk_size", chunk_size)
        self.max_line_chars = check_positive("max_line_chars", max_line_chars)
        self.max_columns = check_positive("max_columns", max_columns)
        self._weight = 0  # of the rows read for the chunk being built (set by the dialects)
        self._batch_rows = min(_PARSE_ROWS, self.chunk_size)  # rows the next batch may have
        self.skip_invalid = bool(skip_invalid)
        self.progress = bool(progress)
        self.columns: dict[str, str] = {}
        self.skipped: list[tuple[int, str]] = []
        self.rows = 0
        self._seen = SeenIds()
        if self.path != "-":
            os.stat(self.path)  # a missing file fails here, not at next()
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
            source = stack.enter_context(open_input(self.path))
            text = stack.enter_context(
                io.TextIOWrapper(source.stream, encoding="utf-8-sig", errors="replace", newline="")
            )
            progress = stack.enter_context(
                bar(source.size, os.path.basename(self.path), "B", enabled=self.progress)
            )
            # lines of at most max_line_chars + 2 characters (a line end of 2 is not counted):
            # a longer one is read as pieces, and the first is refused by check_length
            lines = iter(functools.partial(text.readline, self.max_line_chars + 2), "")
            try:
                head = _head(self, lines)
                if self.format == "auto":
                    self.format = _sniff(self.path, head[-1] if head else "")
                batches = DIALECTS[self.format](self, itertools.chain(head, lines))
                done = 0
                parts: list[HashRecords] = []
                count = 0
                for records in batches:
                    position = source.position()
                    progress.update(position - done)
                    done = position
                    if records is not None:
                        parts.append(records)
                        count += len(records)
                    if count == self.chunk_size or (parts and self._weight >= CHUNK_WEIGHT):
                        yield self._chunk(parts)
                        parts, count = [], 0
                        self._weight = 0
                    self._batch_rows = min(_PARSE_ROWS, self.chunk_size - count)
                if parts:
                    yield self._chunk(parts)
            except _GZIP_ERRORS as error:
                raise HashFormatError(f"{self.path}: corrupt gzip data: {error}") from None
        if self._nbytes is None:
            what = "every row is invalid" if self.skipped else "the file has no data rows"
            hint = f"; pass {self.bits_option} to read a file that may be empty"
            raise HashFormatError(
                f"{self.path}: expected at least one hash to take the hash width from, but"
                f" {what}{hint if self.bits_option else ''}"
            )

    def _chunk(self, parts: list[HashRecords]) -> HashRecords:
        """One chunk from the records of parse batches."""
        records = parts[0] if len(parts) == 1 else HashRecords._unchecked(joined(parts))
        self.rows += len(records)
        return records

    # -- parsing a batch (called by the dialects)

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
            out["labels"] = list(map(parse_labels, columns["labels"]))
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
        bad = NOT_HEX.search(text)
        if bad:
            hint = hex_hint(text)
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
        longest = max(map(len, texts), default=0)  # int() of many digits is slow, and fails
        if (
            (joined.isdigit() or not joined)
            and joined.isascii()
            and (quality or not empty)
            and longest <= (3 if quality else 19)
        ):
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
                        f" (or an empty field), got {shown(text)}"
                    ),
                )
            else:
                hint = "; a text id is a key: name its column 'key'" if _WORD.search(text) else ""
                errors.setdefault(
                    i,
                    InvalidArgument(
                        f"{self.path}:{starts[i]}: expected an id: an integer from 0 to"
                        f" 2**63 - 1, got {shown(text)}{hint}"
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


def _head(reader: HashReader, lines: Iterator[str]) -> list[str]:
    """The lines up to and including the first data line (not blank, not a comment)."""
    head: list[str] = []
    for line in lines:
        head.append(line)
        if len(line) > reader.max_line_chars:
            check_length(reader, len(line), line, len(head))
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
    return head


def check_positive(name: str, value: object) -> int:
    """``value``, an integer >= 1 (a limit or chunk size)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"{name}: expected an integer >= 1, got {value!r}")
    if value < 1:
        raise InvalidArgument(f"{name}: expected an integer >= 1, got {value}")
    return int(value)


def _sniff(path: str, first: str) -> str:
    """The format of a file: a python-threatexchange state file by its name
    (``simple.<type>.te``), else by extension (``.csv``, ``.tsv``, ``.tab``, ``.hex``; a
    ``.txt`` file may be any of them), else by its first data line."""
    if threatexchange.is_state_file(path):
        return "te_state"
    by_extension = format_of_name(path)
    if by_extension and not path.lower().removesuffix(".gz").endswith(".txt"):
        return by_extension
    if "\t" in first:
        return "tsv"
    return "csv" if "," in first else "hex"


def check_format(format: object, allowed: tuple[str, ...], name: str = "format") -> str:
    """``format``, one of ``allowed`` (the argument called ``name``)."""
    if not isinstance(format, str):
        raise InvalidType(f"{name}: expected a str, got {type(format).__name__}")
    if format not in allowed:
        raise InvalidArgument(
            f"{name}: expected one of {', '.join(map(repr, allowed))}, got {format!r}"
        )
    return format
