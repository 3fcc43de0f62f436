// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::thrust_backend<System>: tensors in the memory of a Thrust system and ops on Thrust
// algorithms. System is a Thrust system tag:
//
//   thrust::system::cpp::tag    serial host                 (g++ or nvcc)
//   thrust::system::omp::tag    OpenMP host threads         (g++ or nvcc; -fopenmp)
//   thrust::system::cuda::tag   CUDA device memory, cuBLAS  (nvcc --extended-lambda only)
//
// Tensors own a thrust::<system>::vector (device memory for CUDA: no managed memory), so
// host code may dereference data() only on the host systems (host_accessible). parallel_for
// is thrust::for_each over a counting iterator with the system's execution policy.
//
// Overrides (docs/cuda.md): fill and transform (thrust::fill / thrust::transform), for_each
// and the row/column broadcasts as single kernels holding the functor;
// the row reductions, softmax and log-softmax as segmented reductions
// (thrust::reduce_by_key over row keys) plus elementwise passes; GEMM through cuBLAS's
// strided-batched SGEMM on CUDA and a row-parallel host kernel on CPP/OMP; and
// reverse_linear_scan_rows (GAE, discounted returns) as a parallel associative scan of affine
// maps (thrust::inclusive_scan_by_key over the reversed rows). Everything else, the Philox
// RNG included (so the random streams are identical), is the generic op on parallel_for.
// The same Thrust code paths run on every system, so the OMP suite tests what CUDA runs;
// only the copies, the error checks and cuBLAS are CUDA-specific.
//
// Errors from CUDA, cuBLAS or Thrust's CUDA system become rlhf::backend_error carrying the
// API's error string.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "rlhf/backends/thrust/detail/thrust_config.hpp"

#include "rlhf/backends/thrust/detail/cuda.hpp"
#include "rlhf/backends/thrust/detail/kernels.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/host_tensor.hpp"  // rlhf::detail::basic_owning_tensor
#include "rlhf/core/overrides.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/gemm.hpp"

