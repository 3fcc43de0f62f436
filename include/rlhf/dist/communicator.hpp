// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What data-parallel training needs of a group of processes (ranks), as a concept, the
// single-process group every trainer uses by default, and a type-erased handle the trainers
// hold. Implementations: single_process (here: no dependency, no cost), mpi_communicator
// (dist/mpi.hpp, host memory of the CPU backends) and nccl_communicator (dist/nccl.hpp,
// device memory of the CUDA backend).
//
//   rank(), size()                       this process's rank in [0, size)
//   all_reduce(float* x, n, op)          in place: x <- Σ_ranks x (sum) or Σ/size (mean),
//                                        the same result on every rank
//   broadcast(float* x, n, root)         x <- root's x
//   all_gather(bytes) -> size strings    every rank's bytes, in rank order (small messages:
//                                        metrics, checks that the ranks agree)
//   barrier()                            returns when every rank has entered it
//
// The memory passed must be where the communicator works (host memory for MPI, device
// memory for NCCL); all_reduce<B>(comm, tensor) passes a backend tensor's storage. A rank
// that fails (an exception, a lost peer) makes every call a dist_error instead of a hang
// where the implementation can tell; see each implementation for how.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"

namespace rlhf {
inline namespace v0 {

/// A failure of the process group: a peer that died or timed out, an MPI/NCCL error.
class dist_error : public error {
 public:
  using error::error;
};

namespace dist {

/// How all_reduce combines the ranks' values.
enum class reduce_op : unsigned char {
  sum,   ///< Σ over ranks
  mean,  ///< Σ over ranks / size
};

/// A group of processes that trains one model together; see the top of this file.
template <class C>
concept communicator = requires(C& c, const C& cc, float* x, std::size_t n, int root,
                                std::string_view bytes) {
  { cc.rank() } -> std::convertible_to<int>;
  { cc.size() } -> std::convertible_to<int>;
  c.all_reduce(x, n, reduce_op::sum);
  c.broadcast(x, n, root);
  { c.all_gather(bytes) } -> std::same_as<std::vector<std::string>>;
  c.barrier();
};

/// One process: every operation is the identity (the default of every trainer).
class single_process {
 public:
  /// 0.
  [[nodiscard]] int rank() const noexcept { return 0; }
  /// 1.
  [[nodiscard]] int size() const noexcept { return 1; }
  /// Nothing to combine.
  void all_reduce(float*, std::size_t, reduce_op) noexcept {}
  /// Nothing to send.
  void broadcast(float*, std::size_t, int) noexcept {}
  /// This rank's bytes alone.
  [[nodiscard]] std::vector<std::string> all_gather(std::string_view bytes) const {
    return {std::string(bytes)};
  }
  /// Nobody to wait for.
  void barrier() noexcept {}
};

class any_communicator;

namespace detail {
/// What any_communicator wraps: a communicator other than itself.
template <class C>
concept wrappable_communicator = communicator<std::remove_cvref_t<C>> &&
    !std::same_as<std::remove_cvref_t<C>, any_communicator>;
}  // namespace detail

/// A communicator of any type, held by value (copies share the same group); what the
/// trainers store. Default: single_process.
class any_communicator {
 public:
  /// single_process.
  any_communicator() : any_communicator(single_process{}) {}
  /// Wraps `c` (moved or copied in; copies of the handle share one wrapped object).
  template <detail::wrappable_communicator C>
  // NOLINTNEXTLINE(google-explicit-constructor,bugprone-forwarding-reference-overload)
  any_communicator(C&& c)
      : self_(std::make_shared<model<std::remove_cvref_t<C>>>(std::forward<C>(c))) {}

  /// This process's rank in [0, size()).
  [[nodiscard]] int rank() const { return self_->rank(); }
  /// The number of ranks.
  [[nodiscard]] int size() const { return self_->size(); }
  /// In place over the ranks (see the top of this file).
  void all_reduce(float* x, std::size_t n, reduce_op op) { self_->all_reduce(x, n, op); }
  /// `root`'s values on every rank.
  void broadcast(float* x, std::size_t n, int root) { self_->broadcast(x, n, root); }
  /// Every rank's bytes, in rank order.
  [[nodiscard]] std::vector<std::string> all_gather(std::string_view bytes) {
    return self_->all_gather(bytes);
  }
  /// Waits for every rank.
  void barrier() { self_->barrier(); }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    [[nodiscard]] virtual int rank() const = 0;
    [[nodiscard]] virtual int size() const = 0;
    virtual void all_reduce(float* x, std::size_t n, reduce_op op) = 0;
    virtual void broadcast(float* x, std::size_t n, int root) = 0;
    virtual std::vector<std::string> all_gather(std::string_view bytes) = 0;
    virtual void barrier() = 0;
  };
  template <class C>
  struct model final : concept_t {
    explicit model(C c) : c_(std::move(c)) {}
    [[nodiscard]] int rank() const override { return static_cast<int>(c_.rank()); }
    [[nodiscard]] int size() const override { return static_cast<int>(c_.size()); }
    void all_reduce(float* x, std::size_t n, reduce_op op) override { c_.all_reduce(x, n, op); }
    void broadcast(float* x, std::size_t n, int root) override { c_.broadcast(x, n, root); }
    std::vector<std::string> all_gather(std::string_view bytes) override {
      return c_.all_gather(bytes);
    }
    void barrier() override { c_.barrier(); }
    C c_;
  };
  std::shared_ptr<concept_t> self_;
};

/// all_reduce of a backend tensor's storage (B::data(t), t.size() floats) in place.
template <class B, communicator C>
void all_reduce(C& comm, typename B::tensor& t, reduce_op op) {
  comm.all_reduce(B::data(t), static_cast<std::size_t>(t.size()), op);
}

/// broadcast of a backend tensor's storage from `root`.
template <class B, communicator C>
void broadcast(C& comm, typename B::tensor& t, int root) {
  comm.broadcast(B::data(t), static_cast<std::size_t>(t.size()), root);
}

}  // namespace dist
}  // namespace v0
}  // namespace rlhf
