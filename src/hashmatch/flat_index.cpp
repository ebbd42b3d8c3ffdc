#include "hashmatch/flat_index.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "hashmatch/array_checks.h"
#include "hashmatch/bits.h"
#include "hashmatch/dispatch.h"
#include "hashmatch/topk.h"
#include "hashmatch/word_view.h"

namespace hashmatch {
namespace {

using bits::tile_get;
using bits::tile_put;
using kernels::kTileCodes;

// Stored codes per block: about 16 KiB, so a block stays in L1 while a group of queries sweeps
// it; whole tiles.
size_t block_codes(size_t nwords) { return std::max<size_t>(64, 16384 / (nwords * 8)) / kTileCodes * kTileCodes; }

// Variant stacks scan 4x larger blocks (L2-resident): each code costs a stack several times
// more work than a plain query, so L2 bandwidth suffices, and a multi-needle kernel call sets up
// per-needle state first (AVX2: 8 needles x 16 lookup tables; ~6% of the scan at 16 KiB calls).
size_t block_codes(size_t nwords, size_t nv) { return nv == 0 ? block_codes(nwords) : 4 * block_codes(nwords); }

// Start of the t-th of `parts` slices of n codes, on a tile boundary.
size_t slice_start(size_t n, size_t t, size_t parts) { return t == parts ? n : n * t / parts / kTileCodes * kTileCodes; }

// Queries per task when queries are split across threads: enough to reuse each block of codes
// many times, few enough that a task stays short and the heaps stay small.
size_t queries_per_task(size_t k) { return std::clamp<size_t>((size_t{1} << 22) / (k * sizeof(Neighbor) + 1), 1, 32); }

// Splitting the stored codes across threads suits few queries (one upload checked against a
// list); splitting the queries suits batches. `per_query` bounds the per-task state (k heap
// entries, or range results) so a huge k falls back to splitting queries.
bool split_codes(size_t nq, size_t nthreads, size_t per_query = 1) {
  return nthreads > 1 && nq < 4 * nthreads && nq * per_query * nthreads * 4 <= (size_t{1} << 22);
}

// A batch of queries as the kernels take it: nq plain queries (nv == 0, the single-needle scan)
// or nq variant stacks of nv rows each (the multi-needle scan).
struct Queries {
  const WordView& rows;
  size_t nv;
  const uint64_t* of(size_t q) const noexcept { return rows.row(nv == 0 ? q : q * nv); }
  size_t variants() const noexcept { return nv == 0 ? 1 : nv; }
};

// Scans codes [begin, end) of the index (begin on a tile boundary) for each query in [q0, q1), calling
// visit(query, distance, position, variant) for each code within the bound `bound(q)` gives.
template <class Bound, class Visit>
void scan_range(const kernels::KernelTable& k, const Queries& queries, size_t q0, size_t q1,
                const uint64_t* codes, size_t nwords, size_t begin, size_t end, Bound bound,
                Visit visit) {
  const size_t block = block_codes(nwords, queries.nv);
  std::vector<uint32_t> idx(block);
  std::vector<uint16_t> dist(block);
  std::vector<uint8_t> variant(queries.nv == 0 ? 0 : block);
  for (size_t b0 = begin; b0 < end; b0 += block) {
    const size_t count = std::min(block, end - b0);
    const uint64_t* tiles = codes + b0 * nwords;
    for (size_t q = q0; q < q1; ++q) {
      if (queries.nv == 0) {
        // The first query of the group brings the block in (prefetching), the others find it in L1.
        const size_t hits =
            k.scan_tiles_le(queries.of(q), tiles, count, nwords, bound(q), idx.data(), dist.data(), q == q0);
        for (size_t j = 0; j < hits; ++j) visit(q, dist[j], b0 + idx[j], uint8_t{0});
      } else {
        const size_t hits = k.scan_tiles_variants_le(queries.of(q), queries.nv, tiles, count, nwords, bound(q),
                                                     idx.data(), dist.data(), variant.data());
        for (size_t j = 0; j < hits; ++j) visit(q, dist[j], b0 + idx[j], variant[j]);
      }
    }
  }
}

// Sorts each query's hits by (distance, id), their variants alongside when there are any.
void sort_range_results(RangeResults& out, size_t nthreads) {
  parallel_for(out.nqueries(), nthreads, [&](size_t q) {
    auto& d = out.distances_[q];
    auto& id = out.ids_[q];
    auto& var = out.variants_[q];
    const bool variants = !var.empty();
    std::vector<Neighbor> v(d.size());
    for (size_t j = 0; j < v.size(); ++j) v[j] = {d[j], id[j], variants ? var[j] : uint8_t{0}};
    std::sort(v.begin(), v.end());
    for (size_t j = 0; j < v.size(); ++j) {
      d[j] = static_cast<uint16_t>(v[j].distance);
      id[j] = v[j].id;
      if (variants) var[j] = v[j].variant;
    }
  });
}

}  // namespace

size_t RangeResults::total() const noexcept {
  size_t t = 0;
  for (const auto& v : ids_) t += v.size();
  return t;
}

void RangeResults::write(int64_t* lims, int32_t* distances, int64_t* ids, uint8_t* variants) const noexcept {
  size_t pos = 0;
  lims[0] = 0;
  for (size_t q = 0; q < ids_.size(); ++q) {
    for (size_t j = 0; j < ids_[q].size(); ++j, ++pos) {
      distances[pos] = distances_[q][j];
      ids[pos] = ids_[q][j];
      if (variants != nullptr) variants[pos] = j < variants_[q].size() ? variants_[q][j] : 0;
    }
    lims[q + 1] = static_cast<int64_t>(pos);
  }
}

void check_variant_count(size_t nv) {
  if (nv == 0 || nv > kernels::kMaxNeedles) {
    throw std::invalid_argument("queries: expected 1 to " + std::to_string(kernels::kMaxNeedles) +
                                " variants per query, got " + std::to_string(nv));
  }
}

FlatIndex::FlatIndex(size_t bits) : bits_(bits), nwords_(words_for_bytes(bits / 8)) {
  if (bits == 0 || bits % 8 != 0 || bits > 4096) {
    throw std::invalid_argument("bits: expected a multiple of 8 in [8, 4096], got " + std::to_string(bits));
  }
}

FlatIndex::FlatIndex(size_t bits, size_t n, const uint64_t* tiles, size_t tiles_size, const int64_t* ids,
                     size_t ids_size, int64_t next_id)
    : FlatIndex(bits) {
  require_size("ids", ids_size, n);
  require_size("tiles", tiles_size, tiled_words(n));
  require_aligned("ids", ids);
  require_aligned("tiles", tiles);
  // Padding: the bytes past nbytes() in each code's last word (one run of 8 codes per tile),
  // and every word of the unused slots of the last tile.
  const size_t tail_bytes = nbytes() % 8;
  const uint64_t mask = tail_bytes == 0 ? 0 : ~uint64_t{0} << (8 * tail_bytes);
  check_padding("tiles", tiles, tiles_size / (kTileCodes * nwords_), (nwords_ - 1) * kTileCodes, kTileCodes * nwords_,
                kTileCodes, mask);
  for (size_t i = n; i < tiles_size / nwords_; ++i) {
    std::vector<uint64_t> row(nwords_);
    tile_get(tiles, nwords_, i, row.data());
    for (uint64_t w : row) require(w == 0, "tiles", "non-zero words in the unused slots of the last tile");
  }
  next_id_ = std::max(check_ids(ids, n), next_id);
  codes_ = Array<uint64_t>::view(tiles, tiles_size);
  ids_ = Array<int64_t>::view(ids, n);
}

size_t FlatIndex::tiled_words(size_t n) const noexcept {
  return (n + kTileCodes - 1) / kTileCodes * kTileCodes * nwords_;
}

size_t FlatIndex::memory_bytes() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return codes_.capacity_bytes() + ids_.capacity_bytes();
}

