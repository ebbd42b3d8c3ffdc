"""Saving and loading indexes: a versioned, checksummed container, written atomically, that
can be memory-mapped so a 10M-hash index opens in a fraction of a second.

Container (version 1), all integers little-endian::

    offset 0   magic      8 bytes   b"HASHMTCH"
           8   version    u32       format version (1)
          12   count      u32       number of sections (at most 64)
          16   table      count x 48 bytes: name (24 bytes ASCII, NUL-padded), offset u64,
                          length u64, crc32 u32, reserved u32 (0)
           .   header crc u32       CRC-32 of bytes [0, here)
    sections, each starting on a 64-byte boundary (so they can be memory-mapped), in any order

Signed files (``save(..., key=...)``) are version 2: a version-1 container, byte for byte
(but for the version and so the header checksum), followed by a 48-byte trailer::

           .   algorithm  16 bytes  b"hmac-sha256", NUL-padded
           .   digest     32 bytes  HMAC-SHA256 (key: the caller's) of every byte before it

So the digest covers the header, the table, every section, all padding and the algorithm name;
anyone with the key can check it with standard tools (``head -c -32 file | openssl dgst
-sha256 -mac HMAC -macopt hexkey:...``). Files saved without a key stay version 1, unchanged.
The digest is a trailer rather than a section because the section table holds each section's
CRC-32 under the header checksum, which a digest covering the table would have to include;
and a new version, rather than a flag, because no field of version 1 is free to mark it:
hashmatch versions without signing refuse a version-2 file with "written by a newer hashmatch;
upgrade to read it" (they would have refused a new section, a non-zero reserved field or
trailing bytes as damage). :func:`load` with ``key`` checks the trailer's digest (with
:func:`hmac.compare_digest`) right after the header, before any section is used, and refuses a
version-1 file as not signed; without ``key`` it reads a signed file as any other, checking the
trailer's algorithm name but not its digest. The check costs one pass over the file (about
0.65 s per GB; 1M PDQ hashes in an MIHIndex are 98 MiB: 50 ms), even with ``mmap=True``.

Every file has a ``meta`` section: UTF-8 JSON whose ``kind`` says what the other sections
hold. Indexes store their search structures as they are in memory, so loading needs no
rebuild; arrays are little-endian:

``FlatIndex``
    meta ``{"kind": "FlatIndex", "bits": b, "layout": {"version": 1, "n": n, "next_id": i}}``
    (``next_id``: where default ids continue, above any removed id); sections
    ``ids`` (n int64) and ``tiles`` (uint64: the codes in tiles of 8, interleaved by 64-bit
    word, each code zero-padded to whole words and the last tile zero-filled).
``MIHIndex``
    meta adds ``max_distance``, ``substrings`` (null unless fixed) and ``layout.tables``, one
    ``[lo, len, shift]`` per substring table; sections ``ids`` (n int64), ``rows`` (uint64:
    n codes zero-padded to whole words), and the tables' arrays concatenated in table order:
    ``starts`` (uint32: each table's 2^(len - shift) + 1 bucket starts), ``residual`` (uint8,
    n per table) and ``slot`` (uint32, n per table: row numbers). A saved MIHIndex holds only
    live hashes, all in the tables: :func:`save` compacts it first (see
    :meth:`MIHIndex.compact`).
``FaissHNSW``, ``FaissIVF``, ``FaissMultiHash``
    meta ``{"kind": ..., "bits": b, "params": {...}}`` (the backend's
    :attr:`~hashmatch.backends.FaissBackend.params`); one section, ``faiss``: the index as
    ``faiss.serialize_index_binary`` writes it. faiss's reader does not check its input, so
    this section's checksum is verified even with ``verify=False``.
``HashList``
    see :mod:`hashmatch._listfile` (registered with :func:`register_kind` when hashmatch is
    imported); it embeds its index's sections under the prefix ``ix.``.

Every backend writes and reads its own kind (``to_sections()`` and ``from_sections(meta,
sections, where)``, :mod:`hashmatch.backends`); the same sections are how indexes pickle.
Files of hashmatch 0.1.0 (meta without ``layout``; sections ``ids`` and ``codes``, n x bits/8
bytes) still load, by adding their hashes to a new index. Other kinds are written by objects
with a ``to_sections()`` (or ``_to_sections()``) method and read by loaders registered with
:func:`register_kind`.

Loading opens only regular files (a device, FIFO or directory raises IndexFormatError naming
the path, without reading it) and checks the magic, version, header checksum, every section's
bounds and the file's size against the header *before* reading or allocating anything sized by
the file (then it reads exactly the file's size), then a signed file's digest when given the
key, then the sections' checksums, then the
structure of the index (sizes, table layout, bucket starts, slots, padding, unique ids) before
any search can touch it: a truncated, corrupted, foreign or hostile file raises
:class:`IndexFormatError` (:class:`ChecksumError` for a checksum mismatch), never a crash or
a partial index. With ``verify=False`` the checksums of big sections are skipped (the
structure is still checked, so a damaged file can give wrong answers but not a crash nor a
read outside the file's sections).

Files are never modified in place: a save writes a temporary file in the same directory,
flushes it to disk and renames it over the target (:func:`hashmatch.files.atomic_write`; the
new file keeps the replaced file's permissions, else gets ``0o666 & ~umask``), so a crash
leaves either the old file or the new one (a killed writer's temporary file is removed by the
next save of the same target), and readers of the old file (including indexes
that memory-map it) are unaffected. Truncating a file in place while it is mapped (not
something hashmatch does) would crash its readers, as with any memory-mapped file.
"""

