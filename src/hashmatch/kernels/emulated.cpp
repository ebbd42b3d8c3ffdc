// Scalar-equivalence paths for ISAs this CPU may lack.
//
// The AVX-512 (8 lanes) and NEON (2 lanes) kernels are the shared algorithm of scan_impl.h
// instantiated with real intrinsics. Here the same algorithm runs on emulated lanes, so that its
// lane grouping, tails and early exits are tested against the numpy oracle on any CPU. Only the
// handful of intrinsic mappings in avx512_vpopcnt.cpp / neon.cpp is not exercised without the
// hardware. Compiled with baseline flags; never chosen automatically.
#include "hashmatch/kernels/kernels.h"
#include "hashmatch/kernels/scan_impl.h"

namespace hashmatch {
namespace kernels {

const KernelTable kAvx512Emulated = {"avx512_vpopcnt_emulated", rows_impl<EmulatedOps<8>>,
                                     scan_impl<EmulatedOps<8>>, scan_tiles_le_impl<EmulatedOps<8>>,
                                     scan_tiles_variants_le_impl<EmulatedOps<8>>};
const KernelTable kNeonEmulated = {"neon_emulated", rows_impl<EmulatedOps<2>>, scan_impl<EmulatedOps<2>>,
                                   scan_tiles_le_impl<EmulatedOps<2>>, scan_tiles_variants_le_impl<EmulatedOps<2>>};

}  // namespace kernels
}  // namespace hashmatch
