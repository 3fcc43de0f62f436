// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The Eigen CPU backend (target rlhf::eigen): include this to use rlhf::eigen_backend.
#pragma once

#include "rlhf/backends/eigen/eigen_backend.hpp"
