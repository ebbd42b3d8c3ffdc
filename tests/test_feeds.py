"""HashList.apply (exchange feed batches), hash hygiene, per-list stats, ``hashmatch import``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import hashmatch.formats as formats
import numpy as np
import pytest
from cli_helpers import write
from hashmatch.cli import main
from hashmatch.formats import FeedBatch, HashRecords, Rejected
from hashmatch.hygiene import min_quality_for, screen
from hypothesis import given
from hypothesis import strategies as st

import hashmatch as hm

A, B, C = "ab" * 32, "cd" * 32, "5a" * 32
ZERO, ONES = "00" * 32, "ff" * 32


def records(hashes: list[str], keys: list[str], **columns: Any) -> HashRecords:
    codes = hashes if hashes else np.zeros((0, 32), np.uint8)
    return HashRecords(codes, keys=keys, **columns)


def feed(
    hashes: list[str],
    keys: list[str],
    *,
    labels: Any = None,
    sources: Any = None,
    qualities: Any = None,
    extras: Any = None,
    lines: Any = None,
    deletes: tuple[str, ...] = (),
    checkpoint: str | None = None,
    rejected: tuple[Rejected, ...] = (),
) -> FeedBatch:
    given = dict(labels=labels, sources=sources, qualities=qualities, extras=extras, lines=lines)
    upserts = records(hashes, keys, **{k: v for k, v in given.items() if v is not None})
    return FeedBatch(upserts, deletes, checkpoint, rejected)


def state(hl: hm.HashList) -> dict[str, tuple[Any, ...]]:
    """key -> (id, hash, labels, source, quality, extras) of every entry."""
    return {
        str(e.key): (e.id, e.hash, e.labels, e.source, e.quality, e.extras) for e in hl.entries()
    }


# ---------------------------------------------------------------- apply


def test_apply_adds_updates_deletes_and_leaves_identical_records() -> None:
    hl = hm.HashList("pdq")
    first = hl.apply(feed([A, B], ["te:1", "te:2"], labels=[("x",), ()], checkpoint="c1"))
    assert (first.added, first.updated, first.removed, first.unchanged) == (2, 0, 0, 0)
    assert first.quarantined == [] and first.checkpoint == "c1"
    ids = {e.key: e.id for e in hl.entries()}
    second = hl.apply(
        feed([C, B], ["te:1", "te:2"], labels=[("x",), ()], deletes=("te:9",), checkpoint="c2")
    )
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 1, 0, 1)
    assert hl.get_key("te:1").hash == C and hl.get_key("te:1").id == ids["te:1"]
    third = hl.apply(feed([A], ["te:3"], deletes=("te:2",)))
    assert (third.added, third.updated, third.removed, third.unchanged) == (1, 0, 1, 0)
    assert sorted(state(hl)) == ["te:1", "te:3"]
    assert third.checkpoint == hl.checkpoint == "c2"  # a batch without one keeps the list's
    assert hl.get_key("te:3").id not in ids.values()  # ids are never reused


def test_apply_updates_metadata_and_keeps_columns_the_batch_lacks() -> None:
    hl = hm.HashList("pdq")
    hl.apply(feed([A], ["k"], labels=[("x",)], sources=["te"], qualities=[90]))
    report = hl.apply(feed([A], ["k"], labels=[("y", "x")]))  # no sources, no qualities
    assert report.updated == 1
    entry = hl.get_key("k")
    assert (entry.labels, entry.source, entry.quality) == (("x", "y"), "te", 90)
    report = hl.apply(feed([A], ["k"], sources=[None], extras=[{"a": "1", "b": ""}]))
    entry = hl.get_key("k")
    assert report.updated == 1 and entry.source is None and entry.extras == {"a": "1"}
    assert hl.apply(feed([A], ["k"], extras=[{"a": "1"}])).unchanged == 1


def test_apply_twice_changes_nothing() -> None:
    hl = hm.HashList("pdq")
    hl.apply(feed([A, B], ["a", "b"]))
    page = feed([C, ZERO, B], ["c", "z", "b"], deletes=("a", "gone"), checkpoint="t1")
    hl.apply(page)
    before = (hl.snapshot(), state(hl), hl.quarantined, hl.checkpoint)
    again = hl.apply(page)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 2)
    assert (hl.snapshot(), state(hl), hl.quarantined, hl.checkpoint) == before


def test_last_upsert_of_a_key_wins_and_deletes_win_over_upserts() -> None:
    hl = hm.HashList("pdq")
    report = hl.apply(feed([A, B, C], ["k", "k", "d"], deletes=("d",)))
    assert report.added == 1 and sorted(state(hl)) == ["k"] and hl.get_key("k").hash == B


def test_apply_refuses_other_arguments_and_batches_inside_batch() -> None:
    hl = hm.HashList("pdq")
    with pytest.raises(hm.InvalidType, match="batch: expected a FeedBatch"):
        hl.apply(records([A], ["k"]))  # type: ignore[arg-type]
    with hl.batch(), pytest.raises(hm.InvalidArgument, match="inside batch"):
        hl.apply(feed([A], ["k"]))
    with pytest.raises(hm.InvalidArgument, match="min_quality"):
        hl.apply(feed([A], ["k"]), min_quality=101)


# ---------------------------------------------------------------- strict mode and atomicity


@pytest.mark.parametrize(
    ("page", "error", "message"),
    [
        (feed([A, ZERO], ["a", "z"]), hm.InvalidArgument, r"upserts\[1\] \(key 'z'\): all-zero"),
        (
            feed([A, ONES], ["a", "o"], lines=[3, 4]),
            hm.InvalidArgument,
            r"feed.csv:4 \(key 'o'\): all-one hash",
        ),
        (feed([A, B], ["a", "q"], qualities=[90, 49]), hm.InvalidArgument, "quality 49 below"),
        (feed(["00" * 16], ["short"]), hm.HashTypeMismatch, "expected 256-bit hashes, got 128"),
        (
            feed([A], ["a"], rejected=(Rejected("feed.json[7]", "r", "no hash"),)),
            hm.InvalidArgument,
            r"feed.json\[7\] \(key 'r'\): no hash",
        ),
        (feed([A], ["a"], labels=[("bad;label",)]), hm.InvalidArgument, "labels: expected"),
        (feed([A, B], ["a", "nul\0"]), hm.InvalidArgument, "bad key"),
    ],
)
def test_strict_raises_naming_the_record_and_changes_nothing(
    page: FeedBatch, error: type[Exception], message: str
) -> None:
    hl = hm.HashList("pdq")
    hl.apply(feed([C, ZERO], ["old", "zero"], checkpoint="before"))
    before = (hl.snapshot(), state(hl), hl.quarantined, hl.checkpoint)
    where = "feed.csv" if page.upserts.lines is not None else None
    with pytest.raises(error, match=message):
        hl.apply(
            FeedBatch(page.upserts, ("old",), "after", page.rejected), strict=True, where=where
        )
    assert (hl.snapshot(), state(hl), hl.quarantined, hl.checkpoint) == before


def test_readers_see_a_whole_batch_or_none_of_it() -> None:
    hl = hm.HashList("phash", auto_compact=False)
    keys = [f"k{i}" for i in range(64)]
    hashes = [f"{i + 1:016x}" for i in range(64)]
    hl.apply(feed(hashes, keys, sources=["g0"] * 64))
    stop, seen, errors = threading.Event(), set(), []

    def read() -> None:
        while not stop.is_set():
            entries = list(hl.entries())  # one snapshot
            sources = {e.source for e in entries}
            if len(entries) != 64 or len(sources) != 1:
                errors.append((len(entries), sources))
            seen.update(sources)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for g in range(1, 40):
            hl.apply(feed(hashes, keys, sources=[f"g{g}"] * 64))
    finally:
        stop.set()
        reader.join()
    assert errors == [] and len(seen) >= 1
    assert {e.source for e in hl.entries()} == {"g39"}


# ---------------------------------------------------------------- hygiene and quarantine


def test_degenerate_hashes_are_quarantined_with_reasons_and_never_indexed() -> None:
    hl = hm.HashList("pdq")
    report = hl.apply(
        feed([A, ZERO, ONES, B, C], ["a", "z", "o", "q", "u"], qualities=[90, 100, 100, 10, -1])
    )
    assert report.added == 2 and sorted(state(hl)) == ["a", "u"]  # unknown quality is fine
    assert [(r.where, r.key, r.reason) for r in report.quarantined] == [
        ("upserts[1]", "z", "all-zero hash"),
        ("upserts[2]", "o", "all-one hash"),
        ("upserts[3]", "q", "quality 10 below the floor of 50"),
    ]
    assert [r.key for r in hl.quarantined] == ["z", "o", "q"]
    assert hl.match([ZERO, ONES], max_distance=0).ids.tolist() == []
    assert hl.stats()["quarantined"] == 3


def test_the_32_char_all_zero_pdq_is_a_wrong_length_record() -> None:
    """facebook/ThreatExchange#1609: a 128-bit all-zero "PDQ" crashed index builds."""
    hl = hm.HashList("pdq")
    report = hl.apply(feed(["00" * 16], ["te:1609"], checkpoint="c"))
    assert len(hl) == 0 and report.checkpoint == "c"
    assert report.quarantined == [
        Rejected("upserts[0]", "te:1609", "wrong length: expected a 256-bit hash, got 128 bits")
    ]


