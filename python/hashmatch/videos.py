"""Video matching: banked videos as vPDQ frames, matched by pytx-exact percentages and by the
time segments that align.

A video is the list of its sampled frames' PDQ hashes (vPDQ: usually one frame a second), each
with a quality and a timestamp (:func:`hashmatch.hash_video` computes them; the vPDQ files of
Meta's and ThreatExchange's tools are read by :mod:`hashmatch.formats`). :class:`VideoIndex`
banks videos under ids, keys, labels and sources, and matches query videos against all of them.

The reference semantics (python-threatexchange 1.2.x, ``match_VPDQ_hash_brute``)
--------------------------------------------------------------------------------
Each side is reduced to its frames with distinct hashes (the first frame of each exact hash,
in order), then to those of quality >= ``min_quality`` (50). Then

- ``query_pct``: % of the query's remaining frames with some frame of the banked video within
  ``max_distance`` (31, inclusive);
- ``compared_pct``: the same from the banked video's side.

``semantics="cpp"`` gives Meta's C++ ``matchTwoHashBrute`` instead: no deduplication, and a
strict ``distance < max_distance``. A side with no frame left after the quality filter has 0%
(pytx raises ZeroDivisionError there, the C++ gives NaN); such a banked video never matches.

Verdict: the thresholds, by side
--------------------------------
``min_compared_pct`` (default 80) and ``min_query_pct`` (default 0): a banked video matches when
at least 80% of *its* frames are found in the upload, whatever the upload holds besides. That
is the vpdq README's verdict and the case that matters most: a short banked clip embedded in a
longer upload (a violent clip inside a compilation or a stream) has a low ``query_pct``.
python-threatexchange's default verdict is the other side (``min_query_pct=80,
min_compared_pct=0``: most of the upload is banked material), which misses that case; pass
those values to get it. ``min_duration`` (seconds, default 0) also asks for one aligned segment
that long, which rejects scattered coincidental frame matches (black frames, slates, logos).

Time segments
-------------
Percentages ignore time. For every banked video with matching frames, hashmatch also reports
where the two videos align: frame matches are voted by time offset ``t_banked - t_query``
(the best offsets are reported), then chained: a segment is a longest run of frame matches
whose query and banked times both increase, with gaps of at most ``max_gap`` seconds, so a
trimmed copy, a clip embedded at an offset, a frame-rate change or a moderate speed-up align,
while reversed or shuffled frames do not. Segments are reported as ``(query_start, query_end,
banked_start, banked_end, frames, mean_distance)``.

Frames shared by many banked videos (black frames, logos) match everywhere; each match reports
how many of its matched query frames matched more than ``common_videos`` banked videos.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from hashmatch._validation import (
    as_codes,
    as_variant_codes,
    check_dihedral,
    check_max_distance,
    check_threads,
)
from hashmatch.backends import backend_from_sections, make_backend
from hashmatch.errors import (
    EntryNotFound,
    HashmatchError,
    IndexFormatError,
    InvalidArgument,
    InvalidType,
)
from hashmatch.schema import check_text, label_set

if TYPE_CHECKING:
    import pandas

__all__ = ["Segment", "VideoEntry", "VideoIndex", "VideoMatch", "VideoMatchResult"]

PDQ_BYTES = 32
DEFAULT_MIN_COMPARED_PCT = 80.0
DEFAULT_MIN_QUERY_PCT = 0.0
DEFAULT_MIN_QUALITY = 50
DEFAULT_COMMON_VIDEOS = 10

Codes = npt.NDArray[np.uint8]


# ------------------------------------------------------------------------------ input frames


class Frames(NamedTuple):
    """Validated frames of one video: codes (n, 32) or (n, 8, 32), qualities, timestamps."""

    codes: Codes
    qualities: npt.NDArray[np.int16]
    timestamps: npt.NDArray[np.float64]


def as_frames(video: object, name: str = "video", *, dihedral: bool = False) -> Frames:
    """Frames of a video given as an object with ``codes``, ``qualities`` and ``timestamps``
    (:class:`hashmatch.HashedVideo`, vPDQ files read by :mod:`hashmatch.formats`) or a tuple
    ``(codes, qualities, timestamps)``; checked: one quality (0-100) and one timestamp
    (finite, >= 0, never decreasing) per frame."""
    if isinstance(video, tuple) and len(video) == 3:
        codes_in, qualities_in, times_in = video
    elif all(hasattr(video, a) for a in ("codes", "qualities", "timestamps")):
        codes_in = video.codes  # type: ignore[attr-defined]
        qualities_in = video.qualities  # type: ignore[attr-defined]
        times_in = video.timestamps  # type: ignore[attr-defined]
    else:
        raise InvalidType(
            f"{name}: expected frames with codes, qualities and timestamps (a HashedVideo, a"
            f" vPDQ file's frames or a (codes, qualities, timestamps) tuple), got"
            f" {type(video).__name__}"
        )
    if dihedral:
        codes, _ = as_variant_codes(codes_in, name=f"{name}.codes", nbytes=PDQ_BYTES)
    else:
        if isinstance(codes_in, np.ndarray) and codes_in.ndim == 3:
            raise InvalidArgument(
                f"{name}.codes: 8 variants per frame (shape {codes_in.shape}) need dihedral=True"
            )
        codes, _ = as_codes(codes_in, name=f"{name}.codes", nbytes=PDQ_BYTES)
    n = len(codes)
    qualities = np.asarray(qualities_in)
    times = np.asarray(times_in)
    for label, arr in (("qualities", qualities), ("timestamps", times)):
        if arr.shape != (n,):
            raise InvalidArgument(
                f"{name}.{label}: expected one per frame, shape ({n},), got {arr.shape}"
            )
    if n and qualities.dtype.kind not in "iu":
        raise InvalidType(f"{name}.qualities: expected integers, got dtype {qualities.dtype}")
    if n and (qualities.min() < 0 or qualities.max() > 100):
        bad = int(np.flatnonzero((qualities < 0) | (qualities > 100))[0])
        raise InvalidArgument(
            f"{name}.qualities[{bad}]: expected a quality from 0 to 100, got {qualities[bad]}"
        )
    if n and times.dtype.kind not in "iuf":
        raise InvalidType(f"{name}.timestamps: expected numbers, got dtype {times.dtype}")
    times = times.astype(np.float64)
    if n and not np.isfinite(times).all():
        bad = int(np.flatnonzero(~np.isfinite(times))[0])
        raise InvalidArgument(f"{name}.timestamps[{bad}]: expected a finite time, got {times[bad]}")
    if n and times.min() < 0:
        bad = int(np.argmin(times))
        raise InvalidArgument(f"{name}.timestamps[{bad}]: expected seconds >= 0, got {times[bad]}")
    if n > 1 and (np.diff(times) < 0).any():
        bad = int(np.flatnonzero(np.diff(times) < 0)[0]) + 1
        raise InvalidArgument(
            f"{name}.timestamps[{bad}]: timestamps must never decrease, got {times[bad]} after"
            f" {times[bad - 1]}"
        )
    return Frames(np.ascontiguousarray(codes), qualities.astype(np.int16), times)


def first_occurrences(codes: Codes) -> npt.NDArray[np.bool_]:
    """True for the first frame of each exact hash, in order (pytx's ``dedupe``)."""
    if not len(codes):
        return np.zeros(0, bool)
    rows = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.shape[1]))).ravel()
    _, first = np.unique(rows, return_index=True)
    out = np.zeros(len(codes), bool)
    out[first] = True
    return out


# ------------------------------------------------------------------------------ the bank


