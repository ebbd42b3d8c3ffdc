"""``hashmatch video-match BANK... --queries QUERY...``: query videos against banked videos
(vPDQ), one CSV row per (query, banked video) pair with both percentages, the verdict and the
aligned time segments (:class:`hashmatch.VideoIndex`).

Inputs
------
``BANK...`` are vPDQ files (any form :func:`hashmatch.read_vpdq` reads: Meta's text lines,
python-threatexchange's JSON list or its older JSON object, gzip or not), directories of them
(walked recursively, hidden names skipped, taking names ending in ``.txt``, ``.json`` or
``.vpdq``, optionally ``.gz``), or a bank a previous run saved with ``--save-bank`` (a
hashmatch file, told by its content). A long list of files goes in a text file named with
``@``: ``hashmatch video-match @bank.txt ...`` reads one argument a line (argparse's
``fromfile_prefix_chars``; paths relative to the working directory). A banked video's key is
its path as given or walked (a saved bank keeps the keys it was saved with).

``--queries QUERY...`` are vPDQ files or directories as above; with ``--hash-videos`` they are
media files (directories walked for video extensions) hashed with :func:`hashmatch.hash_video`
(``--dihedral``: every frame's 8 rotations and mirrors; ``--crop-borders``: hashed both with
and without uniform bars, each banked video reported with the better hashing).

A file that cannot be read or hashed is reported on stderr (``path:line`` and the reason for a
bad vPDQ file) and skipped; the others are matched. Exit code 0: every file read; 1: some were
skipped; 2: bad arguments, or no banked video at all.

Outputs
-------
``--out`` (default stdout), CSV written atomically, one row per pair whose verdict is a match
(``--all``: every banked video with a matching frame), by query then rank:

``query, banked, matched, query_pct, compared_pct, query_matched, query_frames,
compared_matched, compared_frames, longest, segments, offsets, common_frames, transform``

``query_pct`` and ``compared_pct`` are written in full (``repr``: they read back as the same
float). ``segments`` serialises the aligned segments, longest first, as
``q0-q1@b0-b1`` (query seconds ``q0`` to ``q1`` show banked seconds ``b0`` to ``b1``, 3
decimals) joined by ``;``; ``offsets`` the best time offsets ``t_banked - t_query`` joined by
``;``; ``longest`` the longest segment's query seconds. ``--segments FILE`` also writes one
row per segment: ``query, banked, segment, query_start, query_end, banked_start, banked_end,
frames, mean_distance``. ``--save-bank FILE`` saves the bank built (:meth:`VideoIndex.save`)
for the next run; without ``--queries`` the run only builds and saves it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import hashmatch as hm
from hashmatch._validation import check_threads
from hashmatch.io import MAGIC
from hashmatch.media._deps import require
from hashmatch.progress import bar
from hashmatch.videos import DEFAULT_MIN_COMPARED_PCT, DEFAULT_MIN_QUERY_PCT

from . import common
from .media import VIDEO_EXTENSIONS, walk

VPDQ_EXTENSIONS = tuple(f"{ext}{gz}" for gz in ("", ".gz") for ext in (".txt", ".json", ".vpdq"))
"""Files a directory walk takes as vPDQ files (named files are always tried)."""
CSV_HEADER = (
    "query",
    "banked",
    "matched",
    "query_pct",
    "compared_pct",
    "query_matched",
    "query_frames",
    "compared_matched",
    "compared_frames",
    "longest",
    "segments",
    "offsets",
    "common_frames",
    "transform",
)
SEGMENTS_HEADER = (
    "query",
    "banked",
    "segment",
    "query_start",
    "query_end",
    "banked_start",
    "banked_end",
    "frames",
    "mean_distance",
)
MAX_FAILURES_SHOWN = 20


def format_segments(segments: tuple[hm.Segment, ...] | list[hm.Segment]) -> str:
    """Segments as ``q0-q1@b0-b1`` (seconds, 3 decimals) joined by ``;``.

    Examples
    --------
    >>> format_segments([hm.Segment(20.0, 24.0, 3.0, 7.0, 5, 2.5)])
    '20.000-24.000@3.000-7.000'
    """
    return ";".join(
        f"{s.query_start:.3f}-{s.query_end:.3f}@{s.banked_start:.3f}-{s.banked_end:.3f}"
        for s in segments
    )


def parse_segments(text: str) -> list[tuple[float, float, float, float]]:
    """The ``(query_start, query_end, banked_start, banked_end)`` of a ``segments`` cell.

    Examples
    --------
    >>> parse_segments("20.000-24.000@3.000-7.000;0.000-1.000@9.000-10.000")
    [(20.0, 24.0, 3.0, 7.0), (0.0, 1.0, 9.0, 10.0)]
    """
    spans = []
    for part in filter(None, text.split(";")):
        query, banked = part.split("@")
        q0, q1 = query.split("-")
        b0, b1 = banked.split("-")
        spans.append((float(q0), float(q1), float(b0), float(b1)))
    return spans


def is_saved_index(path: str) -> bool:
    """Whether ``path`` is a hashmatch file (``--save-bank``'s), by its first bytes."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


@dataclass
class _Run:
    """One ``video-match`` run: what was read and what failed."""

    args: argparse.Namespace
    failures: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, path: str, error: BaseException) -> None:
        if isinstance(error, hm.MediaError):
            reason = f"{path}: {error.reason}"
        elif isinstance(error, OSError) and error.strerror:
            reason = f"{error.filename or path}: {error.strerror}"
        else:
            reason = str(error)
        self.failures.append((path, reason if path in reason else f"{path}: {reason}"))

    # ------------------------------------------------------------------ the bank

    def bank(self) -> hm.VideoIndex:
        """The banked videos: a saved bank (if one is named) plus every vPDQ file named."""
        saved = [p for p in self.args.bank if is_saved_index(p)]
        if len(saved) > 1:
            raise hm.InvalidArgument(
                f"BANK: expected at most one saved bank, got {len(saved)}: {', '.join(saved)}"
            )
        if saved:
            index = hm.VideoIndex.load(saved[0])
        else:  # the options given become the saved bank's defaults
            defaults = {
                "max_distance": self.args.max_distance,
                "min_quality": self.args.min_quality,
            }
            index = hm.VideoIndex(**{k: v for k, v in defaults.items() if v is not None})
        others = [p for p in self.args.bank if p not in saved]
        paths = list(dict.fromkeys(walk(others, frozenset(VPDQ_EXTENSIONS))))
        banked = {index.get(int(i)).key for i in index.ids} if saved and paths else set()
        frames, keys = [], []
        with bar(len(paths), "reading bank", "video", enabled=self.args.progress) as shown:
            for path in paths:
                if path in banked:
                    self.failures.append((path, f"{path}: already in {saved[0]}"))
                else:
                    video = self.read(path)
                    if video is not None:
                        frames.append(video)
                        keys.append(path)
                shown.update(1)
        if frames:
            index.add_many(frames, keys=keys, sources=keys)
        if not len(index):
            raise hm.InvalidArgument(
                "BANK: no banked video (every vPDQ file failed, or none was found)"
                if paths
                else "BANK: no vPDQ file found (names ending in .txt, .json or .vpdq, or .gz)"
            )
        return index

    def read(self, path: str) -> hm.VideoFrames | None:
        """The frames of a vPDQ file; None (and a failure) when it cannot be read."""
        try:
            return hm.read_vpdq(path)
        except (hm.HashmatchError, OSError, UnicodeDecodeError) as error:
            self.fail(path, error)
            return None

    # ------------------------------------------------------------------ queries

    def queries(self) -> Iterator[tuple[str, object]]:
        """``(path, query)`` of every query file that reads (or hashes), in order."""
        hashing = self.args.hash_videos
        paths = list(
            dict.fromkeys(
                walk(self.args.queries, VIDEO_EXTENSIONS if hashing else frozenset(VPDQ_EXTENSIONS))
            )
        )
        with bar(len(paths), "matching", "video", enabled=self.args.progress) as shown:
            for path in paths:
                query = self.hash(path) if hashing else self.read(path)
                if query is not None:
                    yield path, query
                shown.update(1)

    def hash(self, path: str) -> object:
        """``hash_video`` of a media file (both ways with --crop-borders); None on failure."""
        try:
            video = hm.hash_video(
                path, seconds_per_hash=self.args.seconds_per_hash, dihedral=self.args.dihedral
            )
            if not len(video):
                self.failures.append((path, f"{path}: no frame decoded"))
                return None
            if not self.args.crop_borders:
                return video
            cropped = hm.hash_video(
                path,
                seconds_per_hash=self.args.seconds_per_hash,
                dihedral=self.args.dihedral,
                crop_borders=True,
            )
            return [video, cropped] if cropped.crop is not None and len(cropped) else video
        except (hm.MediaError, OSError) as error:
            self.fail(path, error)
            return None


