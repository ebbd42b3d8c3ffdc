"""Tests of ``hashmatch video-match BANK... --queries QUERY...``: vPDQ files (and videos) against
banked videos, one CSV row per pair, on Meta's sample files and synthetic edits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import Terminal, bad_run, read_csv
from hashmatch.cli import main
from hashmatch.cli.video_match import CSV_HEADER, SEGMENTS_HEADER, parse_segments

import hashmatch as hm

DATA = Path(__file__).parent / "data" / "vpdq"
HEADER = list(CSV_HEADER)
LONG = "pattern-longer-no-bar.txt"


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    """A copy of Meta's sample vPDQ files, one of them as pytx JSON and one as the old dict."""
    root = tmp_path / "bank"
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("*.md"))
    chair = root / "chair-20-sd-bar.txt"
    (root / "sub").mkdir()
    hm.write_vpdq(root / "sub" / "chair-20-sd-bar.json", hm.read_vpdq(chair), format="pytx")
    pattern = root / "pattern-sd-grey-bar.txt"
    hm.write_vpdq(root / "pattern-sd-grey-bar.json.gz", hm.read_vpdq(pattern), format="pytx-dict")
    chair.unlink()
    pattern.unlink()
    return root


def video_match(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[list[str]], str]:
    """Run the command, CSV on stdout: (exit code, rows, stderr)."""
    code = main(["video-match", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, read_csv(out, HEADER) if out else [], err


def expected(bank: Path, query: Path, **options: object) -> dict[str, hm.VideoMatch]:
    """What VideoIndex.match gives for the same files, by banked path."""
    paths = sorted(
        p for p in bank.rglob("*") if p.is_file() and p.name.endswith((".txt", ".json", ".gz"))
    )
    index = hm.VideoIndex()
    index.add_many([hm.read_vpdq(p) for p in paths], keys=[str(p) for p in paths])
    return {str(m.key): m for m in index.match(hm.read_vpdq(query), **options)}  # type: ignore[arg-type]


def test_sample_files_match_as_the_library_says(
    bank: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = bank / "chair-19-sd-bar.txt"
    code, rows, err = video_match([str(bank), "--queries", str(query), "--all"], capsys)
    assert code == 0 and "0 files skipped" in err and "17 banked videos" in err
    want = expected(bank, query)
    assert {row[1] for row in rows} == set(want)  # every candidate, the JSON forms included
    assert str(bank / "sub" / "chair-20-sd-bar.json") in want
    for row in rows:
        m = want[row[1]]
        assert row[0] == str(query)
        assert row[2] == ("true" if m.matched else "false")
        assert (float(row[3]), float(row[4])) == (m.query_pct, m.compared_pct)  # exact
        assert [int(x) for x in row[5:9]] == [
            m.query_matched, m.query_frames, m.compared_matched, m.compared_frames
        ]  # fmt: skip
        assert float(row[9]) == pytest.approx(m.longest, abs=1e-3)
        spans = parse_segments(row[10])
        assert len(spans) == len(m.segments)
        for got, s in zip(spans, m.segments, strict=True):
            assert got == pytest.approx(s[:4], abs=1e-3)
    # without --all: the matched pairs only, in the same order
    code, matched, _ = video_match([str(bank), "--queries", str(query)], capsys)
    assert code == 0
    assert matched == [row for row in rows if row[2] == "true"] and len(matched) < len(rows)


def test_thresholds_and_semantics_are_passed_on(
    bank: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = bank / "pattern-hd-no-bar.txt"
    args = ["--max-distance", "20", "--min-quality", "60", "--semantics", "cpp"]
    verdict = ["--min-query-pct", "90", "--min-compared-pct", "50", "--min-duration", "5"]
    code, rows, _ = video_match([str(bank), "--queries", str(query), *args, *verdict], capsys)
    assert code == 0
    want = expected(
        bank, query, max_distance=20, min_quality=60, semantics="cpp", min_query_pct=90,
        min_compared_pct=50, min_duration=5,
    )  # fmt: skip
    assert {row[1] for row in rows} == {k for k, m in want.items() if m.matched}
    for row in rows:
        assert (float(row[3]), float(row[4])) == (want[row[1]].query_pct, want[row[1]].compared_pct)


def test_a_trimmed_clip_is_found_with_its_segment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sub-clip of a banked video, re-timed from 0, written as pytx JSON: 100% of the clip is
    banked material, and the segment says which banked seconds it shows."""
    source = hm.read_vpdq(DATA / LONG)
    lo, hi = 60, 150
    t = source.timestamps
    clip = hm.VideoFrames(source.codes[lo:hi], source.qualities[lo:hi], None, t[lo:hi] - t[lo])
    query = tmp_path / "clip.json"
    hm.write_vpdq(query, clip, format="pytx")
    segments = tmp_path / "segments.csv"
    code, rows, _ = video_match(
        [str(DATA / LONG), "--queries", str(query), "--all", "--segments", str(segments)], capsys
    )
    assert code == 0
    (row,) = rows
    assert row[1] == str(DATA / LONG) and row[2] == "false"  # 90 of 232 banked frames
    assert float(row[3]) == 100.0 and float(row[4]) < 80
    (span, *_) = parse_segments(row[10])
    assert span == pytest.approx((0.0, t[hi - 1] - t[lo], t[lo], t[hi - 1]), abs=2e-3)
    assert float(row[11].split(";")[0]) == pytest.approx(t[lo], abs=2e-3)  # best offset
    long_rows = read_csv(segments, list(SEGMENTS_HEADER))
    assert [r[:3] for r in long_rows] == [
        [str(query), str(DATA / LONG), str(k)] for k in range(len(long_rows))
    ]
    assert [float(x) for x in long_rows[0][3:7]] == pytest.approx(span, abs=1e-3)
    assert int(long_rows[0][7]) >= 85  # frames in the segment
    # the banked clip embedded in a longer upload: the banked side is all found -> a match
    code, rows, _ = video_match([str(query), "--queries", str(DATA / LONG)], capsys)
    assert code == 0 and len(rows) == 1 and rows[0][2] == "true" and float(rows[0][4]) == 100.0
    (span, *_) = parse_segments(rows[0][10])
    assert span == pytest.approx((t[lo], t[hi - 1], 0.0, t[hi - 1] - t[lo]), abs=2e-3)


def test_bad_files_are_reported_and_skipped(
    bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (DATA / LONG).read_text().splitlines()
    bad = bank / "zz-bad.txt"
    bad.write_text("\n".join([good[0], good[1].replace(",", ";", 1), *good[2:]]) + "\n")
    (bank / "zz-empty.json").write_text("[]")
    bad_query = tmp_path / "q-bad.txt"
    bad_query.write_text(good[0] + "\n" + "0,100,xyz,1.0\n")
    missing = tmp_path / "missing.txt"
    query = DATA / "pattern-hd-no-bar.txt"
    code, rows, err = video_match(
        [str(bank), "--queries", str(bad_query), str(query), str(missing)], capsys
    )
    assert code == 1
    assert f"skipped {bad}:2: " in err  # path:line
    assert f"skipped {bank / 'zz-empty.json'}: expected at least one frame" in err
    assert f"skipped {bad_query}:2: " in err
    assert f"skipped {missing}: No such file or directory" in err
    assert "17 banked videos" in err and "1 query videos" in err and "4 files skipped" in err
    assert rows and {row[0] for row in rows} == {str(query)}  # the batch went on


def test_saved_bank_round_trip(
    bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "bank.hm"
    code, rows, err = video_match([str(bank), "--save-bank", str(saved)], capsys)
    assert code == 0 and rows == [] and saved.exists()  # no --queries: only build and save
    loaded = hm.VideoIndex.load(saved)
    assert len(loaded) == 17 and loaded.get_key(str(bank / LONG)).codes.shape[1] == 32
    query = str(bank / "chair-22-sd-grey-bar.txt")
    _, direct, _ = video_match([str(bank), "--queries", query, "--all"], capsys)
    code, again, _ = video_match([str(saved), "--queries", query, "--all"], capsys)
    assert code == 0 and again == direct
    # a saved bank plus more files; a file already in it is skipped, not banked twice
    extra = tmp_path / "extra.txt"
    shutil.copy(DATA / "chair-20-sd-bar.txt", extra)
    code, more, err = video_match(
        [str(saved), str(extra), str(bank / LONG), "--queries", query, "--all"], capsys
    )
    assert code == 1 and f"skipped {bank / LONG}: already in {saved}" in err
    assert {row[1] for row in more} == {row[1] for row in direct} | {str(extra)}
    # the options given become a new bank's defaults
    strict = tmp_path / "strict.hm"
    assert (
        video_match([str(bank), "--save-bank", str(strict), "--max-distance", "9"], capsys)[0] == 0
    )
    assert hm.VideoIndex.load(strict).max_distance == 9


def test_argument_files_and_outputs(
    bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = tmp_path / "bank-list.txt"
    listed.write_text(f"{bank / LONG}\n{bank / 'pattern-hd-no-bar.txt'}\n")
    out = tmp_path / "matches.csv"
    query = str(bank / "pattern-hd-no-bar.txt")
    code = main(
        ["video-match", f"@{listed}", "--queries", query, "--out", str(out), "--no-progress"]
    )
    assert code == 0
    rows = read_csv(out, HEADER)
    assert sorted(row[1] for row in rows) == sorted([str(bank / LONG), query])
    _, err = capsys.readouterr()
    assert err.startswith("hashmatch: 1 query videos x 2 banked videos")


def test_progress_bars_only_on_a_terminal(
    bank: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    query = str(bank / "pattern-hd-no-bar.txt")
    assert main(["video-match", str(bank), "--queries", query]) == 0
    assert capsys.readouterr().err.count("\n") == 1  # the summary only
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["video-match", str(bank), "--queries", query]) == 0
    assert "reading bank" in terminal.getvalue() and "matching" in terminal.getvalue()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["{bank}"], "--queries"),
        (["{bank}", "--queries", "{query}", "--dihedral"], "--dihedral"),
        (["{bank}", "--queries", "{query}", "--crop-borders"], "--crop-borders"),
        (["{bank}", "--queries", "{query}", "--max-distance", "300"], "--max-distance"),
        (["{bank}", "--queries", "{query}", "--min-quality", "101"], "--min-quality"),
        (["{bank}", "--queries", "{query}", "--out", "{query}"], "--out"),
        (["{tmp}", "--queries", "{query}"], "BANK: no vPDQ file found"),
        (["{bad}", "--queries", "{query}"], "BANK: no banked video"),
        (["{hm}", "{hm}", "--queries", "{query}"], "at most one saved bank"),
    ],
)
def test_usage_errors(
    args: list[str], says: str, bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad.txt"
    bad.write_text("nonsense\n")
    saved = tmp_path / "bank.hm"
    index = hm.VideoIndex()
    index.add(hm.read_vpdq(DATA / LONG), key="x")
    index.save(saved)
    other = tmp_path / "other.hm"
    shutil.copy(saved, other)
    names = {
        "bank": str(bank), "query": str(bank / LONG), "tmp": str(empty), "bad": str(bad),
        "hm": str(saved),
    }  # fmt: skip
    filled = [a.format(**names) for a in args]
    if args[:2] == ["{hm}", "{hm}"]:
        filled[1] = str(other)
    assert says in bad_run(["video-match", *filled], capsys)


def test_percentage_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for option, value in (("--min-compared-pct", "101"), ("--min-duration", "-1")):
        args = ["video-match", str(DATA), "--queries", str(DATA / LONG), option, value]
        assert main(args) == 2
        assert option in capsys.readouterr().err


def test_hashed_videos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--hash-videos: media files hashed with hash_video, matched against their vPDQ files;
    --crop-borders and --dihedral run through the library's alternatives."""
    media = pytest.importorskip("media_helpers")
    clips = tmp_path / "clips"
    clips.mkdir()
    media.write_video(clips / "a.mp4", media.scene_frames(40, 10), 10)
    (clips / "broken.mp4").write_bytes(b"not a video")
    banked = tmp_path / "a.json"
    hm.write_vpdq(banked, hm.hash_video(clips / "a.mp4").to_frames(), format="pytx")
    code, rows, err = video_match([str(banked), "--queries", str(clips), "--hash-videos"], capsys)
    assert code == 1 and f"skipped {clips / 'broken.mp4'}: " in err
    (row,) = rows
    assert row[0] == str(clips / "a.mp4") and row[2] == "true" and float(row[3]) == 100.0
    for option in ("--crop-borders", "--dihedral"):
        args = [str(banked), "--queries", str(clips / "a.mp4"), "--hash-videos", option]
        code, rows, _ = video_match(args, capsys)
        assert code == 0 and len(rows) == 1 and rows[0][2] == "true"
        assert rows[0][13] == ("original" if option == "--dihedral" else "")


def test_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "video-match" in capsys.readouterr().out
    assert main(["video-match", "--help"]) == 0
    assert "q0-q1@b0-b1" in capsys.readouterr().out
    np.testing.assert_equal(parse_segments(""), [])