from __future__ import annotations

import hmac
import inspect
import json
import mmap as _mmap
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from hashmatch._backend import Buffer
from hashmatch._crc32 import crc32_all
from hashmatch.backends import BACKEND_KINDS, Backend, BackendBase, backend_from_sections
from hashmatch.errors import (
    ChecksumError,
    IndexFormatError,
    IntegrityError,
    InvalidArgument,
    InvalidType,
)
from hashmatch.files import atomic_write, check_path
from hashmatch.indexes import LAYOUT_VERSION as LAYOUT_VERSION  # re-exported

__all__ = [
    "FORMAT_VERSION",
    "MIN_KEY_BYTES",
    "SIGNED_FORMAT_VERSION",
    "index_from_sections",
    "index_sections",
    "load",
    "read_container",
    "register_kind",
    "save",
    "write_container",
]

MAGIC = b"HASHMTCH"
FORMAT_VERSION = 1
"""Version of the files saved without a key."""
SIGNED_FORMAT_VERSION = 2
"""Version of the files saved with a key: version 1 followed by a keyed-digest trailer."""
MIN_KEY_BYTES = 16
"""The shortest ``key`` :func:`save` and :func:`load` take."""
MAX_NAME_BYTES = 24
_MAX_SECTIONS = 64
_ENTRY = struct.Struct("<24sQQII")
_PREAMBLE = struct.Struct("<8sII")
_ALIGN = 64
_TRAILER = struct.Struct("<16s32s")  # digest algorithm (ASCII, NUL-padded), digest
_DIGEST = b"hmac-sha256"
_TAG_BYTES = 32
_MAX_HEADER = _PREAMBLE.size + _MAX_SECTIONS * _ENTRY.size + 4
_MAX_META_BYTES = 64 << 20
# With verify=False, sections up to this size are still checksummed (it costs nothing).
_ALWAYS_VERIFIED_BYTES = 1 << 20

Loader = Callable[..., object]
"""Reads one kind: ``loader(meta, sections, where)``, sections without ``meta``; raises
IndexFormatError naming ``where`` (the file) on bad contents. A loader with a ``verify``
keyword is also passed :func:`load`'s ``verify``: whether to cross-check derived structures."""


