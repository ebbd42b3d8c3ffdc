"""The limits of the reader, so that reading costs time and memory in proportion to the
input, whatever it holds: the longest line, the most columns, and the weight (characters
and fields) at which a parse batch or a chunk ends early."""

from __future__ import annotations

from typing import Protocol

from hashmatch.errors import HashFormatError

__all__ = [
    "BATCH_WEIGHT",
    "CHUNK_WEIGHT",
    "FIELD_WEIGHT",
    "MAX_COLUMNS",
    "MAX_LINE_CHARS",
    "Limited",
    "check_length",
    "shown",
]

MAX_LINE_CHARS = 1 << 20
"""Default of ``max_line_chars``: the longest line (CSV/TSV: row) read, in characters."""
MAX_COLUMNS = 1024
"""Default of ``max_columns``: the most columns a CSV/TSV file may have."""
FIELD_WEIGHT = 64
"""What one CSV/TSV field weighs beside the characters of its row (about the bytes of its
objects in memory: a string, a list slot, a dict entry)."""
BATCH_WEIGHT = 1 << 26
"""A parse batch ends early at this weight (characters read, plus :data:`FIELD_WEIGHT` a
field): whatever its rows, a batch holds some tens of MiB."""
CHUNK_WEIGHT = 1 << 30
"""A chunk ends early (before ``chunk_size`` entries) at this weight of the rows read for it:
a gzip file that expands to many long rows is streamed in chunks of bounded memory."""


class Limited(Protocol):
    """A reader with a line limit (:class:`~hashmatch.formats.HashReader`, the vPDQ reader)."""

    @property
    def path(self) -> str: ...

    @property
    def max_line_chars(self) -> int: ...


def check_length(reader: Limited, size: int, last: str, line: int) -> None:
    """Raise if ``size`` characters (a line, or the lines of a CSV/TSV row from ``line`` on,
    ending with the line ``last``) are more than ``max_line_chars``, the final line end not
    counted; called when ``size`` is more than that, so rarely."""
    end = 2 if last.endswith("\r\n") else 1 if last.endswith(("\n", "\r")) else 0
    if size - end > reader.max_line_chars:
        raise HashFormatError(
            f"{reader.path}:{line}: expected lines of at most {reader.max_line_chars:,}"
            " characters, got a longer one; pass max_line_chars= to read longer lines"
        )


def shown(text: str, limit: int = 80) -> str:
    """``repr(text)``, shortened to about ``limit`` characters for an error message."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"
