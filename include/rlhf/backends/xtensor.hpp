// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The xtensor CPU backend (target rlhf::xtensor): include this to use rlhf::xtensor_backend.
#pragma once

#include "rlhf/backends/xtensor/xtensor_backend.hpp"
