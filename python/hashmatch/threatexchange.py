"""Drop-in python-threatexchange (pytx) indexes backed by hashmatch, for pytx and HMA.

pytx matches a signal type's hashes through the :class:`SignalTypeIndex` its
``get_index_cls()`` returns; HMA (Hasher-Matcher-Actioner, OpenMediaMatch) builds one per
signal type, pickles it (the base class's ``serialize``) and unpickles it in every matcher
(``deserialize`` is ``pickle.load``). The classes here are such indexes:

=========================  ==========================================  =====================
class                      matches                                     pytx counterpart
=========================  ==========================================  =====================
:class:`PDQIndex`          PDQ, exact, distance <= 31                  ``PDQIndex``,
                           (:class:`hashmatch.MIHIndex`)               ``PDQIndex2``
:class:`PDQFlatIndex`      PDQ, exact, distance <= 52                  ``PDQFlatIndex``
                           (:class:`hashmatch.FlatIndex`)
:class:`VPDQIndex`         vPDQ videos (:class:`hashmatch.VideoIndex`),  ``VPDQIndex``
                           pytx's percentages and default thresholds
=========================  ==========================================  =====================

and the signal types that name them: :class:`PdqSignal` (pytx's, named ``"pdq"`` as pytx's,
for HMA's ``signal_types=[...]``), :class:`HashmatchPdqSignal` (named ``"hashmatch_pdq"``,
for the pytx CLI's extension mechanism, next to pytx's own ``pdq``; see
:mod:`hashmatch.threatexchange_extension`) and, where pytx's vPDQ extension imports (it needs
Meta's ``vpdq`` package), :data:`VPDQSignal`.

The contract (pytx's ``SignalTypeIndex``)
-----------------------------------------
- ``build(entries)``, ``add(signal_str, metadata)``, ``add_all(entries)``, ``query(signal_str)``
  and ``len()`` (the number of entries added: a hash added twice counts twice, as pytx's
  ``PDQIndex``; pytx's ``PDQIndex2`` counts distinct hashes);
- metadata may be any Python object; every entry of a hash added several times is returned;
- distances are Python ints (``SignalSimilarityInfoWithIntDistance``), inclusive thresholds;
- a bad hash raises hashmatch's :class:`~hashmatch.HashFormatError` (a ``ValueError``), or
  :class:`~hashmatch.InvalidType` (a ``TypeError``) for a non-str; ``add_all`` checks every
  hash of its batch before adding any;
- pickling stores hashmatch's own container sections (the search structures, not a list of
  hashes to rebuild from) and the metadata (int metadata as one int64 array), so unpickling
  is a copy, not a build.

Results are sorted by distance, then by insertion order (pytx's order is faiss's).

``import hashmatch`` does not import pytx; importing this module does (``pip install
"hashmatch[threatexchange]"``).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
from threatexchange.signal_type.index import (
    IndexMatch,
    IndexMatchUntyped,
    SignalSimilarityInfo,
    SignalSimilarityInfoWithIntDistance,
    SignalTypeIndex,
)
from threatexchange.signal_type.pdq.signal import PdqSignal as _PytxPdqSignal

from hashmatch.codes import from_hex
from hashmatch.errors import HashFormatError, InvalidType
from hashmatch.formats.vpdq import parse_vpdq
from hashmatch.indexes import FlatIndex, MIHIndex
from hashmatch.videos import VideoIndex

__all__ = [
    "HashmatchPdqSignal",
    "PDQFlatIndex",
    "PDQIndex",
    "PdqSignal",
    "VPDQIndex",
    "VPDQSimilarityInfo",
]

T = TypeVar("T")
_Self = TypeVar("_Self", bound="PDQIndex[Any]")
_VSelf = TypeVar("_VSelf", bound="VPDQIndex[Any]")

PDQ_THRESHOLD = 31
"""pytx's PDQ match threshold (``PDQ_CONFIDENT_MATCH_THRESHOLD``), inclusive."""
PDQ_FLAT_THRESHOLD = 52
"""pytx's ``PDQFlatIndex`` threshold, inclusive."""
VPDQ_QUALITY_THRESHOLD = 50
VPDQ_DISTANCE_THRESHOLD = 31
VPDQ_QUERY_MATCH_THRESHOLD_PERCENT = 80.0
VPDQ_INDEX_MATCH_THRESHOLD_PERCENT = 0.0
_STATE_VERSION = 1
_CHUNK = 1 << 16