@dataclass(frozen=True, eq=False)
class _Bank:
    """One immutable state of a VideoIndex (readers take it once; writers build the next).

    Videos are rows; their frames are consecutive rows of the frame arrays
    (``video_start[v]:video_start[v + 1]``). Distinct frame hashes over every video are the
    unique codes, searched by ``index`` (ids: unique numbers); ``unique_frames`` lists, per
    unique hash, its frames (CSR over ``unique_start``), so a hash in two videos keeps both.
    """

    ids: npt.NDArray[np.int64]
    keys: tuple[str | None, ...]
    labels: tuple[tuple[str, ...], ...]
    sources: tuple[str | None, ...]
    alive: npt.NDArray[np.bool_]
    video_start: npt.NDArray[np.int64]
    frame_unique: npt.NDArray[np.int64]
    frame_time: npt.NDArray[np.float64]
    frame_quality: npt.NDArray[np.int16]
    frame_first: npt.NDArray[np.bool_]
    unique_codes: Codes
    unique_start: npt.NDArray[np.int64]
    unique_frames: npt.NDArray[np.int64]
    index: Any
    next_id: int
    index_planned: int = 0  # distinct hashes the frame index was planned for (re-planned at 2x)

    @property
    def nvideos(self) -> int:
        return len(self.ids)

    @property
    def frame_video(self) -> npt.NDArray[np.int64]:
        counts = np.diff(self.video_start)
        return np.repeat(np.arange(self.nvideos, dtype=np.int64), counts)

    @cached_property
    def live_ids(self) -> frozenset[int]:
        return frozenset(self.ids[self.alive].tolist())

    @cached_property
    def live_keys(self) -> frozenset[str]:
        return frozenset(k for k, a in zip(self.keys, self.alive.tolist(), strict=True) if a and k)

    def row_of(self, video_id: int) -> int:
        rows = np.flatnonzero((self.ids == video_id) & self.alive)
        return int(rows[0]) if len(rows) else -1

    def row_of_key(self, key: str) -> int:
        for row, k in enumerate(self.keys):
            if k == key and self.alive[row]:
                return row
        return -1


def _empty_bank() -> _Bank:
    z64 = np.zeros(0, np.int64)
    return _Bank(
        ids=z64, keys=(), labels=(), sources=(), alive=np.zeros(0, bool),
        video_start=np.zeros(1, np.int64), frame_unique=z64, frame_time=np.zeros(0),
        frame_quality=np.zeros(0, np.int16), frame_first=np.zeros(0, bool),
        unique_codes=np.zeros((0, PDQ_BYTES), np.uint8), unique_start=np.zeros(1, np.int64),
        unique_frames=z64, index=None, next_id=0,
    )  # fmt: skip


def _first_in_video(
    frame_unique: npt.NDArray[np.int64], video_start: npt.NDArray[np.int64], nu: int
) -> npt.NDArray[np.bool_]:
    """True for the first frame of each distinct hash within each video."""
    video = np.repeat(np.arange(len(video_start) - 1), np.diff(video_start))
    _, first = np.unique(video * max(nu, 1) + frame_unique, return_index=True)
    out = np.zeros(len(frame_unique), bool)
    out[first] = True
    return out


def _csr(groups: npt.NDArray[np.int64], n: int) -> tuple[npt.NDArray[np.int64], ...]:
    """(starts, members): members of group g are ``members[starts[g]:starts[g + 1]]``."""
    order = np.argsort(groups, kind="stable").astype(np.int64)
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(groups, minlength=n), out=starts[1:])
    return starts, order


class VideoEntry(NamedTuple):
    """One banked video: its id, key, labels, source and frames."""

    id: int
    key: str | None
    labels: tuple[str, ...]
    source: str | None
    codes: Codes
    qualities: npt.NDArray[np.int16]
    timestamps: npt.NDArray[np.float64]


class Segment(NamedTuple):
    """A time span where the query and a banked video align: query seconds
    ``[query_start, query_end]`` show banked seconds ``[banked_start, banked_end]``."""

    query_start: float
    query_end: float
    banked_start: float
    banked_end: float
    frames: int
    """Query frames in the segment."""
    mean_distance: float

    @property
    def duration(self) -> float:
        """Seconds the segment spans on both sides (the shorter span): a long stretch of the
        query on one banked frame (a black or frozen frame) is no long alignment."""
        return min(self.query_end - self.query_start, self.banked_end - self.banked_start)


class VideoMatch(NamedTuple):
    """One (query video, banked video) pair with some matching frames."""

    query: int
    id: int
    key: str | None
    labels: tuple[str, ...]
    source: str | None
    query_pct: float
    compared_pct: float
    query_matched: int
    query_frames: int
    compared_matched: int
    compared_frames: int
    matched: bool
    """The verdict: both percentages and the longest segment pass the thresholds."""
    segments: tuple[Segment, ...]
    offsets: tuple[float, ...]
    """The best time offsets ``t_banked - t_query`` by vote, best first."""
    common_frames: int
    """Matched query frames that matched more than ``common_videos`` banked videos."""
    transform: str | None = None
    """With ``dihedral=True``: the transform most of the matched frames matched on."""

    @property
    def longest(self) -> float:
        """Duration (query seconds) of the longest segment, 0 without any."""
        return max((s.duration for s in self.segments), default=0.0)


@dataclass(frozen=True)
class VideoMatchResult:
    """Every banked video with frames matching a query video (or a batch of them), best first
    per query: verdict, then ``compared_pct``, then ``query_pct``, then id."""

    rows: tuple[VideoMatch, ...]
    nqueries: int
    thresholds: Mapping[str, float]

    def __iter__(self) -> Iterator[VideoMatch]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> VideoMatch:
        return self.rows[i]

    def matches(self) -> list[VideoMatch]:
        """The pairs whose verdict is a match."""
        return [r for r in self.rows if r.matched]

    def to_pandas(self) -> pandas.DataFrame:
        """One row per pair: every field of :class:`VideoMatch` but segments (see
        :meth:`segments_frame`), plus the longest segment's duration."""
        import pandas as pd

        fields = [f for f in VideoMatch._fields if f != "segments"]
        data = {f: [getattr(r, f) for r in self.rows] for f in fields}
        data["longest"] = [r.longest for r in self.rows]
        return pd.DataFrame(data)

    def segments_frame(self) -> pandas.DataFrame:
        """One row per segment: query, id, key and the :class:`Segment` fields."""
        import pandas as pd

        rows = [(r.query, r.id, r.key, *s) for r in self.rows for s in r.segments]
        return pd.DataFrame(rows, columns=["query", "id", "key", *Segment._fields])

    def __repr__(self) -> str:
        return (
            f"VideoMatchResult({len(self.rows)} candidate videos, {len(self.matches())} matched,"
            f" {self.nqueries} queries)"
        )


