// Exact multi-index hashing (Norouzi, Punjani & Fleet, "Fast Exact Search in Hamming Space with
// Multi-Index Hashing"): each hash is cut into m substrings, each indexed in its own table. By
// the pigeonhole principle a hash within distance r of a query has, in some table, a substring
// within floor(r / m) of the query's: probing those buckets finds every match, and verifying
// each candidate (a few POPCNTs on its code) keeps only the true ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "hashmatch/array.h"
#include "hashmatch/exact_index.h"

namespace hashmatch {

/// Where table t's substring lies and how its directory is keyed. Substring t covers bits
/// [lo, lo + len) of a hash in hex order (bits.h: bit 0 is the top bit of byte 0); tables cover
/// the hash in order, lengths differing by at most one (longer ones first). An entry's bucket is
/// its substring >> shift, so the directory has 2^(len - shift) + 1 starts.
struct MihTableLayout {
  uint32_t lo = 0;     // first bit of the substring
  uint32_t len = 0;    // substring bits
  uint32_t shift = 0;  // bits below the prefix: an entry's bucket is substring >> shift
};

/// An MIHIndex's arrays as saved: n hashes, all live and all in the tables (see
/// MIHIndex::compact). Per-table arrays are concatenated in table order. next_id is where
/// default ids continue (it stays above removed ids, so they are not reused).
struct MihArrays {
  size_t n = 0;
  int64_t next_id = 0;
  std::vector<MihTableLayout> tables;
  std::vector<uint64_t> rows;     // n codes, row-major, zero-padded to whole words
  std::vector<int64_t> ids;       // n ids
  std::vector<uint32_t> starts;   // per table: 2^(len - shift) + 1 bucket starts, 0 .. n
  std::vector<uint8_t> residual;  // per table: n residual bytes, in bucket order
  std::vector<uint32_t> slot;     // per table: n slots (row numbers), in bucket order
};

/// The same arrays borrowed read-only (a memory-mapped file): pointers and element counts.
struct MihArraysView {
  size_t n = 0;
  int64_t next_id = 0;  // the index uses max(next_id, largest id + 1)
  std::vector<MihTableLayout> tables;
  const uint64_t* rows = nullptr;
  size_t rows_size = 0;
  const int64_t* ids = nullptr;
  size_t ids_size = 0;
  const uint32_t* starts = nullptr;
  size_t starts_size = 0;
  const uint8_t* residual = nullptr;
  size_t residual_size = 0;
  const uint32_t* slot = nullptr;
  size_t slot_size = 0;
};

/// What the cost model expects for one query (see mih_index.cpp for the model).
struct MihCost {
  double probes = 0;      // buckets looked up
  double candidates = 0;  // stored hashes verified
  double nanoseconds = 0; // estimated time of probing and verifying
  double flat_nanoseconds = 0;  // estimated time of scanning every stored hash instead
};

/// Expected cost of one range query at `radius` with `substrings` tables over n stored hashes;
/// with `variants` > 1, of one variant stack of that many hashes (each variant probed, each
/// candidate verified against all; the flat alternative is one multi-needle scan).
MihCost mih_cost(size_t bits, size_t substrings, size_t n, uint32_t radius, size_t variants = 1) noexcept;

/// The substring count with the lowest expected cost for n hashes queried at `radius`.
size_t choose_substrings(size_t bits, size_t n, uint32_t radius) noexcept;

/// Thread safety: as FlatIndex (concurrent searches; add and remove are exclusive).
class MIHIndex final : public ExactIndex {
 public:
  /// @param bits          hash width, a multiple of 8 in [8, 4096]
  /// @param substrings    tables to build (0: chosen by the cost model at every rebuild)
  /// @param max_distance  the radius most queries will use, for the cost model
  /// @throws std::invalid_argument for bad widths or substring counts
  MIHIndex(size_t bits, size_t substrings, uint32_t max_distance);

