// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// libcurl glue of rlhf/cai/http_chat.hpp: curl_global_init once per process, RAII owners of
// the easy handle and the header list, and one blocking JSON POST that reports what
// happened (a curl error, or the status, body and Retry-After of the response) without
// throwing anything but std::bad_alloc.
#pragma once

#include "rlhf/core/config.hpp"  // first: the C++20 check

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rlhf {
inline namespace v0 {
namespace cai {
namespace detail {

// curl_global_init(CURL_GLOBAL_DEFAULT) once, thread-safely (a function-local static);
// curl_global_cleanup at exit. Returns the result of the one call.
inline CURLcode http_curl_global_init() {
  struct global {
    CURLcode rc;
    global() : rc(curl_global_init(CURL_GLOBAL_DEFAULT)) {}
    ~global() {
      if (rc == CURLE_OK) curl_global_cleanup();
    }
    global(const global&) = delete;
    global& operator=(const global&) = delete;
    global(global&&) = delete;
    global& operator=(global&&) = delete;
  };
  static const global g;
  return g.rc;
}

struct http_easy_deleter {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
// One easy handle: it keeps its connection alive between the requests of one worker.
using http_easy_handle = std::unique_ptr<CURL, http_easy_deleter>;

struct http_slist_deleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using http_slist = std::unique_ptr<curl_slist, http_slist_deleter>;

// What one POST gave: a transport failure (code != CURLE_OK) or a response.
struct http_exchange {
  CURLcode code = CURLE_OK;
  std::string curl_message;  // curl's error buffer (or curl_easy_strerror)
  long status = 0;           // HTTP status of the final response; 0 without one
  std::string body;
  std::optional<std::int64_t> retry_after_s;  // Retry-After in whole seconds, when given
  bool body_too_large = false;
  std::size_t max_body = 0;
};

inline bool http_iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i];
    char b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

// Retry-After as delay-seconds (RFC 9110: 1*DIGIT); an HTTP date or junk gives nothing.
// Values beyond a day are clamped to a day (the caller caps them by its maximum backoff).
inline std::optional<std::int64_t> http_parse_retry_after(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() &&
         (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n')) {
    v.remove_suffix(1);
  }
  if (v.empty()) return std::nullopt;
  std::int64_t s = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    if (s < 86400) s = s * 10 + (c - '0');
  }
  return s < 86400 ? s : 86400;
}

inline std::size_t http_write_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* ex = static_cast<http_exchange*>(user);
  const std::size_t bytes = size * n;
  if (ex->body.size() + bytes > ex->max_body) {
    ex->body_too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  try {
    ex->body.append(data, bytes);
  } catch (...) {
    return 0;
  }
  return bytes;
}

inline std::size_t http_read_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* ex = static_cast<http_exchange*>(user);
  const std::size_t bytes = size * n;
  const std::string_view line(data, bytes);
  if (http_iequals_prefix(line, "HTTP/")) {
    ex->retry_after_s.reset();  // a new response (after a 1xx): its own headers only
  } else if (http_iequals_prefix(line, "retry-after:")) {
    ex->retry_after_s = http_parse_retry_after(line.substr(12));
  }
  return bytes;
}

// POST `body` (JSON) to `url` on `h`, blocking for at most `total` (connecting for at most
// `connect`). `headers` must outlive the call.
inline http_exchange http_post_json(CURL* h, const std::string& url, const std::string& body,
                                    curl_slist* headers, std::chrono::milliseconds connect,
                                    std::chrono::milliseconds total, std::size_t max_body) {
  http_exchange ex;
  ex.max_body = max_body;
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_reset(h);  // keeps the connection cache
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "rlhf++ http_chat_client");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &http_write_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, static_cast<void*>(&ex));
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &http_read_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, static_cast<void*>(&ex));
  ex.code = curl_easy_perform(h);
  if (ex.code != CURLE_OK) {
    ex.curl_message = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(ex.code);
    if (ex.body_too_large) {
      ex.curl_message = "response body larger than " + std::to_string(max_body) + " bytes";
    }
    return ex;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  ex.status = status;
  return ex;
}

// Transport failures worth another attempt: the server was not reached, did not answer in
// time, or dropped the connection. Others (a malformed URL, an unsupported scheme, TLS
// certificate problems, a body over the limit) fail at once.
inline bool http_transient(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
  }
}

// splitmix64: the jitter of the backoff, a pure function of (seed, request, attempt).
inline std::uint64_t http_mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace detail
}  // namespace cai
}  // namespace v0
}  // namespace rlhf
