"""Replay the fuzz harnesses' seeds and every input they found a bug with (``fuzz/corpus/``,
``fuzz/regressions/<harness>/``) through the harnesses' ``check`` functions: no atheris
needed. An input whose bug is in code owned elsewhere and not fixed yet is listed in
:data:`KNOWN` and runs as a strict xfail."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hashmatch.formats import read_hashes

import hashmatch as hm

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
HARNESSES = ("formats", "from_hex", "load", "vpdq")

KNOWN: dict[str, str] = {}
"""``<harness>/<file>`` of a regression input whose bug is not fixed yet: why."""


def harness(name: str) -> ModuleType:
    """``fuzz/fuzz_<name>.py``, imported (its ``check``; atheris only in its ``__main__``)."""
    module = sys.modules.get(f"fuzz_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ / f"fuzz_{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def inputs(kind: str) -> list[Any]:
    found = []
    for name in HARNESSES:
        for path in sorted((FUZZ / kind / name).glob("*")):
            if path.is_file() and not path.name.startswith("."):
                key = f"{name}/{path.name}"
                marks = [pytest.mark.xfail(reason=KNOWN[key], strict=True)] if key in KNOWN else []
                found.append(pytest.param(name, path, id=key, marks=marks))
    return found


@pytest.mark.parametrize(("name", "path"), inputs("regressions"))
def test_regression_input(name: str, path: Path) -> None:
    harness(name).check(path.read_bytes())


@pytest.mark.parametrize(("name", "path"), inputs("corpus"))
def test_seed_input(name: str, path: Path) -> None:
    harness(name).check(path.read_bytes())


def test_every_harness_has_seeds_and_known_inputs_exist() -> None:
    for name in HARNESSES:
        assert list((FUZZ / "corpus" / name).glob("*")), name
    for key in KNOWN:
        assert (FUZZ / "regressions" / key).is_file(), key


def test_the_finding_replays_through_the_formats_harness() -> None:
    """The finding's file (a gzip CSV of some 250 bytes: a first row of 100,000 commas, then
    100 short rows; 16.6 s and 2.1 GiB with more rows) is refused at once by the column limit."""
    data = (FUZZ / "regressions" / "formats" / "wide-first-row").read_bytes()
    assert data[0] == 0 and len(data) < 400  # read as list.csv, gzip found by its content
    path = harness("formats").scratch("replay.csv", data[1:])
    with pytest.raises(hm.HashFormatError, match=r":1: expected at most 1,024 columns"):
        list(read_hashes(path))
