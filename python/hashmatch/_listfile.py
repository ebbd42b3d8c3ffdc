"""How a HashList is laid out in a hashmatch file (the container is described in io.py).

The metadata sections are derived from the schema (:mod:`hashmatch.schema`): a ``text``
field is saved as ``<section>.off`` + ``<section>.blob``, an ``interned`` one as ``<section>``
plus a meta table, a ``quality`` one as ``<section>``. This module turns one segment into
sections and back; it knows nothing of :class:`~hashmatch.HashList` itself.

A saved list is always one compacted segment, entries sorted by id. Sections (all
little-endian, each 64-byte aligned so ``load(mmap=True)`` views them in place):

=================  ===========================================================================
``ids``            int64 per entry, strictly increasing
``codes``          uint8, entries x bits/8: the hashes
``quality``        int16 per entry, -1 = no score
``key.off``        uint64, entries + 1: offsets of each key in ``key.blob`` (empty = no key)
``key.blob``       UTF-8 keys back to back
``extra.off``      uint64, entries + 1: offsets in ``extra.blob``
``extra.blob``     UTF-8 JSON objects back to back (empty = no extras)
``source``         uint32 per entry: index into meta ``sources``
``labelset``       uint32 per entry: index into meta ``labelsets``
``ix.*``           the index's own sections (``index.to_sections()``; a faiss backend's is
                   ``ix.faiss``, as ``faiss.serialize_index_binary`` writes it)
=================  ===========================================================================

``meta`` (JSON) holds ``kind: "HashList"``, ``list_format`` (1), the hash type, width, match
radius, backend and its parameters, name, ``next_id``, ``count``, the ``sources`` and
``labelsets`` tables and the index's own meta under ``index`` (lists written before the backend
protocol have ``{"faiss": true}`` there for a faiss backend; they still load). A list that
follows a feed also has ``checkpoint`` (a string) and ``quarantine`` (``[where, key, reason]``
lists: :attr:`HashList.quarantined`); each is written only when set, and a list without them
loads with no checkpoint and an empty quarantine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from hashmatch._columns import Interned, Strings
from hashmatch.backends import backend_from_sections
from hashmatch.errors import IndexFormatError
from hashmatch.schema import FIELDS, Columns, check_table
from hashmatch.storage import Segment

__all__ = ["LIST_FORMAT", "META_FIELDS", "segment_from_sections", "segment_sections"]

LIST_FORMAT = 1
META_FIELDS = frozenset(
    {
        "kind",
        "list_format",
        "hash_type",
        "bits",
        "max_distance",
        "backend",
        "backend_params",
        "name",
        "next_id",
        "count",
        "index",
        "checkpoint",
        "quarantine",
        *(f.table for f in FIELDS if f.table),
    }
)


def segment_sections(segment: Segment) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, sections) of a segment whose entries are sorted by id: the entry columns, the
    schema's fields and the index's own sections under ``ix.``."""
    c = segment.columns.pruned()
    meta: dict[str, Any] = {"count": len(segment)}
    sections: dict[str, Any] = {
        "ids": segment.ids.astype("<i8", copy=False),
        "codes": np.ascontiguousarray(segment.codes),
    }
    for f in FIELDS:
        column = c[f.name]
        if isinstance(column, Strings):
            sections[f"{f.section}.off"] = column.offsets.astype("<u8", copy=False)
            sections[f"{f.section}.blob"] = column.blob
        elif isinstance(column, Interned):
            sections[f.section] = column.codes.astype("<u4", copy=False)
            meta[str(f.table)] = [f._to_table(v) for v in column.table]
        else:
            sections[f.section] = column.astype("<i2", copy=False)
    index_meta, own = segment.index.to_sections()
    meta["index"] = index_meta
    sections.update({f"ix.{name}": data for name, data in own.items()})
    return meta, sections


