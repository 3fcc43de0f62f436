// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Consumer check: row log-sum-exp on the consumed backend must match a plain std::
// computation (with rlhf::http, also a request through libcurl; with rlhf::mpi, collectives
// on a one-rank MPI job; rlhf::nccl is built, not run). RLHF_CONSUMER_<COMPONENT> picks the
// backend (the consumer's CMakeLists.txt).
#include <cmath>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include <rlhf/rlhf.hpp>
#if defined(RLHF_CONSUMER_XTENSOR)
#include <rlhf/backends/xtensor.hpp>
using B = rlhf::xtensor_backend;
#elif defined(RLHF_CONSUMER_THRUST)
#include <rlhf/backends/thrust.hpp>
using B = rlhf::thrust_omp_backend;
#else  // eigen, and model (which also links rlhf::eigen)
#include <rlhf/backends/eigen.hpp>
using B = rlhf::eigen_backend;
#endif
#if defined(RLHF_CONSUMER_MODEL)
#include <rlhf/model/checkpoint.hpp>  // needs nlohmann-json, which rlhf::model brings
#endif
#if defined(RLHF_CONSUMER_HTTP)
#include <chrono>

#include <rlhf/cai/http_chat.hpp>  // needs libcurl and nlohmann-json, which rlhf::http brings

// libcurl is linked and works: a request to a port nothing listens on fails with http_error.
int http_check() {
  rlhf::cai::http_chat_config cfg;
  cfg.base_url = "http://127.0.0.1:1/v1";
  cfg.connect_timeout = std::chrono::milliseconds(500);
  cfg.timeout = std::chrono::milliseconds(1000);
  cfg.max_retries = 0;
  rlhf::cai::http_chat_client client(cfg);
  try {
    (void)client.generate({"hello"}, {});
  } catch (const rlhf::cai::http_error& e) {
    std::printf("http: %s\n", e.what());
    return 0;
  }
  std::printf("http: expected an http_error\n");
  return 1;
}
#endif

#if defined(RLHF_CONSUMER_MPI)
#include <rlhf/dist/mpi.hpp>  // needs MPI, which rlhf::mpi brings

// MPI is linked and works: a one-rank job (a singleton, no launcher) whose collectives
// return this rank's values.
int mpi_check() {
  rlhf::dist::mpi_environment env;
  rlhf::dist::mpi_communicator comm;
  float x[2] = {1.0f, 2.0f};
  comm.all_reduce(x, 2, rlhf::dist::reduce_op::mean);
  const std::vector<std::string> got = comm.all_gather("hi");
  comm.barrier();
  std::printf("mpi: rank %d of %d, all_reduce %g %g, all_gather '%s'\n", comm.rank(), comm.size(),
              static_cast<double>(x[0]), static_cast<double>(x[1]),
              got.empty() ? "" : got[0].c_str());
  const bool ok = comm.size() == 1 && x[0] == 1.0f && x[1] == 2.0f && got.size() == 1 &&
                  got[0] == "hi";
  return ok ? 0 : 1;
}
#endif
#if defined(RLHF_CONSUMER_NCCL)
#include <rlhf/dist/nccl.hpp>  // needs NCCL, the CUDA runtime and MPI, which rlhf::nccl brings

// Linked, never run (no GPU needed): the NCCL transport over a one-rank MPI job.
[[maybe_unused]] int nccl_check() {
  rlhf::dist::mpi_environment env;
  rlhf::dist::nccl_communicator comm{rlhf::dist::mpi_communicator{}};
  comm.barrier();
  return comm.size() == 1 ? 0 : 1;
}
#endif

int main() {
  const std::vector<float> host{1.0f, 2.0f, 3.0f, -1.0f, 0.5f, 4.0f};

  B::tensor x(rlhf::shape{2, 3});
  rlhf::ops::copy_from_host<B>(std::span<const float>(host), x);
  B::tensor out(rlhf::shape{2});
  rlhf::ops::row_logsumexp<B>(x, out);
  const std::vector<float> got = rlhf::ops::to_host<B>(out);

  std::printf("rlhf++ %s (backend %s)\n", rlhf::version_string, B::name);
  if (got.size() != 2) return 1;
  int failures = 0;
  for (std::size_t r = 0; r < 2; ++r) {
    double sum = 0.0;
    for (std::size_t c = 0; c < 3; ++c) sum += std::exp(static_cast<double>(host[r * 3 + c]));
    const double want = std::log(sum);
    std::printf("row %zu: logsumexp = %.6f (expected %.6f)\n", r, static_cast<double>(got[r]),
                want);
    if (std::abs(static_cast<double>(got[r]) - want) > 1e-5) ++failures;
  }
#if defined(RLHF_CONSUMER_HTTP)
  failures += http_check();
#endif
#if defined(RLHF_CONSUMER_MPI)
  failures += mpi_check();
#endif
  return failures == 0 ? 0 : 1;
}
