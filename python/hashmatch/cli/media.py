"""``hashmatch hash PATH...``: hash image or video files (directories walked) into a hash file
that every other command reads (:func:`hashmatch.hash_image`, :func:`hashmatch.hash_video`).

The output is CSV written by :func:`hashmatch.formats.write_hashes`, atomically, with columns
``hash, key, source, quality`` and, when they apply, ``frame, timestamp, transform``:

- ``key`` names the row uniquely: the file's path; for a video frame ``path#t=12.000``
  (W3C media-fragment time, seconds); for a dihedral variant ``path#transform=rotate_90``
  (both: ``path#t=12.000&transform=rotate_90``). ``hashmatch match`` reports it as the id,
  ``hashmatch dedup`` as the id of each hash;
- ``source`` is the file's path (the same on every row of one file);
- ``quality`` is PDQ's (empty for the 64-bit kinds);
- ``frame`` and ``timestamp`` (``--video``): vPDQ's frame number and seconds;
- ``transform`` (``--dihedral``): the variant, a name of :data:`hashmatch.TRANSFORMS`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator

import numpy as np

import hashmatch as hm
from hashmatch._validation import check_threads
from hashmatch.dihedral import TRANSFORMS
from hashmatch.formats import HashRecords, write_hashes
from hashmatch.formats.names import format_of_name
from hashmatch.media import IMAGE_KINDS
from hashmatch.media._deps import require
from hashmatch.progress import bar

from . import common

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .flv .mpg .mpeg .ts .m2ts .3gp .ogv".split()
)
"""Files a directory walk takes with ``--video`` (named files are always tried)."""
IMAGES_PER_CALL = 16  # per thread and hash_image call: the bar moves, memory stays bounded
MAX_FAILURES_SHOWN = 20


def image_extensions() -> frozenset[str]:
    """Files a directory walk takes without ``--video``: every extension Pillow opens."""
    pil = require("PIL.Image", for_="hashmatch hash")
    pil.init()
    return frozenset(ext for ext, name in pil.registered_extensions().items() if name in pil.OPEN)


def walk(paths: list[str], extensions: frozenset[str]) -> Iterator[str]:
    """The files named, and those under the directories named (recursively, sorted, hidden
    names skipped) whose name ends with one of ``extensions`` (any case: ``.mp4``,
    ``.txt.gz``)."""
    endings = tuple(extensions)
    for path in paths:
        if not os.path.isdir(path):
            yield path  # a missing or unreadable one is reported as a failure
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and name.lower().endswith(endings):
                    yield os.path.join(root, name)


def _key(path: str, timestamp: float | None, transform: str | None) -> str:
    parts = []
    if timestamp is not None:
        parts.append(f"t={timestamp:.3f}")
    if transform is not None:
        parts.append(f"transform={transform}")
    return f"{path}#{'&'.join(parts)}" if parts else path


class _Run:
    """One ``hashmatch hash`` run: hashes files into HashRecords chunks, counts failures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.kind: str = args.kind
        self.video: bool = args.video
        self.dihedral: bool = args.dihedral
        self.dihedral_method: str = args.dihedral_method
        self.crop_borders: bool = args.crop_borders
        self.seconds: float = args.seconds_per_hash
        self.threads = check_threads(args.threads)
        self.progress: bool = args.progress
        self.files = 0
        self.rows = 0
        self.failures: list[tuple[str, str]] = []

    def chunks(self, files: list[str]) -> Iterator[HashRecords]:
        """The rows of every file that hashes, in file order, a chunk at a time."""
        unit = "video" if self.video else "image"
        with bar(len(files), "hashing", unit, enabled=self.progress) as shown:
            if self.video:
                for path in files:
                    records = self._video(path)
                    shown.update(1)
                    if records is not None:
                        yield records
                return
            step = IMAGES_PER_CALL * self.threads
            for start in range(0, len(files), step):
                batch = files[start : start + step]
                records = self._images(batch)
                shown.update(len(batch))
                if records is not None:
                    yield records

    def _images(self, paths: list[str]) -> HashRecords | None:
        result = hm.hash_image(
            paths,
            kind=self.kind,
            dihedral=self.dihedral,
            dihedral_method=self.dihedral_method,
            crop_borders=self.crop_borders,
            threads=self.threads,
        )
        self.failures.extend((failure.source, failure.reason) for failure in result.failures)
        self.files += len(result)
        if not len(result):
            return None
        names = [paths[i] for i in result.items.tolist()]
        return self._records(result.codes, result.qualities, names, None, None)

    def _video(self, path: str) -> HashRecords | None:
        try:
            video = hm.hash_video(
                path,
                seconds_per_hash=self.seconds,
                dihedral=self.dihedral,
                crop_borders=self.crop_borders,
            )
        except (hm.MediaError, OSError) as error:
            reason = error.reason if isinstance(error, hm.MediaError) else error.strerror
            self.failures.append((path, reason or str(error)))
            return None
        self.files += 1
        if not len(video):
            self.failures.append((path, "no frame decoded"))
            return None
        names = [path] * len(video)
        return self._records(video.codes, video.qualities, names, video.frames, video.timestamps)

    def _records(
        self,
        codes: np.ndarray,
        qualities: np.ndarray,
        paths: list[str],
        frames: np.ndarray | None,
        timestamps: np.ndarray | None,
    ) -> HashRecords:
        """One row per hash (per variant with --dihedral), keyed uniquely."""
        variants = TRANSFORMS if self.dihedral else (None,)
        repeat = len(variants)
        keys: list[str | None] = []
        extras: list[dict[str, str]] = []
        times = timestamps.tolist() if timestamps is not None else [None] * len(paths)
        numbers = frames.tolist() if frames is not None else [None] * len(paths)
        for path, frame, seconds in zip(paths, numbers, times, strict=True):
            for transform in variants:
                keys.append(_key(path, seconds, transform))
                extra = {}
                if frame is not None:
                    extra = {"frame": str(frame), "timestamp": f"{seconds:.3f}"}
                if transform is not None:
                    extra["transform"] = transform
                extras.append(extra)
        self.rows += len(keys)
        has_quality = self.kind == "pdq"
        return HashRecords(
            codes.reshape(-1, codes.shape[-1]),
            keys=keys,
            sources=[path for path in paths for _ in range(repeat)],
            qualities=np.repeat(qualities, repeat) if has_quality else None,
            extras=extras if (self.video or self.dihedral) else None,
        )


