"""Writing hash-list files: :func:`write_hashes`, atomically (through
:func:`hashmatch.files.atomic_write`), in the format the file name says."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
from collections.abc import Iterable, Iterator
from typing import IO, cast

import numpy as np

from hashmatch.codes import to_hex
from hashmatch.errors import HashTypeMismatch, InvalidArgument, InvalidType
from hashmatch.files import atomic_write, check_path

from . import delimited, hex
from .names import EXTENSIONS, FIELD_OF, format_of_name, normalise
from .reader import check_format
from .records import HashRecords, SeenIds

__all__ = ["output", "write_format", "write_hashes"]

WRITE_FORMATS = ("csv", "tsv", "hex", "pytx_csv", "auto")


def write_hashes(
    path: str | os.PathLike[str],
    records: Iterable[HashRecords] | HashRecords,
    *,
    format: str = "auto",
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
    format : {"auto", "csv", "tsv", "hex", "pytx_csv"}, optional
        ``"auto"`` follows the extension: ``.csv``; ``.tsv`` or ``.tab``; ``.txt`` or ``.hex``
        for hex; each optionally followed by ``.gz``; CSV for any other name. CSV/TSV: a
        header ``hash`` then, when present, ``id, key, labels, source, quality`` and the
        extras' names; CRLF line ends (the csv module's default, RFC 4180). Hex: one
        lowercase hash a line (LF), nothing else. ``pytx_csv``: python-threatexchange's
        ``dataset --csv`` columns (``signal_type, signal_str, collab, category, tags``; see
        :class:`~hashmatch.formats.delimited.PytxWriter`). A format the extension
        contradicts (CSV into ``list.tsv``) is refused.

    Returns
    -------
    int
        The number of entries written.

    Raises
    ------
    InvalidType
        If a chunk is not a HashRecords.
    InvalidArgument
        On a `format` the extension of `path` contradicts, chunks with other columns than
        the first, a duplicate id across chunks, a label that cannot be written (empty, with
        surrounding whitespace or holding ``;``), or an extras name that is empty or one of
        :data:`COLUMN_ALIASES`.
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
    path = check_path(path)
    format = write_format(path, format)
    chunks: Iterable[HashRecords] = (records,) if isinstance(records, HashRecords) else records
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Iterable):
        raise InvalidType(
            f"records: expected HashRecords or an iterable of them, got {type(records).__name__}"
        )
    with output(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            writer = _RowWriter(text, format)
            for index, chunk in enumerate(chunks):
                writer.write(index, chunk)
            writer.finish()
        finally:
            text.detach()  # flushes; the file stays open for the fsync
    return writer.rows


@contextlib.contextmanager
def output(path: str) -> Iterator[IO[bytes]]:
    """The bytes of a file written through :func:`~hashmatch.files.atomic_write`,
    gzip-compressed (reproducibly: no name, no time) when ``path`` ends in ``.gz``."""
    with atomic_write(path, streams=True) as raw:
        if not path.lower().endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as zipped:
            yield cast(IO[bytes], zipped)


def write_format(path: str, format: object) -> str:
    """The format to write ``path`` in: ``format``, or with ``"auto"`` the one its extension
    says (CSV when it says none); a format the extension contradicts is refused."""
    format = check_format(format, WRITE_FORMATS)
    named = format_of_name(path)
    if format == "auto":
        return named or "csv"
    if named is not None and named != format and (named, format) != ("csv", "pytx_csv"):
        extensions = "/".join(e for e, f in EXTENSIONS.items() if f == named)
        raise InvalidArgument(
            f"format: {format!r} contradicts the file name {os.path.basename(path)!r}, whose"
            f" extension ({extensions}) says {named!r}; pass format='auto' (or {named!r}), or"
            f" name the file for {format!r}"
        )
    return format


class _RowWriter:
    """Writes chunks as rows; the first chunk fixes the width and the columns."""

    def __init__(self, text: IO[str], format: str) -> None:
        self.text = text
        self.format = format
        self.rows = 0
        self.nbytes: int | None = None
        self.present: tuple[str, ...] = ()
        self.extra_names: list[str] = []
        self.seen = SeenIds()
        self.table: delimited.Writer | delimited.PytxWriter | None = None
        if format == "pytx_csv":
            self.table = delimited.PytxWriter(text)
        elif format != "hex":
            self.table = delimited.Writer(text, format)

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
        if self.table is None:
            hex.write(self.text, hexes)
        else:
            self.table.rows(where, chunk, hexes, self.extra_names)
        self.rows += len(hexes)

    def finish(self) -> None:
        """Write the header of a file without any chunk."""
        if self.nbytes is None:
            self._header()

    def _header(self) -> None:
        if self.table is not None:
            self.table.header(self.present, self.extra_names)


def _extra_names(extras: list[dict[str, str]]) -> list[str]:
    """The extras' column names, in order of first use; checked to read back as extras."""
    names = list(dict.fromkeys(key for extra in extras for key in extra))
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument(f"extras: expected non-empty str column names, got {name!r}")
        if normalise(name) in FIELD_OF:
            raise InvalidArgument(
                f"extras: expected names other than the columns' ({name!r} would be read as"
                f" the {FIELD_OF[normalise(name)]} column)"
            )
    return names
