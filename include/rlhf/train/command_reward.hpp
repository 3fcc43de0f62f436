// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A reward function that is an external program, so that a verifier written in Python or
// shell plugs into the online trainers without C++ (POSIX only).
//
// Protocol, one process per scored batch (argv run directly, no shell):
//   stdin:  one JSON object per completion and line, {"prompt": P, "completion": C}, P the
//           prompt as the data holds it (a string, or a list of {"role", "content"}), C the
//           decoded completion; then end of file
//   stdout: one line per completion, in order: a number, or null (no score)
//   exit status 0
// A run past `timeout` is killed. Every failure is an exception naming the command: a
// program that cannot start, times out or exits non-zero is an io_error (with the end of
// its stderr); output that is not one number or null per completion is a data_error
// naming the line.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/formats.hpp"
#include "rlhf/train/reward_functions.hpp"

extern char** environ;

namespace rlhf {
inline namespace v0 {
namespace train {

/// An external program as a reward function.
struct command_reward_options {
  std::vector<std::string> argv;             ///< the program (looked up in PATH) and its arguments
  std::chrono::milliseconds timeout{60000};  ///< per batch; the program is killed after it
  std::string name = "command";              ///< the reward function's name (metrics)
  float weight = 1.0f;                       ///< its weight among several functions
};

namespace detail {

/// What one run of a command produced.
struct command_output {
  std::string out, err;  ///< stdout, stderr (its last 4 KiB)
  int status = 0;        ///< exit status, or -signal when killed by one
  bool timed_out = false;
};

/// The fds of a spawn: closed on scope exit.
struct fd_set_guard {
  std::vector<int> fds;
  ~fd_set_guard() {
    for (const int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void close(int& fd) {
    if (fd >= 0) ::close(fd);
    for (auto& f : fds) {
      if (f == fd) f = -1;
    }
    fd = -1;
  }
};

/// Runs argv with `input` on stdin, collecting stdout and stderr, killing it after
/// `timeout`. stdin is a socket so that writing to a program that stopped reading raises
/// no SIGPIPE (send with MSG_NOSIGNAL).
inline command_output run_command(const std::vector<std::string>& argv, const std::string& input,
                                  std::chrono::milliseconds timeout, const std::string& what) {
  int in_pair[2], out_pipe[2], err_pipe[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0 ||
      ::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw io_error(rlhf::detail::concat(what, ": cannot create pipes: ", std::strerror(errno)));
  }
  fd_set_guard g{{in_pair[0], in_pair[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pair[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    throw io_error(
        rlhf::detail::concat(what, ": cannot start '", argv[0], "': ", std::strerror(rc)));
  }
  g.close(in_pair[1]);
  g.close(out_pipe[1]);
  g.close(err_pipe[1]);
  ::fcntl(in_pair[0], F_SETFL, ::fcntl(in_pair[0], F_GETFL) | O_NONBLOCK);

  command_output res;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t written = 0;
  if (input.empty()) g.close(in_pair[0]);
  while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      res.timed_out = true;
      break;
    }
    pollfd p[3];
    nfds_t n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in_pair[0] >= 0) idx_in = static_cast<int>(n), p[n++] = {in_pair[0], POLLOUT, 0};
    if (out_pipe[0] >= 0) idx_out = static_cast<int>(n), p[n++] = {out_pipe[0], POLLIN, 0};
    if (err_pipe[0] >= 0) idx_err = static_cast<int>(n), p[n++] = {err_pipe[0], POLLIN, 0};
    const int ready = ::poll(p, n, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (idx_in >= 0 && p[idx_in].revents != 0) {
      const ssize_t k = ::send(in_pair[0], input.data() + written, input.size() - written,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (k > 0) written += static_cast<std::size_t>(k);
      // Done, or the program closed its stdin (it need not read everything).
      if (written == input.size() || (k < 0 && errno != EAGAIN && errno != EINTR)) {
        g.close(in_pair[0]);
      }
    }
    char buf[4096];
    for (const auto& [idx, fd, sink] : {std::tuple{idx_out, &out_pipe[0], &res.out},
                                        std::tuple{idx_err, &err_pipe[0], &res.err}}) {
      if (idx < 0 || p[idx].revents == 0) continue;
      const ssize_t k = ::read(*fd, buf, sizeof buf);
      if (k > 0) {
        sink->append(buf, static_cast<std::size_t>(k));
      } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
        g.close(*fd);
      }
    }
    if (res.err.size() > 8192) res.err.erase(0, res.err.size() - 4096);
  }
  if (res.timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) break;
  }
  res.status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  if (res.err.size() > 4096) res.err.erase(0, res.err.size() - 4096);
  return res;
}

/// argv as one line for messages (cut after 60 characters).
inline std::string command_text(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

/// A prompt as JSON: its text, or its messages.
inline nlohmann::json prompt_json(const data::content& c) {
  if (!c.conversational) return c.text;
  nlohmann::json a = nlohmann::json::array();
  for (const auto& m : c.messages) a.push_back({{"role", m.role}, {"content", m.content}});
  return a;
}

}  // namespace detail

/// The reward function that runs `opt.argv` once per batch (see the top of this file).
/// config_error when argv is empty, the timeout is not positive or the weight not finite.
[[nodiscard]] inline reward_function command_reward(command_reward_options opt) {
  constexpr const char* fn = "command_reward";
  check_config(!opt.argv.empty() && !opt.argv[0].empty(), fn, "argv", "a program to run",
               "nothing");
  check_config(opt.timeout.count() > 0, fn, "timeout", "> 0 ms",
               static_cast<long long>(opt.timeout.count()));
  check_config(std::isfinite(opt.weight), fn, "weight", "finite", opt.weight);
  std::string name = opt.name;
  const float weight = opt.weight;
  return {std::move(name), weight, [opt = std::move(opt)](const completion_batch& b) {
            const std::string what = "reward command '" + detail::command_text(opt.argv) + "'";
            std::string input;
            for (std::size_t i = 0; i < b.size(); ++i) {
              const nlohmann::json line = {{"prompt", detail::prompt_json(b.prompts[i])},
                                           {"completion", b.completions[i]}};
              input += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
              input += '\n';
            }
            const auto res = detail::run_command(opt.argv, input, opt.timeout, what);
            if (res.timed_out) {
              throw io_error(rlhf::detail::concat(what, ": no answer within ", opt.timeout.count(),
                                                  " ms; killed"));
            }
            if (res.status != 0) {
              throw io_error(rlhf::detail::concat(
                  what, res.status > 0 ? ": exited with status " : ": killed by signal ",
                  res.status > 0 ? res.status : -res.status,
                  res.err.empty() ? std::string() : ", its stderr ends: " + res.err));
            }
            std::vector<float> scores;
            std::size_t start = 0, line_no = 0;
            while (start < res.out.size()) {
              std::size_t end = res.out.find('\n', start);
              if (end == std::string::npos) end = res.out.size();
              std::string line = res.out.substr(start, end - start);
              start = end + 1;
              ++line_no;
              if (!line.empty() && line.back() == '\r') line.pop_back();
              if (line.find_first_not_of(" \t") == std::string::npos) continue;
              const auto j = nlohmann::json::parse(line, nullptr, false);
              if (j.is_null() && !j.is_discarded()) {
                scores.push_back(std::nanf(""));
              } else if (j.is_number()) {
                scores.push_back(j.get<float>());
              } else {
                throw data_error(rlhf::detail::concat(what, ": output line ", line_no,
                                                      " is not a number or null: '",
                                                      line.substr(0, 80), "'"));
              }
            }
            if (scores.size() != b.size()) {
              throw data_error(rlhf::detail::concat(what, ": wrote ", scores.size(), " scores for ",
                                                    b.size(), " completions"));
            }
            return scores;
          }};
}

}  // namespace train
}  // namespace v0
}  // namespace rlhf
