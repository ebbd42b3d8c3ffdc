"""hashmatch: exact Hamming-distance matching of perceptual media hashes at hardware speed.

Parse hashes (:func:`from_hex`), compute distances (:func:`hamming`, :func:`cdist`) and search
millions of them exactly (:class:`FlatIndex`). The hot loops are C++ SIMD kernels chosen at
import for this CPU (:func:`cpu_features`).
"""

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
from hashmatch.dihedral import TRANSFORMS
from hashmatch.distance import cdist, hamming
from hashmatch.errors import (
    ChecksumError,
    EntryNotFound,
    HashFormatError,
    HashmatchError,
    HashTypeMismatch,
    IndexFormatError,
    IntegrityError,
    InvalidArgument,
    InvalidType,
    MediaError,
    PartitionUnavailable,
)
from hashmatch.formats.vpdq import read_vpdq, write_vpdq
from hashmatch.frames import VideoFrames
from hashmatch.hashtypes import HASH_TYPES, HashType, hash_type
from hashmatch.indexes import (
    DihedralRangeSearchResult,
    DihedralSearchResult,
    FlatIndex,
    IndexPlan,
    MIHIndex,
    RangeSearchResult,
    SearchResult,
    plan_index,
)
from hashmatch.io import load, register_kind, save
from hashmatch.lists import ApplyReport, Entry, HashList
from hashmatch.matching import Matcher
from hashmatch.media import (
    HashedImage,
    HashedImages,
    HashedVideo,
    HashFailure,
    hash_image,
    hash_video,
)
from hashmatch.results import GroupedMatchResult, GroupMatch, Match, MatchResult
from hashmatch.videos import Segment, VideoEntry, VideoIndex, VideoMatch, VideoMatchResult

__version__ = "0.1.0"

__all__ = [
    "HASH_TYPES",
    "TRANSFORMS",
    "ApplyReport",
    "ChecksumError",
    "Clusters",
    "DihedralRangeSearchResult",
    "DihedralSearchResult",
    "Entry",
    "EntryNotFound",
    "FlatIndex",
    "GroupMatch",
    "GroupedMatchResult",
    "HashFailure",
    "HashFormatError",
    "HashList",
    "HashType",
    "HashTypeMismatch",
    "HashedImage",
    "HashedImages",
    "HashedVideo",
    "HashmatchError",
    "IndexFormatError",
    "IndexPlan",
    "IntegrityError",
    "InvalidArgument",
    "InvalidType",
    "JoinPlan",
    "MIHIndex",
    "Match",
    "MatchResult",
    "Matcher",
    "MediaError",
    "Pairs",
    "PartitionUnavailable",
    "RangeSearchResult",
    "SearchResult",
    "Segment",
    "VideoEntry",
    "VideoFrames",
    "VideoIndex",
    "VideoMatch",
    "VideoMatchResult",
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
    "hash_image",
    "hash_type",
    "hash_video",
    "load",
    "plan_index",
    "plan_join",
    "read_vpdq",
    "save",
    "set_kernel",
    "to_bits",
    "to_hex",
    "write_vpdq",
]

# Kinds of saved file beyond the built-in indexes: registered here, where every module is
# imported, so no module registers itself as a side effect of being imported.
register_kind("HashList", HashList._from_sections)
register_kind("VideoIndex", VideoIndex._from_sections)

_check_forced_kernel()
