"""Fuzz :func:`hashmatch.read_vpdq` on arbitrary bytes, every form, with and without gzip;
what it reads must be well-formed frames that every form writes and reads back the same.

The first byte of an input picks the options, the rest is the file. Accepted: hashmatch's
errors (:class:`hashmatch.HashmatchError`) and ``OSError``; anything else is a bug.

    python fuzz/fuzz_vpdq.py -max_total_time=20 fuzz/corpus/vpdq
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
from hashmatch.formats import VPDQ_FORMATS, format_vpdq, parse_vpdq

import hashmatch as hm

FORMATS = ("auto", *VPDQ_FORMATS)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import main, scratch  # noqa: E402


def check(data: bytes) -> None:
    """Read ``data[1:]`` as a vPDQ file with the options ``data[0]`` picks."""
    if not data:
        return
    flags, body = data[0], data[1:]
    compress = bool(flags & 1)
    form = FORMATS[(flags >> 1) % 4]
    allow_empty = bool(flags & 8)
    max_line_chars = 120 if flags & 16 else 1 << 20
    path = scratch(
        "video.txt" + (".gz" if compress else ""),
        gzip.compress(body, 1, mtime=0) if compress else body,
    )
    try:
        frames = hm.read_vpdq(
            path, format=form, allow_empty=allow_empty, max_line_chars=max_line_chars
        )
    except (hm.HashmatchError, OSError):
        return
    assert allow_empty or len(frames), "no frames without allow_empty"
    assert frames.codes.shape == (len(frames), 32) and frames.codes.dtype == np.uint8
    assert ((frames.qualities >= 0) & (frames.qualities <= 100)).all()
    assert np.isfinite(frames.timestamps).all() and (frames.timestamps >= 0).all()
    assert (np.diff(frames.timestamps) >= 0).all(), "timestamps in order"
    assert frames.frames is not None
    if frames.numbered:
        assert (np.diff(frames.frames) > 0).all() and (frames.frames >= 0).all()
    else:
        assert (frames.frames == -1).all()
    for out in VPDQ_FORMATS if flags & 128 else ():
        if out != "pytx" and not frames.numbered:
            continue
        back = parse_vpdq(format_vpdq(frames, format=out), format=out, allow_empty=True)
        assert back.codes.tobytes() == frames.codes.tobytes(), out
        assert back.qualities.tolist() == frames.qualities.tolist(), out
        assert back.timestamps.tolist() == frames.timestamps.tolist(), out
        if out != "pytx":
            assert back.frames is not None and back.frames.tolist() == frames.frames.tolist()


if __name__ == "__main__":
    main(check)
