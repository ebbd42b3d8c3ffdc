#include "hashmatch/distance.h"

#include <algorithm>

#include "hashmatch/dispatch.h"
#include "hashmatch/word_view.h"

namespace hashmatch {
namespace {

// Codes per block of b: about 16 KiB, so a block stays in L1 while rows of a sweep over it.
size_t block_codes(size_t nwords) { return std::max<size_t>(64, 16384 / (nwords * 8)); }

}  // namespace

void hamming_rows(const uint8_t* a, const uint8_t* b, size_t n, size_t nbytes, uint16_t* out,
                  size_t nthreads, const Interrupt& interrupt) {
  const auto& k = active_kernels();
  const WordView av(a, n, nbytes), bv(b, n, nbytes);
  nthreads = threads_for_work(n * av.nwords(), nthreads);
  const size_t chunk = 1 << 16;
  parallel_for((n + chunk - 1) / chunk, nthreads, [&](size_t t) {
    const size_t begin = t * chunk, count = std::min(chunk, n - begin);
    k.rows(av.row(begin), bv.row(begin), count, av.nwords(), out + begin);
  }, interrupt);
}

void cdist(const uint8_t* a, size_t na, const uint8_t* b, size_t nb, size_t nbytes, uint16_t* out,
           size_t nthreads, const Interrupt& interrupt) {
  if (na == 0 || nb == 0) return;
  const auto& k = active_kernels();
  const WordView av(a, na, nbytes), bv(b, nb, nbytes);
  const size_t nwords = av.nwords(), bblock = block_codes(nwords);
  nthreads = threads_for_work(na * nb * nwords, nthreads);
  const size_t arows = 16;
  parallel_for((na + arows - 1) / arows, nthreads, [&](size_t t) {
    const size_t abegin = t * arows, aend = std::min(na, abegin + arows);
    for (size_t b0 = 0; b0 < nb; b0 += bblock) {
      const size_t bcount = std::min(bblock, nb - b0);
      for (size_t i = abegin; i < aend; ++i) k.scan(av.row(i), bv.row(b0), bcount, nwords, out + i * nb + b0);
    }
  }, interrupt);
}

}  // namespace hashmatch
