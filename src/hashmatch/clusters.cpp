#include "hashmatch/clusters.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hashmatch/bits.h"
#include "hashmatch/word_view.h"

namespace hashmatch {
namespace {

// Disjoint sets of nodes: path halving and union by size.
struct UnionFind {
  std::vector<uint32_t> parent;
  std::vector<uint32_t> size;
  explicit UnionFind(size_t n) : parent(n), size(n, 1) { std::iota(parent.begin(), parent.end(), 0u); }
  uint32_t find(uint32_t x) noexcept {
    while (parent[x] != x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  }
  // Returns the merged sizes (a, b) or (0, 0) if already joined.
  std::pair<uint32_t, uint32_t> unite(uint32_t x, uint32_t y) noexcept {
    x = find(x);
    y = find(y);
    if (x == y) return {0, 0};
    if (size[x] < size[y]) std::swap(x, y);
    const std::pair<uint32_t, uint32_t> sizes{size[x], size[y]};
    parent[y] = x;
    size[x] += size[y];
    return sizes;
  }
};

void check_edges(size_t n, const int64_t* i, const int64_t* j, size_t nedges) {
  const auto bad = [n](int64_t r) { return r < 0 || static_cast<uint64_t>(r) >= n; };
  for (size_t e = 0; e < nedges; ++e) {
    if (bad(i[e]) || bad(j[e])) {
      throw std::invalid_argument("pairs: edge " + std::to_string(e) + " names row " +
                                  std::to_string(bad(i[e]) ? i[e] : j[e]) + ", expected rows in [0, " +
                                  std::to_string(n) + ")");
    }
  }
}

}  // namespace

size_t connected_components(size_t n, const int64_t* i, const int64_t* j, const int32_t* d, size_t nedges,
                            int32_t max_distance, int64_t* labels) {
  check_edges(n, i, j, nedges);
  UnionFind uf(n);
  for (size_t e = 0; e < nedges; ++e) {
    if (d[e] <= max_distance) uf.unite(static_cast<uint32_t>(i[e]), static_cast<uint32_t>(j[e]));
  }
  std::vector<int64_t> label_of_root(n, -1);
  int64_t next = 0;
  for (size_t r = 0; r < n; ++r) {
    const uint32_t root = uf.find(static_cast<uint32_t>(r));
    if (label_of_root[root] < 0) label_of_root[root] = next++;
    labels[r] = label_of_root[root];
  }
  return static_cast<size_t>(next);
}

void threshold_curve(size_t n, const int64_t* i, const int64_t* j, const int32_t* d, size_t nedges,
                     uint32_t max_distance, int64_t* clusters, int64_t* largest, int64_t* clustered) {
  check_edges(n, i, j, nedges);
  // Edges by distance (a counting sort; edges beyond max_distance are left out).
  std::vector<size_t> starts(size_t{max_distance} + 2, 0);
  for (size_t e = 0; e < nedges; ++e) {
    if (d[e] >= 0 && static_cast<uint32_t>(d[e]) <= max_distance) ++starts[static_cast<size_t>(d[e]) + 1];
  }
  std::partial_sum(starts.begin(), starts.end(), starts.begin());
  std::vector<size_t> by_distance(starts.back());
  {
    std::vector<size_t> next(starts.begin(), starts.end() - 1);
    for (size_t e = 0; e < nedges; ++e) {
      if (d[e] >= 0 && static_cast<uint32_t>(d[e]) <= max_distance) by_distance[next[static_cast<size_t>(d[e])]++] = e;
    }
  }
  UnionFind uf(n);
  int64_t components = static_cast<int64_t>(n), biggest = n > 0 ? 1 : 0, in_clusters = 0;
  for (uint32_t t = 0; t <= max_distance; ++t) {
    for (size_t k = starts[t]; k < starts[t + 1]; ++k) {
      const size_t e = by_distance[k];
      const auto sizes = uf.unite(static_cast<uint32_t>(i[e]), static_cast<uint32_t>(j[e]));
      if (sizes.first == 0) continue;
      --components;
      in_clusters += (sizes.first == 1) + (sizes.second == 1);
      biggest = std::max<int64_t>(biggest, sizes.first + sizes.second);
    }
    clusters[t] = components;
    largest[t] = biggest;
    clustered[t] = in_clusters;
  }
}

void medoids(const uint8_t* codes, size_t n, size_t nbytes, const int64_t* labels, size_t nclusters, size_t max_exact,
             int64_t* out, size_t nthreads, const Interrupt& interrupt) {
  for (size_t r = 0; r < n; ++r) {
    if (labels[r] < 0 || static_cast<size_t>(labels[r]) >= nclusters) {
      throw std::invalid_argument("labels: expected labels in [0, " + std::to_string(nclusters) + ")");
    }
  }
  const WordView view(codes, n, nbytes);
  const size_t nwords = view.nwords();
  std::vector<size_t> starts(nclusters + 1, 0);
  for (size_t r = 0; r < n; ++r) ++starts[static_cast<size_t>(labels[r]) + 1];
  std::partial_sum(starts.begin(), starts.end(), starts.begin());
  std::vector<uint32_t> members(n);
  {
    std::vector<size_t> next(starts.begin(), starts.end() - 1);
    for (size_t r = 0; r < n; ++r) members[next[static_cast<size_t>(labels[r])]++] = static_cast<uint32_t>(r);
  }
  for (size_t c = 0; c < nclusters; ++c) out[c] = starts[c] < starts[c + 1] ? members[starts[c]] : -1;
  // Clusters of three or more need distances; big ones are split into tasks by candidates.
  std::vector<size_t> big;
  for (size_t c = 0; c < nclusters; ++c) {
    if (starts[c + 1] - starts[c] >= 3) big.push_back(c);
  }
  max_exact = std::max<size_t>(max_exact, 1);
  parallel_for(big.size(), nthreads, [&](size_t t) {
    const size_t c = big[t];
    const uint32_t* m = members.data() + starts[c];
    const size_t size = starts[c + 1] - starts[c];
    const size_t candidates = std::min(size, max_exact);
    uint64_t best_sum = std::numeric_limits<uint64_t>::max();
    uint32_t best = m[0];
    for (size_t k = 0; k < candidates; ++k) {
      const uint32_t row = m[k * size / candidates];  // members are in increasing row order
      const uint64_t* x = view.row(row);
      uint64_t sum = 0;
      for (size_t o = 0; o < size && sum <= best_sum; ++o) sum += bits::distance(x, view.row(m[o]), nwords);
      if (sum < best_sum) {
        best_sum = sum;
        best = row;
      }
    }
    out[c] = best;
  }, interrupt);
}

}  // namespace hashmatch