void FlatIndex::export_arrays(FlatArrays& out) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  out.n = ids_.size();
  out.next_id = next_id_;
  out.tiles.assign(codes_.data(), codes_.data() + codes_.size());
  out.ids.assign(ids_.data(), ids_.data() + ids_.size());
}

size_t FlatIndex::copy_out(size_t n, int64_t* ids, uint8_t* codes) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  n = std::min(n, ids_.size());
  if (n == 0) return 0;
  std::memcpy(ids, ids_.data(), n * sizeof(int64_t));
  std::vector<uint64_t> row(nwords_);
  for (size_t i = 0; i < n; ++i) {
    tile_get(codes_.data(), nwords_, i, row.data());
    std::memcpy(codes + i * nbytes(), row.data(), nbytes());
  }
  return n;
}

void FlatIndex::add(const uint8_t* codes, size_t n, const int64_t* ids) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  // Validate everything before touching the index.
  int64_t max_new = -1, min_new = INT64_MAX;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0) throw std::invalid_argument("ids: expected non-negative ids, got " + std::to_string(ids[i]));
    max_new = std::max(max_new, ids[i]);
    min_new = std::min(min_new, ids[i]);
  }
  // Ids at or above next_id_ cannot collide, except once next_id_ saturates at INT64_MAX.
  if (n > 0 && (min_new < next_id_ || next_id_ == INT64_MAX) && !ids_.empty()) {
    // Ids below the current maximum may collide: check them against a sorted copy.
    std::vector<int64_t> stored(ids_.data(), ids_.data() + ids_.size());
    std::sort(stored.begin(), stored.end());
    for (size_t i = 0; i < n; ++i) {
      if (std::binary_search(stored.begin(), stored.end(), ids[i])) {
        throw std::invalid_argument("ids: id " + std::to_string(ids[i]) + " is already in the index");
      }
    }
  }
  const size_t old = ids_.size();
  // Copy-on-write and allocation may throw bad_alloc: the contents have not changed yet (a
  // view copied into owned memory holds the same values).
  std::vector<int64_t>& owned_ids = ids_.mut();
  owned_ids.reserve(old + n);
  std::vector<uint64_t>& owned_codes = codes_.mut();
  owned_codes.resize(tiled_words(old + n));
  std::vector<uint64_t> row(nwords_);
  for (size_t i = 0; i < n; ++i) {
    pad_rows(codes + i * nbytes(), 1, nbytes(), row.data());
    tile_put(owned_codes.data(), nwords_, old + i, row.data());
  }
  owned_ids.insert(owned_ids.end(), ids, ids + n);
  next_id_ = max_new == INT64_MAX ? INT64_MAX : std::max(next_id_, max_new + 1);
}

