"""Conformance of hashmatch's pytx indexes (hashmatch.threatexchange) with pytx's contract.

Every behaviour a pytx ``SignalTypeIndex`` promises, checked on our classes and, at runtime,
against pytx's own ``PDQIndex2`` (faiss) and a numpy brute force: the inclusive threshold,
duplicate hashes, empty and one-entry indexes, pickling (where pytx's default ``PDQIndex``
fails on a single distinct hash), incremental adds and bad signal strings. vPDQ is checked
against pytx's ``VPDQIndex`` (imported with tests/vpdq_oracle.py's stand-in ``vpdq``).
"""

from __future__ import annotations

import io
import json
import pickle
from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("threatexchange")
faiss = pytest.importorskip("faiss")

import vpdq_oracle as oracle  # noqa: E402
from threatexchange.signal_type.index import (  # noqa: E402
    SignalSimilarityInfoWithSingleDistance,
    SignalTypeIndex,
)
from threatexchange.signal_type.pdq.pdq_index import PDQIndex as PytxPDQIndex  # noqa: E402
from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2  # noqa: E402

import hashmatch as hm  # noqa: E402
from hashmatch import threatexchange as hmtx  # noqa: E402

Codes = npt.NDArray[np.uint8]


# ---------------------------------------------------------------------------------- helpers


def hexes(codes: Codes) -> list[str]:
    return [bytes(c).hex() for c in codes]


def at_distance(code: Codes, d: int, rng: np.random.Generator) -> Codes:
    """``code`` with ``d`` distinct bits flipped."""
    bits = np.unpackbits(code)
    flip = rng.choice(256, size=d, replace=False)
    bits[flip] ^= 1
    return np.packbits(bits)


def oracle_matches(
    db: Codes, metadata: list[Any], query: Codes, threshold: int
) -> Counter[tuple[int, Any]]:
    """numpy brute force: (distance, metadata) of every entry within ``threshold``."""
    d = oracle.distances(query[None, :], db)[0] if len(db) else np.zeros(0, np.int64)
    return Counter((int(d[i]), metadata[i]) for i in np.flatnonzero(d <= threshold))


def answers(index: SignalTypeIndex[Any], query: str) -> Counter[tuple[int, Any]]:
    return Counter((m.similarity_info.distance, m.metadata) for m in index.query(query))


def planted(seed: int = 0, n: int = 400) -> tuple[Codes, Codes]:
    """``n`` random hashes and queries with neighbours planted at 0-33 and 50-54 bits."""
    rng = np.random.default_rng(seed)
    db = hm.datasets.random_codes(n, 256, seed=seed)
    dists = [0, 1, 5, 30, 31, 32, 33, 51, 52, 53, 54]
    queries = np.stack([at_distance(db[i], d, rng) for i, d in enumerate(dists)])
    return db, np.concatenate([queries, hm.datasets.random_codes(5, 256, seed=seed + 1)])


# ------------------------------------------------------------------------------------- PDQ


