"""hashmatch's pytx index (hashmatch.threatexchange.PDQIndex) against pytx's PDQIndex and
PDQIndex2, in one run, as pytx and HMA use them.

Groups (``extra_info["library"]``: hashmatch, pytx-PDQIndex, pytx-PDQIndex2):

- ``tx-build``: ``build(entries)`` of ``scale.n`` (hex, int id) entries, 1% of hashes twice;
- ``tx-query-single``: one ``query(hex)`` (half the queries planted within 31);
- ``tx-query-batch``: a batch of ``TX_BATCH`` queries (ours: ``query_batch``; pytx has only
  ``query``, called in a loop);
- ``tx-unpickle``: ``pickle.loads`` of the serialized index (HMA's ``deserialize``);
  ``extra_info["pickled_bytes"]`` is its size;
- ``tx-swap``: 20 cycles of HMA's index refresh: unpickle the newly built index and swap it in
  for the old one; ``extra_info["rss_mib_after"]`` is the process RSS after them (RSS after the
  first cycle in ``rss_mib_first``).

Every library's answers to the queries are checked equal first (multisets of (distance, id)).
``HASHMATCH_BENCH_SCALE=smoke`` runs in seconds.
"""

from __future__ import annotations

import gc
import pickle
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("threatexchange")
from conftest import Scale
from hashmatch.threatexchange import PDQIndex
from threatexchange.signal_type.pdq.pdq_index import PDQIndex as PytxPDQIndex
from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2

import hashmatch as hm

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

LIBRARIES = {"hashmatch": PDQIndex, "pytx-PDQIndex": PytxPDQIndex, "pytx-PDQIndex2": PDQIndex2}
SWAP_CYCLES = 20


def tx_batch(scale: Scale) -> int:
    return 200 if scale.name == "smoke" else 1000


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class TxCorpus:
    """The entries and queries, as hex strings."""

    def __init__(self, scale: Scale) -> None:
        codes = hm.datasets.random_codes(scale.n, 256, seed=256)
        planted = hm.datasets.planted_queries(
            codes, tx_batch(scale), max_distance=31, match_fraction=0.5, seed=257
        )
        hexes = [bytes(c).hex() for c in codes]
        dups = hexes[: scale.n // 100]
        self.entries: list[tuple[str, int]] = [(h, i) for i, h in enumerate(hexes + dups)]
        self.queries = [bytes(c).hex() for c in planted.queries]


@pytest.fixture(scope="module")
def tx(scale: Scale) -> TxCorpus:
    return TxCorpus(scale)


@pytest.fixture(scope="module", params=list(LIBRARIES))
def built(request: pytest.FixtureRequest, tx: TxCorpus) -> tuple[str, Any]:
    """One library's index of the corpus (one alive at a time: module scope, ordered by lib)."""
    name: str = request.param
    index = LIBRARIES[name].build(tx.entries)
    yield name, index
    del index
    gc.collect()


@pytest.fixture(scope="module")
def expected(tx: TxCorpus) -> list[Counter[tuple[int, int]]]:
    index = PDQIndex.build(tx.entries)
    return [
        Counter((m.similarity_info.distance, m.metadata) for m in found)
        for found in index.query_batch(tx.queries)
    ]


def _answers(index: Any, queries: list[str]) -> list[Counter[tuple[int, int]]]:
    return [
        Counter((int(m.similarity_info.distance), m.metadata) for m in index.query(q))
        for q in queries
    ]


@pytest.mark.parametrize("name", list(LIBRARIES))
def test_build(benchmark: BenchmarkFixture, tx: TxCorpus, name: str) -> None:
    benchmark.group = "tx-build"
    benchmark.extra_info.update(library=name, entries=len(tx.entries))
    index = benchmark.pedantic(LIBRARIES[name].build, args=(tx.entries,), rounds=1, iterations=1)
    assert len(index) in (len(tx.entries), len(tx.entries) - len(tx.entries) // 101)


def test_answers_agree(built: tuple[str, Any], tx: TxCorpus, expected: list[Any]) -> None:
    name, index = built
    queries = tx.queries[:100] if name != "hashmatch" else tx.queries
    assert _answers(index, queries) == expected[: len(queries)]


def test_query_single(benchmark: BenchmarkFixture, built: tuple[str, Any], tx: TxCorpus) -> None:
    name, index = built
    benchmark.group = "tx-query-single"
    benchmark.extra_info["library"] = name
    queries = iter(tx.queries * 1000)
    benchmark.pedantic(
        lambda: index.query(next(queries)), rounds=min(100, len(tx.queries)), warmup_rounds=1
    )


def test_query_batch(
    benchmark: BenchmarkFixture, built: tuple[str, Any], tx: TxCorpus, scale: Scale
) -> None:
    name, index = built
    benchmark.group = "tx-query-batch"
    benchmark.extra_info.update(library=name, queries=len(tx.queries))
    if name == "hashmatch":
        result = benchmark.pedantic(index.query_batch, args=(tx.queries,), rounds=2)
    else:
        result = benchmark.pedantic(lambda: [index.query(q) for q in tx.queries], rounds=1)
    assert len(result) == len(tx.queries)
    if benchmark.stats is not None:
        benchmark.extra_info["queries_per_s"] = len(tx.queries) / benchmark.stats.stats.median


def test_unpickle(benchmark: BenchmarkFixture, built: tuple[str, Any], tx: TxCorpus) -> None:
    name, index = built
    benchmark.group = "tx-unpickle"
    blob = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
    benchmark.extra_info.update(library=name, pickled_bytes=len(blob))
    restored = benchmark.pedantic(pickle.loads, args=(blob,), rounds=3)
    assert len(restored) == len(index)
    q = tx.queries[0]
    assert _answers(restored, [q]) == _answers(index, [q])


def test_swap(benchmark: BenchmarkFixture, built: tuple[str, Any]) -> None:
    name, index = built
    benchmark.group = "tx-swap"
    blob = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
    gc.collect()
    holder: dict[str, Any] = {"live": pickle.loads(blob)}
    first = rss_mib()

    def cycles() -> None:
        for _ in range(SWAP_CYCLES):
            new = pickle.loads(blob)  # the newly published index
            holder["live"] = new  # swap: the old one is dropped
            del new
        gc.collect()

    benchmark.pedantic(cycles, rounds=1, iterations=1)
    benchmark.extra_info.update(
        library=name,
        cycles=SWAP_CYCLES,
        rss_mib_first=round(first, 1),
        rss_mib_after=round(rss_mib(), 1),
        pickled_mib=round(len(blob) / 2**20, 1),
    )
    assert np.isfinite(first)
