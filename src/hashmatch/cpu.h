// What this CPU can run, detected once.
#pragma once

namespace hashmatch {

struct CpuFeatures {
  bool popcnt = false;
  bool avx2 = false;
  bool avx512_vpopcntdq = false;  // with AVX-512 F/BW/VL and OS support for the ZMM state
  bool neon = false;
};

/// The features of the running CPU (computed on first call, then cached).
const CpuFeatures& cpu_features() noexcept;

}  // namespace hashmatch
