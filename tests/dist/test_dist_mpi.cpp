// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::dist::mpi_communicator on 2 (or more) ranks: ctest runs this binary under
// `mpiexec -np 2` (tests/dist/dist.cmake). Every rank runs the same cases in the same order,
// and the cases use CHECK, never REQUIRE, so that a failed check on one rank does not skip
// a collective the other ranks then wait in. Expected values are computed from the rank
// formula each rank fills its buffer with. The two cases marked skip are run one at a time
// by tests/dist/failing_rank.cmake (--test-case=... --no-skip): a rank that dies, and a
// rank that throws inside abort_on_exception; both must end the job, not hang it.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "rlhf/dist/communicator.hpp"
#include "rlhf/dist/mpi.hpp"

namespace dist = rlhf::dist;

namespace {

// One environment for the whole run (the first case initialises MPI; static destruction
// finalises it after doctest's main returns).
dist::mpi_environment& environment() {
  static dist::mpi_environment env;
  return env;
}

// A communicator over MPI_COMM_WORLD (MPI initialised first).
dist::mpi_communicator world(std::size_t max_chunk = dist::mpi_communicator::max_count) {
  environment();
  return dist::mpi_communicator(MPI_COMM_WORLD, max_chunk);
}

// Rank r's value at index i: distinct per rank and per index, exact in float.
float value(int rank, std::size_t i) {
  return static_cast<float>(rank + 1) * 0.5f + static_cast<float>(i % 97);
}

std::vector<float> filled(int rank, std::size_t n) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = value(rank, i);
  return x;
}

// Σ over ranks of value(r, i).
float sum_over_ranks(int size, std::size_t i) {
  float s = 0.0f;
  for (int r = 0; r < size; ++r) s += value(r, i);
  return s;
}

// Rank r's all_gather message: lengths 0 (rank 0), 1, 5, 11, ... with a NUL inside.
std::string message(int rank) {
  std::string s;
  for (int k = 0; k < rank * rank + (rank > 0 ? 1 : 0); ++k) {
    s.push_back(static_cast<char>('a' + (rank + k) % 26));
  }
  if (s.size() > 2) s[1] = '\0';
  return s;
}

template <class C>
void check_all_reduce(C& comm, std::size_t n) {
  const int rank = comm.rank();
  const int size = comm.size();
  std::vector<float> x = filled(rank, n);
  comm.all_reduce(x.data(), x.size(), dist::reduce_op::sum);
  int wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += x[i] != sum_over_ranks(size, i) ? 1 : 0;
  CHECK_MESSAGE(wrong == 0, "sum: ", wrong, " of ", n, " values wrong on rank ", rank);

  x = filled(rank, n);
  comm.all_reduce(x.data(), x.size(), dist::reduce_op::mean);
  wrong = 0;
  const float inv = 1.0f / static_cast<float>(size);
  for (std::size_t i = 0; i < n; ++i) wrong += x[i] != sum_over_ranks(size, i) * inv ? 1 : 0;
  CHECK_MESSAGE(wrong == 0, "mean: ", wrong, " of ", n, " values wrong on rank ", rank);
}

template <class C>
void check_broadcast(C& comm, std::size_t n, int root) {
  std::vector<float> x = filled(comm.rank(), n);
  comm.broadcast(x.data(), x.size(), root);
  CHECK(x == filled(root, n));
}

template <class C>
void check_all_gather(C& comm) {
  const std::vector<std::string> got = comm.all_gather(message(comm.rank()));
  CHECK(static_cast<int>(got.size()) == comm.size());
  for (std::size_t r = 0; r < got.size(); ++r) {
    CHECK_MESSAGE(got[r] == message(static_cast<int>(r)), "rank ", comm.rank(),
                  " got a wrong message from rank ", r);
  }
}

}  // namespace

TEST_CASE("mpi_communicator: rank and size") {
  CHECK(environment().thread_level() >= MPI_THREAD_FUNNELED);
  CHECK(dist::launched_by_mpi());
  dist::mpi_communicator comm = world();
  int world_rank = -1;
  int world_size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  CHECK(comm.rank() == world_rank);
  CHECK(comm.size() == world_size);
  CHECK(comm.size() >= 2);  // ctest runs it on 2 ranks: a 1-rank run would test nothing
  CHECK(comm.native_handle() != MPI_COMM_WORLD);  // a duplicate
  const int local = dist::local_rank(comm);
  CHECK(local >= 0);
  CHECK(local < comm.size());
  comm.barrier();
}

TEST_CASE("mpi_communicator: all_reduce sum and mean") {
  dist::mpi_communicator comm = world();
  check_all_reduce(comm, 1);
  check_all_reduce(comm, 1000);
  check_all_reduce(comm, 0);
}

