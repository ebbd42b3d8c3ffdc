"""Types of the compiled boundary (hashmatch/_core.pyx). Private: use the hashmatch package."""

from typing import Any

import numpy as np
import numpy.typing as npt

def cpu_features() -> dict[str, Any]: ...
def available_kernels() -> list[str]: ...
def active_kernel() -> str: ...
def set_kernel(name: str) -> None: ...
def hamming_rows(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], nthreads: int
) -> npt.NDArray[np.uint16]: ...
def cdist(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], nthreads: int
) -> npt.NDArray[np.uint16]: ...
def choose_substrings(bits: int, n: int, radius: int) -> int: ...
def mih_cost(
    bits: int, substrings: int, n: int, radius: int, variants: int = 1
) -> tuple[float, float, float, float]: ...

class IndexCore:
    def __init__(
        self,
        kind: str,
        bits: int,
        substrings: int = 0,
        max_distance: int = 0,
        saved: dict[str, Any] | None = None,
        check_rows: bool = True,
    ) -> None: ...
    def export(self) -> dict[str, Any]: ...
    def compact(self) -> None: ...
    @property
    def bits(self) -> int: ...
    @property
    def ntotal(self) -> int: ...
    @property
    def next_id(self) -> int: ...
    @property
    def substrings(self) -> int: ...
    def memory_bytes(self) -> int: ...
    def remove(self, ids: npt.NDArray[np.int64]) -> int: ...
    def contents(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...
    def add(self, codes: npt.NDArray[np.uint8], ids: npt.NDArray[np.int64]) -> None: ...
    def search(
        self, queries: npt.NDArray[np.uint8], k: int, nthreads: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
    def range_search(
        self, queries: npt.NDArray[np.uint8], max_distance: int, nthreads: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
    def search_variants(
        self, queries: npt.NDArray[np.uint8], k: int, nthreads: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...
    def range_search_variants(
        self, queries: npt.NDArray[np.uint8], max_distance: int, nthreads: int
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.uint8]
    ]: ...

def plan_join(
    bits: int,
    na: int,
    nb: int,
    radius: int,
    self_join: bool,
    substrings: int = -1,
    differ: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]: ...

class JoinCore:
    def __init__(
        self,
        a: npt.NDArray[np.uint8],
        b: npt.NDArray[np.uint8] | None,
        radius: int,
        substrings: int = -1,
        unit_rows: int = 0,
        differ: npt.NDArray[np.float64] | None = None,
    ) -> None: ...
    @property
    def units(self) -> int: ...
    @property
    def plan(self) -> dict[str, Any]: ...
    def run(
        self, begin: int, end: int, nthreads: int
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.uint16]]: ...

def merge_pairs(
    parts: list[tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.uint16]]],
    ni: int,
    nthreads: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...
def connected_components(
    n: int,
    i: npt.NDArray[np.int64],
    j: npt.NDArray[np.int64],
    d: npt.NDArray[np.int32],
    max_distance: int,
) -> tuple[npt.NDArray[np.int64], int]: ...
def threshold_curve(
    n: int,
    i: npt.NDArray[np.int64],
    j: npt.NDArray[np.int64],
    d: npt.NDArray[np.int32],
    max_distance: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def medoids(
    codes: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int64],
    nclusters: int,
    max_exact: int,
    nthreads: int,
) -> npt.NDArray[np.int64]: ...
