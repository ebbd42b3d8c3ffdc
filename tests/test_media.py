"""Hashing images and videos (hashmatch.media) on real pictures made into test media here."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hashmatch.media import borders
from media_helpers import (
    Image,
    jpeg,
    letterbox,
    picture,
    pillarbox,
    scene_frames,
    write_video,
)

import hashmatch as hm

pdqhash = pytest.importorskip("pdqhash")
imagehash = pytest.importorskip("imagehash")

DATA = Path(__file__).parent / "data" / "vpdq"
FAR = 64  # unrelated PDQ hashes are ~128 apart; a transform or bars take a photo past this


def d(a: np.ndarray, b: np.ndarray) -> int:
    return int(hm.hamming(a, b))


# ------------------------------------------------------------------------ PDQ and its bits


def test_pdq_is_pdqhash_packed_as_meta_prints_it(tmp_path: Path) -> None:
    rgb = picture()
    bits, quality = pdqhash.compute(rgb)
    codes, got_quality = hm.hash_image(rgb)
    assert codes.dtype == np.uint8 and codes.shape == (32,)
    assert np.array_equal(codes, np.packbits(bits.astype(np.uint8)))
    assert got_quality == quality
    # ThreatExchange's pdq_hasher: the bits as a binary number, printed as 64 hex digits
    text = f"{int(''.join(str(int(b)) for b in bits), 2):064x}"
    assert hm.to_hex(codes) == text == hm.hash_image(rgb).hex
    # every kind of source gives the same hash
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    for source in (str(path), path, path.read_bytes(), Image.open(path), np.asfortranarray(rgb)):
        assert np.array_equal(hm.hash_image(source).codes, codes), type(source)


def test_pdq_of_a_crop_view_reads_the_view() -> None:
    big = picture(size=(200, 150))
    view = big[10:130, 20:180]  # not contiguous: pdqhash alone would read the wrong memory
    assert np.array_equal(
        hm.hash_image(view).codes, np.packbits(pdqhash.compute(view.copy())[0].astype(np.uint8))
    )


def test_grey_and_rgba_sources() -> None:
    grey = picture("camera")[:, :, 0]
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.array_equal(hm.hash_image(grey).codes, hm.hash_image(rgb).codes)
    rgba = np.dstack([picture(), np.full(picture().shape[:2], 255, np.uint8)])
    assert np.array_equal(hm.hash_image(rgba).codes, hm.hash_image(picture()).codes)


def test_large_images_are_hashed_whole_unless_max_side() -> None:
    big = picture(size=(1024, 768))
    full = np.packbits(pdqhash.compute(big)[0].astype(np.uint8))
    assert np.array_equal(hm.hash_image(big).codes, full)  # as python-threatexchange / HMA
    reduced = Image.fromarray(big)
    reduced.thumbnail((512, 512))
    expected = np.packbits(pdqhash.compute(np.asarray(reduced))[0].astype(np.uint8))
    assert np.array_equal(hm.hash_image(big, max_side=512).codes, expected)
    assert d(expected, full) <= 16  # the reduction moves a few bits
    small = picture()
    assert np.array_equal(hm.hash_image(small, max_side=512).codes, hm.hash_image(small).codes)
    for bad in (4, -1, 2.5, True, "512"):
        with pytest.raises(hm.InvalidArgument, match="max_side"):
            hm.hash_image(small, max_side=bad)


def test_reencoded_copy_stays_within_31() -> None:
    rgb = picture()
    smaller = np.asarray(Image.fromarray(rgb).resize((120, 90), Image.Resampling.BILINEAR))
    copy = hm.hash_image(jpeg(smaller, quality=70))
    assert d(copy.codes, hm.hash_image(rgb).codes) <= 31
    assert copy.quality is not None and copy.quality >= 50
    other = hm.hash_image(picture("coffee"))
    assert d(other.codes, hm.hash_image(rgb).codes) > FAR


# ---------------------------------------------------------------------------- the 64-bit kinds


@pytest.mark.parametrize(
    ("kind", "function"),
    [("phash", "phash"), ("dhash", "dhash"), ("ahash", "average_hash"), ("whash", "whash")],
)
def test_imagehash_kinds_equal_imagehash(kind: str, function: str) -> None:
    image = Image.fromarray(picture())
    result = hm.hash_image(image, kind=kind)
    assert result.quality is None
    assert result.codes.shape == (8,)
    assert hm.to_hex(result.codes) == str(getattr(imagehash, function)(image))
    stack = hm.hash_image(image, kind=kind, dihedral=True).codes
    assert stack.shape == (8, 8)
    for i, name in enumerate(hm.TRANSFORMS):
        moved = image if i == 0 else image.transpose(Image.Transpose[name.upper()])
        assert hm.to_hex(stack[i]) == str(getattr(imagehash, function)(moved))


# ------------------------------------------------------------------------------ dihedral


def test_transforms_are_pillow_transposes_in_pdqhash_order() -> None:
    """Variant i of compute_dihedral is the PDQ of the image transposed by TRANSFORMS[i]."""
    image = Image.fromarray(picture(size=(200, 160)))
    stack = hm.hash_image(image, dihedral=True).codes
    assert stack.shape == (8, 32)
    assert np.array_equal(stack[0], hm.hash_image(image).codes)
    for i, name in enumerate(hm.TRANSFORMS[1:], start=1):
        moved = hm.hash_image(image.transpose(Image.Transpose[name.upper()])).codes
        row = hm.hamming(moved, stack)
        assert int(np.argmin(row)) == i, (name, row)
        assert row[i] <= 40 and np.delete(row, i).min() > FAR, (name, row)


def test_pixel_variants_are_the_hashes_of_the_transposed_pictures() -> None:
    image = Image.fromarray(picture(size=(200, 160)))
    exact = hm.hash_image(image, dihedral=True, dihedral_method="pixels")
    dct = hm.hash_image(image, dihedral=True)
    assert exact.codes.shape == (8, 32) and exact.quality == dct.quality
    for i, name in enumerate(hm.TRANSFORMS):
        moved = image if i == 0 else image.transpose(Image.Transpose[name.upper()])
        assert np.array_equal(exact.codes[i], hm.hash_image(moved).codes), name
        assert d(exact.codes[i], dct.codes[i]) <= 40  # one DCT: close, not equal
    batch = hm.hash_image([image, image], dihedral=True, dihedral_method="pixels")
    assert np.array_equal(batch.codes[1], exact.codes)
    with pytest.raises(hm.InvalidArgument, match="dihedral_method"):
        hm.hash_image(image, dihedral=True, dihedral_method="fast")


@pytest.mark.parametrize(
    ("upload_transpose", "undo"),
    [
        ("ROTATE_270", "rotate_90"),  # rotated 90 degrees clockwise: undone by rotate_90
        ("FLIP_LEFT_RIGHT", "flip_left_right"),
        ("ROTATE_180", "rotate_180"),
        ("TRANSPOSE", "transpose"),
    ],
)
def test_rotated_upload_matches_on_the_variant_that_undoes_it(
    upload_transpose: str, undo: str
) -> None:
    original = Image.fromarray(picture())
    upload = jpeg(np.asarray(original.transpose(Image.Transpose[upload_transpose])), 80)
    banked = hm.hash_image(original).codes
    plain = hm.hash_image(upload)
    assert d(plain.codes, banked) > FAR
    index = hm.FlatIndex(256)
    index.add(banked[None])
    found = index.range_search(hm.hash_image(upload, dihedral=True).codes[None], 31, dihedral=True)
    assert found.ids.tolist() == [0]
    assert hm.TRANSFORMS[int(found.variants[0])] == undo
    assert found.distances[0] <= 31


# ------------------------------------------------------------------------------- borders


def test_borders_found_on_synthetic_frames() -> None:
    rng = np.random.default_rng(1)
    content = rng.integers(0, 256, (90, 120), dtype=np.uint8)
    frame = np.zeros((90, 160), np.uint8)
    frame[:, 20:140] = content
    assert borders.find_content(frame) == (20, 0, 140, 90)
    grey = np.full((130, 120), 128, np.uint8)
    grey[20:110] = content
    grey[5, 3] = 255  # a speck in a bar
    assert borders.find_content(grey) == (0, 20, 120, 110)
    assert borders.find_content(content) == (0, 0, 120, 90)
    assert borders.find_content(np.zeros((50, 50), np.uint8)) is None
    one_sided = frame[:, 20:]  # a bar on the left only: not a pillarbox, not cut
    assert borders.find_content(one_sided) == (0, 0, 140, 90)
    sliver = np.zeros((90, 160), np.uint8)
    sliver[:, 76:84] = content[:, :8]  # bars would leave 5%: not cut
    assert borders.find_content(sliver) == (0, 0, 160, 90)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "camera"])
def test_barred_reupload_matches_with_crop_borders(name: str) -> None:
    rgb = picture(name)
    banked = hm.hash_image(rgb).codes
    assert np.array_equal(hm.hash_image(rgb, crop_borders=True).codes, banked)  # no bars
    for barred in (pillarbox(rgb, 214), letterbox(rgb, 200), pillarbox(rgb, 214, colour=255)):
        upload = jpeg(barred, 75)
        assert d(hm.hash_image(upload).codes, banked) > FAR
        assert d(hm.hash_image(upload, crop_borders=True).codes, banked) <= 16
    phash = hm.hash_image(rgb, kind="phash").codes
    cropped = hm.hash_image(jpeg(pillarbox(rgb, 214), 75), kind="phash", crop_borders=True)
    assert d(cropped.codes, phash) <= 10


# --------------------------------------------------------------------------------- batches


def bad_sources(tmp_path: Path) -> dict[str, object]:
    """One source of each kind of failure, by the reason expected."""
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a picture\n")
    whole = jpeg(picture(), 90)
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    return {
        "no such file": str(tmp_path / "missing.jpg"),
        "empty file": tmp_path / "empty.jpg",
        "not an image": str(tmp_path / "notes.txt"),
        "truncated": str(tmp_path / "cut.jpg"),
        "empty (0 bytes)": b"",
        "too small": np.zeros((4, 40, 3), np.uint8),
    }


def test_single_bad_sources_raise_naming_the_argument(tmp_path: Path) -> None:
    sources = bad_sources(tmp_path)
    with pytest.raises(FileNotFoundError):
        hm.hash_image(sources.pop("no such file"))
    for reason, source in sources.items():
        with pytest.raises(hm.MediaError, match=rf"^source: .*{re.escape(reason)}") as caught:
            hm.hash_image(source)
        assert isinstance(caught.value, ValueError)
        assert reason in caught.value.reason
    with pytest.raises(IsADirectoryError):
        hm.hash_image(tmp_path)


def test_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    rgb = picture()
    Image.fromarray(rgb).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 160 * 120 // 3)  # 3x over: an error
    with pytest.raises(hm.MediaError, match=r"decompression bomb") as caught:
        hm.hash_image(path)
    assert "MAX_IMAGE_PIXELS" in str(caught.value)
    batch = hm.hash_image([path, rgb])
    assert batch.items.tolist() == [1]
    assert batch.failures[0].reason.startswith("decompression bomb")


def test_bad_arguments() -> None:
    rgb = picture()
    with pytest.raises(hm.InvalidArgument, match=r"^kind: expected one of pdq, phash"):
        hm.hash_image(rgb, kind="sha1")
    with pytest.raises(hm.InvalidArgument, match=r"use hash_video"):
        hm.hash_image(rgb, kind="vpdq")
    with pytest.raises(hm.InvalidType, match=r"^kind: "):
        hm.hash_image(rgb, kind=None)  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidType, match=r"^dihedral: expected True or False"):
        hm.hash_image(rgb, dihedral="yes")  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidType, match=r"^source: expected a uint8 image array, got float"):
        hm.hash_image(rgb.astype(np.float32))
    with pytest.raises(hm.InvalidArgument, match=r"^source: expected an image array of shape"):
        hm.hash_image(np.zeros((2, 10, 10, 3), np.uint8))
    with pytest.raises(hm.InvalidType, match=r"^source: expected a path, bytes"):
        hm.hash_image(42)
    with pytest.raises(hm.InvalidType, match=r"^source: expected a path, bytes"):
        hm.hash_image({"a": 1})
    with pytest.raises(hm.InvalidArgument, match=r"^threads"):
        hm.hash_image([rgb], threads=0)


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_collects_failures_and_keeps_order(tmp_path: Path, threads: int) -> None:
    bad = bad_sources(tmp_path)
    good = [picture(name) for name in ("astronaut", "coffee", "chelsea")]
    sources: list[object] = [good[0], *bad.values(), good[1], 17, good[2]]
    batch = hm.hash_image(iter(sources), threads=threads, progress=True)
    assert isinstance(batch, hm.HashedImages)
    assert batch.items.tolist() == [0, 7, 9]
    assert len(batch) == 3 and batch.codes.shape == (3, 32)
    for row, rgb in zip(batch.codes, good, strict=True):
        assert np.array_equal(row, hm.hash_image(rgb).codes)
    assert batch.qualities.dtype == np.int16 and (batch.qualities >= 50).all()
    assert [f.item for f in batch.failures] == [1, 2, 3, 4, 5, 6, 8]
    reasons = [f.reason for f in batch.failures]
    for expected, reason in zip([*bad, "expected a path, bytes"], reasons, strict=True):
        assert expected.lower() in reason.lower(), (expected, reason)
    assert batch.failures[0].source == str(tmp_path / "missing.jpg")
    assert batch.sources == [None, None, None]


def test_batch_shapes_and_feeding_the_index_and_lists(tmp_path: Path) -> None:
    paths = []
    for name in ("astronaut", "coffee"):
        paths.append(tmp_path / f"{name}.jpg")
        paths[-1].write_bytes(jpeg(picture(name)))
    batch = hm.hash_image(paths, dihedral=True)
    assert batch.codes.shape == (2, 8, 32)
    assert batch.sources == [str(p) for p in paths]
    assert len(batch.hex) == 2 and len(batch.hex[0]) == 8
    empty = hm.hash_image([], kind="phash", dihedral=True)
    assert empty.codes.shape == (0, 8, 8) and empty.failures == []
    plain = hm.hash_image(paths)
    bank = hm.HashList("pdq", name="bank")
    bank.add(plain.codes, keys=plain.sources, quality=plain.qualities)
    result = hm.Matcher({"bank": bank}).match(
        plain.codes, qualities=plain.qualities, min_quality=50
    )
    assert sorted(result.to_pandas()["key"]) == sorted(plain.sources)
    phashes = hm.hash_image(paths, kind="phash")
    assert (phashes.qualities == -1).all()
    assert hm.HashList("phash").add(phashes.codes, quality=phashes.qualities).tolist() == [0, 1]


def test_import_hashmatch_needs_no_media_library() -> None:
    code = (
        "import sys, hashmatch\n"
        "print(sorted(m for m in ('PIL', 'av', 'pdqhash', 'imagehash') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pdqhash", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "hashmatch\[media\]"'):
        hm.hash_image(picture())
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ModuleNotFoundError, match=r"hash_video needs av"):
        hm.hash_video(b"anything")


# ------------------------------------------------------------------------------------ video


@pytest.mark.parametrize(
    ("fps", "seconds", "count", "expected"),
    [
        (10, 1.0, 35, [0, 10, 20, 30]),
        (10, 0.5, 12, [0, 5, 10]),
        (2.5, 1.0, 10, [0, 2, 4, 6, 8]),  # int(1.0 * 2.5) = 2
        (4, 0, 6, [0, 1, 2, 3, 4, 5]),  # 0: every frame
        (5, 0.1, 4, [0, 1, 2, 3]),  # int(0.5) = 0 -> 1
        (5, 10.0, 12, [0]),
    ],
)
def test_video_frames_follow_the_vpdq_rule(
    tmp_path: Path, fps: float, seconds: float, count: int, expected: list[int]
) -> None:
    frames = scene_frames(count, fps)
    path = write_video(tmp_path / "v.mp4", frames, fps)
    video = hm.hash_video(path, seconds_per_hash=seconds)
    assert video.fps == fps
    assert video.frames.tolist() == expected
    assert video.timestamps.tolist() == [float(np.float32(i) / np.float32(fps)) for i in expected]
    assert video.codes.shape == (len(expected), 32)
    assert (video.qualities >= 80).all()
    assert (video.width, video.height) == (160, 120) and video.crop is None
    for row, i in zip(video.codes, expected, strict=True):  # each row hashes its own frame
        assert d(row, hm.hash_image(frames[i]).codes) <= 24  # through a lossy codec
    lines = video.to_lines()
    assert lines[-1].startswith(
        f"{expected[-1]},{video.qualities[-1]},{hm.to_hex(video.codes[-1])},"
    )
    assert math.isclose(float(lines[-1].rsplit(",", 1)[1]), expected[-1] / fps, abs_tol=5e-4)


def test_video_from_bytes_and_dihedral(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", scene_frames(20, 10), 10)
    plain = hm.hash_video(path)
    same = hm.hash_video(path.read_bytes())
    assert np.array_equal(plain.codes, same.codes)
    stack = hm.hash_video(str(path), dihedral=True)
    assert stack.codes.shape == (2, 8, 32)
    assert np.array_equal(stack.codes[:, 0], plain.codes)
    assert np.array_equal(stack.qualities, plain.qualities)


def test_trimmed_video_matches_the_original(tmp_path: Path) -> None:
    frames = scene_frames(40, 10)
    original = hm.hash_video(write_video(tmp_path / "a.mp4", frames, 10))
    trimmed = hm.hash_video(write_video(tmp_path / "b.mp4", frames[10:], 10, codec="libx264"))
    assert trimmed.frames.tolist() == [0, 10, 20]
    for row, frame in zip(trimmed.codes, [10, 20, 30], strict=True):
        distances = hm.hamming(row, original.codes)
        assert int(np.argmin(distances)) == original.frames.tolist().index(frame)
        assert distances.min() <= 24 and np.sort(distances)[1] > FAR


def test_pillarboxed_video_matches_with_crop_borders(tmp_path: Path) -> None:
    frames = scene_frames(30, 10)
    original = hm.hash_video(write_video(tmp_path / "a.mp4", frames, 10))
    barred = [pillarbox(f, 214) for f in frames]
    path = write_video(tmp_path / "b.mp4", barred, 10)
    plain = hm.hash_video(path)
    assert (hm.hamming(original.codes, plain.codes) > FAR).all()
    cropped = hm.hash_video(path, crop_borders=True)
    left, top, right, bottom = cropped.crop  # type: ignore[misc]
    assert (top, bottom) == (0, 120) and abs(left - 27) <= 4 and abs(right - 187) <= 4
    assert (cropped.width, cropped.height) == (214, 120)
    assert (hm.hamming(original.codes, cropped.codes) <= 24).all()
    # a dark scene in the middle does not shrink the crop: one crop for the whole video
    dark = [
        pillarbox((f // 8).astype(np.uint8), 214) if 10 <= i < 20 else b
        for i, (f, b) in enumerate(zip(frames, barred, strict=True))
    ]
    assert (
        hm.hash_video(write_video(tmp_path / "c.mp4", dark, 10), crop_borders=True).crop
        == cropped.crop
    )


def test_bad_videos(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hm.hash_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(hm.MediaError, match=r"^source: .*empty file"):
        hm.hash_video(tmp_path / "empty.mp4")
    picture_file = tmp_path / "a.jpg"
    picture_file.write_bytes(jpeg(picture()))
    video = write_video(tmp_path / "v.mp4", scene_frames(20, 10), 10)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    for source in (text, b"\x00" * 1000, picture_file, picture_file.read_bytes()):
        with pytest.raises(hm.MediaError, match=r"^source: .*not a video"):
            hm.hash_video(source)
    for bad in (-1, -0.5, float("nan"), float("inf")):
        with pytest.raises(hm.InvalidArgument, match=r"^seconds_per_hash: expected a finite"):
            hm.hash_video(video, seconds_per_hash=bad)
    for bad_type in ("1", None, True):
        with pytest.raises(hm.InvalidType, match=r"^seconds_per_hash"):
            hm.hash_video(video, seconds_per_hash=bad_type)  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidType, match=r"^source: expected a video path or bytes"):
        hm.hash_video(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(hm.InvalidType, match=r"^crop_borders"):
        hm.hash_video(video, crop_borders=1)  # type: ignore[arg-type]
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])  # the index (moov) is at the end: unreadable
    with pytest.raises(hm.MediaError, match=r"^source: "):
        hm.hash_video(cut)


# ------------------------------------------------------------------------- vPDQ conformance


def read_samples(path: Path) -> dict[int, tuple[int, str, float]]:
    rows = (line.split(",") for line in path.read_text().splitlines() if line.strip())
    return {int(f): (int(q), h, float(t)) for f, q, h, t in rows}


def check_against(
    video: hm.HashedVideo, expected: dict[int, tuple[int, str, float]], *, numbered: bool = True
) -> None:
    """Same frames and timestamps; hashes of quality >= 80 within 10 bits. ``numbered=False``:
    the expected rows are numbered 0, 1, 2... (python-threatexchange's list), not by frame."""
    if numbered:
        assert video.frames.tolist() == sorted(expected)
    else:
        assert len(video) == len(expected)
    strong = 0
    for row, line in enumerate(video.to_lines()):
        frame, quality, text, seconds = line.split(",")
        want_quality, want_hash, want_seconds = expected[int(frame) if numbered else row]
        assert abs(float(seconds) - want_seconds) < 1e-3
        assert abs(int(quality) - want_quality) <= 2
        if want_quality >= 80:
            strong += 1
            assert d(hm.from_hex(text), hm.from_hex(want_hash)) <= 10, frame
    assert strong > 0


def test_sample_hash_files_read_as_pdq() -> None:
    """Meta's sample lines are what HashedVideo.to_lines writes: frame,quality,hex,seconds."""
    samples = read_samples(DATA / "pytx-test-chair-20-sd-bar-1fps.txt")
    assert sorted(samples)[:3] == [0, 1, 2] and len(samples) == 21
    codes = hm.from_hex([h for _, h, _ in samples.values()])
    assert codes.shape == (21, 32)


SAMPLE_VIDEOS = os.environ.get("HASHMATCH_VPDQ_VIDEOS")


@pytest.mark.skipif(
    not SAMPLE_VIDEOS, reason="HASHMATCH_VPDQ_VIDEOS (Meta's tmk/sample-videos) not set"
)
@pytest.mark.parametrize(
    ("video", "samples", "seconds"),
    [
        ("chair-19-sd-bar.mp4", "chair-19-sd-bar.txt", 0),
        ("doorknob-hd-no-bar.mp4", "doorknob-hd-no-bar.txt", 0),
        ("chair-20-sd-bar.mp4", "pytx-test-chair-20-sd-bar-1fps.txt", 1.0),
    ],
)
def test_vpdq_samples(video: str, samples: str, seconds: float) -> None:
    """Meta's published vPDQ hashes of its sample videos, frame by frame."""
    path = Path(str(SAMPLE_VIDEOS)) / video
    if not path.exists():
        pytest.skip(f"{path} not found")
    video = hm.hash_video(path, seconds_per_hash=seconds)
    check_against(video, read_samples(DATA / samples), numbered=not samples.startswith("pytx"))


def test_vpdq_package_agrees(tmp_path: Path) -> None:
    """Meta's vpdq (where it installs: it builds against system FFmpeg) on a generated video."""
    vpdq = pytest.importorskip("vpdq")
    path = write_video(tmp_path / "v.mp4", scene_frames(45, 15), 15, codec="libx264")
    for seconds in (0, 1.0):
        features = vpdq.computeHash(str(path), seconds_per_hash=seconds)
        expected = {
            int(f.frame_number): (int(f.quality), str(f.hex), float(f.timestamp)) for f in features
        }
        check_against(hm.hash_video(path, seconds_per_hash=seconds), expected)


def test_codec_ringing_at_a_bar_edge_is_cut_with_the_bar() -> None:
    """Lines just inside a bar that a codec block blurred (faint next to the content) are bar."""
    frame = np.zeros((120, 213), np.uint8)
    frame[:, 53:160] = (np.arange(120)[:, None] * 5 + np.arange(107)) % 200 + 40
    frame[:, 48:53] = np.array([3, 8, 12, 9, 14], np.uint8)  # ringing: faint, not flat
    assert borders.find_content(frame) == (53, 0, 160, 120)
    frame[:, 160:165] = 10  # and on the other side
    assert borders.find_content(frame) == (53, 0, 160, 120)
    dark = frame.copy()  # dark content next to the faint lines: they are not cut as ringing
    dark[:, 53:160] = 14 + (np.arange(120)[:, None] + np.arange(107)) % 3 * 8
    box = borders.find_content(dark)
    assert box is not None and box[0] == 50  # the bar proper (lines of luma <= 10) only
