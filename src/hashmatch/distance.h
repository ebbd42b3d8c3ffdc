// Distances between explicit sets of hashes (no index).
#pragma once

#include <cstddef>
#include <cstdint>

#include "hashmatch/parallel_for.h"

namespace hashmatch {

/// Row-wise distances: out[i] = d(a_i, b_i).
/// @param a, b    n rows of nbytes bytes each
/// @param out     n distances
/// @param nthreads threads to use (>= 1)
void hamming_rows(const uint8_t* a, const uint8_t* b, size_t n, size_t nbytes, uint16_t* out,
                  size_t nthreads, const Interrupt& interrupt = {});

/// Full distance matrix: out[i * nb + j] = d(a_i, b_j).
/// @param a        na rows of nbytes bytes
/// @param b        nb rows of nbytes bytes
/// @param out      na * nb distances, row-major
/// @param nthreads threads to use (>= 1)
void cdist(const uint8_t* a, size_t na, const uint8_t* b, size_t nb, size_t nbytes, uint16_t* out,
           size_t nthreads, const Interrupt& interrupt = {});

}  // namespace hashmatch
