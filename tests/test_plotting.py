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


# ------------------------------------------------------------------------ video matches


def clip(codes: np.ndarray, start: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A video at 1 frame a second from ``start``, quality 100."""
    n = len(codes)
    return codes, np.full(n, 100), start + np.arange(n, dtype=float)


def test_video_match_plot_draws_the_distance_matrix_segments_and_offsets() -> None:
    from hashmatch.plotting import plot_video_match

    codes = hm.datasets.random_codes(40, seed=5)
    banked = clip(codes)
    edited = hm.datasets.flip_bits(codes[10:30], [3] * 20, seed=6)
    other = hm.datasets.random_codes(8, seed=7)
    upload = clip(np.concatenate([other, edited]))  # seconds 10-29 shown at 8-27
    match = hm.VideoIndex()
    match.add(banked)
    (expected,) = match.match(upload)
    figure = plot_video_match(upload, banked)
    (axis, colorbar) = figure.axes
    image = axis.images[0]
    distances = hm.cdist(upload[0], codes).T  # banked frames as rows
    data = image.get_array()
    np.testing.assert_array_equal(data.data, distances)
    np.testing.assert_array_equal(data.mask, distances > 31)
    assert image.get_extent() == [-0.5, 27.5, -0.5, 39.5]
    boxes = axis.patches
    assert len(boxes) == len(expected.segments) >= 1
    for box, segment in zip(boxes, expected.segments, strict=True):
        assert box.get_xy() == (segment.query_start, segment.banked_start)
        assert box.get_width() == segment.query_end - segment.query_start
        assert box.get_height() == segment.banked_end - segment.banked_start
    assert (expected.segments[0].query_start, expected.segments[0].banked_start) == (8.0, 10.0)
    lines = axis.get_lines()
    assert len(lines) == len(expected.offsets)
    for line, offset in zip(lines, expected.offsets, strict=True):
        x, y = line.get_data()
        np.testing.assert_allclose(np.asarray(y) - np.asarray(x), offset)
    assert axis.get_xlabel() == "query time (s)" and axis.get_ylabel() == "banked time (s)"
    assert colorbar.get_ylabel() == "Hamming distance"
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    assert legend[0] == "aligned segments (1)" and legend[1].startswith("best offsets (+2.00 s")
    assert axis.get_title() == (
        f"query {expected.query_pct:.1f}% found, banked {expected.compared_pct:.1f}% found;"
        f" no match, longest {expected.longest:.1f} s"
    )
    assert_no_overlap(axis)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_video_match_plot_options() -> None:
    import matplotlib.pyplot as plt
    from hashmatch.plotting import MAX_CELLS, plot_video_match

    codes = hm.datasets.random_codes(30, seed=8)
    banked = clip(codes)
    # a given match is drawn as given, on given axes, at another radius
    bank = hm.VideoIndex()
    bank.add(banked)
    (match,) = bank.match(clip(codes[5:20]), max_distance=5)
    figure, axis = plt.subplots()
    assert (
        plot_video_match(clip(codes[5:20]), banked, match=match, max_distance=5, axes=axis)
        is figure
    )
    assert len(axis.patches) == len(match.segments) and axis.images[0].get_clim() == (0, 5)
    # nothing within the radius: the matrix only, and the title says so
    unrelated = plot_video_match(clip(hm.datasets.random_codes(5, seed=9)), banked)
    assert unrelated.axes[0].get_title() == "no frame within max_distance"
    assert not unrelated.axes[0].patches and unrelated.axes[0].images[0].get_array().mask.all()
    # a dihedral query: its original variants are drawn
    stacks = np.repeat(codes[:10, None, :], 8, axis=1)
    stacks[:, 1:] ^= 0xFF
    drawn = plot_video_match(clip(stacks), banked).axes[0].images[0].get_array()
    np.testing.assert_array_equal(drawn.data, hm.cdist(codes[:10], codes).T)
    # long videos: each cell the minimum over a block of frames
    long = hm.datasets.random_codes(3 * MAX_CELLS + 1, seed=10)
    big = plot_video_match(clip(long[:50]), clip(long)).axes[0].images[0].get_array()
    full = hm.cdist(long[:50], long).T
    assert big.shape == (-(-len(long) // 4), 50)
    np.testing.assert_array_equal(big.data[:-1], full[:-1].reshape(-1, 4, 50).min(axis=1))
    np.testing.assert_array_equal(big.data[-1], full[-1])
    plt.close("all")
