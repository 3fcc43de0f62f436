// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Data parallel over NCCL (target rlhf::nccl; docs/distributed.md): nccl_communicator, the
// dist::communicator of device memory (the CUDA backend), made from an mpi_communicator
// the way llm.c does it: rank 0 makes an ncclUniqueId, MPI broadcasts it, every rank joins
// with ncclCommInitRank on its GPU. all_reduce and broadcast run on NCCL, on a CUDA stream
// the communicator owns; all_gather (small host messages) and barrier go over MPI.
// Plain C++ against the CUDA runtime API: compiles under nvcc and under a host compiler.
//
// A rank that fails: NCCL cannot always tell a dead peer from a slow one (on one node it
// waits in its kernels), so the launcher is what ends the job, as with MPI
// (rlhf/dist/mpi.hpp: mpirun kills every rank when one exits without MPI_Finalize; use
// abort_on_exception). While it waits for a collective, nccl_communicator polls
// ncclCommGetAsyncError: an error NCCL does detect (a network peer gone, a failed
// transfer) aborts the NCCL communicator and becomes a dist_error.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/dist/communicator.hpp"
#include "rlhf/dist/mpi.hpp"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#include <cublas_v2.h>  // the mean's scaling where NCCL has no ncclAvg
#endif

namespace rlhf {
inline namespace v0 {
namespace dist {

namespace detail {

inline void nccl_check(ncclResult_t code, const char* what) {
  if (code != ncclSuccess) {
    std::string text = std::string("nccl_communicator: ") + what + ": " + ncclGetErrorString(code);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
    const char* last = ncclGetLastError(nullptr);
    if (last != nullptr && *last != '\0') text += std::string(" (") + last + ")";
#endif
    throw dist_error(text);
  }
}

inline void cuda_check(cudaError_t code, const char* what) {
  if (code != cudaSuccess) {
    throw dist_error(std::string("nccl_communicator: ") + what + ": " + cudaGetErrorString(code));
  }
}

// Whether `p` is memory the GPU can use directly (device or managed); host memory is staged.
inline bool device_accessible(const void* p) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    (void)cudaGetLastError();  // older runtimes: an unregistered host pointer is an error
    return false;
  }
  return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
}

}  // namespace detail

/// The dist::communicator of NCCL over device memory (the CUDA backend: pass B::data of a
/// thrust_backend<cuda::tag> tensor). all_reduce is ncclAllReduce (ncclFloat, ncclSum, or
/// ncclAvg for the mean), broadcast is ncclBroadcast, both on the communicator's own CUDA
/// stream after the work already queued on the device, and both return once the result is
/// in x. A host pointer is accepted too (copied through a device buffer: for the trainer's
/// one-float flags, not for gradients). all_gather and barrier go over the MPI communicator
/// it was made from. Copies share the NCCL communicator, which the last copy destroys.
/// Every rank must make it and call each operation in the same order: they are collective.
class nccl_communicator {
 public:
  /// Joins the ranks of `mpi` in one NCCL communicator (collective over them). `device`:
  /// the CUDA device of this rank, made current; -1 (default) picks local_rank(mpi) modulo
  /// the number of visible devices, i.e. one GPU per rank on each node (pass -1 on every
  /// rank or a device on every rank: the default is itself collective). Throws dist_error
  /// on every rank when a rank fails to set up (no GPU, a CUDA or NCCL error).
  explicit nccl_communicator(mpi_communicator mpi, int device = -1)
      : mpi_(std::move(mpi)), state_(std::make_shared<state>()) {
    const int local = device < 0 ? local_rank(mpi_) : device;
    // Local set-up first, then every rank learns whether every rank succeeded, so that one
    // failure is an error everywhere instead of a hang in ncclCommInitRank.
    std::string failure;
    struct {
      int ok = 1;
      ncclUniqueId id{};
    } message;
    try {
      if (device < 0) {
        int count = 0;
        detail::cuda_check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
        if (count <= 0) throw dist_error("nccl_communicator: no CUDA device is visible");
        device = local % count;
      }
      state_->device = device;
      detail::cuda_check(cudaSetDevice(device), "cudaSetDevice");
      detail::cuda_check(cudaStreamCreate(&state_->stream), "cudaStreamCreate");
      detail::cuda_check(cudaEventCreateWithFlags(&state_->queued, cudaEventDisableTiming),
                         "cudaEventCreateWithFlags");
      if (mpi_.rank() == 0) detail::nccl_check(ncclGetUniqueId(&message.id), "ncclGetUniqueId");
    } catch (const dist_error& e) {
      failure = e.what();
      message.ok = 0;
    }
    int all_ok = message.ok;
    detail::mpi_check(
        MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_MIN, mpi_.native_handle()),
        "nccl_communicator: set-up (MPI_Allreduce)");
    if (all_ok == 0) {
      throw dist_error(failure.empty()
                           ? "nccl_communicator: another rank failed to set up (see its error)"
                           : failure);
    }
    detail::mpi_check(MPI_Bcast(&message.id, sizeof(message.id), MPI_BYTE, 0, mpi_.native_handle()),
                      "nccl_communicator: unique id (MPI_Bcast)");
    detail::nccl_check(ncclCommInitRank(&state_->comm, mpi_.size(), message.id, mpi_.rank()),
                       "ncclCommInitRank");
  }

