"""Write the seed corpora (fuzz/corpus/<harness>/): a few small inputs each. Each input is a
flags byte (see the harness) then the file or text.

    python fuzz/make_seeds.py
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

import hashmatch as hm

HERE = Path(__file__).resolve().parent
A, B = "ab" * 32, "0f" * 32


def put(harness: str, name: str, flags: int, body: bytes) -> None:
    (HERE / "corpus" / harness / name).write_bytes(bytes([flags]) + body)


def formats() -> None:
    put("formats", "hex", 2 << 3, f"# list\n{A}\n\n{B.upper()}\n".encode())
    put("formats", "typed-hex", 2 << 3, f"pdq {A}\npdq {B}\n".encode())
    put("formats", "csv-header", 128, f"hash,id,tags,note\n{A},7,spam scam,x\n{B},9,,\n".encode())
    put(
        "formats",
        "hma-bank",
        128 | (1 << 3),
        (f"signal_type\tsignal_value\tsignal_id\tbank_member_tags\npdq\t{A}\t1\ta b\n").encode(),
    )
    put(
        "formats",
        "te-ui",
        128,
        (
            "td_raw_indicator,td_subjective_tags,td_owner_name,td_description\n"
            f'{A},testing;pwny,ISE App,"Testing, bulk"\n'
        ).encode(),
    )
    put("formats", "headerless-typed", 4, f'pdq,{A},key,"quoted\nfield"\n'.encode())
    put("formats", "quality", 128 | 2, f"hash,quality,filename\n{A},100,a.jpg\n{B},x,b\n".encode())
    put("formats", "gzip", 1 | 128, f"hash,key\r\n{A},k\r\n".encode())  # gzipped by the harness
    put("formats", "gz-inside", 0, gzip.compress(f"{A}\n".encode(), mtime=0))


def from_hex() -> None:
    put("from_hex", "one", 0, A.encode())
    put("from_hex", "many", 2, f"{A}\n{B}".encode())
    put("from_hex", "bytes", 1 | (2 << 3), bytes(range(32)))
    put("from_hex", "prefix", 0, b"0x" + A.encode())
    put("from_hex", "array", 6, bytes(range(64)))


def load(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    flat = hm.FlatIndex(64)
    flat.add(codes)
    mih = hm.MIHIndex(64, max_distance=8)
    mih.add(codes, ids=[3, 1, 4, 10, 5, 9])
    hl = hm.HashList("pdq")
    hl.add([A, B], keys=["k1", None], labels=[("spam",), ()], extras=[{"a": "1"}, {}])
    for name, obj in (("flat", flat), ("mih", mih), ("hashlist", hl)):
        path = tmp / f"{name}.hm"
        hm.save(obj, path)
        data = path.read_bytes()
        put("load", name, 0, data)
        put("load", f"{name}-repair", 4 | 2, data)


def vpdq() -> None:
    frames = hm.VideoFrames([A, B, A], [100, 40, 90], [0, 30, 60], [0.0, 1.0, 123.4])
    put("vpdq", "lines", 128, hm.formats.format_vpdq(frames).encode())
    put(
        "vpdq",
        "lines-crlf-gz",
        128 | 1,
        hm.formats.format_vpdq(frames).replace("\n", "\r\n").encode(),
    )
    put(
        "vpdq",
        "pytx",
        128,
        hm.formats.format_vpdq(frames, format="pytx", timestamps="rounded").encode(),
    )
    put(
        "vpdq",
        "pytx-dict",
        128 | (3 << 1),
        hm.formats.format_vpdq(frames, format="pytx-dict").encode(),
    )
    put("vpdq", "empty", 8, b"")
    put("vpdq", "bad", 16, f"0,100,{A},0.000\n1,100,{A[1:]},x\n".encode())


if __name__ == "__main__":
    import tempfile

    formats()
    from_hex()
    vpdq()
    with tempfile.TemporaryDirectory() as tmp:
        load(Path(tmp))
