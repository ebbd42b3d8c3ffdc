// AVX2 kernels.
//
// Target: Haswell and later Intel cores, AMD Zen 1 and later.
// Flags: -mavx2 -mpopcnt (this TU only).
// Key instructions: AVX2 has no vector popcount, so bits are counted per nibble with a 16-entry
// VPSHUFB lookup table (Mula's method): two shuffles per 32 bytes give per-byte counts, and
// VPSADBW against zero sums them into the four 64-bit lanes. A PDQ hash (256 bits) is exactly one
// register.
// Tails: words left over after whole registers go through scalar POPCNT (scan_impl.h).
#include <immintrin.h>

#include "hashmatch/kernels/kernels.h"
#include "hashmatch/kernels/scan_impl.h"

namespace hashmatch {
namespace kernels {
namespace {

struct Avx2Ops {
  static constexpr size_t kLanes = 4;
  using V = __m256i;
  static V load(const uint64_t* p) noexcept { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static V bxor(V a, V b) noexcept { return _mm256_xor_si256(a, b); }
  static V byte_counts(V v) noexcept {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(v, low_nibbles);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low_nibbles);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
  }
  static V popcount_lanes(V v) noexcept { return _mm256_sad_epu8(byte_counts(v), _mm256_setzero_si256()); }
  static V add(V a, V b) noexcept { return _mm256_add_epi64(a, b); }
  static uint64_t hsum(V v) noexcept {
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_add_epi64(s, _mm_unpackhi_epi64(s, s))));
  }
  static void store(uint64_t* p, V v) noexcept { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

  static V broadcast(uint64_t w) noexcept { return _mm256_set1_epi64x(static_cast<long long>(w)); }
  static V zero() noexcept { return _mm256_setzero_si256(); }
  // Lanes hold distances (below 2^32, upper halves zero): the 32-bit minimum is the 64-bit one.
  static V min(V a, V b) noexcept { return _mm256_min_epu32(a, b); }
};

// ---- Tiled scan: the index's hot loop.
// A tile is 8 codes; per word, two registers hold that word of codes 0-3 and 4-7. Per-byte
// counts of up to 31 words accumulate in bytes (8 * 31 < 256) before one VPSADBW turns them
// into the four 64-bit per-code distances: about 8 vector ops per code and word-pair for PDQ,
// no shuffles besides the nibble lookups. Early exit: with a tight bound (PDQ range search),
// a tile whose 8 codes all exceed the bound after half the words is dropped. Tiles are
// prefetched 16 KiB ahead when the caller asks (scan_impl.h: prefetch_tile_ahead).

inline __m256i lane_sums(__m256i byte_counts) noexcept { return _mm256_sad_epu8(byte_counts, _mm256_setzero_si256()); }

// Adds the distances over words [w0, w1) of the tile's two 4-code halves into d0, d1.
inline void accumulate_words(const uint64_t* q, const uint64_t* tile, size_t w0, size_t w1, __m256i& d0,
                             __m256i& d1) noexcept {
  while (w0 < w1) {
    const size_t stop = w1 - w0 > 31 ? w0 + 31 : w1;  // byte counters must not overflow
    __m256i b0 = _mm256_setzero_si256(), b1 = _mm256_setzero_si256();
    for (size_t w = w0; w < stop; ++w) {
      const __m256i qw = _mm256_set1_epi64x(static_cast<long long>(load_word(q + w)));
      b0 = _mm256_add_epi8(b0, Avx2Ops::byte_counts(_mm256_xor_si256(qw, Avx2Ops::load(tile + w * kTileCodes))));
      b1 = _mm256_add_epi8(b1, Avx2Ops::byte_counts(_mm256_xor_si256(qw, Avx2Ops::load(tile + w * kTileCodes + 4))));
    }
    d0 = _mm256_add_epi64(d0, lane_sums(b0));
    d1 = _mm256_add_epi64(d1, lane_sums(b1));
    w0 = stop;
  }
}

// Codes of the tile (bit c) whose distance exceeds the bound.
inline unsigned above(__m256i d0, __m256i d1, __m256i bound) noexcept {
  const auto mask = [&](__m256i d) {
    return static_cast<unsigned>(_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(d, bound))));
  };
  return mask(d0) | (mask(d1) << 4);
}

