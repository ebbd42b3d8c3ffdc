#include "hashmatch/mih_index.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "hashmatch/array_checks.h"
#include "hashmatch/bits.h"
#include "hashmatch/dispatch.h"
#include "hashmatch/topk.h"
#include "hashmatch/word_view.h"

namespace hashmatch {
namespace {

// ---- Cost model -----------------------------------------------------------------------------
// One query at radius r with m tables of ~bits/m-bit substrings probes, in table t, every
// substring value within r_t of the query's (r_t = floor(r/m), or one less for the tables past
// r mod m: Norouzi et al.'s refined pigeonhole), i.e. sum_{i <= r_t} C(len_t, i) buckets, each
// holding n / 2^len_t stored hashes on average. Expected time = probes * kProbeNs + candidates *
// kVerifyNs, against n * nwords * kScanWordNs for a flat scan. The constants were measured on a
// Zen 3 core with the tables in DRAM, fitted to range-query latencies at 1M PDQ hashes for
// 10 to 18 substrings: a bucket lookup (directory read and residual scan, prefetched in
// stages) costs about 70 ns; a candidate (sorting it in, a random read of its code, the
// distance) about 110 ns. A single query's flat scan streams memory at about 10 GB/s.
constexpr double kProbeNs = 70;
constexpr double kVerifyNs = 110;
constexpr double kScanWordNs = 0.8;
// A variant stack (see MIHIndex::range_search_variants) probes each variant's balls and
// checks each candidate against the variants that found it: nv times a query's cost. Its scan
// is one multi-needle pass over the rows (8 variants cost about 0.75x one single scan on
// AVX-512, 1.2x on AVX2, more on scalar): each extra variant adds kScanVariantShare of a single
// scan (benchmarks/RESULTS.md, "Dihedral queries").
constexpr double kScanVariantShare = 0.15;

using bits::ball_size;
using bits::split_length;
using bits::substring_hex_order;

/// The residual byte an entry or a probe of substring value v is filtered by: v's bits below
/// the bucket prefix, the low 8 of them (a filter; candidates are verified in full anyway).
uint8_t residual_of(uint32_t shift, uint32_t v) noexcept {
  return static_cast<uint8_t>(v & ((1u << (shift < 8 ? shift : 8u)) - 1u));
}

// Substring [lo, lo + len) of a row in hex order, as substring_hex_order gives it, from one
// 8-byte load: rows are zero-padded to whole words (checked), so the 8 bytes from byte lo / 8,
// moved back to stay within the row's words, hold every bit of it.
inline uint32_t row_substring(const uint64_t* row, size_t nwords, uint32_t lo, uint32_t len) noexcept {
  const size_t at = std::min<size_t>(lo / 8, nwords * 8 - 8);
  uint64_t window;
  std::memcpy(&window, reinterpret_cast<const uint8_t*>(row) + at, sizeof window);
  window = __builtin_bswap64(window);  // byte `at` first: hex order
  return static_cast<uint32_t>((window << (lo - 8 * at)) >> (64 - len));
}

// Checks that saved table t indexes exactly the n saved rows (MIHIndex's borrowing constructor,
// after the structural checks, for a table the fast pass below found wrong: this names the
// first bad entry): its slots are a permutation of 0..n-1, and every entry lies in
// the bucket its row's substring gives and holds that substring's residual byte. One pass in
// bucket order, reading the rows in slot order (random: their lines are prefetched well
// ahead). A bitmap (n bits) finds a row listed twice: n distinct slots below n are a
// permutation.
void check_table_rows(size_t t, const MihTableLayout& table, const uint32_t* starts, const uint8_t* residual,
                      const uint32_t* slot, const uint64_t* rows, size_t n, size_t nwords) {
  constexpr size_t kAhead = 32;
  const auto fail = [&](const char* what, const std::string& message) {
    require(false, what, "table " + std::to_string(t) + ": " + message);
  };
  const size_t at = std::min<size_t>(table.lo / 8, nwords * 8 - 8);
  std::vector<uint64_t> seen((n + 63) / 64, 0);
  uint64_t bucket = 0;
  for (size_t e = 0; e < n; ++e) {
    if (e + kAhead < n) __builtin_prefetch(reinterpret_cast<const uint8_t*>(rows + size_t{slot[e + kAhead]} * nwords) + at);
    while (starts[bucket + 1] <= e) ++bucket;  // starts run from 0 to n, non-decreasing (checked)
    const uint32_t s = slot[e];
    uint64_t& word = seen[s / 64];
    const uint64_t bit = uint64_t{1} << (s % 64);
    if ((word & bit) != 0) fail("slot", "row " + std::to_string(s) + " is listed twice (entry " + std::to_string(e) + ")");
    word |= bit;
    const uint32_t key = row_substring(rows + size_t{s} * nwords, nwords, table.lo, table.len);
    if ((uint64_t{key} >> table.shift) != bucket) {
      fail("slot", "entry " + std::to_string(e) + " puts row " + std::to_string(s) + " in bucket " +
                       std::to_string(bucket) + ", but its code's substring is in bucket " +
                       std::to_string(uint64_t{key} >> table.shift));
    }
    const uint8_t expected = residual_of(table.shift, key);
    if (residual[e] != expected) {
      fail("residual", "entry " + std::to_string(e) + " (row " + std::to_string(s) + ") holds " +
                           std::to_string(residual[e]) + ", but its code's substring gives " + std::to_string(expected));
    }
  }
}

// ---- Checking saved tables against their rows, fast ----------------------------------------
// check_table_rows reads a row's code for every table entry: 110M random reads of a 320 MB
// array at 10M PDQ hashes (a TLB and a DRAM miss each). The pass below checks the same thing
// with random access confined to a 4-byte-per-row array: per table, every entry e (bucket b,
// row s) writes its expected value (b, residual[e]) + 1 into expected[s] (a scatter: stores do
// not stall, and are prefetched for writing ahead); then one sequential pass over the rows
// compares every row's value from its code with expected[row]. The arrays start zeroed, so a
// row no entry wrote (0) fails the compare: n entries below n that write every row are a
// permutation. The +1 keeps a written value from 0 unless values use all 32 bits (a 32-bit
// substring with shift <= 8): those tables also mark rows in a bitmap. Tables are done in
// groups whose arrays take at most a quarter of the index's arrays, so the rows are read
// once per group. The pass only answers pass or fail; a failing table is then run through
// check_table_rows, which names the first bad entry.

// The value an entry's (bucket, residual) and a row's substring are compared by: the bucket
// bits above the residual's bits, plus one.
struct ExpectedValue {
  uint32_t shift, residual_bits, residual_mask;
  explicit ExpectedValue(const MihTableLayout& t) noexcept
      : shift(t.shift), residual_bits(t.shift < 8 ? t.shift : 8u), residual_mask((1u << residual_bits) - 1u) {}
  // Whether the values can use all 32 bits, so value + 1 can wrap to the unwritten 0.
  bool full_width(uint32_t len) const noexcept { return len - shift + residual_bits >= 32; }
  uint32_t of_key(uint32_t key) const noexcept {
    return (((key >> shift) << residual_bits) | (key & residual_mask)) + 1u;
  }
};

// row_substring with the table's offsets worked out once: the 8 bytes at row byte `at`,
// byte-swapped, shifted up then down.
struct SubstringReader {
  size_t at;
  uint32_t up, down;
  SubstringReader(const MihTableLayout& t, size_t nwords) noexcept
      : at(std::min<size_t>(t.lo / 8, nwords * 8 - 8)),
        up(static_cast<uint32_t>(t.lo - 8 * at)),
        down(64 - t.len) {}
  uint32_t operator()(const uint8_t* row) const noexcept {
    uint64_t window;
    std::memcpy(&window, row + at, sizeof window);
    return static_cast<uint32_t>((__builtin_bswap64(window) << up) >> down);
  }
};

// n zeroed uint32s. calloc takes fresh (already zero) pages from the kernel for large blocks
// instead of clearing them; on Linux they are offered transparent huge pages (fewer TLB
// misses for the random writes).
struct ZeroedArray {
  struct Free {
    void operator()(uint32_t* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<uint32_t, Free> data;
  explicit ZeroedArray(size_t n) : data(static_cast<uint32_t*>(std::calloc(std::max<size_t>(n, 1), sizeof(uint32_t)))) {
    if (!data) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr uintptr_t kHuge = uintptr_t{1} << 21;
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(data.get()) + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data.get()) + n * sizeof(uint32_t)) & ~(kHuge - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // advice only
#endif
  }
};

// Writes table t's expected values (see above) into `expected` (zeroed, n entries); false if
// the table already fails: a residual byte with bits above the residual's, or (full-width
// values only) a row listed twice.
bool scatter_expected(const MihTableLayout& table, const uint32_t* starts, const uint8_t* residual,
                      const uint32_t* slot, size_t n, uint32_t* expected) {
  constexpr size_t kAhead = 64;
  const ExpectedValue value(table);
  const size_t buckets = size_t{1} << (table.len - table.shift);
  uint32_t stray = 0;  // residual bits above the residual's width
  if (!value.full_width(table.len)) {
    for (size_t b = 0; b < buckets; ++b) {
      const uint32_t high = static_cast<uint32_t>(b) << value.residual_bits;
      for (size_t e = starts[b]; e < starts[b + 1]; ++e) {
        if (e + kAhead < n) __builtin_prefetch(expected + slot[e + kAhead], 1);
        stray |= residual[e] & ~value.residual_mask;
        expected[slot[e]] = (high | residual[e]) + 1u;
      }
    }
    return stray == 0;
  }
  std::vector<uint64_t> seen((n + 63) / 64, 0);
  uint64_t twice = 0;
  for (size_t b = 0; b < buckets; ++b) {
    const uint32_t high = static_cast<uint32_t>(b) << value.residual_bits;
    for (size_t e = starts[b]; e < starts[b + 1]; ++e) {
      if (e + kAhead < n) __builtin_prefetch(expected + slot[e + kAhead], 1);
      const uint32_t s = slot[e];
      uint64_t& word = seen[s / 64];
      const uint64_t bit = uint64_t{1} << (s % 64);
      twice |= word & bit;
      word |= bit;
      stray |= residual[e] & ~value.residual_mask;
      expected[s] = (high | residual[e]) + 1u;
    }
  }
  return stray == 0 && twice == 0;
}

// Whether rows [begin, end) give table t's expected values.
bool rows_match_expected(const MihTableLayout& table, const uint32_t* expected, const uint64_t* rows, size_t nwords,
                         size_t begin, size_t end) {
  const ExpectedValue value(table);
  const SubstringReader substring(table, nwords);
  const uint8_t* row = reinterpret_cast<const uint8_t*>(rows + begin * nwords);
  const size_t stride = nwords * 8;
  uint32_t differ = 0;
  if (table.shift <= 8) {  // the residual holds every bit below the bucket: the value is key + 1
    for (size_t r = begin; r < end; ++r, row += stride) differ |= expected[r] ^ (substring(row) + 1u);
  } else {
    for (size_t r = begin; r < end; ++r, row += stride) differ |= expected[r] ^ value.of_key(substring(row));
  }
  return differ == 0;
}

// The first table (lowest index) in which an entry disagrees with the rows, or m if none.
size_t first_table_disagreeing(const MihArraysView& a, const std::vector<const uint32_t*>& table_starts,
                               size_t nwords, size_t threads) {
  const size_t n = a.n, m = a.tables.size();
  // Scratch of at most a quarter of the index's arrays (4 bytes a row per table in a group).
  size_t arrays_bytes = n * (8 + nwords * 8 + 5 * m);
  for (size_t t = 0; t < m; ++t) arrays_bytes += ((size_t{1} << (a.tables[t].len - a.tables[t].shift)) + 1) * 4;
  const size_t most = std::clamp<size_t>(arrays_bytes / 4 / (4 * n), 1, m);
  const size_t groups = (m + most - 1) / most;
  std::atomic<size_t> first_bad{m};
  const auto mark = [&](size_t t) {
    size_t seen = first_bad.load();
    while (t < seen && !first_bad.compare_exchange_weak(seen, t)) {
    }
  };
  constexpr size_t kRowsPerTask = size_t{1} << 16, kRowsPerBlock = 2048;
  size_t t0 = 0;
  for (size_t g = 0; g < groups && first_bad.load() == m; ++g) {
    const size_t t1 = t0 + (m - t0) / (groups - g);  // groups of sizes differing by at most one
    std::vector<ZeroedArray> expected;
    expected.reserve(t1 - t0);
    for (size_t t = t0; t < t1; ++t) expected.emplace_back(n);
    parallel_for(t1 - t0, threads_for_work((t1 - t0) * n * 4, threads), [&](size_t i) {
      const size_t t = t0 + i;
      if (!scatter_expected(a.tables[t], table_starts[t], a.residual + t * n, a.slot + t * n, n,
                            expected[i].data.get())) {
        mark(t);
      }
    });
    // The rows once for the group, in blocks small enough to stay in L1/L2 across its tables.
    const size_t tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
    parallel_for(tasks, threads_for_work((t1 - t0) * n * 2, threads), [&](size_t task) {
      const size_t end = std::min(n, (task + 1) * kRowsPerTask);
      for (size_t begin = task * kRowsPerTask; begin < end; begin += kRowsPerBlock) {
        const size_t stop = std::min(end, begin + kRowsPerBlock);
        for (size_t t = t0; t < t1; ++t) {
          if (!rows_match_expected(a.tables[t], expected[t - t0].data.get(), a.rows, nwords, begin, stop)) mark(t);
        }
      }
    });
    t0 = t1;
  }
  return first_bad.load();
}

}  // namespace

MihCost mih_cost(size_t bits, size_t m, size_t n, uint32_t radius, size_t variants) noexcept {
  MihCost c;
  const double nv = static_cast<double>(std::max<size_t>(variants, 1));
  c.flat_nanoseconds = static_cast<double>(n) * static_cast<double>(words_for_bytes(bits / 8)) * kScanWordNs *
                       (1 + (nv - 1) * kScanVariantShare);
  if (m == 0) return c;
  const long rho = radius / m, a = radius % m;
  for (size_t t = 0; t < m; ++t) {
    const uint32_t len = split_length(bits, m, t);
    const double probes = ball_size(len, static_cast<long>(t) <= a ? rho : rho - 1);
    c.probes += probes;
    c.candidates += probes * static_cast<double>(n) / static_cast<double>(uint64_t{1} << len);
  }
  // Each variant probes its own balls (their buckets rarely overlap) and its candidates are
  // checked against it alone (MIHIndex::Query::verify_found).
  c.probes *= nv;
  c.candidates *= nv;
  c.nanoseconds = c.probes * kProbeNs + c.candidates * kVerifyNs;
  return c;
}

size_t choose_substrings(size_t bits, size_t n, uint32_t radius) noexcept {
  const size_t lo = std::max<size_t>(1, (bits + 31) / 32), hi = std::max(lo, bits / 4);  // 4..32-bit substrings
  size_t best = lo;
  double best_ns = mih_cost(bits, lo, n, radius).nanoseconds;
  for (size_t m = lo + 1; m <= hi; ++m) {
    const double ns = mih_cost(bits, m, n, radius).nanoseconds;
    if (ns < best_ns) best = m, best_ns = ns;
  }
  return best;
}

// One query as the searches take it: a plain hash (nv == 0), or a stack of nv variants back to
// back (a stored hash's distance is then its smallest over them; see search_variants).
struct Needles {
  const uint64_t* q;
  size_t nv;
  size_t count() const noexcept { return nv == 0 ? 1 : nv; }
};

// Per-query scratch, reused across the queries of one task. Holds raw pointers to the index's
// arrays, taken once under the caller's shared lock: the hot loops never ask an Array whether
// it is a view.
class MIHIndex::Query {
  struct TableView : MihTableLayout {
    const uint32_t* starts;
    const uint8_t* residual;
    const uint32_t* slot;
  };

