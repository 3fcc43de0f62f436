// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Which library computes rlhf::eigen_backend's GEMMs: oneDNN, a CBLAS (OpenBLAS) or Eigen's
// own kernel. The choice is made at run time among those the build linked (the target
// rlhf::eigen defines RLHF_EIGEN_USE_ONEDNN and RLHF_EIGEN_USE_CBLAS when CMake found
// them), so one binary can run its suites with each of them.
//
//   rlhf::eigen_gemm_provider()            the provider in use
//   rlhf::set_eigen_gemm_provider(p)       choose one (config_error when not linked)
//   RLHF_GEMM_PROVIDER=onednn|cblas|eigen  the choice from the environment (read once,
//                                          at the first GEMM; "openblas" = "cblas")
//
// The default is the fastest linked one as measured on the GPT's shapes (docs/backends.md):
// oneDNN, then the CBLAS, then Eigen. Every provider gives results that do not depend on
// the thread count: OpenBLAS and Eigen split only rows and columns of C, and oneDNN is called
// single-threaded on tiles of C chosen from the shape alone
// (detail::openmp::run_gemm_tiles).
#pragma once

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/errors.hpp"

namespace rlhf {
inline namespace v0 {

/// A library that computes eigen_backend::gemm.
enum class gemm_provider {
  eigen,   ///< Eigen's own GEMM kernel (always available)
  cblas,   ///< cblas_sgemm of the CBLAS the build linked (OpenBLAS)
  onednn,  ///< oneDNN's dnnl_sgemm (Debian: libdnnl-dev)
};

template <>
struct enum_names<gemm_provider> {
  static constexpr std::array<enum_name<gemm_provider>, 3> values{{
      {gemm_provider::eigen, "eigen"},
      {gemm_provider::cblas, "cblas"},
      {gemm_provider::onednn, "onednn"},
  }};
  static constexpr std::array<enum_name<gemm_provider>, 2> aliases{{
      {gemm_provider::cblas, "openblas"},
      {gemm_provider::onednn, "dnnl"},
  }};
};
static_assert(enum_table_covers<gemm_provider>(3));

/// True when this build can run GEMMs through `p`.
[[nodiscard]] constexpr bool gemm_provider_available(gemm_provider p) noexcept {
  switch (p) {
    case gemm_provider::eigen: return true;
    case gemm_provider::cblas:
#if defined(RLHF_EIGEN_USE_CBLAS)
      return true;
#else
      return false;
#endif
    case gemm_provider::onednn:
#if defined(RLHF_EIGEN_USE_ONEDNN)
      return true;
#else
      return false;
#endif
  }
  return false;
}

/// The provider used when neither the environment nor set_eigen_gemm_provider chose one:
/// oneDNN when linked, else the CBLAS when linked, else Eigen.
[[nodiscard]] constexpr gemm_provider default_gemm_provider() noexcept {
  if (gemm_provider_available(gemm_provider::onednn)) return gemm_provider::onednn;
  if (gemm_provider_available(gemm_provider::cblas)) return gemm_provider::cblas;
  return gemm_provider::eigen;
}

namespace detail {

/// The provider chosen so far; -1 until the environment has been read or a set call made.
inline std::atomic<int>& chosen_gemm_provider() {
  static std::atomic<int> chosen{-1};
  return chosen;
}

/// `p` if this build has it, else a config_error naming `source` and the linked providers.
inline gemm_provider require_gemm_provider(gemm_provider p, std::string_view source) {
  if (gemm_provider_available(p)) return p;
  std::string linked;
  for (const auto& entry : enum_names<gemm_provider>::values) {
    if (!gemm_provider_available(entry.value)) continue;
    if (!linked.empty()) linked += ", ";
    linked += entry.name;
  }
  throw config_error(std::string(source) + ": the GEMM provider '" + std::string(to_string(p)) +
                     "' is not linked into this build (linked: " + linked + ")");
}

/// The provider named by RLHF_GEMM_PROVIDER, or the default when it is unset or empty.
inline gemm_provider gemm_provider_from_environment() {
  const char* text = std::getenv("RLHF_GEMM_PROVIDER");  // NOLINT(concurrency-mt-unsafe)
  if (text == nullptr || *text == '\0') return default_gemm_provider();
  const auto p = enum_from_string<gemm_provider>(text, "environment variable RLHF_GEMM_PROVIDER",
                                                 "GEMM provider");
  return require_gemm_provider(p, "environment variable RLHF_GEMM_PROVIDER");
}

}  // namespace detail

/// The provider of eigen_backend's GEMMs: the last set_eigen_gemm_provider, else
/// RLHF_GEMM_PROVIDER (config_error when it names no linked provider), else the default.
[[nodiscard]] inline gemm_provider eigen_gemm_provider() {
  int p = detail::chosen_gemm_provider().load(std::memory_order_relaxed);
  if (p < 0) {
    int unset = -1;
    p = static_cast<int>(detail::gemm_provider_from_environment());
    if (!detail::chosen_gemm_provider().compare_exchange_strong(unset, p)) p = unset;
  }
  return static_cast<gemm_provider>(p);
}

/// Runs eigen_backend's GEMMs through `p` from now on (all threads); config_error when this
/// build did not link it. Not to be called while another thread runs a GEMM.
inline void set_eigen_gemm_provider(gemm_provider p) {
  check_enum("set_eigen_gemm_provider", "provider", p);
  detail::chosen_gemm_provider().store(
      static_cast<int>(detail::require_gemm_provider(p, "set_eigen_gemm_provider")),
      std::memory_order_relaxed);
}

}  // namespace v0
}  // namespace rlhf
