"""Small real media for the media tests, made at test time from the pictures scikit-image ships
(``skimage.data``): no binary test files in the repository."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hashmatch.media import video

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")
skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("pdqhash")
pytest.importorskip("imagehash")

RGB = npt.NDArray[np.uint8]
SIZE = (160, 120)  # width, height


def picture(name: str = "astronaut", size: tuple[int, int] = SIZE) -> RGB:
    """A bundled photo (astronaut, coffee, chelsea, camera) as RGB uint8, resized."""
    array = getattr(skimage_data, name)()
    image = Image.fromarray(array).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image).copy()


def jpeg(rgb: RGB, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def pillarbox(rgb: RGB, width: int, colour: int = 0) -> RGB:
    """``rgb`` centred in a frame ``width`` wide, with bars of ``colour`` left and right."""
    height, inner = rgb.shape[:2]
    out = np.full((height, width, 3), colour, dtype=np.uint8)
    left = (width - inner) // 2
    out[:, left : left + inner] = rgb
    return out


def letterbox(rgb: RGB, height: int, colour: int = 0) -> RGB:
    """``rgb`` centred in a frame ``height`` tall, with bars above and below."""
    return np.ascontiguousarray(
        pillarbox(rgb.transpose(1, 0, 2), height, colour).transpose(1, 0, 2)
    )


def scene_frames(count: int, fps: float, size: tuple[int, int] = SIZE) -> list[RGB]:
    """``count`` frames: a slow pan over one photo per second of video (astronaut, coffee,
    chelsea, camera, in turn), so frames a second apart differ and neighbours look alike."""
    names = ("astronaut", "coffee", "chelsea", "camera")
    width, height = size
    sources = {name: picture(name, (width + 64, height + 48)) for name in names}
    frames = []
    for i in range(count):
        source = sources[names[int(i / fps) % len(names)]]
        shift = i % 16
        frames.append(
            np.ascontiguousarray(source[shift : shift + height, 2 * shift : 2 * shift + width])
        )
    return frames


def write_video(
    path: Path, frames: list[RGB], fps: float | Fraction, *, codec: str = "mpeg4"
) -> Path:
    """Encode RGB frames (all one size) as a video at a constant ``fps``."""
    return Path(video.write_video(path, frames, fps, codec=codec))