# ------------------------------------------------------------------------------- metadata


def _pack_metadata(entries: list[Any]) -> object:
    """The metadata list as pickled: one int64 array when every item is a plain int (HMA's
    ids), else the list itself."""
    if entries and all(type(e) is int for e in entries):
        try:
            return np.array(entries, dtype=np.int64)
        except OverflowError:
            pass
    return entries


def _unpack_metadata(packed: object) -> list[Any]:
    if isinstance(packed, np.ndarray):
        return list(packed.tolist())
    if not isinstance(packed, list):
        raise InvalidType(f"pickled index: bad metadata of type {type(packed).__name__}")
    return packed


def _check_state(state: object, kind: str) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
        raise HashFormatError(f"pickled {kind}: unknown state (another hashmatch version?)")
    return state


# ------------------------------------------------------------------------------------ PDQ


class PDQIndex(SignalTypeIndex[T]):
    """pytx ``SignalTypeIndex`` for PDQ: exact, every entry within ``threshold`` (inclusive).

    Parameters
    ----------
    entries : iterable of (str, metadata), optional
        Initial entries: 64-hex-digit PDQ hashes (either case) and any Python objects.
    threshold : int, optional
        Largest distance reported (default 31, pytx's; :class:`PDQFlatIndex`: 52).

    Examples
    --------
    >>> from hashmatch.threatexchange import PDQIndex
    >>> index = PDQIndex.build([("f" * 64, "a"), ("f" * 64, "b"), ("0" * 64, "c")])
    >>> [(m.similarity_info.distance, m.metadata) for m in index.query("f" * 63 + "0")]
    [(4, 'a'), (4, 'b')]
    >>> len(index)
    3
    """

    DEFAULT_THRESHOLD: ClassVar[int] = PDQ_THRESHOLD

    def __init__(self, entries: Iterable[tuple[str, T]] = (), *, threshold: int | None = None):
        super().__init__()
        self.threshold = self._check_threshold(
            self.DEFAULT_THRESHOLD if threshold is None else threshold
        )
        self._index: MIHIndex | FlatIndex = self._new_backend()
        self._metadata: list[T] = []
        self.add_all(entries)

    @classmethod
    def get_match_threshold(cls) -> int:
        """The default threshold (pytx's ``PDQIndex.get_match_threshold``)."""
        return cls.DEFAULT_THRESHOLD

    @staticmethod
    def _check_threshold(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidType(f"threshold: expected an int, got {type(value).__name__}")
        if not 0 <= int(value) <= 256:
            raise HashFormatError(f"threshold: expected 0 to 256, got {value}")
        return int(value)

    def _new_backend(self) -> MIHIndex | FlatIndex:
        return MIHIndex(256, max_distance=self.threshold)

    @classmethod
    def build(cls: type[_Self], entries: Iterable[tuple[str, Any]]) -> _Self:
        """An index of ``entries`` (pairs of PDQ hex and metadata)."""
        return cls(entries)

    def __len__(self) -> int:
        return len(self._metadata)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} entries, threshold={self.threshold})"

    # ------------------------------------------------------------ writing

    def add(self, signal_str: str, entry: T) -> None:
        """Add one entry; a hash already present keeps its entries (all are returned)."""
        self.add_all(((signal_str, entry),))

    def add_all(self, entries: Iterable[tuple[str, T]]) -> None:
        """Add entries, in batches of 65,536: each batch is checked whole before any of it is
        added (a bad hash raises :class:`~hashmatch.HashFormatError` naming its position)."""
        hashes: list[str] = []
        metadata: list[T] = []
        done = 0
        for pair in entries:
            signal_str, entry = pair
            hashes.append(signal_str)
            metadata.append(entry)
            if len(hashes) == _CHUNK:
                self._add_batch(hashes, metadata, done)
                done += len(hashes)
                hashes, metadata = [], []
        if hashes:
            self._add_batch(hashes, metadata, done)

    def _add_batch(self, hashes: list[str], metadata: list[T], offset: int) -> None:
        for i, h in enumerate(hashes):
            if not isinstance(h, str):
                raise InvalidType(
                    f"entries[{offset + i}]: expected a PDQ hash as a str, got {type(h).__name__}"
                )
        try:
            codes = from_hex(hashes, bits=256)
        except HashFormatError as e:
            raise HashFormatError(f"entries[{offset}:]: {e}") from None
        start = len(self._metadata)
        self._index.add(codes, np.arange(start, start + len(codes), dtype=np.int64))
        self._metadata.extend(metadata)

    # ------------------------------------------------------------ reading

    def query(self, hash: str) -> list[IndexMatchUntyped[SignalSimilarityInfoWithIntDistance, T]]:
        """Every entry within the threshold of ``hash``, nearest first (then by insertion)."""
        return self.query_batch([hash])[0]

    def query_batch(
        self, hashes: Sequence[str]
    ) -> list[list[IndexMatchUntyped[SignalSimilarityInfoWithIntDistance, T]]]:
        """:meth:`query` for many hashes in one search (hashmatch's batch kernels): one list
        per query. An extension: pytx's indexes only have ``query``."""
        if isinstance(hashes, (str, bytes)):
            raise InvalidType("hashes: expected a sequence of hashes, not one str")
        for i, h in enumerate(hashes):
            if not isinstance(h, str):
                raise InvalidType(f"hashes[{i}]: expected a str, got {type(h).__name__}")
        codes = from_hex(list(hashes), bits=256) if len(hashes) else np.zeros((0, 32), np.uint8)
        if not len(self._metadata) or not len(codes):
            return [[] for _ in range(len(codes))]
        lims, distances, ids = self._index.range_search(codes, self.threshold)
        meta = self._metadata
        dist_list: list[int] = distances.tolist()
        id_list: list[int] = ids.tolist()
        bounds: list[int] = lims.tolist()
        return [
            [
                IndexMatchUntyped(SignalSimilarityInfoWithIntDistance(d), meta[i])
                for d, i in zip(dist_list[lo:hi], id_list[lo:hi], strict=True)
            ]
            for lo, hi in itertools.pairwise(bounds)
        ]

    # ------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        if isinstance(self._index, MIHIndex):
            self._index.compact()  # so the pickle holds built tables, nothing to scan
        return {
            "version": _STATE_VERSION,
            "threshold": self.threshold,
            "index": self._index,
            "metadata": _pack_metadata(self._metadata),
        }

    def __setstate__(self, state: object) -> None:
        checked = _check_state(state, type(self).__name__)
        index = checked["index"]
        if not isinstance(index, (MIHIndex, FlatIndex)):
            raise InvalidType(f"pickled {type(self).__name__}: bad index {type(index).__name__}")
        self.threshold = self._check_threshold(checked["threshold"])
        self._index = index
        self._metadata = _unpack_metadata(checked["metadata"])
        if len(self._index) != len(self._metadata):
            raise HashFormatError(
                f"pickled {type(self).__name__}: {len(self._index)} hashes for"
                f" {len(self._metadata)} metadata"
            )


