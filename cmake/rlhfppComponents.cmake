# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
#
# The components of rlhf++ and how each finds its dependencies. One definition, used twice:
#   - by the source tree's CMakeLists.txt (a build or add_subdirectory), and
#   - by the installed rlhfppConfig.cmake when a consumer configures, so that every
#     dependency is found on the consumer's machine, with the consumer's compiler, and
#     nothing found at install time (a library path, an include directory) is baked in.
#
#   rlhf::eigen    Eigen >= 3.4; OpenMP when found; a CBLAS for GEMM when RLHF_EIGEN_BLAS;
#                  oneDNN for GEMM when RLHF_EIGEN_ONEDNN and the OpenMP runtime is libgomp
#   rlhf::xtensor  xtensor (+ xsimd when found); OpenMP when found; the same CBLAS when found
#   rlhf::thrust   Thrust >= 1.17 headers and OpenMP (the CPP/OMP host systems)
#   rlhf::cuda     the CUDA toolkit's cudart and cuBLAS, C++20 for CUDA sources (nvcc)
#   rlhf::model    nlohmann-json, for the checkpoint and config readers of the bundled GPT
#   rlhf::http     libcurl (FindCURL) and nlohmann-json, for the OpenAI-compatible
#                  chat-completions client of rlhf/cai/http_chat.hpp; Threads when found
#   rlhf::mpi      MPI's C API (FindMPI's MPI::MPI_CXX, without the MPI-2 C++ bindings), for
#                  the data-parallel transport of rlhf/dist/mpi.hpp
#   rlhf::nccl     NCCL (nccl.h and libnccl beside the CUDA toolkit, or on the default
#                  paths), the CUDA runtime and cuBLAS, and MPI as for rlhf::mpi, for the
#                  device-memory transport of rlhf/dist/nccl.hpp
#
# CBLAS choice (rlhf::eigen and rlhf::xtensor): Debian's OpenMP build of OpenBLAS
# (libopenblas-openmp-dev; Fedora's libopenblaso) when the compiler's OpenMP runtime is GNU
# libgomp, so that OpenBLAS's threads and the backends' parallel loops are one pool;
# with another runtime (e.g. clang's libomp: one process must not load two OpenMP runtimes)
# Debian's pthreads build of OpenBLAS; otherwise whichever BLAS FindBLAS finds, with
# <cblas.h> beside it. Set RLHF_EIGEN_BLAS=OFF (before
# find_package or add_subdirectory) to keep Eigen's own GEMM, and RLHF_BLAS_OPENMP=OFF to
# refuse the OpenMP build. GEMM through oneDNN (Debian: libdnnl-dev) as well when it is found
# and the OpenMP runtime is libgomp; RLHF_EIGEN_ONEDNN=OFF leaves it out. With both linked,
# rlhf/backends/eigen/gemm_provider.hpp chooses at run time (oneDNN by default, the faster
# on the GPT's shapes). Every search here is NO_CACHE: nothing is left in the consumer's
# cache but what CMake's own Find modules write.

include_guard(GLOBAL)

# _rlhfpp_new_target(<target> <imported>): an INTERFACE target, IMPORTED in a package config.
function(_rlhfpp_new_target target imported)
  if(imported)
    add_library(${target} INTERFACE IMPORTED)
  else()
    add_library(${target} INTERFACE)
  endif()
endfunction()

# _rlhfpp_find_cblas(<out_link> <out_openmp>): the CBLAS to link (a full path or BLAS::BLAS;
# empty when none) and whether it is OpenMP-threaded.
function(_rlhfpp_find_cblas out_link out_openmp)
  set(link "")
  set(openmp OFF)
  find_path(_rlhfpp_cblas_h cblas.h PATH_SUFFIXES openblas NO_CACHE)
  if(NOT _rlhfpp_cblas_h)
    set(${out_link} "" PARENT_SCOPE)
    set(${out_openmp} OFF PARENT_SCOPE)
    return()
  endif()
  find_package(OpenMP QUIET COMPONENTS CXX)
  if((NOT DEFINED RLHF_BLAS_OPENMP OR RLHF_BLAS_OPENMP) AND TARGET OpenMP::OpenMP_CXX
     AND "gomp" IN_LIST OpenMP_CXX_LIB_NAMES)
    find_library(_rlhfpp_openblas_omp NAMES openblas
                 PATHS "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp"
                 NO_DEFAULT_PATH NO_CACHE)
    if(NOT _rlhfpp_openblas_omp)
      find_library(_rlhfpp_openblas_omp NAMES openblaso NO_CACHE)
    endif()
    if(_rlhfpp_openblas_omp)
      set(link "${_rlhfpp_openblas_omp}")
      set(openmp ON)
    endif()
  endif()
  if(NOT link AND TARGET OpenMP::OpenMP_CXX AND NOT "gomp" IN_LIST OpenMP_CXX_LIB_NAMES)
    # Another OpenMP runtime (clang's libomp): Debian's libopenblas.so.0 may be switched to
    # the libgomp build by update-alternatives, so ask for the pthreads build by its path.
    find_library(_rlhfpp_openblas_pthread NAMES openblas libopenblas.so.0
                 PATHS "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread"
                 NO_DEFAULT_PATH NO_CACHE)
    if(_rlhfpp_openblas_pthread)
      set(link "${_rlhfpp_openblas_pthread}")
    endif()
  endif()
  if(NOT link)
    find_package(BLAS QUIET)
    if(TARGET BLAS::BLAS)
      set(link BLAS::BLAS)
    endif()
  endif()
  set(${out_link} "${link}" PARENT_SCOPE)
  set(${out_openmp} ${openmp} PARENT_SCOPE)
