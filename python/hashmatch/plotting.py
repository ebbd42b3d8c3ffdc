"""Plots for choosing a near-duplicate threshold (needs matplotlib: ``hashmatch[plot]``).

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

__all__ = ["plot_clusters", "plot_pairs"]


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