class PDQFlatIndex(PDQIndex[T]):
    """:class:`PDQIndex` at pytx's ``PDQFlatIndex`` threshold (52), on a
    :class:`hashmatch.FlatIndex` (a scan: at 52 no multi-index saves work)."""

    DEFAULT_THRESHOLD: ClassVar[int] = PDQ_FLAT_THRESHOLD

    def _new_backend(self) -> MIHIndex | FlatIndex:
        return FlatIndex(256)


# ----------------------------------------------------------------------------------- vPDQ


def _pytx_vpdq_similarity() -> type[SignalSimilarityInfo] | None:
    """pytx's ``VPDQSimilarityInfo`` when its vPDQ extension imports (it needs ``vpdq``)."""
    if "vpdq" not in sys.modules:
        try:
            importlib.import_module("vpdq")
        except ImportError:
            return None
    try:
        module = importlib.import_module("threatexchange.extensions.vpdq.vpdq_index")
    except ImportError:
        return None
    found: type[SignalSimilarityInfo] = module.VPDQSimilarityInfo
    return found


@dataclass
class _VPDQSimilarityInfo(SignalSimilarityInfo):
    """pytx's ``VPDQSimilarityInfo``, for when its vPDQ extension cannot be imported (without
    Meta's ``vpdq``): the same fields and ``pretty_str``."""

    query_match_percent: float
    compared_match_percent: float

    def pretty_str(self) -> str:
        return f"{self.query_match_percent:.0f}%[{self.compared_match_percent:.0f}%]"


