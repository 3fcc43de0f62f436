// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GAE on the GPU with rlhf::thrust_backend<thrust::system::cuda::tag>, checked against the
// Eigen CPU backend on the same rollout. B = 256 rows of T = 1024 tokens with random
// right padding. GAE's recurrence runs as a parallel scan (thrust::inclusive_scan_by_key of
// affine maps over the reversed rows), not one serial loop per row.
//
//   nvcc -std=c++20 -O3 --extended-lambda --expt-relaxed-constexpr -arch=sm_90 \
//        -Iinclude $(pkg-config --cflags eigen3) examples/cuda/thrust_gae.cu -lcublas
// or built by tests/cuda_build (docs/cuda.md). Exits non-zero on a mismatch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/backends/thrust.hpp>
#include <rlhf/ops/tensor.hpp>
#include <rlhf/rl/gae.hpp>

int main() {
  using G = rlhf::thrust_backend<thrust::system::cuda::tag>;
  using E = rlhf::eigen_backend;
  namespace ops = rlhf::ops;
  const rlhf::index_t n = 256, t = 1024;
  const rlhf::shape s{n, t};

  // A made-up rollout: rewards, value-head outputs, masks with random completion lengths.
  std::mt19937 gen(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<rlhf::index_t> length(1, t);
  std::vector<float> r(static_cast<std::size_t>(n * t)), v(r.size()), m(r.size(), 0.0f);
  for (auto& x : r) x = 0.1f * normal(gen);
  for (auto& x : v) x = normal(gen);
  for (rlhf::index_t i = 0; i < n; ++i) {
    const rlhf::index_t len = length(gen);
    std::fill_n(m.begin() + i * t, len, 1.0f);
  }
  const rlhf::rl::gae_config cfg{.gamma = 1.0f, .lam = 0.95f};

  try {
    // GPU: upload, run (one warm-up call), time, download.
    const auto rg = ops::from_host<G>(r, s), vg = ops::from_host<G>(v, s),
               mg = ops::from_host<G>(m, s);
    auto est = rlhf::rl::gae<G>({rg, vg, mg}, cfg);
    rlhf::synchronize<G>();
    const auto t0 = std::chrono::steady_clock::now();
    constexpr int reps = 20;
    for (int k = 0; k < reps; ++k) rlhf::rl::gae<G>({rg, vg, mg}, cfg, est.advantages, est.returns);
    rlhf::synchronize<G>();
    const double us = std::chrono::duration<double, std::micro>(
                          std::chrono::steady_clock::now() - t0).count() / reps;
    const auto adv = ops::to_host<G>(est.advantages);

    // CPU reference on the Eigen backend.
    const auto ref = rlhf::rl::gae<E>(
        {ops::from_host<E>(r, s), ops::from_host<E>(v, s), ops::from_host<E>(m, s)}, cfg);
    const auto want = ops::to_host<E>(ref.advantages);
    double worst = 0.0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double tol = 1e-4 * (1.0 + std::abs(static_cast<double>(want[i])));
      worst = std::max(worst, std::abs(static_cast<double>(adv[i]) - want[i]) / tol);
    }
    std::printf("GAE B=%lld T=%lld on %s: %.1f us per call; max error %.3f of tolerance\n",
                static_cast<long long>(n), static_cast<long long>(t), G::name, us, worst);
    if (!(worst <= 1.0)) {
      std::fprintf(stderr, "thrust_gae: GPU advantages differ from the CPU reference\n");
      return 1;
    }
  } catch (const rlhf::backend_error& e) {
    std::fprintf(stderr, "thrust_gae: %s\n", e.what());  // e.g. no CUDA device
    return 2;
  }
  return 0;
}
