// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::thrust_backend<System>: the Thrust backend (CPP and OMP host systems under any C++20
// compiler with Thrust >= 1.17; the CUDA system under nvcc with cuBLAS). docs/cuda.md.
//
//   #include <rlhf/backends/thrust.hpp>
//   using B = rlhf::thrust_backend<thrust::system::omp::tag>;   // CMake: rlhf::thrust
//   using G = rlhf::thrust_backend<thrust::system::cuda::tag>;  // CMake: rlhf::cuda, nvcc
#pragma once

#include "rlhf/backends/thrust/thrust_backend.hpp"
