"""Files: the one atomic writer and the one input opener every other module uses.

- :func:`atomic_write` replaces a file only once its new contents are complete and on disk
  (temporary file in the same directory, fsync, rename, fsync of the directory): a crash, an
  error or Ctrl-C leaves the old file or the new one, never a torn one. The new file keeps the
  permissions of the file it replaces, or gets the usual ``0o666 & ~umask`` (not the 0600 of a
  bare temporary file, which would hide a saved list from a matcher running as another user).
  A writer killed outright (SIGKILL, power loss) cannot remove its temporary file: the next
  write of the same target removes it (see :func:`atomic_write`).
- :func:`open_input` opens a file for reading: a path or ``-`` (standard input), pipes and
  FIFOs included, gzip recognised by its content, and a hashmatch container refused with a
  pointer to :func:`hashmatch.load` instead of being parsed as text.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, cast

from hashmatch.errors import HashFormatError, InvalidArgument, InvalidType

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX (Windows): no stale temporaries removed
    fcntl = None  # type: ignore[assignment]

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
def atomic_write(path: str | os.PathLike[str], *, streams: bool = False) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` once the ``with`` block succeeds.

    The contents go to a temporary file ``.<name>.hashmatch-<random>.tmp`` beside ``path``,
    which is flushed, fsynced and renamed over ``path`` (then the directory is fsynced).
    Errors name ``path`` (never the temporary file); if the block raises, ``path`` is left as
    it was and the temporary file is removed. A symbolic link is followed: the file it points
    to is replaced, the link stays.

    A ``path`` that exists and is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO,
    a shell's ``>(...)``) is never replaced: with ``streams=True`` (text outputs) the
    contents are written straight into it, not atomically; otherwise (seekable containers) it
    is refused with :class:`~hashmatch.InvalidArgument`. A directory is always refused.

    Stale temporary files: a writer killed outright (SIGKILL, OOM killer, power loss) leaves
    its temporary file behind, as big as what it had written. So the writer holds an exclusive
    ``flock`` on its temporary file from creating it until it is renamed, and every write
    first removes the ``.<name>.<random>.tmp`` files of the same target that it can lock
    without waiting: the lock of a dead writer is gone with its process, while a live
    writer's (in this process or another) is held, so its file is left alone. Only regular
    files owned by this user are considered; a candidate is unlinked while locked and only if
    its name still refers to the file locked. A writer that finds its own new file removed
    before it could lock it starts again with a new one. Where ``fcntl`` is missing (Windows)
    nothing is locked and nothing is removed; on filesystems without ``flock`` (some network
    filesystems) the removal is skipped. Writers of other programs, or of hashmatch versions
    before this scheme, hold no lock: do not let them write the same target concurrently.

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
    given = check_path(path)
    kind = _existing_kind(given)
    if kind == "directory":
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), given)
    if kind is not None:  # a device, FIFO or socket: write into it, never replace it
        if not streams:
            raise InvalidArgument(
                f"path: {given} is a {kind}, not a regular file: save to a file path"
            )
        with open(given, "wb") as stream:
            yield stream
        return
    target = os.path.realpath(given)  # through symbolic links: replace what they point to
    directory, name = os.path.split(target)
    fd, tmp = _locked_temporary(directory, name, given)
    file = os.fdopen(fd, "wb")  # closing it releases the lock: only once it is renamed
    try:
        _remove_stale_temporaries(directory, name, tmp)
        yield file
        file.flush()
        os.fsync(file.fileno())
        os.chmod(tmp, new_file_mode(target))
        if fcntl is None:  # nothing locked (Windows, which cannot rename an open file)
            file.close()
        try:
            os.replace(tmp, target)
        except OSError as error:  # name what the caller asked for, not the temporary file
            if error.filename is not None:
                error.filename, error.filename2 = given, None
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        file.close()
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


_TEMPORARY_TAG = "hashmatch-"


def _temporary_name(name: str) -> re.Pattern[str]:
    """The names :func:`tempfile.mkstemp` gives hashmatch's temporary files of target
    ``name`` (8 random characters after a tag): a user's ``.name.backup.tmp`` never matches,
    nor another target's temporaries."""
    return re.compile(rf"\.{re.escape(name)}\.{_TEMPORARY_TAG}[a-z0-9_]{{8}}\.tmp")


def _existing_kind(path: str) -> str | None:
    """What ``path`` is when it exists and is not a regular file (symbolic links followed)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError:  # e.g. a dangling /dev/fd entry: let the write itself report it
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "directory"
    return {
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
        stat.S_IFIFO: "FIFO",
        stat.S_IFSOCK: "socket",
    }.get(stat.S_IFMT(mode), "special file")


def _locked_temporary(directory: str, name: str, target: str) -> tuple[int, str]:
    """A new temporary file for ``target``, locked (where ``flock`` works), still in place."""
    while True:
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{name}.{_TEMPORARY_TAG}", suffix=".tmp", dir=directory
            )
        except OSError as error:  # e.g. a missing directory: name what the caller asked for
            raise type(error)(error.errno, error.strerror, target) from None
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return fd, tmp
        except BlockingIOError:  # another writer's sweep has it, and is removing it
            pass
        except FileNotFoundError:  # another writer's sweep removed it before we locked it
            pass
        except OSError:  # no flock here: write unlocked (and remove nothing, see below)
            return fd, tmp
        os.close(fd)


def _remove_stale_temporaries(directory: str, name: str, own: str) -> None:
    """Remove the temporary files of target ``name`` whose writers are gone (unlocked)."""
    if fcntl is None:
        return
    pattern = _temporary_name(name)
    try:
        with os.scandir(directory) as entries:
            candidates = [
                e.path
                for e in entries
                if pattern.fullmatch(e.name) and e.path != own and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for candidate in candidates:
        try:
            fd = os.open(candidate, flags)
        except OSError:  # gone already, or not ours to read
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live writer: raises
            if os.path.samestat(info, os.stat(candidate, follow_symlinks=False)):
                os.unlink(candidate)  # while locked: no writer can be using it
        except OSError:  # locked (a live writer), renamed or removed meanwhile, or no flock
            continue
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """UTF-8 text (``newline=""``, as :mod:`csv` wants) written through :func:`atomic_write`;
    ``"-"`` writes to standard output instead (not atomic, flushed at the end)."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_write(path, streams=True) as raw:
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
        if text == "-":  # the descriptor itself (a socket cannot be reopened by path)
            raw = stack.enter_context(os.fdopen(os.dup(0), "rb"))
        else:
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