// NW > 0: the width as a compile-time constant (loops unroll fully); NW == 0: any width.
template <size_t NW>
size_t scan_tiles_le_w(const uint64_t* q, const uint64_t* tiles, size_t n, size_t nwords_dynamic, uint32_t bound,
                       uint32_t* idx, uint16_t* dist, bool prefetch) noexcept {
  const size_t nwords = NW > 0 ? NW : nwords_dynamic;
  const __m256i boundv = _mm256_set1_epi64x(static_cast<long long>(bound));
  const bool early_exit = nwords >= 2 && bound < nwords * 16;  // a random code expects nwords*16 in half
  const size_t half = early_exit ? nwords / 2 : 0;
  size_t count = 0;
  for (size_t t0 = 0; t0 < n; t0 += kTileCodes) {
    const uint64_t* tile = tiles + t0 * nwords;
    if (prefetch) prefetch_tile_ahead(tiles, t0 * nwords, nwords);
    __m256i d0 = _mm256_setzero_si256(), d1 = _mm256_setzero_si256();
    if (early_exit) {
      accumulate_words(q, tile, 0, half, d0, d1);
      if (above(d0, d1, boundv) == 0xFFu) continue;
    }
    accumulate_words(q, tile, half, nwords, d0, d1);
    const size_t m = n - t0 < kTileCodes ? n - t0 : kTileCodes;
    unsigned keep = ~above(d0, d1, boundv) & ((1u << m) - 1u);
    if (keep == 0) continue;
    alignas(32) uint64_t d[kTileCodes];
    _mm256_store_si256(reinterpret_cast<__m256i*>(d), d0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(d + 4), d1);
    for (; keep != 0; keep &= keep - 1) {
      const unsigned c = static_cast<unsigned>(__builtin_ctz(keep));
      idx[count] = static_cast<uint32_t>(t0 + c);
      dist[count] = static_cast<uint16_t>(d[c]);
      ++count;
    }
  }
  return count;
}

size_t scan_tiles_le(const uint64_t* q, const uint64_t* tiles, size_t n, size_t nwords, uint32_t bound,
                     uint32_t* idx, uint16_t* dist, bool prefetch) noexcept {
  switch (nwords) {
    case 1: return scan_tiles_le_w<1>(q, tiles, n, nwords, bound, idx, dist, prefetch);
    case 2: return scan_tiles_le_w<2>(q, tiles, n, nwords, bound, idx, dist, prefetch);
    case 4: return scan_tiles_le_w<4>(q, tiles, n, nwords, bound, idx, dist, prefetch);
    case 8: return scan_tiles_le_w<8>(q, tiles, n, nwords, bound, idx, dist, prefetch);
    default: return scan_tiles_le_w<0>(q, tiles, n, nwords, bound, idx, dist, prefetch);
  }
}

// ---- Row-major scan (cdist over the caller's arrays): PDQ gets four codes per step, their
// lane sums combined "transposed" (unpack pairs, then swap 128-bit halves) instead of one
// horizontal sum per code; 64-bit codes are four per register and need no combining.