class _Kind:
    """How :func:`load` reads one kind."""

    def __init__(self, loader: Loader, always_verify: bool = False) -> None:
        self.loader = loader
        self.always_verify = always_verify
        try:  # loaders that take ``verify`` are told whether to cross-check derived data
            self.takes_verify = "verify" in inspect.signature(loader).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
            self.takes_verify = False
        """Check every section's checksum even with ``verify=False`` (for readers that would
        not survive a damaged section, like faiss's)."""


# The index kinds, by name (dispatched on their class). Other kinds (HashList) are registered
# by the package's __init__ with register_kind: load never imports a module named by a file.
_BUILTIN_KINDS: dict[str, _Kind] = {
    **{
        kind: _Kind(backend_from_sections, always_verify=not cls.exact)
        for kind, cls in BACKEND_KINDS.items()
    },
}
_REGISTERED: dict[str, _Kind] = {}


def register_kind(kind: str, loader: Loader) -> None:
    """Make :func:`load` read files whose meta ``kind`` is ``kind`` with ``loader``.

    Parameters
    ----------
    kind : str
        The ``kind`` the object's ``to_sections()`` writes into its meta; not one of
        hashmatch's own kinds (registering a built-in kind's own loader again does nothing).
    loader : callable
        ``loader(meta, sections, where) -> object``: ``meta`` is the decoded JSON, ``sections``
        maps the other sections' names to read-only memoryviews (of the mapped file with
        ``mmap=True``: keep a reference to use them zero-copy), ``where`` names the file for
        error messages. It raises :class:`IndexFormatError` for inconsistent contents.

    Examples
    --------
    >>> import hashmatch.io as hio
    >>> hio.register_kind("Note", lambda meta, sections, where: bytes(sections["text"]))
    """
    builtin = _BUILTIN_KINDS.get(kind)
    if builtin is not None:
        if builtin.loader is loader:
            return
        raise InvalidArgument(f"kind: {kind!r} is built in")
    _REGISTERED[kind] = _Kind(loader)


def index_sections(index: Backend) -> tuple[dict[str, Any], dict[str, Buffer]]:
    """``index.to_sections()``: the meta and sections :func:`save` writes for a backend (an
    MIHIndex is compacted first; see :meth:`hashmatch.FlatIndex.to_sections`).

    Examples
    --------
    >>> import hashmatch as hm, hashmatch.io as hio
    >>> index = hm.FlatIndex(64)
    >>> _ = index.add(["00000000000000ff"])
    >>> meta, sections = hio.index_sections(index)
    >>> meta["layout"], sorted(sections)
    ({'version': 1, 'n': 1, 'next_id': 1}, ['ids', 'tiles'])
    """
    if not isinstance(index, BackendBase):
        raise InvalidType(
            f"index: expected a FlatIndex, MIHIndex or faiss backend, got {type(index).__name__}"
        )
    return index.to_sections()


def index_from_sections(
    meta: Mapping[str, Any], sections: Mapping[str, Buffer], *, where: str
) -> Backend:
    """The backend :func:`index_sections` described, validated in full, zero-copy where
    possible: :func:`hashmatch.backends.backend_from_sections`; raises IndexFormatError.

    Examples
    --------
    >>> import hashmatch as hm, hashmatch.io as hio
    >>> index = hm.MIHIndex(64)
    >>> _ = index.add(hm.datasets.random_codes(2000, 64))
    >>> copy = hio.index_from_sections(*hio.index_sections(index), where="example")
    >>> len(copy), copy.substrings == index.substrings
    (2000, True)
    """
    return backend_from_sections(meta, sections, where)


