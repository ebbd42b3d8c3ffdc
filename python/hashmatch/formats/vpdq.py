"""vPDQ files: the serialisations of a video's vPDQ frames in use, read and written.

:func:`read_vpdq` reads a file in any of the three forms below (told by its content, or by
``format=``) into :class:`~hashmatch.VideoFrames`; :func:`write_vpdq` writes one atomically
(through :func:`hashmatch.files.atomic_write`), and reads back exactly what it wrote.
:func:`parse_vpdq` and :func:`format_vpdq` do the same with a str (python-threatexchange keeps
a video's vPDQ signal as a JSON string, e.g. in the ``signal_str`` column of its exports).

Forms
-----
``"vpdq"``
    Meta's vpdq tools (``vpdq-hash-video``, the ``vpdq/sample-hashes`` files): one frame a
    line, ``frame_number,quality,pdq_hex,timestamp_seconds``, the timestamp with 3 decimals
    (C++ ``std::fixed << std::setprecision(3)``). vpdq's README says three fields, but its
    writer (``outputVPDQFeatureToFile``) and its loader (``loadHashesFromFileOrDie``, which
    refuses any other count) have four, as every published file does; four it is.
``"pytx"``
    python-threatexchange 1.x (``vpdq_to_json``/``json_to_vpdq``): a JSON list of strings
    ``"pdq_hex,quality,timestamp"``, without frame numbers (read as -1). pytx formats the
    timestamp with ``f"{t:.3}"``: three *significant digits*, not three decimals, so its own
    files hold ``"0.0333"``, ``"12.3"`` and, past 100 seconds, ``"1.23e+02"`` (123.4 s
    becomes 123.0 s; past 1000 s the step is 10 s). Those are read as written.
``"pytx-dict"``
    The older python-threatexchange form (``OLD_json_to_vpdq``): a JSON object
    ``{"frame_number": {"quality": q, "hash": "pdq_hex", "timestamp": t}}``. The frames are
    ordered by frame number (JSON objects are unordered; ``sort_keys`` would put "10" before
    "2"); pytx rounded these timestamps to 3 decimals when reading, hashmatch does not.

Checks
------
Every form: a UTF-8 BOM is ignored; gzip is recognised by content; ``"-"`` reads standard
input. The text form accepts CRLF or LF, and skips blank lines and lines starting with ``#``;
whitespace around a field is removed. Then, strictly, with the ``path:line`` (text) or the
``path[element]`` (JSON) of the first bad frame and what was expected:

* the field count (4 in the text form, 3 in pytx strings) and, in the dict form, the keys
  ``quality``, ``hash`` and ``timestamp`` (no others);
* the hash: 64 hex digits (either case; written in lowercase), nothing else;
* the quality: an integer from 0 to 100 (ASCII digits; in JSON, an integer, not ``100.0``);
* the timestamp: a decimal number of seconds (an exponent is allowed: pytx writes them),
  finite and ``>= 0``;
* the frame number (text form and dict keys): an integer ``>= 0``, each frame's number
  greater than the one before;
* the order: timestamps never decrease (equal ones are allowed: pytx's 3 significant digits
  make them common). Every vPDQ producer writes frames in time order, which pytx does not
  check; a decrease means a damaged or concatenated file, and is refused.

An empty video (no frames: an empty file, ``[]``, ``{}``) raises by default: vpdq's loader
refuses it ("Empty hash file"), and matching it is undefined (pytx divides by zero, vpdq
gives NaN). ``allow_empty=True`` reads it as :class:`~hashmatch.VideoFrames` of no frames,
as pytx's ``json_to_vpdq("")`` does. :func:`write_vpdq` writes zero frames as ``""``,
``"[]"`` or ``"{}"``.

Timestamps written
------------------
``timestamps="exact"`` (the default) writes each timestamp as the form's own writer would
(3 decimals; pytx: 3 significant digits) when that reads back as the same float64, else as
the shortest text that does (``repr``): frames read from a peer's file are written back byte
for byte, and any other timestamps round-trip exactly. ``timestamps="rounded"`` writes them
as the peer does, always (lossy).

Examples
--------
>>> import os, tempfile
>>> frames = hm.VideoFrames(["ab" * 32, "cd" * 32], [100, 49], [0, 30], [0.0, 1.0])
>>> path = os.path.join(tempfile.mkdtemp(), "video.json")
>>> hm.write_vpdq(path, frames)
2
>>> open(path).read()[:10]
'["abababab'
>>> back = hm.read_vpdq(path)
>>> back.qualities.tolist(), back.timestamps.tolist(), back.frames.tolist()
([100, 49], [0.0, 1.0], [-1, -1])
"""

