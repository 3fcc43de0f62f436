// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Data parallel over MPI (target rlhf::mpi; docs/distributed.md): mpi_environment (MPI's
// lifetime), mpi_communicator (the dist::communicator of host memory: the CPU backends),
// launched_by_mpi() (was this process started by mpirun/mpiexec/srun?), and what to do when
// a rank fails: mpi_abort() and abort_on_exception().
//
// A rank that fails. MPI collectives cannot tell a slow peer from a dead one, so a rank
// that leaves (an exception, a crash, std::exit) while the others wait in a collective
// would hang them. Two things prevent that:
//   - the launcher: Open MPI's mpirun ends the whole job, with a non-zero exit status and a
//     message naming the rank, as soon as one rank exits without MPI_Finalize (or with a
//     non-zero status, or on a signal); MPICH's hydra (mpiexec) does the same ("BAD
//     TERMINATION OF ONE OF YOUR APPLICATION PROCESSES ... EXIT CODE"). So never call
//     MPI_Finalize on an error path: an mpi_environment local to main is not destroyed
//     by std::exit or std::_Exit, and one destroyed while an exception unwinds calls
//     mpi_abort() instead of MPI_Finalize (see ~mpi_environment);
//   - the program: an exception in one rank must end every rank. Wrap the work in
//     abort_on_exception(), which turns an escaping exception into mpi_abort(what()):
//     the message on stderr, then MPI_Abort, which makes the launcher kill every rank.
// Errors MPI reports (an invalid argument, a failed transfer) are returned, not fatal, on
// the communicator mpi_communicator makes (MPI_ERRORS_RETURN) and become rlhf::dist_error.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/dist/communicator.hpp"

