// Callers hand us hashes as (n, nbytes) byte matrices. Kernels read 64-bit words, so a width
// that is not a whole number of words is copied once into zero-padded rows (padding XORs to 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace hashmatch {

inline size_t words_for_bytes(size_t nbytes) noexcept { return (nbytes + 7) / 8; }

/// Copies n rows of nbytes into rows of nwords zero-padded words.
inline void pad_rows(const uint8_t* src, size_t n, size_t nbytes, uint64_t* dst) noexcept {
  if (n == 0) return;  // dst may be null then, and mem* functions require valid pointers
  const size_t nwords = words_for_bytes(nbytes);
  std::memset(dst, 0, n * nwords * sizeof(uint64_t));
  for (size_t i = 0; i < n; ++i) std::memcpy(dst + i * nwords, src + i * nbytes, nbytes);
}

class WordView {
 public:
  WordView(const uint8_t* data, size_t n, size_t nbytes) : nwords_(words_for_bytes(nbytes)) {
    if (nbytes % 8 == 0) {
      // Kernels load words with memcpy-style unaligned loads, so the bytes serve as they are.
      words_ = reinterpret_cast<const uint64_t*>(data);
    } else {
      padded_.resize(n * nwords_);
      pad_rows(data, n, nbytes, padded_.data());
      words_ = padded_.data();
    }
  }
  const uint64_t* row(size_t i) const noexcept { return words_ + i * nwords_; }
  size_t nwords() const noexcept { return nwords_; }

 private:
  size_t nwords_;
  std::vector<uint64_t> padded_;
  const uint64_t* words_;
};

}  // namespace hashmatch
