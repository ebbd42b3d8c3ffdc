"""The vPDQ frames of one video: :class:`VideoFrames`.

vPDQ (Meta's video PDQ) is one PDQ hash per sampled frame, with the frame's PDQ quality and
its time in the video. :class:`VideoFrames` holds those columns and nothing else: it is what
:func:`hashmatch.read_vpdq` reads from the serialisations in use (Meta's vpdq text lines,
python-threatexchange's JSON) and what :func:`hashmatch.write_vpdq` writes.

:class:`hashmatch.HashedVideo` (from :func:`hashmatch.hash_video`) carries more: the frame
rate, the frame size, the crop and, with ``dihedral=True``, 8 variants of each frame's hash.
None of that is in the files, so it is a separate type; ``video.to_frames()`` gives its
frames (the original variant) as :class:`VideoFrames`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hashmatch._validation import as_codes
from hashmatch.errors import InvalidArgument, InvalidType
from hashmatch.hashtypes import check_qualities

__all__ = ["NO_FRAME_NUMBER", "VideoFrames"]

NO_FRAME_NUMBER = -1
"""The frame number of a frame read from a form that has none (python-threatexchange's JSON)."""

PDQ_BYTES = 32


@dataclass(frozen=True, eq=False)
class VideoFrames:
    """The vPDQ frames of a video: one PDQ hash, quality and timestamp per sampled frame.

    Construction checks every column and converts it to the dtypes below (lists are fine).

    Attributes
    ----------
    codes : numpy.ndarray
        uint8 ``(n, 32)`` PDQ hashes (anything :func:`hashmatch.from_hex` accepts when
        constructing, e.g. a list of 64-character hex strings).
    qualities : numpy.ndarray
        int16 ``(n,)`` PDQ qualities, integers 0-100.
    frames : numpy.ndarray
        int64 ``(n,)`` frame numbers (0-based, decoder order), or :data:`NO_FRAME_NUMBER`
        (-1) for every frame when the source has none; ``None`` when constructing means none.
    timestamps : numpy.ndarray
        float64 ``(n,)`` seconds from the start of the video, finite and ``>= 0``.

    Raises
    ------
    HashFormatError, HashTypeMismatch
        Codes that are not 256-bit hashes.
    InvalidArgument
        Columns of other lengths than `codes`, a quality outside 0-100, a timestamp that is
        negative or not finite, a frame number below -1, or a mix of numbered and unnumbered
        frames.
    InvalidType
        Columns of non-numeric types.

    Notes
    -----
    The order of the frames is not checked here (the readers check the files' order).

    Examples
    --------
    >>> frames = hm.VideoFrames(["ab" * 32, "cd" * 32], [100, 49], None, [0.0, 1.0])
    >>> len(frames), frames.codes.shape, frames.frames.tolist(), frames.numbered
    (2, (2, 32), [-1, -1], False)
    """

    codes: npt.NDArray[np.uint8]
    qualities: npt.NDArray[np.int16]
    frames: npt.NDArray[np.int64] | None
    timestamps: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if isinstance(self.codes, np.ndarray) and self.codes.ndim == 2 and not self.codes.size:
            codes = np.zeros((0, PDQ_BYTES), np.uint8)
            if self.codes.shape[1] not in (0, PDQ_BYTES) or self.codes.dtype != np.uint8:
                codes, _ = as_codes(self.codes, name="codes", nbytes=PDQ_BYTES)
        elif isinstance(self.codes, (list, tuple)) and not self.codes:
            codes = np.zeros((0, PDQ_BYTES), np.uint8)
        else:
            codes, single = as_codes(self.codes, name="codes", nbytes=PDQ_BYTES)
            if single:
                raise InvalidArgument(
                    "codes: expected a batch of hashes, shape (n, 32), got one hash; wrap it in"
                    " a list"
                )
        n = len(codes)
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "qualities", check_qualities(self.qualities, n, missing_ok=False))
        object.__setattr__(self, "frames", _frame_numbers(self.frames, n))
        object.__setattr__(self, "timestamps", _timestamps(self.timestamps, n))

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def numbered(self) -> bool:
        """Whether the frames have frame numbers (False: every one is -1; True when empty)."""
        assert self.frames is not None  # set by __post_init__; for mypy
        return not len(self) or bool(self.frames[0] != NO_FRAME_NUMBER)

    def __repr__(self) -> str:
        span = f", {self.timestamps[-1]:.3f} s" if len(self) else ""
        return f"VideoFrames({len(self)} frames{span})"


def _frame_numbers(values: object, n: int) -> npt.NDArray[np.int64]:
    """Frame numbers as int64: all >= 0, or all -1 (None: all -1)."""
    if values is None:
        return np.full(n, NO_FRAME_NUMBER, dtype=np.int64)
    array = np.asarray(values)
    if array.size == 0 and n == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu" or array.dtype == np.uint64:
        raise InvalidType(f"frames: expected integer frame numbers, got {array.dtype}")
    if array.shape != (n,):
        raise InvalidArgument(
            f"frames: expected {n} frame numbers (one per hash), got {array.shape}"
        )
    out = array.astype(np.int64)
    if n and out[0] == NO_FRAME_NUMBER:
        bad = np.flatnonzero(out != NO_FRAME_NUMBER)
        expected = "-1 like frames[0] (no frame numbers)"
    else:
        bad = np.flatnonzero(out < 0)
        expected = "a frame number >= 0 like frames[0]"
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(f"frames[{i}]: expected {expected}, got {out[i]}")
    return out


def _timestamps(values: object, n: int) -> npt.NDArray[np.float64]:
    """Timestamps as float64, finite and >= 0."""
    array = np.asarray(values)
    if array.size == 0 and n == 0:
        return np.zeros(0, dtype=np.float64)
    if array.dtype.kind not in "iuf":
        raise InvalidType(f"timestamps: expected numbers of seconds, got {array.dtype}")
    if array.shape != (n,):
        raise InvalidArgument(
            f"timestamps: expected {n} timestamps (one per hash), got {array.shape}"
        )
    out = array.astype(np.float64) + 0.0  # a copy; -0.0 becomes 0.0
    bad = np.flatnonzero(~np.isfinite(out) | (out < 0))
    if bad.size:
        i = int(bad[0])
        raise InvalidArgument(
            f"timestamps[{i}]: expected a finite number of seconds >= 0, got {out[i]}"
        )
    return out