class VideoIndex:
    """Banked videos (vPDQ frames), matched with python-threatexchange's percentages and the
    time segments where they align. See :mod:`hashmatch.videos`.

    Parameters
    ----------
    name : str, optional
        Reported in ``repr`` and saved with the index.
    max_distance : int, default 31
        Frame match radius (inclusive), PDQ's.
    min_quality : int, default 50
        Frames of lower quality are left out of matching, on both sides.

    Examples
    --------
    >>> import numpy as np
    >>> frames = hm.datasets.random_codes(10, seed=1)
    >>> bank = hm.VideoIndex()
    >>> vid = bank.add((frames, np.full(10, 100), np.arange(10.0)), key="clip")
    >>> upload = (frames[3:8], np.full(5, 100), np.arange(5.0) + 20)  # trimmed, re-timed
    >>> m = bank.match(upload)[0]
    >>> m.key, m.query_pct, m.compared_pct, m.matched
    ('clip', 100.0, 50.0, False)
    >>> s = m.segments[0]
    >>> (s.query_start, s.query_end, s.banked_start, s.banked_end, s.frames)
    (20.0, 24.0, 3.0, 7.0, 5)
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        max_distance: int = 31,
        min_quality: int = DEFAULT_MIN_QUALITY,
    ) -> None:
        self._name = check_text(name, "name")
        self._max_distance = check_max_distance(max_distance, 256)
        self._min_quality = _check_quality(min_quality, "min_quality")
        self._bank = _empty_bank()
        self._lock = threading.Lock()
        # videos added since the last read, merged into the bank by the next read (so a loop
        # of add() calls rebuilds the frame structures once, not once per video)
        self._pending: list[tuple[Frames, int, str | None, tuple[str, ...], str | None]] = []
        self._pending_ids: set[int] = set()
        self._pending_keys: set[str] = set()
        self._pending_next = 0

    # ------------------------------------------------------------ reading

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def max_distance(self) -> int:
        return self._max_distance

    @property
    def min_quality(self) -> int:
        return self._min_quality

    def __len__(self) -> int:
        return int(self._settled().alive.sum())

    def __contains__(self, video_id: object) -> bool:
        if isinstance(video_id, bool) or not isinstance(video_id, (int, np.integer)):
            return False
        return self._settled().row_of(int(video_id)) >= 0

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        """Ids of the banked videos, ascending."""
        bank = self._settled()
        return np.sort(bank.ids[bank.alive])

    @property
    def frames(self) -> int:
        """Frames banked (of every live video)."""
        bank = self._settled()
        counts = np.diff(bank.video_start)
        return int(counts[bank.alive].sum())

    def __repr__(self) -> str:
        bank = self._settled()
        return (
            f"VideoIndex({self._name!r}: {len(self)} videos, {self.frames} frames,"
            f" {len(bank.unique_codes)} distinct frame hashes)"
        )

    def get(self, video_id: int) -> VideoEntry:
        """The banked video with this id."""
        bank = self._settled()
        row = bank.row_of(int(video_id))
        if row < 0:
            raise EntryNotFound(f"video_id: no banked video has id {video_id}")
        return self._entry(bank, row)

    def get_key(self, key: str) -> VideoEntry:
        """The banked video with this key."""
        bank = self._settled()
        row = bank.row_of_key(key)
        if row < 0:
            raise EntryNotFound(f"key: no banked video has key {key!r}")
        return self._entry(bank, row)

    def entries(self) -> Iterator[VideoEntry]:
        """Every banked video, in id order (of one consistent state of the index).

        Examples
        --------
        >>> import numpy as np
        >>> bank = hm.VideoIndex()
        >>> _ = bank.add((hm.datasets.random_codes(3, seed=1), [90] * 3, [0, 1, 2]), id=7)
        >>> [(e.id, len(e.codes)) for e in bank.entries()]
        [(7, 3)]
        """
        bank = self._settled()
        live = np.flatnonzero(bank.alive)
        for row in live[np.argsort(bank.ids[live], kind="stable")].tolist():
            yield self._entry(bank, row)

    @staticmethod
    def _entry(bank: _Bank, row: int) -> VideoEntry:
        lo, hi = int(bank.video_start[row]), int(bank.video_start[row + 1])
        return VideoEntry(
            int(bank.ids[row]), bank.keys[row], bank.labels[row], bank.sources[row],
            bank.unique_codes[bank.frame_unique[lo:hi]], bank.frame_quality[lo:hi].copy(),
            bank.frame_time[lo:hi].copy(),
        )  # fmt: skip

    # ------------------------------------------------------------ writing

    def add(
        self,
        video: object,
        *,
        key: str | None = None,
        labels: object = (),
        source: str | None = None,
        id: int | None = None,
    ) -> int:
        """Bank one video (its frames: a :class:`hashmatch.HashedVideo`, frames read from a
        vPDQ file, or ``(codes, qualities, timestamps)``); returns its id."""
        return int(
            self.add_many(
                [video],
                keys=[key],
                labels=[labels],
                sources=[source],
                ids=None if id is None else [id],
            )[0]
        )

    def add_many(
        self,
        videos: Sequence[object],
        *,
        keys: Sequence[str | None] | None = None,
        labels: Sequence[object] | None = None,
        sources: Sequence[str | None] | None = None,
        ids: Sequence[int] | None = None,
    ) -> npt.NDArray[np.int64]:
        """Bank several videos in one update (one rebuild of the frame structures); all or
        nothing: on an error nothing is banked. Returns their ids."""
        if isinstance(videos, (str, bytes)) or not isinstance(videos, Sequence):
            raise InvalidType(f"videos: expected a sequence of videos, got {type(videos).__name__}")
        n = len(videos)
        frames = [as_frames(v, f"videos[{i}]") for i, v in enumerate(videos)]
        key_list = _per_video(keys, n, "keys")
        label_list = [
            label_set(v, f"labels[{i}]") for i, v in enumerate(_per_video(labels, n, "labels", ()))
        ]
        source_list = [
            check_text(s, f"sources[{i}]") for i, s in enumerate(_per_video(sources, n, "sources"))
        ]
        key_list = [check_text(k, f"keys[{i}]") for i, k in enumerate(key_list)]
        with self._lock:
            bank = self._bank
            next_id = max(bank.next_id, self._pending_next)
            taken_ids = bank.live_ids | self._pending_ids
            new_ids = self._new_ids(next_id, taken_ids, ids, n)
            taken = bank.live_keys | self._pending_keys
            seen: set[str] = set()
            for i, k in enumerate(key_list):
                if k is not None and (k in taken or k in seen):
                    raise InvalidArgument(f"keys[{i}]: key {k!r} is already banked")
                if k is not None:
                    seen.add(k)
            self._pending.extend(
                zip(frames, new_ids.tolist(), key_list, label_list, source_list, strict=True)
            )
            self._pending_ids.update(new_ids.tolist())
            self._pending_keys.update(seen)
            if n:
                self._pending_next = max(next_id, int(new_ids.max()) + 1)
        return new_ids

    def _settled(self) -> _Bank:
        """The current bank, with videos added since the last read merged in."""
        if self._pending:
            with self._lock:
                self._merge_pending()
        return self._bank

    def _merge_pending(self) -> None:
        """Merge the pending videos into the bank (the caller holds the lock)."""
        if not self._pending:
            return
        frames, ids, keys, labels, sources = zip(*self._pending, strict=True)
        self._bank = _extended(
            self._bank, list(frames), np.array(ids, np.int64), list(keys), list(labels),
            list(sources),
        )  # fmt: skip
        self._pending = []
        self._pending_ids = set()
        self._pending_keys = set()

    @staticmethod
    def _new_ids(
        next_id: int, taken: frozenset[int] | set[int], ids: Sequence[int] | None, n: int
    ) -> npt.NDArray[np.int64]:
        if ids is None:
            if next_id + n - 1 > MAX_ID:
                raise InvalidArgument(
                    f"ids: default ids would pass {MAX_ID} (they continue after the largest id);"
                    " pass ids= explicitly"
                )
            return np.arange(next_id, next_id + n, dtype=np.int64)
        items = list(ids)
        if len(items) != n or not all(_is_int(v) for v in items):
            raise InvalidArgument(f"ids: expected {n} integers, got {ids!r}")
        bad = [v for v in items if not 0 <= int(v) <= MAX_ID]
        if bad:
            raise InvalidArgument(f"ids: expected ids from 0 to {MAX_ID}, got {int(bad[0])}")
        arr = np.array([int(v) for v in items], dtype=np.int64)
        if len(np.unique(arr)) != n:
            raise InvalidArgument("ids: an id is given twice")
        for i, v in enumerate(arr.tolist()):
            if v in taken:
                raise InvalidArgument(f"ids[{i}]: id {v} is already banked (remove it first)")
        return arr

    def remove(
        self, ids: int | Iterable[int] | None = None, *, keys: str | Iterable[str] | None = None
    ) -> int:
        """Remove banked videos by id and/or key (one or an iterable of them; unknown ones
        ignored); returns how many."""
        id_set = set() if ids is None else set(_id_list(ids))
        key_set = set() if keys is None else set(_key_list(keys))
        with self._lock:
            self._merge_pending()
            bank = self._bank
            hit = bank.alive & (
                np.isin(bank.ids, list(id_set)) | np.array([k in key_set for k in bank.keys], bool)
            )
            if not hit.any():
                return 0
            alive = bank.alive & ~hit
            bank = _replace(bank, alive=alive)
            if int((~alive).sum()) > max(len(alive) // 4, 16):
                bank = _compacted(bank)
            self._bank = bank
            return int(hit.sum())

    def update(
        self,
        video_id: int,
        *,
        video: object = None,
        labels: object = None,
        source: object = ...,
    ) -> None:
        """Change a banked video's frames, labels or source (its id and key stay)."""
        with self._lock:
            self._merge_pending()
            bank = self._bank
            row = bank.row_of(int(video_id))
            if row < 0:
                raise EntryNotFound(f"video_id: no banked video has id {video_id}")
            entry = self._entry(bank, row)
            new_labels = entry.labels if labels is None else label_set(labels, "labels")
            new_source = entry.source if source is ... else check_text(source, "source")
            frames = (
                Frames(entry.codes, entry.qualities, entry.timestamps)
                if video is None
                else as_frames(video, "video")
            )
            alive = bank.alive.copy()
            alive[row] = False
            bank = _replace(bank, alive=alive)
            self._bank = _extended(
                bank, [frames], np.array([entry.id], np.int64), [entry.key], [new_labels],
                [new_source],
            )  # fmt: skip

    def compact(self) -> None:
        """Drop removed videos' frames and hashes (done automatically past a quarter)."""
        with self._lock:
            self._merge_pending()
            self._bank = _compacted(self._bank)

    # ------------------------------------------------------------ matching

    def match(
        self,
        video: object,
        *,
        max_distance: int | None = None,
        min_quality: int | None = None,
        min_query_pct: float = DEFAULT_MIN_QUERY_PCT,
        min_compared_pct: float = DEFAULT_MIN_COMPARED_PCT,
        min_duration: float = 0.0,
        max_gap: float | None = None,
        semantics: Literal["pytx", "cpp"] = "pytx",
        dihedral: bool = False,
        common_videos: int = DEFAULT_COMMON_VIDEOS,
        threads: int | None = None,
    ) -> VideoMatchResult:
        """Every banked video with a frame within ``max_distance`` of the query's, with both
        percentages, the verdict and the aligned time segments.

        Parameters
        ----------
        video : frames, or a list of frames
            The query video (a :class:`hashmatch.HashedVideo`, vPDQ frames, or ``(codes,
            qualities, timestamps)``); or a list of alternative hashings of one upload (e.g.
            with and without its black borders), each banked video then reported with the
            better of them.
        max_distance, min_quality : int, optional
            Frame radius (inclusive) and quality floor; default the index's (31, 50).
        min_query_pct, min_compared_pct : float, default 0 and 80
            Verdict thresholds, by side: the % of the query's frames found in the banked
            video, and the % of the banked video's frames found in the query. The default
            catches a banked clip embedded in a longer upload; python-threatexchange's verdict
            is ``min_query_pct=80, min_compared_pct=0``.
        min_duration : float, default 0
            Also require an aligned segment at least this long (seconds).
        max_gap : float, optional
            Largest gap (seconds) inside a segment; default 3 sampling intervals (3 s at vPDQ's
            1 frame a second).
        semantics : {"pytx", "cpp"}
            ``"pytx"``: python-threatexchange's numbers (distinct frames, distance <=
            max_distance); ``"cpp"``: Meta's ``matchTwoHashBrute`` (every frame, distance <
            max_distance).
        dihedral : bool, default False
            The query's frames are 8-variant stacks (``hash_video(..., dihedral=True)``): a
            frame matches by its best variant (rotated and mirrored uploads).
        common_videos : int, default 10
            A query frame that matches more banked videos than this is counted in each
            match's ``common_frames`` (black frames, logos, slates).
        threads : int, optional
            Threads for the frame search.
        """
        return self.match_many(
            [video],
            max_distance=max_distance,
            min_quality=min_quality,
            min_query_pct=min_query_pct,
            min_compared_pct=min_compared_pct,
            min_duration=min_duration,
            max_gap=max_gap,
            semantics=semantics,
            dihedral=dihedral,
            common_videos=common_videos,
            threads=threads,
        )

    def match_many(
        self,
        videos: Sequence[object],
        *,
        max_distance: int | None = None,
        min_quality: int | None = None,
        min_query_pct: float = DEFAULT_MIN_QUERY_PCT,
        min_compared_pct: float = DEFAULT_MIN_COMPARED_PCT,
        min_duration: float = 0.0,
        max_gap: float | None = None,
        semantics: Literal["pytx", "cpp"] = "pytx",
        dihedral: bool = False,
        common_videos: int = DEFAULT_COMMON_VIDEOS,
        threads: int | None = None,
    ) -> VideoMatchResult:
        """:meth:`match` for a batch of query videos (``VideoMatch.query`` numbers them)."""
        settings, queries = prepare_match(
            videos,
            self._max_distance,
            self._min_quality,
            max_distance=max_distance,
            min_quality=min_quality,
            min_query_pct=min_query_pct,
            min_compared_pct=min_compared_pct,
            min_duration=min_duration,
            max_gap=max_gap,
            semantics=semantics,
            dihedral=dihedral,
            common_videos=common_videos,
            threads=threads,
        )
        # one consistent state for the whole call
        return combine_candidates([self.candidates(queries, settings)], settings, len(queries))

    def candidates(
        self, queries: Sequence[Sequence[Frames]], settings: MatchSettings
    ) -> list[list[Candidates]]:
        """The banked videos with frames matching each hashing of each query video, before
        ``common_frames`` (which needs every video of a partitioned bank): per query, per
        hashing, a :class:`Candidates`. :func:`combine_candidates` of the candidates of the
        partitions of a bank gives what :meth:`match_many` over the whole bank gives.

        Examples
        --------
        >>> import numpy as np
        >>> from hashmatch.videos import combine_candidates, prepare_match
        >>> frames = hm.datasets.random_codes(6, seed=3)
        >>> bank = hm.VideoIndex()
        >>> _ = bank.add((frames, np.full(6, 90), np.arange(6.0)))
        >>> settings, queries = prepare_match([(frames[:3], np.full(3, 90), np.arange(3.0))])
        >>> found = bank.candidates(queries, settings)
        >>> found[0][0].matches[0].compared_pct, found[0][0].frames[0].tolist()
        (50.0, [0, 1, 2])
        >>> combine_candidates([found], settings, 1)[0].query_pct
        100.0
        """
        bank = self._settled()
        return [
            [_match_one(bank, frames, number, settings) for frames in alternatives]
            for number, alternatives in enumerate(queries)
        ]

    # ------------------------------------------------------------ files

    def save(self, path: Any, *, key: bytes | None = None) -> None:
        """Write the index to a hashmatch file, atomically (see :func:`hashmatch.save`)."""
        from hashmatch.io import save

        save(self, path, key=key)

    @staticmethod
    def load(
        path: Any, *, mmap: bool = False, verify: bool = True, key: bytes | None = None
    ) -> VideoIndex:
        """Read a file :meth:`save` wrote (``mmap=True``: arrays read in place)."""
        from hashmatch.io import load

        obj = load(path, mmap=mmap, verify=verify, key=key)
        if not isinstance(obj, VideoIndex):
            raise IndexFormatError(f"{path}: holds a {type(obj).__name__}, not a VideoIndex")
        return obj

    def _to_sections(self) -> tuple[dict[str, Any], dict[str, Any]]:
        with self._lock:
            self._merge_pending()
            bank = self._bank
            if not bank.alive.all():
                bank = _compacted(bank)
                self._bank = bank
        meta: dict[str, Any] = {
            "kind": "VideoIndex",
            "video_format": 1,
            "name": self._name,
            "max_distance": self._max_distance,
            "min_quality": self._min_quality,
            "next_id": bank.next_id,
            "keys": list(bank.keys),
            "labels": [list(x) for x in bank.labels],
            "sources": list(bank.sources),
        }
        sections: dict[str, Any] = {
            "ids": bank.ids, "video_start": bank.video_start, "frame_unique": bank.frame_unique,
            "frame_time": bank.frame_time, "frame_quality": bank.frame_quality,
            "unique_codes": bank.unique_codes,
        }  # fmt: skip
        if bank.index is not None:
            index_meta, index_sections = bank.index.to_sections()
            meta["index"] = index_meta
            sections.update({f"index.{k}": v for k, v in index_sections.items()})
        return meta, sections

    @classmethod
    def _from_sections(
        cls, meta: dict[str, Any], sections: Mapping[str, Any], where: str, verify: bool = True
    ) -> VideoIndex:
        from hashmatch._backend import typed_section

        try:
            index = cls(
                name=meta.get("name"),
                max_distance=meta["max_distance"],
                min_quality=meta["min_quality"],
            )
            ids = typed_section(sections["ids"], "<i8", "ids", where)
            start = typed_section(sections["video_start"], "<i8", "video_start", where)
            frame_unique = typed_section(sections["frame_unique"], "<i8", "frame_unique", where)
            times = typed_section(sections["frame_time"], "<f8", "frame_time", where)
            quality = typed_section(sections["frame_quality"], "<i2", "frame_quality", where)
            codes = np.frombuffer(sections["unique_codes"], np.uint8).reshape(-1, PDQ_BYTES)
            keys = tuple(meta["keys"])
            labels = tuple(meta["labels"])
            sources = tuple(meta["sources"])
            next_id = int(meta["next_id"])
        except (KeyError, TypeError, ValueError) as error:
            raise IndexFormatError(f"{where}: not a valid VideoIndex ({error})") from None
        n, nf, nu = len(ids), len(frame_unique), len(codes)
        if not (
            len(start) == n + 1 and start[0] == 0 and start[-1] == nf
            and (np.diff(start) >= 0).all() and len(times) == nf and len(quality) == nf
            and len(keys) == n and len(labels) == n and len(sources) == n
            and (nf == 0 or (frame_unique.min() >= 0 and frame_unique.max() < nu))
        ):  # fmt: skip
            raise IndexFormatError(f"{where}: VideoIndex arrays do not fit together")
        _check_saved_columns(where, ids, keys, labels, sources, times, quality, start)
        labels = tuple(tuple(x) for x in labels)
        if verify and nu:
            rows = np.ascontiguousarray(codes).view(np.dtype((np.void, PDQ_BYTES))).ravel()
            if len(np.unique(rows)) != nu:
                raise IndexFormatError(f"{where}: VideoIndex distinct frame hashes repeat")
        if n:
            next_id = max(next_id, int(ids.max()) + 1)
        backend = None
        if "index" in meta:
            prefix = "index."
            backend = backend_from_sections(
                meta["index"],
                {k[len(prefix) :]: v for k, v in sections.items() if k.startswith(prefix)},
                f"{where} (frame index)",
                verify=verify,
            )
            if getattr(backend, "name", None) not in ("flat", "mih"):
                raise IndexFormatError(f"{where}: the frame index must be exact (flat or mih)")
            if len(backend) != nu:
                raise IndexFormatError(f"{where}: frame index holds {len(backend)} of {nu} hashes")
            if verify:
                stored_ids, stored_codes = cast(Any, backend).contents()
                if not (
                    np.array_equal(np.sort(stored_ids), np.arange(nu))
                    and np.array_equal(stored_codes, codes[stored_ids])
                ):
                    raise IndexFormatError(
                        f"{where}: the frame index does not hold the distinct frame hashes"
                    )
        elif nu:
            raise IndexFormatError(f"{where}: VideoIndex frame hashes without a frame index")
        first = _first_in_video(frame_unique.astype(np.int64), start, nu)
        ustart, uframes = _csr(frame_unique.astype(np.int64), nu)
        index._bank = _Bank(
            ids=ids, keys=keys, labels=labels, sources=sources, alive=np.ones(n, bool),
            video_start=start, frame_unique=frame_unique, frame_time=times, frame_quality=quality,
            frame_first=first, unique_codes=codes, unique_start=ustart, unique_frames=uframes,
            index=backend, next_id=next_id, index_planned=nu,
        )  # fmt: skip
        return index

    def __reduce__(self) -> tuple[Any, ...]:
        meta, sections = self._to_sections()
        return (
            _unpickle,
            (
                meta,
                {
                    k: bytes(np.ascontiguousarray(v).data)
                    if not isinstance(v, (bytes, bytearray))
                    else v
                    for k, v in sections.items()
                },
            ),
        )