from __future__ import annotations

import functools
import gzip
import io
import itertools
import json
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from hashmatch._validation import hex_hint
from hashmatch.errors import HashFormatError, InvalidArgument, InvalidType
from hashmatch.files import check_path, open_input
from hashmatch.frames import NO_FRAME_NUMBER, VideoFrames

from .limits import MAX_LINE_CHARS, check_length, shown
from .names import NOT_HEX
from .reader import check_format, check_positive
from .writer import output

__all__ = [
    "VPDQ_FORMATS",
    "format_vpdq",
    "parse_vpdq",
    "read_vpdq",
    "text_lines",
    "write_vpdq",
]

VPDQ_FORMATS = ("vpdq", "pytx", "pytx-dict")
"""The forms read and written (see the module documentation)."""
_READ_FORMATS = ("auto", *VPDQ_FORMATS)
_TIMESTAMPS = ("exact", "rounded")
_FIRST_CHAR = {"[": "pytx", "{": "pytx-dict"}
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_DICT_KEYS = ("quality", "hash", "timestamp")
_HEX_CHARS = 64
_MAX_FRAME = 2**63 - 1

_PDQ = re.compile(r"[0-9a-fA-F]{64}")
_QUALITY = re.compile(r"[0-9]{1,3}")
_NUMBER = re.compile(r"[0-9]{1,19}")  # [0-9] is ASCII only, unlike \d
_SECONDS = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


# ------------------------------------------------------------------------------- reading


