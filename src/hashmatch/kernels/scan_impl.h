// The one Hamming-scan algorithm, written once over a tiny vector-operations interface and
// instantiated by every ISA translation unit with its own `Ops`:
//
//   struct Ops {
//     static constexpr size_t kLanes;            // 64-bit words per vector register
//     using V;                                   // the register type
//     static V load(const uint64_t* p);          // kLanes words, unaligned
//     static V bxor(V a, V b);
//     static V popcount_lanes(V v);              // popcount of each 64-bit lane, in that lane
//     static V add(V a, V b);                    // 64-bit lane-wise add
//     static uint64_t hsum(V v);                 // sum of the lanes
//     static void store(uint64_t* p, V v);       // kLanes words
//     static V broadcast(uint64_t w);            // w in every lane
//     static V zero();
//     static V min(V a, V b);                    // lane-wise minimum of lanes below 2^32
//   };
//
// Everything here sits in an anonymous namespace on purpose: each TU gets its own private copy
// compiled with its own ISA flags. A shared `inline` definition would be merged by the linker and
// could run AVX-512 code on a CPU without it.
//
// Three scans:
//  * the tiled scan over an index's codes (layout in kernels.h), with a bound and early exit;
//  * the same with several needles (a query's dihedral variants) sharing each tile load;
//  * the row-major scan over caller arrays (cdist), storing every distance. Shapes: nwords a
//    multiple of kLanes keeps the query in registers; nwords dividing kLanes packs several codes
//    per register; anything else takes whole registers then scalar POPCNT tail words. Widths of
//    1, 2, 4 and 8 words are compiled as constants so loops unroll fully.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hashmatch {
namespace kernels {
namespace {

inline uint32_t popcount64(uint64_t x) noexcept { return static_cast<uint32_t>(__builtin_popcountll(x)); }

// Codes may live in any byte buffer (numpy arrays need not be 8-byte aligned): read words with
// memcpy, which compiles to one unaligned load and is free of aliasing and alignment UB.
inline uint64_t load_word(const uint64_t* p) noexcept {
  uint64_t w;
  __builtin_memcpy(&w, p, sizeof w);
  return w;
}

// Software prefetch of the tiled scans, kPrefetchBytes ahead of the tile being counted, every
// line of it. The hardware prefetcher alone loses the stream when the early exit reads half of
// each tile (PDQ at r = 31: 128 of every 256 bytes), whatever the alignment (64-byte aligned
// codes were no faster than the std::vector's 16 bytes off a line). Measured on 1M PDQ codes in
// a FlatIndex, one query, r = 31 (benchmarks/RESULTS.md, "Aligned code storage"): 3.1 -> 1.3 ms
// (AVX-512), 2.4 -> 1.3 ms (AVX2); kernel alone, under memory load from other jobs, up to 4x.
// The distance is in bytes, not tiles, so wide codes do not prefetch further; 16 KiB measured
// best of 4 to 32 KiB. It may point past the codes: a FlatIndex scans 16 KiB blocks in separate
// calls, and prefetching into the next block keeps the stream going (stopping at each block's
// end lost most of the gain). Only a block's first query prefetches (the `prefetch` flag):
// for the rest of a batch the block is in L1, and the prefetches cost ~10% (AVX-512, r = 31).
constexpr size_t kPrefetchBytes = 16384;

// Prefetches the tile kPrefetchBytes past word `at` of `tiles`. A hint, never a read: it does
// not fault wherever it points, and the address is computed as an integer, so no pointer
// arithmetic leaves the array.
inline void prefetch_tile_ahead(const uint64_t* tiles, size_t at, size_t nwords) noexcept {
  const uintptr_t p = reinterpret_cast<uintptr_t>(tiles + at) + kPrefetchBytes;
  // A tile is nwords lines (kTileCodes * 8 bytes per word): one prefetch per line.
  for (size_t i = 0; i < nwords; ++i) __builtin_prefetch(reinterpret_cast<const void*>(p + 64 * i), 0, 3);
}

// Sinks receive (i, distance) for each code in increasing i.
struct StoreSink {
  uint16_t* out;
  void put(size_t i, uint32_t d) noexcept { out[i] = static_cast<uint16_t>(d); }
};

struct BoundSink {
  uint32_t bound;
  uint32_t* idx;
  uint16_t* dist;
  size_t count = 0;
  void put(size_t i, uint32_t d) noexcept {
    // Branch-free append: always write, advance only on a hit.
    idx[count] = static_cast<uint32_t>(i);
    dist[count] = static_cast<uint16_t>(d);
    count += (d <= bound);
  }
};

template <class Ops>
inline uint32_t distance_dynamic(const uint64_t* a, const uint64_t* b, size_t nwords) noexcept {
  constexpr size_t L = Ops::kLanes;
  size_t w = 0;
  uint32_t total = 0;
  if (nwords >= L) {
    auto acc = Ops::popcount_lanes(Ops::bxor(Ops::load(a), Ops::load(b)));
    for (w = L; w + L <= nwords; w += L) {
      acc = Ops::add(acc, Ops::popcount_lanes(Ops::bxor(Ops::load(a + w), Ops::load(b + w))));
    }
    total = static_cast<uint32_t>(Ops::hsum(acc));
  }
  for (; w < nwords; ++w) total += popcount64(load_word(a + w) ^ load_word(b + w));
  return total;
}

// Codes of NW words, NW a multiple of the register width: query held in registers.
template <class Ops, size_t NW, class Sink>
inline void scan_wide(const uint64_t* q, const uint64_t* db, size_t n, Sink& sink) noexcept {
  constexpr size_t L = Ops::kLanes;
  constexpr size_t R = NW / L;  // registers per code
  typename Ops::V qv[R];
  for (size_t r = 0; r < R; ++r) qv[r] = Ops::load(q + r * L);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t* c = db + i * NW;
    auto acc = Ops::popcount_lanes(Ops::bxor(qv[0], Ops::load(c)));
    for (size_t r = 1; r < R; ++r) acc = Ops::add(acc, Ops::popcount_lanes(Ops::bxor(qv[r], Ops::load(c + r * L))));
    sink.put(i, static_cast<uint32_t>(Ops::hsum(acc)));
  }
}

// Codes of NW words, NW dividing the register width: several codes per register.
template <class Ops, size_t NW, class Sink>
inline void scan_narrow(const uint64_t* q, const uint64_t* db, size_t n, Sink& sink) noexcept {
  constexpr size_t L = Ops::kLanes;
  constexpr size_t C = L / NW;  // codes per register
  uint64_t tiled[L];
  for (size_t w = 0; w < L; ++w) tiled[w] = load_word(q + w % NW);
  const auto qv = Ops::load(tiled);
  size_t i = 0;
  for (; i + C <= n; i += C) {
    uint64_t lanes[L];
    Ops::store(lanes, Ops::popcount_lanes(Ops::bxor(qv, Ops::load(db + i * NW))));
    for (size_t c = 0; c < C; ++c) {
      uint64_t d = 0;
      for (size_t w = 0; w < NW; ++w) d += lanes[c * NW + w];
      sink.put(i + c, static_cast<uint32_t>(d));
    }
  }
  for (; i < n; ++i) {
    uint32_t d = 0;
    for (size_t w = 0; w < NW; ++w) d += popcount64(load_word(q + w) ^ load_word(db + i * NW + w));
    sink.put(i, d);
  }
}

template <class Ops, size_t NW, class Sink>
inline void scan_fixed(const uint64_t* q, const uint64_t* db, size_t n, Sink& sink) noexcept {
  constexpr size_t L = Ops::kLanes;
  if constexpr (NW % L == 0) {
    scan_wide<Ops, NW>(q, db, n, sink);
  } else if constexpr (L % NW == 0) {
    scan_narrow<Ops, NW>(q, db, n, sink);
  } else {
    for (size_t i = 0; i < n; ++i) sink.put(i, distance_dynamic<Ops>(q, db + i * NW, NW));
  }
}

template <class Ops, class Sink>
inline void scan_any(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, Sink& sink) noexcept {
  switch (nwords) {
    case 1: return scan_fixed<Ops, 1>(q, db, n, sink);
    case 2: return scan_fixed<Ops, 2>(q, db, n, sink);
    case 4: return scan_fixed<Ops, 4>(q, db, n, sink);
    case 8: return scan_fixed<Ops, 8>(q, db, n, sink);
    default:
      for (size_t i = 0; i < n; ++i) sink.put(i, distance_dynamic<Ops>(q, db + i * nwords, nwords));
  }
}

template <class Ops>
void rows_impl(const uint64_t* a, const uint64_t* b, size_t n, size_t nwords, uint16_t* out) noexcept {
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint16_t>(distance_dynamic<Ops>(a + i * nwords, b + i * nwords, nwords));
  }
}

