from __future__ import annotations

import os
from collections.abc import Iterator

# faiss bundles its own OpenMP; passive idle threads keep it from stealing a core from ours.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest
from hypothesis import settings

import hashmatch as hm

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

WIDTHS_BYTES = [1, 3, 7, 8, 9, 13, 16, 24, 31, 32, 33, 40, 64, 65, 128, 512]


@pytest.fixture(params=hm.available_kernels())
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once per kernel this CPU can run (emulated wider ISAs included)."""
    hm.set_kernel(request.param)
    try:
        yield request.param
    finally:
        hm.set_kernel("auto")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