 public:
  explicit Query(const MIHIndex& index)
      : ix_(index), codes_(index.codes_.data()), ids_(index.ids_.data()), alive_(index.alive_.data()) {
    tables_.reserve(index.tables_.size());
    for (const Table& t : index.tables_) {
      tables_.push_back({t, t.starts.data(), t.residual.data(), t.slot.data()});
    }
  }

  // Appends the slots of table t's buckets for every substring value in `values`. Staged so
  // that the cache misses of many buckets overlap: prefetch every directory entry, then every
  // bucket, then read them.
  void probe(const TableView& t, const std::vector<uint32_t>& values, std::vector<uint32_t>& out) {
    for (uint32_t v : values) __builtin_prefetch(&t.starts[uint64_t{v} >> t.shift]);
    ranges_.clear();
    for (uint32_t v : values) {
      const uint64_t prefix = uint64_t{v} >> t.shift;
      const uint32_t begin = t.starts[prefix], end = t.starts[prefix + 1];
      if (begin == end) continue;
      __builtin_prefetch(&t.residual[begin]);
      __builtin_prefetch(&t.slot[begin]);
      ranges_.push_back({begin, end, residual_of(t.shift, v)});
    }
    for (const Range& r : ranges_) {
      for (uint32_t e = r.begin; e < r.end; ++e) {
        if (t.residual[e] == r.residual) out.push_back(t.slot[e]);
      }
    }
  }

