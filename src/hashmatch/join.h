// Exact similarity joins: every pair of hashes within a Hamming radius, either inside one set
// (a self-join, for near-duplicate detection) or between two sets.
//
// Two methods, chosen by a cost model (plan_join):
//  * a multi-index join. Each hash is cut into m substrings with per-substring radii q_s such
//    that any pair within the radius has, in some substring s, substrings within q_s of each
//    other (the pigeonhole bound of Norouzi et al.: with radius r = q*m + a, the first a + 1
//    substrings get q and the rest q - 1). For each substring both sides are bucketed by the
//    substring's value with a counting sort (codes copied in bucket order, so every bucket is a
//    contiguous block); every bucket is then compared as a block with the buckets within q_s of
//    it. A pair is reported only by the first substring that makes it a candidate, which is
//    decided from the pair's XOR alone, so no pair is reported twice and no set of seen pairs is
//    kept. Work grows with the candidates, not with n^2.
//  * a tiled brute force over all pairs with the dispatched SIMD scan kernels (large radii,
//    where nearly every pair is a candidate anyway), blocked so a chunk of codes stays in L2.
//
// Work is cut into units (a range of rows of one substring, or of the triangle) whose number
// and bounds depend only on the data and the plan, never on threads, so results are the same
// for any thread count; a caller runs units in batches (Join::run) to report progress, stream
// pairs out with bounded memory and stop between batches. Within a batch the calling thread
// polls Interrupt between units, so Ctrl-C stops a call within tens of milliseconds.
//
// PairMerger sorts the pairs found; clusters.h groups them into clusters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "hashmatch/parallel_for.h"

namespace hashmatch {

/// One substring of a multi-index join: bits [lo, lo + len) of a hash in word order (bits.h:
/// bit b is bit b % 64 of the little-endian 64-bit word b / 64), probed at `radius`.
struct JoinSubstring {
  uint32_t lo = 0;
  uint32_t len = 0;
  uint32_t radius = 0;
};

/// How a join runs, with the cost model's single-thread estimates (seconds) of both methods.
struct JoinPlan {
  bool brute_force = true;
  std::vector<JoinSubstring> substrings;  // the multi-index plan (empty for brute force)
  double mih_seconds = 0;                 // best multi-index plan's estimate (inf if none fits)
  double brute_seconds = 0;
};

/// The cheapest exact plan for joining na hashes with nb (self: na == nb, the same set).
/// @param differ  per bit b (word order, as JoinSubstring), the chance that b differs between
///                two hashes, measured on a sample; null: uniform random bits (1/2 each)
JoinPlan plan_join(size_t bits, size_t na, size_t nb, uint32_t radius, bool self, const double* differ = nullptr);

/// The multi-index plan with m substrings, or the brute force for m == 0.
/// @throws std::invalid_argument if m exceeds bits or a substring would be too wide to bucket
///         (radius > 0 needs substrings of at most 24 bits; radius 0 at most 64).
JoinPlan fixed_join_plan(size_t bits, size_t na, size_t nb, uint32_t radius, bool self, size_t m,
                         const double* differ = nullptr);

/// Pairs found by a join: rows i (of the first set) and j (of the second), distance d.
struct PairBuffer {
  std::vector<uint32_t> i;
  std::vector<uint32_t> j;
  std::vector<uint16_t> d;
  size_t size() const noexcept { return i.size(); }
};

/// Not thread-safe: run() rebuilds shared buckets; one caller at a time (Python holds the object).
class Join {
 public:
  /// @param a, na     the first set: na rows of nbytes bytes (borrowed for the Join's life)
  /// @param b, nb     the second set, or b == nullptr for a self-join of a (pairs i < j)
  /// @param radius    report pairs with distance <= radius
  /// @param plan      from plan_join / fixed_join_plan for these sizes
  /// @param unit_rows rows per unit of work (0: chosen from the plan)
  /// @throws std::invalid_argument if a set has 2^32 - 1 rows or more
  Join(const uint8_t* a, size_t na, const uint8_t* b, size_t nb, size_t nbytes, uint32_t radius,
       const JoinPlan& plan, size_t unit_rows = 0);
  ~Join();
  Join(const Join&) = delete;
  Join& operator=(const Join&) = delete;

  /// Units of work in all; run them in increasing order for the best speed.
  size_t units() const noexcept;

  /// Runs units [begin, end) and appends their pairs to `out`, one buffer per unit that found
  /// any, in unit order (moved, never copied).
  /// @throws Cancelled if the interrupt fired (out may then hold some of the batch's pairs;
  ///         the Join stays usable)
  void run(size_t begin, size_t end, size_t nthreads, const Interrupt& interrupt, std::vector<PairBuffer>& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A chunk of pairs as Join::run made them (borrowed arrays of n elements).
struct PairChunkView {
  const uint32_t* i = nullptr;
  const uint32_t* j = nullptr;
  const uint16_t* d = nullptr;
  size_t n = 0;
};

/// Merges chunks of pairs into one list sorted by (i, j), written straight into the caller's
/// output arrays: a counting sort by i (count every chunk, then scatter them one at a time, so
/// a caller may free each chunk once scattered), with (j, d) packed into out_j while each row's
/// pairs are sorted by j. Peak memory: the outputs, the chunks not yet scattered, and 16 bytes
/// per row of the first set.
class PairMerger {
 public:
  explicit PairMerger(size_t ni) : starts_(ni + 1, 0) {}
  /// Pass 1, every chunk. @throws std::invalid_argument if a row i is >= ni
  void count(const PairChunkView& chunk);
  /// Pairs counted so far: the length of the output arrays.
  size_t total() const noexcept { return counting_ ? pending_ : starts_.back(); }
  /// Pass 2, every chunk again (any order): writes i and the packed (j, d).
  void scatter(const PairChunkView& chunk, int64_t* out_i, int64_t* out_j);
  /// Sorts each row by j and unpacks the distances.
  void finish(int64_t* out_j, int32_t* out_d, size_t nthreads);

 private:
  void prefix();
  std::vector<size_t> starts_;  // counts until the first scatter, then row starts
  std::vector<size_t> next_;
  size_t pending_ = 0;
  bool counting_ = true;
};

}  // namespace hashmatch