namespace rlhf {
inline namespace v0 {

namespace detail {
namespace thrust_impl {

/// What rlhf needs to know about a Thrust system: its vector, memory space and policy.
template <class System>
struct system_traits {
  static_assert(rlhf::detail::dependent_false<System>,
                "rlhf::thrust_backend<System>: System must be thrust::system::cpp::tag, "
                "thrust::system::omp::tag or (under nvcc) thrust::system::cuda::tag");
};

template <>
struct system_traits<thrust::system::cpp::tag> {
  template <class T>
  using vector = thrust::cpp::vector<T>;
  static constexpr bool host_accessible = true;
  static constexpr bool is_cuda = false;
  static constexpr bool is_omp = false;
  static constexpr const char* name = "thrust-cpp";
  static auto policy() { return thrust::cpp::par; }
};

template <>
struct system_traits<thrust::system::omp::tag> {
  template <class T>
  using vector = thrust::omp::vector<T>;
  static constexpr bool host_accessible = true;
  static constexpr bool is_cuda = false;
  static constexpr bool is_omp = true;
  static constexpr const char* name = "thrust-omp";
  static auto policy() { return thrust::omp::par; }
};

#if defined(__CUDACC__)
template <>
struct system_traits<thrust::system::cuda::tag> {
  template <class T>
  using vector = thrust::cuda::vector<T>;
  static constexpr bool host_accessible = false;
  static constexpr bool is_cuda = true;
  static constexpr bool is_omp = false;
  static constexpr const char* name = "thrust-cuda";
  // cuda::par synchronises after each algorithm, so a failed kernel is reported by the
  // call that launched it.
  static auto policy() { return thrust::cuda::par; }
};
#endif

/// Runs f, turning Thrust's CUDA-system errors (and out-of-device-memory) into
/// backend_error; on the host systems exceptions pass through unchanged.
template <class System, class F>
decltype(auto) guarded(std::string_view what, F&& f) {
  if constexpr (system_traits<System>::is_cuda) {
    try {
      return f();
    } catch (const thrust::system_error& e) {
      throw backend_error(rlhf::detail::concat("thrust_backend: ", what, ": ", e.what()));
    } catch (const std::bad_alloc& e) {
      throw backend_error(rlhf::detail::concat("thrust_backend: ", what,
                                               ": device allocation failed: ", e.what()));
    }
  } else {
    return f();
  }
}

}  // namespace thrust_impl
}  // namespace detail

namespace detail {
namespace thrust_impl {

/// The storage policy of thrust_tensor (rlhf::detail::basic_owning_tensor): a Thrust vector of
/// System.
template <class T, class System>
struct thrust_storage {
  using value_type = T;  ///< the element type
  /// The Thrust vector of that system that owns the elements.
  using container = typename system_traits<System>::template vector<T>;

  /// s.numel() zero-filled elements. A byte count that overflows std::size_t, or a failed
  /// allocation (device or host), is a backend_error naming the shape and the bytes.
  static container allocate(const rlhf::shape& s) {
    const index_t n = s.numel();
    std::size_t bytes = 0;
    if (!rlhf::detail::checked_mul(static_cast<std::size_t>(n), sizeof(T), bytes)) {
      throw backend_error(rlhf::detail::concat("thrust_backend: allocating a tensor of shape ",
                                               s.str(), ": ", n, " * ", sizeof(T),
                                               " bytes overflows std::size_t"));
    }
    const std::string what = rlhf::detail::concat("allocating a tensor of shape ", s.str(), " (",
                                                  bytes, " bytes)");
    try {
      return guarded<System>(what, [&] { return container(static_cast<std::size_t>(n), T(0)); });
    } catch (const std::bad_alloc& e) {  // host systems: guarded lets it through
      throw backend_error(rlhf::detail::concat("thrust_backend: ", what, " failed: ", e.what()));
    } catch (const std::length_error& e) {
      throw backend_error(rlhf::detail::concat("thrust_backend: ", what, " failed: ", e.what()));
    }
  }
  /// A deep copy of src in the same system's memory.
  static container copy(const container& src, const rlhf::shape&) {
    return guarded<System>("copying a tensor", [&] { return container(src); });
  }
  /// Deep copy assignment.
  static void assign(container& dst, index_t, const container& src, const rlhf::shape&) {
    guarded<System>("copying a tensor", [&] { dst = src; });
  }
  /// The first element in System's memory.
  static T* data(container& c) noexcept { return thrust::raw_pointer_cast(c.data()); }
  /// The first element in System's memory.
  static const T* data(const container& c) noexcept { return thrust::raw_pointer_cast(c.data()); }
  /// A moved-from Thrust vector is already empty.
  static void clear(container&) noexcept {}
};

}  // namespace thrust_impl
}  // namespace detail

/// Owning, dense, row-major tensor in System's memory (zero-filled on construction). Copies
/// are deep; a moved-from tensor is empty, shape (0).
template <class T, class System>
class thrust_tensor
    : public rlhf::detail::basic_owning_tensor<detail::thrust_impl::thrust_storage<T, System>> {
  using base = rlhf::detail::basic_owning_tensor<detail::thrust_impl::thrust_storage<T, System>>;

 public:
  using value_type = T;   ///< the element type (float or std::int32_t)
  using system = System;  ///< the Thrust system tag whose memory holds the elements
  /// The Thrust vector of that system that owns the elements.
  using storage_type = typename detail::thrust_impl::system_traits<System>::template vector<T>;

  /// An empty tensor of shape (0).
  thrust_tensor() = default;

  /// A zero-filled tensor of shape s.
  explicit thrust_tensor(const rlhf::shape& s) : base(s) {}

  ///@{
  /// The Thrust vector itself, for interoperating with other Thrust code.
  [[nodiscard]] storage_type& storage() noexcept { return this->container(); }
  [[nodiscard]] const storage_type& storage() const noexcept { return this->container(); }
  ///@}
};

/// The Thrust backend; see the top of this file.
template <class System>
struct thrust_backend {
 private:
  using traits = detail::thrust_impl::system_traits<System>;

 public:
  using backend_category = tensor_backend_tag;  ///< opts in to the tensor_backend concept
  using system = System;                        ///< the Thrust system tag
  using tensor = thrust_tensor<float, System>;  ///< float32 tensor in System's memory
  using index_tensor = thrust_tensor<std::int32_t, System>;  ///< int32 tensor in that memory
  /// Whether host code may dereference data(): true on CPP and OMP, false on CUDA.
  static constexpr bool host_accessible = traits::host_accessible;
  static constexpr const char* name = traits::name;  ///< thrust-cpp, thrust-omp or thrust-cuda

  /// The execution policy of the system.
  static auto policy() { return traits::policy(); }

  /// On the OMP system, work below this many elements runs on the calling thread (Thrust's
  /// CPP system): an OpenMP parallel region costs microseconds, and far more when the cores
  /// are oversubscribed and the runtime spins. parallel_for, whose per-index cost is
  /// unknown, goes parallel from 16 indices (as the Eigen backend). RLHF_THRUST_OMP_GRAIN
  /// overrides it (0: everything on OpenMP, as the OMP conformance test does).
#if defined(RLHF_THRUST_OMP_GRAIN)
  static constexpr index_t omp_grain = RLHF_THRUST_OMP_GRAIN;
#else
  static constexpr index_t omp_grain = index_t{1} << 15;
#endif

  /// f(policy) with the policy for `work` elements of work (see omp_grain).
  template <class F>
  static decltype(auto) with_policy(index_t work, F&& f) {
    if constexpr (traits::is_omp) {
      if (work < omp_grain) return f(thrust::cpp::par);
    }
    return f(policy());
  }

  // ---- required primitives -------------------------------------------------------------

  ///@{
  /// The tensor's first element in System's memory (a device pointer on CUDA).
  static float* data(tensor& t) noexcept { return t.data(); }
  static const float* data(const tensor& t) noexcept { return t.data(); }
  static std::int32_t* data(index_tensor& t) noexcept { return t.data(); }
  static const std::int32_t* data(const index_tensor& t) noexcept { return t.data(); }
  ///@}

  /// src's bytes into dst (cudaMemcpy on CUDA, memcpy on the host systems).
  static void copy_from_host(std::span<const float> src, tensor& dst) {
    copy_in(src.data(), dst.data(), src.size_bytes());
  }
  /// src's bytes into the index tensor dst.
  static void copy_from_host(std::span<const std::int32_t> src, index_tensor& dst) {
    copy_in(src.data(), dst.data(), src.size_bytes());
  }
  /// dst.size() elements of src into host memory dst.
  static void copy_to_host(const tensor& src, std::span<float> dst) {
    copy_out(src.data(), dst.data(), dst.size_bytes());
  }
  /// dst.size() elements of the index tensor src into host memory dst.
  static void copy_to_host(const index_tensor& src, std::span<std::int32_t> dst) {
    copy_out(src.data(), dst.data(), dst.size_bytes());
  }

  /// f(i) for i in [0, n): thrust::for_each over a counting iterator (one kernel on CUDA,
  /// OpenMP threads on OMP). f is a RLHF_LAMBDA or a functor with a RLHF_HD operator().
  template <class F>
  static void parallel_for(index_t n, F f) {
    launch(n, n >= 16 ? omp_grain : 0, f);
  }

  /// Waits for queued device work (CUDA); a no-op on the host systems.
  static void synchronize() {
#if defined(__CUDACC__)
    if constexpr (traits::is_cuda) {
      detail::thrust_impl::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }
#endif
  }

  // ---- overrides: elementwise ----------------------------------------------------------

  /// Every element of t set to value (thrust::fill_n).
  static void fill(tensor& t, float value) {
    if (t.size() == 0) return;
    detail::thrust_impl::guarded<System>("fill", [&] {
      with_policy(t.size(), [&](auto pol) { thrust::fill_n(pol, t.data(), t.size(), value); });
    });
  }

  /// out[i] = f(in0[i], ...): thrust::transform for one and two inputs, one for_each
  /// kernel for three and four.
  template <class F, class... In>
  static void transform(tensor& out, F f, const In&... in) {
    if (out.size() == 0) return;
    constexpr int arity = static_cast<int>(sizeof...(In));
    const float* p[] = {in.data()...};
    if constexpr (arity == 1) {
      detail::thrust_impl::guarded<System>("transform", [&] {
        with_policy(out.size(), [&](auto pol) {
          thrust::transform(pol, p[0], p[0] + out.size(), out.data(), f);
        });
      });
    } else if constexpr (arity == 2) {
      detail::thrust_impl::guarded<System>("transform", [&] {
        with_policy(out.size(), [&](auto pol) {
          thrust::transform(pol, p[0], p[0] + out.size(), p[arity - 1], out.data(), f);
        });
      });
    } else {
      launch(out.size(), out.size(),
             detail::thrust_impl::transform_kernel<arity, F>{
                 f, out.data(), p[0], p[arity > 1 ? 1 : 0], p[arity > 2 ? 2 : 0],
                 p[arity > 3 ? 3 : 0]});
    }
  }

  ///@{
  /// f(t0[i], t1[i], ...) for 1 to 5 tensors (float& for non-const ones): one kernel.
  template <class F, class T0>
  static void for_each(F f, T0& t0) {
    run_for_each<1>(t0.size(), f, t0.data(), no_ptr(), no_ptr(), no_ptr(), no_ptr());
  }
  template <class F, class T0, class T1>
  static void for_each(F f, T0& t0, T1& t1) {
    run_for_each<2>(t0.size(), f, t0.data(), t1.data(), no_ptr(), no_ptr(), no_ptr());
  }
  template <class F, class T0, class T1, class T2>
  static void for_each(F f, T0& t0, T1& t1, T2& t2) {
    run_for_each<3>(t0.size(), f, t0.data(), t1.data(), t2.data(), no_ptr(), no_ptr());
  }
  template <class F, class T0, class T1, class T2, class T3>
  static void for_each(F f, T0& t0, T1& t1, T2& t2, T3& t3) {
    run_for_each<4>(t0.size(), f, t0.data(), t1.data(), t2.data(), t3.data(), no_ptr());
  }
  template <class F, class T0, class T1, class T2, class T3, class T4>
  static void for_each(F f, T0& t0, T1& t1, T2& t2, T3& t3, T4& t4) {
    run_for_each<5>(t0.size(), f, t0.data(), t1.data(), t2.data(), t3.data(), t4.data());
  }
  ///@}

  /// out[r, c] = f(x[r, c], v[r]) for x (R, C) and v (R,): one kernel.
  template <class F>
  static void transform_rows(tensor& out, F f, const tensor& x, const tensor& v) {
    launch(x.size(), x.size(),
           detail::thrust_impl::broadcast_kernel<true, F>{f, out.data(), x.data(), v.data(),
                                                          x.shape().cols()});
  }

  /// out[r, c] = f(x[r, c], v[c]) for x (R, C) and v (C,): one kernel.
  template <class F>
  static void transform_cols(tensor& out, F f, const tensor& x, const tensor& v) {
    launch(x.size(), x.size(),
           detail::thrust_impl::broadcast_kernel<false, F>{f, out.data(), x.data(), v.data(),
                                                           x.shape().cols()});
  }

  // ---- overrides: row reductions (segmented reductions over row keys) -----------------

  /// out[r] = Σ_c x[r, c] for x (R, C), a reduce_by_key over row keys; 0 for C = 0.
  static void row_sum(const tensor& x, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    const float* xp = x.data();
    reduce_rows(rows, cols, xp, detail::thrust_impl::plus_f{}, 0.0f, out.data());
  }

  /// out[r] = max_c x[r, c] for x (R, C), NaN propagating; -inf for C = 0.
  static void row_max(const tensor& x, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    reduce_rows(rows, cols, x.data(), detail::thrust_impl::max_nan{},
                -std::numeric_limits<float>::infinity(), out.data());
  }

  /// m + log Σ e^(x - m), m the row max; NaN and ±inf rows give m.
  static void row_logsumexp(const tensor& x, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    if (rows == 0) return;
    row_max(x, out);
    if (cols == 0) return;  // -inf, the max of an empty row
    tensor sums(rlhf::shape{rows});
    reduce_rows(rows, cols,
                thrust::make_transform_iterator(
                    thrust::counting_iterator<index_t>(0),
                    detail::thrust_impl::exp_shifted{x.data(), out.data(), cols}),
                detail::thrust_impl::plus_f{}, 0.0f, sums.data());
    launch(rows, rows, detail::thrust_impl::finish_logsumexp{out.data(), sums.data()});
  }

  /// out[r] = Σ_c m·x / Σ_c m over x and mask (R, C), as ops::row_masked_mean.
  static void row_masked_mean(const tensor& x, const tensor& mask, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    if (rows == 0) return;
    const thrust::counting_iterator<index_t> idx(0);
    tensor den(rlhf::shape{rows});
    reduce_rows(rows, cols,
                thrust::make_transform_iterator(
                    idx, detail::thrust_impl::masked_product{x.data(), mask.data()}),
                detail::thrust_impl::plus_f{}, 0.0f, out.data());
    reduce_rows(
        rows, cols,
        thrust::make_transform_iterator(idx, detail::thrust_impl::masked_weight{mask.data()}),
        detail::thrust_impl::plus_f{}, 0.0f, den.data());
    launch(rows, rows, detail::thrust_impl::finish_masked_mean{out.data(), den.data()});
  }

  /// Row max, e^(x - max) into out, row sums of out, out *= 1/sum. out may be x.
  static void softmax_rows(const tensor& x, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    if (rows == 0 || cols == 0) return;
    tensor stat(rlhf::shape{rows});
    row_max(x, stat);
    launch(x.size(), x.size(),
           detail::thrust_impl::softmax_exp{x.data(), stat.data(), out.data(), cols});
    reduce_rows(rows, cols, static_cast<const float*>(out.data()), detail::thrust_impl::plus_f{},
                0.0f, stat.data());
    launch(x.size(), x.size(), detail::thrust_impl::softmax_scale{out.data(), stat.data(), cols});
  }

  /// x - logsumexp(row). out may be x.
  static void log_softmax_rows(const tensor& x, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    if (rows == 0 || cols == 0) return;
    tensor lse(rlhf::shape{rows});
    row_logsumexp(x, lse);
    launch(x.size(), x.size(),
           detail::thrust_impl::log_softmax_shift{x.data(), lse.data(), out.data(), cols});
  }

  // ---- overrides: GEMM -----------------------------------------------------------------

  /// cuBLAS strided-batched SGEMM on CUDA; a row-parallel host kernel on CPP/OMP.
  /// Arguments are validated by ops::gemm_strided (batch, m, n >= 1 here).
  static void gemm(const gemm_desc& d, const tensor& a, const tensor& b, tensor& c) {
    if constexpr (traits::is_cuda) {
#if defined(__CUDACC__)
      if (d.k == 0) {
        launch(d.batch * d.m * d.n, d.batch * d.m * d.n,
               detail::thrust_impl::gemm_scale_c{c.data(), d.c, d.m, d.n, d.beta});
        return;
      }
      detail::thrust_impl::cublas_gemm(d, a.data(), b.data(), c.data());
#endif
    } else {
      launch(d.batch * d.m, d.batch * d.m * d.n * std::max<index_t>(d.k, 1),
             detail::thrust_impl::host_gemm_row{d, a.data(), b.data(), c.data()});
    }
  }

  // ---- overrides: scan -----------------------------------------------------------------

  /// y[r, t] = b[r, t] + a[r, t]·y[r, t+1] as one inclusive_scan_by_key over the reversed
  /// tensor (keys: rows) of the affine maps (a, b) under composition: O(log T) depth per
  /// row on CUDA instead of a serial walk. y may be a or b.
  static void reverse_linear_scan_rows(const tensor& a, const tensor& b, tensor& y) {
    const index_t n = a.size(), cols = a.shape().cols();
    if (n == 0 || cols == 0) return;
    using affine_vector = typename traits::template vector<detail::thrust_impl::affine>;
    affine_vector scanned = detail::thrust_impl::guarded<System>(
        "reverse_linear_scan_rows", [&] { return affine_vector(static_cast<std::size_t>(n)); });
    detail::thrust_impl::affine* sp = thrust::raw_pointer_cast(scanned.data());
    const thrust::counting_iterator<index_t> k(0);
    const auto keys = thrust::make_transform_iterator(
        k, detail::thrust_impl::reversed_row_of{n, cols});
    const auto steps = thrust::make_transform_iterator(
        k, detail::thrust_impl::load_affine_reversed{a.data(), b.data(), n});
    detail::thrust_impl::guarded<System>("reverse_linear_scan_rows", [&] {
      with_policy(n, [&](auto pol) {
        thrust::inclusive_scan_by_key(pol, keys, keys + n, steps, sp, thrust::equal_to<index_t>(),
                                      detail::thrust_impl::affine_compose{});
      });
    });
    launch(n, n, detail::thrust_impl::store_reversed{sp, y.data(), n});
  }

 private:
  /// f(i) for i in [0, n) with the policy for `work` elements of work.
  template <class F>
  static void launch(index_t n, index_t work, F f) {
    if (n <= 0) return;
    detail::thrust_impl::guarded<System>("parallel_for", [&] {
      with_policy(work, [&](auto pol) {
        thrust::for_each(pol, thrust::counting_iterator<index_t>(0),
                         thrust::counting_iterator<index_t>(n), f);
      });
    });
  }

  /// out[r] = op-reduction of values[r·cols .. (r+1)·cols) for r < rows; `empty` for
  /// rows of zero columns.
  template <class It, class Op>
  static void reduce_rows(index_t rows, index_t cols, It values, Op op, float empty,
                          float* out) {
    if (rows == 0) return;
    if (cols == 0) {
      launch(rows, rows, detail::thrust_impl::fill_value{out, empty});
      return;
    }
    const auto keys = thrust::make_transform_iterator(thrust::counting_iterator<index_t>(0),
                                                      detail::thrust_impl::row_of{cols});
    detail::thrust_impl::guarded<System>("row reduction", [&] {
      with_policy(rows * cols, [&](auto pol) {
        thrust::reduce_by_key(pol, keys, keys + rows * cols, values,
                              thrust::make_discard_iterator(), out,
                              thrust::equal_to<index_t>(), op);
      });
    });
  }

  static const float* no_ptr() { return nullptr; }

  template <int N, class F, class P0, class P1, class P2, class P3, class P4>
  static void run_for_each(index_t n, F f, P0 p0, P1 p1, P2 p2, P3 p3, P4 p4) {
    launch(n, n,
           detail::thrust_impl::for_each_kernel<N, F, P0, P1, P2, P3, P4>{f, p0, p1, p2, p3, p4});
  }

  static void copy_in(const void* src, void* dst, std::size_t bytes) {
    if (bytes == 0) return;
    if constexpr (traits::is_cuda) {
#if defined(__CUDACC__)
      detail::thrust_impl::check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice),
                                      "cudaMemcpy (host to device)");
#endif
    } else {
      std::memcpy(dst, src, bytes);
    }
  }

