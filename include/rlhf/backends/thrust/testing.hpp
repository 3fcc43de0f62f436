// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::testing::thrust_host_as_device<System>: the Thrust backend on a host system that
// declares its memory not host-accessible. Host code then takes the paths a GPU backend
// takes (copy_to_host before reading values), so a machine without a GPU tests them; the
// memory is still host memory, so it cannot catch a host dereference that ignores
// host_accessible (that needs a real device).
#pragma once

#include "rlhf/backends/thrust/thrust_backend.hpp"

namespace rlhf {
inline namespace v0 {
namespace testing {

template <class System>
struct thrust_host_as_device : thrust_backend<System> {
  static constexpr bool host_accessible = false;
  static constexpr const char* name = "thrust-host-as-device";
};

}  // namespace testing

// The overrides are inherited from thrust_backend<System>; pinned as for the backend.
RLHF_BACKEND_OVERRIDES(testing::thrust_host_as_device<thrust::system::cpp::tag>, fill, transform,
                       for_each, transform_rows, transform_cols, row_sum, row_max, row_logsumexp,
                       row_masked_mean, softmax_rows, log_softmax_rows, gemm,
                       reverse_linear_scan_rows);
RLHF_BACKEND_OVERRIDES(testing::thrust_host_as_device<thrust::system::omp::tag>, fill, transform,
                       for_each, transform_rows, transform_cols, row_sum, row_max, row_logsumexp,
                       row_masked_mean, softmax_rows, log_softmax_rows, gemm,
                       reverse_linear_scan_rows);

}  // namespace v0
}  // namespace rlhf