def test_quality_floor_by_hash_type_and_option() -> None:
    assert min_quality_for("pdq") == min_quality_for("vpdq") == 50
    assert min_quality_for("phash") is None and min_quality_for("pdq", None) is None
    with pytest.raises(hm.InvalidType):
        min_quality_for("pdq", 50.5)
    hl = hm.HashList("pdq")
    assert hl.apply(feed([A], ["a"], qualities=[10]), min_quality=None).added == 1
    assert hl.apply(feed([B], ["b"], qualities=[79]), min_quality=80).added == 0
    phash = hm.HashList("phash")
    assert phash.apply(feed(["00000000000000ff"], ["p"], qualities=[0])).added == 1
    assert phash.apply(feed(["0" * 16], ["z"])).quarantined[0].reason == "all-zero hash"


def test_a_quarantined_version_removes_the_entry_until_a_valid_one_comes() -> None:
    hl = hm.HashList("pdq")
    hl.apply(feed([A], ["k"]))
    first_id = hl.get_key("k").id
    report = hl.apply(feed([ZERO], ["k"]))
    assert report.removed == 1 and len(hl) == 0 and [r.key for r in hl.quarantined] == ["k"]
    assert hl.apply(feed([ZERO], ["k"])).removed == 0  # again: nothing changes
    report = hl.apply(feed([B], ["k"]))
    assert report.added == 1 and hl.quarantined == () and hl.get_key("k").id != first_id
    hl.apply(feed([ZERO], ["k"]))
    hl.apply(feed([], [], deletes=("k",)))
    assert hl.quarantined == () and len(hl) == 0


