"""Tests of the vPDQ serialisations (hashmatch.formats.vpdq): Meta's vpdq text lines,
python-threatexchange's JSON list and its older JSON object.

The python-threatexchange checks call pytx's own ``VpdqCompactFeature``, ``vpdq_to_json``,
``json_to_vpdq`` and ``OLD_json_to_vpdq``, imported by ``tests/vpdq_oracle.py`` with a
stand-in for the ``vpdq`` module they import (Meta's binding, which cannot be installed
without FFmpeg headers); they skip without ``threatexchange``.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vpdq_oracle as oracle
from hashmatch.formats import format_vpdq, parse_vpdq
from hypothesis import given, settings
from hypothesis import strategies as st

import hashmatch as hm

DATA = Path(__file__).parent / "data" / "vpdq"
SAMPLES = sorted(DATA.glob("*.txt"))
A = "0123456789abcdef" * 4
B = "f" * 64
FORMS = ("vpdq", "pytx", "pytx-dict")
NAMES = {"vpdq": "v.txt", "pytx": "v.json", "pytx-dict": "v.json"}


def frames_of(n: int, seed: int = 0, *, numbered: bool = True) -> hm.VideoFrames:
    rng = np.random.default_rng(seed)
    return hm.VideoFrames(
        rng.integers(0, 256, (n, 32), dtype=np.uint8),
        rng.integers(0, 101, n),
        np.cumsum(rng.integers(1, 40, n)) if numbered else None,
        np.cumsum(rng.random(n) * 2),
    )


def assert_same(got: hm.VideoFrames, expected: hm.VideoFrames, *, numbered: bool = True) -> None:
    np.testing.assert_array_equal(got.codes, expected.codes)
    np.testing.assert_array_equal(got.qualities, expected.qualities)
    np.testing.assert_array_equal(got.timestamps, expected.timestamps)  # exactly
    assert got.qualities.dtype == np.int16 and got.timestamps.dtype == np.float64
    assert got.frames is not None and got.frames.dtype == np.int64
    if numbered:
        np.testing.assert_array_equal(got.frames, expected.frames)
    else:
        assert (got.frames == -1).all()


def put(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


# ----------------------------------------------------------------------- the sample files


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_reads_and_writes_back_byte_for_byte(path: Path, tmp_path: Path) -> None:
    frames = hm.read_vpdq(path)
    text = path.read_text()
    rows = [line.split(",") for line in text.splitlines()]
    assert len(frames) == len(rows) > 0
    assert frames.frames.tolist() == [int(r[0]) for r in rows]
    assert frames.qualities.tolist() == [int(r[1]) for r in rows]
    assert hm.to_hex(frames.codes) == [r[2] for r in rows]
    assert frames.timestamps.tolist() == [float(r[3]) for r in rows]
    assert format_vpdq(frames) == text
    out = tmp_path / path.name
    assert hm.write_vpdq(out, frames) == len(frames)
    assert out.read_bytes() == path.read_bytes()
    for form in FORMS:  # every form reads back what it wrote
        back = parse_vpdq(format_vpdq(frames, format=form))
        assert_same(back, frames, numbered=form != "pytx")


def test_upstream_readme_says_three_fields_files_have_four() -> None:
    readme = (DATA / "UPSTREAM_README.md").read_text()
    assert "FrameNumber, Quality, PDQHash" in readme
    assert {line.count(",") for p in SAMPLES for line in p.read_text().splitlines()} == {3}


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip(tmp_path: Path, form: str, gz: bool) -> None:
    frames = frames_of(50, numbered=form != "pytx")
    path = tmp_path / (NAMES[form] + (".gz" if gz else ""))
    assert hm.write_vpdq(path, frames, format=form) == 50
    if gz:
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert_same(hm.read_vpdq(path), frames, numbered=form != "pytx")
    assert_same(hm.read_vpdq(path, format=form), frames, numbered=form != "pytx")


timestamps = st.lists(
    st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False), max_size=30
).map(sorted)


@settings(max_examples=60, deadline=None)
@given(
    seconds=timestamps,
    data=st.data(),
    form=st.sampled_from(FORMS),
    rounded=st.booleans(),
)
def test_hypothesis_round_trip(
    seconds: list[float], data: st.DataObject, form: str, rounded: bool
) -> None:
    n = len(seconds)
    codes = data.draw(st.lists(st.binary(min_size=32, max_size=32), min_size=n, max_size=n))
    qualities = data.draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    gaps = data.draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n))
    frames = hm.VideoFrames(
        np.frombuffer(b"".join(codes), np.uint8).reshape(n, 32),
        qualities,
        np.cumsum(gaps, dtype=np.int64) - 1,
        seconds,
    )
    text = format_vpdq(frames, format=form, timestamps="rounded" if rounded else "exact")
    back = parse_vpdq(text, format=form, allow_empty=True)
    if not rounded:
        assert_same(back, frames, numbered=form != "pytx")
    else:  # as the peer writes: what the peer's rounding gives, still in order
        np.testing.assert_array_equal(back.codes, frames.codes)
        peer = {"vpdq": "{:.3f}", "pytx": "{:.3}", "pytx-dict": None}[form]
        expected = [float(peer.format(t)) if peer else round(t, 3) for t in seconds]
        assert back.timestamps.tolist() == expected


def test_exact_timestamps_use_the_peer_text_when_it_reads_back() -> None:
    frames = hm.VideoFrames([A, A, A], [1, 2, 3], [0, 1, 2], [0.5, 1.0, 2.5])
    assert format_vpdq(frames).splitlines()[0].endswith(",0.500")
    odd = hm.VideoFrames([A, A], [1, 2], [0, 1], [1 / 3, 123.4])
    assert [line.split(",")[-1] for line in format_vpdq(odd).splitlines()] == [
        repr(1 / 3),
        "123.400",
    ]
    assert json.loads(format_vpdq(odd, format="pytx")) == [f"{A},1,{1 / 3!r}", f"{A},2,123.4"]
    assert json.loads(format_vpdq(odd, format="pytx", timestamps="rounded")) == [
        f"{A},1,0.333",
        f"{A},2,1.23e+02",  # 3 significant digits, as pytx writes
    ]


def test_pytx_dict_frames_are_ordered_by_number(tmp_path: Path) -> None:
    """JSON objects are unordered: sort_keys puts "10" before "9"."""
    rows = {str(n): {"quality": 90, "hash": A, "timestamp": n / 10} for n in (9, 10, 100)}
    frames = parse_vpdq(json.dumps(rows, sort_keys=True))
    assert frames.frames.tolist() == [9, 10, 100]
    assert frames.timestamps.tolist() == [0.9, 1.0, 10.0]


def test_uppercase_hex_is_read_and_written_lowercase() -> None:
    frames = parse_vpdq(f"0,100,{A.upper()},0.000\n")
    assert hm.to_hex(frames.codes) == [A]
    assert A in format_vpdq(frames) and A.upper() not in format_vpdq(frames)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_bom_crlf_blank_and_comment_lines(tmp_path: Path, newline: str, bom: bool) -> None:
    text = f"# vpdq\n\n0,100,{A},0.000\n \n1, 90 ,{B} ,0.033\n".replace("\n", newline)
    path = tmp_path / "v.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    frames = hm.read_vpdq(path)
    assert frames.frames.tolist() == [0, 1] and frames.qualities.tolist() == [100, 90]
    for form in ("pytx", "pytx-dict"):
        json_path = tmp_path / f"{form}.json"
        data = format_vpdq(frames, format=form).replace(", ", "," + newline)
        json_path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode())
        assert_same(hm.read_vpdq(json_path), frames, numbered=form != "pytx")


def test_gzip_is_told_by_content_and_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    frames = frames_of(20)
    plain = format_vpdq(frames, format="pytx").encode()
    renamed = tmp_path / "video.data"
    renamed.write_bytes(gzip.compress(plain))
    assert_same(hm.read_vpdq(renamed), frames, numbered=False)
    data = gzip.compress(format_vpdq(frames).encode() * 50)
    broken = tmp_path / "v.txt.gz"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(hm.HashFormatError, match=r"v\.txt\.gz: corrupt gzip data"):
        hm.read_vpdq(broken)


@pytest.mark.parametrize("form", FORMS)
def test_standard_input(form: str) -> None:
    frames = frames_of(5)
    code = (
        "import hashmatch as hm; f = hm.read_vpdq('-');"
        " print(len(f), f.qualities.tolist(), f.timestamps.tolist())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=format_vpdq(frames, format=form).encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    out = out.splitlines()[-1]  # (an editable install may print its rebuild first)
    assert out.split()[0] == "5"
    assert str(frames.qualities.tolist()) in out and str(frames.timestamps.tolist()) in out


def test_a_saved_hashmatch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.hm"
    hm.save(hm.FlatIndex(256), path)
    with pytest.raises(hm.HashFormatError, match=r"hashmatch\.load"):
        hm.read_vpdq(path)


# ---------------------------------------------------------------------------------- empty


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff", "# nothing\n", "[]", " {}\n"])
def test_a_video_of_no_frames_raises_unless_allowed(tmp_path: Path, text: str) -> None:
    path = put(tmp_path / "empty.txt", text)
    message = "empty.txt: expected at least one frame, got none (an empty video); pass allow_empty"
    with pytest.raises(hm.HashFormatError, match=re.escape(message)):
        hm.read_vpdq(path)
    frames = hm.read_vpdq(path, allow_empty=True)
    assert len(frames) == 0 and frames.codes.shape == (0, 32)


@pytest.mark.parametrize("form", FORMS)
def test_zero_frames_are_written_and_read_back(tmp_path: Path, form: str) -> None:
    empty = hm.VideoFrames([], [], [], [])
    assert format_vpdq(empty, format=form) == {"vpdq": "", "pytx": "[]", "pytx-dict": "{}"}[form]
    path = tmp_path / NAMES[form]
    assert hm.write_vpdq(path, empty, format=form) == 0
    assert len(hm.read_vpdq(path, allow_empty=True)) == 0


# ---------------------------------------------------------------------- bad lines, exactly


GOOD = f"0,100,{A},0.000\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"1,100,{A[:-1]},0.033", "expected 64 hex characters (a 256-bit PDQ hash), got 63"),
        (f"1,100,{A}0,0.033", "expected 64 hex characters (a 256-bit PDQ hash), got 65"),
        (f"1,100,{'g' + A[1:]},0.033", "invalid character 'g' at position 0 of the hash"),
        (f"1,100,0x{A[2:]},0.033", "invalid character 'x' at position 1 of the hash"),
        (f"1,100,{A[:10]} {A[11:]},0.033", "contains whitespace (' ' at position 10)"),
        (f"1,100,{'٣' + A[1:]},0.033", "invalid character '٣' at position 0"),
        (f"1,101,{A},0.033", "expected a quality: an integer from 0 to 100, got '101'"),
        (f"1,-1,{A},0.033", "expected a quality: an integer from 0 to 100, got '-1'"),
        (f"1,99.5,{A},0.033", "expected a quality: an integer from 0 to 100, got '99.5'"),
        (f"1,,{A},0.033", "expected a quality: an integer from 0 to 100, got ''"),
        (f"1,100,{A},-0.5", "expected a timestamp: a finite number of seconds >= 0, got -0.5"),
        (f"1,100,{A},nan", "expected a timestamp: a decimal number of seconds >= 0, got 'nan'"),
        (f"1,100,{A},inf", "expected a timestamp: a decimal number of seconds >= 0, got 'inf'"),
        (f"1,100,{A},1e999", "expected a timestamp: a finite number of seconds >= 0, got inf"),
        (f"1,100,{A},1_0", "a decimal number of seconds >= 0, got '1_0'"),
        (f"1,100,{A}", "got 3 fields: the timestamp is missing"),
        (f"{A},100,0.033", "got 3 fields: 'pdq_hex,quality,timestamp' is python-threatexchange"),
        (f"1,100,{A},0.033,x", "expected 4 comma-separated fields"),
        (f"1;100;{A};0.033", "got 1 field"),
        (f"x,100,{A},0.033", "expected a frame number (field 1): an integer from 0 to 2**63 - 1"),
        (f"0,100,{A},0.033", "expected frame numbers in increasing order, got 0 after 0 (line 2)"),
        (f"1,100,{A},0.000", ""),  # equal timestamps are fine
    ],
)
def test_bad_text_lines_name_path_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = put(tmp_path / "v.txt", "# header comment\n" + GOOD + line + "\n" + GOOD)
    if not message:
        path = put(tmp_path / "v.txt", GOOD + line + "\n")
        assert len(hm.read_vpdq(path)) == 2
        return
    with pytest.raises(hm.HashFormatError) as caught:
        hm.read_vpdq(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:3: "), text
    assert message in text


def test_decreasing_timestamps_are_refused(tmp_path: Path) -> None:
    path = put(tmp_path / "v.txt", f"0,100,{A},1.000\n\n5,100,{A},0.500\n")
    message = f"{path}:3: expected timestamps in time order (never decreasing), got 0.5 after 1.0"
    with pytest.raises(hm.HashFormatError, match=re.escape(message) + r" \(line 1\)"):
        hm.read_vpdq(path)


def test_long_lines(tmp_path: Path) -> None:
    path = put(tmp_path / "v.txt", GOOD + "0" * 500 + "\n")
    with pytest.raises(hm.HashFormatError, match=r"v\.txt:2: expected lines of at most 100 "):
        hm.read_vpdq(path, max_line_chars=100)
    with pytest.raises(hm.InvalidArgument, match="max_line_chars: expected an integer >= 1"):
        hm.read_vpdq(path, max_line_chars=0)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([f"{A},100,0.0", 5], "[1]: expected a string 'pdq_hex,quality,timestamp', got a number"),
        ([f"{A},100,0.0", f"{A},100"], "[1]: expected 3 comma-separated fields"),
        ([f"{A},100,0.0", f"1,{A},100,0.0"], "[1]: expected 3 comma-separated fields"),
        ([f"{A},100,0.0", f"{A[1:]},100,0.1"], "[1]: expected 64 hex characters"),
        ([f"{A},100,0.0", f"{A},100.0,0.1"], "[1]: expected a quality: an integer from 0"),
        ([f"{A},100,0.0", f"{A},100,-1"], "[1]: expected a timestamp: a finite number"),
        ([f"{A},100,1.0", f"{A},100,0.5"], "[1]: expected timestamps in time order"),
        ([f"{A},100,1.0", f"{A},100,NaN"], "[1]: expected a timestamp: a decimal number"),
    ],
)
def test_bad_pytx_elements_name_path_and_index(
    tmp_path: Path, items: list[object], message: str
) -> None:
    path = put(tmp_path / "v.json", json.dumps(items))
    with pytest.raises(hm.HashFormatError, match=re.escape(f"{path}{message}")):
        hm.read_vpdq(path)


def good_row(**change: object) -> dict[str, object]:
    return {"quality": 90, "hash": A, "timestamp": 0.5, **change}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (json.dumps({"0": good_row(), "x": good_row()}), '["x"]: expected a frame number (key)'),
        (json.dumps({"-1": good_row()}), '["-1"]: expected a frame number (key)'),
        (
            f'{{"0": {json.dumps(good_row())}, "0": {json.dumps(good_row())}}}',
            '["0"]: expected unique frame numbers',
        ),
        (json.dumps({"0": good_row(quality=90.0)}), '["0"]["quality"]: expected an integer'),
        (json.dumps({"0": good_row(quality=True)}), '["0"]["quality"]: expected an integer'),
        (json.dumps({"0": good_row(quality=101)}), '["0"]["quality"]: expected an integer'),
        (json.dumps({"0": good_row(hash=7)}), '["0"]["hash"]: expected a string of 64 hex'),
        (json.dumps({"0": good_row(hash=A + "0")}), '["0"]["hash"]: expected 64 hex characters'),
        (json.dumps({"0": good_row(timestamp="1")}), '["0"]["timestamp"]: expected a number'),
        (
            json.dumps({"0": good_row(timestamp=float("nan"))}),
            '["0"]["timestamp"]: expected a timestamp: a finite number',
        ),
        (
            json.dumps({"0": good_row(timestamp=-float("inf"))}),
            '["0"]["timestamp"]: expected a timestamp: a finite',
        ),
        (
            json.dumps({"0": good_row(timestamp=2.0), "1": good_row(timestamp=1.0)}),
            '["1"]["timestamp"]: expected timestamps in time order',
        ),
        (
            json.dumps({"0": good_row(extra=1)}),
            "[\"0\"]: expected the keys 'quality', 'hash' and 'timestamp'",
        ),
        (json.dumps({"0": [1]}), '["0"]: expected an object {"quality"'),
        ('{"0": ', ":1:7: expected JSON, got a syntax error"),
        ('[\n"a",\n]', ":3:1: expected JSON, got a syntax error"),
    ],
)
def test_bad_json_names_path_and_element(tmp_path: Path, text: str, message: str) -> None:
    path = put(tmp_path / "v.json", text)
    with pytest.raises(hm.HashFormatError, match=re.escape(f"{path}{message}")):
        hm.read_vpdq(path)


def test_the_form_told_and_the_form_found(tmp_path: Path) -> None:
    path = put(tmp_path / "v.txt", f'\n["{A},100,0.0"]')
    with pytest.raises(
        hm.HashFormatError, match=r"v\.txt:2: expected text lines .* got a JSON list"
    ):
        hm.read_vpdq(path, format="vpdq")
    with pytest.raises(hm.HashFormatError, match=r"expected a JSON object .* pass format='auto'"):
        hm.read_vpdq(path, format="pytx-dict")
    assert len(hm.read_vpdq(path, format="pytx")) == 1
    with pytest.raises(hm.HashFormatError, match=r"v\.txt:1: expected a JSON list .* got text"):
        hm.read_vpdq(put(tmp_path / "v.txt", '"x"'), format="pytx")
    with pytest.raises(hm.InvalidArgument, match="format: expected one of"):
        hm.read_vpdq(path, format="csv")
    with pytest.raises(FileNotFoundError):
        hm.read_vpdq(tmp_path / "missing.txt")


def test_parse_vpdq_names_the_text() -> None:
    with pytest.raises(hm.HashFormatError, match=r"^signal_str\[0\]: expected 3 comma"):
        parse_vpdq('["x"]', name="signal_str")
    with pytest.raises(hm.InvalidType, match="text: expected a str, got bytes"):
        parse_vpdq(b"[]")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- writing


def test_writer_checks(tmp_path: Path) -> None:
    unnumbered = frames_of(3, numbered=False)
    for form in ("vpdq", "pytx-dict"):
        with pytest.raises(hm.InvalidArgument, match=f"the '{form}' form needs frame numbers"):
            hm.write_vpdq(tmp_path / NAMES[form], unnumbered, format=form)
    assert not (tmp_path / "v.txt").exists()
    with pytest.raises(hm.InvalidArgument, match="format: 'vpdq' contradicts the file name"):
        hm.write_vpdq(tmp_path / "v.json", frames_of(3), format="vpdq")
    with pytest.raises(hm.InvalidArgument, match="format: 'pytx' contradicts the file name"):
        hm.write_vpdq(tmp_path / "v.txt.gz", frames_of(3), format="pytx")
    with pytest.raises(hm.InvalidType, match="frames: expected VideoFrames or HashedVideo"):
        hm.write_vpdq(tmp_path / "v.txt", [A])
    with pytest.raises(hm.InvalidArgument, match="format: expected one of"):
        hm.write_vpdq(tmp_path / "v.txt", frames_of(3), timestamps="fixed")
    hm.write_vpdq(tmp_path / "other.name", frames_of(3))
    assert (tmp_path / "other.name").read_text().count("\n") == 3  # text lines by default


def test_hashed_video_frames_and_lines(tmp_path: Path) -> None:
    """HashedVideo.to_frames (the original of dihedral variants); to_lines as vpdq writes."""
    codes = np.random.default_rng(1).integers(0, 256, (2, 8, 32), dtype=np.uint8)
    video = hm.HashedVideo(
        codes,
        np.array([100, 90], np.int16),
        np.array([0, 30]),
        np.array([0.0, 1 / 3]),
        30.0,
        64,
        64,
        None,
    )
    frames = video.to_frames()
    np.testing.assert_array_equal(frames.codes, codes[:, 0])
    assert video.to_lines()[1] == f"30,90,{hm.to_hex(codes[1, 0])},0.333"
    path = tmp_path / "v.txt"
    hm.write_vpdq(path, video)
    assert_same(hm.read_vpdq(path), frames)


def test_video_frames_checks() -> None:
    with pytest.raises(hm.HashTypeMismatch):
        hm.VideoFrames(["ab" * 8], [1], None, [0.0])
    with pytest.raises(hm.InvalidArgument, match=r"qualities\[0\]: expected a quality from 0"):
        hm.VideoFrames([A], [101], None, [0.0])
    with pytest.raises(hm.InvalidArgument, match=r"timestamps\[1\]: expected a finite number"):
        hm.VideoFrames([A, A], [1, 1], None, [0.0, float("nan")])
    with pytest.raises(hm.InvalidArgument, match=r"frames\[1\]: expected -1 like frames\[0\]"):
        hm.VideoFrames([A, A], [1, 1], [-1, 3], [0.0, 1.0])
    with pytest.raises(hm.InvalidArgument, match="timestamps: expected 2 timestamps"):
        hm.VideoFrames([A, A], [1, 1], None, [0.0])
    assert repr(frames_of(2)).startswith("VideoFrames(2 frames, ")


# ------------------------------------------------------------------- python-threatexchange


def test_pytx_reads_what_we_write() -> None:
    util = oracle.pytx_vpdq().util
    frames = hm.read_vpdq(DATA / "chair-19-sd-bar.txt")
    features = util.json_to_vpdq(format_vpdq(frames, format="pytx"))
    assert [f.pdq_hex for f in features] == hm.to_hex(frames.codes)
    assert [f.quality for f in features] == frames.qualities.tolist()
    assert [f.timestamp for f in features] == frames.timestamps.tolist()  # exactly
    old = util.OLD_json_to_vpdq(format_vpdq(frames, format="pytx-dict"))
    assert [f.frame_number for f in old] == frames.frames.tolist()
    assert [f.hash for f in old] == hm.to_hex(frames.codes)
    assert [f.timestamp for f in old] == frames.timestamps.tolist()  # 3 decimals already


def test_we_read_what_pytx_writes() -> None:
    util = oracle.pytx_vpdq().util
    frames = frames_of(200, seed=3)  # up to ~200 s: past 100 s pytx writes 1.23e+02
    features = oracle.pytx_features(frames)
    text = util.vpdq_to_json(features)
    assert "e+02" in text
    back = parse_vpdq(text)
    np.testing.assert_array_equal(back.codes, frames.codes)
    assert back.timestamps.tolist() == [float(f"{t:.3}") for t in frames.timestamps.tolist()]
    assert format_vpdq(back, format="pytx") == text  # byte for byte
    assert format_vpdq(frames, format="pytx", timestamps="rounded") == text
    indented = util.vpdq_to_json(features, indent=2)
    assert_same(parse_vpdq(indented), back, numbered=False)
    assert [str(f) for f in features] == [str(f) for f in util.json_to_vpdq(text)]