def read_vpdq(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    allow_empty: bool = False,
    max_line_chars: int = MAX_LINE_CHARS,
) -> VideoFrames:
    """Read the vPDQ frames of a video from a file in any of the forms in use.

    Parameters
    ----------
    path : str or path-like
        A file in Meta's vpdq text form, python-threatexchange's JSON list or its older JSON
        object (see :mod:`hashmatch.formats.vpdq`), optionally gzip-compressed; ``"-"``
        reads standard input.
    format : {"auto", "vpdq", "pytx", "pytx-dict"}, optional
        ``"auto"`` tells the form by the first character that is not whitespace: ``[`` is
        pytx, ``{`` pytx-dict, anything else vpdq text lines.
    allow_empty : bool, optional
        Read a file without frames as a video of no frames instead of raising.
    max_line_chars : int, optional
        The longest line of the text form, in characters, line end excluded (default 1 MiB;
        a line is about 80).

    Returns
    -------
    VideoFrames
        Codes, qualities, frame numbers (-1 for the pytx form, which has none) and
        timestamps, in file order (the dict form: in frame-number order).

    Raises
    ------
    HashFormatError
        On the first bad frame (``path:line`` or ``path[element]``, what was expected and
        what was found), a file of no frames without `allow_empty`, JSON that does not
        parse (``path:line:column``), a form other than `format`, or corrupt gzip data.
    InvalidArgument, InvalidType
        On a bad `format` or `max_line_chars`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "video.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write(f"0,100,{'ab' * 32},0.000\\n30,49,{'CD' * 32},1.000\\n")
    >>> frames = hm.read_vpdq(path)
    >>> frames.frames.tolist(), frames.qualities.tolist(), frames.timestamps.tolist()
    ([0, 30], [100, 49], [0.0, 1.0])
    >>> hm.to_hex(frames.codes[1])[:8]
    'cdcdcdcd'
    >>> with open(path, "w") as f:
    ...     _ = f.write(f"0,100,{'ab' * 32}\\n")
    >>> hm.read_vpdq(path)
    Traceback (most recent call last):
    ...
    hashmatch.errors.HashFormatError: ...video.txt:1: expected 4 comma-separated fields \
frame_number,quality,pdq_hex,timestamp_seconds, got 3 fields: the timestamp is missing
    """
    path = check_path(path)
    format = check_format(format, _READ_FORMATS)
    limits = _Limits(path, check_positive("max_line_chars", max_line_chars))
    if path != "-":
        os.stat(path)  # a missing file: FileNotFoundError naming it
    try:
        with open_input(path) as source:
            text = io.TextIOWrapper(
                source.stream, encoding="utf-8-sig", errors="replace", newline=""
            )
            lines = iter(functools.partial(text.readline, limits.max_line_chars + 2), "")
            head: list[str] = []
            for line in lines:  # up to the first line with anything but whitespace
                head.append(line)
                if len(line) > limits.max_line_chars:
                    check_length(limits, len(line), line, len(head))
                if line.strip():
                    break
            found = _form_of("".join(head))
            form = found if format == "auto" else format
            if found != form and head and head[-1].strip():
                _wrong_form(path, len(head), form, found)
            if form == "vpdq":
                frames = _parse_lines(limits, enumerate(itertools.chain(head, lines), 1))
            else:
                frames = _parse_json(path, "".join(head) + text.read(), form)
            text.detach()
    except _GZIP_ERRORS as error:
        raise HashFormatError(f"{path}: corrupt gzip data: {error}") from None
    return _checked_count(path, frames, allow_empty)


def parse_vpdq(
    text: str, *, format: str = "auto", allow_empty: bool = False, name: str = "text"
) -> VideoFrames:
    """The vPDQ frames in a str: a vpdq file's text or a pytx signal string (its JSON).

    Parameters
    ----------
    text : str
        The contents of a file in any form :func:`read_vpdq` reads.
    format, allow_empty
        As for :func:`read_vpdq`.
    name : str, optional
        What errors call the text (instead of a path), e.g. ``"signal_str"``.

    Returns
    -------
    VideoFrames

    Raises
    ------
    HashFormatError
        As :func:`read_vpdq`, naming `name` instead of a path.

    Examples
    --------
    >>> frames = parse_vpdq(f'["{"ab" * 32},87,1.23e+02"]')
    >>> frames.qualities.tolist(), frames.timestamps.tolist(), frames.numbered
    ([87], [123.0], False)
    """
    if not isinstance(text, str):
        raise InvalidType(f"{name}: expected a str, got {type(text).__name__}")
    format = check_format(format, _READ_FORMATS)
    text = text.removeprefix("\ufeff")
    found = _form_of(text)
    form = found if format == "auto" else format
    if found != form and text.strip():
        _wrong_form(name, text[: len(text) - len(text.lstrip())].count("\n") + 1, form, found)
    if form == "vpdq":
        limits = _Limits(name, max(map(len, text.splitlines()), default=0))
        frames = _parse_lines(limits, enumerate(io.StringIO(text, newline=""), 1))
    else:
        frames = _parse_json(name, text, form)
    return _checked_count(name, frames, allow_empty)


class _Limits:
    """What :func:`~hashmatch.formats.limits.check_length` needs to know of a reader."""

    def __init__(self, path: str, max_line_chars: int) -> None:
        self.path = path
        self.max_line_chars = max_line_chars


def _form_of(head: str) -> str:
    """The form the first character that is not whitespace says."""
    stripped = head.lstrip()
    return _FIRST_CHAR.get(stripped[:1], "vpdq")


