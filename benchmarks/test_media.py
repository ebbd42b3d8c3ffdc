"""Media hashing (issue 12): images per second for PDQ, hashmatch's batch (threads) against
pdqhash called in a Python loop the way python-threatexchange does; video frames per second.

Media are made here from scikit-image's bundled pictures; sizes follow
``HASHMATCH_BENCH_SCALE`` (smoke: a few images and a 2-second clip; full: 400 images and a
20-second clip).
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import hashmatch as hm

if TYPE_CHECKING:
    from conftest import Scale
    from pytest_benchmark.fixture import BenchmarkFixture

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")
pdqhash = pytest.importorskip("pdqhash")
skimage_data = pytest.importorskip("skimage.data")

IMAGE_SIZE = (480, 360)  # under PDQ's 512 reduction: both sides hash the same pixels
VIDEO_SIZE = (640, 360)
FPS = 30


@pytest.fixture(scope="module")
def jpegs(scale: Scale) -> list[bytes]:
    """JPEG files (bytes) of crops of the bundled photos, all different."""
    count = 16 if scale.name == "smoke" else 400
    photos = [
        Image.fromarray(getattr(skimage_data, name)()).convert("RGB").resize((640, 480))
        for name in ("astronaut", "coffee", "chelsea", "camera")
    ]
    out = []
    for i in range(count):
        x, y = (i * 7) % 160, (i * 5) % 120
        crop = photos[i % 4].crop((x, y, x + IMAGE_SIZE[0], y + IMAGE_SIZE[1]))
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


@pytest.fixture(scope="module")
def video(scale: Scale, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An H.264 clip panning over a photo."""
    seconds = 2 if scale.name == "smoke" else 20
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    photo = np.asarray(
        Image.fromarray(skimage_data.astronaut()).resize((VIDEO_SIZE[0] + 120, VIDEO_SIZE[1] + 90))
    )
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height = VIDEO_SIZE
        stream.pix_fmt = "yuv420p"
        for i in range(seconds * FPS):
            x, y = i % 120, (i // 2) % 90
            frame = np.ascontiguousarray(photo[y : y + VIDEO_SIZE[1], x : x + VIDEO_SIZE[0]])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pdqhash_loop(files: list[bytes]) -> list[tuple[str, int]]:
    """python-threatexchange's pdq_from_bytes, file after file: Pillow, numpy, pdqhash, hex."""
    out = []
    for data in files:
        array = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        bits, quality = pdqhash.compute(array)
        out.append((f"{int(''.join(map(str, bits)), 2):064x}", quality))
    return out


@pytest.mark.benchmark(group="media-images-pdq")
@pytest.mark.parametrize("threads", [1, 2])
def test_images_hashmatch(benchmark: BenchmarkFixture, jpegs: list[bytes], threads: int) -> None:
    reference = pdqhash_loop(jpegs[:4])
    result = hm.hash_image(jpegs, threads=threads)
    assert not result.failures and hm.to_hex(result.codes[:4]) == [h for h, _ in reference]
    benchmark.extra_info["images"] = len(jpegs)
    benchmark.pedantic(
        hm.hash_image, args=(jpegs,), kwargs={"threads": threads}, rounds=3, warmup_rounds=1
    )


@pytest.mark.benchmark(group="media-images-pdq")
def test_images_pdqhash_loop(benchmark: BenchmarkFixture, jpegs: list[bytes]) -> None:
    benchmark.extra_info["images"] = len(jpegs)
    benchmark.pedantic(pdqhash_loop, args=(jpegs,), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="media-video")
@pytest.mark.parametrize("seconds_per_hash", [0.0, 1.0])
def test_video(benchmark: BenchmarkFixture, video: Path, seconds_per_hash: float) -> None:
    result = hm.hash_video(video, seconds_per_hash=seconds_per_hash)
    benchmark.extra_info["hashed_frames"] = len(result)
    with av.open(str(video)) as container:
        benchmark.extra_info["decoded_frames"] = container.streams.video[0].frames
    benchmark.pedantic(
        hm.hash_video,
        args=(video,),
        kwargs={"seconds_per_hash": seconds_per_hash},
        rounds=3,
        warmup_rounds=0,
    )
