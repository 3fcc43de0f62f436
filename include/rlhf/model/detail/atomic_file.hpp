// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Files written all at once: a reader sees the old file or the new one, never a mix, also
// when writers race and when a writer dies midway. The one mechanism behind every file
// rlhf++ writes (safetensors checkpoints, metrics logs, run configs):
//
//   atomic_file f(target, "fn: target: ");  // "<name>.tmp.<pid>.<16 hex>" beside target,
//                                           // created O_EXCL; first removes the temporaries
//                                           // of writers of `target` that no longer run
//   f.write(bytes, n); ...                  // io_error on a failed write
//   f.commit();                             // fsync, close, rename over target, fsync dir
//   (destroyed without commit(): the temporary is removed, target untouched)
//
// Within a process, writers of one target take turns (a mutex per canonical path, held from
// construction to destruction); across processes each has its own temporary and the last
// rename wins with a whole file.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/platform_file.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {

/// The text of an errno value.
[[nodiscard]] inline std::string errno_text(int err) {
  return std::generic_category().message(err);
}

/// "xxxxxxxx": `v` as 8 lowercase hex digits.
[[nodiscard]] inline std::string hex8(std::uint32_t v) {
  std::string s(8, '0');
  for (std::size_t i = 8; i-- > 0; v >>= 4) s[i] = "0123456789abcdef"[v & 0xfu];
  return s;
}

/// Length of the random part of a temporary file's name.
inline constexpr std::size_t temp_suffix_length = 16;

/// A random 16-hex-digit suffix for temporary file names.
[[nodiscard]] inline std::string random_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t r = counter.fetch_add(1) * 0x9E3779B97F4A7C15ull;
  r ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  try {
    std::random_device rd;
    r ^= (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  } catch (...) {  // no entropy source: the counter and the clock still differ per call
  }
  return hex8(static_cast<std::uint32_t>(r >> 32)) + hex8(static_cast<std::uint32_t>(r));
}

/// Serialises writers of one path within the process: one mutex per canonical target path,
/// created on first use and dropped when its last user leaves.
class path_lock {
 public:
  /// Waits for, then holds, the lock of `target`.
  explicit path_lock(const std::filesystem::path& target) : key_(canonical_key(target)) {
    registry& r = the_registry();
    {
      const std::lock_guard<std::mutex> g(r.m);
      entry_ = &r.entries[key_];
      ++entry_->users;
    }
    entry_->m.lock();
  }
  ~path_lock() {
    entry_->m.unlock();
    registry& r = the_registry();
    const std::lock_guard<std::mutex> g(r.m);
    if (--entry_->users == 0) r.entries.erase(key_);
  }
  path_lock(const path_lock&) = delete;
  path_lock& operator=(const path_lock&) = delete;
  path_lock(path_lock&&) = delete;
  path_lock& operator=(path_lock&&) = delete;

 private:
  struct entry {
    std::mutex m;
    int users = 0;
  };
  struct registry {
    std::mutex m;
    std::unordered_map<std::string, entry> entries;  // nodes: entry addresses are stable
  };
  static registry& the_registry() {
    // Never destroyed: writes may run during static exit.
    static registry* const r = new registry;  // NOLINT(*-avoid-non-const-global-variables)
    return *r;
  }
  static std::string canonical_key(const std::filesystem::path& target) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(target, ec);
    if (ec) abs = target;
    auto canon = std::filesystem::weakly_canonical(abs, ec);
    return (ec ? abs.lexically_normal() : canon).string();
  }

  std::string key_;
  entry* entry_ = nullptr;
};