inline __m256i distances4_w4(__m256i q, const uint64_t* c) noexcept {
  const __m256i s0 = lane_sums(Avx2Ops::byte_counts(_mm256_xor_si256(q, Avx2Ops::load(c))));
  const __m256i s1 = lane_sums(Avx2Ops::byte_counts(_mm256_xor_si256(q, Avx2Ops::load(c + 4))));
  const __m256i s2 = lane_sums(Avx2Ops::byte_counts(_mm256_xor_si256(q, Avx2Ops::load(c + 8))));
  const __m256i s3 = lane_sums(Avx2Ops::byte_counts(_mm256_xor_si256(q, Avx2Ops::load(c + 12))));
  const __m256i u01 = _mm256_add_epi64(_mm256_unpacklo_epi64(s0, s1), _mm256_unpackhi_epi64(s0, s1));
  const __m256i u23 = _mm256_add_epi64(_mm256_unpacklo_epi64(s2, s3), _mm256_unpackhi_epi64(s2, s3));
  return _mm256_add_epi64(_mm256_permute2x128_si256(u01, u23, 0x20), _mm256_permute2x128_si256(u01, u23, 0x31));
}

inline void store4(uint16_t* out, __m256i d) noexcept {
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), d);
  for (size_t j = 0; j < 4; ++j) out[j] = static_cast<uint16_t>(lanes[j]);
}

void scan(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, uint16_t* out) noexcept {
  size_t i = 0;
  if (nwords == 4) {
    const __m256i qv = Avx2Ops::load(q);
    for (; i + 4 <= n; i += 4) store4(out + i, distances4_w4(qv, db + i * 4));
  } else if (nwords == 1) {
    const __m256i qv = _mm256_set1_epi64x(static_cast<long long>(load_word(q)));
    for (; i + 4 <= n; i += 4) store4(out + i, lane_sums(Avx2Ops::byte_counts(_mm256_xor_si256(qv, Avx2Ops::load(db + i)))));
  }
  scan_impl<Avx2Ops>(q, db + i * nwords, n - i, nwords, out + i);
}