def save(obj: object, path: str | os.PathLike[str], *, key: bytes | None = None) -> None:
    """Write an index (or an object with ``to_sections()``) to ``path`` atomically.

    Parameters
    ----------
    obj : FlatIndex, MIHIndex, faiss backend or object
        An index (saved with its search structures: see the module docs; an MIHIndex is
        compacted first), or any object with a method ``to_sections() -> (meta, sections)``
        (or ``_to_sections()``): a JSON-ready dict naming its ``kind`` and a dict of named
        buffers, read back by the loader of that kind (:func:`register_kind`).
    path : str or path-like
        Destination; an existing file there is replaced only once the new one is complete
        (temporary file, fsync, rename), so readers of the old file are unaffected. The new
        file keeps the old one's permissions, else gets ``0o666 & ~umask``.
    key : bytes, optional
        A secret of at least 16 bytes (bytes, bytearray or memoryview; a ``str`` is refused:
        encode or hex-decode it yourself, so no one guesses which): the file is signed with
        a keyed digest (HMAC-SHA256) of all its bytes, which :func:`load` with the same key
        checks. Without a key the file has CRC-32 checksums only, which catch damage, not
        tampering. See the module docs.

    Examples
    --------
    >>> import tempfile, os, hashmatch as hm
    >>> index = hm.FlatIndex(64)
    >>> _ = index.add(["00000000000000ff", "ffffffffffffffff"], ids=[7, 9])
    >>> path = os.path.join(tempfile.mkdtemp(), "list.hm")
    >>> hm.save(index, path)
    >>> hm.load(path, mmap=True).search("00000000000000ff", 1).ids.tolist()
    [[7]]
    """
    secret = _check_key(key)
    method = getattr(obj, "to_sections", None)
    if not callable(method):
        method = getattr(obj, "_to_sections", None)
    if not callable(method):
        raise InvalidType(
            f"obj: expected an index (FlatIndex, MIHIndex) or an object with to_sections(), "
            f"got {type(obj).__name__}"
        )
    meta, sections = method()
    what = f"{type(obj).__name__}.{method.__name__}"
    if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str):
        raise InvalidArgument(f"{what}: expected a meta dict with a 'kind' string")
    if "meta" in sections:
        raise InvalidArgument(f"{what}: the section name 'meta' is reserved")
    write_container(
        path, {"meta": json.dumps(meta, sort_keys=True).encode(), **sections}, key=secret
    )