  static void copy_out(const void* src, void* dst, std::size_t bytes) {
    if (bytes == 0) return;
    if constexpr (traits::is_cuda) {
#if defined(__CUDACC__)
      detail::thrust_impl::check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost),
                                      "cudaMemcpy (device to host)");
#endif
    } else {
      std::memcpy(dst, src, bytes);
    }
  }
};

///@{
/// The three systems by name.
using thrust_cpp_backend = thrust_backend<thrust::system::cpp::tag>;
using thrust_omp_backend = thrust_backend<thrust::system::omp::tag>;
#if defined(__CUDACC__)
using thrust_cuda_backend = thrust_backend<thrust::system::cuda::tag>;
#endif
///@}

// Every override above is the one the ops call, on each system.
RLHF_BACKEND_OVERRIDES(thrust_cpp_backend, fill, transform, for_each, transform_rows,
                       transform_cols, row_sum, row_max, row_logsumexp, row_masked_mean,
                       softmax_rows, log_softmax_rows, gemm, reverse_linear_scan_rows);
RLHF_BACKEND_OVERRIDES(thrust_omp_backend, fill, transform, for_each, transform_rows,
                       transform_cols, row_sum, row_max, row_logsumexp, row_masked_mean,
                       softmax_rows, log_softmax_rows, gemm, reverse_linear_scan_rows);
#if defined(__CUDACC__)
RLHF_BACKEND_OVERRIDES(thrust_cuda_backend, fill, transform, for_each, transform_rows,
                       transform_cols, row_sum, row_max, row_logsumexp, row_masked_mean,
                       softmax_rows, log_softmax_rows, gemm, reverse_linear_scan_rows);
#endif

}  // namespace v0
}  // namespace rlhf