void FlatIndex::search_impl(const uint8_t* queries, size_t nq, size_t nv, size_t k, KnnResults& out,
                            size_t nthreads, const Interrupt& interrupt) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const size_t n = ids_.size();
  const size_t kk = std::min(k, n);
  out.k = kk;
  out.distances.resize(nq * kk);
  out.ids.resize(nq * kk);
  out.variants.resize(nv == 0 ? 0 : nq * kk);
  if (nq == 0 || kk == 0) return;
  int32_t* distances = out.distances.data();
  int64_t* ids = out.ids.data();
  uint8_t* variants = nv == 0 ? nullptr : out.variants.data();
  const uint64_t* codes = codes_.data();
  const int64_t* stored_ids = ids_.data();
  const WordView rows(queries, nq * std::max<size_t>(nv, 1), nbytes());
  const Queries qv{rows, nv};
  nthreads = threads_for_work(nq * qv.variants() * n * nwords_, nthreads);
  const auto& kern = active_kernels();

  if (split_codes(nq, nthreads, kk)) {
    // Few queries: each task keeps heaps for every query over its slice of the codes; merged after.
    const size_t ntasks = std::min(nthreads * 4, std::max<size_t>(1, n / block_codes(nwords_)));
    std::vector<Neighbor> heaps(ntasks * nq * kk);
    std::vector<size_t> filled(ntasks * nq);
    parallel_for(ntasks, nthreads, [&](size_t t) {
      const size_t begin = slice_start(n, t, ntasks), end = slice_start(n, t + 1, ntasks);
      std::vector<TopK> tops;
      tops.reserve(nq);
      for (size_t q = 0; q < nq; ++q) tops.emplace_back(heaps.data() + (t * nq + q) * kk, kk);
      scan_range(kern, qv, 0, nq, codes, nwords_, begin, end,
                 [&](size_t q) { return tops[q].bound(); },
                 [&](size_t q, uint32_t d, size_t pos, uint8_t v) { tops[q].push(d, stored_ids[pos], v); });
      for (size_t q = 0; q < nq; ++q) filled[t * nq + q] = tops[q].size();
    }, interrupt);
    std::vector<Neighbor> merged(kk);
    for (size_t q = 0; q < nq; ++q) {
      TopK top(merged.data(), kk);
      for (size_t t = 0; t < ntasks; ++t) {
        const Neighbor* h = heaps.data() + (t * nq + q) * kk;
        for (size_t j = 0; j < filled[t * nq + q]; ++j) top.push(h[j].distance, h[j].id, h[j].variant);
      }
      top.write_sorted(distances + q * kk, ids + q * kk, variants == nullptr ? nullptr : variants + q * kk);
    }
    return;
  }

  const size_t per_task = queries_per_task(kk);
  parallel_for((nq + per_task - 1) / per_task, nthreads, [&](size_t t) {
    const size_t q0 = t * per_task, q1 = std::min(nq, q0 + per_task);
    std::vector<Neighbor> storage((q1 - q0) * kk);
    std::vector<TopK> tops;
    tops.reserve(q1 - q0);
    for (size_t q = q0; q < q1; ++q) tops.emplace_back(storage.data() + (q - q0) * kk, kk);
    scan_range(kern, qv, q0, q1, codes, nwords_, 0, n,
               [&](size_t q) { return tops[q - q0].bound(); },
               [&](size_t q, uint32_t d, size_t pos, uint8_t v) { tops[q - q0].push(d, stored_ids[pos], v); });
    for (size_t q = q0; q < q1; ++q) {
      tops[q - q0].write_sorted(distances + q * kk, ids + q * kk, variants == nullptr ? nullptr : variants + q * kk);
    }
  }, interrupt);
}

