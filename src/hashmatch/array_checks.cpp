#include "hashmatch/array_checks.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "hashmatch/parallel_for.h"

namespace hashmatch {
namespace {

constexpr size_t kChunk = size_t{1} << 20;  // elements per task

size_t chunks(size_t n) { return (n + kChunk - 1) / kChunk; }

size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// Runs check(begin, end) over [0, n) in chunks on every core.
template <class Check>
void for_chunks(size_t n, Check check) {
  parallel_for(chunks(n), std::min(cores(), chunks(n)), [&](size_t c) {
    check(c * kChunk, std::min(n, (c + 1) * kChunk));
  });
}

}  // namespace

void require(bool ok, const char* what, const std::string& message) {
  if (!ok) throw std::invalid_argument(std::string(what) + ": " + message);
}

void require_size(const char* what, size_t size, size_t expected) {
  require(size == expected, what, "holds " + std::to_string(size) + " elements, expected " + std::to_string(expected));
}

int64_t check_ids(const int64_t* ids, size_t n) {
  if (n == 0) return 0;
  std::atomic<bool> increasing{true};
  for_chunks(n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (ids[i] < 0) throw std::invalid_argument("ids: negative id " + std::to_string(ids[i]));
    }
    for (size_t i = std::max<size_t>(begin, 1); i < end; ++i) {
      if (ids[i] <= ids[i - 1]) {
        increasing.store(false, std::memory_order_relaxed);
        break;
      }
    }
  });
  int64_t max_id = ids[n - 1];
  if (!increasing.load()) {
    std::vector<int64_t> sorted(ids, ids + n);
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) throw std::invalid_argument("ids: id " + std::to_string(*dup) + " appears twice");
    max_id = sorted.back();
  }
  return max_id == INT64_MAX ? INT64_MAX : max_id + 1;
}

void check_padding(const char* what, const uint64_t* words, size_t groups, size_t first, size_t stride,
                   size_t run, uint64_t mask) {
  if (mask == 0) return;
  for_chunks(groups, [&](size_t begin, size_t end) {
    for (size_t g = begin; g < end; ++g) {
      const uint64_t* w = words + first + g * stride;
      for (size_t j = 0; j < run; ++j) {
        if ((w[j] & mask) != 0) require(false, what, "non-zero padding bits in code group " + std::to_string(g));
      }
    }
  });
}

void check_starts(const char* what, const uint32_t* starts, size_t count, size_t total) {
  require(count >= 2 && starts[0] == 0 && starts[count - 1] == total, what,
          "a directory must run from 0 to " + std::to_string(total));
  for_chunks(count, [&](size_t begin, size_t end) {
    for (size_t i = std::max<size_t>(begin, 1); i < end; ++i) {
      if (starts[i] < starts[i - 1]) require(false, what, "decreasing at entry " + std::to_string(i));
    }
  });
}

void check_below(const char* what, const uint32_t* values, size_t n, uint64_t limit) {
  for_chunks(n, [&](size_t begin, size_t end) {
    uint32_t top = 0;  // branch-free scan; the position is looked up only on failure
    for (size_t i = begin; i < end; ++i) top = std::max(top, values[i]);
    if (top >= limit) {
      const size_t at = static_cast<size_t>(std::find_if(values + begin, values + end, [&](uint32_t v) { return v >= limit; }) - values);
      require(false, what, "value " + std::to_string(values[at]) + " at " + std::to_string(at) +
                               " is out of range (expected < " + std::to_string(limit) + ")");
    }
  });
}

}  // namespace hashmatch
