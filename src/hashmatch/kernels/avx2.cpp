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

}  // namespace

const KernelTable kAvx2 = {"avx2", rows_impl<Avx2Ops>, scan_impl<Avx2Ops>, scan_le_impl<Avx2Ops>};

}  // namespace kernels
}  // namespace hashmatch