def _rows(
    path: str, result: hm.VideoMatchResult
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The output rows and segment rows of one query's result."""
    rows, segments = [], []
    for m in result:
        banked = m.key if m.key is not None else str(m.id)
        rows.append(
            (
                path, banked, "true" if m.matched else "false", repr(m.query_pct),
                repr(m.compared_pct), m.query_matched, m.query_frames, m.compared_matched,
                m.compared_frames, f"{m.longest:.3f}", format_segments(m.segments),
                ";".join(f"{o:.3f}" for o in m.offsets), m.common_frames, m.transform or "",
            )
        )  # fmt: skip
        for k, s in enumerate(m.segments):
            segments.append(
                (
                    path, banked, k, f"{s.query_start:.3f}", f"{s.query_end:.3f}",
                    f"{s.banked_start:.3f}", f"{s.banked_end:.3f}", s.frames,
                    f"{s.mean_distance:.3f}",
                )
            )  # fmt: skip
    return rows, segments


def _check(args: argparse.Namespace) -> None:
    """Options checked before any work."""
    if not args.queries and args.save_bank is None:
        raise hm.InvalidArgument("--queries: expected query files (or --save-bank to only save)")
    for name in ("dihedral", "crop_borders"):
        if getattr(args, name) and not args.hash_videos:
            option = "--" + name.replace("_", "-")
            raise hm.InvalidArgument(f"{option}: applies to videos hashed with --hash-videos")
    if args.max_distance is not None:
        common.radius(args.max_distance, 256)  # names --max-distance when out of range
    if args.min_quality is not None and args.min_quality > 100:
        raise hm.InvalidArgument(f"--min-quality: expected 0 to 100, got {args.min_quality}")
    if args.hash_videos:
        try:
            require("av", for_="--hash-videos")
            require("pdqhash", for_="--hash-videos")
        except ModuleNotFoundError as error:
            raise hm.InvalidArgument(str(error)) from None
    if not math.isfinite(args.seconds_per_hash) or args.seconds_per_hash < 0:
        raise hm.InvalidArgument(
            f"--seconds-per-hash: expected seconds >= 0, got {args.seconds_per_hash}"
        )
    inputs = [("BANK", p) for p in args.bank] + [("--queries", p) for p in args.queries or []]
    common.check_paths(
        inputs,
        [("--out", args.out), ("--segments", args.segments), ("--save-bank", args.save_bank)],
    )


def run(args: argparse.Namespace) -> int:
    """Run ``hashmatch video-match``; exit 1 when some file was skipped."""
    _check(args)
    threads = check_threads(args.threads)
    options: dict[str, Any] = dict(
        max_distance=args.max_distance,
        min_quality=args.min_quality,
        min_query_pct=args.min_query_pct,
        min_compared_pct=args.min_compared_pct,
        min_duration=args.min_duration,
        semantics=args.semantics,
        dihedral=args.dihedral,
        threads=threads,
    )
    work = _Run(args)
    t0 = time.perf_counter()
    pairs = matched = nqueries = 0
    outputs = contextlib.ExitStack()
    with outputs:  # opened first: a bad --out fails before the work, an error leaves nothing
        out: IO[str] | None = None
        if args.queries:
            out = outputs.enter_context(common.maybe_output(args.out))
        seg_out = outputs.enter_context(common.maybe_output(args.segments))
        index = work.bank()
        if args.save_bank is not None:
            index.save(args.save_bank)
        t1 = time.perf_counter()
        if out is not None:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CSV_HEADER)
            seg_writer = csv.writer(seg_out, lineterminator="\n") if seg_out else None
            if seg_writer is not None:
                seg_writer.writerow(SEGMENTS_HEADER)
            for path, query in work.queries():
                try:
                    result = index.match(query, **options)
                except hm.HashmatchError as error:  # e.g. a dihedral stack of another shape
                    work.fail(path, error)
                    continue
                nqueries += 1
                pairs += len(result)
                matched += len(result.matches())
                if not args.all:
                    result = hm.VideoMatchResult(
                        tuple(result.matches()), result.nqueries, result.thresholds
                    )
                rows, segment_rows = _rows(path, result)
                writer.writerows(rows)
                if seg_writer is not None:
                    seg_writer.writerows(segment_rows)
    t2 = time.perf_counter()
    for _, reason in work.failures[:MAX_FAILURES_SHOWN]:
        print(f"hashmatch: skipped {reason}", file=sys.stderr)
    if len(work.failures) > MAX_FAILURES_SHOWN:
        print(f"  ... and {len(work.failures) - MAX_FAILURES_SHOWN:,} more", file=sys.stderr)
    print(
        f"hashmatch: {nqueries:,} query videos x {len(index):,} banked videos"
        f" ({index.frames:,} frames): {matched:,} pairs matched of {pairs:,} with a matching"
        f" frame; bank {t1 - t0:.2f} s, match {t2 - t1:.2f} s; {len(work.failures):,} files"
        " skipped",
        file=sys.stderr,
    )
    return 1 if work.failures else 0