def load(
    path: str | os.PathLike[str],
    *,
    mmap: bool = False,
    verify: bool = True,
    key: bytes | None = None,
) -> Any:
    """Read what :func:`save` wrote: an index, a hash list or a registered kind.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    mmap : bool, default False
        Map the file read-only and search its pages in place (nothing is read up front but
        what checking needs; the pages are shared with other processes mapping the file). The
        index works as usual: its first ``add`` or ``remove`` copies what it changes, and the
        file may be replaced or deleted meanwhile. ``False`` reads the whole file into memory.
    verify : bool, default True
        Check every section's checksum (on every core; about 0.2 s per GB on two), and every
        derived structure against the data it derives from, so a loaded file answers exactly:
        an MIHIndex's tables against its rows (every row listed once in each table, in the
        bucket and with the residual its code gives), a hash list's index against its codes
        and its metadata (UTF-8, JSON). ``False`` skips the checksums of sections over 1 MiB
        and those cross-checks; the structure is still checked in full, so a damaged file
        cannot crash the process or make a search read out of bounds, but it may answer
        wrongly (miss stored hashes, report the wrong entry).
    key : bytes, optional
        The key the file was saved with (see :func:`save`): the file must be signed, and its
        digest is checked (one pass over the whole file, about 0.65 s per GB, even with
        ``mmap=True``) before anything in it is used; a file saved by someone without the key,
        or changed since, is refused. Then every byte is known to be the signer's, so
        ``verify=False`` loses nothing. Without ``key`` a signed file loads like any other
        (its checksums are checked, its digest is not): pass ``key`` wherever the file may
        come from someone else.

    Returns
    -------
    FlatIndex, MIHIndex, faiss backend, HashList or object
        Whatever ``meta["kind"]`` names.

    Raises
    ------
    IndexFormatError
        Not a hashmatch file (or not a regular file), an unsupported version, a truncated
        file, an unknown kind or inconsistent contents.
    ChecksumError
        A section or the header does not match its checksum (the file was corrupted).
    IntegrityError
        With ``key``: the file is not signed, or its digest does not match (it was changed
        after it was signed, or signed with another key).

    Examples
    --------
    >>> import tempfile, os, hashmatch as hm
    >>> path = os.path.join(tempfile.mkdtemp(), "list.hm")
    >>> index = hm.MIHIndex(64)
    >>> _ = index.add(hm.datasets.random_codes(5000, 64))
    >>> hm.save(index, path)
    >>> loaded = hm.load(path, mmap=True)
    >>> loaded.substrings == index.substrings, loaded.memory_bytes() < index.memory_bytes() // 10
    (True, True)
    >>> _ = loaded.add(hm.datasets.random_codes(1, 64, seed=1))  # copies, never writes the file
    """
    secret = _check_key(key)
    where = str(path)
    skipped: dict[str, int] = {}
    sections = _parse(_read(path, mmap), where, verify, skipped, key=secret)
    if "meta" not in sections:
        raise IndexFormatError(f"{where}: missing section 'meta'")
    meta = _decode_meta(sections.pop("meta"), where)
    kind = meta.get("kind")
    if not isinstance(kind, str):
        raise IndexFormatError(f"{where}: 'meta' does not name a kind: {meta!r}")
    reader = _BUILTIN_KINDS.get(kind) or _REGISTERED.get(kind)
    if reader is None:
        raise IndexFormatError(f"{where}: 'meta' does not describe a known index: {meta!r}")
    if reader.always_verify and skipped:
        _verify(sections, skipped, where)
    if reader.takes_verify:
        return reader.loader(meta, sections, where, verify=verify)
    return reader.loader(meta, sections, where)


