"""VideoIndex: vPDQ percentages against brute force (pytx's and Meta's C++ semantics), time
segments on synthetic edits with known answers, and the bank's life cycle."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import vpdq_oracle as oracle

import hashmatch as hm

DATA = Path(__file__).parent / "data" / "vpdq"


def brute(query, compared, *, quality=50, distance=31, semantics="pytx"):  # type: ignore[no-untyped-def]
    """Both percentages by brute force (tests/vpdq_oracle.py), 0 where a side has no frame."""
    frames = [hm.VideoFrames(v[0], v[1], None, v[2]) for v in (query, compared)]
    function = oracle.numpy_percentages if semantics == "pytx" else oracle.cpp_percentages
    try:
        result = function(*frames, quality, distance)
    except ZeroDivisionError:
        return 0.0, 0.0
    return tuple(0.0 if np.isnan(x) else x for x in result)


def scenes(rng: np.random.Generator, seconds: int, fps: float = 1.0, scene: int = 4) -> tuple:
    """A synthetic video: a new random hash every ``scene`` seconds, frames in between that
    hash with a few bits flipped (consecutive frames look alike), quality 100."""
    n = int(seconds * fps)
    base = hm.datasets.random_codes(seconds // scene + 1, seed=int(rng.integers(1 << 30)))
    times = np.arange(n) / fps
    codes = base[(times // scene).astype(int)]
    codes = hm.datasets.flip_bits(
        codes, rng.integers(0, 6, n).tolist(), seed=int(rng.integers(1 << 30))
    )
    return codes, np.full(n, 100), times


def frames_at(
    video: tuple, times: np.ndarray, rng: np.random.Generator, flips: int = 8
) -> np.ndarray:
    """The frame of ``video`` shown at each time, re-encoded (a few bits flipped)."""
    codes, _, vt = video
    rows = np.clip(np.searchsorted(vt, times, side="right") - 1, 0, len(vt) - 1)
    return hm.datasets.flip_bits(
        codes[rows], rng.integers(0, flips, len(rows)).tolist(), seed=int(rng.integers(1 << 30))
    )


def one_per_second(frames: hm.VideoFrames) -> hm.VideoFrames:
    seconds = np.floor(frames.timestamps)
    keep = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    return hm.VideoFrames(
        frames.codes[keep], frames.qualities[keep], frames.frames[keep], frames.timestamps[keep]
    )


@pytest.fixture(scope="module")
def samples() -> dict[str, hm.VideoFrames]:
    return {p.name: hm.read_vpdq(p) for p in sorted(DATA.glob("*.txt"))}


def test_percentages_equal_pytx_on_every_pair_of_meta_samples(
    samples: dict[str, hm.VideoFrames],
) -> None:
    oracle.pytx_vpdq()  # skips without threatexchange
    videos = {name: one_per_second(frames) for name, frames in samples.items()}
    bank = hm.VideoIndex()
    names = list(videos)
    bank.add_many([videos[n] for n in names], keys=names)
    for query in names:
        got = {m.key: (m.query_pct, m.compared_pct) for m in bank.match(videos[query])}
        for compared in names:
            expected = oracle.pytx_percentages(videos[query], videos[compared])
            assert got.get(compared, (0.0, 0.0)) == expected, (query, compared)


@pytest.mark.parametrize("semantics", ["pytx", "cpp"])
def test_percentages_equal_brute_force_on_whole_meta_samples(
    samples: dict[str, hm.VideoFrames], semantics: str
) -> None:
    bank = hm.VideoIndex()
    names = list(samples)
    bank.add_many([samples[n] for n in names], keys=names)
    for query in names[::3]:
        result = bank.match(samples[query], min_compared_pct=0, semantics=semantics)
        got = {m.key: (m.query_pct, m.compared_pct) for m in result}
        for compared in names:
            q, c = samples[query], samples[compared]
            expected = brute(
                (q.codes, q.qualities, q.timestamps),
                (c.codes, c.qualities, c.timestamps),
                semantics=semantics,
            )
            assert got.get(compared, (0.0, 0.0)) == pytest.approx(expected), (query, compared)


def test_percentages_equal_brute_force_on_synthetic_videos(rng: np.random.Generator) -> None:
    bank = hm.VideoIndex()
    videos = [scenes(rng, int(rng.integers(5, 40))) for _ in range(12)]
    for v in videos:  # low-quality frames and exact duplicates with other qualities
        v[1][rng.random(len(v[1])) < 0.2] = 30
        v[0][-1] = v[0][0]
    bank.add_many(videos, keys=[f"v{i}" for i in range(12)])
    for q in range(12):
        query = (frames_at(videos[q], videos[q][2], rng), videos[q][1], videos[q][2])
        for quality, distance in ((50, 31), (0, 10), (90, 40)):
            got = {
                m.id: (m.query_pct, m.compared_pct)
                for m in bank.match(query, min_quality=quality, max_distance=distance)
            }
            for c in range(12):
                expected = brute(query, videos[c], quality=quality, distance=distance)
                assert got.get(c, (0.0, 0.0)) == pytest.approx(expected)


def test_a_frame_shared_by_two_videos_counts_for_both(rng: np.random.Generator) -> None:
    a, b = scenes(rng, 10), scenes(rng, 10)
    b[0][4] = a[0][4]  # one identical frame
    bank = hm.VideoIndex()
    bank.add_many([a, b], keys=["a", "b"])
    one = (a[0][4:5], np.array([100]), np.array([0.0]))
    result = bank.match(one, min_compared_pct=0)
    assert sorted(m.key for m in result) == ["a", "b"]
    assert all(m.query_pct == 100.0 for m in result)
    matched = {m.key: m.compared_matched for m in result}
    assert matched["b"] == 1 and matched["a"] >= 1  # a's neighbouring frames look alike


# ------------------------------------------------------------------ segments on known edits


def longest(result: hm.VideoMatchResult, key: str) -> hm.Segment:
    match = next(m for m in result if m.key == key)
    return max(match.segments, key=lambda s: s.frames)


def test_trimmed_subclip_aligns(rng: np.random.Generator) -> None:
    banked = scenes(rng, 60)
    bank = hm.VideoIndex()
    bank.add(banked, key="clip")
    times = np.arange(20.0, 41.0)  # seconds 20-40 of the clip, re-timed to start at 0
    query = (frames_at(banked, times, rng), np.full(21, 100), times - 20)
    m = bank.match(query, min_query_pct=80, min_compared_pct=0)[0]
    assert m.matched and m.query_pct == 100.0
    seg = longest(bank.match(query), "clip")
    assert (seg.query_start, seg.query_end) == (0.0, 20.0)
    assert (seg.banked_start, seg.banked_end) == (20.0, 40.0)
    assert m.offsets[0] == pytest.approx(20.0)


def test_clip_embedded_in_a_longer_upload_is_found_by_the_default_verdict(
    rng: np.random.Generator,
) -> None:
    clip = scenes(rng, 15)
    bank = hm.VideoIndex()
    bank.add(clip, key="banned")
    filler = scenes(rng, 120)
    # upload: 120 s of other footage with the 15 s clip at 50-65 s
    times = np.arange(135.0)
    codes = np.concatenate([filler[0][:50], frames_at(clip, np.arange(15.0), rng), filler[0][50:]])
    upload = (codes, np.full(135, 100), times)
    m = bank.match(upload)[0]
    assert m.key == "banned" and m.matched  # compared_pct >= 80
    assert m.query_pct < 20 and m.compared_pct == 100.0
    assert not bank.match(upload, min_query_pct=80, min_compared_pct=0)[0].matched  # pytx's
    seg = longest(bank.match(upload), "banned")
    assert (seg.query_start, seg.query_end, seg.banked_start, seg.banked_end) == (
        50.0,
        64.0,
        0.0,
        14.0,
    )


def test_frame_rate_change_and_speed_up_align(rng: np.random.Generator) -> None:
    banked = scenes(rng, 40)
    bank = hm.VideoIndex()
    bank.add(banked, key="clip")
    times = np.arange(0, 40, 0.5)  # hashed at 2 fps
    query = (frames_at(banked, times, rng), np.full(len(times), 100), times)
    seg = longest(bank.match(query), "clip")
    assert seg.query_start == 0.0 and seg.query_end >= 39.0 and seg.banked_end >= 39.0
    fast = np.arange(0, 32.0)  # played 1.25x faster: query second t shows banked 1.25 t
    query = (frames_at(banked, fast * 1.25, rng), np.full(32, 100), fast)
    seg = longest(bank.match(query), "clip")
    assert seg.frames >= 28 and seg.banked_end >= 37.0


def test_reversed_and_shuffled_frames_match_as_a_bag_not_in_time(
    rng: np.random.Generator,
) -> None:
    banked = scenes(rng, 40, scene=1)  # every second a new picture
    bank = hm.VideoIndex()
    bank.add(banked, key="clip")
    for order in (np.arange(40)[::-1], rng.permutation(40)):
        query = (frames_at(banked, order.astype(float), rng), np.full(40, 100), np.arange(40.0))
        m = bank.match(query)[0]
        assert m.query_pct == 100.0 and m.compared_pct == 100.0 and m.matched
        assert m.longest <= 6.0  # no long aligned run
        assert not bank.match(query, min_duration=20)[0].matched


def test_low_quality_frames_are_left_out(rng: np.random.Generator) -> None:
    banked = scenes(rng, 20)
    bank = hm.VideoIndex()
    bank.add(banked, key="clip")
    query = (banked[0], np.full(20, 40), banked[2])
    assert len(bank.match(query)) == 0
    assert bank.match(query, min_quality=30)[0].query_pct == 100.0


def test_common_frames_are_reported(rng: np.random.Generator) -> None:
    black = hm.datasets.random_codes(1, seed=99)
    bank = hm.VideoIndex()
    videos = []
    for _ in range(15):
        v = scenes(rng, 10)
        v[0][0] = black[0]  # every video starts on the same slate
        videos.append(v)
    bank.add_many(videos)
    result = bank.match((black, np.array([100]), np.array([0.0])), min_compared_pct=0)
    assert len(result) == 15 and all(m.common_frames == 1 for m in result)
    assert all(m.common_frames == 0 for m in bank.match(videos[3], common_videos=20))


# ------------------------------------------------------------------ dihedral and borders


def test_dihedral_query_frames_match_by_their_best_variant(rng: np.random.Generator) -> None:
    banked = scenes(rng, 20)
    bank = hm.VideoIndex()
    bank.add(banked, key="clip")
    stacks = hm.datasets.random_codes(20 * 8, seed=5).reshape(20, 8, 32)
    flip = hm.TRANSFORMS.index("flip_left_right")
    stacks[:, flip] = frames_at(banked, banked[2], rng)
    query = (stacks, np.full(20, 100), banked[2])
    assert len(bank.match((stacks[:, 0], query[1], query[2]))) == 0
    m = bank.match(query, dihedral=True)[0]
    assert m.query_pct == 100.0 and m.transform == "flip_left_right"
    with pytest.raises(hm.InvalidArgument, match="dihedral=True"):
        bank.match(query)


def test_alternative_hashings_of_one_upload_report_the_better(rng: np.random.Generator) -> None:
    banked = scenes(rng, 20)
    bank = hm.VideoIndex()
    bank.add(banked, key="clip")
    good = (frames_at(banked, banked[2], rng), banked[1], banked[2])
    bad = (hm.datasets.random_codes(20, seed=3), banked[1], banked[2])
    result = bank.match([bad, good])
    assert len(result) == 1 and result[0].query_pct == 100.0 and result.nqueries == 1


# ------------------------------------------------------------------ life cycle


def test_remove_update_and_keys(rng: np.random.Generator) -> None:
    bank = hm.VideoIndex(name="bank")
    videos = [scenes(rng, 10) for _ in range(4)]
    ids = bank.add_many(videos, keys=["a", "b", "c", "d"], labels=[["x"]] * 4)
    assert ids.tolist() == [0, 1, 2, 3] and len(bank) == 4 and 2 in bank
    assert bank.remove([1]) == 1 and bank.remove(keys=["c"]) == 1 and len(bank) == 2
    assert [m.key for m in bank.match(videos[1])] == []
    bank.update(3, labels=["y"], video=videos[1])
    m = bank.match(videos[1])[0]
    assert (m.id, m.key, m.labels) == (3, "d", ("y",))
    assert bank.get_key("a").id == 0 and np.array_equal(bank.get(0).codes, videos[0][0])
    with pytest.raises(hm.InvalidArgument, match="key 'a' is already banked"):
        bank.add(videos[2], key="a")
    assert bank.add(videos[2], key="c") == 4  # ids are not reused
    with pytest.raises(hm.EntryNotFound):
        bank.get(1)
    bank.compact()
    assert bank.ids.tolist() == [0, 3, 4]


def test_bad_frames_are_named_and_leave_the_bank_untouched(rng: np.random.Generator) -> None:
    bank = hm.VideoIndex()
    good = scenes(rng, 5)
    bank.add(good, key="good")
    codes, q, t = scenes(rng, 5)
    cases = [
        ((codes, q[:4], t), "qualities: expected one per frame"),
        ((codes, q, t[:3]), "timestamps: expected one per frame"),
        ((codes, np.array([100, 100, 101, 100, 100]), t), r"qualities\[2\]"),
        ((codes, q, np.array([0, 1, 3, 2, 4.0])), r"timestamps\[3\]: timestamps must never"),
        ((codes, q, np.array([0, 1, np.nan, 3, 4])), r"timestamps\[2\]: expected a finite"),
        ((codes, q, np.array([-1, 1, 2, 3, 4.0])), r"timestamps\[0\]"),
        ((codes[:, :8], q, t), "codes"),
        ("clip.mp4", "expected frames with codes"),
    ]
    for video, message in cases:
        with pytest.raises(hm.HashmatchError, match=message):
            bank.add_many([good, video], keys=["x", "y"])
    assert len(bank) == 1 and bank.frames == 5
    empty = (np.zeros((0, 32), np.uint8), np.zeros(0, int), np.zeros(0))
    bank.add(empty, key="empty")
    assert len(bank.match(empty)) == 0
    with pytest.raises(hm.InvalidArgument, match="min_query_pct"):
        bank.match(good, min_query_pct=120)
    with pytest.raises(hm.InvalidArgument, match="semantics"):
        bank.match(good, semantics="faiss")  # type: ignore[arg-type]


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_and_pickle(rng: np.random.Generator, tmp_path: Path, mmap: bool) -> None:
    bank = hm.VideoIndex(name="bank", max_distance=25, min_quality=40)
    videos = [scenes(rng, 12) for _ in range(5)]
    bank.add_many(videos, keys=list("abcde"), labels=[["x"], [], ["y", "z"], [], []])
    bank.remove(keys=["b"])
    path = tmp_path / "videos.hm"
    bank.save(path)
    for loaded in (hm.VideoIndex.load(path, mmap=mmap), pickle.loads(pickle.dumps(bank))):
        assert loaded.ids.tolist() == [0, 2, 3, 4] and loaded.max_distance == 25
        assert loaded.get_key("c").labels == ("y", "z")
        for v in videos:
            assert loaded.match(v).rows == bank.match(v).rows
        loaded.add(videos[1], key="b")  # a loaded bank takes new videos
        assert loaded.match(videos[1])[0].key == "b"
    assert isinstance(hm.load(path), hm.VideoIndex)


def test_matcher_finds_banked_images_in_a_video(rng: np.random.Generator) -> None:
    pytest.importorskip("pandas")
    images = hm.HashList("pdq", name="images")
    banned = hm.datasets.random_codes(3, seed=8)
    images.add(banned, keys=["a", "b", "c"])
    video = scenes(rng, 30)
    codes = video[0].copy()
    codes[[5, 6, 20]] = hm.datasets.flip_bits(banned[[0, 0, 2]], [3, 5, 9])
    qualities = video[1].copy()
    qualities[6] = 10  # not searched
    result = hm.Matcher({"images": images}).match_video((codes, qualities, video[2]))
    assert [(m.query, m.key, m.distance) for m in result] == [(5, "a", 3), (20, "c", 9)]
    assert result.skipped.tolist() == [6]
    assert result.to_pandas()["time"].tolist() == [5.0, 20.0]
    stacks = np.repeat(codes[:, None], 8, axis=1)
    stacks[:, 0] = hm.datasets.random_codes(30, seed=9)
    flipped = hm.Matcher({"images": images}).match_video(
        (stacks, qualities, video[2]), dihedral=True
    )
    assert [(m.query, m.key, m.transform) for m in flipped] == [
        (5, "a", "rotate_90"),
        (20, "c", "rotate_90"),
    ]


def test_adds_wait_for_the_next_read_and_keep_their_checks(rng: np.random.Generator) -> None:
    bank = hm.VideoIndex()
    videos = [scenes(rng, 6) for _ in range(30)]
    for i, v in enumerate(videos):  # one at a time: merged once, by the first read
        assert bank.add(v, key=f"v{i}") == i
    with pytest.raises(hm.InvalidArgument, match="key 'v3' is already banked"):
        bank.add(videos[0], key="v3")
    with pytest.raises(hm.InvalidArgument, match="id 7 is already banked"):
        bank.add(videos[0], id=7)
    assert len(bank) == 30 and bank.match(videos[17])[0].key == "v17"
    assert bank.remove(keys=["v17"]) == 1 and bank.add(videos[17], key="v17") == 30


def test_inconsistent_saved_banks_are_refused(rng: np.random.Generator) -> None:
    bank = hm.VideoIndex()
    bank.add_many([scenes(rng, 6) for _ in range(3)], keys=["a", "b", "c"])
    meta, sections = bank._to_sections()
    assert len(hm.VideoIndex._from_sections(meta, sections, "f")) == 3

    def broken(**changes: object) -> None:
        m = {**meta, **{k: v for k, v in changes.items() if k in meta}}
        sec = {**sections, **{k: v for k, v in changes.items() if k in sections}}
        with pytest.raises(hm.IndexFormatError, match="f: "):
            hm.VideoIndex._from_sections(m, sec, "f")

    broken(keys=["a", "a", "c"])
    broken(keys=["a", 3, "c"])
    broken(labels=[["x"], [1], []])
    broken(ids=np.array([0, 0, 2], np.int64))
    broken(frame_quality=np.full(18, 101, np.int16))
    broken(frame_time=np.full(18, np.nan))
    broken(video_start=np.array([0, 6, 12, 17], np.int64))
    broken(frame_unique=np.full(18, 10**6, np.int64))
    broken(unique_codes=np.zeros((2, 32), np.uint8))
    broken(max_distance="31")