  /// This process's rank in [0, size()) (the MPI rank).
  [[nodiscard]] int rank() const noexcept { return mpi_.rank(); }
  /// The number of ranks.
  [[nodiscard]] int size() const noexcept { return mpi_.size(); }
  /// This rank's CUDA device.
  [[nodiscard]] int device() const noexcept { return state_->device; }
  /// The CUDA stream the NCCL operations run on (owned by the communicator).
  [[nodiscard]] cudaStream_t stream() const noexcept { return state_->stream; }
  /// The NCCL communicator (for NCCL calls of your own; do not destroy it).
  [[nodiscard]] ncclComm_t native_handle() const noexcept { return state_->comm; }
  /// The MPI communicator it was made from (all_gather and barrier use it).
  [[nodiscard]] const mpi_communicator& mpi() const noexcept { return mpi_; }

  /// In place: x[0, n) <- the sum over the ranks, or the mean (ncclAvg; NCCL older than
  /// 2.10: the sum scaled by 1/size() with cuBLAS). Device memory (host memory is staged).
  void all_reduce(float* x, std::size_t n, reduce_op op) {
    if (n == 0) return;
    float* buffer = prepare(x, n);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    const ncclRedOp_t nccl_op = op == reduce_op::mean ? ncclAvg : ncclSum;
#else
    const ncclRedOp_t nccl_op = ncclSum;
#endif
    detail::nccl_check(
        ncclAllReduce(buffer, buffer, n, ncclFloat, nccl_op, state_->comm, state_->stream),
        "all_reduce (ncclAllReduce)");
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
    if (op == reduce_op::mean && size() > 1) scale(buffer, n, 1.0f / static_cast<float>(size()));
#else
    (void)op;
#endif
    finish(x, buffer, n);
  }

  /// x[0, n) <- rank `root`'s x[0, n) (ncclBroadcast). Device memory (host memory is
  /// staged). A root outside [0, size()) is a dist_error.
  void broadcast(float* x, std::size_t n, int root) {
    if (root < 0 || root >= size()) {
      throw dist_error("nccl_communicator: broadcast: root " + std::to_string(root) +
                       " is not a rank in [0, " + std::to_string(size()) + ")");
    }
    if (n == 0) return;
    float* buffer = prepare(x, n);
    detail::nccl_check(
        ncclBroadcast(buffer, buffer, n, ncclFloat, root, state_->comm, state_->stream),
        "broadcast (ncclBroadcast)");
    finish(x, buffer, n);
  }

  /// Every rank's `bytes` (host memory), in rank order, over MPI.
  [[nodiscard]] std::vector<std::string> all_gather(std::string_view bytes) {
    return mpi_.all_gather(bytes);
  }

  /// Waits for this rank's NCCL work, then for every rank (MPI_Barrier).
  void barrier() {
    wait();
    mpi_.barrier();
  }