// ---- Multi-needle tiled scan (dihedral variant stacks: up to 8 needles per pass).
// Counting each needle the single scan's way (XOR, split nibbles, two lookups, add, and a
// VPSADBW per word) costs ~8 ops per needle, word and 4-code half, and 8 needles' accumulators
// overflow the 16 ymm registers. Instead, blocks of 4 tiles (32 codes) are byte-transposed so
// that each 128-bit lane holds one byte position of 16 codes. All 16 bytes of a lane then meet
// the same needle byte, so the XOR folds into the lookup table (the table for a needle nibble x
// is popcount(i ^ x)), and a needle costs 2 lookups and 2 adds per byte position and 32 codes:
// no XOR, no per-needle nibble split and no VPSADBW, since each code's count sits in one byte.
// Counts add with unsigned saturation, so a byte holds min(distance, 255): exact whenever it is
// <= a bound below 255 (bounds of 255 and more take the shared template).
// Per chunk of 2 words (16 byte positions), the block is loaded once (16 registers), transposed
// (4 rounds of byte unpacks) and split into nibbles, then counted against the needles, 4 at a
// time. A block whose 32 codes all exceed the bound for every needle is dropped: after the first
// 12 bytes (96 bits: a random pair of 256-bit codes stays within 31 with p ~ 3e-4 there, so ~92%
// of blocks of 32 codes x 8 needles stop) and after each chunk. Measured at 1M PDQ codes, r = 31
// (benchmarks/RESULTS.md): ~1.2x one single-needle scan, against ~2.7x for 8 separate queries.
namespace multi {

constexpr size_t kBlockTiles = 4;
constexpr size_t kBlockCodes = kBlockTiles * kTileCodes;  // 32: one byte per code in a register
constexpr size_t kMaxWords = 8;                           // widest codes taking this path
constexpr size_t kMaxChunks = kMaxWords / 2;
constexpr size_t kGroup = 4;   // needles counted together (their counters stay in registers)
constexpr size_t kFirst = 12;  // byte positions counted before the first early-exit check
constexpr size_t kPrefetchBlocks = 4;  // software prefetch distance (measured: 2 to 8 similar)

// Transposition. Register x[i] starts as word 2c + w of codes 4h..4h+3 of tile t,
// i = t << 2 | h << 1 | w; in a 128-bit lane L its byte j is byte j & 7 of code 4h + 2L + (j >> 3).
// Each round interleaves the bytes of pairs of registers (unpacklo/hi), which moves one bit of
// the register index into the byte index. After the 4 rounds below, register r holds byte
// position position(r) of the chunk and byte j of lane L belongs to code code_of(L, j) of the
// block: the same code for a given (L, j) in every register.
inline void transpose(__m256i x[16]) noexcept {
  const auto round = [&](size_t bit) {
    for (size_t a = 0; a < 16; ++a) {
      if ((a & bit) != 0) continue;
      const __m256i lo = _mm256_unpacklo_epi8(x[a], x[a | bit]);
      const __m256i hi = _mm256_unpackhi_epi8(x[a], x[a | bit]);
      x[a] = lo;
      x[a | bit] = hi;
    }
  };
  round(4);  // tile bit 0 into the byte index; register bit 2 now holds the code's lane half
  round(8);  // tile bit 1
  round(2);  // h
  round(4);  // the code's lane half
}

// Byte position within the chunk (word p / 8, byte p % 8) held by transposed register r.
constexpr size_t position(size_t r) { return (r & 1) * 8 + ((r >> 3) & 1) * 4 + ((r >> 1) & 1) * 2 + ((r >> 2) & 1); }

// Code of the block (0..31) in byte j of lane L of every transposed register.
constexpr size_t code_of(size_t lane, size_t j) {
  return (((j >> 2) & 1) * 2 + ((j >> 3) & 1)) * kTileCodes + ((j >> 1) & 1) * 4 + lane * 2 + (j & 1);
}

struct SlotTable {
  uint8_t slot[kBlockCodes];  // code -> byte of the 32-byte register (lane * 16 + j)
  constexpr SlotTable() : slot() {
    for (size_t s = 0; s < kBlockCodes; ++s) slot[code_of(s / 16, s % 16)] = static_cast<uint8_t>(s);
  }
};
constexpr SlotTable kSlots{};

// Lookup tables of a chunk, built on first use in a call: for transposed register r and needle
// v, 16 bytes for the low nibbles then 16 for the high ones, entry i = popcount(i ^ needle
// nibble at position(r)). `built` registers [0, built) are ready.
struct alignas(32) Luts {
  uint8_t bytes[16][kMaxNeedles][32];
  size_t built;
};

template <size_t NV, size_t R0, size_t R1>
__attribute__((noinline)) void build_luts(const uint64_t* qs, size_t nwords, size_t chunk, Luts& out) noexcept {
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i pc = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                      0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i iota = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (size_t v = 0; v < NV; ++v) {
    const uint64_t* needle = qs + v * nwords;
    const size_t w0 = 2 * chunk;
    // A missing second word (odd widths) is zero in the codes too: a zero needle word adds 0.
    const uint64_t a = load_word(needle + w0), b = w0 + 1 < nwords ? load_word(needle + w0 + 1) : 0;
    const __m256i bytes = _mm256_setr_epi64x(static_cast<long long>(a), static_cast<long long>(b),
                                             static_cast<long long>(a), static_cast<long long>(b));
    // Lane 0: the low nibbles of the chunk's 16 needle bytes, lane 1: the high ones.
    const __m256i nibbles = _mm256_blend_epi32(_mm256_and_si256(bytes, nib),
                                               _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nib), 0xF0);
    for (size_t r = R0; r < R1; ++r) {  // constant bounds: unrolled (measured 10% of the scan otherwise)
      const __m256i x = _mm256_shuffle_epi8(nibbles, _mm256_set1_epi8(static_cast<char>(position(r))));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out.bytes[r][v]), _mm256_shuffle_epi8(pc, _mm256_xor_si256(x, iota)));
    }
  }
  out.built = R1;
}

