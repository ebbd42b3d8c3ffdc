"""``hashmatch info``: the version, CPU features, kernel in use and default thread count."""

from __future__ import annotations

import argparse

import hashmatch as hm
from hashmatch._validation import check_threads


def run(args: argparse.Namespace) -> int:
    """Run ``hashmatch info``."""
    print(f"hashmatch {hm.__version__}")
    for key, value in hm.cpu_features().items():
        text = ", ".join(value) if isinstance(value, list) else str(value)
        print(f"{key:<18} {text}")
    print(f"{'threads':<18} {check_threads(None)}")
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``info`` command."""
    info = commands.add_parser("info", help="show the version, CPU features and kernel in use")
    info.set_defaults(handler=run)
