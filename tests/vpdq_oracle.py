"""Conformance oracles for vPDQ matching: the two percentages of a video-to-video match.

A vPDQ match of two videos gives two percentages: of the query's frames, how many have a
frame of the compared video within the distance (``query_pct``), and the same the other way
(``compared_pct``). The two reference implementations differ in three ways:

=========================  ===========================================  ====================
step                       python-threatexchange 1.2.x                  Meta's vpdq C++ 0.2.5
                           (``match_VPDQ_hash_brute``)                  (``matchTwoHashBrute``)
=========================  ===========================================  ====================
exact duplicate hashes     dropped, first occurrence kept, *before*     kept
                           the quality filter
quality filter             ``quality >= quality``                       ``quality >= quality``
frame match                ``distance <= distance``                     ``distance < distance``
percentage                 ``count * 100 / frames left``                the same, in double
no frame left              ``ZeroDivisionError``                        ``NaN`` (0.0 / 0), and
                                                                        0.0 the other way
=========================  ===========================================  ====================

pytx's order matters: a hash whose first occurrence is below the quality and a later one
above it is dropped by ``match_VPDQ_hash_brute`` (dedupe, then filter), kept by pytx's index
path ``prepare_vpdq_feature`` (``vpdq_index.py``: filter, then dedupe). The signal type's
``compare_hash`` (``vpdq.py``) uses the brute matcher, and so do these oracles.

- :func:`pytx_percentages` runs pytx's own ``match_VPDQ_hash_brute`` (skips without
  ``threatexchange``);
- :func:`numpy_percentages` is an independent numpy brute force of the same semantics;
- :func:`cpp_percentages` is a numpy brute force of vpdq's C++ ``matchTwoHashBrute``
  (``cpp/vpdq/cpp/hashing/matchTwoHash.cpp``), read, not run (vpdq needs FFmpeg headers).

Importing pytx's vPDQ modules: they ``import vpdq`` (Meta's Cython binding, which builds
against the system's FFmpeg and cannot be installed here), yet the functions used here never
call it: only ``vpdq.VpdqFeature`` is named, in an annotation. So :func:`pytx_vpdq` imports
them with a stand-in ``vpdq`` module in ``sys.modules`` (its ``computeHash`` raises), and takes
the stand-in out again afterwards, so that ``pytest.importorskip("vpdq")`` elsewhere still
skips. Where the real ``vpdq`` is installed, it is used.

Inputs are :class:`hashmatch.VideoFrames` (anything with ``codes`` ``(n, 32)`` uint8 and
``qualities``). None of this uses hashmatch's kernels: it is what they are checked against.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pytest

__all__ = [
    "Frames",
    "cpp_percentages",
    "numpy_percentages",
    "pytx_features",
    "pytx_percentages",
    "pytx_vpdq",
    "pytx_vpdq_index",
]

QUALITY = 50  # pytx's VPDQ_QUALITY_THRESHOLD
DISTANCE = 31  # pytx's VPDQ_DISTANCE_THRESHOLD

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


class Frames(Protocol):
    """What the oracles read of a video's frames (:class:`hashmatch.VideoFrames` has it)."""

    @property
    def codes(self) -> npt.NDArray[np.uint8]: ...

    @property
    def qualities(self) -> npt.NDArray[np.int16]: ...

    @property
    def timestamps(self) -> npt.NDArray[np.float64]: ...


# --------------------------------------------------------------------------------- pytx


class _VpdqStandIn(types.ModuleType):
    """The names pytx's vPDQ modules take from ``vpdq`` at import, and nothing that works."""

    class VpdqFeature:
        def __init__(self, quality: int, frame_number: int, hash: Any, timestamp: float):
            self.quality, self.frame_number = quality, frame_number
            self.hash, self.timestamp = hash, timestamp

    @staticmethod
    def computeHash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("vpdq stand-in (tests/vpdq_oracle.py): cannot hash videos")


def _pytx_modules(*names: str) -> list[types.ModuleType]:
    """``threatexchange.extensions.vpdq.<name>`` modules, imported with the stand-in ``vpdq``
    (skip without threatexchange)."""
    pytest.importorskip("threatexchange")
    stand_in = None
    try:
        importlib.import_module("vpdq")
    except ImportError:
        stand_in = sys.modules["vpdq"] = _VpdqStandIn("vpdq")
    try:
        return [importlib.import_module(f"threatexchange.extensions.vpdq.{n}") for n in names]
    finally:
        if stand_in is not None and sys.modules.get("vpdq") is stand_in:
            del sys.modules["vpdq"]