def _unpickle(meta: dict[str, Any], sections: dict[str, Any]) -> VideoIndex:
    return VideoIndex._from_sections(meta, sections, "pickled VideoIndex")


def _check_saved_columns(
    where: str,
    ids: npt.NDArray[np.int64],
    keys: tuple[Any, ...],
    labels: tuple[Any, ...],
    sources: tuple[Any, ...],
    times: npt.NDArray[np.float64],
    quality: npt.NDArray[np.int16],
    start: npt.NDArray[np.int64],
) -> None:
    """Raise IndexFormatError unless a saved bank's columns hold what a live one can."""

    def bad(what: str) -> IndexFormatError:
        return IndexFormatError(f"{where}: VideoIndex {what}")

    if len(ids) and (ids.min() < 0 or len(np.unique(ids)) != len(ids)):
        raise bad("ids must be unique and >= 0")
    if not all(k is None or isinstance(k, str) for k in keys):
        raise bad("keys must be strings or null")
    given = [k for k in keys if k is not None]
    if len(set(given)) != len(given):
        raise bad("keys must be unique")
    if not all(s is None or isinstance(s, str) for s in sources):
        raise bad("sources must be strings or null")
    for lab in labels:
        try:
            ok = isinstance(lab, list) and label_set(lab, "labels") == tuple(lab)
        except HashmatchError:
            ok = False
        if not ok:
            raise bad("labels must be lists of distinct, non-empty strings")
    if len(quality) and (quality.min() < 0 or quality.max() > 100):
        raise bad("frame qualities must be 0 to 100")
    if len(times) and not (np.isfinite(times).all() and times.min() >= 0):
        raise bad("frame times must be finite seconds >= 0")
    steps = np.diff(times)
    within = np.ones(len(steps), bool)
    within[start[1:-1][(start[1:-1] > 0) & (start[1:-1] < len(times))] - 1] = False
    if (steps[within] < 0).any():
        raise bad("frame times must never decrease within a video")


