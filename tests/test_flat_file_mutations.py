"""Seeded structure-aware mutations of saved FlatIndex files: each load raises
IndexFormatError or answers exactly like a brute-force oracle over the file's own codes."""

from __future__ import annotations

from pathlib import Path

import hashmatch.io as hio
import numpy as np
import pytest
from oracle import distances

import hashmatch as hm


@pytest.mark.parametrize("bits", [64, 72, 256])
def test_mutated_flat_files_raise_or_answer_exactly(tmp_path: Path, bits: int) -> None:
    rng = np.random.default_rng(bits)
    db = hm.datasets.random_codes(150, bits, seed=1)
    index = hm.FlatIndex(bits)
    index.add(db, ids=rng.permutation(10_000)[:150])
    path = tmp_path / "flat.hm"
    hm.save(index, path)
    original = {k: bytes(v) for k, v in hio.read_container(path).items()}
    queries = np.concatenate([db[:10], hm.datasets.random_codes(5, bits, seed=2)])
    radius = hm.hashtypes.default_max_distance(bits)
    rejected = 0
    for _ in range(80):
        name = ("ids", "tiles", "meta")[int(rng.integers(3))]
        data = bytearray(original[name])
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        hio.write_container(path, {**original, name: data})
        try:
            loaded = hm.load(path, mmap=bool(rng.integers(2)))
        except hm.IndexFormatError:
            rejected += 1
            continue
        ids, codes = loaded.contents()
        d = distances(queries, codes)
        lims, dist, found = loaded.range_search(queries, radius)
        for q in range(len(queries)):
            hit = d[q] <= radius
            want = sorted(zip(ids[hit].tolist(), d[q][hit].tolist(), strict=True))
            got = sorted(
                zip(
                    found[lims[q] : lims[q + 1]].tolist(),
                    dist[lims[q] : lims[q + 1]].tolist(),
                    strict=True,
                )
            )
            assert got == want
        kd, _ = loaded.search(queries, 3)
        assert np.array_equal(kd, np.sort(d, axis=1)[:, :3])
    assert rejected > 0
