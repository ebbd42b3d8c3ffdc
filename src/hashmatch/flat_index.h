// Exact brute-force index: every query is compared with every stored hash by the active SIMD
// kernel. The baseline that every other index must agree with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "hashmatch/exact_index.h"

namespace hashmatch {

/// Thread safety: any number of concurrent searches; add() waits for running searches and
/// blocks new ones while it appends (a reader never sees a half-added batch).
class FlatIndex final : public ExactIndex {
 public:
  /// @param bits  hash width, a multiple of 8 in [8, 4096]
  /// @throws std::invalid_argument otherwise
  explicit FlatIndex(size_t bits);

  size_t bits() const noexcept override { return bits_; }
  size_t nbytes() const noexcept { return bits_ / 8; }
  size_t size() const override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return ids_.size();
  }
  /// One more than the largest id ever stored (0 when empty): where default ids continue.
  int64_t next_id() const override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return next_id_;
  }
  size_t memory_bytes() const override;
  /// Copies up to n stored ids and hashes (n * nbytes bytes) into the outputs; returns how many.
  size_t copy_out(size_t n, int64_t* ids, uint8_t* codes) const override;

  /// Appends n hashes with their ids. All-or-nothing: on error nothing is added.
  /// @param codes  n rows of nbytes() bytes
  /// @param ids    n ids, non-negative, unique among themselves and with those stored
  /// @throws std::invalid_argument for a negative or already stored id
  void add(const uint8_t* codes, size_t n, const int64_t* ids) override;

  /// k nearest neighbors of each query, in (distance, id) order.
  /// @param queries    nq rows of nbytes() bytes
  /// @param k          neighbors wanted; min(k, size()) are returned per query
  /// @param out        receives nq rows of out.k = min(k, size()) columns
  /// @param nthreads   threads to use (>= 1)
  void search(const uint8_t* queries, size_t nq, size_t k, KnnResults& out, size_t nthreads,
              const Interrupt& interrupt = {}) const override;

  /// Every stored hash within max_distance of each query (inclusive: distance <= max_distance).
  void range_search(const uint8_t* queries, size_t nq, uint32_t max_distance, RangeResults& out,
                    size_t nthreads, const Interrupt& interrupt = {}) const override;

 private:
  size_t bits_;
  size_t nwords_;
  std::vector<uint64_t> codes_;  // tiled layout (kernels.h), zero-padded to whole words and tiles
  std::vector<int64_t> ids_;
  int64_t next_id_ = 0;
  mutable std::shared_mutex mutex_;
};

}  // namespace hashmatch
