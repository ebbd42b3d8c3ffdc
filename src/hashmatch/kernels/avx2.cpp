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
// a tile whose 8 codes all exceed the bound after half the words is dropped.

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
                       uint32_t* idx, uint16_t* dist) noexcept {
  const size_t nwords = NW > 0 ? NW : nwords_dynamic;
  const __m256i boundv = _mm256_set1_epi64x(static_cast<long long>(bound));
  const bool early_exit = nwords >= 2 && bound < nwords * 16;  // a random code expects nwords*16 in half
  const size_t half = early_exit ? nwords / 2 : 0;
  size_t count = 0;
  for (size_t t0 = 0; t0 < n; t0 += kTileCodes) {
    const uint64_t* tile = tiles + t0 * nwords;
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
                     uint32_t* idx, uint16_t* dist) noexcept {
  switch (nwords) {
    case 1: return scan_tiles_le_w<1>(q, tiles, n, nwords, bound, idx, dist);
    case 2: return scan_tiles_le_w<2>(q, tiles, n, nwords, bound, idx, dist);
    case 4: return scan_tiles_le_w<4>(q, tiles, n, nwords, bound, idx, dist);
    case 8: return scan_tiles_le_w<8>(q, tiles, n, nwords, bound, idx, dist);
    default: return scan_tiles_le_w<0>(q, tiles, n, nwords, bound, idx, dist);
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

}  // namespace

// The multi-needle scan (dihedral variant stacks) is the shared template over Avx2Ops: its
// per-word VPSADBW costs more than the byte counters above, but each tile load serves 8 needles.
const KernelTable kAvx2 = {"avx2", rows_impl<Avx2Ops>, scan, scan_tiles_le, scan_tiles_variants_le_impl<Avx2Ops>};

}  // namespace kernels
}  // namespace hashmatch
