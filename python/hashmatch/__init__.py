"""hashmatch: exact Hamming-distance matching of perceptual media hashes at hardware speed.

Parse hashes (:func:`from_hex`), compute distances (:func:`hamming`, :func:`cdist`) and search
millions of them exactly (:class:`FlatIndex`). The hot loops are C++ SIMD kernels chosen at
import for this CPU (:func:`cpu_features`).
"""

from __future__ import annotations

from hashmatch import datasets
from hashmatch.codes import from_bits, from_hex, to_bits, to_hex
from hashmatch.cpu import _check_forced_kernel, available_kernels, cpu_features, set_kernel
from hashmatch.dedup import (
    Clusters,
    JoinPlan,
    Pairs,
    cluster,
    find_duplicates,
    find_matches,
    plan_join,
)
from hashmatch.distance import cdist, hamming
from hashmatch.errors import (
    ChecksumError,
    EntryNotFound,
    HashFormatError,
    HashmatchError,
    HashTypeMismatch,
    IndexFormatError,
    InvalidArgument,
    InvalidType,
)
from hashmatch.indexes import (
    FlatIndex,
    IndexPlan,
    MIHIndex,
    RangeSearchResult,
    SearchResult,
    plan_index,
)
from hashmatch.io import load, save
from hashmatch.lists import HASH_TYPES, Entry, HashList
from hashmatch.matching import Match, Matcher, MatchResult

__version__ = "0.1.0"

__all__ = [
    "HASH_TYPES",
    "ChecksumError",
    "Clusters",
    "Entry",
    "EntryNotFound",
    "FlatIndex",
    "HashFormatError",
    "HashList",
    "HashTypeMismatch",
    "HashmatchError",
    "IndexFormatError",
    "IndexPlan",
    "InvalidArgument",
    "InvalidType",
    "JoinPlan",
    "MIHIndex",
    "Match",
    "MatchResult",
    "Matcher",
    "Pairs",
    "RangeSearchResult",
    "SearchResult",
    "__version__",
    "available_kernels",
    "cdist",
    "cluster",
    "cpu_features",
    "datasets",
    "find_duplicates",
    "find_matches",
    "from_bits",
    "from_hex",
    "hamming",
    "load",
    "plan_index",
    "plan_join",
    "save",
    "set_kernel",
    "to_bits",
    "to_hex",
]

_check_forced_kernel()
