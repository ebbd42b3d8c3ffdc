"""Bulk near-duplicate detection: find_duplicates, find_matches, cluster.

Every join path (the cost model's choice, the brute force under every kernel, and the
multi-index join at many substring counts) is checked against a numpy brute-force oracle,
FlatIndex range search and faiss; clusters against scipy's connected components.
"""

from __future__ import annotations

import _thread
import sys
import threading

import faiss
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import distances
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import hashmatch as hm
from hashmatch import _core

Codes = npt.NDArray[np.uint8]


# ---- oracles and data ------------------------------------------------------------------------


def oracle_pairs(codes: Codes, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j within r, sorted by (i, j)."""
    full = distances(codes, codes)
    i, j = np.nonzero(np.triu(full <= r, 1))
    return i, j, full[i, j]


def oracle_matches(a: Codes, b: Codes, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    full = distances(a, b)
    i, j = np.nonzero(full <= r)
    return i, j, full[i, j]


def assert_pairs(pairs: hm.Pairs, expected: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    i, j, d = expected
    np.testing.assert_array_equal(pairs.i, i)
    np.testing.assert_array_equal(pairs.j, j)
    np.testing.assert_array_equal(pairs.distances, d)
    assert pairs.i.dtype == np.int64 and pairs.distances.dtype == np.int32


def canonical(labels: npt.ArrayLike) -> np.ndarray:
    """Labels renumbered by first appearance, so two partitions compare with ==."""
    _, first, inverse = np.unique(np.asarray(labels), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def scipy_labels(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return canonical(connected_components(graph, directed=False)[1])


def flip(codes: Codes, rng: np.random.Generator, most: int) -> Codes:
    """Copies with up to `most` random bits flipped."""
    bits = np.unpackbits(codes, axis=1)
    for row in bits:
        row[rng.choice(len(row), rng.integers(0, most + 1), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def make(kind: str, n: int, nbytes: int, rng: np.random.Generator) -> Codes:
    """random; clustered (copies with a few flips, chains of copies); skewed (one source
    copied many times, plus a bucket-busting block sharing its first 4 bytes); duplicates
    (exact copies only); constant (every hash the same)."""
    if kind == "random":
        return rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    if kind == "constant":
        return np.repeat(rng.integers(0, 256, (1, nbytes), dtype=np.uint8), n, axis=0)
    if kind == "duplicates":
        base = rng.integers(0, 256, (max(1, n // 4), nbytes), dtype=np.uint8)
        return base[rng.integers(0, len(base), n)]
    base = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    most = max(1, nbytes)  # up to one flip per byte: within typical radii
    if kind == "clustered":
        src = rng.integers(0, n, n // 2)
        dst = rng.permutation(n)[: n // 2]
        base[dst] = flip(base[src], rng, most)
        return base
    assert kind == "skewed"
    hot = rng.integers(0, n // 10 + 1, n // 3)
    base[n - len(hot) :] = flip(base[hot % 3], rng, most)
    base[: n // 5, : min(4, nbytes)] = base[0, : min(4, nbytes)]
    return base


KINDS = ["random", "clustered", "skewed", "duplicates", "constant"]


# ---- exactness -------------------------------------------------------------------------------


@pytest.mark.parametrize("nbytes", [1, 3, 8, 9, 16, 25, 32, 33])
@pytest.mark.parametrize("kind", KINDS)
def test_auto_plan_equals_oracle_at_every_radius(
    nbytes: int, kind: str, rng: np.random.Generator
) -> None:
    codes = make(kind, 150, nbytes, rng)
    bits = nbytes * 8
    for r in sorted({0, 1, 2, bits // 16, bits // 8, bits // 4, bits // 2, bits}):
        assert_pairs(hm.find_duplicates(codes, r), oracle_pairs(codes, r))


@pytest.mark.parametrize("nbytes", [8, 9, 16, 32])
@pytest.mark.parametrize("r", [0, 3, 10, 31])
def test_every_multi_index_plan_equals_oracle(
    nbytes: int, r: int, rng: np.random.Generator
) -> None:
    bits = nbytes * 8
    codes = make("clustered", 120, nbytes, rng)
    expected = oracle_pairs(codes, min(r, bits))
    tried = 0
    for m in [*range(1, 17), *range(17, min(bits, max(r + 1, 64)) + 1, 7)]:
        try:
            pairs = hm.find_duplicates(codes, min(r, bits), method="multi-index", substrings=m)
        except hm.InvalidArgument as error:
            assert "substrings" in str(error)  # too wide to bucket: named, never wrong
            continue
        assert pairs.plan.method == "multi-index"
        assert len(pairs.plan.substrings) >= 1
        assert_pairs(pairs, expected)
        tried += 1
    assert tried >= 3


@pytest.mark.parametrize("kind", KINDS)
def test_brute_force_equals_oracle_on_every_kernel(
    kernel: str, kind: str, rng: np.random.Generator
) -> None:
    for nbytes in (8, 9, 32, 65):
        codes = make(kind, 70, nbytes, rng)
        for r in (0, 5, nbytes * 4, nbytes * 8):
            pairs = hm.find_duplicates(codes, r, method="brute-force")
            assert pairs.plan.method == "brute-force"
            assert_pairs(pairs, oracle_pairs(codes, r))


@pytest.mark.parametrize("method", ["multi-index", "brute-force"])
@pytest.mark.parametrize("nbytes", [8, 32])
def test_equals_pairwise_flat_range_search_and_faiss(
    nbytes: int, method: str, rng: np.random.Generator
) -> None:
    codes = make("clustered", 400, nbytes, rng)
    r = 10 if nbytes == 8 else 31
    pairs = hm.find_duplicates(codes, r, method=method)  # type: ignore[arg-type]
    assert pairs.plan.method == method

    index = hm.FlatIndex(nbytes * 8)
    index.add(codes)
    lims, dist, ids = index.range_search(codes, r)
    rows = np.repeat(np.arange(len(codes)), np.diff(lims))
    keep = ids > rows
    order = np.lexsort((ids[keep], rows[keep]))
    assert_pairs(pairs, (rows[keep][order], ids[keep][order], dist[keep][order]))

    flat = faiss.IndexBinaryFlat(nbytes * 8)
    flat.add(codes)
    flims, fdist, fids = flat.range_search(codes, r + 1)  # faiss's radius is strict
    frows = np.repeat(np.arange(len(codes)), np.diff(flims).astype(np.int64))
    keep = fids > frows
    order = np.lexsort((fids[keep], frows[keep]))
    assert_pairs(pairs, (frows[keep][order], fids[keep][order], fdist[keep][order]))


def test_clustered_dataset_at_scale_equals_flat_index_pairs() -> None:
    codes = hm.datasets.clustered_codes(20_000, 256, seed=4, skew=1.1)
    pairs = hm.find_duplicates(codes, 31)
    assert pairs.plan.method == "multi-index"
    brute = hm.find_duplicates(codes, 31, method="brute-force")
    assert_pairs(pairs, (brute.i, brute.j, brute.distances))
    assert len(pairs) > 5_000


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("chunk_rows", [None, 1, 7, 1000])
def test_threads_and_chunk_sizes_do_not_change_results(
    threads: int, chunk_rows: int | None
) -> None:
    codes = hm.datasets.clustered_codes(3_000, 64, seed=2, skew=1.0)
    reference = hm.find_duplicates(codes, 10, threads=1)
    for method in ("auto", "brute-force"):
        pairs = hm.find_duplicates(
            codes,
            10,
            threads=threads,
            chunk_rows=chunk_rows,
            method=method,  # type: ignore[arg-type]
        )
        assert_pairs(pairs, (reference.i, reference.j, reference.distances))


def test_raw_units_are_the_same_whatever_the_threads() -> None:
    codes = hm.datasets.clustered_codes(5_000, 256, seed=3)
    outputs = []
    for threads in (1, 2, 4):
        core = _core.JoinCore(codes, None, 31, -1, 0)
        outputs.append(core.run(0, core.units, threads))
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@given(
    data=st.data(),
    nbytes=st.sampled_from([1, 2, 8, 9, 16, 32]),
    n=st.integers(0, 60),
)
def test_hypothesis_any_plan_equals_oracle(data: st.DataObject, nbytes: int, n: int) -> None:
    bits = nbytes * 8
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    codes = make(data.draw(st.sampled_from(KINDS)), max(n, 1), nbytes, rng)[:n]
    r = data.draw(st.integers(0, bits))
    method = data.draw(st.sampled_from(["auto", "brute-force", "multi-index"]))
    substrings = None
    if method == "multi-index":
        substrings = data.draw(st.integers(1, min(bits, max(r + 1, 64))))
    try:
        pairs = hm.find_duplicates(codes, r, method=method, substrings=substrings)
    except hm.InvalidArgument as error:
        assert method == "multi-index" and "too wide" in str(error)
        return
    assert_pairs(pairs, oracle_pairs(codes, r))


# ---- cross joins -----------------------------------------------------------------------------


@pytest.mark.parametrize("nbytes", [8, 9, 32])
def test_find_matches_equals_oracle(nbytes: int, rng: np.random.Generator) -> None:
    known = make("clustered", 200, nbytes, rng)
    uploads = np.concatenate([flip(known[:60], rng, nbytes), make("random", 40, nbytes, rng)])
    bits = nbytes * 8
    for r in (0, 2, bits // 8, bits // 2, bits):
        expected = oracle_matches(uploads, known, r)
        assert_pairs(hm.find_matches(uploads, known, r), expected)
        assert_pairs(hm.find_matches(uploads, known, r, method="brute-force"), expected)
        for m in (2, 5, 9):
            try:
                pairs = hm.find_matches(uploads, known, r, method="multi-index", substrings=m)
            except hm.InvalidArgument:
                continue
            assert_pairs(pairs, expected)


def test_find_matches_with_empty_sides_and_ids() -> None:
    known = hm.datasets.random_codes(50, 64, seed=1)
    none = np.empty((0, 8), dtype=np.uint8)
    assert len(hm.find_matches(none, known, 10)) == 0
    assert len(hm.find_matches(known, none, 10)) == 0
    pairs = hm.find_matches(
        known[:3], known, 0, ids=["a", "b", "c"], other_ids=np.arange(50) + 1000
    )
    frame = pairs.to_pandas()
    assert frame["id_i"].tolist() == ["a", "b", "c"]
    assert frame["id_j"].tolist() == [1000, 1001, 1002]
    assert not pairs.self_join


# ---- edge cases ------------------------------------------------------------------------------


def test_empty_single_and_identical_sets() -> None:
    assert len(hm.find_duplicates(np.empty((0, 32), np.uint8), 31)) == 0
    assert len(hm.find_duplicates(hm.datasets.random_codes(1, 256), 256)) == 0
    same = np.repeat(hm.datasets.random_codes(1, 256), 40, axis=0)
    pairs = hm.find_duplicates(same, 0)
    assert len(pairs) == 40 * 39 // 2 and not pairs.distances.any()
    clusters = hm.cluster(pairs)
    assert clusters.n_clusters == 1 and clusters.sizes.tolist() == [40]
    assert clusters.representatives.tolist() == [0]  # every member ties: the lowest row


def test_radius_max_reports_every_pair() -> None:
    codes = hm.datasets.random_codes(50, 72)
    pairs = hm.find_duplicates(codes, 72)
    assert len(pairs) == 50 * 49 // 2


# ---- clusters --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["clustered", "skewed", "duplicates", "random"])
def test_cluster_labels_equal_scipy_connected_components(
    kind: str, rng: np.random.Generator
) -> None:
    codes = make(kind, 300, 16, rng)
    for r in (0, 4, 16, 40):
        i, j, _ = oracle_pairs(codes, r)
        clusters = hm.cluster(codes, r)
        np.testing.assert_array_equal(clusters.labels, scipy_labels(len(codes), i, j))
        assert clusters.labels.tolist() == canonical(clusters.labels).tolist()  # by lowest row
        np.testing.assert_array_equal(clusters.sizes, np.bincount(clusters.labels))
        assert clusters.sizes.sum() == len(codes)
        assert (clusters.labels[clusters.representatives] == np.arange(clusters.n_clusters)).all()


def test_clustering_pairs_again_at_a_lower_threshold_needs_no_new_join() -> None:
    codes = hm.datasets.clustered_codes(2_000, 64, seed=5, max_flips=12)
    pairs = hm.find_duplicates(codes, 12)
    for r in (0, 3, 8, 12):
        np.testing.assert_array_equal(hm.cluster(pairs, r).labels, hm.cluster(codes, r).labels)


def brute_medoid(codes: Codes, members: np.ndarray) -> int:
    sums = distances(codes[members], codes[members]).sum(1)
    return int(members[np.argmin(sums)])  # argmin: the first (lowest row) of ties


def test_medoids_are_exact(rng: np.random.Generator) -> None:
    codes = make("clustered", 400, 8, rng)
    clusters = hm.cluster(codes, 12)
    assert clusters.sizes.max() >= 3
    for label in range(clusters.n_clusters):
        members = clusters.members(label)
        assert clusters.representatives[label] == brute_medoid(codes, members)


def test_medoid_of_a_cluster_beyond_the_exact_size_is_a_sampled_member() -> None:
    rng = np.random.default_rng(9)
    base = rng.integers(0, 256, (1, 8), dtype=np.uint8)
    codes = flip(np.repeat(base, 5000, axis=0), rng, 3)
    clusters = hm.cluster(codes, 64)
    assert clusters.n_clusters == 1
    rep = clusters.representatives[0]
    # Scored against all members: never worse than the worst member, and close to the best.
    sums = distances(codes, codes).sum(1)
    assert sums[rep] <= np.sort(sums)[len(sums) // 100]


def test_quality_representatives() -> None:
    codes = hm.from_hex(["00" * 8, "00" * 7 + "01", "00" * 7 + "03", "ff" * 8, "ff" * 7 + "fe"])
    clusters = hm.cluster(codes, 2, qualities=[10, 90, 90, 50, 50])
    assert clusters.representative == "quality"
    assert clusters.labels.tolist() == [0, 0, 0, 1, 1]
    assert clusters.representatives.tolist() == [1, 3]  # ties: the lowest row
    assert clusters.duplicates().tolist() == [True, False, True, False, True]
    medoid = hm.cluster(codes, 2, qualities=[10, 90, 90, 50, 50], representative="medoid")
    assert medoid.representatives.tolist() == [1, 3]
    huge = np.array([2**53 + 1, 2**53, 0, 1, 1], dtype=np.int64)  # not exact as float64
    assert hm.cluster(codes, 2, qualities=huge).representatives.tolist() == [0, 3]


def test_threshold_curve_matches_clustering_at_each_threshold() -> None:
    codes = hm.datasets.clustered_codes(1_500, 64, seed=6, max_flips=10, skew=1.0)
    pairs = hm.find_duplicates(codes, 10)
    curve = pairs.threshold_curve()
    assert curve["threshold"].tolist() == list(range(11))
    for t in range(11):
        clusters = hm.cluster(pairs, t)
        assert curve["clusters"][t] == clusters.n_clusters
        assert curve["largest"][t] == clusters.sizes.max()
        assert curve["clustered"][t] == clusters.sizes[clusters.sizes > 1].sum()
        assert curve["pairs"][t] == np.count_nonzero(pairs.distances <= t)


def test_to_pandas_and_ids() -> None:
    codes = hm.from_hex(["00" * 8, "00" * 7 + "01", "ff" * 8])
    pairs = hm.find_duplicates(codes, 4, ids=["x.jpg", "y.jpg", "z.jpg"])
    frame = pairs.to_pandas()
    assert frame.columns.tolist() == ["i", "j", "distance", "id_i", "id_j"]
    assert frame.values.tolist() == [[0, 1, 1, "x.jpg", "y.jpg"]]
    table = hm.cluster(pairs).to_pandas()
    assert table.columns.tolist() == ["row", "id", "cluster", "size", "representative"]
    assert table["cluster"].tolist() == [0, 0, 1]
    assert table["size"].tolist() == [2, 2, 1]
    i, j, d = pairs  # unpacks like a tuple
    assert (i.tolist(), j.tolist(), d.tolist()) == ([0], [1], [1])
    assert "1 duplicates within 4 among 3 hashes" in repr(pairs)


def test_plots_draw_real_data() -> None:
    import matplotlib

    matplotlib.use("Agg")
    codes = hm.datasets.clustered_codes(500, 64, seed=7)
    pairs = hm.find_duplicates(codes, 8)
    figure = pairs.plot()
    left, right = figure.axes
    heights = [patch.get_height() for patch in left.patches]
    assert heights == np.bincount(pairs.distances, minlength=9).tolist()
    line = right.get_lines()[0]
    assert line.get_ydata().tolist() == pairs.threshold_curve()["clustered"].tolist()
    clusters = hm.cluster(pairs)
    figure = clusters.plot()
    sizes, counts = figure.axes[0].get_lines()[0].get_data()
    assert dict(zip(sizes.tolist(), counts.tolist(), strict=True)) == dict(
        zip(*np.unique(clusters.sizes, return_counts=True), strict=True)
    )
    with pytest.raises(hm.InvalidArgument, match="axes"):
        pairs.plot(axes=[figure.axes[0]])
    with pytest.raises(hm.InvalidArgument, match="find_duplicates"):
        hm.find_matches(codes, codes, 3).plot()
    empty = hm.cluster(np.empty((0, 8), np.uint8), 3).plot()
    assert empty.axes[0].get_lines()[0].get_xdata().size == 0


# ---- planning --------------------------------------------------------------------------------


def test_plan_join_picks_multi_index_for_standard_radii_and_brute_force_for_huge_ones() -> None:
    assert hm.plan_join(1_000_000, 256, 31).method == "multi-index"
    assert hm.plan_join(1_000_000, 64, 10).method == "multi-index"
    assert hm.plan_join(100_000, 64, 32).method == "brute-force"
    plan = hm.plan_join(1_000_000, 256, 31, n_other=5_000_000)
    assert plan.multi_index_seconds < plan.brute_force_seconds
    for first, length, radius in plan.substrings:
        assert 0 <= first < 256 and 0 < length <= 24 and radius >= 0
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        hm.plan_join(10, 64, 65)
    with pytest.raises(hm.InvalidArgument, match="bits"):
        hm.plan_join(10, 60, 5)
    with pytest.raises(hm.InvalidArgument, match="bits"):
        hm.plan_join(10, 32768, 5)
    with pytest.raises(hm.InvalidArgument, match="n"):
        hm.plan_join(-1, 64, 5)


def test_plan_substrings_satisfy_the_pigeonhole_bound() -> None:
    for bits in (64, 128, 256):
        for r in range(0, bits // 2):
            plan = hm.plan_join(100_000, bits, r)
            if plan.method != "multi-index":
                continue
            # Any pair within r has some substring within its radius: sum(radius + 1) > r.
            assert sum(radius + 1 for _, _, radius in plan.substrings) > r
            starts = [first for first, _, _ in plan.substrings]
            assert starts == sorted(starts)


# ---- interruption ----------------------------------------------------------------------------


def test_ctrl_c_stops_a_long_join_and_the_process_stays_usable() -> None:
    codes = hm.datasets.random_codes(120_000, 256, seed=8)  # brute force: many seconds
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        hm.find_duplicates(codes, 31, method="brute-force", threads=2)
    timer.join()
    small = codes[:300].copy()
    small[7] = small[3]
    assert_pairs(hm.find_duplicates(small, 31), oracle_pairs(small, 31))


def test_ctrl_c_stops_a_multi_index_join() -> None:
    codes = hm.datasets.clustered_codes(400_000, 256, seed=8)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        hm.find_duplicates(codes, 31, threads=2, method="multi-index", substrings=11)
    timer.join()
    small = codes[:2000]
    assert_pairs(hm.find_duplicates(small, 31, method="multi-index"), oracle_pairs(small, 31))


def test_a_join_stays_usable_after_an_interrupt() -> None:
    codes = hm.datasets.clustered_codes(300_000, 256, seed=9)
    core = _core.JoinCore(codes, None, 31, 11, 0)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        core.run(0, core.units, 2)
    timer.join()
    again = [core.run(u, u + 1, 2) for u in range(core.units)]
    fresh = _core.JoinCore(codes, None, 31, 11, 0)
    expected = _core.merge_pairs([fresh.run(0, fresh.units, 2)], len(codes), 2)
    for got, want in zip(_core.merge_pairs(again, len(codes), 2), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_constant_bits_are_left_out_of_the_plan_and_results_stay_exact() -> None:
    """64-bit hashes zero-padded to 256 bits: the planner probes only the varying bits, and
    pairs stay exact even where rows outside the planner's sample vary in the padding."""
    rng = np.random.default_rng(11)
    padded = np.zeros((10_000, 32), np.uint8)
    padded[:, 24:] = hm.datasets.clustered_codes(10_000, 64, seed=3)
    pairs = hm.find_duplicates(padded, 10)
    assert pairs.plan.method == "multi-index"
    assert min(first for first, _, _ in pairs.plan.substrings) >= 192  # bytes 24.. only
    inner = hm.find_duplicates(padded[:, 24:], 10)
    assert_pairs(pairs, (inner.i, inner.j, inner.distances))
    # Odd rows are never sampled (every 2nd row is): flip padding bits there.
    tricky = padded.copy()
    odd = np.arange(1, 10_000, 2)
    tricky[odd, rng.integers(0, 24, len(odd))] ^= 1
    tricky[4001] = tricky[4000]  # a pair at distance 0 across the varied padding ...
    tricky[4003] = tricky[4000]
    tricky[4003, 0] ^= 0x10  # ... and one at distance 1 inside it
    pairs = hm.find_duplicates(tricky, 10)
    assert min(first for first, _, _ in pairs.plan.substrings) >= 192
    assert_pairs(pairs, oracle_pairs(tricky, 10))


def test_progress_bar_counts_every_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The join's bar comes from hashmatch.progress (the one policy): shown when asked for
    (tqdm would still hide it off a terminal, as under pytest: pretend to be one)."""
    import tqdm.auto

    from hashmatch import progress

    bars: list[tqdm.auto.tqdm] = []

    class Recording(tqdm.auto.tqdm):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.asked = kwargs["disable"] is None  # the policy: None = shown on a terminal
            kwargs["disable"] = not self.asked
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(progress, "tqdm", Recording)  # notebook widgets or a text bar
    codes = hm.datasets.clustered_codes(20_000, 256, seed=1)
    pairs = hm.find_duplicates(codes, 31, progress=True)
    (bar,) = bars
    assert bar.asked and bar.desc == "finding duplicates" and not bar.leave
    assert bar.n == bar.total > 1
    assert bar.postfix == f"pairs={len(pairs)}"
    hm.find_duplicates(codes, 31)  # off by default
    assert not bars[1].asked


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_distance": -1}, hm.InvalidArgument, "max_distance"),
        ({"max_distance": 65}, hm.InvalidArgument, "max_distance"),
        ({"max_distance": 3.0}, hm.InvalidType, "max_distance"),
        ({"max_distance": 3, "ids": [1, 2]}, hm.InvalidArgument, "ids"),
        ({"max_distance": 3, "ids": "abc"}, hm.InvalidType, "ids"),
        ({"max_distance": 3, "method": "annoy"}, hm.InvalidArgument, "method"),
        ({"max_distance": 3, "substrings": 4}, hm.InvalidArgument, "substrings"),
        (
            {"max_distance": 3, "method": "multi-index", "substrings": 0},
            hm.InvalidArgument,
            "substrings",
        ),
        (
            {"max_distance": 3, "method": "multi-index", "substrings": 65},
            hm.InvalidArgument,
            "substrings",
        ),
        (
            {"max_distance": 30, "method": "multi-index", "substrings": 1},
            hm.InvalidArgument,
            "too wide",
        ),
        ({"max_distance": 3, "chunk_rows": 0}, hm.InvalidArgument, "chunk_rows"),
        (
            {"max_distance": 3, "method": "multi-index", "substrings": 2**70},
            hm.InvalidArgument,
            "substrings",
        ),
        ({"max_distance": 3, "threads": 0}, hm.InvalidArgument, "threads"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, error: type, match: str) -> None:
    codes = hm.datasets.random_codes(10, 64)
    with pytest.raises(error, match=match):
        hm.find_duplicates(codes, **kwargs)


def test_bad_hashes_and_mismatched_sets() -> None:
    with pytest.raises(hm.HashFormatError):
        hm.find_duplicates(["00" * 8, "zz" * 8], 3)
    with pytest.raises(hm.InvalidArgument):
        hm.find_duplicates(np.zeros((4, 8, 2), np.uint8), 3)
    with pytest.raises(hm.HashTypeMismatch, match="others"):
        hm.find_matches(hm.datasets.random_codes(3, 64), hm.datasets.random_codes(3, 256), 3)
    assert issubclass(hm.HashTypeMismatch, hm.HashmatchError)


def test_huge_chunk_rows_are_capped_not_wrapped() -> None:
    codes = np.zeros((10, 8), np.uint8)
    pairs = hm.find_duplicates(codes, 0, method="multi-index", chunk_rows=2**64 - 1)
    assert len(pairs) == 45


def test_cluster_checks_qualities_before_the_join(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_join(*args: object, **kwargs: object) -> None:
        raise AssertionError("joined before validating")

    monkeypatch.setattr(hm.dedup, "find_duplicates", no_join)
    with pytest.raises(hm.InvalidArgument, match="qualities"):
        hm.cluster(hm.datasets.random_codes(10, 64), 3, qualities=[1, 2])


def test_bad_cluster_arguments() -> None:
    codes = hm.datasets.random_codes(10, 64)
    pairs = hm.find_duplicates(codes, 5)
    with pytest.raises(hm.InvalidArgument, match="linkage"):
        hm.cluster(pairs, linkage="complete")  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        hm.cluster(codes)
    with pytest.raises(hm.InvalidArgument, match="max_distance: expected at most"):
        hm.cluster(pairs, 6)
    with pytest.raises(hm.InvalidArgument, match="qualities"):
        hm.cluster(pairs, qualities=[1, 2])
    with pytest.raises(hm.InvalidType, match="qualities"):
        hm.cluster(pairs, qualities=[np.nan] * 10)
    with pytest.raises(hm.InvalidArgument, match="qualities"):
        hm.cluster(pairs, representative="quality")
    with pytest.raises(hm.InvalidArgument, match="representative"):
        hm.cluster(pairs, representative="centroid")  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match="cross join"):
        hm.cluster(hm.find_matches(codes, codes, 3))
    with pytest.raises(hm.InvalidArgument, match="label"):
        hm.cluster(pairs).members(99)


def test_core_rejects_edges_outside_the_graph() -> None:
    with pytest.raises(hm.InvalidArgument, match="pairs"):
        _core.connected_components(3, np.array([0]), np.array([3]), np.array([0], np.int32), 5)
    with pytest.raises(hm.InvalidArgument, match="pairs"):
        _core.connected_components(3, np.array([-1]), np.array([2]), np.array([0], np.int32), 5)
    with pytest.raises(hm.InvalidArgument, match="lengths"):
        _core.threshold_curve(3, np.array([0, 1]), np.array([2]), np.array([0], np.int32), 5)


def test_max_pairs_stops_a_join_that_links_too_much() -> None:
    codes = hm.datasets.random_codes(3_000, 64, seed=3)
    with pytest.raises(hm.InvalidArgument, match="max_pairs: more than 1,000 pairs"):
        hm.find_duplicates(codes, 64, max_pairs=1_000)  # every pair: 4.5M
    assert len(hm.find_duplicates(codes, 64, max_pairs=3_000 * 2_999 // 2)) == 3_000 * 2_999 // 2
    with pytest.raises(hm.InvalidArgument, match="max_pairs"):
        hm.find_duplicates(codes, 5, max_pairs=-1)


def test_any_memory_layout_gives_the_same_pairs() -> None:
    codes = hm.datasets.clustered_codes(2_000, 128, seed=4)
    expected = hm.find_duplicates(codes, 20)
    wide = np.zeros((2_000, 32), np.uint8)
    wide[:, ::2] = codes
    for layout in (np.asfortranarray(codes), wide[:, ::2], codes[::-1][::-1]):
        assert_pairs(hm.find_duplicates(layout, 20), (expected.i, expected.j, expected.distances))
    other = hm.find_matches(np.asfortranarray(codes[:500]), wide[:, ::2], 20)
    assert_pairs(other, oracle_matches(codes[:500], codes, 20))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_peak_memory_of_a_self_join_stays_near_the_input_size() -> None:
    """200,000 PDQ hashes (6.4 MB): a distance matrix would take 40 GB; the join's working
    memory is the input's bucketed copy plus the pairs."""
    import subprocess

    script = """
import hashmatch as hm

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])  # KiB

codes = hm.datasets.clustered_codes(200_000, 256, seed=1)
hm.find_duplicates(codes[:1000], 31)  # load everything once
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
pairs = hm.find_duplicates(codes, 31, threads=2)
print(len(pairs), status("VmHWM:") - before)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    pairs, grown_kib = map(int, out.stdout.splitlines()[-1].split())
    assert pairs > 50_000
    assert grown_kib < 100 * 1024, f"peak RSS grew by {grown_kib / 1024:.0f} MiB"  # seen: 11 MiB


def test_merge_pairs_sorts_chunks_and_releases_them() -> None:
    rng = np.random.default_rng(5)
    parts = []
    for _ in range(4):
        n = int(rng.integers(0, 50))
        i = rng.integers(0, 30, n).astype(np.uint32)
        j = rng.integers(0, 2**32 - 1, n, dtype=np.uint64).astype(np.uint32)
        parts.append((i, j, rng.integers(0, 4097, n).astype(np.uint16)))
    i = np.concatenate([p[0] for p in parts]).astype(np.int64)
    j = np.concatenate([p[1] for p in parts]).astype(np.int64)
    d = np.concatenate([p[2] for p in parts]).astype(np.int32)
    keep = np.unique(np.stack([i, j]), axis=1, return_index=True)[1]  # (i, j) unique, as joins give
    keep_set = set(keep.tolist())
    offset = 0
    unique_parts = []
    for part in parts:
        rows = [k - offset for k in range(offset, offset + len(part[0])) if k in keep_set]
        unique_parts.append(tuple(a[rows] for a in part))
        offset += len(part[0])
    order = np.lexsort((j[keep], i[keep]))
    out = _core.merge_pairs(unique_parts, 30, 2)
    assert unique_parts == []  # each chunk released once merged
    for got, want in zip(out, (i[keep][order], j[keep][order], d[keep][order]), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(hm.InvalidArgument, match="row outside"):
        _core.merge_pairs([(np.array([30], np.uint32),) * 2 + (np.array([1], np.uint16),)], 30, 1)