class Custom:
    """Metadata of a class of our own (picklable: defined at module level)."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and other.v == self.v

    def __hash__(self) -> int:
        return self.v


@pytest.mark.parametrize(("cls", "threshold"), [(hmtx.PDQIndex, 31), (hmtx.PDQFlatIndex, 52)])
def test_threshold_is_inclusive(cls: type[hmtx.PDQIndex[Any]], threshold: int) -> None:
    rng = np.random.default_rng(1)
    base = hm.datasets.random_codes(1, 256, seed=3)[0]
    index = cls.build([(bytes(base).hex(), "base")])
    assert index.threshold == threshold == cls.get_match_threshold()
    for d in range(threshold - 2, threshold + 3):
        found = index.query(bytes(at_distance(base, d, rng)).hex())
        if d <= threshold:
            assert [(m.similarity_info.distance, m.metadata) for m in found] == [(d, "base")]
        else:
            assert found == []


def test_threshold_31_against_pdqindex2() -> None:
    rng = np.random.default_rng(2)
    base = hm.datasets.random_codes(1, 256, seed=4)[0]
    ours = hmtx.PDQIndex.build([(bytes(base).hex(), 1)])
    theirs = PDQIndex2(entries=[(bytes(base).hex(), 1)])
    for d in (30, 31, 32, 33):
        q = bytes(at_distance(base, d, rng)).hex()
        assert answers(ours, q) == answers(theirs, q) == Counter({(d, 1): 1} if d <= 31 else {})


@pytest.mark.parametrize("seed", [0, 1])
def test_answers_equal_pdqindex2_and_numpy(seed: int) -> None:
    db, queries = planted(seed)
    # duplicates: some hashes twice or three times, with different metadata
    db = np.concatenate([db, db[:3], db[:1]])
    metadata: list[Any] = [f"m{i}" for i in range(len(db))]
    entries = list(zip(hexes(db), metadata, strict=True))
    ours = hmtx.PDQIndex.build(entries)
    theirs = PDQIndex2(entries=entries)
    flat = hmtx.PDQFlatIndex.build(entries)
    theirs_flat = PDQIndex2(entries=entries, threshold=52)
    for q, code in zip(hexes(queries), queries, strict=True):
        expected = oracle_matches(db, metadata, code, 31)
        assert answers(ours, q) == expected
        assert answers(theirs, q) == expected
        expected_flat = oracle_matches(db, metadata, code, 52)
        assert answers(flat, q) == expected_flat == answers(theirs_flat, q)
    assert len(ours) == len(db)  # entries; PDQIndex2 counts distinct hashes
    assert len(theirs) == len(db) - 4


def test_query_order_and_int_distances() -> None:
    db, queries = planted(5)
    index = hmtx.PDQFlatIndex.build((h, i) for i, h in enumerate(hexes(db)))
    for q in hexes(queries):
        found = index.query(q)
        keys = [(m.similarity_info.distance, m.metadata) for m in found]
        assert keys == sorted(keys)
        for m in found:
            assert isinstance(m.similarity_info, SignalSimilarityInfoWithSingleDistance)
            assert type(m.similarity_info.distance) is int


def test_pdqindex2_distances_are_numpy_floats() -> None:
    """What our Python-int distances improve on: pytx's PDQIndex2 gives numpy float32."""
    h = "0" * 64
    (m,) = PDQIndex2(entries=[(h, 1)]).query(h)
    assert type(m.similarity_info.distance) is not int
    (ours,) = hmtx.PDQIndex.build([(h, 1)]).query(h)
    assert type(ours.similarity_info.distance) is int


def test_duplicate_hashes_return_every_entry() -> None:
    h = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    other = "0" * 64
    entries: list[tuple[str, Any]] = [(h, "a"), (other, "x"), (h, {"b": 1}), (h, "a")]
    for index in (hmtx.PDQIndex.build(entries), PDQIndex2(entries=entries)):
        # int(): PDQIndex2's distances are numpy float32 (ours are Python ints)
        found = [(int(m.similarity_info.distance), m.metadata) for m in index.query(h)]
        assert sorted(map(repr, found)) == sorted(map(repr, [(0, "a"), (0, {"b": 1}), (0, "a")]))


def test_any_metadata() -> None:
    metas: list[Any] = [None, 1, 2**70, "s", (1, "t"), {"k": [1]}, Custom(3), b"raw", 1.5]
    db = hm.datasets.random_codes(len(metas), 256, seed=9)
    index = hmtx.PDQIndex.build(zip(hexes(db), metas, strict=True))
    for h, meta in zip(hexes(db), metas, strict=True):
        assert [m.metadata for m in index.query(h)] == [meta]
    restored = pickle.loads(pickle.dumps(index))
    for h, meta in zip(hexes(db), metas, strict=True):
        assert [m.metadata for m in restored.query(h)] == [meta]


