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
};


// ---- Fast paths for the two widths that matter most: PDQ (4 words) and pHash/dHash (1 word).
// Both produce the distances of four codes in the four 64-bit lanes of one register, so the
// bound test is one compare and one movemask per four codes, and hits (rare) are the only
// scalar work.

inline __m256i lane_counts(__m256i x) noexcept { return _mm256_sad_epu8(Avx2Ops::byte_counts(x), _mm256_setzero_si256()); }

// Distances of codes c[0..4) of 4 words each, in lanes 0..3. The four per-code lane vectors are
// summed "transposed": unpack pairs, then swap 128-bit halves, so no per-code horizontal sum.
inline __m256i distances4_w4(__m256i q, const uint64_t* c) noexcept {
  const __m256i s0 = lane_counts(_mm256_xor_si256(q, Avx2Ops::load(c)));
  const __m256i s1 = lane_counts(_mm256_xor_si256(q, Avx2Ops::load(c + 4)));
  const __m256i s2 = lane_counts(_mm256_xor_si256(q, Avx2Ops::load(c + 8)));
  const __m256i s3 = lane_counts(_mm256_xor_si256(q, Avx2Ops::load(c + 12)));
  const __m256i u01 = _mm256_add_epi64(_mm256_unpacklo_epi64(s0, s1), _mm256_unpackhi_epi64(s0, s1));
  const __m256i u23 = _mm256_add_epi64(_mm256_unpacklo_epi64(s2, s3), _mm256_unpackhi_epi64(s2, s3));
  return _mm256_add_epi64(_mm256_permute2x128_si256(u01, u23, 0x20), _mm256_permute2x128_si256(u01, u23, 0x31));
}

// Distances over the first 2 words (128 bits) of four 4-word codes, in lanes (0, 2, 1, 3) order:
// only compared as a whole against the bound, so the order does not matter.
inline __m256i half_distances4_w4(__m256i q_lo2, const uint64_t* c) noexcept {
  const auto load2 = [](const uint64_t* a, const uint64_t* b) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  };
  const __m256i s01 = lane_counts(_mm256_xor_si256(q_lo2, load2(c, c + 4)));
  const __m256i s23 = lane_counts(_mm256_xor_si256(q_lo2, load2(c + 8, c + 12)));
  return _mm256_add_epi64(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
}

// Lanes whose distance exceeds the bound, as a 4-bit mask (distances are far below 2^63).
inline unsigned above(__m256i d, __m256i bound) noexcept {
  return static_cast<unsigned>(_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(d, bound))));
}

inline void put4(StoreSink& sink, size_t i, __m256i d, __m256i) noexcept {
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), d);
  for (size_t j = 0; j < 4; ++j) sink.out[i + j] = static_cast<uint16_t>(lanes[j]);
}

inline void put4(BoundSink& sink, size_t i, __m256i d, __m256i bound) noexcept {
  unsigned keep = ~above(d, bound) & 0xFu;
  if (keep == 0) return;
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), d);
  for (; keep != 0; keep &= keep - 1) {
    const unsigned j = static_cast<unsigned>(__builtin_ctz(keep));
    sink.idx[sink.count] = static_cast<uint32_t>(i + j);
    sink.dist[sink.count] = static_cast<uint16_t>(lanes[j]);
    ++sink.count;
  }
}

template <class Sink>
void scan_w4(const uint64_t* q, const uint64_t* db, size_t n, uint32_t bound, Sink& sink) noexcept {
  const __m256i qv = Avx2Ops::load(q);
  const __m256i q_lo2 = _mm256_permute4x64_epi64(qv, 0x44);  // words (0, 1, 0, 1)
  const __m256i boundv = _mm256_set1_epi64x(static_cast<int64_t>(bound));
  // Early exit pays when a random code almost surely exceeds the bound within 128 bits
  // (expected 64 there): PDQ range search at 31 skips the second half of nearly every code.
  const bool early_exit = bound < 64;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint64_t* c = db + i * 4;
    if (early_exit && above(half_distances4_w4(q_lo2, c), boundv) == 0xFu) continue;
    put4(sink, i, distances4_w4(qv, c), boundv);
  }
  for (; i < n; ++i) sink.put(i, distance_dynamic<Avx2Ops>(q, db + i * 4, 4));
}

template <class Sink>
void scan_w1(const uint64_t* q, const uint64_t* db, size_t n, uint32_t bound, Sink& sink) noexcept {
  const __m256i qv = _mm256_set1_epi64x(static_cast<int64_t>(load_word(q)));
  const __m256i boundv = _mm256_set1_epi64x(static_cast<int64_t>(bound));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    put4(sink, i, lane_counts(_mm256_xor_si256(qv, Avx2Ops::load(db + i))), boundv);
    put4(sink, i + 4, lane_counts(_mm256_xor_si256(qv, Avx2Ops::load(db + i + 4))), boundv);
  }
  for (; i < n; ++i) sink.put(i, popcount64(load_word(q) ^ load_word(db + i)));
}

template <class Sink>
void scan_avx2(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, uint32_t bound, Sink& sink) noexcept {
  if (nwords == 4) return scan_w4(q, db, n, bound, sink);
  if (nwords == 1) return scan_w1(q, db, n, bound, sink);
  scan_any<Avx2Ops>(q, db, n, nwords, bound, sink);
}

void scan(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, uint16_t* out) noexcept {
  StoreSink sink{out};
  scan_avx2(q, db, n, nwords, UINT32_MAX, sink);
}

size_t scan_le(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords, uint32_t bound, uint32_t* idx,
               uint16_t* dist) noexcept {
  BoundSink sink{bound, idx, dist};
  scan_avx2(q, db, n, nwords, bound, sink);
  return sink.count;
}

}  // namespace

const KernelTable kAvx2 = {"avx2", rows_impl<Avx2Ops>, scan, scan_le};

}  // namespace kernels
}  // namespace hashmatch