// One 16-byte table in both lanes (VBROADCASTI128 from memory: a load, no shuffle). Measured
// faster than pre-broadcast 32-byte tables: half the L1 footprint, half the stores to build.
inline __m256i lut(const uint8_t* p) noexcept {
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

// Low and high nibbles of the transposed registers (the lookup indices).
struct Nibbles {
  __m256i lo[16], hi[16];
};

inline void split(const __m256i* x, size_t r0, size_t r1, Nibbles& out) noexcept {
  const __m256i nib = _mm256_set1_epi8(0x0f);
  for (size_t r = r0; r < r1; ++r) {
    out.lo[r] = _mm256_and_si256(x[r], nib);
    out.hi[r] = _mm256_and_si256(_mm256_srli_epi16(x[r], 4), nib);
  }
}

// Per-needle byte counters of a block. Named members, not an array: GCC keeps an array of
// vector accumulators in memory and stores and reloads it on every loop iteration (a store
// forwarding round trip on each add chain; measured 1.5x slower).
struct Acc {
  __m256i a0, a1, a2, a3, a4, a5, a6, a7;
};

template <size_t V>
inline __m256i& at(Acc& acc) noexcept {
  static_assert(V < kMaxNeedles, "needle");
  if constexpr (V == 0) return acc.a0;
  if constexpr (V == 1) return acc.a1;
  if constexpr (V == 2) return acc.a2;
  if constexpr (V == 3) return acc.a3;
  if constexpr (V == 4) return acc.a4;
  if constexpr (V == 5) return acc.a5;
  if constexpr (V == 6) return acc.a6;
  if constexpr (V == 7) return acc.a7;
}

// Counters of needles V0 .. V0 + G - 1 += each code's distance over transposed registers
// [r0, r1), saturating. G <= kGroup: the counters, the nibbles and the tables in flight fit the
// 16 ymm registers (all 8 needles at once spilled; 2 or 3 at a time reload the nibbles more).
template <size_t V0, size_t G>
inline void count_group(const Nibbles& nb, const Luts& luts, size_t r0, size_t r1, Acc& acc) noexcept {
  static_assert(G >= 1 && G <= kGroup, "group");
  const __m256i zero = _mm256_setzero_si256();
  __m256i a0 = at<V0>(acc), a1 = zero, a2 = zero, a3 = zero;
  if constexpr (G > 1) a1 = at<V0 + 1>(acc);
  if constexpr (G > 2) a2 = at<V0 + 2>(acc);
  if constexpr (G > 3) a3 = at<V0 + 3>(acc);
  for (size_t r = r0; r < r1; ++r) {
    const __m256i lo = nb.lo[r], hi = nb.hi[r];
    const uint8_t* t = luts.bytes[r][V0];
    const auto add = [&](__m256i a, size_t v) {
      return _mm256_adds_epu8(a, _mm256_add_epi8(_mm256_shuffle_epi8(lut(t + 32 * v), lo),
                                                 _mm256_shuffle_epi8(lut(t + 32 * v + 16), hi)));
    };
    a0 = add(a0, 0);
    if constexpr (G > 1) a1 = add(a1, 1);
    if constexpr (G > 2) a2 = add(a2, 2);
    if constexpr (G > 3) a3 = add(a3, 3);
  }
  at<V0>(acc) = a0;
  if constexpr (G > 1) at<V0 + 1>(acc) = a1;
  if constexpr (G > 2) at<V0 + 2>(acc) = a2;
  if constexpr (G > 3) at<V0 + 3>(acc) = a3;
}

template <size_t NV, size_t V0 = 0>
inline void count(const Nibbles& nb, const Luts& luts, size_t r0, size_t r1, Acc& acc) noexcept {
  if constexpr (V0 < NV) {
    constexpr size_t G = NV - V0 < kGroup ? NV - V0 : kGroup;
    count_group<V0, G>(nb, luts, r0, r1, acc);
    count<NV, V0 + G>(nb, luts, r0, r1, acc);
  }
}

// Bytes (codes) whose smallest count over the needles is <= bound (< 255).
template <size_t NV>
inline uint32_t within(Acc& acc, __m256i bound) noexcept {
  __m256i m = acc.a0;
  if constexpr (NV > 1) m = _mm256_min_epu8(m, acc.a1);
  if constexpr (NV > 2) m = _mm256_min_epu8(m, acc.a2);
  if constexpr (NV > 3) m = _mm256_min_epu8(m, acc.a3);
  if constexpr (NV > 4) m = _mm256_min_epu8(m, acc.a4);
  if constexpr (NV > 5) m = _mm256_min_epu8(m, acc.a5);
  if constexpr (NV > 6) m = _mm256_min_epu8(m, acc.a6);
  if constexpr (NV > 7) m = _mm256_min_epu8(m, acc.a7);
  return static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(m, bound), m)));
}