def _wrong_form(where: str, line: int, form: str, found: str) -> None:
    what = {
        "vpdq": "text lines (Meta's vpdq form)",
        "pytx": "a JSON list (python-threatexchange's form)",
        "pytx-dict": "a JSON object (older python-threatexchange's form)",
    }
    raise HashFormatError(
        f"{where}:{line}: expected {what[form]} as format={form!r} says, got {what[found]};"
        f" pass format='auto' (or {found!r})"
    )


def _checked_count(where: str, frames: VideoFrames, allow_empty: bool) -> VideoFrames:
    if not len(frames) and not allow_empty:
        raise HashFormatError(
            f"{where}: expected at least one frame, got none (an empty video); pass"
            " allow_empty=True to read it as a video of no frames"
        )
    return frames


def _parse_lines(limits: _Limits, lines: Iterable[tuple[int, str]]) -> VideoFrames:
    """Frames of the text form: ``frame_number,quality,pdq_hex,timestamp_seconds`` lines."""
    where_path = limits.path
    hexes: list[str] = []
    qualities: list[int] = []
    numbers: list[int] = []
    seconds: list[float] = []
    previous_line = 0
    for number, line in lines:
        if len(line) > limits.max_line_chars:
            check_length(limits, len(line), line, number)
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{where_path}:{number}"
        fields = stripped.split(",")
        if len(fields) != 4:
            _field_count(where, fields)
        frame_text, quality_text, hex_text, seconds_text = (field.strip() for field in fields)
        frame = _frame_number(where, frame_text)
        if numbers and frame <= numbers[-1]:
            raise HashFormatError(
                f"{where}: expected frame numbers in increasing order, got {frame} after"
                f" {numbers[-1]} (line {previous_line})"
            )
        qualities.append(_quality(where, quality_text))
        hexes.append(_hex(where, hex_text))
        seconds.append(_seconds(where, seconds_text, seconds, f"line {previous_line}"))
        numbers.append(frame)
        previous_line = number
    return _frames(hexes, qualities, numbers, seconds)


def _field_count(where: str, fields: list[str]) -> None:
    hint = ""
    if len(fields) == 3:
        if _PDQ.fullmatch(fields[0].strip()):
            hint = (
                ": 'pdq_hex,quality,timestamp' is python-threatexchange's frame string, whose"
                " files are JSON lists (format='pytx')"
            )
        else:
            hint = ": the timestamp is missing"
    raise HashFormatError(
        f"{where}: expected 4 comma-separated fields"
        f" frame_number,quality,pdq_hex,timestamp_seconds, got {len(fields)} field"
        f"{'s' if len(fields) != 1 else ''}{hint}"
    )


