#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# Shows that the tests can fail: applies one deliberate bug at a time to the library,
# rebuilds the test binary that should notice, runs it, and expects it to fail.
# Usage: tools/mutation_check.sh [--sample] [build dir, default build/default]
#   every mutant: ~10 minutes on 2 cores; --sample: the few marked "sample" below, one per
#   area (losses, rl, model, core), ~5 minutes, what .ci/run runs.
# It edits the headers in place (restoring each one): run it in a checkout nobody else is
# editing (.ci/run runs it in its own copy).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sample_only=0
if [ "${1:-}" = "--sample" ]; then
  sample_only=1
  shift
fi
build=${1:-$root/build/default}
cd "$root"

eigen=include/rlhf/backends/eigen/eigen_backend.hpp
# file | perl substitution | test binary that must fail (binary@source: the cases of that
# source in a binary built from several, tests/CMakeLists.txt) | "sample" for --sample
mutations=(
  "$eigen|s/return m \+ std::log\(\(row - m\)\.exp\(\)\.sum\(\)\);/return std::log(row.exp().sum());/|test_conformance_eigen"
  "$eigen|s/if \(d\.beta != 1\.0f\) C \*= d\.beta;/(void)0;/|test_conformance_eigen"
  "$eigen|s/\(m != 0\.0f\)\.select\(m \* row, 0\.0f\)\.sum\(\)/(m * row).sum()/|test_conformance_eigen"
  "$eigen|s/maxCoeff<Eigen::PropagateNaN>/maxCoeff<Eigen::PropagateNumbers>/|test_conformance_eigen"
  "$eigen|s/product\(A\.transpose\(\), B\);/product(A, B.transpose());/|test_conformance_eigen"
  "$eigen|s/d\.trans_b \? CblasTrans : CblasNoTrans/CblasNoTrans/|test_conformance_eigen"
  "$eigen|s/static_cast<blasint_t>\(d\.c\.ld\)\)/static_cast<blasint_t>(d.n))/|test_conformance_eigen"
  "$eigen|s/const index_t w = std::min\(block, cols - c0\);/const index_t w = std::min(block - 1, cols - c0);/|test_conformance_eigen"
  "include/rlhf/ops/scan.hpp|s/carry = bp\[i\] \+ ap\[i\] \* carry;/carry = bp[i] + ap[i] * carry * 0.5f;/|test_generic_ops"
  "include/rlhf/ops/gather.hpp|s/\(j >= 0 && j < cols\)/(j >= 0 \&\& j <= cols)/|test_generic_ops"
  "include/rlhf/ops/detail/elementwise_generic.hpp|s/vp\[i \/ cols\]/vp[i % cols]/|test_generic_ops"
  "include/rlhf/ops/detail/row_kernels.hpp|s/if \(v != v\) return v;/if (v != v) continue;/|test_generic_ops"
  "include/rlhf/ops/random.hpp|s/blocks_for_uniform\(static_cast/blocks_for_normal(static_cast/|test_generic_ops"
  "include/rlhf/core/philox.hpp|s/0xCD9E8D57u/0xCD9E8D58u/|test_core|sample"
  # Losses, RL math and the model: a wrong gradient branch, λ dropped from GAE's carry, the
  # k3 KL gradient's sign, AdamW's second-moment bias correction with β1, LayerNorm's
  # backward without centring.
  "include/rlhf/losses/kto.hpp|s/dl = beta \* math::sigmoid\(v\) \* l;/dl = beta * math::sigmoid(-v) * l;/|test_algorithms@test_kto|sample"
  "include/rlhf/rl/gae.hpp|s/const float coef_j = real \? gl : 1\.0f;/const float coef_j = real ? gamma : 1.0f;/|test_algorithms@test_gae|sample"
  "include/rlhf/rl/kl.hpp|s/case kl_estimator::k3: return -std::expm1\(-d\);/case kl_estimator::k3: return std::expm1(-d);/|test_algorithms@test_kl"
  "include/rlhf/model/optim.hpp|s/const double bc2 = 1\.0 - std::pow\(b2, t\);/const double bc2 = 1.0 - std::pow(b1, t);/|test_model@test_optim|sample"
  "include/rlhf/model/layers.hpp|s/gx_mean \+= gn \* \(xr\[c\] - m\) \* s;/gx_mean += gn * xr[c] * s;/|test_model@test_layers"
  "include/rlhf/model/layers.hpp|s/orow\[c\] = xr\[c\] \+ br\[c\];/orow[c] = br[c];/|test_model@test_layers"
  "include/rlhf/model/layers.hpp|s/s\[j\] \+= v;/s[j] += gr[j];/|test_model@test_layers"
)

survived=0
targets=()
for m in "${mutations[@]}"; do
  IFS='|' read -r file sub target sample <<<"$m"
  source=""  # binary@source: the cases of one source of a grouped binary
  if [[ "$target" == *@* ]]; then
    source=${target#*@}
    target=${target%@*}
  fi
  if [ "$sample_only" = 1 ] && [ "$sample" != sample ]; then
    continue
  fi
  targets+=("$target")
  cp "$file" "$file.orig"
  perl -0pi -e "$sub" "$file"
  if cmp -s "$file" "$file.orig"; then
    echo "NOT APPLIED  $file: $sub"
    survived=1
  elif ! cmake --build "$build" --target "$target" >/dev/null 2>&1; then
    echo "caught (build)  $file: $sub"
  elif out=$("$build/tests/$target" ${source:+"--source-file=*/$source.cpp"} 2>&1); then
    echo "SURVIVED     $file: $sub"
    survived=1
  else
    failed=$(grep -o "TEST CASE:  .*" <<<"$out" | sort -u | sed 's/TEST CASE:  //' | paste -sd ';' -)
    echo "caught       $file: $sub -> $failed"
  fi
  mv "$file.orig" "$file"
  touch "$file"  # newer than the mutated build, so the next build recompiles
done
if [ "$sample_only" = 1 ]; then
  cmake --build "$build" --target "${targets[@]}" >/dev/null 2>&1  # the unmutated binaries
else
  cmake --build "$build" >/dev/null 2>&1
fi
exit $survived