void FlatIndex::range_impl(const uint8_t* queries, size_t nq, size_t nv, uint32_t max_distance, RangeResults& out,
                           size_t nthreads, const Interrupt& interrupt) const {
  if (out.nqueries() != nq) throw std::invalid_argument("range_search: results sized for another batch");
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const auto& kern = active_kernels();
  const WordView rows(queries, nq * std::max<size_t>(nv, 1), nbytes());
  const Queries qv{rows, nv};
  const size_t n = ids_.size();
  const uint64_t* codes = codes_.data();
  const int64_t* stored_ids = ids_.data();
  const auto bound = [max_distance](size_t) { return max_distance; };
  const auto append = [&](RangeResults& to, size_t q, uint32_t d, size_t pos, uint8_t v) {
    to.distances_[q].push_back(static_cast<uint16_t>(d));
    to.ids_[q].push_back(stored_ids[pos]);
    if (nv != 0) to.variants_[q].push_back(v);
  };
  nthreads = threads_for_work(nq * qv.variants() * n * nwords_, nthreads);

  if (split_codes(nq, nthreads)) {
    const size_t ntasks = std::min(nthreads * 4, std::max<size_t>(1, n / block_codes(nwords_)));
    std::vector<RangeResults> parts(ntasks, RangeResults(nq));
    parallel_for(ntasks, nthreads, [&](size_t t) {
      RangeResults& part = parts[t];
      scan_range(kern, qv, 0, nq, codes, nwords_, slice_start(n, t, ntasks), slice_start(n, t + 1, ntasks), bound,
                 [&](size_t q, uint32_t d, size_t pos, uint8_t v) { append(part, q, d, pos, v); });
    }, interrupt);
    for (size_t q = 0; q < nq; ++q) {
      for (const auto& part : parts) {
        out.distances_[q].insert(out.distances_[q].end(), part.distances_[q].begin(), part.distances_[q].end());
        out.ids_[q].insert(out.ids_[q].end(), part.ids_[q].begin(), part.ids_[q].end());
        out.variants_[q].insert(out.variants_[q].end(), part.variants_[q].begin(), part.variants_[q].end());
      }
    }
  } else {
    const size_t per_task = 32;  // queries sharing each block of codes while it is in L1
    parallel_for((nq + per_task - 1) / per_task, nthreads, [&](size_t t) {
      const size_t q0 = t * per_task, q1 = std::min(nq, q0 + per_task);
      scan_range(kern, qv, q0, q1, codes, nwords_, 0, n, bound,
                 [&](size_t q, uint32_t d, size_t pos, uint8_t v) { append(out, q, d, pos, v); });
    }, interrupt);
  }
  sort_range_results(out, nthreads);  // result order: distance, then id
}

}  // namespace hashmatch