def _percentage(text: str) -> float:
    """An argparse type: a percentage from 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {text}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``video-match`` command's options."""
    command = commands.add_parser(
        "video-match",
        help="match query videos (vPDQ) against banked videos: percentages and segments",
        fromfile_prefix_chars="@",
        description="Match query videos against banked videos (vPDQ: one PDQ hash per sampled"
        " frame) and write one CSV row per (query, banked video) pair whose verdict is a match"
        " (--all: every pair with a matching frame): query, banked, matched, query_pct,"
        " compared_pct (python-threatexchange's percentages), query_matched, query_frames,"
        " compared_matched, compared_frames, longest (seconds), segments ('q0-q1@b0-b1;...':"
        " query seconds q0-q1 show banked seconds b0-b1), offsets, common_frames, transform."
        " BANK and --queries take vPDQ files in any form (Meta's text lines, pytx JSON list"
        " or dict; gzip or not) or directories of them (names ending in .txt, .json, .vpdq,"
        " optionally .gz); BANK also takes a bank saved by --save-bank; '@FILE' reads"
        " arguments from FILE, one a line. A file that cannot be read is reported on stderr"
        " (path:line and why) and skipped. Exit code 0: every file read; 1: some skipped;"
        " 2: bad arguments or no banked video.",
    )
    command.add_argument(
        "bank", nargs="+", metavar="BANK", help="vPDQ files, directories, or a saved bank"
    )
    command.add_argument(
        "--queries",
        nargs="+",
        metavar="QUERY",
        default=[],
        help="query vPDQ files or directories (media files with --hash-videos)",
    )
    command.add_argument(
        "--out", default="-", metavar="FILE", help="CSV output, atomic (default '-': stdout)"
    )
    command.add_argument(
        "--segments", default=None, metavar="FILE", help="also write one CSV row per segment"
    )
    command.add_argument(
        "--save-bank", default=None, metavar="FILE", help="save the bank built, for reuse"
    )
    command.add_argument(
        "--all", action="store_true", help="also write pairs whose verdict is not a match"
    )
    command.add_argument(
        "--min-quality",
        type=common.int_at_least(0),
        default=None,
        metavar="Q",
        help="frames of lower PDQ quality are left out, both sides (default 50)",
    )
    command.add_argument(
        "--min-query-pct",
        type=_percentage,
        default=DEFAULT_MIN_QUERY_PCT,
        metavar="P",
        help="verdict: at least P%% of the query's frames found in the banked video (default 0;"
        " python-threatexchange's verdict is --min-query-pct 80 --min-compared-pct 0)",
    )
    command.add_argument(
        "--min-compared-pct",
        type=_percentage,
        default=DEFAULT_MIN_COMPARED_PCT,
        metavar="P",
        help="verdict: at least P%% of the banked video's frames found in the query (default"
        " 80: catches a banked clip inside a longer upload)",
    )
    command.add_argument(
        "--min-duration",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="verdict: also an aligned segment at least S seconds long (default 0)",
    )
    command.add_argument(
        "--semantics",
        choices=("pytx", "cpp"),
        default="pytx",
        help="pytx (default): python-threatexchange's percentages; cpp: Meta's C++"
        " matchTwoHashBrute (no deduplication, distance < D)",
    )
    command.add_argument(
        "--hash-videos",
        action="store_true",
        help="QUERY files are videos, hashed with vPDQ (needs hashmatch[media])",
    )
    command.add_argument(
        "--seconds-per-hash",
        type=float,
        default=1.0,
        metavar="S",
        help="--hash-videos: seconds between hashed frames (default 1, vPDQ's)",
    )
    command.add_argument(
        "--dihedral",
        action="store_true",
        help="--hash-videos: also match rotated and mirrored uploads",
    )
    command.add_argument(
        "--crop-borders",
        action="store_true",
        help="--hash-videos: hash with and without uniform bars; the better one counts",
    )
    common.add_common(command, "31, PDQ's; with --semantics cpp, distance < D")
    command.set_defaults(handler=run)