endfunction()

# _rlhfpp_link_cblas(<target> <define> <link> <openmp>): GEMM of <target> through <link>.
function(_rlhfpp_link_cblas target define link openmp)
  set_property(TARGET ${target} APPEND PROPERTY INTERFACE_LINK_LIBRARIES "${link}")
  set_property(TARGET ${target} APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS ${define})
  if(openmp)
    set_property(TARGET ${target} APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS RLHF_CBLAS_OPENMP)
  endif()
endfunction()

# _rlhfpp_find_onednn(<out_lib> <out_include>): oneDNN's library (a full path) and the folder
# holding oneapi/dnnl/dnnl.h; empty when none, or when the OpenMP runtime is not GNU libgomp
# (Debian's and the usual oneDNN builds use GNU OpenMP; one process must not load two
# OpenMP runtimes).
function(_rlhfpp_find_onednn out_lib out_include)
  set(${out_lib} "" PARENT_SCOPE)
  set(${out_include} "" PARENT_SCOPE)
  find_package(OpenMP QUIET COMPONENTS CXX)
  if(NOT TARGET OpenMP::OpenMP_CXX OR NOT "gomp" IN_LIST OpenMP_CXX_LIB_NAMES)
    return()
  endif()
  find_path(_rlhfpp_dnnl_h oneapi/dnnl/dnnl.h NO_CACHE)
  find_library(_rlhfpp_dnnl_lib NAMES dnnl NO_CACHE)
  if(_rlhfpp_dnnl_h AND _rlhfpp_dnnl_lib)
    set(${out_lib} "${_rlhfpp_dnnl_lib}" PARENT_SCOPE)
    set(${out_include} "${_rlhfpp_dnnl_h}" PARENT_SCOPE)
  endif()
endfunction()

# _rlhfpp_find_mpi(): FindMPI for C++ without the deprecated MPI-2 C++ bindings (the headers
# use the C API only): MPI::MPI_CXX links the MPI library alone (Open MPI: not libmpi_cxx).
macro(_rlhfpp_find_mpi)
  if(NOT TARGET MPI::MPI_CXX)
    set(MPI_CXX_SKIP_MPICXX TRUE)
    find_package(MPI QUIET COMPONENTS CXX)
  endif()
endmacro()

