# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Conan 2 recipe for rlhf++ (header-only).

The package is made by our own CMake install, so consumers get the real rlhfppConfig.cmake
(find_package(rlhfpp CONFIG COMPONENTS eigen ...)) and Conan generates no config of its own.

No component options. The package always holds every header and the CMake definition of
every component (rlhf::eigen, rlhf::xtensor, rlhf::thrust, rlhf::cuda, rlhf::model,
rlhf::http, rlhf::mpi, rlhf::nccl); which of them a consumer can use is decided by
rlhfppConfig.cmake when the consumer configures, where it looks for that component's
dependencies (Eigen, OpenMP, a CBLAS; xtensor, xsimd; Thrust; the CUDA toolkit;
nlohmann_json; libcurl; MPI; NCCL). Nothing is compiled, so the package is the same
for every os, compiler, build type and option value: package_id() clears everything and
there is one package id.

deps_from="system" (default): no requires; the dependencies are the machine's, found by
rlhfppConfig.cmake at use time, so no remote is ever contacted.
deps_from="conan": Eigen, xtensor (with its xtl and xsimd) and nlohmann_json (rlhf::model,
the checkpoint headers) come from Conan requires with transitive_headers, so the consumer's
CMakeDeps makes their configs and rlhfppConfig.cmake finds them. Thrust and the CUDA
toolkit always come from the system (Debian's libthrust-dev, or the toolkit's CCCL under
nvcc), and so does libcurl (rlhf::http, the optional chat-completions client; Debian's
libcurl4-openssl-dev): a Conan libcurl would bring OpenSSL and zlib builds into every
consumer's graph for a component few of them use. MPI (rlhf::mpi, the data-parallel
transport; Debian's libopenmpi-dev and openmpi-bin) and NCCL (rlhf::nccl; the CUDA
toolkit's, or Debian's libnccl-dev) are system dependencies too: an MPI must match the
cluster's launcher and network, which only the machine knows. The option changes only the dependency graph, not a byte of the package, so the one
package id serves both values honestly.

C++20: the headers need it. The CMake targets carry cxx_std_20, so a CMake consumer is
compiled as C++20 whatever compiler.cppstd the profile says (a freshly detected profile
says gnu17 with g++ 12). A profile below 20 is therefore accepted with a warning; other
build systems must be given -s compiler.cppstd=20 (or their own C++20 flag).

tests/packaging (ctest conan_create, conan_deps_resolve) checks, offline: `conan create .`
with a freshly detected profile, test_package compiled as C++20, exactly one package id and
no option but deps_from; and that the deps_from="conan" requires resolve against stand-in
recipes named, versioned and requiring exactly like ConanCenter's. That proves the names and
ranges resolve (and agree with xtensor's own pinned requires); it does not test the real
ConanCenter recipes' contents (their headers, their CMake target names), which needs the
network.
"""
import os
import re

from conan import ConanFile
from conan.tools.build import valid_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load

required_conan_version = ">=2.0"


class RlhfppConan(ConanFile):
    name = "rlhfpp"
    description = "Header-only C++20 library of LLM alignment algorithms (RLHF, DPO family, GRPO)"
    license = "Apache-2.0"
    author = "The rlhf++ authors"
    topics = ("rlhf", "dpo", "grpo", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    # Where the dependencies come from; the package contents are the same for both.
    options = {"deps_from": ["system", "conan"]}
    default_options = {"deps_from": "system"}
    exports_sources = "include/*", "cmake/*", "share/*", "CMakeLists.txt", "LICENSE"
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
            # xtensor before nlohmann_json: xtensor pins an exact nlohmann_json, which our
            # range then accepts (the other order could pick a newer one and conflict).
            self.requires("eigen/[>=3.4 <4]", transitive_headers=True)
            self.requires("xtensor/[>=0.24 <0.26]", transitive_headers=True)
            self.requires("nlohmann_json/[>=3.11 <4]", transitive_headers=True)

    def validate(self):
        cppstd = self.settings.get_safe("compiler.cppstd")
        if cppstd and not valid_min_cppstd(self, 20):
            self.output.warning(
                f"compiler.cppstd={cppstd}, but rlhf++ needs C++20. CMake consumers are "
                "compiled as C++20 anyway (the rlhf:: targets carry cxx_std_20); with any "
                "other build system pass -s compiler.cppstd=20 (or gnu20), or add its C++20 "
                "flag yourself.")

    def package_id(self):
        # Header-only, and the same files whatever the settings and deps_from (see above).
        self.info.clear()

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["RLHF_BUILD_TESTS"] = False
        tc.cache_variables["RLHF_BUILD_BENCHMARKS"] = False
        tc.cache_variables["RLHF_BUILD_EXAMPLES"] = False
        tc.cache_variables["RLHF_INSTALL"] = True
        # The API reference is not packaged (and docs/ is not exported).
        tc.cache_variables["CMAKE_DISABLE_FIND_PACKAGE_Doxygen"] = True
        tc.generate()
        CMakeDeps(self).generate()  # generates nothing in "system" mode (no requires)

    def build(self):
        CMake(self).configure()  # nothing to compile; configure prepares the install

    def package(self):
        copy(self, "LICENSE", src=self.source_folder,
             dst=os.path.join(self.package_folder, "licenses"))
        CMake(self).install()

    def package_info(self):
        # Use our installed rlhfppConfig.cmake, found through CMAKE_PREFIX_PATH (builddirs).
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs = [os.path.join("share", "cmake", "rlhfpp")]
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
