// Clustering of near-duplicates from the pairs a join found (join.h): single-linkage clusters
// are the connected components of the graph whose edges are the pairs within a threshold.
// Edges arrive as the caller's (i int64, j int64, distance int32) arrays and are read in place,
// never copied: a skewed collection can have hundreds of millions of pairs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hashmatch/parallel_for.h"

namespace hashmatch {

/// Connected components of the graph on n nodes with the edges (i[e], j[e]) whose distance
/// d[e] <= max_distance (union-find with path halving and union by size; the edge arrays are
/// read in place, never copied). labels[r] numbers components 0, 1, ... in order of their
/// smallest node. Returns the number of components.
/// @throws std::invalid_argument if an edge names a node outside [0, n)
size_t connected_components(size_t n, const int64_t* i, const int64_t* j, const int32_t* d, size_t nedges,
                            int32_t max_distance, int64_t* labels);

/// How clustering changes with the threshold: for every t in [0, max_distance], with the edges
/// of distance <= t, clusters[t] = components, largest[t] = size of the largest one, and
/// clustered[t] = nodes in components of two or more.
void threshold_curve(size_t n, const int64_t* i, const int64_t* j, const int32_t* d, size_t nedges,
                     uint32_t max_distance, int64_t* clusters, int64_t* largest, int64_t* clustered);

/// The medoid of every cluster: the member with the smallest sum of distances to the other
/// members (ties: the lowest row). Exact for clusters up to `max_exact` members; for larger
/// ones the medoid among max_exact members spread evenly over the cluster, each scored against
/// all members.
/// @param codes   n rows of nbytes bytes
/// @param labels  n labels in [0, nclusters)
/// @param out     nclusters rows
void medoids(const uint8_t* codes, size_t n, size_t nbytes, const int64_t* labels, size_t nclusters,
             size_t max_exact, int64_t* out, size_t nthreads, const Interrupt& interrupt = {});

}  // namespace hashmatch