def segment_from_sections(
    meta: dict[str, Any],
    sections: dict[str, Any],
    where: str,
    *,
    bits: int,
    faiss_index: Callable[[Any], Any],
    verify: bool = True,
) -> tuple[Segment, int]:
    """The segment these sections describe, and the list's ``next_id``.

    Every value is checked before use, so no file can crash a search or read out of bounds.
    With ``verify`` (the default), every derived structure is also checked against what it
    derives from, in time linear in the file: the index holds exactly the list's codes (each
    row once), keys and extras are valid UTF-8 and extras JSON objects. ``faiss_index(data)``
    rebuilds a faiss backend from its bytes."""
    if meta.get("list_format") != LIST_FORMAT:
        raise IndexFormatError(
            f"{where}: hash-list format {meta.get('list_format')!r}; this hashmatch reads "
            f"{LIST_FORMAT}"
        )
    if set(meta) - META_FIELDS:
        raise IndexFormatError(
            f"{where}: 'meta' has unknown fields {sorted(set(meta) - META_FIELDS)}"
        )
    n, nbytes = meta.get("count"), bits // 8
    next_id = meta.get("next_id")
    top = np.iinfo(np.int64).max
    if not isinstance(n, int) or not 0 <= n <= top or not isinstance(next_id, int):
        raise IndexFormatError(f"{where}: bad entry count or next_id in 'meta'")
    if not 0 <= next_id <= top:
        raise IndexFormatError(f"{where}: bad entry count or next_id in 'meta'")

    def array(name: str, dtype: str, count: int | None) -> np.ndarray[Any, Any]:
        if name not in sections:
            raise IndexFormatError(f"{where}: missing section {name!r}")
        raw = sections[name]
        size = np.dtype(dtype).itemsize
        if len(raw) % size or (count is not None and len(raw) != count * size):
            expected = "a multiple of" if count is None else f"{count} x"
            raise IndexFormatError(
                f"{where}: section {name!r} holds {len(raw)} bytes, expected {expected} {size}"
            )
        return np.frombuffer(raw, dtype=dtype)

    ids = array("ids", "<i8", n).astype(np.int64, copy=False)
    codes = array("codes", "u1", n * nbytes).reshape(n, nbytes)
    columns: dict[str, Any] = {}
    for f in FIELDS:
        if f.kind == "text":
            columns[f.name] = Strings(
                array(f"{f.section}.off", "<u8", n + 1), array(f"{f.section}.blob", "u1", None)
            )
        elif f.kind == "interned":
            table = check_table(f, meta.get(str(f.table)))
            if table is None:
                raise IndexFormatError(f"{where}: 'meta' {f.table} is malformed")
            columns[f.name] = Interned(
                table, array(f.section, "<u4", n).astype(np.uint32, copy=False)
            )
        else:
            columns[f.name] = array(f.section, "<i2", n).astype(np.int16, copy=False)
    if n and (ids[0] < 0 or not bool(np.all(ids[1:] > ids[:-1]))):
        raise IndexFormatError(f"{where}: ids must be non-negative and strictly increasing")
    if n and int(ids[-1]) >= next_id and next_id != np.iinfo(np.int64).max:
        raise IndexFormatError(f"{where}: next_id {next_id} is not above the largest id")
    entry_columns = Columns(columns, n)
    if not entry_columns.is_valid():
        raise IndexFormatError(
            f"{where}: inconsistent metadata offsets or table indexes, or quality scores "
            "outside -1..100"
        )
    index = _index(meta, sections, n, bits, faiss_index, where, verify)
    _check_index_rows(index, codes, where, verify=verify)
    if verify:
        for f in FIELDS:
            column = columns[f.name]
            if isinstance(column, Strings):
                _check_text(column, f"{f.section}.blob", where, json_objects=f.name == "extras")
    return Segment(index, codes, ids, entry_columns), next_id


