// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Umbrella header: the core and every backend-generic op. Backends are included
// separately (rlhf/backends/eigen.hpp, ...) because each brings its own dependency.
#pragma once

#include "rlhf/core/config.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/functors.hpp"
#include "rlhf/core/host_tensor.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/gather.hpp"
#include "rlhf/ops/gemm.hpp"
#include "rlhf/ops/random.hpp"
#include "rlhf/ops/reductions.hpp"
#include "rlhf/ops/scan.hpp"
#include "rlhf/ops/softmax.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/version.hpp"