/// One atomic write of `target`; see the top of this file. Every error is an io_error whose
/// message starts with `prefix` (e.g. "save_safetensors: <path>: ").
class atomic_file {
 public:
  /// Removes stale temporaries of `target`, then creates this writer's own.
  atomic_file(std::filesystem::path target, std::string prefix)
      : target_(std::move(target)), prefix_(std::move(prefix)), lock_(target_) {
    dir_ = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
    remove_stale_temporaries();
    platform::open_result created;
    for (int attempt = 0; attempt < 100; ++attempt) {
      tmp_ = target_;
      tmp_ += ".tmp." + std::to_string(platform::process_id()) + "." + random_suffix();
      created = platform::create_exclusive(tmp_);
      if (created.file != platform::invalid_file || created.error != EEXIST) break;
    }
    if (created.file == platform::invalid_file) {
      fail(concat("cannot create temporary file ", tmp_.string(), ": ", errno_text(created.error)));
    }
    fd_ = created.file;
  }
  ~atomic_file() {
    if (fd_ != platform::invalid_file) platform::close(fd_);
    if (!committed_) platform::remove_quietly(tmp_);
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  atomic_file(atomic_file&&) = delete;
  atomic_file& operator=(atomic_file&&) = delete;

  /// Appends `n` bytes at `p` to the temporary file.
  void write(const void* p, std::size_t n) {
    if (const int err = platform::write_all(fd_, p, n); err != 0) {
      fail(concat("cannot write temporary file ", tmp_.string(), ": ", errno_text(err)));
    }
  }

  /// Makes the written bytes the content of `target`.
  void commit() {
    if (const int err = platform::sync(fd_); err != 0) {
      fail(concat("cannot fsync temporary file ", tmp_.string(), ": ", errno_text(err)));
    }
    const int closed = platform::close(fd_);
    fd_ = platform::invalid_file;
    if (closed != 0) {
      fail(concat("cannot close temporary file ", tmp_.string(), ": ", errno_text(closed)));
    }
    if (std::rename(tmp_.c_str(), target_.c_str()) != 0) {
      fail(concat("cannot rename ", tmp_.string(), " over it: ", errno_text(errno)));
    }
    committed_ = true;
    const auto dir_file = platform::open_directory(dir_);
    if (dir_file.file == platform::invalid_file) {
      fail(concat("written, but cannot open directory ", dir_.string(),
                  " to fsync it: ", errno_text(dir_file.error)));
    }
    const int err = platform::sync(dir_file.file);
    platform::close(dir_file.file);
    // Some file systems cannot sync a directory (EINVAL); the rename is then as durable as
    // they make it.
    if (err != 0 && err != EINVAL && err != EROFS) {
      fail(concat("written, but cannot fsync directory ", dir_.string(), ": ", errno_text(err)));
    }
  }

 private:
  [[noreturn]] void fail(std::string_view reason) const {
    throw io_error(prefix_ + std::string(reason));
  }

  /// Removes `"<name>.tmp.<pid>.<16 hex digits>"` files of this target in its directory
  /// whose writer no longer runs.
  void remove_stale_temporaries() const {
    const std::string prefix = target_.filename().string() + ".tmp.";
    const long long self = platform::process_id();
    std::error_code ec;
    std::filesystem::directory_iterator it(dir_, ec);
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string_view rest = std::string_view(name).substr(prefix.size());
      const std::size_t dot = rest.find('.');
      if (dot == 0 || dot == std::string_view::npos || dot > 18) continue;
      const std::string_view pid_text = rest.substr(0, dot);
      const std::string_view suffix = rest.substr(dot + 1);
      if (suffix.size() != temp_suffix_length) continue;
      if (!std::all_of(pid_text.begin(), pid_text.end(),
                       [](char c) { return c >= '0' && c <= '9'; }) ||
          !std::all_of(suffix.begin(), suffix.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
        continue;
      }
      const long long pid = std::stoll(std::string(pid_text));
      if (pid == self || !platform::process_is_gone(pid)) continue;
      std::error_code sec;
      if (it->symlink_status(sec).type() != std::filesystem::file_type::regular) continue;
      platform::remove_quietly(it->path());
    }
  }

  std::filesystem::path target_, dir_, tmp_;
  std::string prefix_;
  path_lock lock_;
  platform::native_file fd_ = platform::invalid_file;
  bool committed_ = false;
};

/// Writes `bytes` as the whole content of `path` through an atomic_file; io_error messages
/// start with "fn: path: ".
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes,
                                  std::string_view fn) {
  atomic_file f(path, concat(fn, ": ", path.string(), ": "));
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace detail
}  // namespace v0
}  // namespace rlhf
