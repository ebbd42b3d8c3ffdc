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
//   };
//
// Everything here sits in an anonymous namespace on purpose: each TU gets its own private copy
// compiled with its own ISA flags. A shared `inline` definition would be merged by the linker and
// could run AVX-512 code on a CPU without it.
//
// Shapes handled:
//  * nwords a multiple of kLanes (PDQ on AVX2: one register per code): the query stays in
//    registers and each code costs nwords/kLanes loads, XORs and lane popcounts plus one hsum.
//    With a bound and two or more registers per code, a code is abandoned after the first half
//    once its partial distance exceeds the bound (range search at PDQ's 31 rarely needs more).
//  * nwords dividing kLanes (pHash on AVX2: four codes per register): the query is tiled across
//    the register and the lane counts are grouped per code.
//  * anything else: whole registers, then 64-bit tail words with scalar POPCNT.
// Fixed widths of 1, 2, 4 and 8 words are compiled as constants so loops unroll fully.
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
inline void scan_wide(const uint64_t* q, const uint64_t* db, size_t n, uint32_t bound,
                      Sink& sink) noexcept {
  constexpr size_t L = Ops::kLanes;
  constexpr size_t R = NW / L;  // registers per code
  typename Ops::V qv[R];
  for (size_t r = 0; r < R; ++r) qv[r] = Ops::load(q + r * L);
  const bool early_exit = (R >= 2) && bound < NW * 64;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t* c = db + i * NW;
    auto acc = Ops::popcount_lanes(Ops::bxor(qv[0], Ops::load(c)));
    size_t r = 1;
    if (early_exit) {
      for (; r < R / 2; ++r) acc = Ops::add(acc, Ops::popcount_lanes(Ops::bxor(qv[r], Ops::load(c + r * L))));
      const uint32_t partial = static_cast<uint32_t>(Ops::hsum(acc));
      if (partial > bound) {
        sink.put(i, partial);
        continue;
      }
    }
    for (; r < R; ++r) acc = Ops::add(acc, Ops::popcount_lanes(Ops::bxor(qv[r], Ops::load(c + r * L))));
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
inline void scan_fixed(const uint64_t* q, const uint64_t* db, size_t n, uint32_t bound,
                       Sink& sink) noexcept {
  constexpr size_t L = Ops::kLanes;
  if constexpr (NW % L == 0) {
    scan_wide<Ops, NW>(q, db, n, bound, sink);
  } else if constexpr (L % NW == 0) {
    scan_narrow<Ops, NW>(q, db, n, sink);
  } else {
    for (size_t i = 0; i < n; ++i) sink.put(i, distance_dynamic<Ops>(q, db + i * NW, NW));
  }
}

template <class Ops, class Sink>
inline void scan_any(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, uint32_t bound,
                     Sink& sink) noexcept {
  switch (nwords) {
    case 1: return scan_fixed<Ops, 1>(q, db, n, bound, sink);
    case 2: return scan_fixed<Ops, 2>(q, db, n, bound, sink);
    case 4: return scan_fixed<Ops, 4>(q, db, n, bound, sink);
    case 8: return scan_fixed<Ops, 8>(q, db, n, bound, sink);
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
  scan_any<Ops>(q, db, n, nwords, UINT32_MAX, sink);
}

template <class Ops>
size_t scan_le_impl(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, uint32_t bound,
                    uint32_t* idx, uint16_t* dist) noexcept {
  BoundSink sink{bound, idx, dist};
  scan_any<Ops>(q, db, n, nwords, bound, sink);
  return sink.count;
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
};

}  // namespace
}  // namespace kernels
}  // namespace hashmatch
