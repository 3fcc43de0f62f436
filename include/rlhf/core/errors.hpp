// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The exception hierarchy of rlhf++. Every public entry point reports bad input with one
// of these; the message names the function, the argument, what was expected and what
// was found, e.g. "row_sum: out has shape (3), expected (4) (one value per row of x)".
#pragma once

#include "rlhf/core/config.hpp"  // first: the C++20 check

#include <stdexcept>
#include <string>

namespace rlhf {
inline namespace v0 {

/// Base of every exception thrown by rlhf++.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Tensor shapes or ranks that do not fit together.
class shape_error : public error {
 public:
  using error::error;
};

/// A hyper-parameter or option outside its domain (beta <= 0, epsilon >= 0.5, ...).
class config_error : public error {
 public:
  using error::error;
};

/// Values that are not acceptable: NaN/Inf in inputs, all-zero masks where undefined,
/// token ids out of range, malformed records.
class data_error : public error {
 public:
  using error::error;
};

/// Files: missing, truncated, corrupt, or not writable.
class io_error : public error {
 public:
  using error::error;
};

/// Failures reported by the compute backend (CUDA, cuBLAS, allocation).
class backend_error : public error {
 public:
  using error::error;
};

}  // namespace v0
}  // namespace rlhf
