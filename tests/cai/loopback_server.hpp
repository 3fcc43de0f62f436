// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A scripted HTTP/1.1 server for the tests of rlhf/cai/http_chat.hpp: it listens on
// 127.0.0.1 (only) on an ephemeral port, records every request it receives, and answers the
// n-th one with the n-th scripted response (the last one again once the script runs out), or
// with what a responder function computes from the request.
// One thread accepts; each connection gets a thread of its own (keep-alive is honoured), so
// a response held back past the client's timeout does not block the client's retry. POSIX
// sockets only; every wait polls a stop flag, so the destructor returns promptly.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace rlhf_test {

/// One scripted answer.
struct scripted_response {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  std::chrono::milliseconds delay{0};                        // wait this long before answering
  bool drop = false;  // close the connection without answering
};

/// One request as the server read it.
struct received_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class loopback_server {
 public:
  /// Computes the answer to request number `index` (from 0).
  using responder = std::function<scripted_response(const received_request&, std::size_t index)>;

  /// Answers request n with script[n], the last entry once the script runs out.
  explicit loopback_server(std::vector<scripted_response> script)
      : loopback_server(scripted(std::move(script))) {}

  explicit loopback_server(responder respond) : respond_(std::move(respond)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) throw std::runtime_error("loopback_server: socket() failed");
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // ephemeral
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error("loopback_server: bind/listen on 127.0.0.1 failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  loopback_server(const loopback_server&) = delete;
  loopback_server& operator=(const loopback_server&) = delete;
  loopback_server(loopback_server&&) = delete;
  loopback_server& operator=(loopback_server&&) = delete;

  ~loopback_server() {
    stop_.store(true);
    acceptor_.join();
    std::vector<std::thread> conns;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      conns.swap(connections_);
    }
    for (auto& t : conns) t.join();
    ::close(listen_fd_);
  }

  [[nodiscard]] int port() const { return port_; }
  /// "http://127.0.0.1:<port>/v1"
  [[nodiscard]] std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
  }
  /// Every complete request received so far, in arrival order.
  [[nodiscard]] std::vector<received_request> requests() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

  /// A port on 127.0.0.1 that nothing listens on (bound, then closed).
  static int closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

 private:
  static responder scripted(std::vector<scripted_response> script) {
    if (script.empty()) throw std::invalid_argument("loopback_server: empty script");
    return [script = std::move(script)](const received_request&, std::size_t index) {
      return script[std::min(index, script.size() - 1)];
    };
  }

  // Waits up to 20 ms for `fd` to be readable; false on timeout.
  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 20) > 0;
  }

  void accept_loop() {
    while (!stop_.load()) {
      if (!readable(listen_fd_)) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      const std::lock_guard<std::mutex> lock(mutex_);
      connections_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  // Reads requests from one connection until it closes (or the server stops).
  void serve(int fd) {
    std::string buf;
    while (!stop_.load()) {
      received_request req;
      if (!read_request(fd, buf, req)) return;
      std::size_t index = 0;
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        index = requests_.size();
        requests_.push_back(req);
      }
      const scripted_response resp = respond_(req, index);
      const auto until = std::chrono::steady_clock::now() + resp.delay;
      while (!stop_.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (resp.drop || stop_.load()) return;
      std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " Scripted\r\n";
      out += "Content-Type: application/json\r\n";
      out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\n";
      for (const auto& [k, v] : resp.headers) out += k + ": " + v + "\r\n";
      out += "\r\n" + resp.body;
      if (!send_all(fd, out)) return;
    }
  }

  static bool send_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Reads more bytes into `buf`; false on EOF, error or stop.
  bool fill(int fd, std::string& buf) {
    while (!stop_.load()) {
      if (!readable(fd)) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  }

  bool read_request(int fd, std::string& buf, received_request& req) {
    std::size_t end = 0;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(fd, buf)) return false;
    }
    const std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    std::size_t pos = head.find("\r\n");
    const std::string line = head.substr(0, pos);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.find(' ', sp1 + 1);
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (pos != std::string::npos) {
      const std::size_t start = pos + 2;
      pos = head.find("\r\n", start);
      const std::string h = head.substr(start, pos == std::string::npos ? pos : pos - start);
      const auto colon = h.find(':');
      if (colon == std::string::npos) continue;
      std::string name = h.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      req.headers[name] = value;
    }
    std::size_t length = 0;
    if (const auto it = req.headers.find("content-length"); it != req.headers.end()) {
      length = static_cast<std::size_t>(std::stoul(it->second));
    }
    while (buf.size() < length) {
      if (!fill(fd, buf)) return false;
    }
    req.body = buf.substr(0, length);
    buf.erase(0, length);
    return true;
  }

  responder respond_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<received_request> requests_;
  std::vector<std::thread> connections_;
  std::thread acceptor_;
};

}  // namespace rlhf_test