def test_rejected_records_of_the_batch_are_quarantined() -> None:
    hl = hm.HashList("pdq")
    hl.apply(feed([A, B], ["a", "b"]))
    rejected = (Rejected("f:3", "a", "not hex"), Rejected("f:4", None, "no key"))
    report = hl.apply(feed([C], ["c"], rejected=rejected))
    assert report.quarantined[:2] == list(rejected) and report.removed == 1
    assert sorted(state(hl)) == ["b", "c"] and set(hl.quarantined) == set(rejected)
    hl.apply(feed([C], ["c"], rejected=rejected))  # the same keyless record is kept once
    assert len(hl.quarantined) == 2


def test_screen_reports_every_rule() -> None:
    recs = records([A, ZERO, B], ["a", "z", "q"], qualities=[-1, 90, 3], lines=[2, 5, 9])
    kept, rejected = screen(recs, bits=256, min_quality=50, where="x.csv")
    assert kept.tolist() == [True, False, False]
    assert [r.where for r in rejected] == ["x.csv:5", "x.csv:9"]


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize("mmap", [False, True])
def test_checkpoint_and_quarantine_are_saved(tmp_path: Path, mmap: bool) -> None:
    hl = hm.HashList("pdq")
    hl.apply(feed([A, ZERO], ["a", "z"], checkpoint="2026-12-01T10:00:00Z"))
    path = tmp_path / "list.hm"
    hl.save(path)
    loaded = hm.HashList.load(path, mmap=mmap)
    assert loaded.checkpoint == "2026-12-01T10:00:00Z"
    assert loaded.quarantined == hl.quarantined
    assert state(loaded) == state(hl)
    assert loaded.apply(feed([A, ZERO], ["a", "z"])).unchanged == 1  # resumes as it was
    assert loaded.quarantined == hl.quarantined