  // Verifies candidate slots (sorted, unique), prefetching codes a few candidates ahead:
  // visit(slot, distance, variant), the distance being the smallest over the needles and the
  // variant the first reaching it.
  template <class Visit>
  void verify(const Needles& q, const std::vector<uint32_t>& slots, Visit&& visit) {
    constexpr size_t kAhead = 8;
    for (size_t j = 0; j < std::min(kAhead, slots.size()); ++j) __builtin_prefetch(code(slots[j]));
    for (size_t j = 0; j < slots.size(); ++j) {
      if (j + kAhead < slots.size()) __builtin_prefetch(code(slots[j + kAhead]));
      verify(q, slots[j], visit);
    }
  }

  template <class Visit>
  void verify(const Needles& q, uint32_t slot, Visit&& visit) {
    if (!alive_[slot]) return;
    const size_t nwords = ix_.nwords_;
    uint32_t best = bits::distance(q.q, code(slot), nwords);
    uint8_t first = 0;
    for (size_t v = 1; v < q.nv; ++v) {
      const uint32_t d = bits::distance(q.q + v * nwords, code(slot), nwords);
      if (d < best) best = d, first = static_cast<uint8_t>(v);
    }
    visit(slot, best, first);
  }

  // Range verification of a variant stack: `found` holds (slot << 3 | variant) for each bucket
  // entry a variant's probes found, sorted. A stored hash within r of the stack is within r of
  // its best variant, whose probes found it (pigeonhole, per variant), so a slot is checked
  // against the variants that found it only (bounded: half the words reject most), and only a
  // slot within r of one of them is measured against all variants for the minimum.
  template <class Visit>
  void verify_found(const Needles& q, uint32_t r, const std::vector<uint64_t>& found, Visit&& visit) {
    constexpr size_t kAhead = 8;
    const size_t nwords = ix_.nwords_;
    for (size_t j = 0; j < found.size();) {
      if (j + kAhead < found.size()) __builtin_prefetch(code(found[j + kAhead] >> 3));
      const uint32_t slot = static_cast<uint32_t>(found[j] >> 3);
      bool near = false;
      for (; j < found.size() && (found[j] >> 3) == slot; ++j) {
        near = near || bits::bounded_distance(q.q + (found[j] & 7) * nwords, code(slot), nwords, r) <= r;
      }
      if (near) verify(q, slot, visit);
    }
  }

