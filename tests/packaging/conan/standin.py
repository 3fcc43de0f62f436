# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for a ConanCenter recipe, for the offline check of rlhfpp's deps_from="conan".

  conan export standin.py --name xtensor --version 0.25.0

Only the name, version, package type and requires are those of ConanCenter's recipe
(conan-center-index, recipes/<name>/all/conanfile.py, default options); nothing is
downloaded or packaged, so it serves `conan graph info`, not a build.
"""
from conan import ConanFile

# ConanCenter's requires for each stand-in (xtensor: xtl and nlohmann_json always, xsimd by
# its default option xsimd=True; the others require nothing with their default options).
REQUIRES = {
    "eigen/3.4.0": [],
    "nlohmann_json/3.11.3": [],
    "nlohmann_json/3.12.0": [],
    "xsimd/13.0.0": [],
    "xsimd/13.2.0": [],
    "xtl/0.7.5": [],
    "xtl/0.8.0": [],
    "xtensor/0.24.7": ["xtl/0.7.5", "nlohmann_json/3.11.3", "xsimd/13.0.0"],
    "xtensor/0.25.0": ["xtl/0.7.5", "nlohmann_json/3.11.3", "xsimd/13.0.0"],
    "xtensor/0.26.0": ["xtl/0.8.0", "nlohmann_json/3.11.3", "xsimd/13.2.0"],
}


class StandIn(ConanFile):
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"

    def requirements(self):
        for ref in REQUIRES[f"{self.name}/{self.version}"]:
            self.requires(ref)

    def package_id(self):
        self.info.clear()
