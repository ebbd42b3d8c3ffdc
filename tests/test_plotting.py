"""Plots read at a glance: every curve is visible on its axis and no tick labels collide
(checked on the drawn figure's geometry, not its pixels)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import hashmatch as hm

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def pairs() -> hm.Pairs:
    """A realistic collection: 200,000 PDQ hashes, 30% re-uploads, at the PDQ threshold."""
    return hm.find_duplicates(hm.datasets.clustered_codes(200_000, 256, seed=1), 31)


def small_clusters() -> hm.Clusters:
    return hm.cluster(hm.find_duplicates(hm.datasets.clustered_codes(300, 64, seed=3), 4))


def shown_labels(axis: Any) -> list[Any]:
    """Window extents of the tick labels `axis` (an XAxis or YAxis) draws: ticks inside the
    view, with text."""
    axis.figure.canvas.draw()
    low, high = sorted(axis.get_view_interval())
    boxes = []
    for minor in (False, True):
        ticks = axis.get_minor_ticks() if minor else axis.get_major_ticks()
        locs = axis.get_minorticklocs() if minor else axis.get_majorticklocs()
        for tick, loc in zip(ticks, locs, strict=False):
            label = tick.label1
            if low <= loc <= high and label.get_visible() and label.get_text():
                boxes.append((label.get_text(), label.get_window_extent()))
    return boxes


def assert_no_overlap(axes: Any) -> None:
    """No two tick labels of an axis touch: each keeps a font size's space from the next."""
    for axis in (axes.xaxis, axes.yaxis):
        boxes = shown_labels(axis)
        assert boxes, "no tick labels at all"
        font = axis.get_ticklabels()[0].get_fontsize() * axes.figure.dpi / 72  # points -> px
        for k, (text, box) in enumerate(boxes):
            for other, other_box in boxes[k + 1 :]:
                apart = not box.padded(font / 2).overlaps(other_box.padded(font / 2))
                assert apart, f"tick labels {text!r} and {other!r} collide"


def vertical_extent(line: Any) -> float:
    """The share of its axes' height a plotted line spans on screen."""
    axes = line.axes
    axes.figure.canvas.draw()
    y = line.get_transform().transform(line.get_xydata())[:, 1]
    return float((y.max() - y.min()) / axes.get_window_extent().height)


def test_pairs_plot_shows_both_curves_of_the_threshold_panel(pairs: hm.Pairs) -> None:
    """Hashes with a duplicate number ~10^5, the largest cluster a few: on one linear axis the
    largest cluster was a flat line at zero. Both now rise visibly, on one log scale."""
    curve = pairs.threshold_curve()
    assert curve["clustered"][-1] > 10_000 and curve["largest"][-1] < 20  # what makes it hard
    figure = pairs.plot()
    _, right = figure.axes
    clustered, largest = right.get_lines()
    assert right.get_yscale() == "log"
    assert largest.get_ydata().tolist() == curve["largest"].tolist()
    assert vertical_extent(largest) > 0.05  # 3 to 8 of 10^5: was 0.00005
    assert vertical_extent(clustered) > 0.1
    for axes in figure.axes:
        assert_no_overlap(axes)


def test_cluster_plot_tick_labels_do_not_collide(pairs: hm.Pairs) -> None:
    """Cluster sizes span less than a decade (1 to ~8): the default log axis labelled the
    ticks between 1 and 10 as '2x10^0', '3x10^0', '4x10^0', '6x10^0' and they ran together."""
    for clusters in (hm.cluster(pairs), small_clusters()):
        figure = clusters.plot()
        (axes,) = figure.axes
        assert axes.get_xscale() == axes.get_yscale() == "log"
        assert_no_overlap(axes)
        labels = [text for text, _ in shown_labels(axes.xaxis)]
        assert "1" in labels and "2" in labels  # sizes between the decades are labelled


@pytest.mark.parametrize("largest", [2, 4, 6, 7, 8, 9, 40, 1_000])
def test_cluster_plot_tick_labels_do_not_collide_for_any_largest_cluster(largest: int) -> None:
    codes = hm.datasets.random_codes(2_000, 64, seed=largest)
    codes[1:largest] = codes[0]  # one cluster of `largest` copies, the rest singletons
    codes[1_000:1_003] = codes[999]  # and one of 4
    assert_no_overlap(hm.cluster(codes, 0).plot().axes[0])


def test_plots_on_given_axes_and_without_duplicates() -> None:
    import matplotlib.pyplot as plt

    figure, given = plt.subplots(1, 2)
    codes = hm.datasets.random_codes(100, 256, seed=2)  # no pairs within 31
    pairs = hm.find_duplicates(codes, 31)
    assert pairs.plot(axes=given) is figure
    assert given[1].get_yscale() == "log"  # the largest cluster is 1 throughout
    np.testing.assert_array_equal(given[1].get_lines()[1].get_ydata(), np.ones(32))
    assert_no_overlap(given[1])
    empty = hm.find_duplicates(np.empty((0, 32), np.uint8), 31).plot()
    assert empty.axes[1].get_yscale() == "linear"  # nothing to put on a log scale
    plt.close("all")