  // The len-bit values exactly `radius` bits from `center`.
  void values_at(uint32_t center, uint32_t len, uint32_t radius) {
    values_.clear();
    bits::for_each_mask(len, radius, [&](uint32_t mask) { values_.push_back(center ^ mask); });
  }

  // Appends, for every needle, the slots of table t's buckets `level` bits from its substring.
  void probe_level(const Needles& q, const TableView& table, uint32_t level, std::vector<uint32_t>& out) {
    for (size_t v = 0; v < q.count(); ++v) {
      const auto* qb = reinterpret_cast<const uint8_t*>(q.q + v * ix_.nwords_);
      values_at(substring_hex_order(qb, ix_.nbytes(), table.lo, table.len), table.len, level);
      probe(table, values_, out);
    }
  }

  // Every live slot in [begin, end): visit(slot, distance, variant). A plain query takes the
  // SIMD row kernel; a variant stack the multi-needle tiled kernel, over blocks of rows copied
  // into the tiled layout (in L2), keeping codes within `bound()` (re-read per block).
  template <class Bound, class Visit>
  void scan(const Needles& q, size_t begin, size_t end, Bound&& bound, Visit&& visit) {
    const auto& k = active_kernels();
    const size_t nwords = ix_.nwords_;
    if (q.nv == 0) {
      distances_.resize(4096);
      for (size_t b0 = begin; b0 < end; b0 += distances_.size()) {
        const size_t count = std::min(distances_.size(), end - b0);
        k.scan(q.q, codes_ + b0 * nwords, count, nwords, distances_.data());
        for (size_t j = 0; j < count; ++j) {
          if (alive_[b0 + j]) visit(b0 + j, distances_[j], uint8_t{0});
        }
      }
      return;
    }
    // About 64 KiB of codes per call (L2-resident): a variant stack's scan does several times a
    // plain query's work per code, and the kernel sets up per-needle state on each call.
    const size_t block = std::max<size_t>(64, 65536 / (nwords * 8)) / kernels::kTileCodes * kernels::kTileCodes;
    tiles_.assign(block * nwords, 0);
    idx_.resize(block);
    distances_.resize(block);
    variants_.resize(block);
    for (size_t b0 = begin; b0 < end; b0 += block) {
      const size_t count = std::min(block, end - b0);
      for (size_t j = 0; j < count; ++j) bits::tile_put(tiles_.data(), nwords, j, code(b0 + j));
      const size_t hits = k.scan_tiles_variants_le(q.q, q.nv, tiles_.data(), count, nwords, bound(), idx_.data(),
                                                   distances_.data(), variants_.data());
      for (size_t j = 0; j < hits; ++j) {
        const size_t slot = b0 + idx_[j];
        if (alive_[slot]) visit(slot, distances_[j], variants_[j]);
      }
    }
  }

