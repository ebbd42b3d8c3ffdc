// Bounded top-k selection in result order (distance, then id): the same order for every kernel,
// block size and thread count, so results are deterministic when distances tie.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace hashmatch {

struct Neighbor {
  Neighbor() = default;
  Neighbor(uint32_t d, int64_t i, uint8_t v = 0) noexcept : distance(d), variant(v), id(i) {}
  uint32_t distance;
  uint8_t variant;  // which of a query's variants reached the distance (variant searches)
  int64_t id;
};

/// Result order: nearer first, then smaller id.
inline bool operator<(const Neighbor& a, const Neighbor& b) noexcept {
  return a.distance != b.distance ? a.distance < b.distance : a.id < b.id;
}

/// A max-heap of the k best neighbors seen so far, over caller-owned storage of k entries.
class TopK {
 public:
  TopK(Neighbor* storage, size_t k) noexcept : heap_(storage), k_(k) {}

  /// Largest distance that can still enter (inclusive): candidates above it are useless.
  uint32_t bound() const noexcept { return size_ < k_ ? UINT32_MAX : heap_[0].distance; }

  void push(uint32_t distance, int64_t id, uint8_t variant = 0) noexcept {
    const Neighbor n{distance, id, variant};
    if (size_ < k_) {
      heap_[size_++] = n;
      std::push_heap(heap_, heap_ + size_);
    } else if (n < heap_[0]) {
      std::pop_heap(heap_, heap_ + size_);
      heap_[size_ - 1] = n;
      std::push_heap(heap_, heap_ + size_);
    }
  }

  size_t size() const noexcept { return size_; }
  void clear() noexcept { size_ = 0; }
  const Neighbor* begin() const noexcept { return heap_; }
  const Neighbor* end() const noexcept { return heap_ + size_; }

  /// Sorts in result order (the heap is consumed) and writes size() entries (and their
  /// variants, when `variants` is not null).
  void write_sorted(int32_t* distances, int64_t* ids, uint8_t* variants = nullptr) noexcept {
    std::sort_heap(heap_, heap_ + size_);
    for (size_t i = 0; i < size_; ++i) {
      distances[i] = static_cast<int32_t>(heap_[i].distance);
      ids[i] = heap_[i].id;
      if (variants != nullptr) variants[i] = heap_[i].variant;
    }
  }

 private:
  Neighbor* heap_;
  size_t k_;
  size_t size_ = 0;
};

}  // namespace hashmatch
