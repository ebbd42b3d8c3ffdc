// Exact brute-force index: every query is compared with every stored hash by the active SIMD
// kernel. The baseline that every other index must agree with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "hashmatch/array.h"
#include "hashmatch/exact_index.h"

namespace hashmatch {

/// A FlatIndex's arrays as saved: n codes in the tiled layout (kernels.h: tiles of 8 codes
/// interleaved by 64-bit word, codes zero-padded to whole words, the last tile zero-filled,
/// so tiled_words(n) words in all) and their ids, in insertion order; next_id is where
/// default ids continue (it stays above removed ids, so they are not reused).
struct FlatArrays {
  size_t n = 0;
  int64_t next_id = 0;
  std::vector<uint64_t> tiles;
  std::vector<int64_t> ids;
};

/// Thread safety: any number of concurrent searches; add() waits for running searches and
/// blocks new ones while it appends (a reader never sees a half-added batch).
class FlatIndex final : public ExactIndex {
 public:
  /// @param bits  hash width, a multiple of 8 in [8, 4096]
  /// @throws std::invalid_argument otherwise
  explicit FlatIndex(size_t bits);

  /// An index over borrowed, read-only arrays (a saved index, e.g. a memory-mapped file),
  /// validated in full before use. They are read in place until the first add(), which
  /// copies them (copy-on-write); the caller keeps them alive and unchanged meanwhile.
  /// @param bits        hash width, as above
  /// @param n           number of hashes
  /// @param tiles       tiles_size words: n codes in FlatArrays' layout, 8-byte aligned
  /// @param ids         ids_size ids: non-negative and unique
  /// @param next_id     the saved next_id; the index uses max(next_id, largest id + 1)
  /// @throws std::invalid_argument for a bad width, sizes that do not fit n and bits, non-zero
  ///         padding, misaligned arrays, or negative or duplicate ids
  FlatIndex(size_t bits, size_t n, const uint64_t* tiles, size_t tiles_size, const int64_t* ids, size_t ids_size,
            int64_t next_id);

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
  /// Copies the arrays for saving (a consistent snapshot, taken under the lock).
  void export_arrays(FlatArrays& out) const;
  /// Words of the tiled layout for n codes.
  size_t tiled_words(size_t n) const noexcept;

  /// Appends n hashes with their ids. All-or-nothing: on error nothing is added.
  /// @param codes  n rows of nbytes() bytes
  /// @param ids    n ids, non-negative, unique among themselves and with those stored
  /// @throws std::invalid_argument for a negative or already stored id
  void add(const uint8_t* codes, size_t n, const int64_t* ids) override;

  // search / range_search and their *_variants (ExactIndex): each block of stored codes is
  // compared with a query's every variant at once by the multi-needle kernel; kNN keeps a
  // bound that tightens as the heap fills, range search the fixed radius. Few queries split
  // the codes across threads, batches split the queries.

 protected:
  void search_impl(const uint8_t* queries, size_t nq, size_t nv, size_t k, KnnResults& out, size_t nthreads,
                   const Interrupt& interrupt) const override;
  void range_impl(const uint8_t* queries, size_t nq, size_t nv, uint32_t max_distance, RangeResults& out,
                  size_t nthreads, const Interrupt& interrupt) const override;

 private:

  size_t bits_;
  size_t nwords_;
  Array<uint64_t> codes_;  // tiled layout (kernels.h), zero-padded to whole words and tiles
  Array<int64_t> ids_;
  int64_t next_id_ = 0;
  mutable std::shared_mutex mutex_;
};

}  // namespace hashmatch