  void range(const Needles& q, uint32_t r, std::vector<uint16_t>& out_d, std::vector<int64_t>& out_id,
             std::vector<uint8_t>& out_v) {
    std::vector<Neighbor> hits;
    const auto keep = [&](size_t slot, uint32_t d, uint8_t v) {
      if (d <= r) hits.push_back({d, ids_[slot], v});
    };
    const auto bound = [r] { return r; };
    const size_t m = tables_.size();
    scan(q, ix_.built_, ix_.ids_.size(), bound, keep);  // the linear tail
    const MihCost cost = mih_cost(ix_.bits_, m, ix_.built_, r, q.count());
    if (m == 0 || cost.nanoseconds >= cost.flat_nanoseconds) {
      scan(q, 0, ix_.built_, bound, keep);
    } else {
      const long rho = r / m, a = r % m;
      candidates_.clear();
      found_.clear();
      for (size_t v = 0; v < q.count(); ++v) {
        const Needles one{q.q + v * ix_.nwords_, 0};
        for (size_t t = 0; t < m; ++t) {
          const long rt = static_cast<long>(t) <= a ? rho : rho - 1;
          for (long level = 0; level <= rt; ++level) probe_level(one, tables_[t], static_cast<uint32_t>(level), candidates_);
        }
        if (q.nv == 0) break;
        for (uint32_t slot : candidates_) found_.push_back(uint64_t{slot} << 3 | v);  // kMaxNeedles == 8
        candidates_.clear();
      }
      if (q.nv == 0) {
        std::sort(candidates_.begin(), candidates_.end());
        candidates_.erase(std::unique(candidates_.begin(), candidates_.end()), candidates_.end());
        verify(q, candidates_, keep);
      } else {
        std::sort(found_.begin(), found_.end());
        found_.erase(std::unique(found_.begin(), found_.end()), found_.end());
        verify_found(q, r, found_, keep);
      }
    }
    std::sort(hits.begin(), hits.end());
    out_d.resize(hits.size());
    out_id.resize(hits.size());
    if (q.nv != 0) out_v.resize(hits.size());
    for (size_t j = 0; j < hits.size(); ++j) {
      out_d[j] = static_cast<uint16_t>(hits[j].distance), out_id[j] = hits[j].id;
      if (q.nv != 0) out_v[j] = hits[j].variant;
    }
  }

  // Exact kNN by growing the radius table by table: after table t is probed at radius rho (the
  // others at rho - 1 or rho), every stored hash within m * rho + t has been seen, so the search
  // stops once the k-th best is that close. A variant stack probes every variant's substrings
  // at each step: a stored hash is seen through its best variant by the same argument, and its
  // distance is then measured against all of them. When the neighbors are far (a fresh upload
  // among random hashes), the radius would explode: once the time spent passes a third of a
  // flat scan's, or the next step alone is expected to, it falls back to a flat scan, bounding
  // the worst case near 1.3x a flat scan.
  void knn(const Needles& q, TopK& top, size_t k) {
    const auto push = [&](size_t slot, uint32_t d, uint8_t v) {
      if (d <= top.bound()) top.push(d, ids_[slot], v);
    };
    const auto bound = [&] { return top.bound(); };
    const size_t m = tables_.size();
    scan(q, ix_.built_, ix_.ids_.size(), bound, push);
    if (m == 0) return scan(q, 0, ix_.built_, bound, push);
    const double nv = static_cast<double>(q.count());
    const double budget_ns = mih_cost(ix_.bits_, 0, ix_.built_, 0, q.count()).flat_nanoseconds / 3;
    const auto start = std::chrono::steady_clock::now();
    uint32_t min_len = 32;
    for (const TableView& t : tables_) min_len = std::min(min_len, t.len);
    seen_.clear();
    for (uint32_t rho = 0; rho <= min_len; ++rho) {
      for (size_t t = 0; t < m; ++t) {
        const TableView& table = tables_[t];
        const double step = ball_size(table.len, rho) - ball_size(table.len, static_cast<long>(rho) - 1);
        const double spent = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
        if (spent + step * nv * kProbeNs > budget_ns) {  // cheaper to look at everything
          top.clear();
          scan(q, 0, ix_.ids_.size(), bound, push);
          return;
        }
        candidates_.clear();
        probe_level(q, table, rho, candidates_);
        std::sort(candidates_.begin(), candidates_.end());
        candidates_.erase(std::unique(candidates_.begin(), candidates_.end()), candidates_.end());
        fresh_.clear();
        std::set_difference(candidates_.begin(), candidates_.end(), seen_.begin(), seen_.end(),
                            std::back_inserter(fresh_));
        verify(q, fresh_, push);
        merged_.clear();
        std::merge(seen_.begin(), seen_.end(), fresh_.begin(), fresh_.end(), std::back_inserter(merged_));
        seen_.swap(merged_);
        if (top.size() == k && top.bound() <= m * rho + t) return;
      }
    }
    // Every value of the shortest table was probed: every stored hash has been seen.
  }