def test_empty_index() -> None:
    for index in (hmtx.PDQIndex(), hmtx.PDQIndex.build([]), hmtx.PDQFlatIndex()):
        assert len(index) == 0
        assert index.query("0" * 64) == []
        assert index.query_batch(["0" * 64, "f" * 64]) == [[], []]
        restored = pickle.loads(pickle.dumps(index))
        assert len(restored) == 0 and restored.query("0" * 64) == []
        restored.add("0" * 64, "late")
        assert [m.metadata for m in restored.query("0" * 64)] == ["late"]
    assert answers(PDQIndex2(), "0" * 64) == Counter()


def test_one_entry_index() -> None:
    h = "c186f9619659658c4b6916daf934496985f4259c72c39676ab9edb631c3c349c"
    index = hmtx.PDQIndex.build([(h, 7)])
    assert len(index) == 1
    assert answers(index, h) == Counter({(0, 7): 1}) == answers(PDQIndex2(entries=[(h, 7)]), h)
    assert index.query("0" * 64) == []


def roundtrip(index: Any) -> Any:
    """Through the base class's serialize/deserialize (HMA's pickle.dump / pickle.load)."""
    buf = io.BytesIO()
    index.serialize(buf)
    buf.seek(0)
    return type(index).deserialize(buf)


@pytest.mark.parametrize("n_distinct", [1, 2, 1500])
@pytest.mark.parametrize("cls", [hmtx.PDQIndex, hmtx.PDQFlatIndex])
def test_pickle_round_trip(cls: type[hmtx.PDQIndex[Any]], n_distinct: int) -> None:
    db = hm.datasets.random_codes(n_distinct, 256, seed=n_distinct)
    entries = [(h, i) for i, h in enumerate(hexes(db))] + [(hexes(db)[0], "dup")]
    index = cls.build(entries)
    restored = roundtrip(index)
    assert type(restored) is cls and len(restored) == len(index) == n_distinct + 1
    assert restored.threshold == index.threshold
    rng = np.random.default_rng(0)
    for code in db[:20]:
        q = bytes(at_distance(code, 20, rng)).hex()
        assert answers(restored, q) == answers(index, q)
    # still growable after the round trip
    restored.add(hexes(db)[-1], "late")
    assert (0, "late") in answers(restored, hexes(db)[-1])


def test_pickle_holds_the_container_not_a_rebuild() -> None:
    db = hm.datasets.random_codes(3000, 256, seed=2)
    index = hmtx.PDQIndex.build((h, i) for i, h in enumerate(hexes(db)))
    state = index.__getstate__()
    assert isinstance(state["index"], hm.MIHIndex) and state["index"].substrings > 0
    assert isinstance(state["metadata"], np.ndarray)  # int metadata: one int64 array
    data = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
    # MIH tables (~125 bytes a hash at 16-18 tables) and 8 bytes of metadata; pytx's PDQIndex2
    # pickles faiss's float vectors: 1 KiB a hash
    assert len(data) < len(db) * 200
    assert len(data) < len(pickle.dumps(PDQIndex2(entries=[(h, 0) for h in hexes(db)]))) / 4


def test_pytx_default_index_fails_to_pickle_one_distinct_hash() -> None:
    """pytx's default PDQ index (``PdqSignal.get_index_cls()``, ``PDQIndex``) silently loses its
    matches in a pickle round trip when it holds one distinct hash (here twice): the unpickled
    index still has 2 entries but finds nothing, even at distance 0. Ours keeps them."""
    from threatexchange.signal_type.pdq.signal import PdqSignal as PytxPdqSignal

    assert PytxPdqSignal.get_index_cls() is PytxPDQIndex
    h = PytxPdqSignal.get_examples()[0]
    both = Counter({(0, 1): 1, (0, 2): 1})
    for entries in ([(h, 1), (h, 2)], [(h, 1)]):
        theirs = PytxPDQIndex.build(entries)
        expected = Counter({k: 1 for k in list(both)[: len(entries)]})
        assert answers(theirs, h) == expected  # before the round trip: found
        restored = roundtrip(theirs)
        assert len(restored) == len(entries)
        assert answers(restored, h) == Counter()  # pytx's failure: nothing found
        ours = roundtrip(hmtx.PDQIndex.build(entries))
        assert answers(ours, h) == expected
    # with two distinct hashes pytx's round trip works
    two = [(h, 1), ("0" * 64, 2)]
    assert answers(roundtrip(PytxPDQIndex.build(two)), h) == Counter({(0, 1): 1})