namespace rlhf {
inline namespace v0 {
namespace dist {

namespace detail {

// MPI_Error_string's text for `code` (or the number when even that fails).
inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS || length <= 0) {
    return "MPI error code " + std::to_string(code);
  }
  return std::string(text, static_cast<std::size_t>(length));
}

// Throws dist_error "<what>: <MPI's message>" unless `code` is MPI_SUCCESS.
inline void mpi_check(int code, const char* what) {
  if (code != MPI_SUCCESS) {
    throw dist_error(std::string(what) + ": " + mpi_error_text(code));
  }
}

inline bool mpi_initialized() noexcept {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

}  // namespace detail

/// Whether a launcher started this process as one rank of an MPI job: one of the variables
/// Open MPI's mpirun (OMPI_COMM_WORLD_SIZE), PMIx launchers (PMIX_RANK: Open MPI 5, Slurm's
/// srun --mpi=pmix), PMI launchers (PMI_SIZE, PMI_RANK: MPICH's hydra, Intel MPI, srun
/// --mpi=pmi2) or MVAPICH (MV2_COMM_WORLD_SIZE) set is present. A program can start MPI
/// only then, and otherwise run as one process without it.
[[nodiscard]] inline bool launched_by_mpi() noexcept {
  static constexpr std::array<const char*, 6> names = {
      "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",      "PMI_SIZE", "PMI_RANK",
      "MV2_COMM_WORLD_SIZE",  "MPI_LOCALNRANKS"};
  return std::ranges::any_of(names, [](const char* name) {
    return std::getenv(name) != nullptr;  // NOLINT(concurrency-mt-unsafe): read at start-up
  });
}

/// Prints "rlhf: rank R: <why>; aborting every rank (MPI_Abort)" to stderr and ends every
/// rank of MPI_COMM_WORLD with MPI_Abort(`code`): the launcher then kills the other ranks,
/// so none of them hangs in a collective waiting for this one. Without MPI (not
/// initialised, or finalised already) the process alone ends with std::_Exit(`code`).
[[noreturn]] inline void mpi_abort(const std::string& why, int code = 1) noexcept {
  int rank = -1;
  const bool running = detail::mpi_initialized();
  if (running) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  (void)std::fprintf(stderr, "rlhf: rank %d: %s; aborting every rank (MPI_Abort)\n", rank,
                     why.c_str());
  (void)std::fflush(stderr);
  if (running) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

/// Runs `f()` and returns what it returns; an exception escaping it calls
/// mpi_abort(its what()), so that one failing rank ends the job instead of leaving the
/// others waiting in a collective. Typical use: `return abort_on_exception([&] { ...; return
/// 0; });` in main, after the mpi_environment.
template <class F>
decltype(auto) abort_on_exception(F&& f) noexcept {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    mpi_abort(std::string("uncaught exception: ") + e.what());
  } catch (...) {
    mpi_abort("uncaught exception of a type not derived from std::exception");
  }
}

/// MPI's lifetime (RAII): MPI_Init_thread unless MPI is initialised already, and
/// MPI_Finalize on destruction only if this object initialised it. One per process, made
/// in main before any communicator and outliving all of them. Neither copyable nor movable.
class mpi_environment {
 public:
  /// Initialises MPI (if not yet) asking for thread support `required` (MPI_THREAD_FUNNELED
  /// by default: only the thread that initialised MPI calls it, other threads compute).
  /// Throws dist_error when MPI was finalised already or provides less than `required`.
  explicit mpi_environment(int required = MPI_THREAD_FUNNELED) { init(nullptr, nullptr, required); }
  /// The same, handing the command line to MPI_Init_thread (which may remove its options).
  mpi_environment(int& argc, char**& argv, int required = MPI_THREAD_FUNNELED) {
    init(&argc, &argv, required);
  }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;
  mpi_environment(mpi_environment&&) = delete;
  mpi_environment& operator=(mpi_environment&&) = delete;

  /// MPI_Finalize if this object initialised MPI and nothing finalised it since. When the
  /// destructor runs because an exception is unwinding (out of main, say) in a job of more
  /// than one rank, it calls mpi_abort() instead: MPI_Finalize waits for the other ranks,
  /// which may be waiting for this one in a collective, and the job would hang.
  ~mpi_environment() {
    if (!owner_ || !detail::mpi_initialized()) return;
    int ranks = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (std::uncaught_exceptions() > 0 && ranks > 1) {
      mpi_abort("an exception is unwinding past the mpi_environment");
    }
    MPI_Finalize();
  }

  /// Whether this object initialised MPI (and so finalises it).
  [[nodiscard]] bool owner() const noexcept { return owner_; }
  /// The thread support MPI provides (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  [[nodiscard]] int thread_level() const noexcept { return provided_; }

 private:
  void init(int* argc, char*** argv, int required) {
    int initialized = 0;
    int finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized != 0) {
      throw dist_error("mpi_environment: MPI was finalised already and cannot start again");
    }
    if (initialized == 0) {
      detail::mpi_check(MPI_Init_thread(argc, argv, required, &provided_),
                        "mpi_environment: MPI_Init_thread");
      owner_ = true;
    } else {
      MPI_Query_thread(&provided_);
    }
    if (provided_ < required) {
      throw dist_error("mpi_environment: MPI provides thread level " + std::to_string(provided_) +
                       ", below the " + std::to_string(required) + " asked for");
    }
  }

  bool owner_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

/// The dist::communicator of MPI over host memory (the CPU backends). Made from an MPI
/// communicator (MPI_COMM_WORLD by default) that it duplicates, so its messages never mix
/// with the program's own, and sets to MPI_ERRORS_RETURN: an error MPI reports becomes
/// dist_error "mpi_communicator: <operation> (<MPI function>): <MPI_Error_string's text>".
/// Copies share the duplicate, which the last copy frees (unless MPI is finalised by
/// then). Every rank must make it, and call each operation, in the same order with the
/// same counts: they are collective.
class mpi_communicator {
 public:
  /// The largest count one MPI call is given: MPI counts are int, so longer buffers go in
  /// chunks of at most this many elements.
  static constexpr std::size_t max_count = static_cast<std::size_t>(INT_MAX);

  /// Duplicates `comm` (collective over its ranks). `max_chunk` (1 ... max_count) is the
  /// most elements one MPI call moves; smaller values exist to test the chunking. Throws
  /// dist_error when MPI is not initialised (make an mpi_environment first) or MPI fails,
  /// config_error for a max_chunk out of range.
  explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD, std::size_t max_chunk = max_count)
      : max_chunk_(max_chunk) {
    if (max_chunk == 0 || max_chunk > max_count) {
      throw config_error("mpi_communicator: max_chunk must be in [1, INT_MAX], got " +
                         std::to_string(max_chunk));
    }
    if (!detail::mpi_initialized()) {
      throw dist_error("mpi_communicator: MPI is not initialised (make an mpi_environment first)");
    }
    MPI_Comm dup = MPI_COMM_NULL;
    detail::mpi_check(MPI_Comm_dup(comm, &dup), "mpi_communicator: MPI_Comm_dup");
    comm_ = std::make_shared<handle>(dup);
    detail::mpi_check(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN),
                      "mpi_communicator: MPI_Comm_set_errhandler");
    detail::mpi_check(MPI_Comm_rank(dup, &rank_), "mpi_communicator: MPI_Comm_rank");
    detail::mpi_check(MPI_Comm_size(dup, &size_), "mpi_communicator: MPI_Comm_size");
  }

  /// This process's rank in [0, size()).
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// The number of ranks.
  [[nodiscard]] int size() const noexcept { return size_; }
  /// The duplicated MPI communicator (for MPI calls of your own; do not free it).
  [[nodiscard]] MPI_Comm native_handle() const noexcept { return comm_->comm; }

  /// In place: x[0, n) <- the sum over the ranks (MPI_Allreduce, MPI_IN_PLACE, MPI_SUM), or
  /// that sum times 1/size() for reduce_op::mean. Host memory.
  void all_reduce(float* x, std::size_t n, reduce_op op) {
    for_chunks(n, [&](std::size_t offset, int count) {
      detail::mpi_check(
          MPI_Allreduce(MPI_IN_PLACE, x + offset, count, MPI_FLOAT, MPI_SUM, comm_->comm),
          "mpi_communicator: all_reduce (MPI_Allreduce)");
    });
    if (op == reduce_op::mean && size_ > 1) {
      const float scale = 1.0f / static_cast<float>(size_);
      for (std::size_t i = 0; i < n; ++i) x[i] *= scale;
    }
  }

