// Scalar kernels: one 64-bit word at a time with the hardware POPCNT instruction.
//
// Target: every CPU (x86-64 is built with -mpopcnt, see CMakeLists.txt; AArch64 lowers the
// builtin to CNT). This is the reference the wider kernels are tested against, and what
// HASHMATCH_KERNEL=scalar forces.
#include "hashmatch/kernels/kernels.h"
#include "hashmatch/kernels/scan_impl.h"

namespace hashmatch {
namespace kernels {
namespace {

struct ScalarOps {
  static constexpr size_t kLanes = 1;
  using V = uint64_t;
  static V load(const uint64_t* p) noexcept { return load_word(p); }
  static V bxor(V a, V b) noexcept { return a ^ b; }
  static V popcount_lanes(V v) noexcept { return popcount64(v); }
  static V add(V a, V b) noexcept { return a + b; }
  static uint64_t hsum(V v) noexcept { return v; }
  static void store(uint64_t* p, V v) noexcept { __builtin_memcpy(p, &v, sizeof v); }
  static V broadcast(uint64_t w) noexcept { return w; }
  static V zero() noexcept { return 0; }
  static V min(V a, V b) noexcept { return a < b ? a : b; }
};

}  // namespace

const KernelTable kScalar = {"scalar", rows_impl<ScalarOps>, scan_impl<ScalarOps>, scan_tiles_le_impl<ScalarOps>,
                             scan_tiles_variants_le_impl<ScalarOps>};

}  // namespace kernels
}  // namespace hashmatch