template <class Ops>
void scan_impl(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, uint16_t* out) noexcept {
  StoreSink sink{out};
  scan_any<Ops>(q, db, n, nwords, sink);
}

// Tiled scan (layout in kernels.h): kTileCodes / kLanes registers accumulate the distances of a
// tile's codes lane by lane. With a tight bound, a tile is abandoned after half its words once
// every code in it already exceeds the bound (PDQ range search at 31: nearly every tile). Tiles
// are prefetched ahead when the caller asks (prefetch_tile_ahead).
template <class Ops>
size_t scan_tiles_le_impl(const uint64_t* q, const uint64_t* tiles, size_t n, size_t nwords, uint32_t bound,
                          uint32_t* idx, uint16_t* dist, bool prefetch) noexcept {
  constexpr size_t L = Ops::kLanes, G = kTileCodes / L;
  using V = typename Ops::V;
  const bool early_exit = nwords >= 2 && bound < nwords * 16;  // a random code expects nwords*16 in half
  const size_t half = early_exit ? nwords / 2 : 0;
  BoundSink sink{bound, idx, dist};
  for (size_t t0 = 0; t0 < n; t0 += kTileCodes) {
    const uint64_t* tile = tiles + t0 * nwords;
    if (prefetch) prefetch_tile_ahead(tiles, t0 * nwords, nwords);
    V acc[G];
    for (size_t g = 0; g < G; ++g) acc[g] = Ops::zero();
    auto add_words = [&](size_t w0, size_t w1) {
      for (size_t w = w0; w < w1; ++w) {
        const V qw = Ops::broadcast(load_word(q + w));
        for (size_t g = 0; g < G; ++g) {
          acc[g] = Ops::add(acc[g], Ops::popcount_lanes(Ops::bxor(Ops::load(tile + w * kTileCodes + g * L), qw)));
        }
      }
    };
    uint64_t d[kTileCodes];
    if (early_exit) {
      add_words(0, half);
      for (size_t g = 0; g < G; ++g) Ops::store(d + g * L, acc[g]);
      bool all_above = true;
      for (size_t c = 0; c < kTileCodes; ++c) all_above &= d[c] > bound;
      if (all_above) continue;
    }
    add_words(half, nwords);
    for (size_t g = 0; g < G; ++g) Ops::store(d + g * L, acc[g]);
    const size_t m = n - t0 < kTileCodes ? n - t0 : kTileCodes;
    for (size_t c = 0; c < m; ++c) sink.put(t0 + c, static_cast<uint32_t>(d[c]));
  }
  return sink.count;
}