def _check_index_rows(index: Any, codes: np.ndarray[Any, Any], where: str, *, verify: bool) -> None:
    """The index's rows are rows of the list (always: searches look entries up by them) and,
    with ``verify``, each row once, with the list's own code in an exact index."""
    contents = getattr(index, "contents", None)
    if contents is None:  # a faiss backend: its ids (codes are inside faiss's own structure)
        rows, stored = index.stored_ids(), None
    elif verify:
        rows, stored = contents()
    else:  # exact: its 'ix.ids' section was range-checked before the index was built
        return
    n = len(codes)
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise IndexFormatError(f"{where}: the index refers to rows outside the list")
    if not verify:
        return
    if len(rows) != n or (n and np.bincount(rows, minlength=n).max() != 1):
        raise IndexFormatError(f"{where}: the index does not hold each of the list's rows once")
    if stored is not None and not np.array_equal(stored, codes[rows]):
        bad = int(np.flatnonzero((stored != codes[rows]).any(axis=1))[0])
        raise IndexFormatError(
            f"{where}: section 'codes' disagrees with the index: row {int(rows[bad])} is "
            "stored with another hash"
        )


def _check_text(column: Strings, section: str, where: str, *, json_objects: bool) -> None:
    """Every string of ``column`` is UTF-8 without NUL (and, with ``json_objects``, a JSON
    object), so nothing fails later when an entry is read."""
    blob, starts = column.blob, column.offsets[:-1][np.diff(column.offsets) > 0]
    # an entry starting on a UTF-8 continuation byte would split a character between entries
    if (blob == 0).any() or (
        len(starts) and ((blob[starts.astype(np.int64)] & 0xC0) == 0x80).any()
    ):
        raise IndexFormatError(f"{where}: section {section!r} holds NUL or split characters")
    try:
        blob.tobytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise IndexFormatError(f"{where}: section {section!r} is not UTF-8 ({e.reason})") from None
    if json_objects:
        rows = np.flatnonzero(np.diff(column.offsets) > 0)
        for lo in range(0, len(rows), 65536):  # bounded memory: decode and drop
            chunk = rows[lo : lo + 65536]
            for i, text in zip(chunk.tolist(), column.get(chunk), strict=True):
                try:
                    value = json.loads(text or "")
                except ValueError:
                    value = None
                if not isinstance(value, dict):
                    raise IndexFormatError(
                        f"{where}: section {section!r}: entry {i} is not a JSON object"
                    )


def _index(
    meta: dict[str, Any],
    sections: dict[str, Any],
    n: int,
    bits: int,
    faiss_index: Callable[[Any], Any],
    where: str,
    verify: bool,
) -> Any:
    info = meta.get("index")
    if not isinstance(info, dict):
        raise IndexFormatError(f"{where}: 'meta' has no index description")
    own = {k[3:]: v for k, v in sections.items() if k.startswith("ix.")}
    if info.get("faiss"):  # written before backends described themselves: bytes only
        if "faiss" not in own:
            raise IndexFormatError(f"{where}: missing section 'ix.faiss'")
        try:
            index = faiss_index(np.frombuffer(own["faiss"], dtype=np.uint8))
        except Exception as e:  # faiss raises RuntimeError on a bad stream
            raise IndexFormatError(f"{where}: unreadable faiss index ({e})") from None
    else:
        if "faiss" not in own:  # an exact index: its ids are the list's row numbers
            rows = own.get("ids")
            if rows is None or len(rows) != 8 * n:
                raise IndexFormatError(f"{where}: the index's ids are not the list's {n} rows")
            row_ids = np.frombuffer(rows, dtype="<i8")
            if n and (int(row_ids.min()) < 0 or int(row_ids.max()) >= n):
                raise IndexFormatError(f"{where}: the index refers to rows outside the list")
        index = backend_from_sections(info, own, where, verify=verify)
    if len(index) != n or index.bits != bits:
        raise IndexFormatError(
            f"{where}: the index holds {len(index)} {index.bits}-bit hashes, the list {n} "
            f"{bits}-bit entries"
        )
    return index
