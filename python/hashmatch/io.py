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
Files of hashmatch 0.1.0 (meta without ``layout``; sections ``ids`` and ``codes``, n x bits/8
bytes) still load, by adding their hashes to a new index. Other kinds (e.g. a ``HashList``
that embeds an index's sections under a prefix) are written by objects with a
``_to_sections()`` method and read by loaders registered with :func:`register_kind`.

Loading checks the magic, version, header checksum and every section's bounds *before*
reading or allocating anything sized by the file, then the sections' checksums, then the
structure of the index (sizes, table layout, bucket starts, slots, padding, unique ids) before
any search can touch it: a truncated, corrupted, foreign or hostile file raises
:class:`IndexFormatError` (:class:`ChecksumError` for a checksum mismatch), never a crash or
a partial index. With ``verify=False`` the checksums of big sections are skipped (the
structure is still checked, so a damaged file can give wrong answers but not a crash).

Files are never modified in place: a save writes a temporary file in the same directory,
flushes it to disk and renames it over the target, so a crash leaves either the old file or
the new one, and readers of the old file (including indexes that memory-map it) are
unaffected. Truncating a file in place while it is mapped (not something hashmatch does)
would crash its readers, as with any memory-mapped file.
"""

from __future__ import annotations

import importlib
import json
import mmap as _mmap
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hashmatch import _core
from hashmatch._crc32 import crc32_all
from hashmatch._validation import check_bits, check_max_distance
from hashmatch.errors import (
    ChecksumError,
    HashmatchError,
    IndexFormatError,
    InvalidArgument,
    InvalidType,
)
from hashmatch.indexes import FlatIndex, MIHIndex, _check_substrings

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
LAYOUT_VERSION = 1
MAX_NAME_BYTES = 24
_MAX_SECTIONS = 64
_ENTRY = struct.Struct("<24sQQII")
_PREAMBLE = struct.Struct("<8sII")
_ALIGN = 64
_MAX_META_BYTES = 64 << 20
# With verify=False, sections up to this size are still checksummed (it costs nothing).
_ALWAYS_VERIFIED_BYTES = 1 << 20

Index = FlatIndex | MIHIndex
Buffer = bytes | bytearray | memoryview | npt.NDArray[Any]
Loader = Callable[[dict[str, Any], dict[str, memoryview], str], object]
"""Reads one kind: ``loader(meta, sections, where)``, sections without ``meta``; raises
IndexFormatError naming ``where`` (the file) on bad contents."""

_INDEX_SECTIONS = {
    "FlatIndex": {"ids": "<i8", "tiles": "<u8"},
    "MIHIndex": {"ids": "<i8", "rows": "<u8", "starts": "<u4", "residual": "u1", "slot": "<u4"},
}
_LOADERS: dict[str, Loader] = {}
# Kinds defined in modules that import this one: imported on first use (a fixed list, so a file
# never chooses which module gets imported).
_LAZY_KINDS = {"HashList": "hashmatch.lists"}


def register_kind(kind: str, loader: Loader) -> None:
    """Make :func:`load` read files whose meta ``kind`` is ``kind`` with ``loader``.

    Parameters
    ----------
    kind : str
        The ``kind`` the object's ``_to_sections()`` writes into its meta.
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
    if kind in _INDEX_SECTIONS:
        raise InvalidArgument(f"kind: {kind!r} is built in")
    _LOADERS[kind] = loader


def index_sections(index: Index) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The meta and native sections of an index, as :func:`save` writes them.

    An MIHIndex is compacted first (:meth:`MIHIndex.compact`), so the sections hold exactly
    its live hashes, all in the tables. The arrays are copies taken under the index's lock
    (a consistent snapshot even while other threads add or remove); section names are at most
    16 characters, leaving room for a prefix within the container's 24.

    Returns
    -------
    meta : dict
        JSON-ready: ``kind``, ``bits``, parameters and ``layout`` (see the module docs).
    sections : dict of str to numpy.ndarray
        Little-endian arrays by section name.

    Examples
    --------
    >>> import hashmatch as hm, hashmatch.io as hio
    >>> index = hm.FlatIndex(64)
    >>> _ = index.add(["00000000000000ff"])
    >>> meta, sections = hio.index_sections(index)
    >>> meta["layout"], sorted(sections)
    ({'version': 1, 'n': 1, 'next_id': 1}, ['ids', 'tiles'])
    """
    if not isinstance(index, (FlatIndex, MIHIndex)):
        raise InvalidType(f"index: expected a FlatIndex or MIHIndex, got {type(index).__name__}")
    arrays = index._core.export()
    meta: dict[str, Any] = {"kind": type(index).__name__, "bits": index.bits}
    layout: dict[str, Any] = {
        "version": LAYOUT_VERSION,
        "n": int(arrays.pop("n")),
        "next_id": int(arrays.pop("next_id")),
    }
    if isinstance(index, MIHIndex):
        meta["max_distance"] = index._max_distance
        meta["substrings"] = index._fixed_substrings or None
        layout["tables"] = [list(t) for t in arrays.pop("tables")]
    meta["layout"] = layout
    kinds = _INDEX_SECTIONS[meta["kind"]]
    return meta, {name: arrays[name].astype(kinds[name], copy=False) for name in kinds}


def index_from_sections(
    meta: Mapping[str, Any], sections: Mapping[str, Buffer], *, where: str
) -> Index:
    """An index over saved sections, validated in full, zero-copy where possible.

    The index reads the section buffers in place (a memory-mapped file's pages) and keeps
    them alive; its first ``add`` or ``remove`` copies what it changes, so the buffers are never
    written. Files without a ``layout`` (hashmatch 0.1.0) are rebuilt by adding their hashes.

    Parameters
    ----------
    meta : mapping
        The decoded meta of the index (as :func:`index_sections` returns it).
    sections : mapping of str to buffer
        Exactly the index's sections, by the names :func:`index_sections` gives them.
    where : str
        Names the source (a file, a section prefix) in error messages.

    Raises
    ------
    IndexFormatError
        Unknown kind or layout, missing or unexpected sections, or inconsistent contents
        (sizes, table layout, bucket starts, slots, code padding, negative or duplicate ids).

    Examples
    --------
    >>> import hashmatch as hm, hashmatch.io as hio
    >>> index = hm.MIHIndex(64)
    >>> _ = index.add(hm.datasets.random_codes(2000, 64))
    >>> copy = hio.index_from_sections(*hio.index_sections(index), where="example")
    >>> len(copy), copy.substrings == index.substrings
    (2000, True)
    """
    kind = meta.get("kind")
    if not isinstance(kind, str) or kind not in _INDEX_SECTIONS:
        raise IndexFormatError(f"{where}: 'meta' does not describe a known index: {dict(meta)!r}")
    try:
        if "layout" not in meta:
            return _rebuild_legacy(meta, sections, where)
        return _borrow(meta, sections, where)
    except IndexFormatError:
        raise
    except (HashmatchError, OverflowError, TypeError, ValueError) as e:
        raise IndexFormatError(f"{where}: inconsistent contents: {e}") from None


def save(obj: object, path: str | os.PathLike[str]) -> None:
    """Write an index (or an object with ``_to_sections()``) to ``path`` atomically.

    Parameters
    ----------
    obj : FlatIndex, MIHIndex or object
        An index (saved with its search structures: see the module docs; an MIHIndex is
        compacted first), or any object with a method ``_to_sections() -> (meta, sections)``:
        a JSON-ready dict naming its ``kind`` and a dict of named buffers, read back by the
        loader registered for that kind (:func:`register_kind`).
    path : str or path-like
        Destination; an existing file there is replaced only once the new one is complete
        (temporary file, fsync, rename), so readers of the old file are unaffected.

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
    sections: Mapping[str, Buffer]
    if isinstance(obj, (FlatIndex, MIHIndex)):
        meta, sections = index_sections(obj)
    elif callable(getattr(obj, "_to_sections", None)):
        meta, sections = obj._to_sections()  # type: ignore[attr-defined]
        if not isinstance(meta, dict) or not isinstance(meta.get("kind"), str):
            raise InvalidArgument(
                f"{type(obj).__name__}._to_sections: expected a meta dict with a 'kind' string"
            )
        if "meta" in sections:
            raise InvalidArgument(
                f"{type(obj).__name__}._to_sections: the section name 'meta' is reserved"
            )
    else:
        raise InvalidType(
            f"obj: expected an index (FlatIndex, MIHIndex) or an object with _to_sections(), "
            f"got {type(obj).__name__}"
        )
    write_container(path, {"meta": json.dumps(meta, sort_keys=True).encode(), **sections})


def load(path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True) -> Any:
    """Read what :func:`save` wrote: a FlatIndex, an MIHIndex or a registered kind.

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
    FlatIndex, MIHIndex or object
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
    sections = read_container(path, mmap=mmap, verify=verify)
    if "meta" not in sections:
        raise IndexFormatError(f"{where}: missing section 'meta'")
    meta = _decode_meta(sections.pop("meta"), where)
    kind = meta.get("kind")
    if not isinstance(kind, str):
        raise IndexFormatError(f"{where}: 'meta' does not name a kind: {meta!r}")
    if kind in _INDEX_SECTIONS:
        return index_from_sections(meta, sections, where=where)
    if kind not in _LOADERS and kind in _LAZY_KINDS:
        try:
            importlib.import_module(_LAZY_KINDS[kind])  # registers its kinds
        except ModuleNotFoundError as e:
            if e.name != _LAZY_KINDS[kind]:
                raise
    if kind not in _LOADERS:
        raise IndexFormatError(f"{where}: 'meta' does not describe a known index: {meta!r}")
    return _LOADERS[kind](meta, sections, where)


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
    _write_atomically(Path(path), header, layout, offset)


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
    where = str(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data: bytes | _mmap.mmap
        if mmap and size > 0:
            data = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
        else:
            data = f.read()
    return _parse(memoryview(data), where, verify)


# --- Indexes ----------------------------------------------------------------------------------


def _borrow(meta: Mapping[str, Any], sections: Mapping[str, Buffer], where: str) -> Index:
    kind = meta["kind"]
    names = _INDEX_SECTIONS[kind]
    _check_keys(meta, {"kind", "bits", "layout", "max_distance", "substrings"}, "meta", where)
    layout = meta["layout"]
    if not isinstance(layout, dict):
        raise IndexFormatError(f"{where}: 'layout' is not an object")
    _check_keys(layout, {"version", "n", "next_id", "tables"}, "layout", where)
    if layout.get("version") != LAYOUT_VERSION:
        raise IndexFormatError(
            f"{where}: index layout version {layout.get('version')!r} (this hashmatch reads "
            f"{LAYOUT_VERSION}; upgrade to read newer files)"
        )
    if set(sections) != set(names):
        raise IndexFormatError(
            f"{where}: {kind} sections {sorted(sections)}, expected {sorted(names)}"
        )
    bits = check_bits(_json_int(meta.get("bits"), "bits", where))
    saved: dict[str, Any] = {
        "n": _json_int(layout.get("n"), "n", where),
        "next_id": _json_int(layout.get("next_id"), "next_id", where),
    }
    saved.update({name: _typed(sections[name], names[name], name, where) for name in names})
    if kind == "FlatIndex":
        _check_keys(meta, {"kind", "bits", "layout"}, "meta", where)
        _check_keys(layout, {"version", "n", "next_id"}, "layout", where)
        return FlatIndex._from_core(_core.IndexCore("flat", bits, saved=saved))
    radius = check_max_distance(_json_int(meta.get("max_distance"), "max_distance", where), bits)
    fixed = meta.get("substrings")
    count = 0 if fixed is None else _check_substrings(fixed, bits)
    tables = layout.get("tables")
    if not isinstance(tables, list) or not all(isinstance(t, list) and len(t) == 3 for t in tables):
        raise IndexFormatError(f"{where}: 'layout.tables' must be a list of [lo, len, shift]")
    saved["tables"] = [
        tuple(_json_int(v, "layout.tables", where, 2**32 - 1) for v in t) for t in tables
    ]
    core = _core.IndexCore("mih", bits, count, radius, saved=saved)
    return MIHIndex._from_core(core, _max_distance=radius, _fixed_substrings=count)


def _rebuild_legacy(meta: Mapping[str, Any], sections: Mapping[str, Buffer], where: str) -> Index:
    """Files of hashmatch 0.1.0: ids and n x bits/8 code bytes, added to a new index."""
    _check_keys(meta, {"kind", "bits", "max_distance", "substrings"}, "meta", where)
    if set(sections) != {"ids", "codes"}:
        raise IndexFormatError(f"{where}: sections {sorted(sections)}, expected ['codes', 'ids']")
    bits = _json_int(meta.get("bits"), "bits", where)
    params = {k: v for k, v in meta.items() if k != "kind"}
    index = FlatIndex(**params) if meta["kind"] == "FlatIndex" else MIHIndex(**params)
    ids = _typed(sections["ids"], "<i8", "ids", where)
    raw = _typed(sections["codes"], "u1", "codes", where)
    if len(raw) != len(ids) * (bits // 8):
        raise IndexFormatError(
            f"{where}: section 'codes' holds {len(raw)} bytes, expected {len(ids)} x {bits // 8}"
        )
    if len(ids):
        index.add(raw.reshape(len(ids), bits // 8), ids)
    return index


def _typed(section: Buffer, dtype: str, name: str, where: str) -> npt.NDArray[Any]:
    """A zero-copy native-endian array over a section (a copy only if misaligned or on a
    big-endian CPU)."""
    raw = np.frombuffer(section, dtype=np.uint8)  # any C-contiguous buffer, as bytes
    itemsize = np.dtype(dtype).itemsize
    if raw.nbytes % itemsize:
        raise IndexFormatError(
            f"{where}: section {name!r} is {raw.nbytes} bytes, not a multiple of {itemsize}"
        )
    array = raw.view(dtype)
    if not array.flags.aligned or not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _json_int(value: object, name: str, where: str, top: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise IndexFormatError(f"{where}: {name!r} must be an integer in [0, {top}], got {value!r}")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: set[str], what: str, where: str) -> None:
    if set(obj) - allowed:
        raise IndexFormatError(f"{where}: {what!r} has unknown fields {sorted(set(obj) - allowed)}")


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


def _write_atomically(
    path: Path, header: bytes, layout: list[tuple[int, memoryview]], size: int
) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            for start, payload in layout:
                f.seek(start)
                f.write(payload)
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _parse(data: bytes | memoryview, where: str, verify: bool = True) -> dict[str, memoryview]:
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
    checked = [n for n, s in sections.items() if verify or len(s) <= _ALWAYS_VERIFIED_BYTES]
    for name, crc in zip(checked, crc32_all([sections[n] for n in checked]), strict=True):
        if crc != crcs[name]:
            raise ChecksumError(
                f"{where}: section {name!r} checksum mismatch (the file is corrupted)"
            )
    return sections