def _parse_json(where: str, text: str, form: str) -> VideoFrames:
    """Frames of the JSON forms; an empty (or all-whitespace) text is no frames."""
    if not text.strip():
        return _frames([], [], [], [])
    try:
        data = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as error:
        raise HashFormatError(
            f"{where}:{error.lineno}:{error.colno}: expected JSON, got a syntax error: {error.msg}"
        ) from None
    except RecursionError:
        raise HashFormatError(f"{where}: expected JSON, got nesting too deep") from None
    if form == "pytx":
        if not isinstance(data, list) or isinstance(data, _Pairs):
            raise HashFormatError(
                f"{where}: expected a JSON list of 'pdq_hex,quality,timestamp' strings, got"
                f" {_json_kind(data)}"
            )
        return _parse_pytx(where, data)
    if not isinstance(data, _Pairs):
        raise HashFormatError(
            f"{where}: expected a JSON object of frames by frame number, got {_json_kind(data)}"
        )
    return _parse_pytx_dict(where, data)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, in file order, duplicates kept."""


def _json_kind(value: object) -> str:
    if isinstance(value, _Pairs):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string {shown(value, 40)}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"a number ({value!r})"


def _parse_pytx(where: str, items: list[Any]) -> VideoFrames:
    hexes: list[str] = []
    qualities: list[int] = []
    seconds: list[float] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, str):
            raise HashFormatError(
                f"{at}: expected a string 'pdq_hex,quality,timestamp', got {_json_kind(item)}"
            )
        fields = item.split(",")
        if len(fields) != 3:
            raise HashFormatError(
                f"{at}: expected 3 comma-separated fields pdq_hex,quality,timestamp, got"
                f" {len(fields)} in {shown(item)}"
            )
        hex_text, quality_text, seconds_text = (field.strip() for field in fields)
        hexes.append(_hex(at, hex_text))
        qualities.append(_quality(at, quality_text))
        seconds.append(_seconds(at, seconds_text, seconds, f"[{i - 1}]"))
    return _frames(hexes, qualities, [NO_FRAME_NUMBER] * len(hexes), seconds)


def _parse_pytx_dict(where: str, pairs: _Pairs) -> VideoFrames:
    rows: list[tuple[int, str, Any]] = []
    seen: dict[int, str] = {}
    for key, value in pairs:
        at = f"{where}[{json.dumps(key)}]"
        frame = _frame_number(at, key, what="key")
        if frame in seen:
            raise HashFormatError(
                f"{at}: expected unique frame numbers, got frame {frame} again (first as"
                f" {json.dumps(seen[frame])})"
            )
        seen[frame] = key
        rows.append((frame, at, value))
    rows.sort(key=lambda row: row[0])
    hexes: list[str] = []
    qualities: list[int] = []
    seconds: list[float] = []
    previous = ""
    for _, at, value in rows:
        if not isinstance(value, _Pairs):
            raise HashFormatError(
                f'{at}: expected an object {{"quality": q, "hash": hex, "timestamp": t}}, got'
                f" {_json_kind(value)}"
            )
        fields = dict(value)
        keys = [key for key, _ in value]
        if sorted(keys) != sorted(_DICT_KEYS):
            raise HashFormatError(
                f"{at}: expected the keys 'quality', 'hash' and 'timestamp' once each, got"
                f" {', '.join(map(repr, keys)) or 'none'}"
            )
        quality, code, time = fields["quality"], fields["hash"], fields["timestamp"]
        if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
            raise HashFormatError(
                f'{at}["quality"]: expected an integer from 0 to 100, got {_json_kind(quality)}'
            )
        if not isinstance(code, str):
            raise HashFormatError(
                f'{at}["hash"]: expected a string of 64 hex digits, got {_json_kind(code)}'
            )
        if isinstance(time, bool) or not isinstance(time, (int, float)):
            raise HashFormatError(
                f'{at}["timestamp"]: expected a number of seconds, got {_json_kind(time)}'
            )
        hexes.append(_hex(f'{at}["hash"]', code))
        qualities.append(quality)
        seconds.append(_checked_seconds(f'{at}["timestamp"]', float(time), seconds, previous))
        previous = at
    return _frames(hexes, qualities, [row[0] for row in rows], seconds)


# -------------------------------------------------------------------------------- fields


def _frame_number(where: str, text: str, *, what: str = "field 1") -> int:
    if _NUMBER.fullmatch(text) and (number := int(text)) <= _MAX_FRAME:
        return number
    raise HashFormatError(
        f"{where}: expected a frame number ({what}): an integer from 0 to 2**63 - 1, got"
        f" {shown(text)}"
    )


def _quality(where: str, text: str) -> int:
    if _QUALITY.fullmatch(text) and (quality := int(text)) <= 100:
        return quality
    raise HashFormatError(
        f"{where}: expected a quality: an integer from 0 to 100, got {shown(text)}"
    )


def _hex(where: str, text: str) -> str:
    if _PDQ.fullmatch(text):
        return text
    bad = NOT_HEX.search(text)
    if bad:
        raise HashFormatError(
            f"{where}: invalid character {bad.group()!r} at position {bad.start()} of the"
            f" hash; expected {_HEX_CHARS} hex characters [0-9a-fA-F] (a 256-bit PDQ hash)"
            f"{hex_hint(text)}"
        )
    raise HashFormatError(
        f"{where}: expected {_HEX_CHARS} hex characters (a 256-bit PDQ hash), got {len(text)}"
    )


def _seconds(where: str, text: str, earlier: list[float], previous: str) -> float:
    if not _SECONDS.fullmatch(text):
        raise HashFormatError(
            f"{where}: expected a timestamp: a decimal number of seconds >= 0, got {shown(text)}"
        )
    return _checked_seconds(where, float(text), earlier, previous)


def _checked_seconds(where: str, value: float, earlier: list[float], previous: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise HashFormatError(
            f"{where}: expected a timestamp: a finite number of seconds >= 0, got {value!r}"
        )
    if earlier and value < earlier[-1]:
        raise HashFormatError(
            f"{where}: expected timestamps in time order (never decreasing), got {value!r}"
            f" after {earlier[-1]!r} ({previous})"
        )
    return value + 0.0  # -0.0 is 0.0


def _frames(
    hexes: list[str], qualities: list[int], numbers: list[int], seconds: list[float]
) -> VideoFrames:
    """The checked columns as VideoFrames (the hashes parsed in one call)."""
    codes = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32)
    return VideoFrames(
        codes,
        np.array(qualities, dtype=np.int16),
        np.array(numbers, dtype=np.int64),
        np.array(seconds, dtype=np.float64),
    )


# ------------------------------------------------------------------------------- writing


def write_vpdq(
    path: str | os.PathLike[str],
    frames: object,
    *,
    format: str = "auto",
    timestamps: str = "exact",
) -> int:
    """Write the vPDQ frames of a video, atomically; :func:`read_vpdq` reads them back.

    Parameters
    ----------
    path : str or path-like
        Destination, gzip-compressed if it ends in ``.gz``. Written as a temporary file
        beside it, flushed to disk and renamed over it (a failure leaves no partial file).
    frames : VideoFrames or HashedVideo
        The frames; of a :class:`~hashmatch.HashedVideo` with ``dihedral=True``, the
        original variant.
    format : {"auto", "vpdq", "pytx", "pytx-dict"}, optional
        ``"auto"``: ``pytx`` for a ``.json`` name (optionally ``.json.gz``), else ``vpdq``
        text lines. A ``.json`` name with ``"vpdq"``, or a ``.txt`` name with a JSON form,
        is refused. The text and dict forms need frame numbers (frames read from the pytx
        form have none).
    timestamps : {"exact", "rounded"}, optional
        ``"exact"`` writes each timestamp as the peer's writer would when that reads back
        exactly, else the shortest text that does; ``"rounded"`` always as the peer's
        writer (3 decimals; pytx: 3 significant digits). See the module documentation.

    Returns
    -------
    int
        The number of frames written.

    Raises
    ------
    InvalidType
        If `frames` is neither VideoFrames nor HashedVideo.
    InvalidArgument
        On a bad `format` or `timestamps`, a `format` the file name contradicts, or frames
        without frame numbers for a form that needs them.

    Examples
    --------
    >>> import os, tempfile
    >>> frames = hm.VideoFrames(["ab" * 32], [100], [0], [1 / 3])
    >>> path = os.path.join(tempfile.mkdtemp(), "video.txt")
    >>> hm.write_vpdq(path, frames, timestamps="rounded")
    1
    >>> open(path).read()[-7:]
    ',0.333\\n'
    """
    path = check_path(path)
    video = _as_frames(frames)
    form = check_format(format, _READ_FORMATS)
    check_format(timestamps, _TIMESTAMPS)
    name = path.lower().removesuffix(".gz")
    is_json = name.endswith(".json")
    if form == "auto":
        form = "pytx" if is_json else "vpdq"
    elif (form == "vpdq" and is_json) or (form != "vpdq" and name.endswith(".txt")):
        raise InvalidArgument(
            f"format: {form!r} contradicts the file name {os.path.basename(path)!r}; pass"
            " format='auto', or name the file .json for the JSON forms, .txt for 'vpdq'"
        )
    text = format_vpdq(video, format=form, timestamps=timestamps)
    with output(path) as stream:
        stream.write(text.encode())
    return len(video)


def format_vpdq(frames: object, *, format: str = "vpdq", timestamps: str = "exact") -> str:
    """The text of a vPDQ file: what :func:`write_vpdq` writes, as a str.

    Parameters
    ----------
    frames : VideoFrames or HashedVideo
    format : {"vpdq", "pytx", "pytx-dict"}, optional
        ``"pytx"`` gives what python-threatexchange's ``vpdq_to_json`` returns for the same
        frames (its vPDQ signal string), byte for byte when their timestamps are what it
        rounds them to.
    timestamps : {"exact", "rounded"}, optional
        As for :func:`write_vpdq`.

    Returns
    -------
    str

    Examples
    --------
    >>> frames = hm.VideoFrames(["ab" * 32], [87], [0], [123.4])
    >>> format_vpdq(frames, format="pytx", timestamps="rounded")[-18:]
    'abab,87,1.23e+02"]'
    """
    video = _as_frames(frames)
    form = check_format(format, VPDQ_FORMATS)
    rounded = check_format(timestamps, _TIMESTAMPS) == "rounded"
    if form == "pytx":
        return json.dumps([f"{h},{q},{_pytx_seconds(t, rounded)}" for _, q, h, t in _rows(video)])
    _need_numbers(video, form)
    if form == "vpdq":
        return "".join(line + "\n" for line in text_lines(video, rounded=rounded))
    return json.dumps(
        {
            str(n): {"quality": q, "hash": h, "timestamp": round(t, 3) if rounded else t}
            for n, q, h, t in _rows(video)
        }
    )


def text_lines(frames: VideoFrames, *, rounded: bool = False) -> list[str]:
    """The lines of the text form (without line ends), ``frame,quality,hex,seconds``: with
    ``rounded=True`` exactly as Meta's vpdq writes them (3 decimals)."""
    _need_numbers(frames, "vpdq")
    return [f"{n},{q},{h},{_fixed_seconds(t, rounded)}" for n, q, h, t in _rows(frames)]


