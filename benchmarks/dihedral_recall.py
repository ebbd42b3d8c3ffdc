"""Recall of rotated and mirrored, re-encoded uploads: PDQ's one-DCT dihedral variants
(``hash_image(..., dihedral=True)``) against the hashes of the 8 transformed pictures
(``dihedral_method="pixels"``). Needs the test extras (scikit-image for real photos).

Usage: python benchmarks/dihedral_recall.py
"""

import io

import numpy as np
import skimage.data as d
from PIL import Image

import hashmatch as hm

pics = list(hm.datasets.pictures(200, seed=11))
for n in [
    "astronaut",
    "coffee",
    "chelsea",
    "camera",
    "rocket",
    "immunohistochemistry",
    "cat",
    "hubble_deep_field",
]:
    try:
        a = getattr(d, n)()
    except Exception:
        continue
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    pics.append(a[..., :3])


def up(a, t, q, s):
    im = Image.fromarray(a).transpose(Image.Transpose[t])
    if s != 1:
        im = im.resize((round(im.width * s), round(im.height * s)), Image.BILINEAR)
    b = io.BytesIO()
    im.save(b, "JPEG", quality=q)
    return b.getvalue()


banked = hm.hash_image(pics).codes
print(f"{len(pics)} pictures ({len(pics) - 200} photos from scikit-image)")
for t in ["ROTATE_270", "ROTATE_180", "FLIP_LEFT_RIGHT", "FLIP_TOP_BOTTOM"]:
    for q, s in [(90, 1.0), (70, 0.75), (50, 0.5)]:
        uploads = [up(a, t, q, s) for a in pics]
        res = {}
        for m in ("dct", "pixels"):
            st = hm.hash_image(uploads, dihedral=True, dihedral_method=m).codes
            best = np.array([hm.hamming(banked[i], st[i]).min() for i in range(len(pics))])
            res[m] = (int((best <= 31).sum()), float(np.median(best)), int(best.max()))
        dct, pix = res["dct"], res["pixels"]
        print(
            f"{t:16} JPEG {q} x{s}: dct found {dct[0]}/{len(pics)} (median {dct[1]:.0f},"
            f" max {dct[2]}); pixels {pix[0]}/{len(pics)} (median {pix[1]:.0f}, max {pix[2]})"
        )