TEST_CASE("mpi_communicator: buffers longer than one MPI call are sent in chunks") {
  // A chunk of 7 elements (the real one is INT_MAX): 100 values take 15 calls, the last
  // one short; all_gather rounds of 7 bytes over all ranks.
  dist::mpi_communicator comm = world(7);
  check_all_reduce(comm, 100);
  check_all_reduce(comm, 7);
  check_broadcast(comm, 100, comm.size() - 1);
  check_all_gather(comm);
  std::vector<std::string> got = comm.all_gather(
      std::string(50, static_cast<char>('A' + comm.rank())));
  CHECK(got.size() == static_cast<std::size_t>(comm.size()));
  for (std::size_t r = 0; r < got.size(); ++r) {
    CHECK(got[r] == std::string(50, static_cast<char>('A' + static_cast<int>(r))));
  }
  CHECK_THROWS_AS(dist::mpi_communicator(MPI_COMM_WORLD, 0), rlhf::config_error);
}

TEST_CASE("mpi_communicator: broadcast from rank 1") {
  dist::mpi_communicator comm = world();
  check_broadcast(comm, 1, 1);
  check_broadcast(comm, 513, 1);
  check_broadcast(comm, 4, 0);
}

TEST_CASE("mpi_communicator: all_gather of messages of different lengths") {
  dist::mpi_communicator comm = world();
  check_all_gather(comm);
  // Every rank sends nothing.
  const std::vector<std::string> none = comm.all_gather("");
  CHECK(none == std::vector<std::string>(static_cast<std::size_t>(comm.size())));
}

TEST_CASE("any_communicator over mpi_communicator gives the same results") {
  dist::any_communicator comm{world()};
  int world_rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  CHECK(comm.rank() == world_rank);
  check_all_reduce(comm, 257);
  check_broadcast(comm, 33, 1);
  check_all_gather(comm);
  comm.barrier();
  // The tensor helpers, on a stand-in backend whose tensor is a std::vector.
  struct vector_backend {
    using tensor = std::vector<float>;
    static float* data(tensor& t) { return t.data(); }
  };
  std::vector<float> t = filled(comm.rank(), 9);
  dist::all_reduce<vector_backend>(comm, t, dist::reduce_op::sum);
  for (std::size_t i = 0; i < t.size(); ++i) CHECK(t[i] == sum_over_ranks(comm.size(), i));
  t = filled(comm.rank(), 9);
  dist::broadcast<vector_backend>(comm, t, 1);
  CHECK(t == filled(1, 9));
}

TEST_CASE("mpi_communicator: an MPI error is a dist_error naming the operation") {
  dist::mpi_communicator comm = world();
  std::vector<float> x(4, 1.0f);
  // An invalid root on every rank: MPI returns its error (MPI_ERRORS_RETURN) on each.
  std::string what;
  try {
    comm.broadcast(x.data(), x.size(), comm.size());
  } catch (const rlhf::dist_error& e) {
    what = e.what();
  }
  CHECK_MESSAGE(what.find("mpi_communicator: broadcast (MPI_Bcast): ") == 0, what);
  CHECK_MESSAGE(what.size() > std::string("mpi_communicator: broadcast (MPI_Bcast): ").size(),
                "no MPI error text: ", what);
  // The communicator still works afterwards.
  check_broadcast(comm, 4, 0);
  CHECK_THROWS_AS(comm.broadcast(x.data(), x.size(), -1), rlhf::dist_error);
  comm.barrier();
}

// Run alone by tests/dist/failing_rank.cmake: rank 1 dies (no exception, no MPI_Finalize)
// while rank 0 waits in a collective for it.
TEST_CASE("failing rank: rank 1 exits before a collective" * doctest::skip()) {
  dist::mpi_communicator comm = world();
  if (comm.rank() == 1) {
    (void)std::fprintf(stderr, "test: rank 1 exits with status 3 before all_reduce\n");
    (void)std::fflush(stderr);
    std::_Exit(3);
  }
  float x = 1.0f;
  comm.all_reduce(&x, 1, dist::reduce_op::sum);
  (void)std::fprintf(stderr, "test: rank %d returned from all_reduce\n", comm.rank());
}

// Run alone by tests/dist/failing_rank.cmake: rank 1 throws inside abort_on_exception while
// rank 0 waits in a collective for it.
TEST_CASE("failing rank: rank 1 throws inside abort_on_exception" * doctest::skip()) {
  dist::mpi_communicator comm = world();
  dist::abort_on_exception([&] {
    if (comm.rank() == 1) throw std::runtime_error("rank 1 lost its data file");
    comm.barrier();
  });
  (void)std::fprintf(stderr, "test: rank %d passed the barrier\n", comm.rank());
}
