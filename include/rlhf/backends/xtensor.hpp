// The xtensor CPU backend (target rlhf::xtensor): include this to use rlhf::xtensor_backend.
#pragma once

#include "rlhf/backends/xtensor/xtensor_backend.hpp"
