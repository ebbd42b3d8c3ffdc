// Hamming-distance kernels: the declarations every ISA translation unit implements.
//
// Codes are stored as `nwords` 64-bit words per hash (a hash of nbytes bytes is zero-padded to a
// whole word; the padding XORs to zero so it never changes a distance). Loads are unaligned, so
// any 8-byte-strided buffer works. Kernels are noexcept, never allocate and never read past
// `n * nwords` words (the tiled scans prefetch ahead, possibly past the codes: a hint that
// neither faults nor reads).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hashmatch {
namespace kernels {

/// Row-wise distances: out[i] = popcount(a_i ^ b_i) for i < n.
using RowsFn = void (*)(const uint64_t* a, const uint64_t* b, size_t n, size_t nwords,
                        uint16_t* out) noexcept;

/// One query against many: out[i] = popcount(q ^ db_i) for i < n.
using ScanFn = void (*)(const uint64_t* q, const uint64_t* db, size_t n, size_t nwords,
                        uint16_t* out) noexcept;

/// Codes per tile of the tiled layout that indexes store.
constexpr size_t kTileCodes = 8;

/// Tiled layout: codes are grouped in tiles of kTileCodes, and a tile stores word w of its
/// codes side by side: tile[w * kTileCodes + c] is word w of code c (a tile is
/// kTileCodes * nwords words; unused slots of the last tile are zero). One vector register
/// then holds the same word of several codes, so lane-wise popcounts add up straight into
/// per-code distances: no transposes and no horizontal sums, whatever the width.
/// One query against n tiled codes (tiles starts at a tile boundary), keeping only the codes
/// within `bound` (inclusive): writes idx[j], dist[j] for every i < n with
/// popcount(q ^ code_i) <= bound, in increasing i, and returns how many it wrote (idx and dist
/// must hold n rounded up to a whole tile). Kernels may stop counting a tile early once every
/// code in it exceeds `bound`. With `prefetch` (the codes are likely not cached: the first of
/// several queries over them), kernels prefetch ahead of the tile they count, possibly past
/// the codes (into the next block a caller will scan); without it (the codes were just read by
/// another query), they do not spend instructions on prefetches.
using ScanTilesLeFn = size_t (*)(const uint64_t* q, const uint64_t* tiles, size_t n, size_t nwords,
                                 uint32_t bound, uint32_t* idx, uint16_t* dist, bool prefetch) noexcept;

/// Most needles one multi-needle scan compares at once (a dihedral variant stack).
constexpr size_t kMaxNeedles = 8;

/// Several needles (the variants of one query) against n tiled codes in one pass: each tile is
/// loaded once and compared with every needle. A code's distance is the smallest over the
/// needles; writes idx[j], dist[j], variant[j] for every i < n whose distance is <= `bound`
/// (inclusive), in increasing i, variant[j] being the first needle reaching that distance, and
/// returns how many it wrote (outputs must hold n rounded up to a whole tile). `qs` holds nv
/// needles of nwords words each, back to back; 1 <= nv <= kMaxNeedles. Kernels may stop
/// counting a tile early once every code in it exceeds `bound` for every needle.
using ScanTilesVariantsLeFn = size_t (*)(const uint64_t* qs, size_t nv, const uint64_t* tiles, size_t n,
                                         size_t nwords, uint32_t bound, uint32_t* idx, uint16_t* dist,
                                         uint8_t* variant) noexcept;

struct KernelTable {
  const char* name;
  RowsFn rows;
  ScanFn scan;
  ScanTilesLeFn scan_tiles_le;
  ScanTilesVariantsLeFn scan_tiles_variants_le;
};

extern const KernelTable kScalar;          // scalar.cpp: 64-bit POPCNT
extern const KernelTable kAvx512Emulated;  // emulated.cpp: the AVX-512 algorithm on plain C++ lanes
extern const KernelTable kNeonEmulated;    // emulated.cpp: the NEON algorithm on plain C++ lanes
#if defined(HASHMATCH_HAVE_X86)
extern const KernelTable kAvx2;            // avx2.cpp
extern const KernelTable kAvx512Vpopcnt;   // avx512_vpopcnt.cpp
#endif
#if defined(HASHMATCH_HAVE_NEON)
extern const KernelTable kNeon;            // neon.cpp
#endif

}  // namespace kernels
}  // namespace hashmatch
