#include "hashmatch/join.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "hashmatch/bits.h"
#include "hashmatch/dispatch.h"
#include "hashmatch/word_view.h"

namespace hashmatch {
namespace {

using bits::ball_size;
using bits::bounded_distance;
using bits::for_each_mask;
using bits::popcount;
using bits::split_length;
using bits::substring_word_order;

constexpr uint32_t kMaxDenseBits = 24;  // substrings probed at radius > 0 are bucketed densely
constexpr size_t kMaxRows = std::numeric_limits<uint32_t>::max() - 1;

// --- The cost model ---------------------------------------------------------------------------
// Single-thread seconds per operation, fitted to runs on an AVX2 Zen 3 core at 200k and 1M
// hashes of 64 and 256 bits (benchmarks/test_join.py measures the result); only their ratios
// matter for the choice.
constexpr double kProbe = 2e-9;            // a neighbouring bucket looked up in the bitmap
constexpr double kHit = 10e-9;             // ... that is occupied: a block comparison set up
constexpr double kCandidateBase = 0.85e-9;  // per candidate pair compared
constexpr double kCandidateWord = 0.24e-9;
constexpr double kBucketRow = 12e-9;       // per row and substring: key, counting sort, copy
constexpr double kSortRow = 80e-9;         // the same with a comparison sort (wide substrings)
constexpr double kDenseSlot = 4e-9;        // per slot of a dense bucket directory and bitmap
constexpr double kBruteBase = 0.15e-9;     // per pair: the tiled SIMD scan
constexpr double kBruteWord = 0.085e-9;

double pair_count(size_t na, size_t nb, bool self) {
  const double a = static_cast<double>(na);
  return self ? std::max(0.0, a * (a - 1) / 2) : a * static_cast<double>(nb);
}

double brute_seconds(size_t bits, size_t na, size_t nb, bool self) {
  const double words = static_cast<double>(words_for_bytes((bits + 7) / 8));
  return pair_count(na, nb, self) * (kBruteBase + kBruteWord * words);
}

// The substrings of an m-way split: lengths differing by at most one (longer first), radii by
// the pigeonhole bound; substrings whose radius would be negative are not needed.
// The substrings tile bits [first, first + bits). Bits outside the window are never probed: the
// pigeonhole bound only needs the probed substrings' radii + 1 to add up to more than radius.
std::vector<JoinSubstring> split(size_t bits, uint32_t radius, size_t m, uint32_t first = 0) {
  std::vector<JoinSubstring> subs;
  const uint32_t q = radius / static_cast<uint32_t>(m);
  const uint32_t a = radius % static_cast<uint32_t>(m);
  uint32_t lo = first;
  for (size_t s = 0; s < m; ++s) {
    const uint32_t len = split_length(bits, m, s);
    if (s <= a) {
      subs.push_back({lo, len, q});
    } else if (q > 0) {
      subs.push_back({lo, len, q - 1});
    }
    lo += len;
  }
  return subs;
}

bool feasible(const std::vector<JoinSubstring>& subs) {
  for (const auto& s : subs) {
    if (s.len == 0 || s.len > 64 || (s.radius > 0 && s.len > kMaxDenseBits)) return false;
  }
  return true;
}

// Probability that a pair's substring is within its radius. `differ[b]` is the chance that
// bit b differs between two hashes (bits taken as independent, from a sample of the data), or
// null for uniform bits: then it is ball / 2^len. A bit that every hash shares (zero padding,
// a common prefix) makes its substring's buckets fuller and candidates likelier.
double candidate_rate(const JoinSubstring& s, const double* differ) {
  if (differ == nullptr) return std::min(1.0, ball_size(s.len, s.radius) / std::ldexp(1.0, static_cast<int>(s.len)));
  // within[k]: probability that exactly k of the bits so far differ, for k <= radius.
  std::vector<double> within(s.radius + 1, 0.0);
  within[0] = 1.0;
  for (uint32_t b = s.lo; b < s.lo + s.len; ++b) {
    const double p = std::clamp(differ[b], 0.0, 1.0);
    for (uint32_t k = s.radius; k > 0; --k) within[k] = within[k] * (1 - p) + within[k - 1] * p;
    within[0] *= 1 - p;
  }
  return std::min(1.0, std::accumulate(within.begin(), within.end(), 0.0));
}

double mih_seconds(const std::vector<JoinSubstring>& subs, size_t bits, size_t na, size_t nb, bool self,
                   const double* differ) {
  const double words = static_cast<double>(words_for_bytes((bits + 7) / 8));
  const double pairs = pair_count(na, nb, self);
  const double rows = static_cast<double>(self ? na : na + nb);
  double total = 0;
  for (const auto& s : subs) {
    const double slots = std::ldexp(1.0, static_cast<int>(s.len));
    const double ball = ball_size(s.len, s.radius);
    const double occupied = slots * -std::expm1(-static_cast<double>(na) / slots);
    const double hit_rate = -std::expm1(-static_cast<double>(self ? na : nb) / slots);
    const bool dense = s.len <= kMaxDenseBits;
    total += occupied * (ball - 1) * (kProbe + hit_rate * kHit);
    total += pairs * candidate_rate(s, differ) * (kCandidateBase + kCandidateWord * words);
    total += rows * (dense ? kBucketRow : kSortRow) + (dense ? slots * kDenseSlot * (self ? 1 : 2) : 0);
  }
  return total;
}

// --- Neighbouring buckets -----------------------------------------------------------------------

// Every non-zero mask of weight <= radius within len bits, by increasing weight.
std::vector<uint32_t> ball_masks(uint32_t len, uint32_t radius) {
  std::vector<uint32_t> masks;
  for (uint32_t weight = 1; weight <= std::min(radius, len); ++weight) {
    for_each_mask(len, weight, [&](uint32_t m) { masks.push_back(m); });
  }
  return masks;
}

// --- One side of a join, bucketed by one substring ----------------------------------------------

struct Buckets {
  std::vector<uint32_t> order;   // position -> row of the set
  std::vector<uint64_t> codes;   // rows in position order, nwords each
  std::vector<uint64_t> keys;    // substring value of each position (sorted)
  std::vector<uint32_t> starts;  // dense: 2^len + 1 bucket starts
  std::vector<uint64_t> occupied;  // dense: bitmap of non-empty buckets
  bool dense = false;