# ------------------------------------------------------------------------------ building


def _replace(bank: _Bank, **changes: Any) -> _Bank:
    values = {f: getattr(bank, f) for f in bank.__dataclass_fields__}
    values.update(changes)
    return _Bank(**values)


def _extended(
    bank: _Bank,
    frames: list[Frames],
    ids: npt.NDArray[np.int64],
    keys: list[str | None],
    labels: list[tuple[str, ...]],
    sources: list[str | None],
) -> _Bank:
    """The bank with these videos added: new distinct hashes join the frame index (an exact
    search at distance 0 finds those already there), the CSR is rebuilt."""
    all_codes = (
        np.concatenate([f.codes for f in frames]) if frames else np.zeros((0, PDQ_BYTES), np.uint8)
    )
    nu = len(bank.unique_codes)
    # distinct hashes among the new frames
    rows = np.ascontiguousarray(all_codes).view(np.dtype((np.void, PDQ_BYTES))).ravel()
    distinct, inverse = np.unique(rows, return_inverse=True)
    distinct_codes = distinct.view(np.uint8).reshape(-1, PDQ_BYTES)
    inverse = inverse.reshape(-1)
    # which of them are banked already
    known = np.full(len(distinct_codes), -1, np.int64)
    if bank.index is not None and len(distinct_codes) and nu:
        lims, _, found = bank.index.range_search_validated(distinct_codes, 0, 1)
        has = np.diff(lims) > 0
        known[has] = found[lims[:-1][has]]
    fresh = known < 0
    known[fresh] = nu + np.arange(int(fresh.sum()))
    new_codes = distinct_codes[fresh]
    unique_codes = np.concatenate([bank.unique_codes, new_codes])
    index, planned = bank.index, bank.index_planned
    if index is None or len(unique_codes) > 2 * max(planned, 1024):
        # a new plan (flat or multi-index) for the size the bank has grown to
        index = make_backend("auto", 256, max_distance=31, n=len(unique_codes))
        planned = len(unique_codes)
        if len(unique_codes):
            index.add(unique_codes, np.arange(len(unique_codes), dtype=np.int64))
    elif len(new_codes):
        index.add(new_codes, np.arange(nu, len(unique_codes), dtype=np.int64))
    frame_unique = np.concatenate([bank.frame_unique, known[inverse]])
    counts = np.array([len(f.codes) for f in frames], np.int64)
    video_start = np.concatenate([bank.video_start, bank.video_start[-1] + np.cumsum(counts)])
    ustart, uframes = _csr(frame_unique, len(unique_codes))
    return _Bank(
        ids=np.concatenate([bank.ids, ids]),
        keys=bank.keys + tuple(keys),
        labels=bank.labels + tuple(labels),
        sources=bank.sources + tuple(sources),
        alive=np.concatenate([bank.alive, np.ones(len(frames), bool)]),
        video_start=video_start,
        frame_unique=frame_unique,
        frame_time=np.concatenate([bank.frame_time, *(f.timestamps for f in frames)]),
        frame_quality=np.concatenate([bank.frame_quality, *(f.qualities for f in frames)]),
        frame_first=_first_in_video(frame_unique, video_start, len(unique_codes)),
        unique_codes=unique_codes,
        unique_start=ustart,
        unique_frames=uframes,
        index=index,
        next_id=max(bank.next_id, int(ids.max()) + 1 if len(ids) else 0),
        index_planned=planned,
    )


