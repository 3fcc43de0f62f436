// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The readers under fuzzing take a path, so each fuzz input is written to a scratch file of
// this process (in /dev/shm when it exists, a RAM disk, else the temporary directory) and
// the reader is pointed at it. The file is overwritten by every input and removed at exit.
#pragma once

#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace rlhf_fuzz {

/// A per-process scratch file named "rlhf_fuzz_<tag>_<pid><extension>".
class input_file {
 public:
  input_file(const std::string& tag, const std::string& extension) {
    std::error_code ec;
    std::filesystem::path dir = "/dev/shm";
    if (!std::filesystem::is_directory(dir, ec) || ::access(dir.c_str(), W_OK) != 0) {
      dir = std::filesystem::temp_directory_path();
    }
    path_ = dir / ("rlhf_fuzz_" + tag + "_" + std::to_string(::getpid()) + extension);
  }
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;
  ~input_file() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

  /// Replaces the file's contents with `size` bytes at `data`.
  const std::filesystem::path& write(const std::uint8_t* data, std::size_t size) const {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr) {
      std::perror("rlhf_fuzz: cannot create the scratch file");
      std::abort();
    }
    if (size > 0 && std::fwrite(data, 1, size, f) != size) {
      std::perror("rlhf_fuzz: cannot write the scratch file");
      std::abort();
    }
    if (std::fclose(f) != 0) {
      std::perror("rlhf_fuzz: cannot close the scratch file");
      std::abort();
    }
    return path_;
  }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace rlhf_fuzz