  // Positions of the bucket holding `key`: [first, second).
  std::pair<size_t, size_t> find(uint64_t key) const noexcept {
    if (dense) return {starts[key], starts[key + 1]};
    auto lo = std::lower_bound(keys.begin(), keys.end(), key);
    auto hi = std::upper_bound(lo, keys.end(), key);
    return {static_cast<size_t>(lo - keys.begin()), static_cast<size_t>(hi - keys.begin())};
  }
  bool has(uint64_t key) const noexcept { return (occupied[key / 64] >> (key % 64)) & 1; }
};

void bucket(const WordView& set, size_t n, const JoinSubstring& sub, size_t nthreads,
            const Interrupt& interrupt, Buckets& out) {
  const size_t nwords = set.nwords();
  out.dense = sub.len <= kMaxDenseBits;
  out.order.resize(n);
  out.keys.resize(n);
  std::vector<uint64_t> raw(n);
  const size_t chunk = 1 << 16;
  const size_t chunks = (n + chunk - 1) / chunk;
  parallel_for(chunks, nthreads, [&](size_t c) {
    for (size_t r = c * chunk; r < std::min(n, (c + 1) * chunk); ++r) raw[r] = substring_word_order(set.row(r), sub.lo, sub.len);
  }, interrupt);
  if (out.dense) {
    const size_t slots = size_t{1} << sub.len;
    out.starts.assign(slots + 1, 0);
    for (size_t r = 0; r < n; ++r) ++out.starts[raw[r] + 1];
    std::partial_sum(out.starts.begin(), out.starts.end(), out.starts.begin());
    std::vector<uint32_t> next(out.starts.begin(), out.starts.end() - 1);
    for (size_t r = 0; r < n; ++r) out.order[next[raw[r]]++] = static_cast<uint32_t>(r);
    out.occupied.assign((slots + 63) / 64, 0);
    for (size_t k = 0; k < slots; ++k) {
      if (out.starts[k + 1] > out.starts[k]) out.occupied[k / 64] |= uint64_t{1} << (k % 64);
    }
  } else {
    std::iota(out.order.begin(), out.order.end(), 0u);
    std::sort(out.order.begin(), out.order.end(), [&](uint32_t x, uint32_t y) {
      return raw[x] != raw[y] ? raw[x] < raw[y] : x < y;
    });
    out.starts.clear();
    out.occupied.clear();
  }
  out.codes.resize(n * nwords);
  parallel_for(chunks, nthreads, [&](size_t c) {
    for (size_t p = c * chunk; p < std::min(n, (c + 1) * chunk); ++p) {
      const uint32_t r = out.order[p];
      out.keys[p] = raw[r];
      std::memcpy(out.codes.data() + p * nwords, set.row(r), nwords * sizeof(uint64_t));
    }
  }, interrupt);
}

}  // namespace

// --- Plans ----------------------------------------------------------------------------------------

JoinPlan plan_join(size_t bits, size_t na, size_t nb, uint32_t radius, bool self, const double* differ) {
  JoinPlan best;
  best.brute_force = true;
  best.brute_seconds = brute_seconds(bits, na, nb, self);
  best.mih_seconds = std::numeric_limits<double>::infinity();
  // Up to radius + 1 substrings, or more (only the first radius + 1 are then used, each at
  // radius 0) when fewer would be too wide to bucket.
  // Windows: the whole hash, and (with measured bits) the span of bits that vary, so that
  // constant bits (zero padding, a shared prefix) are left out of every substring.
  std::vector<std::pair<uint32_t, uint32_t>> windows{{0, static_cast<uint32_t>(bits)}};
  if (differ != nullptr) {
    constexpr double kVaries = 0.01;
    uint32_t lo = 0, hi = static_cast<uint32_t>(bits);
    while (lo < hi && differ[lo] < kVaries) ++lo;
    while (hi > lo && differ[hi - 1] < kVaries) --hi;
    if (hi > lo && hi - lo < bits) windows.emplace_back(lo, hi - lo);
  }
  for (const auto& [first, width] : windows) {
    const size_t max_m = std::min<size_t>(width, std::max<size_t>(size_t{radius} + 1, 64));
    for (size_t m = 1; m <= max_m; ++m) {
      auto subs = split(width, radius, m, first);
      if (!feasible(subs)) continue;
      const double cost = mih_seconds(subs, bits, na, nb, self, differ);
      if (cost < best.mih_seconds) {
        best.mih_seconds = cost;
        best.substrings = std::move(subs);
      }
    }
  }
  best.brute_force = !(best.mih_seconds < best.brute_seconds);
  if (best.brute_force) best.substrings.clear();
  return best;
}

JoinPlan fixed_join_plan(size_t bits, size_t na, size_t nb, uint32_t radius, bool self, size_t m,
                         const double* differ) {
  JoinPlan plan;
  plan.brute_seconds = brute_seconds(bits, na, nb, self);
  plan.mih_seconds = std::numeric_limits<double>::infinity();
  if (m == 0) return plan;
  if (m > bits) {
    throw std::invalid_argument("substrings: expected at most " + std::to_string(bits) + " (the hash's bits), got " +
                                std::to_string(m));
  }
  auto subs = split(bits, radius, m);
  if (!feasible(subs)) {
    throw std::invalid_argument("substrings: " + std::to_string(m) + " substrings of " + std::to_string(bits) +
                                "-bit hashes at radius " + std::to_string(radius) +
                                " are too wide to bucket (radius > 0 needs at most 24 bits each, radius 0 at most 64)");
  }
  plan.brute_force = false;
  plan.mih_seconds = mih_seconds(subs, bits, na, nb, self, differ);
  plan.substrings = std::move(subs);
  return plan;
}

// --- The join -------------------------------------------------------------------------------------

struct Join::State {
  WordView a;
  WordView b;  // == a's rows for a self-join
  size_t na, nb, nbytes, nwords;
  bool self;
  uint32_t radius;
  JoinPlan plan;
  size_t unit_rows = 0;
  size_t units_per_substring = 0;
  std::vector<size_t> brute_starts;  // brute force: first row of each unit, then na

