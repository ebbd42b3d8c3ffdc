"""A bounded probe of hostile files, as a service operator would run it (not part of CI).

Mutates saved files of every kind (FlatIndex, MIHIndex, HashList with exact and faiss
backends) with valid checksums recomputed, loads each in a random mode with ``verify=True``,
and compares every answer of what loads with a brute-force oracle over the file's own codes;
then feeds mutated and random text to the hash-file reader. Prints the counts: inputs tried,
clean errors, exact answers, wrong answers (must be zero) and the slowest parser call.

    python fuzz/probe.py --loads 20000 --parses 4000 --seed 1
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import hashmatch.io as hio
import numpy as np

import hashmatch as hm


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = np.unpackbits(a, axis=1).astype(np.int16)
    y = np.unpackbits(b, axis=1).astype(np.int16)
    return x @ (1 - y).T + (1 - x) @ y.T


def _saved_files(directory: Path) -> dict[str, dict[str, bytes]]:
    """The sections of one small saved file of each kind."""
    files = {}
    db = hm.datasets.random_codes(120, 256, seed=3)
    for name, obj in (
        ("flat", hm.FlatIndex(256)),
        ("mih", hm.MIHIndex(256)),
        ("mih72", hm.MIHIndex(72, max_distance=9)),
    ):
        codes = db if obj.bits == 256 else hm.datasets.random_codes(120, 72, seed=4)
        obj.add(codes)
        hm.save(obj, directory / f"{name}.hm")
        files[name] = {k: bytes(v) for k, v in hio.read_container(directory / f"{name}.hm").items()}
    for backend in ("flat", "mih", "faiss-multihash"):
        hl = hm.HashList("pdq", backend=backend)
        hl.add(
            db, keys=[f"k{i}" for i in range(len(db))], extras=[{"i": i} for i in range(len(db))]
        )
        path = directory / f"list-{backend}.hm"
        hl.save(path)
        files[f"list-{backend}"] = {k: bytes(v) for k, v in hio.read_container(path).items()}
    return files


def _check_answers(obj: object, exact: bool) -> bool:
    """Whether a loaded object answers like the oracle over its own codes."""
    if isinstance(obj, hm.HashList):
        entries = list(obj.entries())
        codes = hm.from_hex([e.hash for e in entries]) if entries else np.zeros((0, 32), np.uint8)
        ids = np.array([e.id for e in entries], np.int64)
        queries = np.concatenate([codes[:8], hm.datasets.random_codes(2, 256, seed=9)])
        result = obj.match(queries)
        d = _distances(queries, codes)
        got = set(
            zip(
                result.queries.tolist(), result.ids.tolist(), result.distances.tolist(), strict=True
            )
        )
        q, j = np.nonzero(d <= obj.max_distance)
        want = set(zip(q.tolist(), ids[j].tolist(), d[q, j].tolist(), strict=True))
        keys = {e.id: e.key for e in entries}
        keys_ok = result.keys.tolist() == [keys[i] for i in result.ids.tolist()]
        return keys_ok and (got == want if exact else got <= want)
    ids, codes = obj.contents()  # type: ignore[attr-defined]
    queries = np.concatenate([codes[:8], hm.datasets.random_codes(2, obj.bits, seed=9)])  # type: ignore[attr-defined]
    d = _distances(queries, codes)
    for radius in (0, obj.bits // 8, obj.bits // 4):  # type: ignore[attr-defined]
        lims, dist, found = obj.range_search(queries, radius)  # type: ignore[attr-defined]
        for i in range(len(queries)):
            hit = d[i] <= radius
            want = set(zip(ids[hit].tolist(), d[i][hit].tolist(), strict=True))
            span = slice(int(lims[i]), int(lims[i + 1]))
            got = set(zip(found[span].tolist(), dist[span].tolist(), strict=True))
            if got != want:
                return False
    kd, _ = obj.search(queries, 3)  # type: ignore[attr-defined]
    return bool(np.array_equal(kd, np.sort(d, axis=1)[:, : kd.shape[1]]))


def probe_loads(n: int, rng: np.random.Generator, directory: Path) -> Counter[str]:
    files = _saved_files(directory)
    counts: Counter[str] = Counter()
    path = directory / "probe.hm"
    kinds = sorted(files)
    for _ in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        sections = dict(files[kind])
        names = [k for k in sections if k != "meta" and sections[k]]
        name = names[int(rng.integers(len(names)))]
        data = bytearray(sections[name])
        for _ in range(int(rng.integers(1, 5))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        sections[name] = bytes(data)
        hio.write_container(path, sections)
        counts["tried"] += 1
        try:
            obj = hm.load(path, mmap=bool(rng.integers(2)))
        except hm.IndexFormatError:
            counts["clean error"] += 1
            continue
        except Exception as e:
            counts[f"other error {type(e).__name__}"] += 1
            continue
        try:
            ok = _check_answers(obj, exact="faiss" not in kind)
        except hm.HashmatchError as e:
            counts[f"error while answering {type(e).__name__}"] += 1
            continue
        counts["exact answers" if ok else "WRONG answers"] += 1
    return counts


def probe_parses(n: int, rng: np.random.Generator, directory: Path) -> tuple[Counter[str], float]:
    base = (
        "hash,id,key,labels,source,quality,extra\n"
        + "".join(f"{'ab' * 31}{i:02x},{i},k{i},a b,src,{i % 101},x\n" for i in range(40))
    ).encode()
    counts: Counter[str] = Counter()
    slowest = 0.0
    for i in range(n):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 12))):
            choice = int(rng.integers(4))
            at = int(rng.integers(len(data)))
            if choice == 0:
                data[at] = int(rng.integers(256))
            elif choice == 1:
                data[at:at] = b"," * int(rng.integers(1, 5000))
            elif choice == 2:
                data[at:at] = bytes([int(rng.integers(256))]) * int(rng.integers(1, 3000))
            else:
                del data[at : at + int(rng.integers(1, 50))]
        blob = gzip.compress(bytes(data)) if i % 3 == 0 else bytes(data)
        path = directory / f"probe{'.csv' if i % 2 else '.txt'}"
        path.write_bytes(blob)
        counts["tried"] += 1
        start = time.perf_counter()
        try:
            with hm.formats.read_hashes(path, skip_invalid=bool(i % 4 == 1)) as reader:
                for _chunk in reader:
                    pass
            counts["read"] += 1
        except hm.HashmatchError:
            counts["clean error"] += 1
        except Exception as e:
            counts[f"other error {type(e).__name__}"] += 1
        slowest = max(slowest, time.perf_counter() - start)
    return counts, slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=20000)
    parser.add_argument("--parses", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        loads = probe_loads(args.loads, rng, Path(tmp))
        print(f"loads  ({time.perf_counter() - start:.0f} s):", dict(loads))
        start = time.perf_counter()
        parses, slowest = probe_parses(args.parses, rng, Path(tmp))
        print(
            f"parses ({time.perf_counter() - start:.0f} s):",
            dict(parses),
            f"slowest {slowest:.3f} s",
        )
    bad = [k for k in (*loads, *parses) if k.startswith(("WRONG", "other", "error while"))]
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    main()