// Multi-needle tiled scan (kernels.h: ScanTilesVariantsLeFn). NV needles and, when NW > 0, the
// code width are compile-time constants: the broadcast needle words are built once before the
// loop (NV * NW registers; AVX-512 holds all 32 of a PDQ variant stack), each tile word is
// loaded once and XORed with every needle, and NV * G accumulators collect per-needle
// distances. The early exit is the single scan's: after half the words, the lane-wise minimum
// over needles is compared with the bound and a tile whose 8 codes all exceed it is dropped.
// Surviving codes take the minimum over needles and the first needle reaching it.
template <class Ops, size_t NV, size_t NW>
size_t scan_tiles_variants_nv(const uint64_t* qs, const uint64_t* tiles, size_t n, size_t nwords_dynamic,
                              uint32_t bound, uint32_t* idx, uint16_t* dist, uint8_t* variant) noexcept {
  constexpr size_t L = Ops::kLanes, G = kTileCodes / L;
  using V = typename Ops::V;
  const size_t nwords = NW > 0 ? NW : nwords_dynamic;
  const bool early_exit = nwords >= 2 && bound < nwords * 16;  // a random code expects nwords*16 in half
  const size_t half = early_exit ? nwords / 2 : 0;
  // Needle words broadcast once (fixed widths); any other width broadcasts them as it goes.
  V fixed[NW > 0 ? NW * NV : 1];
  if constexpr (NW > 0) {
    for (size_t w = 0; w < NW; ++w) {
      for (size_t v = 0; v < NV; ++v) fixed[w * NV + v] = Ops::broadcast(load_word(qs + v * NW + w));
    }
  }
  auto needle = [&](size_t v, size_t w) {
    if constexpr (NW > 0) {
      return fixed[w * NV + v];
    } else {
      return Ops::broadcast(load_word(qs + v * nwords + w));
    }
  };
  size_t count = 0;
  for (size_t t0 = 0; t0 < n; t0 += kTileCodes) {
    const uint64_t* tile = tiles + t0 * nwords;
    prefetch_tile_ahead(tiles, t0 * nwords, nwords);  // the early exit reads half a tile
    V acc[NV][G];
    for (size_t v = 0; v < NV; ++v) {
      for (size_t g = 0; g < G; ++g) acc[v][g] = Ops::zero();
    }
    auto add_words = [&](size_t w0, size_t w1) {
      for (size_t w = w0; w < w1; ++w) {
        V codes[G];
        for (size_t g = 0; g < G; ++g) codes[g] = Ops::load(tile + w * kTileCodes + g * L);
        for (size_t v = 0; v < NV; ++v) {
          const V qw = needle(v, w);
          for (size_t g = 0; g < G; ++g) acc[v][g] = Ops::add(acc[v][g], Ops::popcount_lanes(Ops::bxor(codes[g], qw)));
        }
      }
    };
    auto lowest = [&](uint64_t* out) {  // per-code minimum over the needles
      for (size_t g = 0; g < G; ++g) {
        V m = acc[0][g];
        for (size_t v = 1; v < NV; ++v) m = Ops::min(m, acc[v][g]);
        Ops::store(out + g * L, m);
      }
    };
    uint64_t best[kTileCodes];
    if (early_exit) {
      add_words(0, half);
      lowest(best);
      bool all_above = true;
      for (size_t c = 0; c < kTileCodes; ++c) all_above &= best[c] > bound;
      if (all_above) continue;
    }
    add_words(half, nwords);
    lowest(best);
    const size_t m = n - t0 < kTileCodes ? n - t0 : kTileCodes;
    bool any = false;
    for (size_t c = 0; c < m; ++c) any |= best[c] <= bound;
    if (!any) continue;
    uint64_t d[NV][kTileCodes];
    for (size_t v = 0; v < NV; ++v) {
      for (size_t g = 0; g < G; ++g) Ops::store(d[v] + g * L, acc[v][g]);
    }
    for (size_t c = 0; c < m; ++c) {
      size_t first = 0;
      while (d[first][c] != best[c]) ++first;  // some needle reaches the minimum
      idx[count] = static_cast<uint32_t>(t0 + c);  // branch-free append, as BoundSink
      dist[count] = static_cast<uint16_t>(best[c]);
      variant[count] = static_cast<uint8_t>(first);
      count += (best[c] <= bound);
    }
  }
  return count;
}