  // The multi-index join's bucketing of the current substring.
  size_t current = std::numeric_limits<size_t>::max();
  Buckets left, right;  // right unused for a self-join
  std::vector<uint32_t> masks;

  // The brute force's tiled copy of the second set.
  std::vector<uint64_t> tiles;

  State(const uint8_t* pa, size_t na_, const uint8_t* pb, size_t nb_, size_t nbytes_, uint32_t radius_,
        const JoinPlan& plan_)
      : a(pa, na_, nbytes_),
        b(pb != nullptr ? pb : pa, pb != nullptr ? nb_ : na_, nbytes_),
        na(na_),
        nb(pb != nullptr ? nb_ : na_),
        nbytes(nbytes_),
        nwords(words_for_bytes(nbytes_)),
        self(pb == nullptr),
        radius(radius_),
        plan(plan_) {}

  const Buckets& other() const noexcept { return self ? left : right; }

  void prepare(size_t s, size_t nthreads, const Interrupt& interrupt) {
    if (current == s) return;
    current = std::numeric_limits<size_t>::max();  // invalid until complete (a Cancelled may interrupt)
    const JoinSubstring& sub = plan.substrings[s];
    bucket(a, na, sub, nthreads, interrupt, left);
    if (!self) bucket(b, nb, sub, nthreads, interrupt, right);
    masks = ball_masks(sub.len, sub.radius);
    current = s;
  }

