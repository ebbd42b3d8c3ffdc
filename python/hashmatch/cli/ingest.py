"""``hashmatch import LIST FILE...``: create or refresh a saved hash list from hash files or
exchange feed files, each applied as one feed batch (:meth:`hashmatch.HashList.apply`).

A plain hash file (hex, CSV, TSV, as :func:`hashmatch.formats.read_hashes` reads them) is a
batch of upserts keyed by its key column; a row without a key is keyed by its hash (lowercase
hex), so importing the same file again changes nothing. With ``--dialect``, a file is an
exchange's feed, read by ``hashmatch.formats.read_feed`` into a
:class:`~hashmatch.formats.FeedBatch` (upserts, deletes and the feed's checkpoint).

Every file is applied in turn and the list is saved once, atomically, at the end: an error
leaves the saved list as it was. Exit codes: 0 every record applied, 1 some records were
quarantined or rows skipped (lenient mode: the others are applied), 2 an error (with
``--strict``, the first bad record; nothing is saved).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys

import numpy as np

import hashmatch as hm
import hashmatch.formats as formats
from hashmatch.formats import FeedBatch, HashRecords, Rejected, read_hashes
from hashmatch.hygiene import CUSTOMARY_MIN_QUALITY

from .common import FORMATS, MAX_REASONS


def read_hash_batch(
    path: str, *, bits: int, format: str = "auto", strict: bool = False
) -> FeedBatch:
    """A plain hash file as a feed batch: every row an upsert keyed by its key (or its hash
    when it has none); bad rows are the batch's ``rejected`` (``strict``: the first raises)."""
    with read_hashes(path, format=format, bits=bits, skip_invalid=not strict) as reader:
        chunks = list(reader)
    rejected = tuple(
        Rejected(f"{reader.path}:{line}", None, why.removeprefix(f"{reader.path}:{line}: "))
        for line, why in reader.skipped
    )
    if not chunks:
        return FeedBatch(HashRecords(np.zeros((0, bits // 8), np.uint8)), rejected=rejected)
    records = chunks[0] if len(chunks) == 1 else HashRecords.concat(chunks)
    given = records.keys or [None] * len(records)
    keys: list[str | None] = [
        k if k else bytes(code).hex() for k, code in zip(given, records.codes, strict=True)
    ]
    upserts = dataclasses.replace(records, keys=keys)
    return FeedBatch(upserts, rejected=rejected)


def read_feed_batch(path: str, dialect: str, *, strict: bool) -> FeedBatch:
    """An exchange feed file as a batch, by ``hashmatch.formats.read_feed`` (when this
    hashmatch has it)."""
    read_feed = getattr(formats, "read_feed", None)
    if read_feed is None:
        raise hm.InvalidArgument(
            f"--dialect: this hashmatch reads no feed dialects (got {dialect!r}); import plain"
            " hash files without --dialect"
        )
    options = {"strict": strict} if "strict" in inspect.signature(read_feed).parameters else {}
    batch = read_feed(path, dialect=dialect, **options)
    if not isinstance(batch, FeedBatch):
        raise hm.InvalidType(f"read_feed: expected a FeedBatch, got {type(batch).__name__}")
    return batch


def min_quality(text: str) -> int | str | None:
    """``--min-quality``: ``auto``, ``none`` or an integer 0-100."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', 'none' or an integer 0-100, got {text!r}"
        ) from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected an integer 0-100, got {value}")
    return value


def open_list(path: str, hash_type: str | None) -> hm.HashList:
    """The saved list at ``path``, or a new one of ``hash_type`` (default PDQ)."""
    if not os.path.exists(path):
        return hm.HashList(hash_type or "pdq")
    hash_list = hm.HashList.load(path)
    if hash_type is not None and hm.hash_type(hash_type).name != hash_list.hash_type:
        raise hm.HashTypeMismatch(
            f"--hash-type: {path} is a {hash_list.hash_type} list, got {hash_type!r}"
        )
    return hash_list


def run(args: argparse.Namespace) -> int:
    """Run ``hashmatch import``."""
    hash_list = open_list(args.list, args.hash_type)
    quarantined: list[Rejected] = []
    for path in args.files:
        batch = (
            read_feed_batch(path, args.dialect, strict=args.strict)
            if args.dialect is not None
            else read_hash_batch(path, bits=hash_list.bits, format=args.format, strict=args.strict)
        )
        report = hash_list.apply(
            batch, strict=args.strict, min_quality=args.min_quality, where=path
        )
        quarantined += report.quarantined
        print(
            f"{path}: {report.added:,} added, {report.updated:,} updated, {report.removed:,}"
            f" removed, {report.unchanged:,} unchanged, {len(report.quarantined):,} quarantined"
        )
    hash_list.save(args.list)
    print(
        f"{args.list}: {len(hash_list):,} entries, {len(hash_list.quarantined):,} quarantined,"
        f" checkpoint {hash_list.checkpoint or '-'}"
    )
    if quarantined:
        print(f"hashmatch: quarantined {len(quarantined):,} records:", file=sys.stderr)
        for record in quarantined[:MAX_REASONS]:
            key = "" if record.key is None else f" (key {record.key})"
            print(f"  {record.where}{key}: {record.reason}", file=sys.stderr)
        if len(quarantined) > MAX_REASONS:
            print(f"  ... and {len(quarantined) - MAX_REASONS:,} more", file=sys.stderr)
    return 1 if quarantined else 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``import`` command's options."""
    command = commands.add_parser(
        "import",
        help="create or refresh a saved hash list from hash files or exchange feeds",
        description="Apply each FILE to the hash list saved at LIST (created if missing) as"
        " one feed batch, then save LIST atomically. A plain hash file (hex, CSV, TSV) upserts"
        " each row by its key column (rows without a key by their hash): a new key adds an"
        " entry, a changed one updates it, an identical one changes nothing. With --dialect,"
        " FILE is an exchange feed (created, updated and deleted records, and a checkpoint)."
        " Degenerate hashes (all zeros, all ones, wrong length, PDQ quality below"
        f" {CUSTOMARY_MIN_QUALITY}) are quarantined, never indexed. Exit 0: all applied;"
        " 1: some records quarantined or skipped; 2: error (nothing saved).",
    )
    command.add_argument("list", metavar="LIST", help="the saved hash list (e.g. bank.hm)")
    command.add_argument("files", metavar="FILE", nargs="+", help="hash or feed files")
    command.add_argument(
        "--dialect",
        default=None,
        metavar="NAME",
        help="read FILEs as this exchange's feed files (default: plain hash files)",
    )
    command.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="plain hash file format (default auto: by extension, else by the first data line)",
    )
    command.add_argument(
        "--hash-type",
        default=None,
        metavar="TYPE",
        help="hash type of a new LIST (default pdq); checked against an existing one",
    )
    command.add_argument(
        "--min-quality",
        type=min_quality,
        default="auto",
        metavar="Q",
        help=f"quarantine hashes of known quality below Q: auto ({CUSTOMARY_MIN_QUALITY} for"
        " PDQ, none for types without a quality), none, or 0-100",
    )
    command.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad row or record (naming file:line and why); save nothing",
    )
    command.set_defaults(handler=run)