_VPDQSimilarityInfo.__name__ = _VPDQSimilarityInfo.__qualname__ = "VPDQSimilarityInfo"
VPDQSimilarityInfo: type[SignalSimilarityInfo] = _pytx_vpdq_similarity() or _VPDQSimilarityInfo
"""pytx's ``VPDQSimilarityInfo(query_match_percent, compared_match_percent)`` when importable,
else a class of the same shape."""


def _video_frames(
    signal_str: str, quality_threshold: int, name: str
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16], npt.NDArray[np.float64]]:
    """The frames of a pytx vPDQ signal string as pytx's index prepares them: frames below the
    quality threshold dropped, then the later frames of each exact hash."""
    if not isinstance(signal_str, str):
        raise InvalidType(f"{name}: expected a vPDQ signal str, got {type(signal_str).__name__}")
    if not signal_str.strip():
        return np.zeros((0, 32), np.uint8), np.zeros(0, np.int16), np.zeros(0, np.float64)
    frames = parse_vpdq(signal_str, format="pytx", allow_empty=True, name=name)
    keep = np.flatnonzero(frames.qualities >= quality_threshold)
    codes = np.ascontiguousarray(frames.codes[keep])
    if len(codes):
        rows = codes.view(np.dtype((np.void, 32))).ravel()
        _, first = np.unique(rows, return_index=True)
        keep = keep[np.sort(first)]
    return (
        np.ascontiguousarray(frames.codes[keep]),
        frames.qualities[keep].astype(np.int16),
        frames.timestamps[keep].astype(np.float64),
    )


class VPDQIndex(SignalTypeIndex[T]):
    """pytx ``SignalTypeIndex`` for vPDQ videos on :class:`hashmatch.VideoIndex`.

    A query matches a banked video as pytx's ``VPDQIndex``: both sides reduced to the frames of
    quality >= ``quality_threshold`` with distinct hashes; a frame matches within 31
    (inclusive); the entry is returned when ``query_match_percent >=
    query_match_threshold_pct`` and ``compared_match_percent >= index_match_threshold_pct``
    (pytx's defaults 80 and 0), with :data:`VPDQSimilarityInfo`.

    Parameters
    ----------
    quality_threshold : int, default 50
    query_match_threshold_pct : float, default 80.0
    index_match_threshold_pct : float, default 0.0
        As pytx's ``VPDQIndex``.

    Notes
    -----
    A video with no frame left after the quality filter cannot be added (``ValueError``, as
    pytx); such a query matches nothing. Signal strings are pytx's JSON list of
    ``"pdq_hex,quality,timestamp"``, read by :func:`hashmatch.formats.parse_vpdq`, which also
    asks for timestamps that never decrease (pytx does not check them).
    """

    def __init__(
        self,
        quality_threshold: int = VPDQ_QUALITY_THRESHOLD,
        query_match_threshold_pct: float = VPDQ_QUERY_MATCH_THRESHOLD_PERCENT,
        index_match_threshold_pct: float = VPDQ_INDEX_MATCH_THRESHOLD_PERCENT,
    ) -> None:
        super().__init__()
        self.quality_threshold = int(quality_threshold)
        self.query_match_threshold_pct = float(query_match_threshold_pct)
        self.index_match_threshold_pct = float(index_match_threshold_pct)
        self._videos = VideoIndex(
            max_distance=VPDQ_DISTANCE_THRESHOLD, min_quality=self.quality_threshold
        )
        self._metadata: list[T] = []

    @classmethod
    def build(
        cls: type[_VSelf],
        entries: Iterable[tuple[str, Any]],
        quality_threshold: int = VPDQ_QUALITY_THRESHOLD,
        query_match_threshold_pct: float = VPDQ_QUERY_MATCH_THRESHOLD_PERCENT,
        index_match_threshold_pct: float = VPDQ_INDEX_MATCH_THRESHOLD_PERCENT,
    ) -> _VSelf:
        """An index of ``entries`` (pairs of vPDQ signal string and metadata)."""
        index = cls(quality_threshold, query_match_threshold_pct, index_match_threshold_pct)
        index.add_all(entries)
        return index

    def __len__(self) -> int:
        return len(self._metadata)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} videos)"

    def add(self, signal_str: str, entry: T) -> None:
        """Add one video; ``ValueError`` when no frame is left after the quality filter."""
        self.add_all(((signal_str, entry),))

    def add_all(self, entries: Iterable[tuple[str, T]]) -> None:
        """Add videos: all or nothing (every signal string is checked first)."""
        videos = []
        metadata: list[T] = []
        for i, (signal_str, entry) in enumerate(entries):
            codes, qualities, times = _video_frames(
                signal_str, self.quality_threshold, f"entries[{i}]"
            )
            if not len(codes):
                raise HashFormatError(
                    f"entries[{i}]: no frame of quality >= {self.quality_threshold}: an empty"
                    " video after deduping and filtering cannot be indexed"
                )
            videos.append((codes, qualities, _nondecreasing(times)))
            metadata.append(entry)
        if videos:
            start = len(self._metadata)
            self._videos.add_many(videos, ids=list(range(start, start + len(videos))))
            self._metadata.extend(metadata)

    def query(self, query_hash: str) -> list[IndexMatch[T]]:
        """Every banked video matching the query video, best first (hashmatch's order)."""
        codes, qualities, times = _video_frames(query_hash, self.quality_threshold, "query_hash")
        if not len(codes) or not len(self._metadata):
            return []
        result = self._videos.match(
            (codes, qualities, _nondecreasing(times)),
            min_query_pct=self.query_match_threshold_pct,
            min_compared_pct=self.index_match_threshold_pct,
        )
        return [
            IndexMatchUntyped(
                VPDQSimilarityInfo(m.query_pct, m.compared_pct),  # type: ignore[call-arg]
                self._metadata[m.id],
            )
            for m in result
            if m.matched
        ]

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "thresholds": (
                self.quality_threshold,
                self.query_match_threshold_pct,
                self.index_match_threshold_pct,
            ),
            "videos": self._videos,
            "metadata": _pack_metadata(self._metadata),
        }

    def __setstate__(self, state: object) -> None:
        checked = _check_state(state, type(self).__name__)
        videos = checked["videos"]
        if not isinstance(videos, VideoIndex):
            raise InvalidType(f"pickled {type(self).__name__}: bad index {type(videos).__name__}")
        quality, query_pct, index_pct = checked["thresholds"]
        self.quality_threshold = int(quality)
        self.query_match_threshold_pct = float(query_pct)
        self.index_match_threshold_pct = float(index_pct)
        self._videos = videos
        self._metadata = _unpack_metadata(checked["metadata"])


