"""The ``hashmatch`` command: ``demo``, ``hash``, ``match``, ``video-match``, ``dedup``,
``import`` and ``info``, one module each.

``hashmatch demo`` searches a synthetic PDQ-like corpus with planted near-duplicates and checks
that every one is found; ``hashmatch hash PATH...`` hashes image or video files into a CSV hash
file (:mod:`hashmatch.cli.media`); ``hashmatch import LIST FILE...`` creates or refreshes a saved
hash list from hash files or exchange feeds (:mod:`hashmatch.cli.ingest`); ``hashmatch match LIST
QUERIES`` writes every (query, list) pair of hashes within a Hamming distance as CSV; ``hashmatch
video-match BANK... --queries QUERY...`` matches videos (vPDQ) with percentages and time segments
(:mod:`hashmatch.cli.video_match`); ``hashmatch dedup FILE`` finds every pair of near-duplicate
hashes in one file and groups them into clusters (:func:`hashmatch.find_duplicates`,
:func:`hashmatch.cluster`); ``hashmatch info`` reports the kernel in use. Every input is read by
:mod:`hashmatch.formats`, every output written by :func:`hashmatch.files.atomic_text` or
:func:`hashmatch.formats.write_hashes`.

Exit codes: 0 success, 1 a demo check failed, some file could not be hashed or read, or ``import``
quarantined some records, 2 bad arguments or input, 130 interrupted, 141 stdout closed early (e.g.
``hashmatch match ... | head``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import hashmatch as hm

from . import dedup, demo, info, ingest, match, media, video_match

__all__ = ["main"]

COMMANDS = (demo, media, match, video_match, dedup, ingest, info)
"""The command modules, in the order ``--help`` lists them; each has ``add_parser``."""


def _parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hashmatch`` command."""
    parser = argparse.ArgumentParser(
        prog="hashmatch",
        description="Exact Hamming-distance matching of perceptual hashes (PDQ, pHash).",
    )
    parser.add_argument("--version", action="version", version=f"hashmatch {hm.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _describe(error: BaseException) -> str:
    """A one-line description of an error; ``file: reason`` for OS errors."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so a write to a closed pipe at exit raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Run the ``hashmatch`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code: 0 success, 1 a demo check failed or some file could not be hashed, 2 usage
        or input error, 130 interrupted, 141 stdout closed early (e.g. ``| head``).
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("hashmatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except (hm.HashmatchError, OSError) as error:
        print(f"hashmatch: error: {_describe(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
