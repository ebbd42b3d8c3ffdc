#include "hashmatch/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "hashmatch/cpu.h"

namespace hashmatch {
namespace {

// Best first. Emulated tables are correct everywhere but slow: only chosen by name.
std::vector<const kernels::KernelTable*> runnable_tables() {
  std::vector<const kernels::KernelTable*> tables;
  const CpuFeatures& cpu = cpu_features();
#if defined(HASHMATCH_HAVE_X86)
  if (cpu.avx512_vpopcntdq) tables.push_back(&kernels::kAvx512Vpopcnt);
  if (cpu.avx2) tables.push_back(&kernels::kAvx2);
#endif
#if defined(HASHMATCH_HAVE_NEON)
  if (cpu.neon) tables.push_back(&kernels::kNeon);
#endif
  (void)cpu;
  tables.push_back(&kernels::kScalar);
  tables.push_back(&kernels::kAvx512Emulated);
  tables.push_back(&kernels::kNeonEmulated);
  return tables;
}

const kernels::KernelTable* find_table(const std::string& name) {
  const auto tables = runnable_tables();
  if (name == "auto") return tables.front();
  for (const auto* t : tables) {
    if (name == t->name) return t;
  }
  return nullptr;
}

const kernels::KernelTable* initial_table() noexcept {
  const char* forced = std::getenv("HASHMATCH_KERNEL");
  if (forced != nullptr && *forced != '\0') {
    // An unknown or unsupported name falls back to auto here; the Python layer reports it.
    if (const auto* t = find_table(forced)) return t;
  }
  return runnable_tables().front();
}

std::atomic<const kernels::KernelTable*>& active_slot() noexcept {
  static std::atomic<const kernels::KernelTable*> slot{initial_table()};
  return slot;
}

}  // namespace

const kernels::KernelTable& active_kernels() noexcept { return *active_slot().load(std::memory_order_acquire); }

std::vector<std::string> available_kernels() {
  std::vector<std::string> names;
  for (const auto* t : runnable_tables()) names.emplace_back(t->name);
  return names;
}

void set_kernel(const std::string& name) {
  const auto* t = find_table(name);
  if (t == nullptr) throw std::invalid_argument("kernel '" + name + "' is unknown or not supported by this CPU");
  active_slot().store(t, std::memory_order_release);
}

}  // namespace hashmatch