def _compacted(bank: _Bank) -> _Bank:
    """The live videos only, rebuilt from their frames."""
    live = np.flatnonzero(bank.alive)
    frames = []
    for row in live.tolist():
        lo, hi = int(bank.video_start[row]), int(bank.video_start[row + 1])
        frames.append(
            Frames(
                bank.unique_codes[bank.frame_unique[lo:hi]],
                bank.frame_quality[lo:hi],
                bank.frame_time[lo:hi],
            )
        )
    fresh = _replace(_empty_bank(), next_id=bank.next_id)
    return _extended(
        fresh, frames, bank.ids[live], [bank.keys[r] for r in live.tolist()],
        [bank.labels[r] for r in live.tolist()], [bank.sources[r] for r in live.tolist()],
    )  # fmt: skip


# ------------------------------------------------------------------------------ matching


@dataclass(frozen=True)
class _Settings:
    radius: int
    floor: int
    dedupe: bool
    min_query_pct: float
    min_compared_pct: float
    min_duration: float
    max_gap: float | None
    common_videos: int
    threads: int
    dihedral: bool


MatchSettings = _Settings


def prepare_match(
    videos: Sequence[object],
    default_max_distance: int = 31,
    default_min_quality: int = DEFAULT_MIN_QUALITY,
    *,
    max_distance: int | None = None,
    min_quality: int | None = None,
    min_query_pct: float = DEFAULT_MIN_QUERY_PCT,
    min_compared_pct: float = DEFAULT_MIN_COMPARED_PCT,
    min_duration: float = 0.0,
    max_gap: float | None = None,
    semantics: Literal["pytx", "cpp"] = "pytx",
    dihedral: bool = False,
    common_videos: int = DEFAULT_COMMON_VIDEOS,
    threads: int | None = None,
) -> tuple[_Settings, list[list[Frames]]]:
    """The checked options and query frames of :meth:`VideoIndex.match_many` (per query, its
    hashings), for a bank whose radius and quality floor default to ``default_max_distance``
    and ``default_min_quality``.

    Examples
    --------
    >>> import numpy as np
    >>> from hashmatch.videos import prepare_match
    >>> video = (hm.datasets.random_codes(2, seed=1), [60, 70], [0.0, 1.0])
    >>> settings, queries = prepare_match([video, [video, video]], semantics="cpp")
    >>> settings.radius, [len(q) for q in queries]
    (30, [1, 2])
    """
    if isinstance(videos, (str, bytes)) or not isinstance(videos, Sequence):
        raise InvalidType(f"videos: expected a sequence of videos, got {type(videos).__name__}")
    radius = default_max_distance if max_distance is None else check_max_distance(max_distance, 256)
    floor = (
        default_min_quality if min_quality is None else _check_quality(min_quality, "min_quality")
    )
    if semantics not in ("pytx", "cpp"):
        raise InvalidArgument(f"semantics: expected 'pytx' or 'cpp', got {semantics!r}")
    dihedral = check_dihedral(dihedral)
    settings = _Settings(
        radius=radius if semantics == "pytx" else radius - 1,
        floor=floor,
        dedupe=semantics == "pytx",
        min_query_pct=_check_pct(min_query_pct, "min_query_pct"),
        min_compared_pct=_check_pct(min_compared_pct, "min_compared_pct"),
        min_duration=_check_seconds(min_duration, "min_duration"),
        max_gap=None if max_gap is None else _check_seconds(max_gap, "max_gap"),
        common_videos=_check_count(common_videos, "common_videos"),
        threads=check_threads(threads),
        dihedral=dihedral,
    )
    queries = []
    for i, video in enumerate(videos):
        alternatives = video if isinstance(video, list) else [video]
        if not alternatives:
            raise InvalidArgument(f"videos[{i}]: expected at least one hashing of the video")
        queries.append([as_frames(a, f"videos[{i}]", dihedral=dihedral) for a in alternatives])
    return settings, queries


class Candidates(NamedTuple):
    """The candidates of one hashing of one query video in one bank (or partition of one).

    ``matches[i]`` is final but for ``common_frames`` (0); ``frames[i]`` are the query frames
    (rows) that matched some frame of its banked video; ``videos_per_frame[f]`` is how many
    banked videos query frame ``f`` matched. Over disjoint partitions, those counts add up.
    """

    matches: list[VideoMatch]
    frames: list[npt.NDArray[np.int64]]
    videos_per_frame: npt.NDArray[np.int64]


def combine_candidates(
    parts: Sequence[Sequence[Sequence[Candidates]]], settings: _Settings, nqueries: int
) -> VideoMatchResult:
    """The :class:`VideoMatchResult` of the candidates of disjoint banks (the partitions of
    one; :meth:`VideoIndex.candidates`): ``common_frames`` counted over every bank, each
    banked video reported at its best hashing of the query, best first per query.

    Examples
    --------
    >>> from hashmatch.videos import combine_candidates, prepare_match
    >>> settings, _ = prepare_match([])
    >>> combine_candidates([], settings, 0)
    VideoMatchResult(0 candidate videos, 0 matched, 0 queries)
    """
    rows: list[VideoMatch] = []
    for number in range(nqueries):
        best: dict[int, VideoMatch] = {}
        for hashing in range(len(parts[0][number]) if parts else 0):
            found = [p[number][hashing] for p in parts]
            total = np.sum([c.videos_per_frame for c in found], axis=0)
            for candidates in found:
                for match, frames in zip(candidates.matches, candidates.frames, strict=True):
                    common = int((total[frames] > settings.common_videos).sum())
                    old = best.get(match.id)
                    if old is None or _rank(match) < _rank(old):
                        best[match.id] = match._replace(common_frames=common)
        rows.extend(sorted(best.values(), key=_rank))
    thresholds = {
        "min_query_pct": settings.min_query_pct,
        "min_compared_pct": settings.min_compared_pct,
        "min_duration": settings.min_duration,
    }
    return VideoMatchResult(tuple(rows), nqueries, thresholds)


