// Bit-level helpers of the non-ISA code (flat_index.cpp, mih_index.cpp, join.cpp, clusters.cpp):
// distances between two codes, substrings of a code, Hamming balls, and the tiled layout.
//
// Baseline flags only: never include this header from an ISA translation unit (kernels/*.cpp).
// Its inline functions would be compiled there with that TU's flags (AVX-512, say), and the
// linker could pick that copy for every caller. The kernels keep private copies of what they
// need in anonymous namespaces (kernels/scan_impl.h).
//
// Two bit orders name the bits of a hash; both are part of data that outlives a call, so
// neither can change:
//  * word order: bit b is bit b % 64 of the little-endian 64-bit word b / 64, i.e. bit b % 8
//    (least significant first) of byte b / 8. The join's substrings and the per-bit statistics
//    its planner measures (dedup.py) are in word order.
//  * hex order: bit 0 is the most significant bit of byte 0, as a hash reads in hex. The
//    MIHIndex's tables are in hex order, and saved MIH files record their substrings in it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hashmatch/kernels/kernels.h"

namespace hashmatch {
namespace bits {

// ---- Words and distances ---------------------------------------------------------------------

/// Word `p` of a code. Codes may live in any byte buffer (a numpy array need not be 8-byte
/// aligned): memcpy compiles to one unaligned load and is free of aliasing and alignment UB.
inline uint64_t load_word(const uint64_t* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

inline uint32_t popcount(uint64_t x) noexcept { return static_cast<uint32_t>(__builtin_popcountll(x)); }

/// Code width in words: NW > 0 fixes it at compile time (loops unroll fully); NW == 0 takes
/// the run-time `nwords`.
template <size_t NW>
struct Width {
  static constexpr size_t words(size_t) noexcept { return NW; }
};
template <>
struct Width<0> {
  static size_t words(size_t nwords) noexcept { return nwords; }
};

/// Hamming distance of two codes of nwords words (unaligned-safe loads, one POPCNT a word).
template <size_t NW = 0>
inline uint32_t distance(const uint64_t* x, const uint64_t* y, size_t nwords) noexcept {
  uint32_t d = 0;
  for (size_t w = 0; w < Width<NW>::words(nwords); ++w) d += popcount(load_word(x + w) ^ load_word(y + w));
  return d;
}

/// The distance, or any value above `bound` once the first half of the words exceeds it: a
/// random pair of codes is rejected after half the POPCNTs.
template <size_t NW = 0>
inline uint32_t bounded_distance(const uint64_t* x, const uint64_t* y, size_t nwords, uint32_t bound) noexcept {
  const size_t words = Width<NW>::words(nwords);
  if (words < 2) return distance<NW>(x, y, nwords);
  const size_t half = words / 2;
  uint32_t d = 0;
  for (size_t w = 0; w < half; ++w) d += popcount(load_word(x + w) ^ load_word(y + w));
  if (d > bound) return d;
  for (size_t w = half; w < words; ++w) d += popcount(load_word(x + w) ^ load_word(y + w));
  return d;
}

// ---- Substrings ------------------------------------------------------------------------------

/// Bits [lo, lo + len) of a code in word order, bit lo as the value's bit 0 (len <= 64).
/// Reads the words holding those bits and no others.
inline uint64_t substring_word_order(const uint64_t* words, uint32_t lo, uint32_t len) noexcept {
  const uint32_t wi = lo / 64;
  const uint32_t off = lo % 64;
  uint64_t v = load_word(words + wi) >> off;
  if (off + len > 64) v |= load_word(words + wi + 1) << (64 - off);
  return len == 64 ? v : v & ((uint64_t{1} << len) - 1);
}

/// Bits [lo, lo + len) of a code of nbytes bytes in hex order, bit lo as the value's most
/// significant bit (len <= 32). Bytes past nbytes read as zero.
inline uint32_t substring_hex_order(const uint8_t* code, size_t nbytes, uint32_t lo, uint32_t len) noexcept {
  const size_t first = lo / 8;
  uint64_t window = 0;  // 40 bits from byte `first`: enough for 7 + 32
  for (size_t b = 0; b < 5; ++b) window = (window << 8) | (first + b < nbytes ? code[first + b] : 0u);
  return static_cast<uint32_t>((window >> (40 - lo % 8 - len)) & ((uint64_t{1} << len) - 1));
}

/// Length of substring t when `bits` bits are cut into m contiguous substrings whose lengths
/// differ by at most one, the longer ones first.
inline uint32_t split_length(size_t bits, size_t m, size_t t) noexcept {
  return static_cast<uint32_t>(bits / m + (t < bits % m ? 1 : 0));
}

// ---- Hamming balls ---------------------------------------------------------------------------

/// Masks within `radius` of a len-bit substring: sum_{i <= radius} C(len, i), as a double (it
/// feeds cost models); 0 for a negative radius.
inline double ball_size(uint32_t len, int64_t radius) noexcept {
  double total = 0, c = 1;  // c = C(len, i)
  for (int64_t i = 0; i <= radius && i <= static_cast<int64_t>(len); ++i) {
    total += c;
    c = c * static_cast<double>(len - i) / static_cast<double>(i + 1);
  }
  return total;
}

/// Calls visit(mask) for every len-bit mask of exactly `weight` set bits (len <= 32), in
/// increasing order (Gosper's hack walks the masks of one popcount).
template <class Visit>
void for_each_mask(uint32_t len, uint32_t weight, Visit&& visit) {
  if (weight > len) return;
  if (weight == 0) {
    visit(uint32_t{0});
    return;
  }
  const uint64_t end = uint64_t{1} << len;
  for (uint64_t mask = (uint64_t{1} << weight) - 1; mask < end;) {
    visit(static_cast<uint32_t>(mask));
    const uint64_t low = mask & (~mask + 1), ripple = mask + low;
    mask = (((ripple ^ mask) >> 2) / low) | ripple;
  }
}

// ---- Tiled layout (kernels.h) ----------------------------------------------------------------
// Kept out of the kernels' header for the reason above.

/// Stores code i (nwords words, read unaligned-safe) into its tile slot.
inline void tile_put(uint64_t* tiles, size_t nwords, size_t i, const uint64_t* code) noexcept {
  constexpr size_t kTile = kernels::kTileCodes;
  uint64_t* tile = tiles + (i / kTile) * kTile * nwords;
  for (size_t w = 0; w < nwords; ++w) tile[w * kTile + i % kTile] = load_word(code + w);
}

/// Copies code i out of its tile slot.
inline void tile_get(const uint64_t* tiles, size_t nwords, size_t i, uint64_t* code) noexcept {
  constexpr size_t kTile = kernels::kTileCodes;
  const uint64_t* tile = tiles + (i / kTile) * kTile * nwords;
  for (size_t w = 0; w < nwords; ++w) code[w] = tile[w * kTile + i % kTile];
}

}  // namespace bits
}  // namespace hashmatch
