"""Hashing videos: :func:`hash_video`, the vPDQ frames of a video.

vPDQ (Meta's video PDQ) is one PDQ hash per sampled frame. hashmatch decodes with PyAV (whose
wheels bundle FFmpeg) and hashes with ``pdqhash``, following the frame rule of Meta's ``vpdq``
(``vpdq/cpp/vpdq/cpp/hashing/filehasher.cpp`` and ``ffmpegwrapper.cpp``) so the hashes agree
with Meta's tool frame by frame:

- the frame rate is the video stream's average frame rate (``avg_frame_rate``), or its
  ``r_frame_rate`` when that is unknown;
- ``frame_mod = int(seconds_per_hash * fps)``, 1 when that is 0 (``seconds_per_hash=0``
  hashes every frame);
- frames are numbered 0, 1, 2... in decoder output order, and frame ``i`` is hashed when
  ``i % frame_mod == 0``;
- the frame is converted to RGB24 at the stream's size by swscale (area filter, as vpdq
  asks), its PDQ computed from luma ``0.299 R + 0.587 G + 0.114 B``;
- the record is (frame number, quality, hash, timestamp ``i / fps``), the timestamp in single
  precision as vpdq computes it.

On Meta's published sample videos (``tmk/sample-videos`` and ``vpdq/sample-hashes`` in
facebook/ThreatExchange) this selects the same frames as vpdq; the hashes of frames of quality
80 or more agree within a few bits (swscale versions convert colours slightly differently;
see ``tests/test_media.py::test_vpdq_samples``).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from hashmatch.errors import InvalidArgument, InvalidType, MediaError
from hashmatch.formats.vpdq import text_lines
from hashmatch.frames import VideoFrames
from hashmatch.progress import bar

from . import borders
from ._deps import require
from .images import PDQ_MIN_SIDE, check_flag, describe, pdq_codes

__all__ = ["HashedVideo", "hash_video", "write_video"]

CROP_SAMPLES = 9
"""Frames sampled (evenly over the video) to decide its crop with ``crop_borders=True``."""

Codes = npt.NDArray[np.uint8]
_NOT_VIDEO = frozenset({"image2", "tty"})
"""FFmpeg demuxers of still images (with every ``*_pipe``) and of text (``tty``: ANSI art),
refused: FFmpeg would read a JPEG or a text file as a one-frame or 25 fps "video"."""


@dataclass(frozen=True, eq=False)
class HashedVideo:
    """The vPDQ hashes of a video, from :func:`hash_video`: one row per hashed frame.

    Attributes
    ----------
    codes : numpy.ndarray
        uint8 ``(n, 32)`` PDQ hashes, or ``(n, 8, 32)`` with ``dihedral=True`` (variants in
        the order of :data:`hashmatch.TRANSFORMS`).
    qualities : numpy.ndarray
        int16 ``(n,)`` PDQ qualities, 0-100.
    frames : numpy.ndarray
        int64 ``(n,)`` frame numbers (0-based, decoder output order).
    timestamps : numpy.ndarray
        float64 ``(n,)`` seconds: ``frame / fps`` (single precision, as vpdq).
    fps : float
        The frame rate used.
    width, height : int
        The size of the frames hashed (before any crop).
    crop : (left, top, right, bottom) or None
        The box hashed with ``crop_borders=True`` (None when there was nothing to crop or
        it was not asked for).

    Examples
    --------
    >>> import numpy as np
    >>> video = hm.HashedVideo(np.zeros((2, 32), np.uint8), np.array([100, 90], np.int16),
    ...     np.array([0, 30]), np.array([0.0, 1.0]), 30.0, 160, 120, None)
    >>> video.to_lines()[1]
    '30,90,0000000000000000000000000000000000000000000000000000000000000000,1.000'
    """

    codes: Codes
    qualities: npt.NDArray[np.int16]
    frames: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.float64]
    fps: float
    width: int
    height: int
    crop: tuple[int, int, int, int] | None

    def __len__(self) -> int:
        return len(self.codes)

    def to_frames(self) -> VideoFrames:
        """The frames as :class:`~hashmatch.VideoFrames` (what vPDQ files hold, for
        :func:`hashmatch.write_vpdq`): the original variant only."""
        codes = self.codes[:, 0] if self.codes.ndim == 3 else self.codes
        return VideoFrames(codes, self.qualities, self.frames, self.timestamps)

    def to_lines(self) -> list[str]:
        """The frames in the text format of Meta's vpdq tools and sample hashes:
        ``frame,quality,hex,seconds`` (three decimals, as vpdq writes them); the original
        variant only. :func:`hashmatch.write_vpdq` writes them to a file."""
        return text_lines(self.to_frames(), rounded=True)


def hash_video(
    source: object,
    *,
    seconds_per_hash: float = 1.0,
    dihedral: bool = False,
    crop_borders: bool = False,
    progress: bool = False,
) -> HashedVideo:
    """The vPDQ hashes of a video: the PDQ hash of one frame every `seconds_per_hash`.

    Parameters
    ----------
    source : path or bytes
        A video file (anything FFmpeg reads), or its bytes.
    seconds_per_hash : float, optional
        Seconds between hashed frames (vPDQ's rule: every ``int(seconds_per_hash * fps)``-th
        frame, see :mod:`hashmatch.media.video`); 0 hashes every frame. Default 1.0.
    dihedral : bool, optional
        Hash each frame's 8 rotations and mirrors (:data:`hashmatch.TRANSFORMS` order).
    crop_borders : bool, optional
        Cut off uniform bars (letterbox, pillarbox) before hashing, with one crop for the
        whole video decided from several sampled frames (:mod:`hashmatch.media.borders`).
    progress : bool, optional
        Show a progress bar (frames decoded) on stderr.

    Returns
    -------
    HashedVideo
        Codes, qualities, frame numbers and timestamps of the hashed frames. Feed it to
        ``matcher.match(video.codes, qualities=video.qualities)`` or
        ``HashList.add(video.codes, ...)``.

    Raises
    ------
    FileNotFoundError, PermissionError, IsADirectoryError
        A path that cannot be opened.
    MediaError
        An empty file, data FFmpeg cannot read as a video (or reads as a still image or
        text), no video stream, no frame rate,
        frames under 5 pixels, a decoding error part way (like vpdq, nothing is returned for
        a video that does not decode to the end).
    InvalidType, InvalidArgument
        A source of another type; `seconds_per_hash` negative, not finite or not a number.
    ModuleNotFoundError
        When the ``media`` extra is not installed (``pip install "hashmatch[media]"``).
    """
    seconds = _check_seconds(seconds_per_hash)
    dihedral = check_flag(dihedral, "dihedral")
    crop_borders = check_flag(crop_borders, "crop_borders")
    av = require("av", for_="hash_video")
    pdqhash = require("pdqhash", for_="hash_video")
    where = _check_source(source)
    with _open(av, source, where) as container:
        stream = _video_stream(container, where)
        fps = _frame_rate(stream, where)
        width, height = stream.codec_context.width, stream.codec_context.height
        if min(width, height) < PDQ_MIN_SIDE:
            raise MediaError(
                f"source: {where}: too small: expected frames of at least {PDQ_MIN_SIDE}x"
                f"{PDQ_MIN_SIDE} pixels, got {width}x{height}"
            )
    crop = _decide_crop(av, source, where, width, height) if crop_borders else None
    frame_mod = int(seconds * fps) or 1
    fps32 = np.float32(fps)
    codes: list[Codes] = []
    qualities: list[int] = []
    frames: list[int] = []
    timestamps: list[float] = []
    with _open(av, source, where) as container:
        stream = _video_stream(container, where)
        stream.thread_type = "AUTO"  # FFmpeg's own threads; the frames are the same
        total = stream.frames or None
        with bar(total, os.path.basename(where), "frame", enabled=bool(progress)) as shown:
            for number, frame in _decoded(av, container, stream, where):
                shown.update(1)
                if number % frame_mod:
                    continue
                rgb = _rgb(frame, width, height)
                if crop is not None:
                    left, top, right, bottom = crop
                    rgb = rgb[top:bottom, left:right]
                code, quality = pdq_codes(pdqhash, rgb, dihedral)
                codes.append(code)
                qualities.append(quality)
                frames.append(number)
                timestamps.append(float(np.float32(number) / fps32))
    shape = (8, 32) if dihedral else (32,)
    return HashedVideo(
        codes=np.stack(codes) if codes else np.zeros((0, *shape), np.uint8),
        qualities=np.array(qualities, dtype=np.int16),
        frames=np.array(frames, dtype=np.int64),
        timestamps=np.array(timestamps, dtype=np.float64),
        fps=fps,
        width=width,
        height=height,
        crop=crop,
    )


# ---------------------------------------------------------------------- checking arguments


def _check_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidType(f"seconds_per_hash: expected a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(
            f"seconds_per_hash: expected a finite number >= 0 (0: every frame), got {value}"
        )
    return float(value)


def _check_source(source: object) -> str:
    """The source as messages name it; a missing, unreadable or empty file refused here."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
        with open(path, "rb") as file:  # OSError (missing, a directory, no permission) as is
            if os.fstat(file.fileno()).st_size == 0:
                raise MediaError(
                    f"source: {path}: empty file (0 bytes), not a video",
                    "empty file (0 bytes), not a video",
                )
        return path
    if isinstance(source, (bytes, bytearray, memoryview)):
        if memoryview(source).nbytes == 0:
            raise MediaError(
                "source: empty bytes (0 bytes), not a video", "empty (0 bytes), not a video"
            )
        return describe(source)
    raise InvalidType(f"source: expected a video path or bytes, got {type(source).__name__}")


