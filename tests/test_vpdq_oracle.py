"""The vPDQ matching oracles (tests/vpdq_oracle.py) agree with python-threatexchange's matcher.

pytx's brute matcher costs about 30 us a frame pair (it compares 256-character bit strings), so
a pair of full sample files (~600 frames each) takes seconds. The pairs of sample files are
therefore matched at one frame per second (the first frame of each second, as vpdq and pytx
hash by default: ~20 frames a chair video); two files are matched with themselves on every frame.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import vpdq_oracle as oracle

import hashmatch as hm

DATA = Path(__file__).parent / "data" / "vpdq"
SAMPLES = sorted(DATA.glob("*.txt"))


def one_per_second(frames: hm.VideoFrames) -> hm.VideoFrames:
    """The first frame of each second."""
    seconds = np.floor(frames.timestamps)
    keep = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    return hm.VideoFrames(
        frames.codes[keep], frames.qualities[keep], frames.frames[keep], frames.timestamps[keep]
    )


def make(hexes: list[str], qualities: list[int]) -> hm.VideoFrames:
    return hm.VideoFrames(
        hexes, qualities, range(len(hexes)), [float(i) for i in range(len(hexes))]
    )


@pytest.fixture(scope="module")
def samples() -> dict[str, hm.VideoFrames]:
    return {path.name: hm.read_vpdq(path) for path in SAMPLES}


def test_all_samples_copied() -> None:
    """Every sample file of tests/data/vpdq is read (16 of Meta's, pytx's test list)."""
    assert len(SAMPLES) == 17


def test_pytx_equals_numpy_on_every_ordered_pair(samples: dict[str, hm.VideoFrames]) -> None:
    oracle.pytx_vpdq()  # skips without threatexchange
    sampled = {name: one_per_second(frames) for name, frames in samples.items()}
    start = time.perf_counter()
    seen = set()
    for query_name, query in sampled.items():
        for compared_name, compared in sampled.items():
            pytx = oracle.pytx_percentages(query, compared)
            ours = oracle.numpy_percentages(query, compared)
            assert ours == pytx, (query_name, compared_name)
            seen.add(pytx)
    assert len(seen) > 10  # not all 0 and 100: the pairs test something
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize(
    ("query", "compared"),
    [
        ("doorknob-hd-no-bar.txt", "doorknob-hd-no-bar.txt"),
        ("test-padded-dimensions.txt", "test-padded-dimensions.txt"),
    ],
)
def test_pytx_equals_numpy_on_every_frame(
    samples: dict[str, hm.VideoFrames], query: str, compared: str
) -> None:
    """Whole files: doorknob has 60 frames of quality < 50, test-padded-dimensions 27 repeated
    hashes (a pair of different videos on every frame would take pytx seconds)."""
    a, b = samples[query], samples[compared]
    for quality, distance in ((50, 31), (0, 0), (80, 10)):
        expected = oracle.pytx_percentages(a, b, quality, distance)
        assert oracle.numpy_percentages(a, b, quality, distance) == expected


def test_samples_exercise_the_filters(samples: dict[str, hm.VideoFrames]) -> None:
    """The whole-file pairs above hold low qualities and exact duplicates."""
    doorknob = samples["doorknob-hd-no-bar.txt"]
    assert (doorknob.qualities < 50).sum() == 60
    padded = samples["test-padded-dimensions.txt"]
    assert len(padded) - len(oracle.first_occurrences(padded.codes)) == 27


A = "0" * 64
B = "f" * 64
C = "0" * 56 + "ffffffff"  # 32 bits from A (at the C++ strict bound, past pytx's <= 31)
D = "0" * 57 + "fffffff"  # 28 bits from A


@pytest.mark.parametrize(
    ("query", "compared", "pytx", "cpp"),
    [
        # distance exactly 31 vs 32: pytx counts <= 31, the C++ counts < 31
        (make([A], [100]), make(["0" * 56 + "7fffffff"], [100]), (100.0, 100.0), (0.0, 0.0)),
        (make([A], [100]), make([C], [100]), (0.0, 0.0), (0.0, 0.0)),
        (make([A], [100]), make([D], [100]), (100.0, 100.0), (100.0, 100.0)),
        # duplicates: pytx counts each hash once, the C++ each frame
        (make([A, A, B], [100, 100, 100]), make([A], [100]), (50.0, 100.0), (200 / 3, 100.0)),
        # the same hash first below the quality, then above: pytx's dedupe-then-filter drops it
        (make([A, A, B], [10, 90, 90]), make([A, B], [90, 90]), (100.0, 50.0), (100.0, 100.0)),
        # quality exactly at the threshold is kept by both
        (make([A, B], [50, 49]), make([A], [50]), (100.0, 100.0), (100.0, 100.0)),
    ],
)
def test_edge_cases(
    query: hm.VideoFrames,
    compared: hm.VideoFrames,
    pytx: tuple[float, float],
    cpp: tuple[float, float],
) -> None:
    assert oracle.numpy_percentages(query, compared) == pytx
    assert oracle.cpp_percentages(query, compared) == cpp
    oracle.pytx_vpdq()  # skips without threatexchange
    assert oracle.pytx_percentages(query, compared) == pytx


@pytest.mark.parametrize(
    ("query", "compared"),
    [
        (make([A, B], [10, 49]), make([A], [100])),  # every query frame below the quality
        (make([A], [100]), make([A], [0])),  # every compared frame below the quality
        (make([], []), make([A], [100])),  # an empty video
    ],
)
def test_no_frame_left(query: hm.VideoFrames, compared: hm.VideoFrames) -> None:
    """pytx divides by zero; the C++ divides 0.0 by 0 (NaN) on the empty side."""
    with pytest.raises(ZeroDivisionError):
        oracle.numpy_percentages(query, compared)
    cpp = oracle.cpp_percentages(query, compared)
    empty = [not (frames.qualities >= 50).any() for frames in (query, compared)]
    for value, is_empty in zip(cpp, empty, strict=True):
        assert math.isnan(value) if is_empty else value == 0.0
    oracle.pytx_vpdq()
    with pytest.raises(ZeroDivisionError):
        oracle.pytx_percentages(query, compared)


def test_stand_in_is_not_left_in_sys_modules() -> None:
    """pytest.importorskip('vpdq') elsewhere must still skip where vpdq is not installed."""
    import sys

    oracle.pytx_vpdq()
    module = sys.modules.get("vpdq")
    assert module is None or not isinstance(module, oracle._VpdqStandIn)
