// Exact brute-force index: every query is compared with every stored hash by the active SIMD
// kernel. The baseline that every other index must agree with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "thread_pool.h"

namespace hashmatch {

/// Range-search results, per query, before they are copied into the caller's CSR arrays.
class RangeResults {
 public:
  explicit RangeResults(size_t nqueries) : distances_(nqueries), ids_(nqueries) {}
  size_t nqueries() const noexcept { return ids_.size(); }
  /// Total number of results over all queries.
  size_t total() const noexcept;
  /// Writes CSR arrays: lims (nqueries + 1), distances and ids (total() each).
  void write(int64_t* lims, int32_t* distances, int64_t* ids) const noexcept;

  std::vector<std::vector<uint16_t>> distances_;  // per query, sorted by (distance, id)
  std::vector<std::vector<int64_t>> ids_;
};

/// Thread safety: any number of concurrent searches; add() waits for running searches and
/// blocks new ones while it appends (a reader never sees a half-added batch).
/// k-nearest-neighbor results: nqueries rows of k columns (k = min(requested, size) at search
/// time, decided under the index's lock so a concurrent add cannot change it mid-call).
struct KnnResults {
  size_t k = 0;
  std::vector<int32_t> distances;
  std::vector<int64_t> ids;
};

class FlatIndex {
 public:
  /// @param bits  hash width, a multiple of 8 in [8, 4096]
  /// @throws std::invalid_argument otherwise
  explicit FlatIndex(size_t bits);

  size_t bits() const noexcept { return bits_; }
  size_t nbytes() const noexcept { return bits_ / 8; }
  size_t size() const noexcept {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return ids_.size();
  }
  /// One more than the largest id ever stored (0 when empty): where default ids continue.
  int64_t next_id() const noexcept { return next_id_; }
  /// Copies up to n stored ids and hashes (n * nbytes bytes) into the outputs; returns how many.
  size_t copy_out(size_t n, int64_t* ids, uint8_t* codes) const noexcept;

  /// Appends n hashes with their ids. All-or-nothing: on error nothing is added.
  /// @param codes  n rows of nbytes() bytes
  /// @param ids    n ids, non-negative, unique among themselves and with those stored
  /// @throws std::invalid_argument for a negative or already stored id
  void add(const uint8_t* codes, size_t n, const int64_t* ids);

  /// k nearest neighbors of each query, in (distance, id) order.
  /// @param queries    nq rows of nbytes() bytes
  /// @param k          neighbors wanted; min(k, size()) are returned per query
  /// @param out        receives nq rows of out.k = min(k, size()) columns
  /// @param nthreads   threads to use (>= 1)
  void search(const uint8_t* queries, size_t nq, size_t k, KnnResults& out, size_t nthreads,
              const Interrupt& interrupt = {}) const;

  /// Every stored hash within max_distance of each query (inclusive: distance <= max_distance).
  void range_search(const uint8_t* queries, size_t nq, uint32_t max_distance, RangeResults& out,
                    size_t nthreads, const Interrupt& interrupt = {}) const;

 private:
  size_t bits_;
  size_t nwords_;
  std::vector<uint64_t> codes_;  // tiled layout (kernels.h), zero-padded to whole words and tiles
  std::vector<int64_t> ids_;
  int64_t next_id_ = 0;
  mutable std::shared_mutex mutex_;
};

}  // namespace hashmatch