def test_incremental_add_and_add_all() -> None:
    db, queries = planted(7, n=300)
    metadata = list(range(len(db)))
    hs = hexes(db)
    ours: hmtx.PDQIndex[int] = hmtx.PDQIndex()
    theirs: PDQIndex2[int] = PDQIndex2()
    steps = [(0, 1), (1, 50), (50, 51), (51, 260), (260, 300)]
    for lo, hi in steps:
        if hi - lo == 1:
            ours.add(hs[lo], metadata[lo])
            theirs.add(hs[lo], metadata[lo])
        else:
            ours.add_all(iter(zip(hs[lo:hi], metadata[lo:hi], strict=True)))
            theirs.add_all(zip(hs[lo:hi], metadata[lo:hi], strict=True))
        assert len(ours) == hi
        for q, code in zip(hexes(queries), queries, strict=True):
            expected = oracle_matches(db[:hi], metadata[:hi], code, 31)
            assert answers(ours, q) == expected == answers(theirs, q)
    # the batch query gives the same answers
    batch = ours.query_batch(hexes(queries))
    for q, found in zip(hexes(queries), batch, strict=True):
        assert Counter((m.similarity_info.distance, m.metadata) for m in found) == answers(ours, q)


def test_add_all_in_several_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hmtx, "_CHUNK", 7)
    db = hm.datasets.random_codes(30, 256, seed=11)
    index = hmtx.PDQIndex.build((h, i) for i, h in enumerate(hexes(db)))
    assert len(index) == 30
    for i, h in enumerate(hexes(db)):
        assert answers(index, h)[(0, i)] == 1


BAD = ["", "abc", "0" * 63, "0" * 65, "g" * 64, "0x" + "0" * 62, " " + "0" * 63, "0" * 32]


@pytest.mark.parametrize("bad", BAD)
def test_bad_signal_strings_raise_value_error(bad: str) -> None:
    good = "0" * 64
    index = hmtx.PDQIndex.build([(good, "g")])
    with pytest.raises(ValueError):
        index.add(bad, "bad")
    with pytest.raises(ValueError):
        index.add_all([("1" * 64, "ok"), (bad, "bad")])
    assert len(index) == 1  # nothing of the failed batch was added
    assert [m.metadata for m in index.query(good)] == ["g"]
    with pytest.raises(ValueError):
        index.query(bad)
    with pytest.raises(ValueError):
        hmtx.PDQIndex.build([(bad, 1)])


