// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Row log-sum-exp and a finiteness check on the CUDA Thrust backend: compiled by the packaging test
// to prove a .cu consumer needs nothing beyond linking rlhf::cuda. On a machine with a GPU
// it also runs and checks the log-sum-exp against the host.
#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

#include <rlhf/backends/thrust.hpp>
#include <rlhf/ops/checks.hpp>
#include <rlhf/rlhf.hpp>

int main() {
  using G = rlhf::thrust_cuda_backend;
  namespace ops = rlhf::ops;
  const std::vector<float> host{1.0f, 2.0f, 3.0f, -1.0f, 0.5f, 4.0f};
  try {
    G::tensor x(rlhf::shape{2, 3});
    ops::copy_from_host<G>(std::span<const float>(host), x);
    ops::check_finite<G>("cuda_consumer", "x", x);  // a generic op: __host__ __device__ lambdas
    G::tensor out(rlhf::shape{2});
    ops::row_logsumexp<G>(x, out);
    const std::vector<float> got = ops::to_host<G>(out);
    std::printf("rlhf++ %s (backend %s)\n", rlhf::version_string, G::name);
    for (std::size_t r = 0; r < 2; ++r) {
      double sum = 0.0;
      for (std::size_t c = 0; c < 3; ++c) sum += std::exp(static_cast<double>(host[r * 3 + c]));
      if (std::abs(static_cast<double>(got[r]) - std::log(sum)) > 1e-5) return 1;
    }
  } catch (const rlhf::backend_error& e) {
    std::printf("rlhf++ %s: no usable GPU here (%s)\n", rlhf::version_string, e.what());
    return 2;
  }
  return 0;
}