// Stores the counters one by one (copying them into an array first would bring back the
// per-iteration spills above).
template <size_t NV, size_t V = 0>
inline void store_counts(Acc& acc, uint8_t (*d)[kBlockCodes]) noexcept {
  if constexpr (V < NV) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(d[V]), at<V>(acc));
    store_counts<NV, V + 1>(acc, d);
  }
}

// Codes [0, m) of the block at `tiles` (kBlockTiles whole tiles in memory), for bound < 255 and
// nwords <= kMaxWords: appends the hits (indices offset by base) and returns how many.
template <size_t NV>
size_t block(const uint64_t* qs, const uint64_t* tiles, size_t m, size_t nwords, size_t base, uint32_t bound,
             Luts* luts, uint32_t* idx, uint16_t* dist, uint8_t* variant) noexcept {
  const __m256i boundv = _mm256_set1_epi8(static_cast<char>(bound));
  const __m256i z = _mm256_setzero_si256();
  Acc acc = {z, z, z, z, z, z, z, z};
  uint32_t hits = 0;
  const size_t nchunks = (nwords + 1) / 2;
  for (size_t c = 0; c < nchunks; ++c) {
    __m256i x[16];
    for (size_t i = 0; i < 16; ++i) {
      const size_t t = i >> 2, h = (i >> 1) & 1, w = 2 * c + (i & 1);
      x[i] = w < nwords ? Avx2Ops::load(tiles + (t * nwords + w) * kTileCodes + h * 4) : _mm256_setzero_si256();
    }
    transpose(x);
    Nibbles nb;
    size_t r = 0;
    if (c == 0) {  // the first 12 bytes, then a first check
      if (luts[c].built == 0) build_luts<NV, 0, kFirst>(qs, nwords, c, luts[c]);
      split(x, 0, kFirst, nb);
      count<NV>(nb, luts[c], 0, kFirst, acc);
      if (within<NV>(acc, boundv) == 0) return 0;
      r = kFirst;
    }
    if (luts[c].built == 0) build_luts<NV, 0, 16>(qs, nwords, c, luts[c]);
    if (luts[c].built == kFirst) build_luts<NV, kFirst, 16>(qs, nwords, c, luts[c]);
    split(x, r, 16, nb);
    count<NV>(nb, luts[c], r, 16, acc);
    hits = within<NV>(acc, boundv);
    if (hits == 0) return 0;
  }
  alignas(32) uint8_t d[kMaxNeedles][kBlockCodes];
  store_counts<NV>(acc, d);
  uint32_t codes = 0;  // the hits, by code
  for (; hits != 0; hits &= hits - 1) {
    const unsigned s = static_cast<unsigned>(__builtin_ctz(hits));
    codes |= uint32_t{1} << code_of(s / 16, s % 16);
  }
  if (m < kBlockCodes) codes &= (uint32_t{1} << m) - 1;
  size_t count = 0;
  for (; codes != 0; codes &= codes - 1) {
    const unsigned code = static_cast<unsigned>(__builtin_ctz(codes));
    const size_t s = kSlots.slot[code];
    uint8_t best = d[0][s];
    size_t first = 0;
    for (size_t v = 1; v < NV; ++v) {
      if (d[v][s] < best) best = d[v][s], first = v;  // strict: the first needle reaching it
    }
    idx[count] = static_cast<uint32_t>(base + code);
    dist[count] = best;
    variant[count] = static_cast<uint8_t>(first);
    ++count;
  }
  return count;
}

