"""The examples in the public docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "hashmatch.codes",
    "hashmatch.cpu",
    "hashmatch.datasets",
    "hashmatch.formats",
    "hashmatch.formats.vpdq",
    "hashmatch.frames",
    "hashmatch.distance",
    "hashmatch.indexes",
    "hashmatch.io",
    "hashmatch.backends",
    "hashmatch.lists",
    "hashmatch.hygiene",
    "hashmatch.matching",
    "hashmatch.dedup",
    "hashmatch.distributed.partitioning",
    "hashmatch.distributed.serving",
    "hashmatch.distributed.joins",
    "hashmatch.plotting",
    "hashmatch.media.borders",
    "hashmatch.media.images",
    "hashmatch.media.video",
    "hashmatch._backend",
    "hashmatch.results",
    "hashmatch.videos",
    "hashmatch.cli.video_match",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    # Examples may use ``hm`` without importing it, as numpy's do with ``np``.
    result = doctest.testmod(
        module,
        extraglobs={"hm": importlib.import_module("hashmatch")},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
