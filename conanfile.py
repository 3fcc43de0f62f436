# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Conan 2 recipe for rlhf++ (header-only).

The package is made by our own CMake install, so consumers get the real rlhfppConfig.cmake
(find_package(rlhfpp CONFIG COMPONENTS eigen ...)) and Conan generates no config of its own.

deps_from="system" (default): Eigen / xtensor / Thrust / CUDA are the machine's, found by CMake when
the package is made and again by rlhfppConfig.cmake when it is used; no requires, so no
remote is ever contacted. deps_from="conan": Eigen and xtensor come from Conan requires
(Thrust, for the host systems of the Thrust backend, and the CUDA toolkit always come from
the system: Debian's libthrust-dev, or the toolkit's CCCL under nvcc).
"""
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import load


class RlhfppConan(ConanFile):
    name = "rlhfpp"
    description = "Header-only C++20 library of LLM alignment algorithms (RLHF, DPO family, GRPO)"
    topics = ("rlhf", "dpo", "grpo", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    # with_*: provide that component (in "system" mode: when CMake finds its dependency).
    options = {
        "with_eigen": [True, False],
        "with_xtensor": [True, False],
        "with_thrust": [True, False],
        "with_cuda": [True, False],
        "deps_from": ["system", "conan"],
    }
    default_options = {
        "with_eigen": True,
        "with_xtensor": True,
        "with_thrust": True,
        "with_cuda": True,
        "deps_from": "system",
    }
    exports_sources = "include/*", "cmake/*", "CMakeLists.txt"
    no_copy_source = True

    def set_version(self):
        # include/rlhf/version.hpp is the single place the version is written.
        text = load(self, os.path.join(self.recipe_folder, "include", "rlhf", "version.hpp"))
        parts = [re.search(rf"^#define RLHF_VERSION_{p} (\d+)$", text, re.M).group(1)
                 for p in ("MAJOR", "MINOR", "PATCH")]
        self.version = ".".join(parts)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        if self.options.deps_from == "conan":
            # Our headers include theirs, so consumers need their include paths too.
            if self.options.with_eigen:
                self.requires("eigen/[>=3.4 <4]", transitive_headers=True)
            if self.options.with_xtensor:
                self.requires("xtensor/[>=0.24 <0.26]", transitive_headers=True)

    def validate(self):
        check_min_cppstd(self, 20)

    def package_id(self):
        # Header-only: one package for every configuration.
        self.info.clear()

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["RLHF_BUILD_TESTS"] = False
        tc.cache_variables["RLHF_BUILD_BENCHMARKS"] = False
        tc.cache_variables["RLHF_BUILD_EXAMPLES"] = False
        tc.cache_variables["RLHF_INSTALL"] = True
        tc.cache_variables["RLHF_WITH_EIGEN"] = bool(self.options.with_eigen)
        tc.cache_variables["RLHF_WITH_XTENSOR"] = bool(self.options.with_xtensor)
        tc.cache_variables["RLHF_WITH_THRUST"] = bool(self.options.with_thrust)
        tc.cache_variables["RLHF_WITH_CUDA"] = bool(self.options.with_cuda)
        tc.generate()
        CMakeDeps(self).generate()  # generates nothing in "system" mode (no requires)

    def build(self):
        CMake(self).configure()  # nothing to compile; configure prepares the install

    def package(self):
        CMake(self).install()

    def package_info(self):
        # Use our installed rlhfppConfig.cmake, found through CMAKE_PREFIX_PATH (builddirs).
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs = [os.path.join("share", "cmake", "rlhfpp")]
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