 private:
  struct Range {
    uint32_t begin, end, residual;
  };
  const uint64_t* code(size_t slot) const noexcept { return codes_ + slot * ix_.nwords_; }

  const MIHIndex& ix_;
  const uint64_t* codes_;
  const int64_t* ids_;
  const uint8_t* alive_;
  std::vector<TableView> tables_;
  std::vector<uint32_t> candidates_, seen_, fresh_, merged_, values_, idx_;
  std::vector<Range> ranges_;
  std::vector<uint16_t> distances_;
  std::vector<uint8_t> variants_;
  std::vector<uint64_t> tiles_, found_;
};

MIHIndex::MIHIndex(size_t bits, size_t substrings, uint32_t max_distance)
    : bits_(bits), nwords_(words_for_bytes(bits / 8)), fixed_substrings_(substrings), expected_radius_(max_distance) {
  if (bits == 0 || bits % 8 != 0 || bits > 4096) {
    throw std::invalid_argument("bits: expected a multiple of 8 in [8, 4096], got " + std::to_string(bits));
  }
  if (substrings != 0 && (substrings > bits || (bits + substrings - 1) / substrings > 32)) {
    throw std::invalid_argument("substrings: expected a count giving substrings of 1 to 32 bits for " +
                                std::to_string(bits) + " bits, got " + std::to_string(substrings));
  }
}

MIHIndex::MIHIndex(size_t bits, size_t substrings, uint32_t max_distance, const MihArraysView& a,
                   bool check_rows)
    : MIHIndex(bits, substrings, max_distance) {
  const size_t n = a.n, m = a.tables.size();
  require(n <= UINT32_MAX, "n", "an MIHIndex holds at most 2^32 - 1 hashes, got " + std::to_string(n));
  require(m <= bits_ && (m > 0 || n == 0), "tables",
          std::to_string(m) + " tables for " + std::to_string(n) + " hashes of " + std::to_string(bits_) + " bits");
  require(fixed_substrings_ == 0 || m == fixed_substrings_ || m == 0, "tables",
          std::to_string(m) + " tables, but the index was saved with substrings=" + std::to_string(fixed_substrings_));
  require_size("ids", a.ids_size, n);
  require_size("rows", a.rows_size, n * nwords_);
  require_size("residual", a.residual_size, m * n);
  require_size("slot", a.slot_size, m * n);
  // The substring layout rebuild() makes: contiguous, in order, lengths bits/m (+1 for the first
  // bits % m tables), each 1..32 bits; directories of 2^(len - shift) + 1 starts.
  size_t starts_size = 0;
  uint32_t lo = 0;
  for (size_t t = 0; t < m; ++t) {
    const MihTableLayout& l = a.tables[t];
    const uint32_t len = split_length(bits_, m, t);
    require(l.lo == lo && l.len == len && len >= 1 && len <= 32 && l.shift <= l.len, "tables",
            "table " + std::to_string(t) + " has lo=" + std::to_string(l.lo) + " len=" + std::to_string(l.len) +
                " shift=" + std::to_string(l.shift) + ", expected lo=" + std::to_string(lo) + " len=" +
                std::to_string(len) + " (1..32) and shift <= len");
    lo += len;
    starts_size += (size_t{1} << (l.len - l.shift)) + 1;
  }
  require_size("starts", a.starts_size, starts_size);
  require_aligned("rows", a.rows);
  require_aligned("ids", a.ids);
  require_aligned("starts", a.starts);
  require_aligned("slot", a.slot);
  const size_t tail_bytes = nbytes() % 8;
  check_padding("rows", a.rows, n, nwords_ - 1, nwords_, 1, tail_bytes == 0 ? 0 : ~uint64_t{0} << (8 * tail_bytes));
  const uint32_t* starts = a.starts;
  for (size_t t = 0; t < m; ++t) {
    const size_t count = (size_t{1} << (a.tables[t].len - a.tables[t].shift)) + 1;
    check_starts("starts", starts, count, n);
    starts += count;
  }
  check_below("slot", a.slot, m * n, n);
  next_id_ = std::max(check_ids(a.ids, n), a.next_id);
  if (check_rows && n > 0) {
    std::vector<const uint32_t*> table_starts(m);
    starts = a.starts;
    for (size_t t = 0; t < m; ++t) {
      table_starts[t] = starts;
      starts += (size_t{1} << (a.tables[t].len - a.tables[t].shift)) + 1;
    }
    // Pass or fail on every core, fast; a failing table is then checked entry by entry in
    // slot order, which names the first entry that disagrees.
    const size_t threads = std::max(1u, std::thread::hardware_concurrency());
    const size_t t = first_table_disagreeing(a, table_starts, nwords_, threads);
    if (t < m) {
      check_table_rows(t, a.tables[t], table_starts[t], a.residual + t * n, a.slot + t * n, a.rows, n, nwords_);
      require(false, "slot", "table " + std::to_string(t) + ": its entries disagree with the rows");  // not reached
    }
  }

  codes_ = Array<uint64_t>::view(a.rows, n * nwords_);
  ids_ = Array<int64_t>::view(a.ids, n);
  std::vector<uint8_t> alive(n, 1);
  alive_.swap(alive);
  live_ = built_ = n;
  tables_.resize(m);
  starts = a.starts;
  for (size_t t = 0; t < m; ++t) {
    Table& table = tables_[t];
    static_cast<MihTableLayout&>(table) = a.tables[t];
    const size_t count = (size_t{1} << (table.len - table.shift)) + 1;
    table.starts = Array<uint32_t>::view(starts, count);
    table.residual = Array<uint8_t>::view(a.residual + t * n, n);
    table.slot = Array<uint32_t>::view(a.slot + t * n, n);
    starts += count;
  }
}

size_t MIHIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return live_;
}

size_t MIHIndex::substrings() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return tables_.size();
}

