"""The eight dihedral transforms of an image: what a rotated or mirrored re-upload undid.

PDQ is not invariant to a rotation by 90 degrees or a mirror: on real photos either takes the
distance far past 31. Meta's answer is to hash the query eight ways, the rotations by 0, 90,
180 and 270 degrees with and without a mirror, all from one DCT, and to match every variant.
hashmatch takes such a query as a *variant stack*: an ``(8, nbytes)`` array per query, the
variants in the order of :data:`TRANSFORMS` (the order of Meta's pdq and of ``pdqhash``'s
``compute_dihedral``). A dihedral search reports, per query and matched entry, the best variant
(the smallest distance; on a tie the first in this order) as an index into :data:`TRANSFORMS`.

Variant ``i`` is the hash of the query image transformed by ``TRANSFORMS[i]``, named as
Pillow's :class:`PIL.Image.Transpose` names it (``rotate_90`` is counter-clockwise). A match on
variant ``i`` therefore says: the query, transformed by ``TRANSFORMS[i]``, looks like the
stored image. An upload that was mirrored matches on ``flip_left_right``; one rotated 90 degrees
clockwise matches on ``rotate_90``.
"""

from __future__ import annotations

__all__ = ["IDENTITY", "TRANSFORMS"]

TRANSFORMS: tuple[str, ...] = (
    "original",
    "rotate_90",
    "rotate_180",
    "rotate_270",
    "flip_top_bottom",
    "flip_left_right",
    "transpose",
    "transverse",
)
"""The eight dihedral transforms, in variant order (Pillow's names; rotations counter-clockwise)."""

IDENTITY = 0
"""Index of the untransformed variant in :data:`TRANSFORMS`."""
