// NEON kernels (AArch64).
//
// Target: every AArch64 CPU (NEON is baseline there; no extra flags).
// Key instructions: CNT counts bits per byte; UADDLP widens pairwise up to 64-bit lanes;
// ADDV/ADDP reduce. Two 64-bit lanes per register.
// Tails: odd words go through scalar popcount (scan_impl.h).
// Tested through the emulated 2-lane path (emulated.cpp) on other CPUs.
#include <arm_neon.h>

#include "hashmatch/kernels/kernels.h"
#include "hashmatch/kernels/scan_impl.h"

namespace hashmatch {
namespace kernels {
namespace {

struct NeonOps {
  static constexpr size_t kLanes = 2;
  using V = uint64x2_t;
  static V load(const uint64_t* p) noexcept { return vld1q_u64(p); }
  static V bxor(V a, V b) noexcept { return veorq_u64(a, b); }
  static V popcount_lanes(V v) noexcept {
    return vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(vcntq_u8(vreinterpretq_u8_u64(v)))));
  }
  static V add(V a, V b) noexcept { return vaddq_u64(a, b); }
  static uint64_t hsum(V v) noexcept { return vaddvq_u64(v); }
  static void store(uint64_t* p, V v) noexcept { vst1q_u64(p, v); }
  static V broadcast(uint64_t w) noexcept { return vdupq_n_u64(w); }
  static V zero() noexcept { return vdupq_n_u64(0); }
  // Lanes hold distances (below 2^32, upper halves zero): the 32-bit minimum is the 64-bit one.
  static V min(V a, V b) noexcept {
    return vreinterpretq_u64_u32(vminq_u32(vreinterpretq_u32_u64(a), vreinterpretq_u32_u64(b)));
  }
};

}  // namespace

const KernelTable kNeon = {"neon", rows_impl<NeonOps>, scan_impl<NeonOps>, scan_tiles_le_impl<NeonOps>,
                           scan_tiles_variants_le_impl<NeonOps>};

}  // namespace kernels
}  // namespace hashmatch