def _as_frames(frames: object) -> VideoFrames:
    if isinstance(frames, VideoFrames):
        return frames
    to_frames = getattr(frames, "to_frames", None)  # HashedVideo (media imports formats)
    video = to_frames() if callable(to_frames) else None
    if isinstance(video, VideoFrames):
        return video
    raise InvalidType(f"frames: expected VideoFrames or HashedVideo, got {type(frames).__name__}")


def _need_numbers(frames: VideoFrames, form: str) -> None:
    if not frames.numbered:
        raise InvalidArgument(
            f"frames: the {form!r} form needs frame numbers, and these frames have none (-1:"
            " read from the pytx form); write format='pytx', or give numbers, e.g."
            " VideoFrames(f.codes, f.qualities, range(len(f)), f.timestamps)"
        )


def _rows(frames: VideoFrames) -> Iterator[tuple[int, int, str, float]]:
    """(frame number, quality, lowercase hex, seconds) of each frame, as Python objects."""
    assert frames.frames is not None  # set by VideoFrames; for mypy
    text = frames.codes.tobytes().hex()
    hexes = [text[i : i + _HEX_CHARS] for i in range(0, len(text), _HEX_CHARS)]
    return zip(
        frames.frames.tolist(),
        frames.qualities.tolist(),
        hexes,
        frames.timestamps.tolist(),
        strict=True,
    )


def _fixed_seconds(value: float, rounded: bool) -> str:
    """vpdq's 3 decimals, or (exact) the shortest text when those do not read back."""
    text = f"{value:.3f}"
    return text if rounded or float(text) == value else repr(value)


def _pytx_seconds(value: float, rounded: bool) -> str:
    """pytx's 3 significant digits, or (exact) the shortest text when those do not read back."""
    text = f"{value:.3}"
    return text if rounded or float(text) == value else repr(value)
