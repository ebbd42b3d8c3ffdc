// AVX-512 VPOPCNTDQ kernels.
//
// Target: Ice Lake and later Intel server/client cores, AMD Zen 4 and later.
// Flags: -mavx512f -mavx512bw -mavx512vl -mavx512vpopcntdq (this TU only).
// Key instruction: VPOPCNTQ counts the bits of eight 64-bit lanes in one instruction, so a PDQ
// hash (4 words) is half a register and 512-bit codes are one register: no nibble lookup tables.
// Tails: words left over after whole registers go through scalar POPCNT (scan_impl.h).
// Tested through the emulated 8-lane path (emulated.cpp) on CPUs without AVX-512.
#include <immintrin.h>

#include "hashmatch/kernels/kernels.h"
#include "hashmatch/kernels/scan_impl.h"

namespace hashmatch {
namespace kernels {
namespace {

struct Avx512Ops {
  static constexpr size_t kLanes = 8;
  using V = __m512i;
  static V load(const uint64_t* p) noexcept { return _mm512_loadu_si512(p); }
  static V bxor(V a, V b) noexcept { return _mm512_xor_si512(a, b); }
  static V popcount_lanes(V v) noexcept { return _mm512_popcnt_epi64(v); }
  static V add(V a, V b) noexcept { return _mm512_add_epi64(a, b); }
  static uint64_t hsum(V v) noexcept { return static_cast<uint64_t>(_mm512_reduce_add_epi64(v)); }
  static void store(uint64_t* p, V v) noexcept { _mm512_storeu_si512(p, v); }
  static V broadcast(uint64_t w) noexcept { return _mm512_set1_epi64(static_cast<long long>(w)); }
  static V zero() noexcept { return _mm512_setzero_si512(); }
  static V min(V a, V b) noexcept { return _mm512_min_epu64(a, b); }
};

}  // namespace

const KernelTable kAvx512Vpopcnt = {"avx512_vpopcnt", rows_impl<Avx512Ops>, scan_impl<Avx512Ops>,
                                    scan_tiles_le_impl<Avx512Ops>, scan_tiles_variants_le_impl<Avx512Ops>};

}  // namespace kernels
}  // namespace hashmatch
