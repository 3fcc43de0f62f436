// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A client of an OpenAI-compatible chat-completions endpoint (llama.cpp's llama-server,
// vLLM, or anything speaking POST /v1/chat/completions) as a text_generator and an
// option_scorer (rlhf/cai/generator.hpp), for Constitutional AI and AI-feedback judges
// against a local server (docs/cai.md, "Against a local server"). Needs libcurl and
// nlohmann-json: link the CMake target rlhf::http.
//
//   generate(prompts, o)               one request per prompt; choices[0].message.content
//   option_log_probs(prompts, options) one request per prompt with max_tokens 1, temperature
//                                      0 and top_logprobs: each option's log-probability as
//                                      the first token of the answer, -infinity when the
//                                      server does not list it (or returns no log-probs)
//
// Requests are retried with exponential backoff (deterministic jitter) on HTTP 429 and 5xx,
// on timeouts and on connection failures, honouring Retry-After; any other failure throws
// http_error at once. Up to max_parallel requests are in flight at a time (one thread and
// one connection each).
/// \file
/// OpenAI-compatible chat-completions client (libcurl): http_chat_client, http_error.
#pragma once

#include "rlhf/core/config.hpp"  // first: the C++20 check

#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "rlhf/cai/detail/http_transport.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// A chat-completions request that failed: the server answered with an error status (a 4xx
/// other than 429 at once; 429 or 5xx once the retries are spent), could not be reached in
/// time, or answered with a body that is not the expected JSON. The message names the URL,
/// the number of attempts, the last HTTP status (or curl's error) and the server's own error
/// message (truncated).
class http_error : public error {
 public:
  /// An error after `attempts` attempts whose last response had HTTP status `status`
  /// (0: no response, e.g. a timeout or a refused connection).
  http_error(const std::string& what, int status, int attempts)
      : error(what), status_(status), attempts_(attempts) {}
  /// HTTP status of the last response; 0 when there was none.
  [[nodiscard]] int status() const noexcept { return status_; }
  /// Attempts made for the request that failed (1 + the retries).
  [[nodiscard]] int attempts() const noexcept { return attempts_; }

 private:
  int status_;
  int attempts_;
};