template <class Ops, size_t NW>
size_t scan_tiles_variants_w(const uint64_t* qs, size_t nv, const uint64_t* tiles, size_t n, size_t nwords,
                             uint32_t bound, uint32_t* idx, uint16_t* dist, uint8_t* variant) noexcept {
  switch (nv) {
    case 1: return scan_tiles_variants_nv<Ops, 1, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 2: return scan_tiles_variants_nv<Ops, 2, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 3: return scan_tiles_variants_nv<Ops, 3, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 4: return scan_tiles_variants_nv<Ops, 4, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 5: return scan_tiles_variants_nv<Ops, 5, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 6: return scan_tiles_variants_nv<Ops, 6, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 7: return scan_tiles_variants_nv<Ops, 7, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 8: return scan_tiles_variants_nv<Ops, 8, NW>(qs, tiles, n, nwords, bound, idx, dist, variant);
    default: return 0;  // outside the contract (1 <= nv <= kMaxNeedles): nothing matches
  }
}

template <class Ops>
size_t scan_tiles_variants_le_impl(const uint64_t* qs, size_t nv, const uint64_t* tiles, size_t n, size_t nwords,
                                   uint32_t bound, uint32_t* idx, uint16_t* dist, uint8_t* variant) noexcept {
  switch (nwords) {
    case 1: return scan_tiles_variants_w<Ops, 1>(qs, nv, tiles, n, nwords, bound, idx, dist, variant);
    case 2: return scan_tiles_variants_w<Ops, 2>(qs, nv, tiles, n, nwords, bound, idx, dist, variant);
    case 4: return scan_tiles_variants_w<Ops, 4>(qs, nv, tiles, n, nwords, bound, idx, dist, variant);
    default: return scan_tiles_variants_w<Ops, 0>(qs, nv, tiles, n, nwords, bound, idx, dist, variant);
  }
}