int64_t MIHIndex::next_id() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return next_id_;
}

size_t MIHIndex::memory_bytes() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  size_t total = codes_.capacity_bytes() + ids_.capacity_bytes() + alive_.capacity_bytes() +
                 id_map_.capacity() * sizeof(id_map_[0]);
  for (const Table& t : tables_) total += t.starts.capacity_bytes() + t.residual.capacity_bytes() + t.slot.capacity_bytes();
  return total;
}

size_t MIHIndex::copy_out(size_t n, int64_t* ids, uint8_t* codes) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  size_t out = 0;
  for (size_t s = 0; s < ids_.size() && out < n; ++s) {
    if (!alive_[s]) continue;
    ids[out] = ids_[s];
    std::memcpy(codes + out * nbytes(), code(s), nbytes());
    ++out;
  }
  return out;
}

void MIHIndex::ensure_id_map() const {
  if (!id_map_dirty_) return;
  id_map_.clear();
  id_map_.reserve(live_);
  for (size_t s = 0; s < ids_.size(); ++s) {
    if (alive_[s]) id_map_.emplace_back(ids_[s], static_cast<uint32_t>(s));
  }
  std::sort(id_map_.begin(), id_map_.end());
  id_map_dirty_ = false;
}

void MIHIndex::add(const uint8_t* codes, size_t n, const int64_t* ids) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (ids_.size() + n > UINT32_MAX) throw std::invalid_argument("hashes: an MIHIndex holds at most 2^32 - 1 hashes");
  int64_t max_new = -1, min_new = INT64_MAX;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0) throw std::invalid_argument("ids: expected non-negative ids, got " + std::to_string(ids[i]));
    max_new = std::max(max_new, ids[i]);
    min_new = std::min(min_new, ids[i]);
  }
  // Ids at or above next_id_ cannot collide, except once next_id_ saturates at INT64_MAX.
  if (n > 0 && (min_new < next_id_ || next_id_ == INT64_MAX) && live_ > 0) {
    ensure_id_map();
    for (size_t i = 0; i < n; ++i) {
      const auto it = std::lower_bound(id_map_.begin(), id_map_.end(), std::make_pair(ids[i], uint32_t{0}));
      if (it != id_map_.end() && it->first == ids[i] && alive_[it->second]) {
        throw std::invalid_argument("ids: id " + std::to_string(ids[i]) + " is already in the index");
      }
    }
  }
  const size_t old = ids_.size();
  // Copy-on-write and allocation may throw bad_alloc: the contents have not changed yet (a
  // view copied into owned memory holds the same values).
  std::vector<int64_t>& owned_ids = ids_.mut();
  owned_ids.reserve(old + n);
  std::vector<uint8_t>& owned_alive = alive_.mut();
  owned_alive.reserve(old + n);
  std::vector<uint64_t>& owned_codes = codes_.mut();
  owned_codes.resize((old + n) * nwords_);
  pad_rows(codes, n, nbytes(), owned_codes.data() + old * nwords_);
  owned_ids.insert(owned_ids.end(), ids, ids + n);
  owned_alive.insert(owned_alive.end(), n, 1);
  live_ += n;
  next_id_ = max_new == INT64_MAX ? INT64_MAX : std::max(next_id_, max_new + 1);
  id_map_dirty_ = true;
  if (ids_.size() - built_ > std::max<size_t>(1024, built_ / 8)) try_rebuild();
}

size_t MIHIndex::remove(const int64_t* ids, size_t n) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  ensure_id_map();
  size_t removed = 0;
  std::vector<uint8_t>* alive = nullptr;  // copied on the first removal (copy-on-write)
  for (size_t i = 0; i < n; ++i) {
    const auto it = std::lower_bound(id_map_.begin(), id_map_.end(), std::make_pair(ids[i], uint32_t{0}));
    if (it != id_map_.end() && it->first == ids[i] && alive_[it->second]) {
      if (alive == nullptr) alive = &alive_.mut();  // may throw before anything is removed
      (*alive)[it->second] = 0;
      --live_;
      ++removed;
    }
  }
  if (ids_.size() - live_ > std::max<size_t>(1024, live_ / 4)) try_rebuild();  // compact
  return removed;
}

