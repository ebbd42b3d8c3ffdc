"""Helpers shared by the command-line tests (tests/test_cli_*.py)."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hashmatch.cli import main

Codes = npt.NDArray[np.uint8]
# An editable install prints its rebuild check on stdout; keep subprocess output clean.
ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}
MODULE = [sys.executable, "-m", "hashmatch.cli"]


def pairwise(items: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``a, b, c, d`` as ``(a, b), (c, d)``."""
    it = iter(items)
    return zip(it, it, strict=True)


def hexes(codes: Codes) -> list[str]:
    return [bytes(row).hex() for row in codes]


def write(path: Path, lines: list[str], *, bom: bool = False, newline: str = "\n") -> Path:
    """Write ``lines`` as bytes, so the test controls BOM and line endings exactly."""
    data = "".join(line + newline for line in lines).encode()
    path.write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    return path


def bad_run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main``, expect exit 2 with a one-line error and no CSV; return the error."""
    assert main([*args, "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("hashmatch: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    return err


def read_csv(path: Path | str, header: list[str]) -> list[list[str]]:
    text = path if isinstance(path, str) else path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == header
    return rows[1:]


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    data = buffer.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def report_line(out: str, label: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(label))


def run(args: list[str], exe: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = (exe or MODULE) + args
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