def test_non_str_hash_raises_type_error() -> None:
    index: hmtx.PDQIndex[Any] = hmtx.PDQIndex()
    for bad in (None, 5, b"\x00" * 32):
        with pytest.raises(TypeError):
            index.add(bad, 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            index.query(bad)  # type: ignore[arg-type]
    assert len(index) == 0


def test_uppercase_hex_is_the_same_hash() -> None:
    h = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    index = hmtx.PDQIndex.build([(h.upper(), 1)])
    assert answers(index, h) == Counter({(0, 1): 1})


def test_bad_pickled_state() -> None:
    index: hmtx.PDQIndex[int] = hmtx.PDQIndex.__new__(hmtx.PDQIndex)
    with pytest.raises(ValueError):
        index.__setstate__({"version": 99})
    state = hmtx.PDQIndex.build([("0" * 64, 1)]).__getstate__()
    state["metadata"] = [1, 2]
    with pytest.raises(ValueError):
        index.__setstate__(state)


# ------------------------------------------------------------------------------ signal types


def test_signal_types() -> None:
    from threatexchange.signal_type.pdq.signal import PdqSignal as PytxPdqSignal

    assert hmtx.PdqSignal.get_name() == PytxPdqSignal.get_name() == "pdq"
    assert hmtx.PdqSignal.get_index_cls() is hmtx.PDQIndex
    assert hmtx.HashmatchPdqSignal.get_name() == "hashmatch_pdq"
    assert hmtx.HashmatchPdqSignal.get_index_cls() is hmtx.PDQIndex
    examples = hmtx.PdqSignal.get_examples()
    index = hmtx.PdqSignal.get_index_cls().build((h, i) for i, h in enumerate(examples))
    for i, h in enumerate(examples):
        assert hmtx.PdqSignal.validate_signal_str(h) == h
        assert (0, i) in answers(index, h)
        # brute force (the signal type's compare_hash) agrees with the index at every example
        expected = {j for j, o in enumerate(examples) if hmtx.PdqSignal.compare_hash(h, o).match}
        assert {m.metadata for m in index.query(h)} == expected


def test_extension_manifest_loads_in_pytx() -> None:
    from threatexchange.cli.main import _DEFAULT_SIGNAL_TYPES
    from threatexchange.content_type.photo import PhotoContent
    from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
    from threatexchange.interface_validation import SignalTypeMapping

    manifest = ThreatExchangeExtensionManifest.load_from_module_name(
        "hashmatch.threatexchange_extension"
    )
    assert hmtx.HashmatchPdqSignal in manifest.signal_types
    # the CLI's mapping of its own signal types plus the extension's is valid (unique names)
    content = {c for s in _DEFAULT_SIGNAL_TYPES for c in s.get_content_types()}
    mapping = SignalTypeMapping(
        list(content), list(_DEFAULT_SIGNAL_TYPES) + list(manifest.signal_types)
    )
    assert mapping.signal_type_by_name["hashmatch_pdq"] is hmtx.HashmatchPdqSignal
    assert hmtx.HashmatchPdqSignal in mapping.get_supported_signal_types_for_content(PhotoContent)
    # HMA-style: pytx's PdqSignal swapped for ours, same name
    swapped = [hmtx.PdqSignal if s.get_name() == "pdq" else s for s in _DEFAULT_SIGNAL_TYPES]
    assert SignalTypeMapping(list(content), swapped).signal_type_by_name["pdq"] is hmtx.PdqSignal


# ------------------------------------------------------------------------------------ vPDQ


def signal_str(codes: Codes, qualities: Any, times: Any) -> str:
    return json.dumps(
        [
            f"{bytes(c).hex()},{int(q)},{float(t):.3}"
            for c, q, t in zip(codes, qualities, times, strict=True)
        ]
    )


def video_corpus(seed: int) -> tuple[list[str], list[str]]:
    """Banked videos and queries: copies, trims, noisy copies, low-quality frames, repeated
    frames, a shared frame, unrelated videos."""
    rng = np.random.default_rng(seed)
    frames = hm.datasets.random_codes(200, 256, seed=seed)
    banked, queries = [], []
    for v in range(8):
        n = int(rng.integers(3, 15))
        codes = frames[v * 20 : v * 20 + n].copy()
        if v % 3 == 0:
            codes[-1] = codes[0]  # a repeated frame
        if v == 5:
            codes[1] = frames[0]  # a frame shared with video 0
        qualities = rng.choice([30, 50, 80, 100], size=n, p=[0.15, 0.1, 0.25, 0.5])
        qualities[0] = 100
        banked.append(signal_str(codes, qualities, np.arange(n)))
        # queries: the copy, a trim, a noisy copy (some frames at 31/32 bits), a mix
        queries.append(signal_str(codes, np.full(n, 100), np.arange(n)))
        k = max(1, n // 2)
        queries.append(signal_str(codes[:k], np.full(k, 90), np.arange(k) + 5.0))
        noisy = np.stack([at_distance(c, int(rng.choice([10, 31, 32, 40])), rng) for c in codes])
        queries.append(signal_str(noisy, qualities, np.arange(n)))
    mix = np.concatenate([frames[0:4], frames[180:190]])
    queries.append(signal_str(mix, np.full(len(mix), 100), np.arange(len(mix))))
    queries.append(signal_str(frames[190:200], np.full(10, 100), np.arange(10)))
    low = frames[0:5]
    queries.append(signal_str(low, np.full(5, 10), np.arange(5)))  # nothing left: no match
    return banked, queries


def vanswers(index: SignalTypeIndex[Any], query: str) -> dict[Any, tuple[float, float]]:
    out = {}
    for m in index.query(query):
        info = m.similarity_info
        out[m.metadata] = (info.query_match_percent, info.compared_match_percent)  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize(
    "thresholds", [{}, {"query_match_threshold_pct": 0.0}, {"index_match_threshold_pct": 50.0}]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_vpdq_answers_equal_pytx(seed: int, thresholds: dict[str, float]) -> None:
    PytxVPDQIndex = oracle.pytx_vpdq_index()
    banked, queries = video_corpus(seed)
    entries = [(s, f"video{i}") for i, s in enumerate(banked)]
    ours = hmtx.VPDQIndex.build(entries, **thresholds)  # type: ignore[arg-type]
    theirs = PytxVPDQIndex.build(entries, **thresholds)
    restored = roundtrip(ours)
    assert len(ours) == len(restored) == len(banked)
    matched = 0
    for q in queries + banked:
        expected = vanswers(theirs, q)
        assert vanswers(ours, q) == expected
        assert vanswers(restored, q) == expected
        matched += len(expected)
    assert matched > len(banked)  # the corpus does match


def test_vpdq_similarity_info() -> None:
    banked, _ = video_corpus(3)
    index = hmtx.VPDQIndex.build([(banked[0], "v")])
    (m,) = index.query(banked[0])
    assert m.similarity_info.query_match_percent == 100.0  # type: ignore[attr-defined]
    assert m.similarity_info.pretty_str() == "100%[100%]"
    assert type(m.similarity_info).__name__ == "VPDQSimilarityInfo"


def test_vpdq_duplicates_incremental_and_empty() -> None:
    banked, _ = video_corpus(4)
    index: hmtx.VPDQIndex[Any] = hmtx.VPDQIndex()
    assert len(index) == 0 and index.query(banked[0]) == []
    assert len(roundtrip(index)) == 0
    index.add(banked[0], "a")
    index.add_all([(banked[0], "b"), (banked[1], "c")])
    assert len(index) == 3
    assert set(vanswers(index, banked[0])) == {"a", "b"}
    assert index.query("[]") == [] and index.query("") == []


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        '{"a": 1}',
        "[1]",
        '["00,1"]',
        f'["{"0" * 63},100,0.0"]',
        f'["{"g" * 64},100,0.0"]',
        f'["{"0" * 64},101,0.0"]',
        f'["{"0" * 64},100,-1.0"]',
    ],
)
def test_vpdq_bad_signal_strings(bad: str) -> None:
    good = json.dumps([f"{'0' * 64},100,0.0"])
    index = hmtx.VPDQIndex.build([(good, "g")])
    with pytest.raises(ValueError):
        index.add_all([(good, "again"), (bad, "bad")])
    assert len(index) == 1
    with pytest.raises(ValueError):
        index.query(bad)


def test_vpdq_low_quality_video_cannot_be_added() -> None:
    low = json.dumps([f"{'0' * 64},10,0.0"])
    with pytest.raises(ValueError):
        hmtx.VPDQIndex.build([(low, 1)])
    with pytest.raises(ValueError):
        oracle.pytx_vpdq_index().build([(low, 1)])


def test_docstring_examples() -> None:
    import doctest

    result = doctest.testmod(hmtx, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
