// Structural checks of arrays an index borrows from a file (see Array::view), run before the
// index touches them: a hostile or damaged file must raise std::invalid_argument, never make a
// search read out of bounds. Checks are linear and split across threads for big arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hashmatch {

/// @throws std::invalid_argument("<what>: <message>") unless `ok`
void require(bool ok, const char* what, const std::string& message);

/// @throws std::invalid_argument unless an array of `size` elements holds exactly `expected`
void require_size(const char* what, size_t size, size_t expected);

/// @throws std::invalid_argument unless `p` is aligned for T (views are read in place as T)
template <class T>
void require_aligned(const char* what, const T* p) {
  require(reinterpret_cast<uintptr_t>(p) % alignof(T) == 0, what, "not aligned for its element type");
}

/// Checks that n ids are non-negative and unique: O(n) when strictly increasing (as saved
/// indexes usually are), otherwise by sorting a copy.
/// @return the next default id: the largest id + 1, saturating at INT64_MAX (0 when n == 0)
/// @throws std::invalid_argument naming the first bad id found
int64_t check_ids(const int64_t* ids, size_t n);

/// Checks that no bit of `mask` is set in the padding words of codes: `groups` runs of `run`
/// consecutive words, run g starting at word first + g * stride of `words`.
/// @throws std::invalid_argument naming `what`
void check_padding(const char* what, const uint64_t* words, size_t groups, size_t first, size_t stride,
                   size_t run, uint64_t mask);

/// Checks a bucket directory: `count` (>= 2) starts, the first 0, non-decreasing, the last `total`.
/// @throws std::invalid_argument naming `what`
void check_starts(const char* what, const uint32_t* starts, size_t count, size_t total);

/// @throws std::invalid_argument unless all n values are below `limit`
void check_below(const char* what, const uint32_t* values, size_t n, uint64_t limit);

}  // namespace hashmatch