def run(args: argparse.Namespace) -> int:
    """Run ``hashmatch hash``; exit 1 when some file could not be hashed."""
    if not math.isfinite(args.seconds_per_hash) or args.seconds_per_hash < 0:
        raise hm.InvalidArgument(
            f"--seconds-per-hash: expected seconds >= 0, got {args.seconds_per_hash}"
        )
    if args.video and args.kind != "pdq":
        raise hm.InvalidArgument(f"--kind: videos are hashed with pdq (vPDQ), got {args.kind!r}")
    common.check_paths([], [("--out", args.out)])
    for path in args.paths:
        if os.path.realpath(path) == os.path.realpath(args.out):
            raise hm.InvalidArgument(f"--out: {args.out!r} is an input; choose another")
    t0 = time.perf_counter()
    extensions = VIDEO_EXTENSIONS if args.video else image_extensions()
    files = list(walk(args.paths, extensions))
    work = _Run(args)
    out_format = "tsv" if format_of_name(args.out) == "tsv" else "csv"
    write_hashes(args.out, work.chunks(files), format=out_format)
    for path, reason in work.failures[:MAX_FAILURES_SHOWN]:
        print(f"hashmatch: cannot hash {path}: {reason}", file=sys.stderr)
    if len(work.failures) > MAX_FAILURES_SHOWN:
        print(f"  ... and {len(work.failures) - MAX_FAILURES_SHOWN:,} more", file=sys.stderr)
    print(
        f"hashmatch: hashed {work.files:,} of {len(files):,} files ({work.rows:,} rows,"
        f" {args.kind}{', dihedral' if args.dihedral else ''}) in"
        f" {time.perf_counter() - t0:.2f} s; {len(work.failures):,} failed",
        file=sys.stderr,
    )
    return 1 if work.failures else 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``hash`` command's options."""
    command = commands.add_parser(
        "hash",
        help="hash image or video files into a CSV hash file",
        description="Hash images (or videos, with --video) into a CSV file that 'hashmatch"
        " match', 'hashmatch dedup' and HashList.import_file read: columns hash, key"
        " (the path; path#t=SECONDS for a video frame; path#transform=NAME for a --dihedral"
        " variant), source (the path), quality (PDQ), and frame, timestamp (--video) and"
        " transform (--dihedral). Directories are walked recursively (hidden names skipped),"
        " taking the files whose extension Pillow opens (with --video: video extensions);"
        " files named are always tried. A file that cannot be hashed is reported on stderr"
        " with the reason and never stops the run. Exit code 0: every file hashed; 1: some"
        " could not be (the others are written); 2: bad arguments.",
    )
    command.add_argument("paths", nargs="+", metavar="PATH", help="files and directories")
    command.add_argument(
        "--kind",
        choices=IMAGE_KINDS,
        default="pdq",
        help="hash: pdq (default; 256 bits, quality) or the 64-bit phash, dhash, ahash, whash",
    )
    command.add_argument(
        "--dihedral",
        action="store_true",
        help="one row per rotation/mirror (8 per hash, in hashmatch.TRANSFORMS order)",
    )
    command.add_argument(
        "--dihedral-method",
        choices=("dct", "pixels"),
        default="dct",
        help="images with --dihedral: dct (default; Meta's 8 variants from one DCT) or pixels"
        " (hash the 8 transformed pictures: 8x the time, exact for rotated uploads)",
    )
    command.add_argument("--video", action="store_true", help="hash videos (vPDQ frames)")
    command.add_argument(
        "--seconds-per-hash",
        type=float,
        default=1.0,
        metavar="S",
        help="--video: seconds between hashed frames, vPDQ's rule (0: every frame; default 1)",
    )
    command.add_argument(
        "--crop-borders",
        action="store_true",
        help="hash what is inside uniform (letterbox/pillarbox) bars",
    )
    command.add_argument(
        "--out", required=True, metavar="FILE", help="CSV output (.csv, .csv.gz), atomic"
    )
    command.add_argument(
        "--threads",
        type=common.int_at_least(1),
        default=None,
        metavar="N",
        help="images hashed at once (default: every core)",
    )
    command.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it goes to stderr, and only when it is a terminal)",
    )
    command.set_defaults(handler=run)