void MIHIndex::rebuild() {
  // Everything is built off to the side, then committed with non-throwing swaps.
  std::vector<uint64_t> codes;
  std::vector<int64_t> ids;
  const bool compact = live_ != ids_.size();
  if (compact) {  // drop removed slots; ids stay as they are
    codes.reserve(live_ * nwords_);
    ids.reserve(live_);
    for (size_t s = 0; s < ids_.size(); ++s) {
      if (!alive_[s]) continue;
      codes.insert(codes.end(), codes_.data() + s * nwords_, codes_.data() + (s + 1) * nwords_);
      ids.push_back(ids_[s]);
    }
  }
  const uint64_t* source = compact ? codes.data() : codes_.data();
  const size_t n = compact ? ids.size() : ids_.size();
  const auto code_at = [&](size_t s) { return reinterpret_cast<const uint8_t*>(source + s * nwords_); };
  const size_t m = fixed_substrings_ != 0 ? fixed_substrings_ : choose_substrings(bits_, n, expected_radius_);
  const uint32_t log2n = n > 1 ? static_cast<uint32_t>(63 - __builtin_clzll(n)) : 0;
  std::vector<Table> tables(m);
  uint32_t lo = 0;
  for (size_t t = 0; t < m; ++t) {
    tables[t].lo = lo;
    tables[t].len = split_length(bits_, m, t);
    lo += tables[t].len;
  }
  // Tables are independent: build them on every core (a counting sort by prefix each).
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  parallel_for(m, threads_for_work(n * m * 4, threads), [&](size_t t) {
    Table& table = tables[t];
    // About 8 entries per prefix bucket, whatever the substring length.
    const uint32_t prefix = std::min(table.len, log2n > 3 ? log2n - 3 : 0);
    table.shift = table.len - prefix;
    std::vector<uint32_t> starts((size_t{1} << prefix) + 1, 0);
    std::vector<uint8_t> residual(n);
    std::vector<uint32_t> slot(n);
    std::vector<uint32_t> keys(n);
    for (size_t s = 0; s < n; ++s) {
      keys[s] = substring_hex_order(code_at(s), nbytes(), table.lo, table.len);
      ++starts[(uint64_t{keys[s]} >> table.shift) + 1];
    }
    for (size_t v = 1; v < starts.size(); ++v) starts[v] += starts[v - 1];
    std::vector<uint32_t> fill(starts.begin(), starts.end() - 1);
    for (size_t s = 0; s < n; ++s) {
      const uint32_t e = fill[uint64_t{keys[s]} >> table.shift]++;
      residual[e] = residual_of(table.shift, keys[s]);
      slot[e] = static_cast<uint32_t>(s);
    }
    table.starts.swap(starts);
    table.residual.swap(residual);
    table.slot.swap(slot);
  });
  std::vector<uint8_t> alive;
  if (compact) alive.assign(n, 1);  // may throw: nothing has changed yet
  // Commit: nothing below throws.
  if (compact) {
    codes_.swap(codes);
    ids_.swap(ids);
    alive_.swap(alive);
    id_map_dirty_ = true;
  }
  tables_.swap(tables);
  built_ = n;
}

void MIHIndex::compact() {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (needs_compaction()) rebuild();
}

void MIHIndex::export_arrays(MihArrays& out) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (needs_compaction()) rebuild();
  const size_t n = ids_.size();
  out.n = n;
  out.next_id = next_id_;
  out.tables.clear();
  out.rows.assign(codes_.data(), codes_.data() + codes_.size());
  out.ids.assign(ids_.data(), ids_.data() + n);
  size_t starts_size = 0;
  for (const Table& t : tables_) starts_size += t.starts.size();
  out.starts.clear();
  out.starts.reserve(starts_size);
  out.residual.clear();
  out.residual.reserve(tables_.size() * n);
  out.slot.clear();
  out.slot.reserve(tables_.size() * n);
  for (const Table& t : tables_) {
    out.tables.push_back(t);  // the layout part
    out.starts.insert(out.starts.end(), t.starts.data(), t.starts.data() + t.starts.size());
    out.residual.insert(out.residual.end(), t.residual.data(), t.residual.data() + n);
    out.slot.insert(out.slot.end(), t.slot.data(), t.slot.data() + n);
  }
}

void MIHIndex::try_rebuild() noexcept {
  try {
    rebuild();
  } catch (...) {
    // Out of memory (or threads): the index is unchanged and still exact, with the new hashes
    // in the linear tail; the next add or remove tries again.
  }
}

void MIHIndex::search_impl(const uint8_t* queries, size_t nq, size_t nv, size_t k, KnnResults& out,
                           size_t nthreads, const Interrupt& interrupt) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const size_t kk = std::min(k, live_);
  out.k = kk;
  out.distances.resize(nq * kk);
  out.ids.resize(nq * kk);
  out.variants.resize(nv == 0 ? 0 : nq * kk);
  if (nq == 0 || kk == 0) return;
  const size_t stride = std::max<size_t>(nv, 1);
  const WordView qv(queries, nq * stride, nbytes());
  const size_t per_task = 16;
  parallel_for((nq + per_task - 1) / per_task, nthreads, [&](size_t task) {
    Query query(*this);
    std::vector<Neighbor> storage(kk);
    for (size_t q = task * per_task; q < std::min(nq, (task + 1) * per_task); ++q) {
      TopK top(storage.data(), kk);
      query.knn(Needles{qv.row(q * stride), nv}, top, kk);
      top.write_sorted(out.distances.data() + q * kk, out.ids.data() + q * kk,
                       nv == 0 ? nullptr : out.variants.data() + q * kk);
    }
  }, interrupt);
}

void MIHIndex::range_impl(const uint8_t* queries, size_t nq, size_t nv, uint32_t max_distance, RangeResults& out,
                          size_t nthreads, const Interrupt& interrupt) const {
  if (out.nqueries() != nq) throw std::invalid_argument("range_search: results sized for another batch");
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const size_t stride = std::max<size_t>(nv, 1);
  const WordView qv(queries, nq * stride, nbytes());
  const size_t per_task = 16;
  parallel_for((nq + per_task - 1) / per_task, nthreads, [&](size_t task) {
    Query query(*this);
    for (size_t q = task * per_task; q < std::min(nq, (task + 1) * per_task); ++q) {
      query.range(Needles{qv.row(q * stride), nv}, max_distance, out.distances_[q], out.ids_[q], out.variants_[q]);
    }
  }, interrupt);
}

}  // namespace hashmatch
