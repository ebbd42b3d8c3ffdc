"""Tests of the ``hashmatch`` command itself: info, usage errors, --version, the entry points."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from cli_helpers import MODULE, bad_run, report_line, run
from hashmatch.cli import main

import hashmatch as hm


def test_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"hashmatch {hm.__version__}"
    assert report_line(out, "kernel ").split()[1] == hm.cpu_features()["kernel"]
    assert "available_kernels" in out and "threads" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--version"], 0, f"hashmatch {hm.__version__}"),
        ([], 2, "required: COMMAND"),
        (["demo", "--n", "0"], 2, "argument --n: expected an integer >= 1, got 0"),
        (["demo", "--threads", "two"], 2, "argument --threads: expected an integer, got 'two'"),
        (["match", "only-one-file"], 2, "required: QUERIES"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_usage(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(args) == code
    out, err = capsys.readouterr()
    assert message in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--bits", "64", "--max-distance", "65"],
            "--max-distance: expected an integer in [0, 64], got 65",
        ),
        (["--max-distance", "-1"], "--max-distance: expected an integer in [0, 256], got -1"),
        (["--bits", "12"], "--bits: expected a multiple of 8 in [8, 4096], got 12"),
        (["--threads", "2000"], "threads: expected None or an integer in [1, 1024], got 2000"),
    ],
)
def test_bad_demo_argument_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    err = bad_run(["demo", "--n", "10", *args], capsys)
    assert err == f"hashmatch: error: {message}\n"


def console_script() -> list[str]:
    path = shutil.which("hashmatch")
    if path is None:
        pytest.skip("the hashmatch console script is not on PATH")
    return [path]


@pytest.mark.parametrize("exe", [console_script, lambda: MODULE])
def test_version_from_the_shell(exe: Callable[[], list[str]]) -> None:
    proc = run(["--version"], exe())
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"hashmatch {hm.__version__}"
