"""Plots for choosing a near-duplicate threshold, and for looking at a video match (needs
matplotlib: ``hashmatch[plot]``).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> codes = hm.datasets.random_codes(200, 64, seed=0)
>>> codes[1] = codes[0]
>>> figure = hm.find_duplicates(codes, 10).plot()
>>> [axis.get_title() for axis in figure.axes]
['Pair distances', 'Clusters by threshold']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hashmatch.errors import InvalidArgument

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hashmatch.dedup import Clusters, Pairs
    from hashmatch.videos import VideoMatch

__all__ = ["plot_clusters", "plot_pairs", "plot_video_match"]


def _axes(axes: Any, count: int, width: float) -> tuple[Figure, list[Any]]:
    """`count` axes: the given ones (a sequence of that many) or a new figure's."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'hashmatch[plot]'") from error
    if axes is None:
        figure, created = plt.subplots(1, count, figsize=(width * count, 3.6), squeeze=False)
        return figure, list(created[0])
    listed = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(listed) != count:
        raise InvalidArgument(f"axes: expected {count} matplotlib axes, got {len(listed)}")
    return listed[0].figure, listed


def _log_counts(axis: Any, which: str) -> None:
    """Puts `axis`'s x or y (`which`) on a log scale of counts labelled with plain numbers
    ("2", "3", "10,000"): matplotlib's default writes labels between the decades as
    "3x10^0", which collide when a plot spans about a decade or less (cluster sizes 1 to 6)."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        """LogFormatter's choice of the ticks to label (all decades; between them only on
        short axes), as plain numbers."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            label: str = super().__call__(x, pos)
            return f"{x:,.0f}" if label and x >= 1 else label

    axis.set(**{f"{which}scale": "log"})
    scaled = getattr(axis, f"{which}axis")
    scaled.set_major_formatter(Plain(base=10))
    scaled.set_minor_formatter(Plain(base=10))


def plot_pairs(pairs: Pairs, *, axes: Any = None) -> Figure:
    """Two panels for choosing a threshold from :func:`hashmatch.find_duplicates` pairs.

    Left: how many pairs lie at each distance (a gap between the near-duplicates and the rest
    is where a threshold belongs). Right: for every threshold, the hashes with a duplicate and
    the size of the largest cluster (a sudden jump means chains start merging distinct media),
    on one log scale: the two differ by orders of magnitude, and both count hashes, so where
    the largest cluster nears the hashes with a duplicate, one chain links most of them.

    Parameters
    ----------
    pairs : Pairs
        From :func:`hashmatch.find_duplicates`.
    axes : sequence of two matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, (left, right) = _axes(axes, 2, 4.8)
    counts = np.bincount(pairs.distances, minlength=pairs.max_distance + 1)
    left.bar(np.arange(len(counts)), counts, width=1.0, color="tab:blue")
    left.set_title("Pair distances")
    left.set_xlabel("Hamming distance")
    left.set_ylabel("pairs")
    if counts.any():
        _log_counts(left, "y")
    curve = pairs.threshold_curve()
    right.plot(curve["threshold"], curve["clustered"], label="hashes with a duplicate")
    right.plot(curve["threshold"], curve["largest"], label="largest cluster")
    if curve["largest"].any():  # nothing to put on a log scale without hashes
        _log_counts(right, "y")
    right.set_title("Clusters by threshold")
    right.set_xlabel("max_distance")
    right.set_ylabel("hashes")
    right.legend(loc="center right")  # between the curves
    figure.tight_layout()
    return figure


def plot_clusters(clusters: Clusters, *, axes: Any = None) -> Figure:
    """The cluster-size distribution of :func:`hashmatch.cluster` (log-log; singletons at 1).

    Parameters
    ----------
    clusters : Clusters
    axes : matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure, (axis,) = _axes(axes, 1, 5.0)
    sizes, counts = np.unique(clusters.sizes, return_counts=True)
    axis.plot(sizes, counts, marker="o", linestyle="none")
    if len(sizes):  # an empty collection has nothing to put on a log scale
        _log_counts(axis, "x")
        _log_counts(axis, "y")
    axis.set_title(f"Cluster sizes (max_distance {clusters.max_distance})")
    axis.set_xlabel("members")
    axis.set_ylabel("clusters")
    figure.tight_layout()
    return figure