 private:
  struct state {
    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    state(state&&) = delete;
    state& operator=(state&&) = delete;
    ~state() {
      if (device >= 0) (void)cudaSetDevice(device);
      if (comm != nullptr) (void)(aborted ? ncclCommAbort(comm) : ncclCommDestroy(comm));
      if (scratch != nullptr) (void)cudaFree(scratch);
      if (queued != nullptr) (void)cudaEventDestroy(queued);
      if (stream != nullptr) (void)cudaStreamDestroy(stream);
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
      if (blas != nullptr) (void)cublasDestroy(blas);
#endif
    }
    int device = -1;
    ncclComm_t comm = nullptr;
    bool aborted = false;
    cudaStream_t stream = nullptr;
    cudaEvent_t queued = nullptr;
    float* scratch = nullptr;  // the device copy of host buffers
    std::size_t scratch_size = 0;
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
    cublasHandle_t blas = nullptr;
#endif
  };

  // The device buffer the collective works on: x itself, or the scratch copy of host x.
  // Either way the stream first waits for the work queued on the device so far (an event
  // on the legacy default stream, which waits for every blocking stream).
  float* prepare(float* x, std::size_t n) {
    detail::cuda_check(cudaSetDevice(state_->device), "cudaSetDevice");
    detail::cuda_check(cudaEventRecord(state_->queued, cudaStreamLegacy), "cudaEventRecord");
    detail::cuda_check(cudaStreamWaitEvent(state_->stream, state_->queued, 0),
                       "cudaStreamWaitEvent");
    if (detail::device_accessible(x)) return x;
    if (state_->scratch_size < n) {
      if (state_->scratch != nullptr) detail::cuda_check(cudaFree(state_->scratch), "cudaFree");
      state_->scratch = nullptr;
      state_->scratch_size = 0;
      void* p = nullptr;
      detail::cuda_check(cudaMalloc(&p, n * sizeof(float)), "cudaMalloc");
      state_->scratch = static_cast<float*>(p);
      state_->scratch_size = n;
    }
    detail::cuda_check(cudaMemcpyAsync(state_->scratch, x, n * sizeof(float),
                                       cudaMemcpyHostToDevice, state_->stream),
                       "cudaMemcpyAsync");
    return state_->scratch;
  }

  // Copies a staged result back to host x and waits for the stream.
  void finish(float* x, const float* buffer, std::size_t n) {
    if (buffer != x) {
      detail::cuda_check(
          cudaMemcpyAsync(x, buffer, n * sizeof(float), cudaMemcpyDeviceToHost, state_->stream),
          "cudaMemcpyAsync");
    }
    wait();
  }

  // Waits for the stream, polling NCCL for an error it detected (a peer gone): then the
  // NCCL communicator is aborted (its kernels stop) and the error thrown.
  void wait() {
    for (;;) {
      const cudaError_t status = cudaStreamQuery(state_->stream);
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady) detail::cuda_check(status, "cudaStreamQuery");
      ncclResult_t async = ncclSuccess;
      detail::nccl_check(ncclCommGetAsyncError(state_->comm, &async), "ncclCommGetAsyncError");
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
      const bool failed = async != ncclSuccess && async != ncclInProgress;
#else
      const bool failed = async != ncclSuccess;
#endif
      if (failed) {
        state_->aborted = true;
        detail::nccl_check(async, "waiting for a collective (ncclCommGetAsyncError)");
      }
      std::this_thread::yield();
    }
  }

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
  // x[0, n) *= s on the stream (cublasSscal, in chunks of int counts).
  void scale(float* x, std::size_t n, float s) {
    if (state_->blas == nullptr) {
      if (cublasCreate(&state_->blas) != CUBLAS_STATUS_SUCCESS) {
        throw dist_error("nccl_communicator: cublasCreate failed");
      }
      cublasSetStream(state_->blas, state_->stream);
    }
    for (std::size_t offset = 0; offset < n; offset += mpi_communicator::max_count) {
      const auto count = static_cast<int>(std::min(n - offset, mpi_communicator::max_count));
      if (cublasSscal(state_->blas, count, &s, x + offset, 1) != CUBLAS_STATUS_SUCCESS) {
        throw dist_error("nccl_communicator: all_reduce (cublasSscal for the mean) failed");
      }
    }
  }
#endif

  mpi_communicator mpi_;
  std::shared_ptr<state> state_;
};

static_assert(communicator<nccl_communicator>);

}  // namespace dist
}  // namespace v0
}  // namespace rlhf