// Emulated lanes: the same algorithm on plain arrays, for testing a wider ISA's code path on a
// CPU without it (the scalar-equivalence path).
template <size_t Lanes>
struct EmulatedOps {
  static constexpr size_t kLanes = Lanes;
  struct V {
    uint64_t w[Lanes];
  };
  static V load(const uint64_t* p) noexcept {
    V v;
    for (size_t i = 0; i < Lanes; ++i) v.w[i] = load_word(p + i);
    return v;
  }
  static V bxor(V a, V b) noexcept {
    for (size_t i = 0; i < Lanes; ++i) a.w[i] ^= b.w[i];
    return a;
  }
  static V popcount_lanes(V v) noexcept {
    for (size_t i = 0; i < Lanes; ++i) v.w[i] = popcount64(v.w[i]);
    return v;
  }
  static V add(V a, V b) noexcept {
    for (size_t i = 0; i < Lanes; ++i) a.w[i] += b.w[i];
    return a;
  }
  static uint64_t hsum(V v) noexcept {
    uint64_t s = 0;
    for (size_t i = 0; i < Lanes; ++i) s += v.w[i];
    return s;
  }
  static void store(uint64_t* p, V v) noexcept {
    for (size_t i = 0; i < Lanes; ++i) p[i] = v.w[i];
  }
  static V broadcast(uint64_t w) noexcept {
    V v;
    for (size_t i = 0; i < Lanes; ++i) v.w[i] = w;
    return v;
  }
  static V zero() noexcept { return broadcast(0); }
  static V min(V a, V b) noexcept {
    for (size_t i = 0; i < Lanes; ++i) a.w[i] = a.w[i] < b.w[i] ? a.w[i] : b.w[i];
    return a;
  }
};

}  // namespace
}  // namespace kernels
}  // namespace hashmatch
