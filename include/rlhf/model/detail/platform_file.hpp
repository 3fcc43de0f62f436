// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The operating-system calls behind checkpoint I/O (rlhf/model/safetensors.hpp), in one
// place: create a file (exclusively), write it fully, flush it to disk, close it, remove it,
// open a directory to flush a rename, and ask whether the process that left a temporary
// file behind is gone. Everything else (reading, renaming, listing, paths) uses the
// standard library.
//
// rlhf++'s checkpoint I/O supports POSIX systems (Linux, macOS, the BSDs). On any other
// platform this header stops the build with one sentence; porting means giving these few
// functions another implementation with the same contracts.
//
// Contract: every function that can fail returns 0 (or a valid file) on success and the
// errno-style error code otherwise, and never throws; callers turn codes into io_error.
#pragma once

#include "rlhf/core/config.hpp"

#if defined(__unix__) || defined(__unix) || (defined(__APPLE__) && defined(__MACH__))
#include <fcntl.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): kill() is POSIX, not in <csignal>
#include <sys/types.h>
#include <unistd.h>
#else
#error \
    "rlhf++'s checkpoint I/O (rlhf/model/safetensors.hpp, rlhf/model/checkpoint.hpp) supports POSIX systems only: open/write/fsync/rename are needed for atomic saves."
#endif

#include <cerrno>
#include <cstddef>
#include <filesystem>

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace platform {

/// An open file or directory: a POSIX file descriptor; `invalid_file` when none.
using native_file = int;
inline constexpr native_file invalid_file = -1;

/// A file from an open call, or invalid_file and the error code.
struct open_result {
  native_file file = invalid_file;
  int error = 0;
};

/// Creates (or truncates) `path` for writing, mode 0644, close-on-exec.
[[nodiscard]] inline open_result create_for_writing(const std::filesystem::path& path) noexcept {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  return fd < 0 ? open_result{invalid_file, errno} : open_result{fd, 0};
}

/// Creates `path` for writing, mode 0644, close-on-exec, failing with EEXIST when it exists
/// (O_EXCL: no other writer shares the file, and an existing link is never followed).
[[nodiscard]] inline open_result create_exclusive(const std::filesystem::path& path) noexcept {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  return fd < 0 ? open_result{invalid_file, errno} : open_result{fd, 0};
}

/// Opens the directory `path` read-only, only to flush it with sync().
[[nodiscard]] inline open_result open_directory(const std::filesystem::path& path) noexcept {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? open_result{invalid_file, errno} : open_result{fd, 0};
}

/// Writes all `n` bytes at `p`, retrying short and interrupted writes. 0 or the error.
[[nodiscard]] inline int write_all(native_file f, const void* p, std::size_t n) noexcept {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ::ssize_t w = ::write(f, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

/// Flushes the file's (or directory's) data to the device (fsync). 0 or the error.
[[nodiscard]] inline int sync(native_file f) noexcept { return ::fsync(f) == 0 ? 0 : errno; }

/// Closes the file. 0 or the error (the descriptor is released either way).
inline int close(native_file f) noexcept { return ::close(f) == 0 ? 0 : errno; }

/// Removes `path` if it exists; errors are ignored (clean-up after a failure).
inline void remove_quietly(const std::filesystem::path& path) noexcept { ::unlink(path.c_str()); }

/// The process id, to give temporary files a per-process name.
[[nodiscard]] inline long long process_id() noexcept { return static_cast<long long>(::getpid()); }

/// True only when no process `pid` exists (kill(pid, 0) fails with ESRCH). A live process,
/// one we may not signal (EPERM), or a pid that is not a plain positive process id (0 and
/// negative values name process groups) is never reported gone.
[[nodiscard]] inline bool process_is_gone(long long pid) noexcept {
  if (pid <= 0 || static_cast<long long>(static_cast<::pid_t>(pid)) != pid) return false;
  return ::kill(static_cast<::pid_t>(pid), 0) == -1 && errno == ESRCH;
}

}  // namespace platform
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
