"""Files: the one atomic writer and the one input opener every other module uses.

- :func:`atomic_write` replaces a file only once its new contents are complete and on disk
  (temporary file in the same directory, fsync, rename, fsync of the directory): a crash, an
  error or Ctrl-C leaves the old file or the new one, never a torn one. The new file keeps the
  permissions of the file it replaces, or gets the usual ``0o666 & ~umask`` (not the 0600 of a
  bare temporary file, which would hide a saved list from a matcher running as another user).
- :func:`open_input` opens a file for reading: a path or ``-`` (standard input), pipes and
  FIFOs included, gzip recognised by its content, and a hashmatch container refused with a
  pointer to :func:`hashmatch.load` instead of being parsed as text.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, cast

from hashmatch.errors import HashFormatError, InvalidType

__all__ = [
    "CONTAINER_MAGIC",
    "atomic_text",
    "atomic_write",
    "check_path",
    "new_file_mode",
    "open_input",
]

CONTAINER_MAGIC = b"HASHMTCH"
"""First bytes of every hashmatch container file (see :mod:`hashmatch.io`)."""
_GZIP_MAGIC = b"\x1f\x8b"


def check_path(path: object, name: str = "path") -> str:
    """``path`` as a str: a str or an ``os.PathLike`` of str."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidType(f"{name}: expected a str or path-like, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidType(f"{name}: expected a str path, got {type(text).__name__}")
    return text


def new_file_mode(path: str) -> int:
    """Permissions for a file written at ``path``: those of the file it replaces, else the
    process's default for new files (``0o666 & ~umask``)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` once the ``with`` block succeeds.

    Errors name ``path`` (never the temporary file); if the block raises, ``path`` is left
    as it was and the temporary file is removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from hashmatch.files import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "out.bin")
    >>> with atomic_write(path) as f:
    ...     _ = f.write(b"complete")
    >>> open(path, "rb").read()
    b'complete'
    """
    target = check_path(path)
    directory, name = os.path.split(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as error:  # e.g. a missing directory: name what the caller asked for
        raise type(error)(error.errno, error.strerror, target) from None
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, new_file_mode(target))
        os.replace(tmp, target)
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


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """UTF-8 text (``newline=""``, as :mod:`csv` wants) written through :func:`atomic_write`;
    ``"-"`` writes to standard output instead (not atomic, flushed at the end)."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_write(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()  # the atomic writer fsyncs and closes the binary file


class Input:
    """An opened input file: the decoded byte stream and how far the raw file has been read.

    Attributes
    ----------
    path : str
        The path given (``"-"`` or ``/dev/stdin`` for standard input).
    stream : binary file
        The contents (gunzipped when the file is gzip).
    size : int or None
        Bytes in the raw file, ``None`` for a pipe (progress then counts rows only).
    """

    def __init__(self, path: str, raw: IO[bytes], stream: IO[bytes], size: int | None) -> None:
        self.path = path
        self._raw = raw
        self.stream = stream
        self.size = size

    def position(self) -> int:
        """Bytes of the raw file read so far (0 for a pipe)."""
        return self._raw.tell() if self.size is not None else 0


@contextlib.contextmanager
def open_input(path: str | os.PathLike[str], *, name: str = "path") -> Iterator[Input]:
    """Open a hash file for reading: a path, or ``"-"`` for standard input.

    gzip is recognised by its first bytes, whatever the file is called; a hashmatch container
    (``.hm``: saved indexes and lists) raises :class:`~hashmatch.HashFormatError` saying to
    open it with :func:`hashmatch.load` or :meth:`hashmatch.HashList.load`.
    """
    text = check_path(path, name)
    source = "/dev/stdin" if text == "-" else text
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(source, "rb"))  # closed by the stack
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        size = os.fstat(buffered.fileno()).st_size if buffered.seekable() else None
        head = buffered.peek(len(CONTAINER_MAGIC))[: len(CONTAINER_MAGIC)]
        if head == CONTAINER_MAGIC:
            raise HashFormatError(
                f"{text}: this is a hashmatch file (a saved index or hash list), not a text "
                "hash list: open it with hashmatch.load() or HashList.load()"
            )
        stream: IO[bytes] = buffered
        if head[:2] == _GZIP_MAGIC:
            stream = cast(IO[bytes], stack.enter_context(gzip.GzipFile(fileobj=buffered)))
        yield Input(text, buffered, stream, size)