  // True when an earlier substring than s already makes the pair (XOR x) a candidate.
  bool seen_earlier(const uint64_t* x, size_t s) const noexcept {
    for (size_t t = 0; t < s; ++t) {
      const JoinSubstring& sub = plan.substrings[t];
      if (popcount(substring_word_order(x, sub.lo, sub.len)) <= sub.radius) return true;
    }
    return false;
  }

  void emit(size_t s, size_t x, size_t y, uint32_t d, PairBuffer& out) const {
    const Buckets& r = other();
    const uint64_t* cx = left.codes.data() + x * nwords;
    const uint64_t* cy = r.codes.data() + y * nwords;
    if (s > 0) {
      uint64_t xor_words[64];  // radius and substrings limit hashes to 4096 bits
      for (size_t w = 0; w < nwords; ++w) xor_words[w] = cx[w] ^ cy[w];
      if (seen_earlier(xor_words, s)) return;
    }
    uint32_t i = left.order[x];
    uint32_t j = r.order[y];
    if (self && i > j) std::swap(i, j);
    out.i.push_back(i);
    out.j.push_back(j);
    out.d.push_back(static_cast<uint16_t>(d));
  }

  // Positions [x0, x1) of the left side against [y0, y1) of the other (y > x within one block
  // when `triangle`).
  template <size_t NW>
  void block(size_t s, size_t x0, size_t x1, size_t y0, size_t y1, bool triangle, PairBuffer& out) const {
    const uint64_t* lc = left.codes.data();
    const uint64_t* rc = other().codes.data();
    for (size_t x = x0; x < x1; ++x) {
      const uint64_t* cx = lc + x * nwords;
      for (size_t y = triangle ? x + 1 : y0; y < y1; ++y) {
        const uint32_t d = bounded_distance<NW>(cx, rc + y * nwords, nwords, radius);
        if (d <= radius) emit(s, x, y, d, out);
      }
    }
  }

  template <size_t NW>
  void mih_unit(size_t unit, PairBuffer& out) const {
    const size_t s = unit / units_per_substring;
    const size_t p0 = (unit % units_per_substring) * unit_rows;
    const size_t p1 = std::min(na, p0 + unit_rows);
    const Buckets& r = other();
    // The unit's runs of equal keys, each compared with its own bucket first.
    struct Run {
      uint64_t key;
      size_t begin, end;
    };
    std::vector<Run> runs;
    for (size_t p = p0; p < p1;) {
      const uint64_t key = left.keys[p];
      size_t end = p + 1;
      while (end < p1 && left.keys[end] == key) ++end;
      runs.push_back({key, p, end});
      if (self) {
        const size_t bucket_end = left.dense ? left.starts[key + 1] : left.find(key).second;
        block<NW>(s, p, end, 0, bucket_end, true, out);
      } else {
        const auto range = r.find(key);
        if (range.first < range.second) block<NW>(s, p, end, range.first, range.second, false, out);
      }
      p = end;
    }
    // Then with the neighbouring buckets (substring radius > 0, dense), one mask at a time: as
    // the keys increase, key ^ mask increases piecewise too, so both sides are read as streams
    // rather than at random.
    for (uint32_t mask : masks) {
      for (const Run& run : runs) {
        const uint64_t neighbour = run.key ^ mask;
        if (self && neighbour < run.key) continue;  // that bucket pair is the neighbour's to compare
        if (!r.has(neighbour)) continue;
        block<NW>(s, run.begin, run.end, r.starts[neighbour], r.starts[neighbour + 1], false, out);
      }
    }
  }

