// Parallel loops on plain std::threads (no OpenMP: faiss-cpu bundles its own libgomp, and two
// OpenMP runtimes in one process fight). Threads are started per call, not kept in a pool:
// every caller in this library hands out tasks of at least tens of microseconds, so the
// start-up cost stays small.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>

namespace hashmatch {

/// Lets a long call stop early: `poll(ctx)` is called from the calling thread every few tens
/// of milliseconds and returns nonzero to stop (the Python layer checks for Ctrl-C there).
struct Interrupt {
  int (*poll)(void* ctx) = nullptr;
  void* ctx = nullptr;
};

/// Thrown by parallel_for when `Interrupt::poll` asked to stop.
class Cancelled : public std::exception {
 public:
  const char* what() const noexcept override { return "interrupted"; }
};

/// Threads worth using for `work` units (64-bit word comparisons): starting a thread costs
/// tens of microseconds, so each thread should get at least about a million units (~0.2 ms).
inline size_t threads_for_work(size_t work, size_t nthreads) noexcept {
  const size_t useful = work / (size_t{1} << 20) + 1;
  return nthreads < useful ? nthreads : useful;
}

/// Runs body(t) for every t in [0, ntasks) on up to `nthreads` threads, the calling thread
/// included. Tasks are handed out in increasing order by an atomic counter.
/// @param ntasks     number of tasks
/// @param nthreads   threads to use (>= 1; capped at ntasks)
/// @param body       the task; an exception from any task stops the hand-out and the first one
///                   is rethrown in the caller once every thread has finished
/// @param interrupt  polled by the calling thread between its tasks
/// @throws Cancelled if the interrupt fired before all tasks ran
void parallel_for(size_t ntasks, size_t nthreads, const std::function<void(size_t)>& body,
                  const Interrupt& interrupt = {});

}  // namespace hashmatch
