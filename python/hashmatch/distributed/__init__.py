"""Hash lists beyond one machine: partitions served by Ray actors (``hashmatch[ray]``).

- :func:`partition`, :func:`write_partitions`, :func:`build_partitions`: split a list (or a
  big hash-list file, streamed) into disjoint partition files by a hash of each entry's id;
- :class:`ShardedMatcher`: a router that fans each batch of queries out to one replica of
  every partition (Ray actors that memory-map their file) and merges the answers into the
  :class:`~hashmatch.MatchResult` a single :class:`~hashmatch.Matcher` would give.

Importing this module does not import Ray; creating a :class:`ShardedMatcher` does.
"""

from __future__ import annotations

from hashmatch.distributed.partitioning import (
    build_partitions,
    partition,
    partition_of,
    partition_paths,
    write_partitions,
)
from hashmatch.distributed.serving import PartitionReplica, ShardedMatcher, ShardedMatchResult

__all__ = [
    "PartitionReplica",
    "ShardedMatchResult",
    "ShardedMatcher",
    "build_partitions",
    "partition",
    "partition_of",
    "partition_paths",
    "write_partitions",
]
