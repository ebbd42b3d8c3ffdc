"""Matcher and MatchResult: several lists, types and radii; refreshes under concurrent readers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from oracle import distances, random_db

import hashmatch as hm


@pytest.fixture
def lists(rng: np.random.Generator) -> dict[str, tuple[hm.HashList, np.ndarray]]:
    out = {}
    for name, kind, labels in [
        ("terror", "pdq", ["terrorism"]),
        ("violence", "pdq", ["violence", "graphic"]),
        ("phash", "phash", ["csam"]),
    ]:
        hl = hm.HashList(kind, name=name)
        db = random_db(rng, 500, hl.nbytes)
        hl.add(db, keys=[f"{name}:{i}" for i in range(500)], labels=labels, source=name)
        out[name] = (hl, db)
    return out


def test_match_reports_every_list_of_the_query_type(
    lists: dict[str, tuple[hm.HashList, np.ndarray]], rng: np.random.Generator
) -> None:
    terror, tdb = lists["terror"]
    violence, vdb = lists["violence"]
    matcher = hm.Matcher({"terror": terror, "violence": violence, "phash": lists["phash"][0]})
    matcher.replace("violence", violence, max_distance=40)
    queries = np.concatenate([tdb[:20], vdb[:20], random_db(rng, 5, 32)])
    queries = hm.datasets.flip_bits(queries, rng.integers(0, 45, len(queries)).tolist())
    result = matcher.match(queries)
    expected = []
    for name, db, radius in [("terror", tdb, 31), ("violence", vdb, 40)]:
        d = distances(queries, db)
        for q, j in zip(*np.nonzero(d <= radius), strict=True):
            expected.append((int(q), int(d[q, j]), name, int(j)))
    got = list(
        zip(
            result.queries.tolist(),
            result.distances.tolist(),
            result.lists.tolist(),
            result.ids.tolist(),
            strict=True,
        )
    )
    assert got == sorted(expected) and len(got) > 10
    for m in result:
        assert m.key == f"{m.list}:{m.id}" and m.source == m.list
        assert m.labels == (("terrorism",) if m.list == "terror" else ("graphic", "violence"))
    assert "phash" not in set(result.lists.tolist())


def test_to_pandas_and_records_have_the_same_rows(
    lists: dict[str, tuple[hm.HashList, np.ndarray]],
) -> None:
    hl, db = lists["terror"]
    result = hm.Matcher({"t": hl}).match(db[:5])
    frame = result.to_pandas()
    assert list(frame.columns) == ["query", "list", "id", "key", "distance", "labels", "source"]
    assert len(frame) == len(result) == 5
    records = result.to_records()
    assert [tuple(r) for r in records] == [
        (int(r.query), r.list, int(r.id), r.key, int(r.distance), r.labels, r.source, None)
        for r in frame.itertuples(index=False)
    ]
    assert records[0] == hm.Match(0, "t", 0, "terror:0", 0, ("terrorism",), "terror")
    assert result.matched().tolist() == [0, 1, 2, 3, 4]


def test_ambiguous_width_needs_a_hash_type(rng: np.random.Generator) -> None:
    ph, dh = hm.HashList("phash"), hm.HashList("dhash")
    db = random_db(rng, 10, 8)
    ph.add(db)
    dh.add(db[:3])
    matcher = hm.Matcher({"p": ph, "d": dh})
    with pytest.raises(hm.InvalidArgument, match="could be any of dhash, phash"):
        matcher.match(db[:2])
    assert matcher.match(db[:4], hash_type="dhash").ids.tolist() == [0, 1, 2]
    assert matcher.match(db[:4], hash_type="phash").lists.tolist() == ["p"] * 4
    with pytest.raises(hm.InvalidArgument, match="hash_type"):
        matcher.match(db[:2], hash_type="md5")
    with pytest.raises(hm.HashTypeMismatch):
        matcher.match(random_db(rng, 2, 32), hash_type="phash")


def test_registration_errors_and_quality(lists: dict[str, tuple[hm.HashList, np.ndarray]]) -> None:
    hl, db = lists["terror"]
    matcher = hm.Matcher()
    matcher.add_list("t", hl)
    with pytest.raises(hm.InvalidArgument, match="already registered"):
        matcher.add_list("t", hl)
    with pytest.raises(hm.EntryNotFound, match="no list named 'x'"):
        matcher.replace("x", hl)
    with pytest.raises(hm.InvalidType, match="HashList"):
        matcher.add_list("y", hm.FlatIndex(256))  # type: ignore[arg-type]
    with pytest.raises(hm.InvalidArgument, match="max_distance"):
        matcher.add_list("z", hl, max_distance=-2)
    r = matcher.match(db[:3], qualities=[10, 80, 90], min_quality=50)
    assert r.skipped.tolist() == [0] and r.queries.tolist() == [1, 2]
    matcher.remove_list("t")
    assert len(matcher) == 0 and len(matcher.match(db[:3])) == 0


def test_readers_see_whole_refreshes_and_lose_nothing(rng: np.random.Generator) -> None:
    """8 threads query while a writer keeps replacing a generation of entries.

    Every snapshot holds the 300 permanent entries plus exactly one full generation of 200
    entries (labelled with its number). A reader must always find every permanent entry and
    exactly one whole generation: never a mix, never a partial one.
    """
    hl = hm.HashList("pdq", max_distance=0)
    permanent = random_db(rng, 300, 32)
    rotating = random_db(rng, 200, 32)
    hl.add(permanent, labels="permanent")
    hl.add(rotating, ids=np.arange(10_000, 10_200), labels="gen0")
    queries = np.concatenate([permanent, rotating])
    stop = threading.Event()
    errors: list[str] = []
    seen_generations: set[str] = set()

    def reader() -> None:
        while not stop.is_set():
            result = hl.match(queries, threads=1)
            labels = [lab[0] for lab in result.labels.tolist()]
            gens = {lab for lab in labels if lab != "permanent"}
            if labels.count("permanent") != 300 or len(gens) != 1 or len(result) != 500:
                errors.append(f"inconsistent snapshot: {len(result)} matches, gens {gens}")
                return
            seen_generations.update(gens)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    generation, deadline = 0, time.monotonic() + 3.0
    while time.monotonic() < deadline and not errors:
        generation += 1
        with hl.batch():
            hl.remove(np.arange(10_000 * generation, 10_000 * generation + 200))
            hl.add(
                rotating,
                ids=np.arange(10_000 * (generation + 1), 10_000 * (generation + 1) + 200),
                labels=f"gen{generation}",
            )
        if generation % 10 == 0:
            hl.compact()  # a full rebuild swapped in while readers run
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert generation > 10 and len(seen_generations) > 1
    assert len(hl) == 500


def test_replace_swaps_a_whole_list_atomically(rng: np.random.Generator) -> None:
    old, new = hm.HashList("pdq"), hm.HashList("pdq")
    db = random_db(rng, 100, 32)
    old.add(db, labels="old")
    new.add(db, labels="new")
    matcher = hm.Matcher({"l": old})
    stop = threading.Event()
    bad: list[object] = []

    def reader() -> None:
        while not stop.is_set():
            labels = {lab for (lab,) in matcher.match(db, threads=1).labels.tolist()}
            if len(labels) != 1:
                bad.append(labels)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        matcher.replace("l", new if i % 2 else old)
    stop.set()
    for t in threads:
        t.join()
    assert not bad


def test_matcher_of_a_list_says_it_wants_a_mapping() -> None:
    with pytest.raises(hm.InvalidType, match="lists: expected a mapping of names to HashList"):
        hm.Matcher([hm.HashList("pdq")])  # type: ignore[arg-type]


def test_matcher_pickles_with_its_lists_and_radii() -> None:
    import pickle

    db = hm.datasets.random_codes(20, 256, seed=2)
    a = hm.HashList("pdq")
    a.add(db, keys=[f"a{i}" for i in range(20)])
    matcher = hm.Matcher()
    matcher.add_list("a", a, max_distance=12)
    copy = pickle.loads(pickle.dumps(matcher))
    queries = hm.datasets.flip_bits(db[:4], [3, 11, 12, 13])
    assert (
        copy.names == ["a"]
        and copy.match(queries).to_records() == matcher.match(queries).to_records()
    )


def test_dir_of_the_package_lists_only_its_api() -> None:
    public = [name for name in dir(hm) if not name.startswith("_")]
    assert "annotations" not in public
    assert set(hm.__all__) <= set(dir(hm))