# ------------------------------------------------------------------------------- decoding


class _open:
    """``av.open`` of a path or bytes as a context manager, its errors as MediaError."""

    def __init__(self, av: Any, source: object, where: str) -> None:
        target = (
            source
            if isinstance(source, (str, os.PathLike))
            else io.BytesIO(bytes(cast(bytes, source)))
        )
        try:
            self.container = av.open(target, mode="r")
        except av.FFmpegError as error:
            raise _not_a_video(where, error) from error

    def __enter__(self) -> Any:
        return self.container

    def __exit__(self, *exc: object) -> None:
        self.container.close()


def _not_a_video(where: str, error: Exception) -> MediaError:
    reason = f"not a video FFmpeg can read ({error})"
    return MediaError(f"source: {where}: {reason}", reason)


def _video_stream(container: Any, where: str) -> Any:
    names = set(container.format.name.split(","))
    if names & _NOT_VIDEO or any(name.endswith("_pipe") for name in names):
        reason = (
            f"not a video (FFmpeg reads it as {container.format.name!r}: a still image or text)"
        )
        raise MediaError(f"source: {where}: {reason}", reason)
    if not container.streams.video:
        reason = "no video stream"
        raise MediaError(f"source: {where}: {reason}", reason)
    return container.streams.video[0]


