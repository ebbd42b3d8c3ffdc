"""``hashmatch demo``'s media part: hash generated pictures and a generated video, edit them as
re-uploaders do (re-encode, mirror, rotate, pillarbox), and match the edited copies against a
list that holds the originals among the demo's corpus: plain PDQ against hashmatch's way (the 8
dihedral variants, hashed with and without borders, in one query group).

Needs the ``media`` extra; without it the demo says so and skips this part.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import hashmatch as hm

from .common import duration

PICTURES = 100
SIZE = (320, 240)  # width, height
MIN_FOUND = 0.95  # an edit passes when this share of its uploads is found (and none wrongly)
VIDEO_SECONDS = 12
VIDEO_FPS = 10
EMBED_AT = 20  # seconds of other footage before the clip in the upload
AFTER = 8  # and after it
OTHER_VIDEOS = 2_000

RGB = npt.NDArray[np.uint8]


def _jpeg(rgb: RGB, quality: int = 90, scale: float = 1.0) -> bytes:
    from PIL import Image

    image = Image.fromarray(rgb)
    if scale != 1.0:
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        image = image.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _pillarbox(rgb: RGB) -> RGB:
    """``rgb`` centred in a 16:9 frame with black bars left and right."""
    height, width = rgb.shape[:2]
    wide = max(width, height * 16 // 9)
    out = np.zeros((height, wide, 3), np.uint8)
    left = (wide - width) // 2
    out[:, left : left + width] = rgb
    return out


def _mirror(rgb: RGB) -> RGB:
    return np.ascontiguousarray(rgb[:, ::-1])


EDITS: dict[str, Callable[[RGB], bytes]] = {
    "re-encoded (JPEG 50, 75% size)": lambda a: _jpeg(a, 50, 0.75),
    "mirrored": lambda a: _jpeg(_mirror(a)),
    "rotated 90 degrees clockwise": lambda a: _jpeg(np.ascontiguousarray(np.rot90(a, -1))),
    "pillarboxed to 16:9": lambda a: _jpeg(_pillarbox(a)),
    "mirrored and pillarboxed": lambda a: _jpeg(_pillarbox(_mirror(a))),
}


@dataclass
class MediaReport:
    """The lines the demo prints, and whether every check passed."""

    lines: list[str]
    passed: bool


def _found(result: hm.MatchResult, truth: npt.NDArray[np.int64]) -> tuple[int, int, list[str]]:
    """(groups that matched their own picture, matches of another entry, transforms)."""
    grouped = result.by_group()
    right = grouped.ids == truth[grouped.groups]
    transforms = [] if grouped.transforms is None else grouped.transforms[right].tolist()
    return len(np.unique(grouped.groups[right])), int((~right).sum()), transforms


def run(db: npt.NDArray[np.uint8], radius: int, seed: int, threads: int) -> MediaReport:
    """Bank generated pictures among ``db`` and match edited uploads of them."""
    if any(importlib.util.find_spec(m) is None for m in ("av", "pdqhash", "PIL", "imagehash")):
        return MediaReport(
            ["media       skipped: needs the media extra (pip install 'hashmatch[media]')"], True
        )
    lines: list[str] = []
    pictures = hm.datasets.pictures(PICTURES, *SIZE, seed=seed)
    t0 = time.perf_counter()
    banked = hm.hash_image(list(pictures), threads=threads)
    t1 = time.perf_counter()
    bank = hm.HashList("pdq", name="demo")
    bank.add(db, keys=None)
    ids = bank.add(banked.codes, keys=[f"picture-{i}" for i in range(PICTURES)])
    lines.append(
        f"media       {PICTURES} generated {SIZE[0]}x{SIZE[1]} pictures hashed (PDQ) in"
        f" {duration(t1 - t0)} ({PICTURES / max(t1 - t0, 1e-9):,.0f} images/s), banked among"
        f" the {len(db):,} corpus hashes; each edited 5 ways and matched at distance <= {radius}:"
    )
    lines.append(
        f"  {'edit':<32} {'plain PDQ':>10} {'hashmatch':>10}  (8 rotations/mirrors x with"
        " and without borders, one query group per upload)"
    )
    passed = True
    for name, edit in EDITS.items():
        uploads = [edit(p) for p in pictures]
        plain = hm.hash_image(uploads, threads=threads)
        plain_found, _, _ = _found(bank.match(plain.codes), ids)
        stacks = [
            hm.hash_image(uploads, dihedral=True, crop_borders=crop, threads=threads)
            for crop in (False, True)
        ]
        codes = np.concatenate([s.codes for s in stacks])
        groups = np.concatenate([s.items for s in stacks])
        result = bank.match(codes, dihedral=True, groups=groups, threads=threads)
        found, wrong, transforms = _found(result, ids)
        common = max(set(transforms), key=transforms.count) if transforms else "-"
        ok = found >= MIN_FOUND * PICTURES and wrong == 0
        passed &= ok
        lines.append(
            f"  {name:<32} {plain_found:>6}/{PICTURES} {found:>6}/{PICTURES}"
            f"  transform {common}{'' if wrong == 0 else f', {wrong} wrong matches'}"
        )
    lines.append(_dihedral_timing(bank, codes[:1], threads))
    video_lines, video_ok = _video(pictures, radius, threads)
    lines.extend(video_lines)
    return MediaReport(lines, passed and video_ok)


def _dihedral_timing(bank: hm.HashList, stack: npt.NDArray[np.uint8], threads: int) -> str:
    """One 8-variant query in one pass against the same 8 variants as 8 queries."""

    def median(call: Callable[[], Any]) -> float:
        times = []
        for _ in range(31):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    one_pass = median(lambda: bank.match(stack, dihedral=True, threads=1))
    separate = median(lambda: bank.match(stack[0], threads=1))
    index = bank.stats()["segments"][0]["index"]
    return (
        f"  one upload's 8 variants against {len(bank):,} hashes ({index}), one core, median:"
        f" {duration(one_pass)} in one pass, {duration(separate)} as 8 separate queries"
    )


def _video(pictures: RGB, radius: int, threads: int) -> tuple[list[str], bool]:
    """Bank a generated clip among other videos; match an upload that embeds it, mirrored and
    pillarboxed, in a longer video: plain vPDQ against hashmatch's VideoIndex."""
    clip_frames = [_pan(pictures[i], step) for i, step in _schedule(0, VIDEO_SECONDS)]
    other = VIDEO_SECONDS + EMBED_AT  # pictures of seconds [VIDEO_SECONDS, other) come before
    before = [_pan(pictures[i], step) for i, step in _schedule(VIDEO_SECONDS, other)]
    after = [_pan(pictures[i], step) for i, step in _schedule(other, other + AFTER)]
    upload_frames = [
        _pillarbox(_mirror(f)) for f in before + clip_frames + after
    ]  # the clip at EMBED_AT seconds, mirrored, in a 16:9 frame
    with tempfile.TemporaryDirectory() as folder:
        original = _encode(Path(folder) / "clip.mp4", clip_frames)
        upload = _encode(Path(folder) / "upload.mp4", upload_frames)
        t0 = time.perf_counter()
        clip = hm.hash_video(original)
        t1 = time.perf_counter()
        plain = hm.hash_video(upload)
        ours = [hm.hash_video(upload, dihedral=True, crop_borders=c) for c in (False, True)]
    bank = hm.VideoIndex(name="demo")
    others = hm.datasets.random_codes(OTHER_VIDEOS * VIDEO_SECONDS, seed=7)
    seconds = np.arange(VIDEO_SECONDS, dtype=np.float64)
    bank.add_many(
        [
            (
                others[i * VIDEO_SECONDS : (i + 1) * VIDEO_SECONDS],
                np.full(VIDEO_SECONDS, 100),
                seconds,
            )
            for i in range(OTHER_VIDEOS)
        ]
    )
    bank.add(clip, key="banned-clip", labels=["violence"])
    plain_result = bank.match(plain)
    t2 = time.perf_counter()
    result = bank.match(ours, dihedral=True, threads=threads)
    t3 = time.perf_counter()
    found = [m for m in result if m.key == "banned-clip"]
    plain_found = [m for m in plain_result if m.key == "banned-clip" and m.matched]
    lines = [
        f"video       a {VIDEO_SECONDS} s clip banked among {OTHER_VIDEOS:,} videos"
        f" ({bank.frames:,} vPDQ frames; {len(clip)} frames hashed in {duration(t1 - t0)});"
        f" upload: {len(plain)} s with the clip at {EMBED_AT} s, mirrored and pillarboxed"
    ]
    if not found:
        lines.append("  hashmatch: the banked clip was NOT found")
        return lines, False
    m = found[0]
    seg = max(m.segments, key=lambda sg: sg.frames)
    lines.append(
        f"  plain vPDQ: {'matched' if plain_found else 'not matched'};"
        f" hashmatch (dihedral, both borders) in {duration(t3 - t2)}: query_pct"
        f" {m.query_pct:.0f}%, compared_pct {m.compared_pct:.0f}%"
        f" -> {'MATCH' if m.matched else 'no match'}"
        f" ({m.transform}); upload {seg.query_start:.0f}-{seg.query_end:.0f} s ="
        f" banked {seg.banked_start:.0f}-{seg.banked_end:.0f} s"
    )
    ok = m.matched and abs(seg.query_start - EMBED_AT) <= 1 and not plain_found
    others_matched = [x for x in result if x.key != "banned-clip" and x.matched]
    return lines, ok and not others_matched


def _schedule(first: int, last: int) -> list[tuple[int, int]]:
    """(picture, pan step) of each frame of seconds [first, last): picture ``s`` in second
    ``s``, panning slowly."""
    return [(i // VIDEO_FPS, i % VIDEO_FPS) for i in range(first * VIDEO_FPS, last * VIDEO_FPS)]


def _pan(picture: RGB, step: int) -> RGB:
    """A frame of a slow pan: the picture shifted ``step`` pixels, edges repeated."""
    shifted = np.pad(picture, ((0, 0), (step, 0), (0, 0)), mode="edge")
    return np.ascontiguousarray(shifted[:, : picture.shape[1]])


def _encode(path: Path, frames: list[RGB]) -> Path:
    """Encode RGB frames as an MPEG-4 video at VIDEO_FPS."""
    from hashmatch.media.video import write_video

    return Path(write_video(path, frames, VIDEO_FPS))
