// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Thrust configuration for rlhf::thrust_backend: which Thrust is included, and its device
// system when no CUDA compiler is involved.
//
// Under nvcc the toolkit's CCCL Thrust is used and the device system is CUDA. Under a host
// compiler (g++/clang++) only the CPP and OMP systems exist, so THRUST_DEVICE_SYSTEM must
// not be CUDA (Thrust's algorithm headers include the device system's); the rlhf::thrust
// CMake target defines it, and this header picks OMP (with -fopenmp) or CPP otherwise.
#pragma once

#if !defined(__CUDACC__) && !defined(THRUST_DEVICE_SYSTEM)
#if defined(_OPENMP)
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_OMP
#else
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_CPP
#endif
#endif

#include <thrust/version.h>

#if THRUST_VERSION < 101700
#error "rlhf::thrust_backend needs Thrust 1.17 or newer (Debian: libthrust-dev; or CUDA's CCCL)"
#endif

#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/discard_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/system/cpp/execution_policy.h>
#include <thrust/system/cpp/vector.h>
#include <thrust/system/omp/execution_policy.h>
#include <thrust/system/omp/vector.h>
#include <thrust/system_error.h>
#include <thrust/transform.h>

#if defined(__CUDACC__)
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/system/cuda/vector.h>
#endif