/// Where and how http_chat_client talks to the server.
struct http_chat_config {
  /// The API root; "/chat/completions" is appended (a trailing '/' is dropped). http or https.
  std::string base_url = "http://127.0.0.1:8080/v1";
  /// The "model" field of every request (llama-server ignores it; vLLM needs the served name).
  std::string model = "default";
  /// Sent as "Authorization: Bearer ..." when not empty.
  std::string api_key;
  /// A system message put before every prompt when not empty.
  std::string system_prompt;
  std::chrono::milliseconds connect_timeout{10'000};  ///< per attempt, to connect
  std::chrono::milliseconds timeout{300'000};         ///< per attempt, the whole request (> 0)
  int max_retries = 3;  ///< further attempts after the first (0: none)
  /// Wait before the first retry; doubled before each further one (0: retry at once).
  std::chrono::milliseconds initial_backoff{500};
  /// Cap of every wait, Retry-After included.
  std::chrono::milliseconds max_backoff{30'000};
  /// Seed of the jitter: each wait is drawn in [d/2, d) for the nominal wait d, as a pure
  /// function of (seed, request, attempt), so runs are reproducible.
  std::uint64_t backoff_seed = 0;
  /// Requests in flight at once (threads, one connection each); 1 sends them in turn.
  std::size_t max_parallel = 1;
  /// "top_logprobs" of option_log_probs (OpenAI allows at most 20).
  int top_logprobs = 20;
  /// Largest response body accepted, in bytes (a bigger one is an http_error).
  std::size_t max_response_bytes = std::size_t{64} << 20;
};

/// Counters of an http_chat_client since it was made (or since reset_stats()).
struct http_chat_stats {
  std::size_t requests = 0;  ///< requests that succeeded (one per prompt)
  std::size_t attempts = 0;  ///< HTTP attempts made, failed ones and retries included
  std::size_t retries = 0;   ///< attempts after a 429, a 5xx or a transport failure
};

namespace detail {

// At most `limit` bytes of `s`, control characters made spaces, for error messages.
inline std::string http_excerpt(std::string_view s, std::size_t limit = 300) {
  std::string out(s.substr(0, std::min(s.size(), limit)));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (s.size() > limit) out += "...";
  return out;
}

// The server's own error message: {"error": {"message": ...}}, {"error": "..."},
// {"message": ...} or {"detail": ...}; else the body itself, truncated.
inline std::string http_server_message(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    const auto e = j.find("error");
    if (e != j.end()) {
      if (e->is_string()) return http_excerpt(e->get<std::string>());
      if (e->is_object()) {
        const auto m = e->find("message");
        if (m != e->end() && m->is_string()) return http_excerpt(m->get<std::string>());
      }
    }
    for (const char* key : {"message", "detail"}) {
      const auto m = j.find(key);
      if (m != j.end() && m->is_string()) return http_excerpt(m->get<std::string>());
    }
  }
  if (body.empty()) return "(empty body)";
  return http_excerpt(body);
}

inline std::string_view http_trim(std::string_view s) {
  constexpr std::string_view ws = " \t\r\n\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace detail

/// A text_generator and option_scorer backed by an OpenAI-compatible chat-completions
/// server. Each prompt is the content of one user message (after the optional system
/// message). Not safe to call from two threads at once (it keeps statistics); copies are
/// independent clients.
class http_chat_client {
 public:
  /// Checks `cfg` (config_error on a bad value); connects to nothing yet.
  explicit http_chat_client(http_chat_config cfg) : cfg_(std::move(cfg)) {
    constexpr std::string_view fn = "http_chat_client";
    const bool http = cfg_.base_url.rfind("http://", 0) == 0;
    const bool https = cfg_.base_url.rfind("https://", 0) == 0;
    check_config(http || https, fn, "base_url", "an http:// or https:// URL", cfg_.base_url);
    while (!cfg_.base_url.empty() && cfg_.base_url.back() == '/') cfg_.base_url.pop_back();
    check_config(cfg_.connect_timeout.count() > 0, fn, "connect_timeout (ms)", "> 0",
                 cfg_.connect_timeout.count());
    check_config(cfg_.timeout.count() > 0, fn, "timeout (ms)", "> 0", cfg_.timeout.count());
    check_config(cfg_.max_retries >= 0, fn, "max_retries", ">= 0", cfg_.max_retries);
    check_config(cfg_.initial_backoff.count() >= 0, fn, "initial_backoff (ms)", ">= 0",
                 cfg_.initial_backoff.count());
    check_config(cfg_.max_backoff.count() >= 0, fn, "max_backoff (ms)", ">= 0",
                 cfg_.max_backoff.count());
    check_config(cfg_.max_parallel >= 1, fn, "max_parallel", ">= 1", cfg_.max_parallel);
    check_config(cfg_.top_logprobs >= 1, fn, "top_logprobs", ">= 1", cfg_.top_logprobs);
    check_config(cfg_.max_response_bytes >= 1, fn, "max_response_bytes", ">= 1",
                 cfg_.max_response_bytes);
  }

  /// The configuration in use (base_url without a trailing '/').
  [[nodiscard]] const http_chat_config& config() const noexcept { return cfg_; }
  /// The endpoint every request is posted to: base_url + "/chat/completions".
  [[nodiscard]] std::string endpoint() const { return cfg_.base_url + "/chat/completions"; }
  /// Counters since construction or the last reset_stats().
  [[nodiscard]] const http_chat_stats& stats() const noexcept { return stats_; }
  /// Zeroes the counters.
  void reset_stats() noexcept { stats_ = {}; }

  /// One completion per prompt, in order: choices[0].message.content of a request with
  /// max_tokens = o.max_new_tokens, o.temperature, o.top_p and seed o.seed (its low 63
  /// bits) for every prompt: as with model_generator, a completion depends on the seed, the
  /// prompt and the model only (on a server that honours seeds), not on its place in the
  /// batch. http_error when a request fails (see http_error).
  std::vector<std::string> generate(const std::vector<std::string>& prompts,
                                    const generation_options& o) {
    std::vector<std::string> bodies(prompts.size());
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      nlohmann::json req = base_request(prompts[i]);
      req["max_tokens"] = o.max_new_tokens;
      req["temperature"] = o.temperature;
      req["top_p"] = o.top_p;
      // Seeds stay within int64 (servers parse them as signed).
      req["seed"] = o.seed & static_cast<std::uint64_t>(INT64_MAX);
      bodies[i] = dump(req);
    }
    std::vector<std::string> out(prompts.size());
    run_all(bodies, [&](std::size_t i, const nlohmann::json& resp, int status, int attempts) {
      out[i] = content_of(resp, status, attempts);
    });
    return out;
  }

  /// For each prompt, the log-probability of each option as the first token of the answer:
  /// one request with max_tokens 1, temperature 0, "logprobs": true and "top_logprobs",
  /// read from choices[0].logprobs.content[0].top_logprobs. An option matches a listed
  /// token when both are equal after trimming whitespace (case-sensitive); several matches
  /// ("A" and " A") are summed (log-sum-exp). -infinity when nothing matches, when the
  /// option is blank, or when the server returns no log-probs. http_error when a request
  /// fails or the response has no choices.
  std::vector<std::vector<float>> option_log_probs(const std::vector<std::string>& prompts,
                                                   const std::vector<std::string>& options) {
    std::vector<std::string> bodies(prompts.size());
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      nlohmann::json req = base_request(prompts[i]);
      req["max_tokens"] = 1;
      req["temperature"] = 0;
      req["logprobs"] = true;
      req["top_logprobs"] = cfg_.top_logprobs;
      bodies[i] = dump(req);
    }
    std::vector<std::vector<float>> out(prompts.size());
    run_all(bodies, [&](std::size_t i, const nlohmann::json& resp, int status, int attempts) {
      out[i] = option_values(resp, options, status, attempts);
    });
    return out;
  }

 private:
  static constexpr float neg_inf = -std::numeric_limits<float>::infinity();

  [[nodiscard]] nlohmann::json base_request(const std::string& prompt) const {
    nlohmann::json messages = nlohmann::json::array();
    if (!cfg_.system_prompt.empty()) {
      messages.push_back({{"role", "system"}, {"content", cfg_.system_prompt}});
    }
    messages.push_back({{"role", "user"}, {"content", prompt}});
    nlohmann::json req = nlohmann::json::object();
    req["model"] = cfg_.model;
    req["messages"] = std::move(messages);
    return req;
  }

  // Invalid UTF-8 in a prompt becomes U+FFFD rather than an exception.
  static std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  [[nodiscard]] std::string where() const { return "http_chat_client: POST " + endpoint(); }

  [[noreturn]] void bad_response(const std::string& what, int status, int attempts) const {
    throw http_error(rlhf::detail::concat(where(), ": HTTP ", status, " response ", what), status,
                     attempts);
  }

  // choices[0] of a parsed response, or http_error naming what is missing.
  [[nodiscard]] const nlohmann::json& first_choice(const nlohmann::json& resp, int status,
                                                   int attempts) const {
    if (!resp.is_object()) bad_response("is not a JSON object", status, attempts);
    const auto c = resp.find("choices");
    if (c == resp.end()) bad_response("has no \"choices\" field", status, attempts);
    if (!c->is_array() || c->empty() || !(*c)[0].is_object()) {
      bad_response("has no choices[0] (\"choices\" is not a non-empty array of objects)", status,
                   attempts);
    }
    return (*c)[0];
  }

  [[nodiscard]] std::string content_of(const nlohmann::json& resp, int status, int attempts) const {
    const nlohmann::json& choice = first_choice(resp, status, attempts);
    const auto m = choice.find("message");
    if (m == choice.end() || !m->is_object()) {
      bad_response("has no choices[0].message object", status, attempts);
    }
    const auto content = m->find("content");
    if (content != m->end() && content->is_string()) return content->get<std::string>();
    if (content != m->end() && content->is_array()) {  // content parts: join their text
      std::string text;
      for (const auto& part : *content) {
        if (!part.is_object()) continue;
        const auto t = part.find("text");
        if (t != part.end() && t->is_string()) text += t->get_ref<const std::string&>();
      }
      return text;
    }
    bad_response("has no choices[0].message.content string", status, attempts);
  }

  [[nodiscard]] std::vector<float> option_values(const nlohmann::json& resp,
                                                 const std::vector<std::string>& options,
                                                 int status, int attempts) const {
    const nlohmann::json& choice = first_choice(resp, status, attempts);
    std::vector<float> values(options.size(), neg_inf);
    // choices[0].logprobs.content[0].top_logprobs; anything absent: no log-probs.
    const auto lp = choice.find("logprobs");
    if (lp == choice.end() || !lp->is_object()) return values;
    const auto content = lp->find("content");
    if (content == lp->end() || !content->is_array() || content->empty()) return values;
    const nlohmann::json& first = (*content)[0];
    if (!first.is_object()) return values;
    const auto top = first.find("top_logprobs");
    if (top == first.end() || !top->is_array()) return values;
    for (std::size_t k = 0; k < options.size(); ++k) {
      const std::string_view want = detail::http_trim(options[k]);
      if (want.empty()) continue;
      std::vector<double> hits;
      for (const auto& entry : *top) {
        if (!entry.is_object()) continue;
        const auto tok = entry.find("token");
        const auto val = entry.find("logprob");
        if (tok == entry.end() || !tok->is_string() || val == entry.end() || !val->is_number()) {
          continue;
        }
        if (detail::http_trim(tok->get_ref<const std::string&>()) != want) continue;
        const double v = val->get<double>();
        if (!std::isnan(v)) hits.push_back(v);
      }
      if (hits.empty()) continue;
      const double mx = *std::max_element(hits.begin(), hits.end());
      if (std::isinf(mx)) {
        values[k] = static_cast<float>(mx);
        continue;
      }
      double sum = 0.0;
      for (const double h : hits) sum += std::exp(h - mx);
      values[k] = static_cast<float>(mx + std::log(sum));
    }
    return values;
  }

  // The wait before attempt `attempt` + 1 of request `index` (retry number `attempt`).
  [[nodiscard]] std::chrono::milliseconds backoff(std::size_t index, int attempt,
                                                  const detail::http_exchange& ex) const {
    const auto cap = cfg_.max_backoff;
    if (ex.retry_after_s) {  // at most a day (http_parse_retry_after): no overflow
      return std::min(std::chrono::milliseconds(*ex.retry_after_s * 1000), cap);
    }
    std::int64_t d = cfg_.initial_backoff.count();
    for (int i = 1; i < attempt && d < cap.count(); ++i) d *= 2;
    d = std::min<std::int64_t>(d, cap.count());
    const std::uint64_t r = detail::http_mix(
        cfg_.backoff_seed ^
        detail::http_mix(index * 0x100000001B3ULL + static_cast<std::uint64_t>(attempt)));
    const double u = static_cast<double>(r >> 11) * 0x1.0p-53;  // [0, 1)
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(d) * (0.5 + 0.5 * u)));
  }