  /// An index over borrowed, read-only arrays (a saved index, e.g. a memory-mapped file),
  /// validated before use. The structure is always checked: sizes against n and bits, the
  /// table layout, bucket starts (0, non-decreasing, ending at n), slots below n, zero code
  /// padding, alignment, and ids (non-negative, unique). That guarantees memory safety: no
  /// search or update reads out of bounds, whatever the arrays hold. With `check_rows`, every
  /// table is also checked against the rows it indexes (one linear pass per table, tables in
  /// parallel): its slots are a permutation of the rows, each entry lies in the bucket its
  /// row's substring gives and holds that substring's residual byte. Only then are searches
  /// guaranteed exact; without it, tables that disagree with the rows (a crafted or damaged
  /// file) make range searches miss hashes that are stored.
  /// The arrays are read in place until the first add() or remove(), which copies what it
  /// changes (copy-on-write); the caller keeps them alive and unchanged meanwhile.
  /// @param substrings  as above; when non-zero the saved table count must equal it
  /// @param check_rows  also check the tables against the rows (exact searches guaranteed)
  /// @throws std::invalid_argument naming the first inconsistency found (its array, and the
  ///         table for the row checks)
  MIHIndex(size_t bits, size_t substrings, uint32_t max_distance, const MihArraysView& arrays,
           bool check_rows = true);

  size_t bits() const noexcept override { return bits_; }
  size_t nbytes() const noexcept { return bits_ / 8; }
  /// Number of stored (not removed) hashes.
  size_t size() const override;
  /// Tables in use (0 until the first build).
  size_t substrings() const;
  int64_t next_id() const override;
  /// Bytes held by codes, ids and tables.
  size_t memory_bytes() const override;
  /// Copies up to n stored ids and hashes, in insertion order; returns how many.
  size_t copy_out(size_t n, int64_t* ids, uint8_t* codes) const override;

  /// Drops removed hashes and indexes the linear tail (a full rebuild, done only when there
  /// is something to drop or index; otherwise nothing happens). Strong guarantee: on an
  /// exception (out of memory) the index is unchanged.
  void compact();
  /// compact(), then copies the arrays for saving, all under one exclusive lock.
  void export_arrays(MihArrays& out);

  /// Appends n hashes; all-or-nothing. New hashes are searched linearly until the tables are
  /// rebuilt, which happens once they exceed an eighth of the indexed ones (amortised O(1)).
  /// @throws std::invalid_argument for a negative or already stored id
  void add(const uint8_t* codes, size_t n, const int64_t* ids) override;

  /// Removes the hashes with these ids; ids not stored are ignored. Ids are never reused for
  /// other hashes and nothing is renumbered. @return how many were removed.
  size_t remove(const int64_t* ids, size_t n);

  // search / range_search (ExactIndex): exact, as FlatIndex's. Their *_variants probe the
  // buckets of every variant's substrings (range: a candidate is checked against the variants
  // that found it, and measured against all only when within the radius; kNN: the radius grows
  // as for one query, each step probing every variant, each candidate verified once against
  // all). The linear tail, and the whole index when the cost model (mih_cost with nv
  // variants) says a scan is cheaper, take one multi-needle scan of the rows.

 protected:
  void search_impl(const uint8_t* queries, size_t nq, size_t nv, size_t k, KnnResults& out, size_t nthreads,
                   const Interrupt& interrupt) const override;
  void range_impl(const uint8_t* queries, size_t nq, size_t nv, uint32_t max_distance, RangeResults& out,
                  size_t nthreads, const Interrupt& interrupt) const override;

 private:
  struct Table : MihTableLayout {  // len <= 32
    Array<uint32_t> starts;   // bucket of prefix v: entries [starts[v], starts[v + 1])
    Array<uint8_t> residual;  // each entry's substring bits below the prefix, the low 8 of
                              // them: a filter; candidates are verified in full anyway
    Array<uint32_t> slot;     // each entry's slot
  };
  class Query;

  const uint8_t* code(size_t slot) const noexcept {
    return reinterpret_cast<const uint8_t*>(codes_.data() + slot * nwords_);
  }
  bool needs_compaction() const noexcept { return live_ != ids_.size() || built_ != ids_.size(); }
  /// Compacts removed slots away and rebuilds the tables. Strong guarantee: on an exception
  /// (out of memory) nothing has changed.
  void rebuild();
  /// rebuild(), but a failure leaves the new hashes in the linear tail to retry later.
  void try_rebuild() noexcept;
  void ensure_id_map() const;

  size_t bits_, nwords_, fixed_substrings_;
  uint32_t expected_radius_;
  Array<uint64_t> codes_;  // row-major, zero-padded words (random access for verification)
  Array<int64_t> ids_;
  Array<uint8_t> alive_;
  size_t live_ = 0;
  size_t built_ = 0;  // slots [0, built_) are in the tables; the rest are the linear tail
  int64_t next_id_ = 0;
  std::vector<Table> tables_;
  mutable std::vector<std::pair<int64_t, uint32_t>> id_map_;  // sorted (id, slot), built lazily
  mutable bool id_map_dirty_ = true;
  mutable std::shared_mutex mutex_;
};

}  // namespace hashmatch