def write_container(
    path: str | os.PathLike[str], sections: Mapping[str, Buffer], *, key: bytes | None = None
) -> None:
    """Write named sections to ``path`` atomically (temporary file, fsync, rename).

    Parameters
    ----------
    path : str or path-like
        Destination, replaced only once the new file is complete.
    sections : mapping of str to buffer
        1 to 64 sections; names of 1 to 24 ASCII characters; C-contiguous buffers (bytes,
        memoryviews, numpy arrays: their bytes are written as they are).
    key : bytes, optional
        Sign the file with this key (at least 16 bytes; see :func:`save`).

    Examples
    --------
    >>> import tempfile, os, hashmatch.io as hio
    >>> path = os.path.join(tempfile.mkdtemp(), "x.hm")
    >>> hio.write_container(path, {"meta": b"{}", "data": b"abc"})
    >>> bytes(hio.read_container(path)["data"])
    b'abc'
    """
    secret = _check_key(key)
    payloads = {name: _bytes_view(buf, name) for name, buf in sections.items()}
    if not 0 < len(payloads) <= _MAX_SECTIONS:
        raise InvalidArgument(f"sections: expected 1 to {_MAX_SECTIONS}, got {len(payloads)}")
    for name in payloads:
        if (
            not isinstance(name, str)
            or not name.isascii()
            or not 0 < len(name) <= MAX_NAME_BYTES
            or "\0" in name
        ):
            raise InvalidArgument(
                f"sections: names must be 1 to {MAX_NAME_BYTES} ASCII characters, got {name!r}"
            )
    crcs = crc32_all(list(payloads.values()))
    table_size = _PREAMBLE.size + len(payloads) * _ENTRY.size + 4
    offset = -(-table_size // _ALIGN) * _ALIGN
    entries, layout = [], []
    for (name, payload), crc in zip(payloads.items(), crcs, strict=True):
        entries.append(_ENTRY.pack(name.encode(), offset, len(payload), crc, 0))
        layout.append((offset, payload))
        offset = -(-(offset + len(payload)) // _ALIGN) * _ALIGN
    version = FORMAT_VERSION if secret is None else SIGNED_FORMAT_VERSION
    header = _PREAMBLE.pack(MAGIC, version, len(payloads)) + b"".join(entries)
    header += struct.pack("<I", zlib.crc32(header))
    mac = None if secret is None else hmac.new(secret, digestmod="sha256")
    with atomic_write(path) as f:
        for chunk in _file_chunks(header, layout, offset):
            f.write(chunk)
            if mac is not None:
                mac.update(chunk)
        if mac is not None:
            algorithm = _DIGEST.ljust(16, b"\0")
            mac.update(algorithm)
            f.write(_TRAILER.pack(algorithm, mac.digest()))


def _file_chunks(
    header: bytes, layout: list[tuple[int, memoryview]], size: int
) -> Iterator[bytes | memoryview]:
    """The bytes of a container in order: header, zero padding, sections (up to ``size``)."""
    yield header
    position = len(header)
    for start, payload in layout:
        yield bytes(start - position)
        yield payload
        position = start + len(payload)
    yield bytes(size - position)


def _check_key(key: object) -> bytes | None:
    """``key`` as bytes (at least :data:`MIN_KEY_BYTES`), or ``None``; messages never show it.

    A ``str`` is refused rather than encoded: whether ``"00ff..."`` means its UTF-8 bytes or
    the bytes it spells in hex is for the caller to say (``key.encode()`` or
    ``bytes.fromhex(key)``).
    """
    if key is None:
        return None
    if isinstance(key, str):
        raise InvalidType(
            "key: expected bytes, got str; pass key.encode() or bytes.fromhex(key), whichever "
            "the key is (a random key: secrets.token_bytes(32))"
        )
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise InvalidType(f"key: expected bytes, got {type(key).__name__}")
    secret = bytes(key)
    if len(secret) < MIN_KEY_BYTES:
        raise InvalidArgument(
            f"key: expected at least {MIN_KEY_BYTES} bytes, got {len(secret)} (a random key: "
            "secrets.token_bytes(32))"
        )
    return secret


def read_container(
    path: str | os.PathLike[str],
    *,
    mmap: bool = False,
    verify: bool = True,
    key: bytes | None = None,
) -> dict[str, memoryview]:
    """The sections of a container file, checked, as read-only memoryviews by name.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`write_container` (or :func:`save`).
    mmap : bool, default False
        Views of the file mapped read-only (zero-copy: the mapping lives as long as any view
        or any array made from one); ``False`` reads the file into memory.
    verify : bool, default True
        Check every section's checksum; ``False`` skips those of sections over 1 MiB.
    key : bytes, optional
        Require the file to be signed with this key and check its digest (see :func:`load`).

    Raises
    ------
    IndexFormatError
        Not a hashmatch file, an unsupported version, a truncated or malformed container.
    ChecksumError
        The header or a verified section does not match its checksum.
    IntegrityError
        With ``key``: the file is not signed, or not by this key, or was changed since.
    """
    secret = _check_key(key)
    return _parse(_read(path, mmap), str(path), verify, key=secret)


def _read(path: str | os.PathLike[str], mmap: bool) -> memoryview:
    """The bytes of a regular file, read (or mapped) only once its header has been checked
    against its size: never more than the header declares and the file holds."""
    path = check_path(path)
    where = path
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IndexFormatError(
                f"{where}: not a regular file ({_file_type(info.st_mode)}); hashmatch files "
                "are regular files"
            )
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb", buffering=0) as f:
        size = info.st_size
        head = f.read(min(size, _MAX_HEADER))
        _parse_header(memoryview(head), size, where)  # before reading anything sized by it
        if mmap:
            return memoryview(_mmap.mmap(fd, 0, access=_mmap.ACCESS_READ))
        f.seek(0)
        buffer = bytearray(size)
        view = memoryview(buffer)
        done = 0
        while done < size:
            got = f.readinto(view[done:])
            if not got:
                raise IndexFormatError(f"{where}: the file shrank while it was read")
            done += got
    return view.toreadonly()


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO or pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "another kind of file"


# --- Meta ------------------------------------------------------------------------------------


def _decode_meta(section: memoryview, where: str) -> dict[str, Any]:
    if len(section) > _MAX_META_BYTES:
        raise IndexFormatError(f"{where}: 'meta' is {len(section)} bytes, too big")
    try:
        meta = json.loads(bytes(section).decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise IndexFormatError(f"{where}: unreadable 'meta' section ({e})") from None
    if not isinstance(meta, dict):
        raise IndexFormatError(f"{where}: 'meta' is not an object: {meta!r}")
    return meta


# --- Container --------------------------------------------------------------------------------


def _bytes_view(buf: Buffer, name: str) -> memoryview:
    if isinstance(buf, np.ndarray) and buf.flags.c_contiguous:  # any shape, empty ones too
        return buf.reshape(-1).view(np.uint8).data
    try:
        view = buf.data if isinstance(buf, np.ndarray) else memoryview(buf)
    except TypeError:
        raise InvalidType(
            f"sections[{name!r}]: expected a buffer, got {type(buf).__name__}"
        ) from None
    if not view.c_contiguous:
        raise InvalidArgument(f"sections[{name!r}]: expected a C-contiguous buffer")
    return view.cast("B") if view.ndim != 1 or view.format != "B" else view


class _Header(NamedTuple):
    """A container's checked header: the layout of its bytes, none of which was read yet."""

    version: int
    entries: list[tuple[str, int, int, int]]
    """``(name, offset, length, crc)`` of each section, in table order."""
    spans: list[tuple[int, int]]
    """The sections' byte ranges, sorted, not overlapping."""
    header_end: int
    body_end: int
    """Where the sections' padding ends: the file's size, less a signed file's trailer."""


def _parse_header(head: memoryview, size: int, where: str) -> _Header:
    """Check the header (``head``: the file's first bytes, at least the whole header if the
    file holds it) against the file's ``size``: every section inside the file, the file as
    long as the header says."""
    if len(head) < _PREAMBLE.size or head[:8] != MAGIC:
        raise IndexFormatError(
            f"{where}: not a hashmatch index file (magic={bytes(head[:8])!r}, expected {MAGIC!r})"
        )
    _, version, count = _PREAMBLE.unpack_from(head)
    if version not in (FORMAT_VERSION, SIGNED_FORMAT_VERSION):
        newer = (
            "a newer hashmatch; upgrade to read it"
            if version > SIGNED_FORMAT_VERSION
            else "an unknown"
        )
        raise IndexFormatError(
            f"{where}: format version {version} (written by {newer}); this hashmatch reads "
            f"versions {FORMAT_VERSION} and {SIGNED_FORMAT_VERSION}"
        )
    if not 0 < count <= _MAX_SECTIONS:
        raise IndexFormatError(
            f"{where}: header claims {count} sections, expected 1..{_MAX_SECTIONS}"
        )
    end = _PREAMBLE.size + count * _ENTRY.size
    if min(size, len(head)) < end + 4:
        raise IndexFormatError(f"{where}: truncated header ({size} bytes)")
    (stored,) = struct.unpack_from("<I", head, end)
    if zlib.crc32(head[:end]) != stored:
        raise ChecksumError(f"{where}: header checksum mismatch (the file is corrupted)")
    body_end = size - (_TRAILER.size if version == SIGNED_FORMAT_VERSION else 0)
    entries: list[tuple[str, int, int, int]] = []
    for i in range(count):
        raw_name, offset, length, crc, reserved = _ENTRY.unpack_from(
            head, _PREAMBLE.size + i * _ENTRY.size
        )
        name = raw_name.rstrip(b"\0").decode("ascii", errors="replace")
        if reserved != 0 or any(name == e[0] for e in entries):
            raise IndexFormatError(f"{where}: malformed entry for section {name!r}")
        if offset < end + 4 or offset + length > body_end:
            raise IndexFormatError(
                f"{where}: section {name!r} spans bytes {offset}..{offset + length}, outside the "
                f"file's {max(body_end, 0)} bytes of sections (truncated or damaged)"
            )
        entries.append((name, offset, length, crc))
    spans = sorted((offset, offset + length) for _, offset, length, _ in entries)
    position = end + 4
    for start, stop in spans:
        if start < position:
            raise IndexFormatError(f"{where}: overlapping sections")
        position = stop
    if body_end != -(-position // _ALIGN) * _ALIGN:  # the writer pads to a whole block
        signed = " and a signed file's digest" if version == SIGNED_FORMAT_VERSION else ""
        raise IndexFormatError(
            f"{where}: {size} bytes, expected the last section padded to {_ALIGN}{signed}"
        )
    return _Header(version, entries, spans, end + 4, body_end)


def _parse(
    data: bytes | memoryview,
    where: str,
    verify: bool = True,
    skipped: dict[str, int] | None = None,
    *,
    key: bytes | None = None,
) -> dict[str, memoryview]:
    """The checked sections of a container; ``skipped`` receives the stored checksums of the
    sections ``verify=False`` left unchecked. With ``key``, the file's digest is checked
    first."""
    view = memoryview(data)
    header = _parse_header(view, len(view), where)
    if header.version == SIGNED_FORMAT_VERSION:
        _check_digest(view, header.body_end, key, where)
    elif key is not None:
        raise IntegrityError(
            f"{where}: not signed (saved without a key), but a key was given: refusing it"
        )
    # Every other byte (alignment padding) must be zero, so that no byte escapes a check.
    position = header.header_end
    for start, stop in [*header.spans, (header.body_end, header.body_end)]:
        if any(view[position:start]):
            place = "after the last section" if start == header.body_end else f"at byte {position}"
            raise ChecksumError(f"{where}: non-zero padding {place} (the file is corrupted)")
        position = stop
    sections = {name: view[offset : offset + length] for name, offset, length, _ in header.entries}
    crcs = {name: crc for name, _, _, crc in header.entries}
    checked = {
        n: crcs[n] for n, s in sections.items() if verify or len(s) <= _ALWAYS_VERIFIED_BYTES
    }
    if skipped is not None:
        skipped.update({n: crc for n, crc in crcs.items() if n not in checked})
    _verify(sections, checked, where)
    return sections


def _check_digest(view: memoryview, body_end: int, key: bytes | None, where: str) -> None:
    """Check a signed file's trailer, and with ``key`` its digest (in constant time)."""
    algorithm, tag = _TRAILER.unpack_from(view, body_end)
    if algorithm != _DIGEST.ljust(16, b"\0"):
        raise IndexFormatError(
            f"{where}: unknown digest algorithm {algorithm.rstrip(bytes(1))!r} (expected "
            f"{_DIGEST.decode()})"
        )
    if key is None:
        return
    digest = hmac.new(key, view[: len(view) - _TAG_BYTES], "sha256").digest()
    if not hmac.compare_digest(digest, tag):
        raise IntegrityError(
            f"{where}: keyed digest mismatch: the file was changed after it was signed, or "
            "signed with another key"
        )


def _verify(sections: Mapping[str, memoryview], crcs: Mapping[str, int], where: str) -> None:
    """Check the sections named in ``crcs`` against those checksums."""
    names = list(crcs)
    for name, crc in zip(names, crc32_all([sections[n] for n in names]), strict=True):
        if crc != crcs[name]:
            raise ChecksumError(
                f"{where}: section {name!r} checksum mismatch (the file is corrupted)"
            )
