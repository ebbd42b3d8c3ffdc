"""Exceptions raised by hashmatch.

Every exception hashmatch raises on purpose derives from :class:`HashmatchError`,
and also from the builtin that fits it (``ValueError`` or ``TypeError``), so
callers can catch either the family or the familiar builtin::

    try:
        index.search(queries, max_distance=31)
    except hashmatch.HashTypeMismatch:   # also a TypeError and a ValueError
        ...

Messages name the argument, what was expected and what was received.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChecksumError",
    "EntryNotFound",
    "HashFormatError",
    "HashTypeMismatch",
    "HashmatchError",
    "IndexFormatError",
    "IntegrityError",
    "InvalidArgument",
    "InvalidType",
    "MediaError",
    "PartitionUnavailable",
]


class HashmatchError(Exception):
    """Base class of every exception hashmatch raises on purpose."""


class InvalidArgument(HashmatchError, ValueError):
    """A parameter has the right type but a bad value.

    Examples: ``k < 1``, a negative radius, negative or duplicate ids, a bit
    width that is not a multiple of 8.
    """


class InvalidType(HashmatchError, TypeError):
    """A parameter has the wrong Python type or numpy dtype."""


class HashFormatError(InvalidArgument):
    """A hash given as text or bytes cannot be parsed.

    Examples: a hex string of the wrong length, a character outside
    ``[0-9a-fA-F]``, hashes of different widths in one batch.
    """


class HashTypeMismatch(HashmatchError, TypeError, ValueError):
    """Well-formed hashes of another width than the one expected.

    For example 64-bit pHash codes given to a 256-bit PDQ index. It is both a
    ``TypeError`` (another kind of hash) and a ``ValueError`` (wrong width).
    """


class IndexFormatError(HashmatchError, ValueError):
    """A saved index file is truncated, foreign, corrupt or of an unknown version."""


class ChecksumError(IndexFormatError):
    """A saved index file fails its checksum: some bytes were changed."""


class IntegrityError(IndexFormatError):
    """A file loaded with a ``key`` is not signed, or not with that key, or was changed after
    it was signed (its keyed digest does not match). The message never shows the key or a
    digest."""


class MediaError(InvalidArgument):
    """A media source cannot be decoded or hashed.

    Examples: an empty file, a file that is not an image (or not a video), a truncated JPEG,
    an image over Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``), an image
    too small to hash. A missing or unreadable file raises the usual ``OSError``
    (``FileNotFoundError``, ``PermissionError``) instead.

    ``reason`` is why, without the argument and source the message starts with (what a batch
    lists beside each source that failed).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


class EntryNotFound(HashmatchError, KeyError):
    """No entry of a hash list has this id or key."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class PartitionUnavailable(HashmatchError, RuntimeError):
    """No replica of a partition of a sharded list answered a call
    (:class:`hashmatch.distributed.ShardedMatcher`): each died, failed or timed out. The call
    returns nothing rather than the matches of the other partitions.

    ``list_name``, ``partition`` and ``generation`` name the partition.
    """

    def __init__(
        self, message: str, list_name: str = "", partition: int = -1, generation: int = -1
    ) -> None:
        super().__init__(message)
        self.list_name = list_name
        self.partition = partition
        self.generation = generation

    def __reduce__(self) -> tuple[Any, ...]:
        # Ray (and multiprocessing) pickle exceptions: keep the attributes, not only the text
        message = self.args[0] if self.args else ""
        return (type(self), (message, self.list_name, self.partition, self.generation))
