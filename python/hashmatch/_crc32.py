"""CRC-32 (zlib's) of big buffers on every core.

zlib.crc32 releases the GIL on big buffers, so pieces of a buffer are checksummed in parallel
threads; their CRCs then combine as zlib's crc32_combine does: CRC(a + b) is CRC(a) advanced
over len(b) zero bytes (a linear map over GF(2), applied as a 32 x 32 bit matrix) xor CRC(b).
"""

from __future__ import annotations

import functools
import zlib
from concurrent.futures import ThreadPoolExecutor

from hashmatch._validation import check_threads

__all__ = ["crc32_all", "crc32_combine"]

_CRC_PIECE = 16 << 20  # bytes per task; smaller batches run on the calling thread


def crc32_all(buffers: list[memoryview]) -> list[int]:
    """zlib.crc32 of each 1-D byte buffer, big ones split into pieces checksummed on every core."""
    pieces = [(i, start) for i, b in enumerate(buffers) for start in range(0, len(b), _CRC_PIECE)]
    threads = min(check_threads(None), len(pieces))
    if threads < 2 or sum(b.nbytes for b in buffers) < 2 * _CRC_PIECE:
        return [zlib.crc32(b) for b in buffers]
    with ThreadPoolExecutor(threads) as pool:
        crcs = list(pool.map(lambda p: zlib.crc32(buffers[p[0]][p[1] : p[1] + _CRC_PIECE]), pieces))
    out = [0] * len(buffers)
    for (i, start), crc in zip(pieces, crcs, strict=True):
        length = min(_CRC_PIECE, len(buffers[i]) - start)
        out[i] = crc if start == 0 else crc32_combine(out[i], crc, length)
    return out


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of a + b from crc1 = CRC(a), crc2 = CRC(b) and len2 = len(b)."""
    return _gf2_times(_zeros_operator(len2), crc1) ^ crc2


def _gf2_times(matrix: tuple[int, ...], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_product(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_gf2_times(a, column) for column in b)


@functools.lru_cache(maxsize=16)
def _zeros_operator(nbytes: int) -> tuple[int, ...]:
    """The matrix advancing a CRC-32 over nbytes zero bytes (columns as ints)."""
    power = (0xEDB88320, *(1 << n for n in range(31)))  # one zero bit (reflected polynomial)
    for _ in range(3):
        power = _gf2_product(power, power)  # one zero byte
    result = tuple(1 << n for n in range(32))  # identity
    while nbytes:
        if nbytes & 1:
            result = _gf2_product(power, result)
        nbytes >>= 1
        if nbytes:
            power = _gf2_product(power, power)
    return result