def test_lists_that_follow_no_feed_are_saved_as_before(tmp_path: Path) -> None:
    hl = hm.HashList("pdq")
    hl.add([A], keys=["a"])
    meta, _ = hl._to_sections()
    assert "checkpoint" not in meta and "quarantine" not in meta  # older versions read it
    hl.save(tmp_path / "old.hm")
    loaded = hm.HashList.load(tmp_path / "old.hm")
    assert loaded.checkpoint is None and loaded.quarantined == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [("checkpoint", 7), ("quarantine", "x"), ("quarantine", [["w", None]]), ("quarantine", [1])],
)
def test_bad_feed_meta_is_a_format_error(field: str, value: object) -> None:
    hl = hm.HashList("pdq")
    hl.apply(feed([A], ["a"], checkpoint="c"))
    unpickle, (meta, sections) = hl.__reduce__()  # as pickle saves it
    meta[field] = value
    with pytest.raises(hm.IndexFormatError, match=field):
        unpickle(meta, sections)


# ---------------------------------------------------------------- stats


def test_stats_count_labels_sources_quality_bands_and_quarantine() -> None:
    hl = hm.HashList("pdq", auto_compact=False)
    hl.add([A, B], labels=[["x", "y"], ["x"]], source=["te", None], quality=[49, 50])
    hl.add([C, "12" * 32], labels=[[], ["y"]], source="ncmec", quality=[80, None])
    hl.remove([1])
    hl.apply(feed([ZERO], ["z"]))
    stats = hl.stats()
    assert stats["entries"] == 3 and stats["next_id"] == 4
    assert stats["labels"] == {"x": 1, "y": 2} and stats["unlabelled"] == 1
    assert stats["sources"] == {"ncmec": 2, "te": 1} and stats["unsourced"] == 0
    assert stats["quality"] == {"missing": 1, "0-49": 1, "50-79": 0, "80-100": 1}
    assert stats["quarantined"] == 1


# ---------------------------------------------------------------- the oracle


KEYS = [f"k{i}" for i in range(6)]
POOL = [A, B, C, ZERO, ONES]
upsert = st.tuples(
    st.sampled_from(KEYS),
    st.sampled_from(POOL),
    st.sampled_from([(), ("x",), ("x", "y")]),
    st.sampled_from([-1, 10, 50, 90]),
)
batches = st.lists(
    st.tuples(st.lists(upsert, max_size=6), st.lists(st.sampled_from(KEYS), max_size=3)),
    min_size=1,
    max_size=8,
)