def plot_video_match(
    query: object,
    banked: object,
    *,
    match: VideoMatch | None = None,
    max_distance: int = 31,
    axes: Any = None,
) -> Figure:
    """The frame-match matrix of a query video against a banked video, with the aligned
    segments and the best time offsets of their match drawn over it.

    Each cell is the Hamming distance between a query frame (x: its time) and a banked frame
    (y: its time), coloured from 0 (dark) to `max_distance` (light green); pairs farther apart
    are left white. A copy shows as a diagonal band (slope 1: same speed), a trimmed or
    embedded clip as a band that starts away from the origin, a static scene as a block.
    Each aligned segment is drawn as a red box whose diagonal it is, from ``(query_start,
    banked_start)`` to ``(query_end, banked_end)`` (a line over the band would hide it); the
    best offsets as dotted lines ``banked = query + offset``. The title gives both
    percentages and the verdict at the default thresholds (or `match`'s).

    Parameters
    ----------
    query, banked : video frames
        Anything :meth:`hashmatch.VideoIndex.add` takes: :class:`hashmatch.VideoFrames` (from
        :func:`hashmatch.read_vpdq`), a :class:`hashmatch.HashedVideo` (its original
        variant is drawn) or ``(codes, qualities, timestamps)``.
    match : VideoMatch, optional
        The pair's match, for its segments, offsets and percentages; by default computed with
        :meth:`hashmatch.VideoIndex.match` at `max_distance` (other settings the defaults).
    max_distance : int, default 31
        The colour scale's end: distances above it are not drawn.
    axes : matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Frames are drawn evenly over each video's time span (vPDQ samples at a steady rate), so
    the matrix is an image of ``(banked frames, query frames)`` cells; every frame is drawn,
    whatever its quality or repetition (the percentages leave some out). Past
    :data:`MAX_CELLS` frames a side, each cell is the minimum over a block of frames.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> codes = hm.datasets.random_codes(20, seed=3)
    >>> banked = (codes, np.full(20, 100), np.arange(20.0))
    >>> upload = (codes[5:15], np.full(10, 100), np.arange(10.0))  # seconds 5-14, re-timed
    >>> from hashmatch.plotting import plot_video_match
    >>> figure = plot_video_match(upload, banked)
    >>> axis = figure.axes[0]
    >>> axis.images[0].get_array().shape  # (banked frames, query frames)
    (20, 10)
    >>> [(box.get_xy(), box.get_width()) for box in axis.patches]  # one box per segment
    [((0.0, 5.0), 9.0)]
    >>> axis.get_xlabel(), axis.get_ylabel()
    ('query time (s)', 'banked time (s)')
    """
    from hashmatch.distance import cdist
    from hashmatch.videos import VideoIndex, as_frames

    q = as_frames(query, "query", dihedral=_stacked(query))
    b = as_frames(banked, "banked")
    q_codes = q.codes[:, 0] if q.codes.ndim == 3 else q.codes
    if match is None:
        index = VideoIndex(max_distance=max_distance)
        index.add((b.codes, b.qualities, b.timestamps))
        found = index.match((q_codes, q.qualities, q.timestamps))
        match = found[0] if len(found) else None
    figure, (axis,) = _axes(axes, 1, 6.4)
    if axes is None:
        figure.set_size_inches(6.4, 5.2)
    # rows: banked frames (y), columns: query frames (x)
    distances = _pooled(cdist(q_codes, b.codes).T, MAX_CELLS)
    colours = _distance_colours()
    image = axis.imshow(
        np.ma.masked_greater(distances, max_distance),
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=colours,
        vmin=0,
        vmax=max(max_distance, 1),
        extent=(*_edges(q.timestamps), *_edges(b.timestamps)),
        zorder=1,
    )
    figure.colorbar(image, ax=axis, label="Hamming distance", extend="max")
    if match is not None:
        from matplotlib.patches import Rectangle

        for k, s in enumerate(match.segments):  # a box whose diagonal is the segment
            axis.add_patch(
                Rectangle(
                    (s.query_start, s.banked_start),
                    s.query_end - s.query_start,
                    s.banked_end - s.banked_start,
                    fill=False,
                    edgecolor="tab:red",
                    linewidth=1.5,
                    label=f"aligned segments ({len(match.segments)})" if k == 0 else "_segment",
                )
            )
        q_span = np.array(_edges(q.timestamps))
        for k, offset in enumerate(match.offsets):
            axis.plot(
                q_span,
                q_span + offset,
                color="0.5",
                linestyle=":",
                linewidth=1.0,
                zorder=0.5,  # under the matrix: the band of matches stays visible
                label=f"best offsets ({', '.join(f'{o:+.2f} s' for o in match.offsets)})"
                if k == 0
                else "_offset",
            )
        axis.set_title(
            f"query {match.query_pct:.1f}% found, banked {match.compared_pct:.1f}% found;"
            f" {'match' if match.matched else 'no match'}, longest {match.longest:.1f} s",
            fontsize="medium",
        )
        axis.legend(loc="upper left", fontsize="small", framealpha=0.9)
    else:
        axis.set_title("no frame within max_distance", fontsize="medium")
    axis.set_xlim(_edges(q.timestamps))
    axis.set_ylim(_edges(b.timestamps))
    axis.set_xlabel("query time (s)")
    axis.set_ylabel("banked time (s)")
    figure.tight_layout()
    return figure


