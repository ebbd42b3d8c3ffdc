"""Tests of ``hashmatch hash PATH...``: files and directories to a hash file the other commands
read."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Terminal, bad_run, read_csv
from hashmatch.cli import main
from hashmatch.formats import read_hashes
from media_helpers import Image, jpeg, picture, scene_frames, write_video

import hashmatch as hm

NAMES = ("astronaut", "coffee", "chelsea")


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """Pictures in a tree, a copy, files a walk skips, and one broken picture."""
    root = tmp_path / "media"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    Image.fromarray(picture("astronaut")).save(root / "a.png")
    (root / "sub" / "b.jpg").write_bytes(jpeg(picture("coffee")))
    Image.fromarray(picture("chelsea")).save(root / "sub" / "deeper" / "c.webp")
    (root / "sub" / "copy.jpg").write_bytes(jpeg(picture("astronaut"), 70))
    (root / "notes.txt").write_text("not a picture")  # not an image extension: not taken
    (root / ".hidden" / "x.png").write_bytes(b"")  # hidden: not taken
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


def hash_run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["hash", *args, "--no-progress"])
    return code, capsys.readouterr().err


def test_directory_walk_failures_and_exit_code(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hashes.csv"
    code, err = hash_run([str(media), "--out", str(out)], capsys)
    assert code == 1  # broken.jpg
    assert f"cannot hash {media / 'sub' / 'broken.jpg'}: " in err
    assert "hashed 4 of 5 files" in err and "1 failed" in err
    rows = read_csv(out.read_text(), ["hash", "key", "source", "quality"])
    keys = [row[1] for row in rows]
    expected = ["a.png", "sub/b.jpg", "sub/copy.jpg", "sub/deeper/c.webp"]
    assert keys == [str(media / name) for name in expected]
    assert [row[2] for row in rows] == keys
    for row in rows:
        codes, quality = hm.hash_image(row[1])
        assert row[0] == hm.to_hex(codes) and row[3] == str(quality)
    records = next(read_hashes(out))  # the formats package reads it: keys, sources, quality
    assert records.keys == keys and records.qualities is not None
    # all good: exit 0
    good = tmp_path / "good.csv"
    code, err = hash_run(
        [str(media / "a.png"), str(media / "sub" / "b.jpg"), "--out", str(good)], capsys
    )
    assert code == 0 and "0 failed" in err


def test_output_is_read_by_match_and_dedup(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bank = tmp_path / "bank.csv"
    hash_run([str(media / "a.png"), str(media / "sub" / "b.jpg"), "--out", str(bank)], capsys)
    uploads = tmp_path / "uploads.csv"
    code, _ = hash_run([str(media / "sub"), "--out", str(uploads), "--threads", "2"], capsys)
    assert code == 1
    matches = tmp_path / "matches.csv"
    assert main(["match", str(bank), str(uploads), "--out", str(matches), "--no-progress"]) == 0
    rows = read_csv(
        matches.read_text(), ["query_id", "list_id", "distance", "query_hash", "list_hash"]
    )
    pairs = {(Path(q).name, Path(b).name) for q, b, *_ in rows}
    assert pairs == {("b.jpg", "b.jpg"), ("copy.jpg", "a.png")}
    capsys.readouterr()
    pairs_out = tmp_path / "pairs.csv"
    everything = tmp_path / "all.csv"
    hash_run([str(media), "--out", str(everything)], capsys)
    assert main(["dedup", str(everything), "--out", str(pairs_out), "--no-progress"]) == 0
    dupes = read_csv(pairs_out.read_text(), ["id_a", "id_b", "distance"])
    assert [(Path(a).name, Path(b).name) for a, b, _ in dupes] == [("a.png", "copy.jpg")]


def test_dihedral_rows_and_kinds(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.csv"
    code, _ = hash_run([str(media / "a.png"), "--dihedral", "--out", str(out)], capsys)
    assert code == 0
    rows = read_csv(out.read_text(), ["hash", "key", "source", "quality", "transform"])
    assert [row[4] for row in rows] == list(hm.TRANSFORMS)
    path = str(media / "a.png")
    assert [row[1] for row in rows] == [f"{path}#transform={t}" for t in hm.TRANSFORMS]
    stack = hm.hash_image(path, dihedral=True).codes
    assert [row[0] for row in rows] == hm.to_hex(stack)
    pixels = tmp_path / "px.csv"
    args = [path, "--dihedral", "--dihedral-method", "pixels", "--out", str(pixels)]
    assert hash_run(args, capsys)[0] == 0
    exact = hm.hash_image(path, dihedral=True, dihedral_method="pixels").codes
    header = ["hash", "key", "source", "quality", "transform"]
    assert [row[0] for row in read_csv(pixels.read_text(), header)] == hm.to_hex(exact)
    phash = tmp_path / "p.csv"
    hash_run([path, "--kind", "phash", "--out", str(phash)], capsys)
    rows = read_csv(phash.read_text(), ["hash", "key", "source"])
    assert rows[0][0] == hm.to_hex(hm.hash_image(path, kind="phash").codes)
    assert next(read_hashes(phash)).codes.shape == (1, 8)


def test_videos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "a.mp4", scene_frames(25, 10), 10)
    (clips / "b.mkv").write_bytes(b"\x1a\x45\xdf\xa3 not really")
    Image.fromarray(picture()).save(clips / "still.png")  # not a video extension: not taken
    out = tmp_path / "v.csv"
    code, err = hash_run(
        [str(clips), "--video", "--seconds-per-hash", "1", "--out", str(out)], capsys
    )
    assert code == 1 and f"cannot hash {clips / 'b.mkv'}: " in err
    rows = read_csv(out.read_text(), ["hash", "key", "source", "quality", "frame", "timestamp"])
    video = hm.hash_video(clips / "a.mp4")
    assert [row[0] for row in rows] == hm.to_hex(video.codes)
    assert [row[4] for row in rows] == ["0", "10", "20"]
    assert [row[5] for row in rows] == ["0.000", "1.000", "2.000"]
    assert [row[1] for row in rows] == [
        f"{clips / 'a.mp4'}#t={t}" for t in ("0.000", "1.000", "2.000")
    ]
    both = tmp_path / "vd.csv"
    code, _ = hash_run([str(clips / "a.mp4"), "--video", "--dihedral", "--out", str(both)], capsys)
    assert code == 0
    rows = read_csv(
        both.read_text(), ["hash", "key", "source", "quality", "frame", "timestamp", "transform"]
    )
    assert len(rows) == 24 and rows[9][1].endswith("#t=1.000&transform=rotate_90")


def test_progress_bar_on_a_terminal(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["hash", str(media / "a.png"), "--out", str(tmp_path / "h.csv")]) == 0
    assert "hashing" in terminal.getvalue() and "image" in terminal.getvalue()


def test_bad_arguments(media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "h.csv")
    png = str(media / "a.png")
    assert "--seconds-per-hash" in bad_run(
        ["hash", png, "--video", "--seconds-per-hash", "-1", "--out", out], capsys
    )
    assert "--kind" in bad_run(["hash", png, "--video", "--kind", "phash", "--out", out], capsys)
    assert "is an input" in bad_run(["hash", png, "--out", png], capsys)
    assert "format" in bad_run(["hash", png, "--out", str(tmp_path / "h.txt")], capsys)
    assert main(["hash", png, "--kind", "md5", "--out", out]) == 2
    assert main(["hash", "--out", out]) == 2
    assert not Path(out).exists()


def test_missing_files_are_failures_not_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "h.csv"
    code, err = hash_run([str(tmp_path / "nope.jpg"), "--out", str(out)], capsys)
    assert code == 1 and "No such file" in err
    assert out.read_text().splitlines() == ["hash"]  # nothing hashed: a header only
