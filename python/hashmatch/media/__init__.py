"""Hashing media: images and videos straight to hashmatch's packed hashes.

:func:`hash_image` hashes an image (a path, bytes, a Pillow image or a uint8 array) or a
batch of them with PDQ (``pdqhash``, Meta's C++) or imagehash's 64-bit kinds;
:func:`hash_video` gives the vPDQ frames of a video (decoded with PyAV, frames chosen by
Meta's vpdq rule). Both need the ``media`` extra (``pip install "hashmatch[media]"``: Pillow,
pdqhash, ImageHash, av); ``import hashmatch`` does not.

Rotations and mirrors: ``dihedral=True`` gives 8 hashes per image or frame, in the order of
:data:`hashmatch.TRANSFORMS`, for ``index.range_search(codes, 31, dihedral=True)``.

Borders, both ways: a re-upload padded with bars (4:3 in 16:9, a landscape video in a portrait
frame) is far from the original on every frame; ``crop_borders=True`` hashes what is inside
uniform bars (:mod:`hashmatch.media.borders`). Lists are banked either way, so hash an upload
both ways and match both: ``hash_image(p)`` and ``hash_image(p, crop_borders=True)``, as one
group (``matcher.match(codes, groups=...)``). Bars are cut only in centred pairs, so the
cropped hash of a picture without bars is nearly always its plain hash: banking both costs a
second row only where bars were found.
"""

from __future__ import annotations

from .images import IMAGE_KINDS, HashedImage, HashedImages, HashFailure, hash_image
from .video import HashedVideo, hash_video

__all__ = [
    "IMAGE_KINDS",
    "HashFailure",
    "HashedImage",
    "HashedImages",
    "HashedVideo",
    "hash_image",
    "hash_video",
]
