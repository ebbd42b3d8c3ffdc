// Runtime kernel dispatch: the best kernel table this CPU runs is chosen once at start-up
// (HASHMATCH_KERNEL may force another); callers fetch the active table once per call, outside
// their loops.
#pragma once

#include <string>
#include <vector>

#include "hashmatch/kernels/kernels.h"

namespace hashmatch {

/// The kernel table in use.
const kernels::KernelTable& active_kernels() noexcept;

/// Names of the kernels this CPU can run, best first; the emulated test paths come last.
std::vector<std::string> available_kernels();

/// Switches every later call to the named kernel.
/// @param name  one of available_kernels(), or "auto" for the best one.
/// @throws std::invalid_argument if the name is unknown or this CPU cannot run it.
void set_kernel(const std::string& name);

}  // namespace hashmatch
