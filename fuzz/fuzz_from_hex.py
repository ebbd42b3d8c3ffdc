"""Fuzz :func:`hashmatch.from_hex` and the coercion behind every hash argument
(``hashmatch._validation.as_codes``) on arbitrary text and bytes, one hash or many.

The first byte of an input picks the shape and the width, the rest is the hash(es). Accepted:
hashmatch's errors (:class:`hashmatch.HashmatchError`); anything else is a bug.

    python fuzz/fuzz_from_hex.py -max_total_time=20 fuzz/corpus/from_hex
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hashmatch._validation import as_codes

import hashmatch as hm

BITS = (None, 8, 64, 256, 4096, 7)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import main  # noqa: E402


def check(data: bytes) -> None:
    """``from_hex`` and ``as_codes`` of ``data[1:]`` in the shape ``data[0]`` picks."""
    if not data:
        return
    flags, body = data[0], data[1:]
    text = body.decode("utf-8", "surrogateescape" if flags & 64 else "replace")
    shape = flags & 7
    value: object = {
        0: text,
        1: body,
        2: text.split("\n"),
        3: body.split(b"\n"),
        4: [text, body],  # kinds mixed: refused
        5: np.frombuffer(body, dtype=np.uint8),
        6: np.frombuffer(body[: len(body) // 4 * 4], dtype=np.uint8).reshape(-1, 4)
        if len(body) >= 4
        else text,
        7: iter(text.split(",")),
    }[shape]
    bits = BITS[(flags >> 3) % len(BITS)]
    try:
        codes = hm.from_hex(value, bits=bits)
    except hm.HashmatchError:
        pass
    else:
        assert codes.dtype == np.uint8 and codes.ndim in (1, 2)
        if bits is not None:
            assert codes.shape[-1] * 8 == bits
        if shape == 0:  # one hex text: it is its hash, lowercased
            assert hm.to_hex(codes) == text.lower(), (codes, text)
    if shape == 7:
        value = iter(text.split(","))
    try:
        codes, single = as_codes(value, nbytes=None if bits is None else bits // 8 or 1)
    except hm.HashmatchError:
        return
    assert codes.dtype == np.uint8 and codes.ndim == 2 and codes.flags.c_contiguous
    assert not single or len(codes) == 1


if __name__ == "__main__":
    main(check)
