"""Hash lists beyond one machine: partitions served by Ray actors (``hashmatch[ray]``).

- :func:`partition`, :func:`write_partitions`, :func:`build_partitions`,
  :func:`build_video_partitions`: split a list or a video index (or a big hash-list file, a
  stream of banked videos) into disjoint partition files by a hash of each entry's id;
- :class:`ShardedMatcher`: a router that fans each batch of queries out to one replica of
  every partition (Ray actors that memory-map their file) and merges the answers into the
  :class:`~hashmatch.MatchResult` a single :class:`~hashmatch.Matcher` would give;
- :class:`ShardedVideoMatcher`: the same for the partitions of a :class:`~hashmatch.VideoIndex`
  (:func:`write_partitions` splits one by video id): the :class:`~hashmatch.VideoMatchResult`
  of the whole index.

Importing this module does not import Ray; creating a router does.
"""

from __future__ import annotations

from hashmatch.distributed.partitioning import (
    build_partitions,
    build_video_partitions,
    partition,
    partition_of,
    partition_paths,
    write_partitions,
)
from hashmatch.distributed.serving import (
    PartitionReplica,
    PartitionRouter,
    ShardedMatcher,
    ShardedMatchResult,
)
from hashmatch.distributed.videos import ShardedVideoMatcher, ShardedVideoMatchResult

__all__ = [
    "PartitionReplica",
    "PartitionRouter",
    "ShardedMatchResult",
    "ShardedMatcher",
    "ShardedVideoMatchResult",
    "ShardedVideoMatcher",
    "build_partitions",
    "build_video_partitions",
    "partition",
    "partition_of",
    "partition_paths",
    "write_partitions",
]
