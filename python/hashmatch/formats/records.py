"""Hash-list entries in memory: :class:`HashRecords`, a chunk of packed hashes with parallel
metadata columns, and :class:`SeenIds`, the ids of a file so far (for the duplicate check of
the reader and the writer)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hashmatch._validation import as_codes, check_ids
from hashmatch.errors import HashTypeMismatch, InvalidArgument, InvalidType
from hashmatch.hashtypes import check_qualities

__all__ = ["HashRecords", "SeenIds"]

Codes = npt.NDArray[np.uint8]
Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class HashRecords:
    """A chunk of hash-list entries: packed hashes and parallel metadata columns.

    A column is ``None`` when the file has no such column. Construction checks that every
    column has one value per hash and converts the arrays to the dtypes below.

    Attributes
    ----------
    codes : numpy.ndarray
        uint8 array of shape ``(n, bits // 8)`` (anything :func:`hashmatch.from_hex` accepts
        when constructing, e.g. a list of hex strings).
    ids : numpy.ndarray or None
        int64 ids, non-negative and unique.
    keys : list of (str or None), or None
        External keys (a partner's signal or content id, a file name); None where empty.
    labels : list of tuple of str, or None
        The labels of each entry, in file order (an empty tuple for none).
    sources : list of (str or None), or None
        Where each entry comes from (a collaboration, a bank); None where empty.
    qualities : numpy.ndarray or None
        int16 quality scores 0-100, -1 where missing.
    extras : list of dict or None
        The other columns of each row, by header name, as strings.
    lines : numpy.ndarray or None
        int64 1-based line numbers where each entry starts in the file it was read from.

    Examples
    --------
    >>> from hashmatch.formats import HashRecords
    >>> records = HashRecords(["ff00", "0a0b"], ids=[7, 9], labels=[("spam",), ()])
    >>> len(records), records.codes.shape, records.ids.tolist()
    (2, (2, 2), [7, 9])
    """

    codes: Codes
    ids: Int64s | None = None
    keys: list[str | None] | None = None
    labels: list[tuple[str, ...]] | None = None
    sources: list[str | None] | None = None
    qualities: npt.NDArray[np.int16] | None = None
    extras: list[dict[str, str]] | None = None
    lines: Int64s | None = None

    def __post_init__(self) -> None:
        codes, single = as_codes(self.codes, name="codes")
        if single:
            raise InvalidArgument(
                f"codes: expected a batch of hashes, shape (n, nbytes), got one hash of"
                f" {codes.shape[1]} bytes; wrap it in a list"
            )
        n = len(codes)
        object.__setattr__(self, "codes", codes)
        if self.ids is not None:
            object.__setattr__(self, "ids", check_ids(self.ids, n))
        for name, kinds, expected in (
            ("keys", (str, type(None)), "str or None"),
            ("sources", (str, type(None)), "str or None"),
            ("labels", (tuple,), "a tuple of str"),
            ("extras", (dict,), "a dict of str"),
        ):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _checked_list(value, n, name, kinds, expected))
        if self.labels is not None and not set(
            map(type, itertools.chain.from_iterable(self.labels))
        ) <= {str}:
            i = next(
                i for i, row in enumerate(self.labels) if not all(isinstance(x, str) for x in row)
            )
            raise InvalidType(f"labels[{i}]: expected a tuple of str, got {self.labels[i]!r}")
        if self.qualities is not None:
            object.__setattr__(self, "qualities", check_qualities(self.qualities, n))
        if self.lines is not None:
            lines = np.asarray(self.lines)
            if lines.dtype.kind not in "iu" or lines.shape != (n,):
                raise InvalidArgument(
                    f"lines: expected {n} integer line numbers, got {lines.dtype} of shape"
                    f" {lines.shape}"
                )
            object.__setattr__(self, "lines", lines.astype(np.int64))

    def __len__(self) -> int:
        return len(self.codes)

    @classmethod
    def concat(cls, chunks: Iterable[HashRecords]) -> HashRecords:
        """Join chunks (e.g. everything :func:`read_hashes` yields) into one.

        Parameters
        ----------
        chunks : iterable of HashRecords
            At least one chunk; all of one width and with the same columns.

        Returns
        -------
        HashRecords
            The entries of every chunk, in order.

        Examples
        --------
        >>> from hashmatch.formats import HashRecords
        >>> both = HashRecords.concat([HashRecords(["ff"], ids=[1]), HashRecords(["00"], ids=[2])])
        >>> both.ids.tolist()
        [1, 2]
        """
        parts = list(chunks)
        if not parts:
            raise InvalidArgument("chunks: expected at least one HashRecords, got none")
        for i, part in enumerate(parts):
            if not isinstance(part, HashRecords):
                raise InvalidType(f"chunks[{i}]: expected HashRecords, got {type(part).__name__}")
            if part._present() != parts[0]._present():
                raise InvalidArgument(
                    f"chunks[{i}]: expected the columns of chunks[0] {parts[0]._present()},"
                    f" got {part._present()}"
                )
            if part.codes.shape[1] != parts[0].codes.shape[1]:
                raise HashTypeMismatch(
                    f"chunks[{i}]: expected {parts[0].codes.shape[1]} bytes per hash like"
                    f" chunks[0], got {part.codes.shape[1]}"
                )
        return cls(**joined(parts))  # checks the ids are unique over all chunks

    @classmethod
    def _unchecked(cls, columns: dict[str, Any]) -> HashRecords:
        """Records from columns already of the right types and lengths (no checks)."""
        records = object.__new__(cls)
        for name in cls.__dataclass_fields__:
            object.__setattr__(records, name, columns.get(name))
        return records

    def _present(self) -> tuple[str, ...]:
        """Names of the optional columns that are not None, in field order."""
        names = ("ids", "keys", "labels", "sources", "qualities", "extras", "lines")
        return tuple(name for name in names if getattr(self, name) is not None)


def joined(parts: list[HashRecords]) -> dict[str, Any]:
    """The columns of chunks of one width and the same columns, end to end."""
    columns: dict[str, Any] = {}
    for name in ("codes", *parts[0]._present()):
        values = [getattr(part, name) for part in parts]
        if isinstance(values[0], np.ndarray):
            columns[name] = np.concatenate(values)
        else:
            columns[name] = list(itertools.chain.from_iterable(values))
    return columns


def _checked_list(
    value: object, n: int, name: str, kinds: tuple[type, ...], expected: str
) -> list[Any]:
    """``value`` as a list of ``n`` items of the given types."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise InvalidType(
            f"{name}: expected a list (one item per hash), got {type(value).__name__}"
        )
    items = list(value)
    if len(items) != n:
        raise InvalidArgument(f"{name}: expected {n} items (one per hash), got {len(items)}")
    if not set(map(type, items)) <= set(kinds):  # one pass in C; per-item only on error
        i = next(i for i, item in enumerate(items) if not isinstance(item, kinds))
        raise InvalidType(f"{name}[{i}]: expected {expected}, got {type(items[i]).__name__}")
    return items


class SeenIds:
    """The ids of a file so far with their lines: sorted runs merged like a binary counter,
    so checking and adding m ids costs O(m log n) and memory is 16 bytes per id."""

    def __init__(self) -> None:
        self._runs: list[tuple[Int64s, Int64s]] = []

    def lines_of(self, ids: Int64s) -> Int64s:
        """The line of each id seen before, else 0."""
        out = np.zeros(len(ids), dtype=np.int64)
        for run, lines in self._runs:
            pos = np.minimum(np.searchsorted(run, ids), len(run) - 1)
            hit = run[pos] == ids
            out[hit] = lines[pos[hit]]
        return out

    def add(self, ids: Int64s, lines: Int64s) -> None:
        """Record new (unseen) ids."""
        if len(ids) == 0:
            return
        order = np.argsort(ids)
        self._runs.append((ids[order], lines[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (a, la), (b, lb) = self._runs[-2], self._runs[-1]
            merged, merged_lines = np.concatenate([a, b]), np.concatenate([la, lb])
            order = np.argsort(merged, kind="stable")
            self._runs[-2:] = [(merged[order], merged_lines[order])]