def _frame_rate(stream: Any, where: str) -> float:
    """vpdq's frame rate: ``avg_frame_rate``, else ``r_frame_rate``."""
    for rate in (stream.average_rate, stream.base_rate):
        if isinstance(rate, Fraction) and rate > 0:
            return float(rate)
    reason = "the video stream has no frame rate"
    raise MediaError(f"source: {where}: {reason}", reason)


def _decoded(av: Any, container: Any, stream: Any, where: str) -> Iterator[tuple[int, Any]]:
    """``(frame number, frame)`` in decoder output order; a decoding error as MediaError."""
    frames = container.decode(stream)
    number = 0
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.FFmpegError as error:
            reason = f"cannot decode frame {number} ({error})"
            raise MediaError(f"source: {where}: {reason}", reason) from error
        yield number, frame
        number += 1


def _rgb(frame: Any, width: int, height: int) -> npt.NDArray[np.uint8]:
    """A frame as RGB24 at the stream's size, converted as vpdq's swscale context does."""
    rgb: npt.NDArray[np.uint8] = frame.to_ndarray(
        format="rgb24", width=width, height=height, interpolation="AREA"
    )
    return rgb


def _decide_crop(
    av: Any, source: object, where: str, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """One crop for the whole video: the union of the content boxes of frames sampled evenly
    over it, ignoring frames of one colour (a fade to black)."""
    boxes: list[borders.Box] = []
    for frame in _sampled_frames(av, source, where):
        box = borders.find_content(borders.luma(_rgb(frame, width, height)))
        if box is not None:
            boxes.append(box)
    found = borders.union(boxes)
    if found is None or found == (0, 0, width, height):
        return None
    return found


def _sampled_frames(av: Any, source: object, where: str) -> list[Any]:
    """About :data:`CROP_SAMPLES` frames spread over the video: found by seeking where the
    stream has a duration and seeks, else by decoding it all (every n-th frame kept)."""
    with _open(av, source, where) as container:
        stream = _video_stream(container, where)
        if stream.duration and stream.time_base:
            start = stream.start_time or 0
            frames = []
            try:
                for k in range(CROP_SAMPLES):
                    offset = start + int((k + 0.5) / CROP_SAMPLES * stream.duration)
                    container.seek(offset, stream=stream, backward=True, any_frame=False)
                    frame = next(container.decode(stream), None)
                    if frame is not None:
                        frames.append(frame)
            except av.FFmpegError:
                frames = []
            if frames:
                return frames
    with _open(av, source, where) as container:
        stream = _video_stream(container, where)
        step = max(1, (stream.frames or 0) // CROP_SAMPLES)
        return [
            frame for number, frame in _decoded(av, container, stream, where) if number % step == 0
        ]


def write_video(
    path: str | os.PathLike[str],
    frames: Sequence[npt.NDArray[np.uint8]],
    fps: float | Fraction,
    *,
    codec: str = "mpeg4",
) -> str:
    """Encode RGB frames (uint8 ``(h, w, 3)``, all one size, even sides) as a video at a
    constant ``fps``: the demo's and the tests' generated media. Returns the path."""
    av = require("av", for_="write_video")
    if not frames:
        raise InvalidArgument("frames: expected at least one frame")
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(os.fspath(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "3"} if codec == "mpeg4" else {}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return os.fspath(path)
