#include "hashmatch/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace hashmatch {

void parallel_for(size_t ntasks, size_t nthreads, const std::function<void(size_t)>& body,
                  const Interrupt& interrupt) {
  if (ntasks == 0) return;
  nthreads = std::max<size_t>(1, std::min(nthreads, ntasks));

  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;

  bool cancelled = false;
  // Only the calling thread polls: the interrupt callback may need the caller's thread state.
  auto run = [&](bool poll) {
    using clock = std::chrono::steady_clock;
    auto last_poll = clock::now();
    for (;;) {
      if (stop.load(std::memory_order_relaxed)) return;
      if (poll && interrupt.poll != nullptr && clock::now() - last_poll > std::chrono::milliseconds(20)) {
        last_poll = clock::now();
        if (interrupt.poll(interrupt.ctx) != 0) {
          cancelled = true;
          stop.store(true, std::memory_order_relaxed);
          return;
        }
      }
      const size_t t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) return;
      try {
        body(t);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        stop.store(true, std::memory_order_relaxed);
        return;
      }
    }
  };

  std::vector<std::thread> workers;
  workers.reserve(nthreads - 1);
  try {
    for (size_t i = 1; i < nthreads; ++i) workers.emplace_back(run, false);
  } catch (...) {
    stop.store(true);
    for (auto& w : workers) w.join();
    throw;
  }
  run(true);
  for (auto& w : workers) w.join();
  if (first_error) std::rethrow_exception(first_error);
  if (cancelled) throw Cancelled();
}

}  // namespace hashmatch