  void brute_unit(size_t unit, std::vector<uint32_t>& idx, std::vector<uint16_t>& dist, PairBuffer& out) const {
    constexpr size_t kChunk = 8192;  // codes of the second set per pass (256 KB of PDQ hashes)
    const auto& k = active_kernels();
    const size_t i0 = brute_starts[unit], i1 = brute_starts[unit + 1];
    for (size_t c0 = 0; c0 < nb; c0 += kChunk) {
      const size_t c1 = std::min(nb, c0 + kChunk);
      for (size_t i = i0; i < i1; ++i) {
        size_t lo = self ? std::max(c0, i + 1) : c0;
        if (lo >= c1) continue;
        lo -= lo % kernels::kTileCodes;
        const size_t hits = k.scan_tiles_le(a.row(i), tiles.data() + lo * nwords, c1 - lo, nwords, radius,
                                            idx.data(), dist.data(), i == i0);  // then the chunk is in L2
        for (size_t h = 0; h < hits; ++h) {
          const size_t j = lo + idx[h];
          if (self && j <= i) continue;
          out.i.push_back(static_cast<uint32_t>(i));
          out.j.push_back(static_cast<uint32_t>(j));
          out.d.push_back(dist[h]);
        }
      }
    }
  }
};

Join::Join(const uint8_t* a, size_t na, const uint8_t* b, size_t nb, size_t nbytes, uint32_t radius,
           const JoinPlan& plan, size_t unit_rows) {
  if (na > kMaxRows || nb > kMaxRows) {
    throw std::invalid_argument("hashes: a join takes fewer than 2^32 - 1 hashes per set");
  }
  if (words_for_bytes(nbytes) > 64) throw std::invalid_argument("hashes: a join takes hashes of at most 4096 bits");
  state_ = std::make_unique<State>(a, na, b, nb, nbytes, radius, plan);
  State& st = *state_;
  const double other = static_cast<double>(st.nb);
  if (!plan.brute_force) {
    if (plan.substrings.empty()) throw std::invalid_argument("plan: a multi-index plan without substrings");
    for (const auto& sub : plan.substrings) {
      if (sub.lo + sub.len > nbytes * 8 || !feasible({sub})) throw std::invalid_argument("plan: a substring does not fit");
    }
    // Expected candidates per row and substring, for units of about half a million comparisons
    // (small enough that a bucket of many near-duplicates spreads over several threads).
    double per_row = 1;
    for (const auto& sub : plan.substrings) {
      per_row = std::max(per_row, other * candidate_rate(sub, nullptr));
    }
    st.unit_rows = unit_rows != 0 ? std::min(unit_rows, std::max<size_t>(st.na, 1))
                                  : static_cast<size_t>(std::clamp(5e5 / per_row, 64.0, 16384.0));
    st.units_per_substring = st.na == 0 ? 0 : (st.na + st.unit_rows - 1) / st.unit_rows;
  } else {
    // Units of about sixteen million pairs (rows of the triangle for a self-join).
    const double target = unit_rows != 0 ? static_cast<double>(unit_rows) * std::max(other, 1.0) : 1.6e7;
    st.brute_starts.push_back(0);
    double work = 0;
    for (size_t i = 0; i < st.na; ++i) {
      work += st.self ? static_cast<double>(st.na - 1 - i) : other;
      if (work >= target) {
        st.brute_starts.push_back(i + 1);
        work = 0;
      }
    }
    if (st.brute_starts.back() != st.na) st.brute_starts.push_back(st.na);
    const size_t n = st.nb;
    st.tiles.assign(((n + kernels::kTileCodes - 1) / kernels::kTileCodes) * kernels::kTileCodes * st.nwords, 0);
    for (size_t r = 0; r < n; ++r) bits::tile_put(st.tiles.data(), st.nwords, r, st.b.row(r));
  }
}

Join::~Join() = default;

size_t Join::units() const noexcept {
  const State& st = *state_;
  if (st.plan.brute_force) return st.brute_starts.size() - 1;
  return st.units_per_substring * st.plan.substrings.size();
}

void Join::run(size_t begin, size_t end, size_t nthreads, const Interrupt& interrupt, std::vector<PairBuffer>& out) {
  State& st = *state_;
  end = std::min(end, units());
  while (begin < end) {
    size_t stop = end;
    if (!st.plan.brute_force) {
      const size_t s = begin / st.units_per_substring;
      stop = std::min(end, (s + 1) * st.units_per_substring);
      st.prepare(s, nthreads, interrupt);
    }
    std::vector<PairBuffer> parts(stop - begin);
    parallel_for(stop - begin, nthreads, [&](size_t t) {
      PairBuffer& part = parts[t];
      if (st.plan.brute_force) {
        std::vector<uint32_t> idx(8192 + kernels::kTileCodes);
        std::vector<uint16_t> dist(8192 + kernels::kTileCodes);
        st.brute_unit(begin + t, idx, dist, part);
      } else if (st.nwords == 1) {
        st.mih_unit<1>(begin + t, part);
      } else if (st.nwords == 2) {
        st.mih_unit<2>(begin + t, part);
      } else if (st.nwords == 4) {
        st.mih_unit<4>(begin + t, part);
      } else {
        st.mih_unit<0>(begin + t, part);
      }
    }, interrupt);
    for (auto& part : parts) {
      if (part.size() != 0) out.push_back(std::move(part));
    }
    begin = stop;
  }
}

// --- Merging pairs ------------------------------------------------------------------------------

void PairMerger::count(const PairChunkView& chunk) {
  if (!counting_) throw std::logic_error("PairMerger: count after scatter");
  const size_t ni = starts_.size() - 1;
  for (size_t p = 0; p < chunk.n; ++p) {
    if (chunk.i[p] >= ni) throw std::invalid_argument("pairs: a row outside the set");
    ++starts_[chunk.i[p] + 1];
  }
  pending_ += chunk.n;
}

void PairMerger::prefix() {
  std::partial_sum(starts_.begin(), starts_.end(), starts_.begin());
  next_.assign(starts_.begin(), starts_.end() - 1);
  pending_ = 0;
  counting_ = false;
}

void PairMerger::scatter(const PairChunkView& chunk, int64_t* out_i, int64_t* out_j) {
  if (counting_) prefix();
  const size_t ni = starts_.size() - 1;
  for (size_t p = 0; p < chunk.n; ++p) {
    if (chunk.i[p] >= ni || next_[chunk.i[p]] >= starts_[chunk.i[p] + 1]) {
      throw std::invalid_argument("pairs: a chunk that was not counted");
    }
    const size_t at = next_[chunk.i[p]]++;
    out_i[at] = chunk.i[p];
    out_j[at] = static_cast<int64_t>((uint64_t{chunk.j[p]} << 16) | chunk.d[p]);  // j < 2^32, d < 2^16
  }
}

void PairMerger::finish(int64_t* out_j, int32_t* out_d, size_t nthreads) {
  if (counting_) prefix();
  const size_t ni = starts_.size() - 1;
  for (size_t r = 0; r < ni; ++r) {
    if (next_[r] != starts_[r + 1]) throw std::invalid_argument("pairs: a counted chunk was not scattered");
  }
  // Each row's pairs by j (the packed value orders by j: every j differs within a row).
  constexpr size_t kRowsPerTask = 4096;
  parallel_for((ni + kRowsPerTask - 1) / kRowsPerTask, nthreads, [&](size_t t) {
    const size_t r1 = std::min(ni, (t + 1) * kRowsPerTask);
    for (size_t r = t * kRowsPerTask; r < r1; ++r) std::sort(out_j + starts_[r], out_j + starts_[r + 1]);
    for (size_t p = starts_[t * kRowsPerTask]; p < starts_[r1]; ++p) {
      out_d[p] = static_cast<int32_t>(out_j[p] & 0xffff);
      out_j[p] >>= 16;
    }
  });
}

}  // namespace hashmatch
