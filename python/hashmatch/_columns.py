"""Columnar storage of hash-list metadata: compact, vectorised, and memory-mappable.

A hash list of 10M entries cannot hold 10M Python objects per column and still open in well
under a second, so each column is a few flat numpy arrays:

- :class:`Strings` (keys, JSON extras): UTF-8 bytes back to back in ``blob``, entry ``i`` at
  ``blob[offsets[i]:offsets[i + 1]]``; an empty string means "none".
- :class:`Interned` (sources, label sets): a small table of distinct values and one uint32 code
  per entry; moderation labels and sources repeat across millions of entries.
- quality: int16 per entry, -1 for "no score".

Every operation here is vectorised (gathers in bounded chunks), never a Python loop over entries
except to decode the values a caller asked for.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Interned", "Strings", "as_rows"]

_CHUNK_BYTES = 1 << 23  # bound on the temporary gather buffers


def as_rows(rows: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.asarray(rows, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class Strings:
    """Variable-length UTF-8 strings; an empty string stands for ``None``."""

    offsets: npt.NDArray[np.uint64]
    blob: npt.NDArray[np.uint8]

    @staticmethod
    def encode(values: Sequence[str | None]) -> Strings:
        encoded = [v.encode() if v else b"" for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.uint64)
        np.cumsum(np.fromiter(map(len, encoded), np.uint64, len(encoded)), out=offsets[1:])
        return Strings(offsets, np.frombuffer(b"".join(encoded), dtype=np.uint8))

    @staticmethod
    def empty(n: int) -> Strings:
        return Strings(np.zeros(n + 1, dtype=np.uint64), np.zeros(0, dtype=np.uint8))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _spans(self, rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
        starts = self.offsets[rows].astype(np.int64)
        return starts, self.offsets[rows + 1].astype(np.int64) - starts

    def get(self, rows: npt.ArrayLike) -> list[str | None]:
        """The strings at ``rows`` (``None`` for empty ones), decoded in vectorised chunks."""
        rows = as_rows(rows)
        out: list[str | None] = []
        if len(rows) <= 32:  # a query's few matches: plain slicing beats the vector setup
            bounds = self.offsets[np.concatenate([rows, rows + 1])].tolist()
            blob = self.blob
            for lo, hi in zip(bounds[: len(rows)], bounds[len(rows) :], strict=True):
                out.append(blob[lo:hi].tobytes().decode() if hi > lo else None)
            return out
        starts, lengths = self._spans(rows)
        width = int(lengths.max()) if len(rows) else 0
        if width == 0:
            return [None] * len(rows)
        step = max(1, _CHUNK_BYTES // width)
        column = np.arange(width, dtype=np.int64)
        for lo in range(0, len(rows), step):
            s, n = starts[lo : lo + step], lengths[lo : lo + step]
            inside = column < n[:, None]
            buffer = np.zeros((len(s), width), dtype=np.uint8)
            buffer[inside] = self.blob[(s[:, None] + column)[inside]]
            # Fixed-width bytes drop trailing NULs; stored strings never contain NUL.
            text = np.char.decode(buffer.view(f"S{width}").reshape(-1), "utf-8").tolist()
            out.extend(t or None for t in text)
        return out

    def take(self, rows: npt.ArrayLike) -> Strings:
        rows = as_rows(rows)
        starts, lengths = self._spans(rows)
        offsets = np.zeros(len(rows) + 1, dtype=np.uint64)
        np.cumsum(lengths, out=offsets[1:])
        blob = np.empty(int(offsets[-1]), dtype=np.uint8)
        lo = 0
        while lo < len(rows):  # chunks of about _CHUNK_BYTES bytes of strings
            hi = lo + 1 + int(np.searchsorted(offsets[lo + 1 :], offsets[lo] + _CHUNK_BYTES))
            hi = min(hi, len(rows))
            base = offsets[lo:hi].astype(np.int64)
            index = np.repeat(starts[lo:hi] - base, lengths[lo:hi])
            index += np.arange(int(base[0]), int(offsets[hi]), dtype=np.int64)
            blob[int(base[0]) : int(offsets[hi])] = self.blob[index]
            lo = hi
        return Strings(offsets, blob)

    @staticmethod
    def concat(parts: Sequence[Strings]) -> Strings:
        if len(parts) == 1:
            return parts[0]
        offsets = [np.zeros(1, dtype=np.uint64)]
        shift = 0
        for part in parts:
            offsets.append(part.offsets[1:] + np.uint64(shift))
            shift += int(part.offsets[-1])
        return Strings(np.concatenate(offsets), np.concatenate([p.blob for p in parts]))

    def is_valid(self) -> bool:
        """Offsets start at 0, never decrease and end at the blob's length."""
        o = self.offsets
        return (
            len(o) >= 1
            and int(o[0]) == 0
            and int(o[-1]) == len(self.blob)
            and bool(np.all(o[1:] >= o[:-1]))
        )


@dataclass(frozen=True)
class Interned:
    """A column of repeated values: a table of distinct values and a uint32 code per entry."""

    table: tuple[Any, ...]
    codes: npt.NDArray[np.uint32]

    @staticmethod
    def encode(values: Sequence[Hashable]) -> Interned:
        index: dict[Hashable, int] = {}
        codes = np.fromiter(
            (index.setdefault(v, len(index)) for v in values), np.uint32, len(values)
        )
        return Interned(tuple(index), codes)

    @staticmethod
    def constant(value: Hashable, n: int) -> Interned:
        return Interned((value,), np.zeros(n, dtype=np.uint32))

    def __len__(self) -> int:
        return len(self.codes)

    @cached_property
    def _objects(self) -> npt.NDArray[np.object_]:
        table = np.empty(len(self.table), dtype=object)
        for i, value in enumerate(self.table):  # element-wise: values may be tuples
            table[i] = value
        return table

    def objects(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
        """The values at ``rows`` as an object array."""
        result: npt.NDArray[np.object_] = self._objects[self.codes[rows]]
        return result

    def get(self, rows: npt.ArrayLike) -> list[Any]:
        result: list[Any] = self.objects(as_rows(rows)).tolist()
        return result

    def take(self, rows: npt.ArrayLike) -> Interned:
        return Interned(self.table, self.codes[as_rows(rows)])

    @staticmethod
    def concat(parts: Sequence[Interned]) -> Interned:
        if len(parts) == 1:
            return parts[0]
        index: dict[Hashable, int] = {}
        remapped = []
        for part in parts:
            mapping = np.fromiter(
                (index.setdefault(v, len(index)) for v in part.table), np.uint32, len(part.table)
            )
            remapped.append(mapping[part.codes] if len(part.codes) else part.codes)
        return Interned(tuple(index), np.concatenate(remapped))

    def pruned(self) -> Interned:
        """The same column without table values that no entry uses."""
        used, codes = np.unique(self.codes, return_inverse=True)
        if len(used) == len(self.table):
            return self
        return Interned(tuple(self.table[i] for i in used), codes.astype(np.uint32))

    def is_valid(self) -> bool:
        return not len(self.codes) or int(self.codes.max()) < len(self.table)
