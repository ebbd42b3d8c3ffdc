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

Loading checks the magic, version, header checksum and every section's bounds *before*
reading or allocating anything sized by the file, then the sections' checksums, then the
structure of the index (sizes, table layout, bucket starts, slots, padding, unique ids) before
any search can touch it: a truncated, corrupted, foreign or hostile file raises
:class:`IndexFormatError` (:class:`ChecksumError` for a checksum mismatch), never a crash or
a partial index. With ``verify=False`` the checksums of big sections are skipped (the
structure is still checked, so a damaged file can give wrong answers but not a crash).

Files are never modified in place: a save writes a temporary file in the same directory,
flushes it to disk and renames it over the target (:func:`hashmatch.files.atomic_write`; the
new file keeps the replaced file's permissions, else gets ``0o666 & ~umask``), so a crash
leaves either the old file or the new one, and readers of the old file (including indexes
that memory-map it) are unaffected. Truncating a file in place while it is mapped (not
something hashmatch does) would crash its readers, as with any memory-mapped file.
"""

from __future__ import annotations

import inspect
import json
import mmap as _mmap
import os
import struct
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hashmatch._backend import Buffer
from hashmatch._crc32 import crc32_all
from hashmatch.backends import BACKEND_KINDS, Backend, BackendBase, backend_from_sections
from hashmatch.errors import (
    ChecksumError,
    IndexFormatError,
    InvalidArgument,
    InvalidType,
)
from hashmatch.files import atomic_write
from hashmatch.indexes import LAYOUT_VERSION as LAYOUT_VERSION  # re-exported

__all__ = [
    "FORMAT_VERSION",
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
MAX_NAME_BYTES = 24
_MAX_SECTIONS = 64
_ENTRY = struct.Struct("<24sQQII")
_PREAMBLE = struct.Struct("<8sII")
_ALIGN = 64
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


def save(obj: object, path: str | os.PathLike[str]) -> None:
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
    write_container(path, {"meta": json.dumps(meta, sort_keys=True).encode(), **sections})


def load(path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True) -> Any:
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
        Check every section's checksum (on every core; about 0.2 s per GB on two).
        ``False`` skips the checksums of sections over 1 MiB; the structure is still checked
        in full, so a damaged file cannot crash the process, but undetected bit flips can
        change results.

    Returns
    -------
    FlatIndex, MIHIndex, faiss backend, HashList or object
        Whatever ``meta["kind"]`` names.

    Raises
    ------
    IndexFormatError
        Not a hashmatch file, an unsupported version, a truncated file, an unknown kind or
        inconsistent contents.
    ChecksumError
        A section or the header does not match its checksum (the file was corrupted).

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
    where = str(path)
    skipped: dict[str, int] = {}
    sections = _parse(_read(path, mmap), where, verify, skipped)
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


def write_container(path: str | os.PathLike[str], sections: Mapping[str, Buffer]) -> None:
    """Write named sections to ``path`` atomically (temporary file, fsync, rename).

    Parameters
    ----------
    path : str or path-like
        Destination, replaced only once the new file is complete.
    sections : mapping of str to buffer
        1 to 64 sections; names of 1 to 24 ASCII characters; C-contiguous buffers (bytes,
        memoryviews, numpy arrays: their bytes are written as they are).

    Examples
    --------
    >>> import tempfile, os, hashmatch.io as hio
    >>> path = os.path.join(tempfile.mkdtemp(), "x.hm")
    >>> hio.write_container(path, {"meta": b"{}", "data": b"abc"})
    >>> bytes(hio.read_container(path)["data"])
    b'abc'
    """
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
    header = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(payloads)) + b"".join(entries)
    header += struct.pack("<I", zlib.crc32(header))
    with atomic_write(path) as f:
        f.write(header)
        for start, payload in layout:
            f.seek(start)
            f.write(payload)
        f.truncate(offset)


def read_container(
    path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True
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

    Raises
    ------
    IndexFormatError
        Not a hashmatch file, an unsupported version, a truncated or malformed container.
    ChecksumError
        The header or a verified section does not match its checksum.
    """
    return _parse(_read(path, mmap), str(path), verify)


def _read(path: str | os.PathLike[str], mmap: bool) -> memoryview:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data: bytes | _mmap.mmap
        if mmap and size > 0:
            data = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
        else:
            data = f.read()
    return memoryview(data)


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


def _parse(
    data: bytes | memoryview,
    where: str,
    verify: bool = True,
    skipped: dict[str, int] | None = None,
) -> dict[str, memoryview]:
    """The checked sections of a container; ``skipped`` receives the stored checksums of the
    sections ``verify=False`` left unchecked."""
    view = memoryview(data)
    if len(view) < _PREAMBLE.size or view[:8] != MAGIC:
        raise IndexFormatError(
            f"{where}: not a hashmatch index file (magic={bytes(view[:8])!r}, expected {MAGIC!r})"
        )
    _, version, count = _PREAMBLE.unpack_from(view)
    if version != FORMAT_VERSION:
        newer = (
            "a newer hashmatch; upgrade to read it" if version > FORMAT_VERSION else "an unknown"
        )
        raise IndexFormatError(
            f"{where}: format version {version} (written by {newer}); this hashmatch reads "
            f"version {FORMAT_VERSION}"
        )
    if not 0 < count <= _MAX_SECTIONS:
        raise IndexFormatError(
            f"{where}: header claims {count} sections, expected 1..{_MAX_SECTIONS}"
        )
    end = _PREAMBLE.size + count * _ENTRY.size
    if len(view) < end + 4:
        raise IndexFormatError(f"{where}: truncated header ({len(view)} bytes)")
    (stored,) = struct.unpack_from("<I", view, end)
    if zlib.crc32(view[:end]) != stored:
        raise ChecksumError(f"{where}: header checksum mismatch (the file is corrupted)")
    sections: dict[str, memoryview] = {}
    crcs: dict[str, int] = {}
    spans = []
    for i in range(count):
        raw_name, offset, length, crc, reserved = _ENTRY.unpack_from(
            view, _PREAMBLE.size + i * _ENTRY.size
        )
        name = raw_name.rstrip(b"\0").decode("ascii", errors="replace")
        if reserved != 0 or name in sections:
            raise IndexFormatError(f"{where}: malformed entry for section {name!r}")
        if offset < end + 4 or offset + length > len(view):
            raise IndexFormatError(
                f"{where}: section {name!r} spans bytes {offset}..{offset + length}, outside the "
                f"file's {len(view)} bytes (truncated or damaged)"
            )
        sections[name] = view[offset : offset + length]
        crcs[name] = crc
        spans.append((offset, offset + length))
    # Every other byte (alignment padding) must be zero, so that no byte escapes a check.
    position = end + 4
    for start, stop in sorted(spans):
        if start < position:
            raise IndexFormatError(f"{where}: overlapping sections")
        if any(view[position:start]):
            raise ChecksumError(
                f"{where}: non-zero padding at byte {position} (the file is corrupted)"
            )
        position = stop
    if len(view) != -(-position // _ALIGN) * _ALIGN:  # the writer pads to a whole block
        raise IndexFormatError(
            f"{where}: {len(view)} bytes, expected the last section padded to {_ALIGN}"
        )
    if any(view[position:]):
        raise ChecksumError(
            f"{where}: non-zero padding after the last section (the file is corrupted)"
        )
    checked = {
        n: crcs[n] for n, s in sections.items() if verify or len(s) <= _ALWAYS_VERIFIED_BYTES
    }
    if skipped is not None:
        skipped.update({n: crc for n, crc in crcs.items() if n not in checked})
    _verify(sections, checked, where)
    return sections


def _verify(sections: Mapping[str, memoryview], crcs: Mapping[str, int], where: str) -> None:
    """Check the sections named in ``crcs`` against those checksums."""
    names = list(crcs)
    for name, crc in zip(names, crc32_all([sections[n] for n in names]), strict=True):
        if crc != crcs[name]:
            raise ChecksumError(
                f"{where}: section {name!r} checksum mismatch (the file is corrupted)"
            )