def _nondecreasing(times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The timestamps, or frame numbers when pytx's order left them decreasing (matching
    percentages do not use time; VideoIndex asks for it in order)."""
    if len(times) > 1 and (np.diff(times) < 0).any():
        return np.arange(len(times), dtype=np.float64)
    return times


# ---------------------------------------------------------------------------- signal types


class PdqSignal(_PytxPdqSignal):
    """pytx's ``PdqSignal`` (named ``"pdq"``) matched by :class:`PDQIndex`: for HMA's
    ``signal_types=[...]`` in place of pytx's (same name, so stored banks keep working)."""

    @classmethod
    def get_name(cls) -> str:
        return "pdq"

    @classmethod
    def get_index_cls(cls) -> type[PDQIndex[Any]]:  # type: ignore[override]
        return PDQIndex


class HashmatchPdqSignal(_PytxPdqSignal):
    """PDQ matched by :class:`PDQIndex`, named ``"hashmatch_pdq"``: the pytx CLI extension's
    signal type (the CLI refuses a second signal type named ``"pdq"``)."""

    @classmethod
    def get_name(cls) -> str:
        return "hashmatch_pdq"

    @classmethod
    def get_index_cls(cls) -> type[PDQIndex[Any]]:  # type: ignore[override]
        return PDQIndex


@functools.cache
def vpdq_signal_type() -> type[Any] | None:
    """pytx's ``VPDQSignal`` matched by :class:`VPDQIndex` (named ``"vpdq"``), or ``None``
    when pytx's vPDQ extension cannot be imported (it needs Meta's ``vpdq`` package)."""
    if _pytx_vpdq_similarity() is None:
        return None
    module = importlib.import_module("threatexchange.extensions.vpdq.vpdq")
    base: type[Any] = module.VPDQSignal

    def get_index_cls(cls: type[Any]) -> type[VPDQIndex[Any]]:
        return VPDQIndex

    return type("VPDQSignal", (base,), {"get_index_cls": classmethod(get_index_cls)})
