"""How a HashList is laid out in a hashmatch file (the container is described in io.py).

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
``ix.*``           the index's own sections (io.index_sections), or ``ix.faiss``: the faiss
                   index as written by ``faiss.serialize_index_binary``
=================  ===========================================================================

``meta`` (JSON) holds ``kind: "HashList"``, ``list_format`` (1), the hash type, width, match
radius, backend and its parameters, name, ``next_id``, ``count``, the ``sources`` and
``labelsets`` tables and the index's own meta under ``index``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hashmatch._columns import Columns, Interned, Strings
from hashmatch.errors import HashmatchError, IndexFormatError

if TYPE_CHECKING:
    from hashmatch.lists import HashList, _Segment

LIST_FORMAT = 1
_META_FIELDS = {
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
    "sources",
    "labelsets",
    "index",
}


def list_sections(
    hash_list: HashList, segment: _Segment, next_id: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """meta and sections of a list whose entries are all in one sorted ``segment``."""
    from hashmatch.io import index_sections

    c = segment.columns.pruned()
    meta: dict[str, Any] = {
        "kind": "HashList",
        "list_format": LIST_FORMAT,
        "hash_type": hash_list.hash_type,
        "bits": hash_list.bits,
        "max_distance": hash_list.max_distance,
        "backend": hash_list.backend,
        "backend_params": hash_list._backend_params,
        "name": hash_list.name,
        "next_id": int(next_id),
        "count": len(segment),
        "sources": list(c.sources.table),
        "labelsets": [list(labels) for labels in c.labels.table],
    }
    sections: dict[str, Any] = {
        "ids": segment.ids.astype("<i8", copy=False),
        "codes": np.ascontiguousarray(segment.codes),
        "quality": c.quality.astype("<i2", copy=False),
        "key.off": c.keys.offsets.astype("<u8", copy=False),
        "key.blob": c.keys.blob,
        "extra.off": c.extras.offsets.astype("<u8", copy=False),
        "extra.blob": c.extras.blob,
        "source": c.sources.codes.astype("<u4", copy=False),
        "labelset": c.labels.codes.astype("<u4", copy=False),
    }
    if hasattr(segment.index, "to_bytes"):  # a faiss backend
        meta["index"] = {"faiss": True}
        sections["ix.faiss"] = segment.index.to_bytes()
    else:
        index_meta, index_sections_ = index_sections(segment.index)
        meta["index"] = index_meta
        sections.update({f"ix.{name}": data for name, data in index_sections_.items()})
    return meta, sections


def list_from_sections(meta: dict[str, Any], sections: dict[str, Any], where: str) -> HashList:
    """The HashList these sections describe; every value is checked before use."""
    from hashmatch.lists import HashList, _Segment, _Snapshot

    if meta.get("list_format") != LIST_FORMAT:
        raise IndexFormatError(
            f"{where}: hash-list format {meta.get('list_format')!r}; this hashmatch reads "
            f"{LIST_FORMAT}"
        )
    if set(meta) - _META_FIELDS:
        raise IndexFormatError(
            f"{where}: 'meta' has unknown fields {sorted(set(meta) - _META_FIELDS)}"
        )
    try:
        hash_list = HashList(
            meta["hash_type"],
            bits=meta["bits"],
            max_distance=meta["max_distance"],
            backend=meta["backend"],
            backend_params=meta["backend_params"],
            name=meta["name"],
        )
    except (KeyError, TypeError, HashmatchError) as e:
        raise IndexFormatError(f"{where}: 'meta' does not describe a hash list ({e})") from None
    n, nbytes = meta.get("count"), hash_list.nbytes
    next_id = meta.get("next_id")
    if not isinstance(n, int) or n < 0 or not isinstance(next_id, int) or next_id < 0:
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
    quality = array("quality", "<i2", n).astype(np.int16, copy=False)
    keys = Strings(array("key.off", "<u8", n + 1), array("key.blob", "u1", None))
    extras = Strings(array("extra.off", "<u8", n + 1), array("extra.blob", "u1", None))
    sources_table = meta.get("sources")
    labelsets = meta.get("labelsets")
    if not isinstance(sources_table, list) or not all(
        s is None or (isinstance(s, str) and s) for s in sources_table
    ):
        raise IndexFormatError(f"{where}: 'meta' sources must be a list of str or null")
    if not isinstance(labelsets, list) or not all(
        isinstance(ls, list) and all(isinstance(x, str) and x for x in ls) for ls in labelsets
    ):
        raise IndexFormatError(f"{where}: 'meta' labelsets must be lists of str")
    sources = Interned(
        tuple(sources_table), array("source", "<u4", n).astype(np.uint32, copy=False)
    )
    labels = Interned(
        tuple(tuple(ls) for ls in labelsets),
        array("labelset", "<u4", n).astype(np.uint32, copy=False),
    )
    if n and (ids[0] < 0 or not bool(np.all(ids[1:] > ids[:-1]))):
        raise IndexFormatError(f"{where}: ids must be non-negative and strictly increasing")
    if n and int(ids[-1]) >= next_id and next_id != np.iinfo(np.int64).max:
        raise IndexFormatError(f"{where}: next_id {next_id} is not above the largest id")
    if not (keys.is_valid() and extras.is_valid() and sources.is_valid() and labels.is_valid()):
        raise IndexFormatError(f"{where}: inconsistent metadata offsets or table indexes")
    if n and (int(quality.min()) < -1 or int(quality.max()) > 100):
        raise IndexFormatError(f"{where}: quality scores outside -1..100")
    index = _index(hash_list, meta, sections, n, where)
    segment = _Segment(index, codes, ids, Columns(keys, sources, labels, extras, quality))
    hash_list._publish(_Snapshot((segment,), (None,), next_id))
    return hash_list


def _index(
    hash_list: HashList, meta: dict[str, Any], sections: dict[str, Any], n: int, where: str
) -> Any:
    from hashmatch.io import index_from_sections

    info = meta.get("index")
    if not isinstance(info, dict):
        raise IndexFormatError(f"{where}: 'meta' has no index description")
    if info.get("faiss"):
        from hashmatch.backends import backend_from_bytes

        if "ix.faiss" not in sections:
            raise IndexFormatError(f"{where}: missing section 'ix.faiss'")
        try:
            index = backend_from_bytes(
                hash_list.backend,
                hash_list.bits,
                hash_list._backend_params,
                np.frombuffer(sections["ix.faiss"], dtype=np.uint8),
            )
        except Exception as e:  # faiss raises RuntimeError on a bad stream
            raise IndexFormatError(f"{where}: unreadable faiss index ({e})") from None
    else:
        own = {k[3:]: v for k, v in sections.items() if k.startswith("ix.")}
        rows = own.get("ids")
        if rows is None or len(rows) != 8 * n:
            raise IndexFormatError(f"{where}: the index's ids are not the list's {n} rows")
        row_ids = np.frombuffer(rows, dtype="<i8")
        if n and (int(row_ids.min()) < 0 or int(row_ids.max()) >= n):
            raise IndexFormatError(f"{where}: the index refers to rows outside the list")
        index = index_from_sections(info, own, where=where)
    if len(index) != n or index.bits != hash_list.bits:
        raise IndexFormatError(
            f"{where}: the index holds {len(index)} {index.bits}-bit hashes, the list {n} "
            f"{hash_list.bits}-bit entries"
        )
    return index
