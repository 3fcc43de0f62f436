// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The conformance kit on the Eigen backend.
#include <rlhf/backends/eigen.hpp>
#include <rlhf/testing/conformance.hpp>

TYPE_TO_STRING_AS("eigen", rlhf::eigen_backend);
RLHF_CONFORMANCE_SUITE(rlhf::eigen_backend);

#if defined(RLHF_EIGEN_USE_CBLAS) && defined(RLHF_CBLAS_OPENMP)
// CMake linked an OpenMP-threaded OpenBLAS by full path; the loader must have picked that
// file, not the pthreads build that Debian's libopenblas.so.0 alternative points at (the
// RPATH is what makes the difference).
TEST_CASE("eigen backend: the OpenBLAS loaded is the OpenMP-threaded build CMake chose") {
  CHECK(openblas_get_parallel() == 2);  // 0: sequential, 1: pthreads, 2: OpenMP
}
#endif