MAX_CELLS = 200
"""The most cells drawn along each axis of :func:`plot_video_match`'s matrix: longer videos are
drawn with the minimum distance of each block of frames (a thin diagonal stays visible)."""


def _pooled(distances: np.ndarray, limit: int) -> np.ndarray:
    """The minimum of each block of ``distances`` so that neither side exceeds ``limit``."""
    rows, cols = distances.shape
    fr, fc = -(-rows // limit), -(-cols // limit)
    if fr == fc == 1:
        return distances
    padded = np.full((-(-rows // fr) * fr, -(-cols // fc) * fc), np.iinfo(np.uint16).max, np.uint16)
    padded[:rows, :cols] = distances
    blocks = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)
    pooled: np.ndarray = blocks.min(axis=(1, 3))
    return pooled


def _stacked(video: object) -> bool:
    """Whether a video's codes are 8-variant stacks (``hash_video(..., dihedral=True)``)."""
    codes = video[0] if isinstance(video, tuple) else getattr(video, "codes", None)
    return isinstance(codes, np.ndarray) and codes.ndim == 3


def _edges(times: np.ndarray) -> tuple[float, float]:
    """The time span a video's frames cover: half a sampling step beyond the first and last."""
    steps = np.diff(times)
    steps = steps[steps > 0]
    half = float(np.median(steps)) / 2 if len(steps) else 0.5
    if not len(times):
        return (0.0, 1.0)
    return (float(times[0]) - half, float(times[-1]) + half)


def _distance_colours() -> Any:
    """Dark for identical frames, light green at the threshold (still visible on white);
    transparent beyond it (masked), so the offset lines drawn under the image show there."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    viridis = matplotlib.colormaps["viridis"]
    colours = ListedColormap(viridis(np.linspace(0.0, 0.8, 256)), name="hashmatch_distance")
    return colours.with_extremes(bad=(1, 1, 1, 0), over=(1, 1, 1, 0))  # lines show through