  // What one worker counts; summed into stats_ after the workers are joined.
  struct counters {
    std::size_t requests = 0;
    std::size_t attempts = 0;
    std::size_t retries = 0;
  };

  // POSTs `body` until it succeeds, returning the parsed 2xx response; the number of
  // attempts and the final status come back through `attempts` and `status`.
  nlohmann::json request(CURL* h, curl_slist* headers, const std::string& body, std::size_t index,
                         counters& n, int& status, int& attempts,
                         const std::atomic<bool>& stop) const {
    const std::string url = endpoint();
    const int total = 1 + cfg_.max_retries;
    for (int attempt = 1;; ++attempt) {
      ++n.attempts;
      if (attempt > 1) ++n.retries;
      const detail::http_exchange ex = detail::http_post_json(
          h, url, body, headers, cfg_.connect_timeout, cfg_.timeout, cfg_.max_response_bytes);
      attempts = attempt;
      status = static_cast<int>(ex.status);
      std::string failure;
      if (ex.code != CURLE_OK) {
        failure = rlhf::detail::concat("curl error ", static_cast<int>(ex.code), " (",
                                       ex.curl_message, ")");
        if (!detail::http_transient(ex.code)) {
          throw http_error(rlhf::detail::concat(where(), " failed: ", failure), 0, attempt);
        }
      } else if (status >= 200 && status < 300) {
        auto j = nlohmann::json::parse(ex.body, nullptr, false);
        if (j.is_discarded()) {
          bad_response(
              rlhf::detail::concat("is not valid JSON: '", detail::http_excerpt(ex.body), "'"),
              status, attempt);
        }
        return j;
      } else if (status == 429 || status >= 500) {
        failure = rlhf::detail::concat("HTTP ", status, ": ", detail::http_server_message(ex.body));
      } else {
        throw http_error(rlhf::detail::concat(where(), " failed: HTTP ", status, ": ",
                                              detail::http_server_message(ex.body)),
                         status, attempt);
      }
      if (attempt >= total || stop.load()) {
        throw http_error(
            rlhf::detail::concat(where(), " failed after ", attempt,
                                 attempt == 1 ? " attempt" : " attempts", "; last: ", failure),
            status, attempt);
      }
      std::this_thread::sleep_for(backoff(index, attempt, ex));
    }
  }