  /// x[0, n) <- rank `root`'s x[0, n) (MPI_Bcast). Host memory. A root outside [0, size())
  /// is a dist_error (MPI's invalid-root error).
  void broadcast(float* x, std::size_t n, int root) {
    for_chunks(n, [&](std::size_t offset, int count) {
      detail::mpi_check(MPI_Bcast(x + offset, count, MPI_FLOAT, root, comm_->comm),
                        "mpi_communicator: broadcast (MPI_Bcast)");
    });
  }

  /// Every rank's `bytes`, in rank order (lengths may differ, and be 0): MPI_Allgather of
  /// the lengths, then MPI_Allgatherv of the bytes, in rounds of at most max_chunk bytes.
  [[nodiscard]] std::vector<std::string> all_gather(std::string_view bytes) {
    const auto n = static_cast<std::size_t>(size_);
    std::vector<std::int64_t> lengths(n);
    const auto mine = static_cast<std::int64_t>(bytes.size());
    detail::mpi_check(
        MPI_Allgather(&mine, 1, MPI_INT64_T, lengths.data(), 1, MPI_INT64_T, comm_->comm),
        "mpi_communicator: all_gather (MPI_Allgather of the lengths)");
    std::vector<std::string> out(n);
    std::int64_t longest = 0;
    for (std::size_t r = 0; r < n; ++r) {
      out[r].resize(static_cast<std::size_t>(lengths[r]));
      longest = std::max(longest, lengths[r]);
    }
    // Each round moves up to `share` bytes of every rank: at most max_chunk in all, so the
    // int counts and displacements of MPI_Allgatherv cannot overflow.
    const auto share = static_cast<std::int64_t>(std::max<std::size_t>(1, max_chunk_ / n));
    std::vector<int> counts(n);
    std::vector<int> displs(n);
    std::vector<char> buffer;
    for (std::int64_t offset = 0; offset < longest; offset += share) {
      int total = 0;
      for (std::size_t r = 0; r < n; ++r) {
        counts[r] = static_cast<int>(std::clamp<std::int64_t>(lengths[r] - offset, 0, share));
        displs[r] = total;
        total += counts[r];
      }
      buffer.resize(static_cast<std::size_t>(std::max(total, 1)));
      const char* send = counts[static_cast<std::size_t>(rank_)] > 0 ? bytes.data() + offset
                                                                     : buffer.data();
      detail::mpi_check(
          MPI_Allgatherv(send, counts[static_cast<std::size_t>(rank_)], MPI_BYTE, buffer.data(),
                         counts.data(), displs.data(), MPI_BYTE, comm_->comm),
          "mpi_communicator: all_gather (MPI_Allgatherv)");
      for (std::size_t r = 0; r < n; ++r) {
        if (counts[r] > 0) {
          std::memcpy(out[r].data() + offset, buffer.data() + displs[r],
                      static_cast<std::size_t>(counts[r]));
        }
      }
    }
    return out;
  }

  /// Returns when every rank has entered it (MPI_Barrier).
  void barrier() {
    detail::mpi_check(MPI_Barrier(comm_->comm), "mpi_communicator: barrier (MPI_Barrier)");
  }

 private:
  struct handle {
    explicit handle(MPI_Comm c) noexcept : comm(c) {}
    MPI_Comm comm = MPI_COMM_NULL;
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    handle(handle&&) = delete;
    handle& operator=(handle&&) = delete;
    ~handle() {
      if (comm != MPI_COMM_NULL && detail::mpi_initialized()) MPI_Comm_free(&comm);
    }
  };

  // f(offset, count) for consecutive chunks of at most max_chunk_ elements covering [0, n);
  // once with count 0 when n is 0, so that every rank makes the same (checked) call.
  template <class F>
  void for_chunks(std::size_t n, F&& f) const {
    std::size_t offset = 0;
    do {
      const std::size_t count = std::min(n - offset, max_chunk_);
      f(offset, static_cast<int>(count));
      offset += count;
    } while (offset < n);
  }

  std::shared_ptr<handle> comm_;
  int rank_ = 0;
  int size_ = 1;
  std::size_t max_chunk_ = max_count;
};

static_assert(communicator<mpi_communicator>);

/// This process's rank among the ranks of `comm` on the same node (MPI_Comm_split_type with
/// MPI_COMM_TYPE_SHARED; collective): the usual choice of GPU, local_rank % device count.
[[nodiscard]] inline int local_rank(const mpi_communicator& comm) {
  MPI_Comm node = MPI_COMM_NULL;
  detail::mpi_check(MPI_Comm_split_type(comm.native_handle(), MPI_COMM_TYPE_SHARED, comm.rank(),
                                        MPI_INFO_NULL, &node),
                    "local_rank: MPI_Comm_split_type");
  int rank = 0;
  const int code = MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  detail::mpi_check(code, "local_rank: MPI_Comm_rank");
  return rank;
}

}  // namespace dist
}  // namespace v0
}  // namespace rlhf
