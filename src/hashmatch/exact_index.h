// The interface every exact index implements, and the result containers they fill.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hashmatch/parallel_for.h"

namespace hashmatch {

/// Range-search results, per query, before they are copied into the caller's CSR arrays.
class RangeResults {
 public:
  explicit RangeResults(size_t nqueries) : distances_(nqueries), ids_(nqueries), variants_(nqueries) {}
  size_t nqueries() const noexcept { return ids_.size(); }
  /// Total number of results over all queries.
  size_t total() const noexcept;
  /// Writes CSR arrays: lims (nqueries + 1), distances and ids (total() each), and when
  /// `variants` is not null the variant of each hit (variant searches only).
  void write(int64_t* lims, int32_t* distances, int64_t* ids, uint8_t* variants = nullptr) const noexcept;

  std::vector<std::vector<uint16_t>> distances_;  // per query, sorted by (distance, id)
  std::vector<std::vector<int64_t>> ids_;
  std::vector<std::vector<uint8_t>> variants_;    // per query, filled by variant searches only
};

/// k-nearest-neighbor results: nqueries rows of k columns (k = min(requested, size) at search
/// time, decided under the index's lock so a concurrent add cannot change it mid-call).
struct KnnResults {
  size_t k = 0;
  std::vector<int32_t> distances;
  std::vector<int64_t> ids;
  std::vector<uint8_t> variants;  // filled by variant searches only
};

/// Checks a variant count for the *_variants searches.
/// @throws std::invalid_argument unless 1 <= nv <= kernels::kMaxNeedles
void check_variant_count(size_t nv);

/// An exact index of fixed-width hashes with int64 ids. Results are identical across
/// implementations: (distance, id) order, inclusive radius, at most min(k, size()) neighbors.
class ExactIndex {
 public:
  virtual ~ExactIndex() = default;
  virtual size_t bits() const noexcept = 0;
  /// Number of stored hashes.
  virtual size_t size() const = 0;
  /// One more than the largest id ever stored (0 when empty): where default ids continue.
  virtual int64_t next_id() const = 0;
  /// Bytes this index allocated for codes, ids and any search structure. Arrays it views in
  /// someone else's memory (a loaded, memory-mapped file) are not counted until copied.
  virtual size_t memory_bytes() const = 0;
  /// Copies up to n stored ids and hashes (n * bits / 8 bytes), in insertion order; returns how many.
  virtual size_t copy_out(size_t n, int64_t* ids, uint8_t* codes) const = 0;
  /// Appends n hashes with their ids. All-or-nothing: on error nothing is added.
  /// @throws std::invalid_argument for a negative or already stored id
  virtual void add(const uint8_t* codes, size_t n, const int64_t* ids) = 0;
  /// k nearest neighbors of each of nq queries; out receives nq rows of min(k, size()) columns.
  void search(const uint8_t* queries, size_t nq, size_t k, KnnResults& out, size_t nthreads,
              const Interrupt& interrupt = {}) const {
    search_impl(queries, nq, 0, k, out, nthreads, interrupt);
  }
  /// Every stored hash within max_distance (inclusive) of each query.
  void range_search(const uint8_t* queries, size_t nq, uint32_t max_distance, RangeResults& out, size_t nthreads,
                    const Interrupt& interrupt = {}) const {
    range_impl(queries, nq, 0, max_distance, out, nthreads, interrupt);
  }
  /// k nearest neighbors of each of nq variant stacks (nq * nv rows, query q's variants at rows
  /// q * nv .. q * nv + nv - 1) in one pass: a stored hash's distance is its smallest over the
  /// variants and its variant the first reaching it; each stored hash appears at most once per
  /// query. out.variants is filled alongside.
  /// @throws std::invalid_argument unless 1 <= nv <= kernels::kMaxNeedles
  void search_variants(const uint8_t* queries, size_t nq, size_t nv, size_t k, KnnResults& out, size_t nthreads,
                       const Interrupt& interrupt = {}) const {
    check_variant_count(nv);
    search_impl(queries, nq, nv, k, out, nthreads, interrupt);
  }
  /// Every stored hash within max_distance (inclusive) of any variant of each variant stack,
  /// once, at its smallest distance and the first variant reaching it (layout and errors as
  /// search_variants; out.variants_ filled alongside).
  void range_search_variants(const uint8_t* queries, size_t nq, size_t nv, uint32_t max_distance, RangeResults& out,
                             size_t nthreads, const Interrupt& interrupt = {}) const {
    check_variant_count(nv);
    range_impl(queries, nq, nv, max_distance, out, nthreads, interrupt);
  }

 protected:
  /// The searches over nq plain queries (nv == 0) or nq variant stacks of nv rows each.
  virtual void search_impl(const uint8_t* queries, size_t nq, size_t nv, size_t k, KnnResults& out,
                           size_t nthreads, const Interrupt& interrupt) const = 0;
  virtual void range_impl(const uint8_t* queries, size_t nq, size_t nv, uint32_t max_distance, RangeResults& out,
                          size_t nthreads, const Interrupt& interrupt) const = 0;
};


}  // namespace hashmatch