template <size_t NV>
size_t scan_nv(const uint64_t* qs, const uint64_t* tiles, size_t n, size_t nwords, uint32_t bound, uint32_t* idx,
               uint16_t* dist, uint8_t* variant) noexcept {
  Luts luts[kMaxChunks];
  for (auto& l : luts) l.built = 0;
  size_t count = 0, t0 = 0;
  for (; t0 + kBlockCodes <= n; t0 += kBlockCodes) {
    // Software prefetch of the first chunk 4 blocks ahead. The early exit reads 128 of every
    // 256 bytes (PDQ); unless the codes are 64-byte aligned that touches 3 of every 4 cache
    // lines, and the hardware prefetcher then falls behind: 3.2 ms instead of 1.7 ms at 1M
    // codes 16 bytes off a line (std::vector storage), measured; aligned codes are unaffected.
    if (t0 + (kPrefetchBlocks + 1) * kBlockCodes <= n) {
      const char* ahead = reinterpret_cast<const char*>(tiles + (t0 + kPrefetchBlocks * kBlockCodes) * nwords);
      for (size_t t = 0; t < kBlockTiles; ++t, ahead += kTileCodes * nwords * sizeof(uint64_t)) {
        _mm_prefetch(ahead, _MM_HINT_T0);
        _mm_prefetch(ahead + 64, _MM_HINT_T0);
        _mm_prefetch(ahead + 127, _MM_HINT_T0);  // words 0-1: bytes [0, 128) of the tile
      }
    }
    count += block<NV>(qs, tiles + t0 * nwords, kBlockCodes, nwords, t0, bound, luts, idx + count, dist + count,
                       variant + count);
  }
  if (t0 < n) {  // a partial block: its whole tiles (never more), then zero tiles
    alignas(32) uint64_t pad[kBlockCodes * kMaxWords] = {};
    const size_t ntiles = (n - t0 + kTileCodes - 1) / kTileCodes;
    __builtin_memcpy(pad, tiles + t0 * nwords, ntiles * kTileCodes * nwords * sizeof(uint64_t));
    count += block<NV>(qs, pad, n - t0, nwords, t0, bound, luts, idx + count, dist + count, variant + count);
  }
  return count;
}

}  // namespace multi

size_t scan_tiles_variants_le(const uint64_t* qs, size_t nv, const uint64_t* tiles, size_t n, size_t nwords,
                              uint32_t bound, uint32_t* idx, uint16_t* dist, uint8_t* variant) noexcept {
  if (nwords > multi::kMaxWords || bound >= 255) {
    // Distances past a byte (kNN before its heap fills, wide codes): the shared template.
    return scan_tiles_variants_le_impl<Avx2Ops>(qs, nv, tiles, n, nwords, bound, idx, dist, variant);
  }
  switch (nv) {
    case 1: return multi::scan_nv<1>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 2: return multi::scan_nv<2>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 3: return multi::scan_nv<3>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 4: return multi::scan_nv<4>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 5: return multi::scan_nv<5>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 6: return multi::scan_nv<6>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 7: return multi::scan_nv<7>(qs, tiles, n, nwords, bound, idx, dist, variant);
    case 8: return multi::scan_nv<8>(qs, tiles, n, nwords, bound, idx, dist, variant);
    default: return 0;  // outside the contract (1 <= nv <= kMaxNeedles): nothing matches
  }
}

}  // namespace

const KernelTable kAvx2 = {"avx2", rows_impl<Avx2Ops>, scan, scan_tiles_le, scan_tiles_variants_le};

}  // namespace kernels
}  // namespace hashmatch
