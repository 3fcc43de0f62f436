// The conformance kit on the Eigen backend.
#include <rlhf/backends/eigen.hpp>
#include <rlhf/testing/conformance.hpp>

TYPE_TO_STRING_AS("eigen", rlhf::eigen_backend);
RLHF_CONFORMANCE_SUITE(rlhf::eigen_backend);