def _rank(m: VideoMatch) -> tuple[Any, ...]:
    return (not m.matched, -m.compared_pct, -m.query_pct, -m.longest, m.id)


SEGMENT_FRAMES = 4
"""Banked frames of one hash in one video that segments consider (evenly spaced, first and
last included): a static scene repeats one hash many times, and its frames add nothing to the
alignment but cost."""


def _match_one(bank: _Bank, query: Frames, number: int, s: _Settings) -> Candidates:
    """The candidate banked videos of one query video.

    The frame search gives (query frame, distinct hash) pairs. Percentages need, per (hash,
    banked video), only whether the hash counts there (pytx: its first frame in the video has
    the quality; C++: how many of its frames have it), so pairs are joined with that small
    table; segments join them with a few of the hash's frames in the video (their times).
    """
    nothing = Candidates([], [], np.zeros(len(query.codes), np.int64))
    if bank.index is None or not len(query.codes) or not bank.alive.any():
        return nothing
    searched = query.qualities >= s.floor
    plain = query.codes[:, 0] if query.codes.ndim == 3 else query.codes
    first = first_occurrences(plain) if s.dedupe else np.ones(len(plain), bool)
    counted = searched & first  # the query's frames in the percentages
    n_query = int(counted.sum())
    rows = np.flatnonzero(searched)
    if not len(rows) or s.radius < 0:
        return nothing
    codes = np.ascontiguousarray(query.codes[rows])
    if s.dihedral:
        lims, dist, uniq, variants = bank.index.range_search_variants_validated(
            codes, s.radius, s.threads
        )
    else:
        lims, dist, uniq = bank.index.range_search_validated(codes, s.radius, s.threads)
        variants = np.zeros(len(uniq), np.uint8)
    qrow = np.repeat(rows, np.diff(lims))
    known = uniq < len(bank.unique_codes)  # a later add may have extended the shared index
    if not known.all():
        qrow, dist, uniq, variants = qrow[known], dist[known], uniq[known], variants[known]
    if not len(uniq):
        return nothing
    table = _HashVideos.of(bank, np.unique(uniq), s)
    if not len(table.videos):
        return nothing
    # join: each (query frame, hash) pair with every (hash, video) entry of its hash
    slot = np.searchsorted(table.hashes, uniq)
    count = table.start[slot + 1] - table.start[slot]
    pair = np.repeat(np.arange(len(uniq)), count)
    entry = np.repeat(table.start[slot], count) + _ranks(count)
    jq, jv = qrow[pair], table.videos[entry]
    # how many banked videos each query frame matched (common frames)
    qv = np.unique(jq * bank.nvideos + jv)
    videos_per_query = np.bincount(qv // bank.nvideos, minlength=len(query.codes))
    gap = s.max_gap
    order = np.argsort(jv, kind="stable")
    pair, entry, jq, jv = pair[order], entry[order], jq[order], jv[order]
    out = Candidates([], [], videos_per_query.astype(np.int64))
    for part in np.split(np.arange(len(jv)), np.flatnonzero(np.diff(jv)) + 1):
        row = int(jv[part[0]])
        p, e, qq = pair[part], entry[part], jq[part]
        lo, hi = int(bank.video_start[row]), int(bank.video_start[row + 1])
        banked_times = bank.frame_time[lo:hi]
        video_gap = (
            gap
            if gap is not None
            else 3.0 * max(_interval(query.timestamps), _interval(banked_times))
        )
        # the banked frames a segment may use: a few per (hash, video) entry
        frames = table.sample[e]  # (n, SEGMENT_FRAMES), -1 padded
        k = frames >= 0
        seg_q = np.broadcast_to(qq[:, None], frames.shape)[k]
        seg_d = np.broadcast_to(dist[p][:, None], frames.shape)[k]
        out.frames.append(np.unique(qq))
        out.matches.append(
            _pair_result(
                bank, row, number, s, qq, e, table, counted, n_query,
                _segments(query.timestamps[seg_q], bank.frame_time[frames[k]],
                          seg_d.astype(np.int32), video_gap),
                variants[p],
            )
        )  # fmt: skip
    return out


def _ranks(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """0, 1, ..., c - 1 for each count c, concatenated."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


@dataclass(frozen=True)
class _HashVideos:
    """Per (matched hash, live banked video): whether and how much the hash counts there.

    Entries are sorted by hash, then video; ``start[i]:start[i + 1]`` are hash ``hashes[i]``'s.
    ``weight``: pytx, 1 when the hash's first frame in the video has the quality, else 0; C++,
    its frames with the quality. ``sample``: up to SEGMENT_FRAMES of those frames (-1 padded).
    """

    hashes: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]
    videos: npt.NDArray[np.int64]
    weight: npt.NDArray[np.int64]
    sample: npt.NDArray[np.int64]

    @staticmethod
    def of(bank: _Bank, hashes: npt.NDArray[np.int64], s: _Settings) -> _HashVideos:
        per = bank.unique_start[hashes + 1] - bank.unique_start[hashes]
        owner = np.repeat(np.arange(len(hashes)), per)
        frame = bank.unique_frames[np.repeat(bank.unique_start[hashes], per) + _ranks(per)]
        video = np.searchsorted(bank.video_start, frame, side="right") - 1
        live = bank.alive[video]
        owner, frame, video = owner[live], frame[live], video[live]
        good = bank.frame_quality[frame] >= s.floor
        counts = (bank.frame_first[frame] & good) if s.dedupe else good
        key = owner * bank.nvideos + video
        order = np.lexsort((frame, key))  # by entry, frames in time order
        key, frame, good, counts = key[order], frame[order], good[order], counts[order]
        entries, inverse = np.unique(key, return_inverse=True)
        weight = np.bincount(inverse, weights=counts, minlength=len(entries)).astype(np.int64)
        # the entry's frames with the quality, evenly spaced (first and last included)
        good_rows = np.flatnonzero(good)
        good_entry = inverse[good_rows]
        n_good = np.bincount(good_entry, minlength=len(entries))
        good_start = np.concatenate([[0], np.cumsum(n_good)])
        picks = np.arange(SEGMENT_FRAMES)
        steps = (n_good[:, None] - 1) * picks[None, :] // max(SEGMENT_FRAMES - 1, 1)
        position = good_start[:-1, None] + steps
        sample = np.where(
            (n_good[:, None] > 0) & (picks[None, :] < n_good[:, None]),
            frame[good_rows[np.minimum(position, max(len(good_rows) - 1, 0))]]
            if len(good_rows)
            else -1,
            -1,
        )
        entry_hash = entries // bank.nvideos
        return _HashVideos(
            hashes=hashes,
            start=np.searchsorted(entry_hash, np.arange(len(hashes) + 1)),
            videos=entries % bank.nvideos,
            weight=weight,
            sample=sample.astype(np.int64),
        )


def _pair_result(
    bank: _Bank,
    row: int,
    number: int,
    s: _Settings,
    q: npt.NDArray[np.int64],
    e: npt.NDArray[np.int64],
    table: _HashVideos,
    counted: npt.NDArray[np.bool_],
    n_query: int,
    aligned: tuple[list[Segment], list[float]],
    var: npt.NDArray[np.uint8],
) -> VideoMatch:
    """One (query, banked video) result from its joined pairs (query frame ``q``, entry ``e``),
    but for ``common_frames`` (:func:`combine_candidates` counts them over every partition)."""
    lo, hi = int(bank.video_start[row]), int(bank.video_start[row + 1])
    quality_ok = bank.frame_quality[lo:hi] >= s.floor
    n_banked = int((quality_ok & bank.frame_first[lo:hi]).sum() if s.dedupe else quality_ok.sum())
    in_pct = counted[q] & (table.weight[e] > 0)
    query_matched = len(np.unique(q[in_pct]))
    matched_entries = np.unique(e[in_pct])
    compared_matched = int(table.weight[matched_entries].sum())
    query_pct = 100.0 * query_matched / n_query if n_query else 0.0
    compared_pct = 100.0 * compared_matched / n_banked if n_banked else 0.0
    segments, offsets = aligned
    longest = max((sg.duration for sg in segments), default=0.0)
    matched = (
        query_pct >= s.min_query_pct
        and compared_pct >= s.min_compared_pct
        and longest >= s.min_duration
        and query_matched > 0
    )
    transform = None
    if s.dihedral:
        from hashmatch.dihedral import TRANSFORMS

        transform = TRANSFORMS[int(np.bincount(var, minlength=8).argmax())]
    return VideoMatch(
        query=number, id=int(bank.ids[row]), key=bank.keys[row], labels=bank.labels[row],
        source=bank.sources[row], query_pct=query_pct, compared_pct=compared_pct,
        query_matched=query_matched, query_frames=n_query, compared_matched=compared_matched,
        compared_frames=n_banked, matched=bool(matched), segments=tuple(segments),
        offsets=tuple(offsets), common_frames=0, transform=transform,
    )  # fmt: skip


def _interval(times: npt.NDArray[np.float64]) -> float:
    """The typical time between sampled frames (median step; 1 s when unknown)."""
    steps = np.diff(times)
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else 1.0


def _segments(
    tq: npt.NDArray[np.float64],
    tb: npt.NDArray[np.float64],
    d: npt.NDArray[np.int32],
    gap: float,
) -> tuple[list[Segment], list[float]]:
    """Aligned segments and the best offsets of one (query, banked video) pair's frame
    matches at query times ``tq`` and banked times ``tb``.

    Offsets ``tb - tq`` are voted in bins of ``gap / 3`` (one sampling interval); the offsets
    of the fullest bins are reported. Segments are chains of matches, longest first, each
    increasing in query time and never decreasing in banked time (a query sampled faster than
    the banked video shows one banked frame twice), with steps of at most ``gap`` seconds,
    found by dynamic programming over the matches in query-time order (of equally long
    chains, the one whose offset changes least); segments never overlap in query time.
    """
    width = max(gap / 3.0, 1e-6)
    offs = tb - tq
    bins = np.round(offs / width).astype(np.int64)
    values, counts = np.unique(bins, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:3]
    offsets = [float(np.median(offs[bins == values[i]])) for i in top if counts[i] >= 1]
    # at most 3 matches per query frame, those closest to the best offset (a static scene or
    # a repeated hash matches every time; the chains need only the aligned ones)
    if len(tq) > 3 * len(np.unique(tq)) and offsets:
        off = np.abs(offs - offsets[0])
        order = np.lexsort((off, tq))
        tq, tb, d = tq[order], tb[order], d[order]
        rank = np.arange(len(tq)) - np.searchsorted(tq, tq, side="left")
        tq, tb, d = tq[rank < 3], tb[rank < 3], d[rank < 3]
    # one match per (query time, banked time) pair, the closest
    order = np.lexsort((d, tb, tq))
    tq, tb, d = tq[order], tb[order], d[order]
    keep = np.ones(len(tq), bool)
    keep[1:] = (tq[1:] != tq[:-1]) | (tb[1:] != tb[:-1])
    tq, tb, d = tq[keep], tb[keep], d[keep]
    n = len(tq)
    # longest chain ending at each match: one pass in query-time order over a window of
    # ``gap`` seconds (plain lists: a few per query frame, so this is cheap)
    q_list, b_list, d_list = tq.tolist(), tb.tolist(), d.tolist()
    length = [1] * n
    penalty = [0.0] * n  # among equally long chains, the smoothest: least offset change
    back = [-1] * n
    eps = 1e-9
    lo = 0
    for i in range(n):
        qi, bi = q_list[i], b_list[i]
        off = bi - qi
        while q_list[lo] < qi - gap - eps:
            lo += 1
        best, best_pen, arg = 1, 0.0, -1
        for j in range(lo, i):
            bj = b_list[j]
            if q_list[j] < qi - eps and bj <= bi + eps and bi - bj <= gap + eps:
                pen = penalty[j] + abs(off - (bj - q_list[j]))
                if length[j] + 1 > best or (length[j] + 1 == best and pen < best_pen):
                    best, best_pen, arg = length[j] + 1, pen, j
        length[i], penalty[i], back[i] = best, best_pen + 1e-3 * d_list[i], arg
    # the longest chains, each over query time no earlier segment spans
    segments: list[Segment] = []
    spans: list[tuple[float, float]] = []
    for end in np.lexsort((np.asarray(penalty), -np.asarray(length, np.int64))).tolist():
        if len(segments) >= 8 or (segments and length[end] < 2):
            break
        if any(lo_ - eps <= q_list[end] <= hi + eps for lo_, hi in spans):
            continue  # ends inside a segment already reported
        chain = []
        i = end
        while i >= 0:
            chain.append(i)
            i = back[i]
        chain.reverse()
        start_q, end_q = q_list[chain[0]], q_list[chain[-1]]
        if any(start_q <= hi + eps and end_q >= lo_ - eps for lo_, hi in spans):
            continue
        spans.append((start_q, end_q))
        idx = np.asarray(chain)
        segments.append(
            Segment(
                float(start_q),
                float(end_q),
                float(tb[idx[0]]),
                float(tb[idx[-1]]),
                len(idx),
                float(d[idx].mean()),
            )
        )
    segments.sort(key=lambda sg: (-sg.frames, sg.query_start))
    return segments, offsets


# ------------------------------------------------------------------------------ checks


MAX_ID = 2**62 - 1
"""The largest video id (default ids continue after the largest one)."""


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _id_list(ids: object) -> list[int]:
    if _is_int(ids):
        return [int(ids)]  # type: ignore[call-overload]
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidType(f"ids: expected an iterable of integer ids, got {type(ids).__name__}")
    items = list(ids)
    for i, v in enumerate(items):
        if not _is_int(v):
            raise InvalidType(f"ids[{i}]: expected an integer id, got {v!r}")
    return [int(v) for v in items]


def _key_list(keys: object) -> list[str]:
    if isinstance(keys, str):
        return [keys]  # one key, not its characters
    if isinstance(keys, bytes) or not isinstance(keys, Iterable):
        raise InvalidType(f"keys: expected a key or an iterable of keys, got {type(keys).__name__}")
    items = list(keys)
    for i, k in enumerate(items):
        if not isinstance(k, str):
            raise InvalidType(f"keys[{i}]: expected a str, got {type(k).__name__}")
    return items


def _check_count(value: object, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 0:
        raise InvalidArgument(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def _per_video(values: Sequence[Any] | None, n: int, name: str, default: Any = None) -> list[Any]:
    if values is None:
        return [default] * n
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != n:
        raise InvalidArgument(f"{name}: expected one value per video ({n}), got {values!r}")
    return list(values)


def _check_quality(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 100:
        raise InvalidArgument(f"{name}: expected an integer from 0 to 100, got {value!r}")
    return int(value)


def _check_pct(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InvalidType(f"{name}: expected a percentage (0 to 100), got {value!r}")
    if not 0 <= float(value) <= 100:
        raise InvalidArgument(f"{name}: expected a percentage from 0 to 100, got {value!r}")
    return float(value)


def _check_seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InvalidType(f"{name}: expected seconds, got {value!r}")
    if not np.isfinite(float(value)) or float(value) < 0:
        raise InvalidArgument(f"{name}: expected seconds >= 0, got {value!r}")
    return float(value)