@functools.cache
def pytx_vpdq() -> types.SimpleNamespace:
    """pytx's ``vpdq_util`` and ``vpdq_brute_matcher`` modules (skip without threatexchange)."""
    util, brute = _pytx_modules("vpdq_util", "vpdq_brute_matcher")
    return types.SimpleNamespace(util=util, brute=brute)


@functools.cache
def pytx_vpdq_index() -> Any:
    """pytx's ``VPDQIndex`` class (``vpdq_index.py``: a faiss ``IndexBinaryFlat`` of the
    distinct frame hashes; skip without threatexchange or faiss). Its ``add`` and ``query``
    never call ``vpdq``."""
    pytest.importorskip("faiss")
    (module,) = _pytx_modules("vpdq_index")
    return module.VPDQIndex


def pytx_features(frames: Frames) -> list[Any]:
    """The frames as pytx ``VpdqCompactFeature`` objects (lowercase hex, as pytx writes)."""
    feature = pytx_vpdq().util.VpdqCompactFeature
    return [
        feature(bytes(code).hex(), int(quality), float(seconds))
        for code, quality, seconds in zip(
            frames.codes, frames.qualities.tolist(), frames.timestamps.tolist(), strict=True
        )
    ]


def pytx_percentages(
    query_frames: Frames,
    compared_frames: Frames,
    quality: int = QUALITY,
    distance: int = DISTANCE,
) -> tuple[float, float]:
    """pytx's ``match_VPDQ_hash_brute``: (query %, compared %); ZeroDivisionError when no
    frame of one side is left after dedupe and quality filter."""
    result = pytx_vpdq().brute.match_VPDQ_hash_brute(
        pytx_features(query_frames), pytx_features(compared_frames), quality, distance
    )
    return float(result.query_match_percent), float(result.compared_match_percent)


# -------------------------------------------------------------------------------- numpy


def distances(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """All Hamming distances between the rows of ``a`` and ``b``, ``(len(a), len(b))``: numpy's
    popcount on 64-bit words (numpy >= 2.0), else a byte table."""
    if hasattr(np, "bitwise_count"):
        words_a = np.ascontiguousarray(a).view(np.uint64)
        words_b = np.ascontiguousarray(b).view(np.uint64)
        xor = words_a[:, None, :] ^ words_b[None, :, :]
        return np.bitwise_count(xor).sum(axis=-1, dtype=np.int64)
    xor8 = a[:, None, :] ^ b[None, :, :]
    return _POPCOUNT[xor8].sum(axis=-1, dtype=np.int64)


def first_occurrences(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """Rows of the first occurrence of each distinct hash, in order."""
    if not len(codes):
        return np.zeros(0, dtype=np.intp)
    rows = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.shape[1]))).ravel()
    _, first = np.unique(rows, return_index=True)
    return np.sort(first)


def numpy_percentages(
    query_frames: Frames,
    compared_frames: Frames,
    quality: int = QUALITY,
    distance: int = DISTANCE,
) -> tuple[float, float]:
    """pytx's brute-matcher semantics in numpy: dedupe (first occurrence), then quality
    filter, then ``<=``; ZeroDivisionError when one side has no frame left, as pytx."""
    sides = []
    for frames in (query_frames, compared_frames):
        kept = first_occurrences(frames.codes)
        kept = kept[frames.qualities[kept] >= quality]
        sides.append(frames.codes[kept])
    query, compared = sides
    within = distances(query, compared) <= distance
    query_count = int(within.any(axis=1).sum())
    compared_count = int(within.any(axis=0).sum())
    if not len(query) or not len(compared):
        raise ZeroDivisionError("no frame left after dedupe and quality filter")
    return query_count * 100 / len(query), compared_count * 100 / len(compared)


def cpp_percentages(
    query_frames: Frames,
    compared_frames: Frames,
    quality: int = QUALITY,
    distance: int = DISTANCE,
) -> tuple[float, float]:
    """vpdq C++ ``matchTwoHashBrute``: quality filter (``>=``), no dedupe, strict ``<``;
    ``count * 100.0 / size`` in double, so NaN for a side with no frame left."""
    query = query_frames.codes[query_frames.qualities >= quality]
    compared = compared_frames.codes[compared_frames.qualities >= quality]
    within = distances(query, compared) < distance
    counts = (int(within.any(axis=1).sum()), int(within.any(axis=0).sum()))
    return tuple(  # type: ignore[return-value]
        count * 100.0 / size if size else float("nan")
        for count, size in zip(counts, (len(query), len(compared)), strict=True)
    )