@given(batches)
def test_apply_matches_a_dict_oracle(sequence: list[Any]) -> None:
    hl = hm.HashList("pdq")
    listed: dict[str, tuple[str, tuple[str, ...], int | None]] = {}
    ids: dict[str, int] = {}
    quarantined: set[str] = set()
    used: set[int] = set()
    for n, (ups, deletes) in enumerate(sequence):
        page = feed(
            [h for _, h, _, _ in ups],
            [k for k, _, _, _ in ups],
            labels=[lab for _, _, lab, _ in ups],
            qualities=[q for _, _, _, q in ups],
            deletes=tuple(deletes),
            checkpoint=f"c{n}",
        )
        hl.apply(page)
        final = {k: (h, lab, q) for k, h, lab, q in ups}
        for key in deletes:
            listed.pop(key, None)
            quarantined.discard(key)
        for key, (h, lab, q) in final.items():
            if key in deletes:
                continue
            if h in (ZERO, ONES) or 0 <= q < 50:
                listed.pop(key, None)
                quarantined.add(key)
            else:
                listed[key] = (h, lab, None if q < 0 else q)
                quarantined.discard(key)
        got = state(hl)
        assert {k: (v[1], v[2], v[4]) for k, v in got.items()} == listed
        for key, value in got.items():  # an entry keeps its id while it stays listed
            assert value[0] == ids[key] if key in ids else value[0] not in used
        ids = {k: v[0] for k, v in got.items()}
        used |= set(ids.values())
        assert {r.key for r in hl.quarantined} == quarantined
        assert hl.checkpoint == f"c{n}"
        assert hl.apply(page).added == hl.apply(page).updated == 0  # idempotent


# ---------------------------------------------------------------- the command


def test_import_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(
        tmp_path / "bank.csv",
        [
            "hash,key,labels,quality",
            f"{A},te:1,terrorism,90",
            f"{ZERO},te:2,,100",
            "0" * 32 + ",te:3,,100",
            f"{B},,spam,",
        ],
    )
    bank = tmp_path / "bank.hm"
    assert main(["import", str(bank), str(source)]) == 1  # some were quarantined
    out, err = capsys.readouterr()
    assert f"{source}: 2 added, 0 updated, 0 removed, 0 unchanged, 2 quarantined" in out
    assert f"{source}:4: expected 64 hex characters" in err
    assert f"{source}:3 (key te:2): all-zero hash" in err
    hl = hm.HashList.load(bank)
    assert sorted(state(hl)) == [B, "te:1"]  # a row without a key is keyed by its hash
    assert len(hl.quarantined) == 2
    assert main(["import", str(bank), str(source)]) == 1
    assert "0 added, 0 updated, 0 removed, 2 unchanged" in capsys.readouterr().out
    saved = bank.read_bytes()
    assert main(["import", "--strict", str(bank), str(source)]) == 2
    assert "error: " in capsys.readouterr().err and bank.read_bytes() == saved
    clean = write(tmp_path / "clean.txt", [C])
    assert main(["import", str(bank), str(clean)]) == 0
    assert len(hm.HashList.load(bank)) == 3
    assert main(["import", "--hash-type", "phash", str(bank), str(clean)]) == 2
    assert "is a pdq list" in capsys.readouterr().err


def test_import_command_reads_feeds_with_read_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "feed.json", ["{}"])
    bank = tmp_path / "bank.hm"
    monkeypatch.delattr(formats, "read_feed", raising=False)
    assert main(["import", "--dialect", "threatexchange", str(bank), str(path)]) == 2
    assert "reads no feed dialects" in capsys.readouterr().err

    def read_feed(path: str, *, dialect: str) -> FeedBatch:
        assert dialect == "threatexchange"
        return feed([A, B], ["1", "2"], deletes=("3",), checkpoint="1733040000")

    monkeypatch.setattr(formats, "read_feed", read_feed, raising=False)
    assert main(["import", "--dialect", "threatexchange", str(bank), str(path)]) == 0
    hl = hm.HashList.load(bank, mmap=True)
    assert hl.checkpoint == "1733040000" and len(hl) == 2
    assert "checkpoint 1733040000" in capsys.readouterr().out