# rlhfpp_add_component(<component> <target> <core> <imported> <out_found>)
#   Creates <target> (an INTERFACE target linking <core>) when the component's dependencies
#   are found, and sets <out_found> to TRUE; otherwise <out_found> is FALSE and
#   <out_found>_REASON says what is missing. Details of what was chosen are left in
#   RLHF_<COMPONENT>_* variables of the caller's scope (for status messages and tools).
function(rlhfpp_add_component component target core imported out_found)
  set(found FALSE)
  set(reason "")
  set(props "")
  if(component STREQUAL "eigen")
    find_package(Eigen3 3.4 CONFIG QUIET)
    if(TARGET Eigen3::Eigen)
      find_package(OpenMP QUIET COMPONENTS CXX)
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} Eigen3::Eigen)
      if(TARGET OpenMP::OpenMP_CXX)
        target_link_libraries(${target} INTERFACE OpenMP::OpenMP_CXX)
      endif()
      set(cblas "")
      set(cblas_openmp OFF)
      if(NOT DEFINED RLHF_EIGEN_BLAS OR RLHF_EIGEN_BLAS)
        _rlhfpp_find_cblas(cblas cblas_openmp)
        if(cblas)
          _rlhfpp_link_cblas(${target} RLHF_EIGEN_USE_CBLAS "${cblas}" ${cblas_openmp})
        endif()
      endif()
      set(onednn "")
      if(NOT DEFINED RLHF_EIGEN_ONEDNN OR RLHF_EIGEN_ONEDNN)
        _rlhfpp_find_onednn(onednn onednn_include)
        if(onednn)
          set_property(TARGET ${target} APPEND PROPERTY INTERFACE_LINK_LIBRARIES "${onednn}")
          set_property(TARGET ${target} APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS
                                                        RLHF_EIGEN_USE_ONEDNN)
          if(NOT onednn_include IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
            set_property(TARGET ${target} APPEND PROPERTY INTERFACE_INCLUDE_DIRECTORIES
                                                          "${onednn_include}")
          endif()
        endif()
      endif()
      set(RLHF_EIGEN_ONEDNN_LIBRARY "${onednn}" PARENT_SCOPE)
      set(RLHF_EIGEN_CBLAS "${cblas}" PARENT_SCOPE)
      set(RLHF_EIGEN_CBLAS_OPENMP ${cblas_openmp} PARENT_SCOPE)
      set(found TRUE)
    else()
      set(reason "Eigen >= 3.4 (Eigen3Config.cmake; Debian: libeigen3-dev) was not found")
    endif()

  elseif(component STREQUAL "xtensor")
    find_package(xtensor CONFIG QUIET)
    if(TARGET xtensor)
      find_package(xsimd CONFIG QUIET)
      find_package(OpenMP QUIET COMPONENTS CXX)
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} xtensor)
      # SIMD assignments and row reductions through xsimd (xtensor's optional SIMD layer).
      if(TARGET xsimd)
        target_link_libraries(${target} INTERFACE xsimd)
        target_compile_definitions(${target} INTERFACE XTENSOR_USE_XSIMD)
      endif()
      if(TARGET OpenMP::OpenMP_CXX)
        target_link_libraries(${target} INTERFACE OpenMP::OpenMP_CXX)
      endif()
      # GEMM through a CBLAS (cblas_sgemm on strided operands); without one, the generic GEMM.
      _rlhfpp_find_cblas(cblas cblas_openmp)
      if(cblas)
        _rlhfpp_link_cblas(${target} RLHF_XTENSOR_USE_CBLAS "${cblas}" ${cblas_openmp})
      endif()
      set(RLHF_XTENSOR_XSIMD ${xsimd_FOUND} PARENT_SCOPE)
      set(RLHF_XTENSOR_CBLAS "${cblas}" PARENT_SCOPE)
      set(found TRUE)
    else()
      set(reason "xtensor (xtensorConfig.cmake; Debian: libxtensor-dev) was not found")
    endif()

  elseif(component STREQUAL "thrust")
    # Thrust's host systems under the C++ compiler: THRUST_DEVICE_SYSTEM is OMP for C++
    # sources (a host compiler has no CUDA system); nvcc sources keep the toolkit's CCCL
    # Thrust and its CUDA device system (link rlhf::cuda for those).
    find_path(_rlhfpp_thrust_dir thrust/version.h NO_CACHE)
    find_package(OpenMP QUIET COMPONENTS CXX)
    set(version 0)
    if(_rlhfpp_thrust_dir)
      file(STRINGS "${_rlhfpp_thrust_dir}/thrust/version.h" line
           REGEX "^#define THRUST_VERSION [0-9]+")
      string(REGEX MATCH "[0-9]+$" version "${line}")
    endif()
    if(version GREATER_EQUAL 101700 AND TARGET OpenMP::OpenMP_CXX)
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} OpenMP::OpenMP_CXX)
      target_compile_definitions(${target} INTERFACE
        $<$<COMPILE_LANGUAGE:CXX>:THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP>)
      # /usr/include needs nothing (and must not be forced onto nvcc's path ahead of CCCL);
      # elsewhere, as a system directory so the consumer's warning flags do not apply to it.
      if(NOT _rlhfpp_thrust_dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
        target_include_directories(${target} SYSTEM INTERFACE
          $<$<COMPILE_LANGUAGE:CXX>:${_rlhfpp_thrust_dir}>)
      endif()
      set(found TRUE)
    else()
      set(reason "Thrust >= 1.17 headers (Debian: libthrust-dev, libcub-dev) and OpenMP are needed")
    endif()

  elseif(component STREQUAL "cuda")
    find_package(CUDAToolkit QUIET)
    if(TARGET CUDA::cudart AND TARGET CUDA::cublas)
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} CUDA::cudart CUDA::cublas)
      # The backend's functors and lambdas are __host__ __device__ and constexpr helpers are
      # called from device code.
      target_compile_options(${target} INTERFACE
        "$<$<COMPILE_LANGUAGE:CUDA>:--extended-lambda;--expt-relaxed-constexpr>")
      # C++20 for CUDA sources too (std::span, concepts): cxx_std_20 applies to C++ sources
      # only. As the cuda_std_20 feature where this CMake knows it for nvcc (3.26+); as the
      # flag otherwise, or when the consumer enables CUDA only after find_package.
      if("cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
        target_compile_features(${target} INTERFACE cuda_std_20)
      else()
        target_compile_options(${target} INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
      endif()
      set(found TRUE)
    else()
      set(reason "the CUDA toolkit with cuBLAS (CUDAToolkit) was not found")
    endif()

  elseif(component STREQUAL "model")
    find_package(nlohmann_json 3 CONFIG QUIET)
    if(TARGET nlohmann_json::nlohmann_json)
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} nlohmann_json::nlohmann_json)
      set(found TRUE)
    else()
      set(reason "nlohmann-json 3 (nlohmann_jsonConfig.cmake; Debian: nlohmann-json3-dev) was not found")
    endif()

  elseif(component STREQUAL "http")
    find_package(CURL QUIET)
    find_package(nlohmann_json 3 CONFIG QUIET)
    if(TARGET CURL::libcurl AND TARGET nlohmann_json::nlohmann_json)
      find_package(Threads QUIET)  # max_parallel > 1 runs requests on std::threads
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} CURL::libcurl
                                                nlohmann_json::nlohmann_json)
      if(TARGET Threads::Threads)
        target_link_libraries(${target} INTERFACE Threads::Threads)
      endif()
      set(found TRUE)
    elseif(NOT TARGET CURL::libcurl)
      set(reason "libcurl (FindCURL; Debian: libcurl4-openssl-dev) was not found")
    else()
      set(reason "nlohmann-json 3 (nlohmann_jsonConfig.cmake; Debian: nlohmann-json3-dev) was not found")
    endif()

  elseif(component STREQUAL "mpi")
    _rlhfpp_find_mpi()
    if(TARGET MPI::MPI_CXX)
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} MPI::MPI_CXX)
      set(found TRUE)
    else()
      set(reason "MPI for C++ (FindMPI: an mpicxx wrapper; Debian: libopenmpi-dev) was not found")
    endif()

  elseif(component STREQUAL "nccl")
    find_package(CUDAToolkit QUIET)
    _rlhfpp_find_mpi()
    unset(nccl_h)
    unset(nccl_lib)
    if(TARGET CUDA::cudart)
      find_path(nccl_h nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} NO_CACHE)
      find_library(nccl_lib nccl HINTS ${CUDAToolkit_LIBRARY_DIR} NO_CACHE)
    endif()
    if(TARGET CUDA::cudart AND TARGET CUDA::cublas AND TARGET MPI::MPI_CXX AND nccl_h
       AND nccl_lib)
      _rlhfpp_new_target(${target} ${imported})
      target_link_libraries(${target} INTERFACE ${core} CUDA::cudart CUDA::cublas MPI::MPI_CXX
                                                "${nccl_lib}")
      if(NOT nccl_h IN_LIST CUDAToolkit_INCLUDE_DIRS AND NOT nccl_h STREQUAL "/usr/include")
        target_include_directories(${target} SYSTEM INTERFACE "${nccl_h}")
      endif()
      set(found TRUE)
    elseif(NOT TARGET CUDA::cudart OR NOT TARGET CUDA::cublas)
      set(reason "the CUDA toolkit with cuBLAS (CUDAToolkit) was not found")
    elseif(NOT TARGET MPI::MPI_CXX)
      set(reason "MPI for C++ (FindMPI: an mpicxx wrapper; Debian: libopenmpi-dev) was not found")
    else()
      set(reason "NCCL (nccl.h and libnccl; Debian: libnccl-dev) was not found")
    endif()

  else()
    set(reason "unknown component '${component}' (known: eigen xtensor thrust cuda model http mpi nccl)")
  endif()
  set(${out_found} ${found} PARENT_SCOPE)
  set(${out_found}_REASON "${reason}" PARENT_SCOPE)
endfunction()

set(RLHFPP_ALL_COMPONENTS eigen xtensor thrust cuda model http mpi nccl)
