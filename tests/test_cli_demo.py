"""Tests of ``hashmatch demo``: a small synthetic run finds every planted pair."""

from __future__ import annotations

import pytest
from cli_helpers import report_line, run
from hashmatch.cli import main

import hashmatch as hm

DEMO_SMALL = ["demo", "--n", "20000", "--queries", "200", "--no-progress"]


def test_demo_small_finds_every_planted_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DEMO_SMALL) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no progress bars
    assert 15 <= len(out.splitlines()) <= 40
    assert "(100/100 planted pairs found" in report_line(out, "recall")
    assert report_line(out, "recall").split()[1] == "100.00%"
    assert report_line(out, "corpus").split()[1] == "20,000"
    assert report_line(out, "matches") == "matches     100 (100 planted, 0 other)"
    assert report_line(out, "no match") == "no match    100 queries (100 fresh, 0 planted)"
    assert report_line(out, "kNN k=10").endswith("nearest <= planted distance 100/100")
    assert report_line(out, "kernel").split()[1] == hm.cpu_features()["kernel"]
    assert report_line(out, "result") == "result      PASS"
    clusters = hm.cluster(hm.find_duplicates(hm.datasets.clustered_codes(20_000, seed=2), 31))
    assert report_line(out, "dedup").startswith(
        f"dedup       20,000 hashes, 30% near-duplicate copies: {len(clusters.pairs):,} pairs,"
        f" {(clusters.sizes > 1).sum():,} clusters with duplicates (largest {clusters.sizes.max()})"
    )
    # Each example is a planted pair: the printed hashes are at the printed distance.
    lines = out.splitlines()
    start = lines.index(report_line(out, "examples")) + 1
    for query_line, db_line in zip(lines[start:-1:2], lines[start + 1 : -1 : 2], strict=True):
        distance = int(db_line.split()[-1])
        assert hm.hamming(query_line.split()[-1], db_line.split()[-3]) == distance


def test_demo_matches_edited_media(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pdqhash")
    pytest.importorskip("av")
    assert main(DEMO_SMALL) == 0
    out = capsys.readouterr().out
    assert "100 generated 320x240 pictures" in report_line(out, "media")
    table = {
        line[:34].strip(): line[34:].split() for line in out.splitlines() if "transform" in line
    }
    assert table["mirrored"][:3] == ["0/100", "100/100", "transform"]
    assert table["mirrored"][3] == "flip_left_right"
    assert table["rotated 90 degrees clockwise"][1:4] == ["100/100", "transform", "rotate_90"]
    assert table["re-encoded (JPEG 50, 75% size)"][:2] == ["100/100", "100/100"]
    assert table["pillarboxed to 16:9"][1] == table["mirrored and pillarboxed"][1] == "100/100"
    assert "a 12 s clip banked among 2,000 videos" in report_line(out, "video")
    lines = out.splitlines()
    verdict = lines[lines.index(report_line(out, "video")) + 1]
    assert verdict.startswith("  plain vPDQ: not matched; hashmatch")
    assert "-> MATCH (flip_left_right); upload 20-31 s = banked 0-11 s" in verdict


def test_demo_fails_when_rotations_are_not_matched(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pdqhash")
    pytest.importorskip("av")
    from hashmatch.cli import demo_media

    real = hm.hash_image

    def no_variants(*args: object, **kwargs: object) -> object:
        hashed = real(*args, **kwargs)  # type: ignore[arg-type]
        if kwargs.get("dihedral"):
            hashed.codes[:, 1:] = hashed.codes[:, :1]  # every variant the original
        return hashed

    monkeypatch.setattr(demo_media.hm, "hash_image", no_variants)
    assert main(DEMO_SMALL) == 1
    out = capsys.readouterr().out
    assert report_line(out, "result") == "result      FAIL"


def test_demo_reports_failure_when_a_pair_is_missed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for cls in (hm.FlatIndex, hm.MIHIndex):  # whichever the demo's cost model picks
        search = cls.range_search

        def off_by_one(
            self: hm.FlatIndex, queries: object, max_distance: int, *, _search=search, **kw: object
        ) -> object:
            return _search(self, queries, max_distance - 1, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(cls, "range_search", off_by_one)
    assert main([*DEMO_SMALL, "--max-distance", "2"]) == 1
    out = capsys.readouterr().out
    assert report_line(out, "recall").split()[1] != "100.00%"
    assert report_line(out, "result") == "result      FAIL"


def test_demo_as_module_subprocess() -> None:
    proc = run(["demo", "--n", "5000", "--queries", "100", "--bits", "64", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert report_line(proc.stdout, "recall").split()[1] == "100.00%"
    assert "demo: exact range search, distance <= 10" in proc.stdout
    assert "Traceback" not in proc.stderr
