"""Dihedral queries (issue 12): one 8-variant stack against the corpus, one pass vs 8 queries.

A rotated or mirrored re-upload matches only through one of its 8 dihedral variants, so each
upload is a variant stack. Group ``dihedral-range-single-256`` (one stack, r = 31, one thread)
holds our one-pass searches (``hashmatch-flat-onepass``, ``hashmatch-mih-onepass``), the default
that every backend has (the 8 variants as one batch of 8 queries, merged per id:
``*-8queries``), one single-variant flat scan (the issue's yardstick), and faiss's
IndexBinaryFlat and IndexBinaryMultiHash (16 tables of 16 bits, one flip) with the 8 variants
as 8 queries. Stacks are realistic: one variant (at a random place) is a stored hash with 0 to
20 bits flipped in half of them, the other variants are unrelated hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import cycle
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import numpy.typing as npt
import pytest
from hashmatch._backend import BackendBase

import hashmatch as hm

if TYPE_CHECKING:
    from conftest import Scale
    from pytest_benchmark.fixture import BenchmarkFixture

BITS, RADIUS, NV = 256, 31, len(hm.TRANSFORMS)
LIBRARIES = [
    "hashmatch-flat-onepass",
    "hashmatch-flat-1variant",
    "hashmatch-flat-8queries",
    "hashmatch-mih-onepass",
    "hashmatch-mih-8queries",
    "faiss-flat-8queries",
    "faiss-multihash-8queries",
]


@dataclass
class Dihedral:
    codes: npt.NDArray[np.uint8]
    stacks: npt.NDArray[np.uint8]  # (nq, 8, 32)
    flat: hm.FlatIndex
    mih: hm.MIHIndex
    faiss_flat: Any
    multihash: Any


@pytest.fixture(scope="session")
def dihedral(scale: Scale) -> Dihedral:
    codes = hm.datasets.random_codes(scale.n, BITS, seed=BITS)  # the corpus of test_flat/test_mih
    rng = np.random.default_rng(12)
    nq = 200
    stacks = rng.integers(0, 256, (nq, NV, BITS // 8), dtype=np.uint8)
    source = codes[rng.integers(0, len(codes), nq)]
    near = hm.datasets.flip_bits(source, rng.integers(0, 21, nq), seed=13)
    matched = np.arange(0, nq, 2)
    stacks[matched, rng.integers(0, NV, len(matched))] = near[matched]
    flat, mih = hm.FlatIndex(BITS), hm.MIHIndex(BITS, max_distance=RADIUS)
    flat.add(codes)
    mih.add(codes)
    faiss_flat = faiss.IndexBinaryFlat(BITS)
    faiss_flat.add(codes)
    multihash = faiss.IndexBinaryMultiHash(BITS, 16, 16)
    multihash.nflip = 1
    multihash.add(codes)
    return Dihedral(codes, stacks, flat, mih, faiss_flat, multihash)


def searcher(d: Dihedral, library: str) -> Any:
    """One variant stack (1, 8, 32) -> the library's search, on one thread."""
    faiss.omp_set_num_threads(1)
    return {
        "hashmatch-flat-onepass": lambda s: d.flat.range_search(
            s, RADIUS, dihedral=True, threads=1
        ),
        "hashmatch-flat-1variant": lambda s: d.flat.range_search(s[0, :1], RADIUS, threads=1),
        "hashmatch-flat-8queries": lambda s: BackendBase.range_search_variants_validated(
            d.flat, s, RADIUS, 1
        ),
        "hashmatch-mih-onepass": lambda s: d.mih.range_search(s, RADIUS, dihedral=True, threads=1),
        "hashmatch-mih-8queries": lambda s: BackendBase.range_search_variants_validated(
            d.mih, s, RADIUS, 1
        ),
        "faiss-flat-8queries": lambda s: d.faiss_flat.range_search(s[0], RADIUS + 1),
        "faiss-multihash-8queries": lambda s: d.multihash.range_search(s[0], RADIUS + 1),
    }[library]


def check_once(d: Dihedral, library: str) -> None:
    """Our one-pass answers equal the merged 8 queries and faiss's flat scan (ids and
    distances per query; faiss is strict <, hence RADIUS + 1)."""
    stacks = d.stacks[:20]
    if library.startswith("hashmatch") and library.endswith("onepass"):
        index = d.flat if "flat" in library else d.mih
        one = index.range_search(stacks, RADIUS, dihedral=True)
        merged = BackendBase.range_search_variants_validated(index, stacks, RADIUS, 2)
        for a, b in zip(one, merged, strict=True):
            np.testing.assert_array_equal(a, b)
        lims, _, ids = d.faiss_flat.range_search(stacks.reshape(-1, BITS // 8), RADIUS + 1)
        lims = lims.astype(np.int64)
        for q in range(len(stacks)):
            theirs = set(ids[lims[q * NV] : lims[(q + 1) * NV]].tolist())
            assert set(one.query(q)[1].tolist()) == theirs


@pytest.mark.parametrize("library", LIBRARIES)
def test_range_single(
    benchmark: BenchmarkFixture, dihedral: Dihedral, scale: Scale, library: str
) -> None:
    benchmark.group = f"dihedral-range-single-{BITS}"
    benchmark.extra_info.update(
        library=library, scale=scale.name, n=scale.n, variants=NV, max_distance=RADIUS, threads=1
    )
    check_once(dihedral, library)
    search = searcher(dihedral, library)
    rows = cycle(range(len(dihedral.stacks)))
    stacks = dihedral.stacks
    benchmark.pedantic(
        lambda: search(stacks[next(rows)][None]), rounds=scale.single_rounds * 2, warmup_rounds=5
    )
    if benchmark.stats is not None:  # None under --benchmark-disable (correctness only)
        data = benchmark.stats.stats.data
        benchmark.extra_info["p50_ms"] = float(np.percentile(data, 50)) * 1e3
        benchmark.extra_info["p99_ms"] = float(np.percentile(data, 99)) * 1e3
