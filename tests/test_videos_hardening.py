"""Defects a review of hashmatch.videos found (each test failed on the first version): segment
gaps and durations, static videos, argument checks, crafted files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hashmatch.backends import make_backend
from hashmatch.errors import HashmatchError, IndexFormatError
from hashmatch.videos import _replace

import hashmatch as hm

A = hm.datasets.random_codes(40, seed=1)


def video(codes: np.ndarray, times: np.ndarray | None = None) -> tuple:
    n = len(codes)
    t = np.arange(n, dtype=float) if times is None else np.asarray(times, float)
    return codes, np.full(n, 100), t


# ------------------------------------------------------------------------------ segments


def test_max_gap_is_honoured_when_smaller_than_three_banked_intervals() -> None:
    bank = hm.VideoIndex()
    bank.add(video(A[:20]), key="A")  # 1 fps
    query = video(A[0:20:2], np.arange(0, 20, 2.0))  # every other second, 2 s apart
    m = bank.match(query, max_gap=1.0)[0]
    # steps of 2 s > max_gap=1: no chain may span two frames; got one 10-frame segment
    assert all(s.frames == 1 for s in m.segments), m.segments


def test_max_gap_zero_gives_one_frame_segments() -> None:
    bank = hm.VideoIndex()
    bank.add(video(A[:20]), key="A")
    m = bank.match(video(A[:5]), max_gap=0)[0]
    assert all(s.frames == 1 for s in m.segments), m.segments


def test_a_frozen_query_frame_does_not_make_a_long_aligned_segment() -> None:
    """min_duration is documented to reject coincidental single-frame matches (black frames,
    slates); a 10-minute still of one banked frame passes it as a 599 s 'aligned' segment."""
    bank = hm.VideoIndex()
    bank.add(video(A[:20]), key="A")
    still = video(np.repeat(A[5:6], 600, axis=0))
    m = bank.match(still, min_duration=60, min_compared_pct=0)[0]
    seg = m.segments[0]
    assert seg.banked_end - seg.banked_start > 0 or seg.duration == 0, seg
    assert not m.matched


def test_static_videos_do_not_blow_up() -> None:
    """A 1-hour static upload against 10 banked 10-minute static videos (one distinct hash
    everywhere): every (query frame, banked frame) pair is materialised: 21.6M pairs,
    ~15 s and ~2 GB here, for percentages that need one distinct hash per side."""
    bank = hm.VideoIndex()
    bank.add_many([video(np.repeat(A[:1], 600, axis=0))] * 10)
    query = video(np.repeat(A[:1], 3600, axis=0))
    result = bank.match(query)  # once built every (query frame, banked frame) pair: 21.6M
    assert len(result) == 10
    assert all(m.query_pct == 100.0 and m.compared_pct == 100.0 for m in result)
    assert all(m.longest == 0.0 for m in result)  # one banked instant: no aligned duration


# ------------------------------------------------------------------------------ remove, ids


def test_remove_with_a_key_string_is_refused_or_removes_that_key() -> None:
    bank = hm.VideoIndex()
    bank.add(video(A[:3]), key="clip")
    bank.add(video(A[3:6]), key="c")
    removed = bank.remove(keys="clip")  # iterated as {'c','l','i','p'}: removes "c"
    assert removed == 1
    assert "clip" not in {bank.get(i).key for i in bank.ids}
    assert "c" in {bank.get(i).key for i in bank.ids}


def test_remove_does_not_truncate_float_or_string_ids() -> None:
    bank = hm.VideoIndex()
    bank.add_many([video(A[:3]), video(A[3:6])])
    with pytest.raises(HashmatchError):
        bank.remove([1.9])  # removes id 1
    with pytest.raises(HashmatchError):
        bank.remove("0")  # removes id 0
    assert bank.ids.tolist() == [0, 1]


@pytest.mark.parametrize("value", [-5, 2.7, "3", True])
def test_common_videos_is_validated(value: object) -> None:
    bank = hm.VideoIndex()
    bank.add(video(A[:3]))
    with pytest.raises(HashmatchError):
        bank.match(video(A[:3]), common_videos=value)  # type: ignore[arg-type]


def test_auto_ids_after_the_largest_id_fail_with_a_hashmatch_error() -> None:
    bank = hm.VideoIndex()
    with pytest.raises(HashmatchError, match="ids: expected ids from 0 to"):
        bank.add(video(A[:3]), id=2**63 - 1)  # was accepted, then auto ids overflowed
    bank.add(video(A[:3]), id=2**62 - 1)
    with pytest.raises(HashmatchError, match="default ids would pass"):
        bank.add(video(A[3:6]))


# ------------------------------------------------------------------------------ crafted files


def _roundtrip(bank: hm.VideoIndex, path: Path) -> hm.VideoIndex:
    bank.save(path)
    return hm.VideoIndex.load(path)


def test_a_frame_index_with_other_ids_is_refused_on_load(tmp_path: Path) -> None:
    bank = hm.VideoIndex()
    bank.add(video(A[:5]), key="v")
    bank.add(video(A[5:10]), key="w")
    state = bank._settled()
    nu = len(state.unique_codes)
    index = make_backend("flat", 256)
    index.add(state.unique_codes, np.arange(nu)[::-1].copy())  # right codes, ids permuted
    bank._bank = _replace(state, index=index)
    with pytest.raises(IndexFormatError):
        loaded = _roundtrip(bank, tmp_path / "permuted.hm")
        # loads; then the query equal to video v reports v 80%, w 20%
        got = {m.key: m.query_pct for m in loaded.match(video(A[:5]))}
        assert got == {"v": 100.0}, got


def test_duplicate_distinct_codes_are_refused_on_load(tmp_path: Path) -> None:
    bank = hm.VideoIndex()
    bank.add(video(A[[0, 1, 2]]), key="v")
    state = bank._settled()
    codes = state.unique_codes.copy()
    codes[1] = codes[0]  # the video is now A0, A0, A2: pytx's compared_pct for A0 is 50
    index = make_backend("flat", 256)
    index.add(codes, np.arange(len(codes)))
    bank._bank = _replace(state, unique_codes=codes, index=index)
    with pytest.raises(IndexFormatError):
        loaded = _roundtrip(bank, tmp_path / "dups.hm")
        m = loaded.match(video(A[[0]]))[0]
        assert m.compared_pct == 50.0, m.compared_pct  # got 33.3


def test_an_approximate_frame_index_is_refused_on_load(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    bank = hm.VideoIndex()
    bank.add(video(A[:5]))
    state = bank._settled()
    index = make_backend("faiss-hnsw", 256)
    index.add(state.unique_codes, np.arange(len(state.unique_codes)))
    bank._bank = _replace(state, index=index)
    with pytest.raises(IndexFormatError):
        _roundtrip(bank, tmp_path / "hnsw.hm")


def test_decreasing_frame_times_are_refused_on_load(tmp_path: Path) -> None:
    """add() refuses decreasing timestamps; a file holding them loads (segments then break)."""
    bank = hm.VideoIndex()
    bank.add(video(A[:5]))
    bank._bank = _replace(bank._settled(), frame_time=np.array([4.0, 3, 2, 1, 0]))
    with pytest.raises(IndexFormatError):
        _roundtrip(bank, tmp_path / "times.hm")


def test_labels_saved_as_a_string_are_refused_on_load(tmp_path: Path) -> None:
    bank = hm.VideoIndex()
    bank.add(video(A[:5]), labels=["x"])
    meta, sections = bank._to_sections()
    for labels in (["abc"], [["x", "x"]], [[""]], [[1]]):
        with pytest.raises(IndexFormatError, match="labels"):
            hm.VideoIndex._from_sections({**meta, "labels": labels}, sections, "crafted")
