// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::dist::nccl_communicator on device memory (tests/cuda_build, compiled by nvcc): the
// compile check builds and links it without a GPU; on a GPU machine (RLHF_CUDA_SET=all) the
// dist_nccl test runs it under mpiexec, one rank per GPU. Checks all_reduce (sum, mean) and
// broadcast on cudaMalloc'd buffers against values computed from each rank's formula, the
// same on a host float (staged), all_gather, barrier, and any_communicator over it.
// Prints "nccl_check: ok" and returns 0, or names what is wrong and returns 1.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "rlhf/dist/communicator.hpp"
#include "rlhf/dist/mpi.hpp"
#include "rlhf/dist/nccl.hpp"

namespace dist = rlhf::dist;

namespace {

float value(int rank, std::size_t i) {
  return static_cast<float>(rank + 1) * 0.5f + static_cast<float>(i % 97);
}

int failures = 0;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

void expect(bool ok, const std::string& what) {
  if (!ok) {
    (void)std::fprintf(stderr, "nccl_check: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

// all_reduce / broadcast of n floats in device memory, against the host formula.
template <class C>
void device_round(C& comm, std::size_t n) {
  const int rank = comm.rank();
  const int size = comm.size();
  std::vector<float> host(n);
  for (std::size_t i = 0; i < n; ++i) host[i] = value(rank, i);
  float* device = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&device), n * sizeof(float)) != cudaSuccess) {
    throw rlhf::dist_error("nccl_check: cudaMalloc failed");
  }
  std::vector<float> got(n);
  for (const auto op : {dist::reduce_op::sum, dist::reduce_op::mean}) {
    cudaMemcpy(device, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    comm.all_reduce(device, n, op);
    cudaMemcpy(got.data(), device, n * sizeof(float), cudaMemcpyDeviceToHost);
    int wrong = 0;
    for (std::size_t i = 0; i < n; ++i) {
      float want = 0.0f;
      for (int r = 0; r < size; ++r) want += value(r, i);
      if (op == dist::reduce_op::mean) want /= static_cast<float>(size);
      const float diff = got[i] - want;
      wrong += (diff > 1e-4f || diff < -1e-4f) ? 1 : 0;
    }
    expect(wrong == 0, std::string(op == dist::reduce_op::sum ? "sum" : "mean") + ": " +
                           std::to_string(wrong) + " of " + std::to_string(n) + " wrong");
  }
  const int root = size - 1;
  cudaMemcpy(device, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  comm.broadcast(device, n, root);
  cudaMemcpy(got.data(), device, n * sizeof(float), cudaMemcpyDeviceToHost);
  int wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += got[i] != value(root, i) ? 1 : 0;
  expect(wrong == 0, "broadcast: " + std::to_string(wrong) + " wrong");
  cudaFree(device);
}

int run() {
  dist::mpi_communicator mpi;
  dist::nccl_communicator comm(mpi);
  expect(comm.rank() == mpi.rank() && comm.size() == mpi.size(), "rank/size differ from MPI's");
  device_round(comm, 1);
  device_round(comm, 1 << 20);

  // A host float (the trainer's stop flag) is staged through device memory.
  float flag = static_cast<float>(comm.rank() + 1);
  comm.all_reduce(&flag, 1, dist::reduce_op::sum);
  const int ranks_sum = comm.size() * (comm.size() + 1) / 2;  // 1 + 2 + ... + size
  expect(flag == static_cast<float>(ranks_sum), "host all_reduce");

  const std::vector<std::string> names = comm.all_gather(
      std::string(static_cast<std::size_t>(comm.rank()), 'x'));
  expect(names.size() == static_cast<std::size_t>(comm.size()), "all_gather size");
  for (std::size_t r = 0; r < names.size(); ++r) {
    expect(names[r] == std::string(r, 'x'), "all_gather message of rank " + std::to_string(r));
  }
  bool threw = false;
  try {
    comm.broadcast(&flag, 1, comm.size());
  } catch (const rlhf::dist_error&) {
    threw = true;
  }
  expect(threw, "broadcast from an invalid root did not throw");
  comm.barrier();

  dist::any_communicator any{comm};
  device_round(any, 4097);
  any.barrier();

  std::printf("nccl_check: rank %d of %d on device %d: %s\n", comm.rank(), comm.size(),
              comm.device(), failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  dist::mpi_environment env(argc, argv);
  return dist::abort_on_exception(run);
}