  // Posts every body (up to max_parallel at a time) and hands each parsed response to
  // on_response(index, json, status, attempts). The first failure stops the others (they
  // finish the request in flight) and is rethrown once every worker has stopped.
  template <class F>
  void run_all(const std::vector<std::string>& bodies, F&& on_response) {
    if (bodies.empty()) return;
    if (detail::http_curl_global_init() != CURLE_OK) {
      throw http_error("http_chat_client: curl_global_init failed", 0, 0);
    }
    curl_slist* raw = nullptr;
    for (const std::string& line : header_lines()) {
      curl_slist* next = curl_slist_append(raw, line.c_str());
      if (next == nullptr) {
        curl_slist_free_all(raw);
        throw http_error("http_chat_client: out of memory building the request headers", 0, 0);
      }
      raw = next;
    }
    const detail::http_slist headers(raw);

    std::atomic<std::size_t> next_index{0};
    std::atomic<bool> stop{false};
    std::mutex error_mutex;
    std::exception_ptr first_error;
    std::size_t first_error_index = bodies.size();
    std::vector<counters> per_worker(std::min(cfg_.max_parallel, bodies.size()));

    auto worker = [&](counters& n) {
      try {
        const detail::http_easy_handle h(curl_easy_init());
        if (!h) throw http_error("http_chat_client: curl_easy_init failed", 0, 0);
        while (!stop.load()) {
          const std::size_t i = next_index.fetch_add(1);
          if (i >= bodies.size()) break;
          int status = 0;
          int attempts = 0;
          try {
            const nlohmann::json resp = request(h.get(), headers.get(), bodies[i], i, n, status,
                                                attempts, stop);
            on_response(i, resp, status, attempts);
            ++n.requests;
          } catch (...) {
            const std::lock_guard<std::mutex> lock(error_mutex);
            if (i < first_error_index) {  // the lowest failing prompt's error
              first_error_index = i;
              first_error = std::current_exception();
            }
            stop.store(true);
          }
        }
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        stop.store(true);
      }
    };

    if (per_worker.size() == 1) {
      worker(per_worker[0]);
    } else {
      std::vector<std::thread> threads;
      threads.reserve(per_worker.size());
      try {
        for (counters& n : per_worker) threads.emplace_back(worker, std::ref(n));
      } catch (...) {
        stop.store(true);
        for (std::thread& t : threads) t.join();
        throw;
      }
      for (std::thread& t : threads) t.join();
    }
    for (const counters& n : per_worker) {
      stats_.requests += n.requests;
      stats_.attempts += n.attempts;
      stats_.retries += n.retries;
    }
    if (first_error) std::rethrow_exception(first_error);
  }

  [[nodiscard]] std::vector<std::string> header_lines() const {
    std::vector<std::string> lines{"Content-Type: application/json", "Accept: application/json",
                                   "Expect:"};  // no 100-continue round trip for big bodies
    if (!cfg_.api_key.empty()) lines.push_back("Authorization: Bearer " + cfg_.api_key);
    return lines;
  }

  http_chat_config cfg_;
  http_chat_stats stats_;
};

static_assert(text_generator<http_chat_client>);
static_assert(option_scorer<http_chat_client>);

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
