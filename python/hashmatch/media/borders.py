"""Uniform borders around a picture: letterbox and pillarbox bars, found and cut off.

A 4:3 video re-uploaded as 16:9 gets black bars left and right (a pillarbox); a wide one in a
tall frame gets bars above and below (a letterbox). The bars change every frame's PDQ hash
past any match threshold, so ``hash_image`` and ``hash_video`` take ``crop_borders=True`` to
hash only what is inside them.

The rule, in the spirit of FFmpeg's ``cropdetect`` filter (which looks for black lines) but
for bars of any one colour: on each side, the outermost line of pixels (a row or a column of
luma, 0.299 R + 0.587 G + 0.114 B) sets the bar colour, its median; lines are bar while they
stay close to that colour (mean absolute difference at most :data:`MEAN_TOLERANCE`, and at
most :data:`SPIKE_FRACTION` of their pixels more than :data:`SPIKE` away: compression noise
and a logo's few pixels pass, picture content does not), and a few faint lines just past the
edge (a codec block straddling it rings) still count as bar when clearly fainter than the
content after them. The crop keeps what is between the bars. Bars are cut in pairs only, one at
each end of an axis, of one colour and about one thickness (:data:`PAIR_COLOUR`,
:data:`PAIR_RATIO`): letterboxes and pillarboxes are centred, while a picture's own uniform
edge (a clear sky above a landscape) is on one side only and is kept. A picture that is one
colour throughout, or whose bars would leave less than
:data:`MIN_KEPT` of a dimension, is not cut (on that axis).

A video is cropped once for all its frames, by the union of the boxes found on several
sampled frames (see :func:`hashmatch.media.video.hash_video`), as ``cropdetect`` settles on one
crop over a video: a dark scene does not shrink the crop, a fade to black is ignored.

Known limits: bars placed off centre are not cut; a picture with uniform edges at both ends of
an axis (a studio backdrop) loses them, so its cropped hash can differ from its plain hash.
Hash and bank such media both ways (see :mod:`hashmatch.media`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "MEAN_TOLERANCE",
    "MIN_KEPT",
    "RINGING",
    "SPIKE",
    "SPIKE_FRACTION",
    "Box",
    "find_content",
    "luma",
    "union",
]

Box = tuple[int, int, int, int]
"""``(left, top, right, bottom)`` in pixels, right and bottom exclusive (Pillow's crop box)."""

MEAN_TOLERANCE = 10.0
"""Largest mean absolute luma difference (0-255) of a bar line from the bar colour."""
SPIKE = 40.0
"""A pixel this far (luma) from the bar colour is content..."""
SPIKE_FRACTION = 0.03
"""...and a line with more than this fraction of such pixels is not bar."""
MIN_KEPT = 0.2
"""Bars are not cut if less than this fraction of the width (or height) would be left."""
RINGING = 8
"""Lines past a bar's edge that compression ringing may blur (one 8x8 codec block)..."""
RINGING_SHARE = 0.25
"""...each fainter than this share of the content line after them."""
PAIR_COLOUR = 16.0
"""Largest luma difference between the colours of the two bars of a pair."""
PAIR_SLACK = 2
PAIR_RATIO = 0.25
"""Two bars pair when their thicknesses differ by at most ``PAIR_SLACK`` lines or this
fraction of the thicker one."""


def luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The luma of an ``(h, w, 3)`` RGB (or ``(h, w)`` grey) uint8 array, as PDQ weighs it."""
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.asarray(rgb[..., :3], dtype=np.float32) @ weights


def _bar_lines(lines: npt.NDArray[np.float32]) -> tuple[int, float]:
    """How many leading lines (rows of ``lines``) are one colour, that of the first line, and
    that colour."""
    colour = float(np.median(lines[0]))
    deviation = np.abs(lines - colour)
    uniform = (deviation.mean(axis=1) <= MEAN_TOLERANCE) & (
        (deviation > SPIKE).mean(axis=1) <= SPIKE_FRACTION
    )
    count = len(lines) if uniform.all() else int(np.argmin(uniform))  # first non-bar line
    return _past_ringing(deviation.mean(axis=1), count), colour


def _past_ringing(mean_deviation: npt.NDArray[np.float32], count: int) -> int:
    """Where the content really starts when a lossy codec's ringing (a block straddling the
    bar's edge) blurs the last few bar lines: up to :data:`RINGING` lines past ``count``, the
    first line that is clearly content (deviation over ``4 * MEAN_TOLERANCE``), if every line
    before it is faint next to it (under :data:`RINGING_SHARE` of its deviation)."""
    if count == 0 or count >= len(mean_deviation):
        return count
    ahead = mean_deviation[count : count + RINGING + 1]
    strong = np.flatnonzero(ahead > 4 * MEAN_TOLERANCE)
    if not len(strong) or strong[0] == 0:
        return count
    edge = int(strong[0])
    if (ahead[:edge] < RINGING_SHARE * ahead[edge]).all():
        return count + edge
    return count


def _axis(lines: npt.NDArray[np.float32]) -> tuple[int, int]:
    """The content's first and end line along one axis: bars are cut only in pairs, one at
    each end, of one colour and about one thickness (a centred letterbox or pillarbox)."""
    size = len(lines)
    lead, lead_colour = _bar_lines(lines)
    trail, trail_colour = _bar_lines(lines[::-1])
    paired = (
        lead > 0
        and trail > 0
        and abs(lead_colour - trail_colour) <= PAIR_COLOUR
        and abs(lead - trail) <= max(PAIR_SLACK, PAIR_RATIO * max(lead, trail))
    )
    if not paired or size - lead - trail < MIN_KEPT * size:
        return 0, size
    return lead, size - trail


def find_content(picture: npt.NDArray[np.floating] | npt.NDArray[np.uint8]) -> Box | None:
    """The box inside uniform borders, or ``None`` when the picture is one colour throughout.

    Parameters
    ----------
    picture : numpy.ndarray
        Luma ``(h, w)`` (see :func:`luma`) or RGB ``(h, w, 3)``.

    Returns
    -------
    (left, top, right, bottom) or None
        The content box (the whole picture when there are no bars).

    Examples
    --------
    >>> import numpy as np
    >>> from hashmatch.media.borders import find_content
    >>> frame = np.zeros((90, 160), np.uint8)              # 16:9, black
    >>> frame[:, 20:140] = (np.arange(90)[:, None] * 7 + np.arange(120)) % 251  # 4:3 inside
    >>> find_content(frame)
    (20, 0, 140, 90)
    """
    grey = luma(np.asarray(picture)) if np.ndim(picture) == 3 else np.asarray(picture, np.float32)
    height, width = grey.shape
    if height == 0 or width == 0 or _bar_lines(grey)[0] == height:
        return None  # one colour throughout: nothing to tell bars from
    top, bottom = _axis(grey)
    left, right = _axis(grey.T)
    return left, top, right, bottom


def union(boxes: list[Box]) -> Box | None:
    """The smallest box holding every box (the largest content seen), or None for none."""
    if not boxes:
        return None
    lefts, tops, rights, bottoms = zip(*boxes, strict=True)
    return min(lefts), min(tops), max(rights), max(bottoms)
