// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::cai::http_chat_client against a scripted loopback server (tests/cai/loopback_server.hpp):
// the requests it sends, what it reads back, and its retries, backoff, timeouts and errors.
// Timeouts and backoffs are tens of milliseconds, so the whole file runs in a few seconds.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <rlhf/cai/http_chat.hpp>

#include "loopback_server.hpp"

namespace {

using rlhf::cai::generation_options;
using rlhf::cai::http_chat_client;
using rlhf::cai::http_chat_config;
using rlhf::cai::http_error;
using rlhf_test::loopback_server;
using rlhf_test::scripted_response;
using namespace std::chrono_literals;

using clock_type = std::chrono::steady_clock;

std::string chat_body(const std::string& content) {
  return nlohmann::json{{"id", "x"},
                        {"object", "chat.completion"},
                        {"choices",
                         {{{"index", 0},
                           {"message", {{"role", "assistant"}, {"content", content}}},
                           {"finish_reason", "stop"}}}}}
      .dump();
}

scripted_response ok(const std::string& content) { return {200, chat_body(content), {}, 0ms}; }

http_chat_config fast_config(const std::string& base_url) {
  http_chat_config c;
  c.base_url = base_url;
  c.model = "test-model";
  c.connect_timeout = 500ms;
  c.timeout = 2000ms;
  c.max_retries = 2;
  c.initial_backoff = 1ms;
  c.max_backoff = 20ms;
  return c;
}

// The message of the http_error `f` throws (fails the test when it throws none).
template <class F>
http_error expect_http_error(F&& f) {
  try {
    f();
  } catch (const http_error& e) {
    return e;
  }
  FAIL("no http_error was thrown");
  return http_error("", -1, -1);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

}  // namespace

TEST_CASE("http_chat: generate posts the OpenAI request and returns the content") {
  loopback_server server({ok("first answer"), ok("second answer")});
  auto cfg = fast_config(server.base_url() + "/");  // trailing '/' is dropped
  cfg.api_key = "sk-test";
  cfg.system_prompt = "You are terse.";
  http_chat_client client(cfg);
  CHECK(client.endpoint() == server.base_url() + "/chat/completions");

  generation_options o;
  o.max_new_tokens = 17;
  o.temperature = 0.5f;
  o.top_p = 0.75f;
  o.seed = 42;
  const auto out = client.generate({"hello", "bonjour \xc3\xa9"}, o);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == "first answer");
  CHECK(out[1] == "second answer");

  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(reqs[i].method == "POST");
    CHECK(reqs[i].target == "/v1/chat/completions");
    CHECK(reqs[i].headers.at("authorization") == "Bearer sk-test");
    CHECK(contains(reqs[i].headers.at("content-type"), "application/json"));
    const auto j = nlohmann::json::parse(reqs[i].body);
    CHECK(j.at("model") == "test-model");
    CHECK(j.at("max_tokens") == 17);
    CHECK(j.at("temperature").get<double>() == doctest::Approx(0.5));
    CHECK(j.at("top_p").get<double>() == doctest::Approx(0.75));
    CHECK(j.at("seed") == 42);
    const auto& m = j.at("messages");
    REQUIRE(m.size() == 2);
    CHECK(m[0].at("role") == "system");
    CHECK(m[0].at("content") == "You are terse.");
    CHECK(m[1].at("role") == "user");
  }
  CHECK(nlohmann::json::parse(reqs[0].body)["messages"][1]["content"] == "hello");
  CHECK(nlohmann::json::parse(reqs[1].body)["messages"][1]["content"] == "bonjour \xc3\xa9");
  CHECK(client.stats().requests == 2);
  CHECK(client.stats().attempts == 2);
  CHECK(client.stats().retries == 0);
}

TEST_CASE("http_chat: no system message and no Authorization unless configured") {
  loopback_server server({ok("x")});
  http_chat_client client(fast_config(server.base_url()));
  CHECK(client.generate({"p"}, {}) == std::vector<std::string>{"x"});
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].headers.count("authorization") == 0);
  const auto j = nlohmann::json::parse(reqs[0].body);
  REQUIRE(j.at("messages").size() == 1);
  CHECK(j["messages"][0]["role"] == "user");
  CHECK(client.generate({}, {}).empty());  // nothing to send: no request
  CHECK(server.requests().size() == 1);
}

TEST_CASE("http_chat: 429 then success is retried (two attempts)") {
  loopback_server server({{429, R"({"error":{"message":"slow down"}})", {}, 0ms}, ok("done")});
  http_chat_client client(fast_config(server.base_url()));
  CHECK(client.generate({"p"}, {}) == std::vector<std::string>{"done"});
  CHECK(server.requests().size() == 2);
  CHECK(client.stats().attempts == 2);
  CHECK(client.stats().retries == 1);
  CHECK(client.stats().requests == 1);
}

TEST_CASE("http_chat: a dropped connection is retried") {
  scripted_response drop;
  drop.drop = true;
  loopback_server server({drop, ok("after drop")});
  http_chat_client client(fast_config(server.base_url()));
  CHECK(client.generate({"p"}, {}) == std::vector<std::string>{"after drop"});
  CHECK(client.stats().attempts == 2);
}

TEST_CASE("http_chat: Retry-After is honoured, capped by max_backoff") {
  SUBCASE("honoured") {
    loopback_server server({{503, "{}", {{"Retry-After", "1"}}, 0ms}, ok("late")});
    auto cfg = fast_config(server.base_url());
    cfg.max_backoff = 5000ms;  // the 1 ms initial backoff alone would retry at once
    http_chat_client client(cfg);
    const auto t0 = clock_type::now();
    CHECK(client.generate({"p"}, {}) == std::vector<std::string>{"late"});
    const double waited = ms_since(t0);
    CHECK(waited >= 950.0);
    CHECK(waited < 3000.0);
  }
  SUBCASE("capped") {
    loopback_server server({{429, "{}", {{"Retry-After", "30"}}, 0ms}, ok("soon")});
    auto cfg = fast_config(server.base_url());
    cfg.max_backoff = 30ms;
    http_chat_client client(cfg);
    const auto t0 = clock_type::now();
    CHECK(client.generate({"p"}, {}) == std::vector<std::string>{"soon"});
    const double waited = ms_since(t0);
    CHECK(waited >= 25.0);
    CHECK(waited < 1000.0);
  }
}

TEST_CASE("http_chat: exponential backoff between retries") {
  loopback_server server({{500, "{}", {}, 0ms}, {500, "{}", {}, 0ms}, ok("third")});
  auto cfg = fast_config(server.base_url());
  cfg.initial_backoff = 40ms;
  cfg.max_backoff = 1000ms;
  http_chat_client client(cfg);
  const auto t0 = clock_type::now();
  CHECK(client.generate({"p"}, {}) == std::vector<std::string>{"third"});
  // Waits drawn in [d/2, d): d = 40 ms, then 80 ms.
  const double waited = ms_since(t0);
  CHECK(waited >= 60.0);
  CHECK(waited < 1000.0);
  CHECK(client.stats().attempts == 3);
}

TEST_CASE("http_chat: 500 until the retries are exhausted") {
  loopback_server server({{500, R"({"error":{"message":"model crashed"}})", {}, 0ms}});
  http_chat_client client(fast_config(server.base_url()));  // max_retries = 2
  const http_error e = expect_http_error([&] { client.generate({"p"}, {}); });
  const std::string what = e.what();
  CHECK(e.status() == 500);
  CHECK(e.attempts() == 3);
  CHECK(contains(what, "after 3 attempts"));
  CHECK(contains(what, "HTTP 500"));
  CHECK(contains(what, "model crashed"));
  CHECK(contains(what, "/v1/chat/completions"));
  CHECK(server.requests().size() == 3);
}

TEST_CASE("http_chat: max_retries = 0 makes one attempt") {
  loopback_server server({{503, "overloaded", {}, 0ms}});
  auto cfg = fast_config(server.base_url());
  cfg.max_retries = 0;
  http_chat_client client(cfg);
  const http_error e = expect_http_error([&] { client.generate({"p"}, {}); });
  CHECK(e.attempts() == 1);
  CHECK(contains(e.what(), "after 1 attempt;"));
  CHECK(contains(e.what(), "overloaded"));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("http_chat: a 400 fails at once with the server's message") {
  const std::string long_tail(2000, 'z');
  SUBCASE("OpenAI error object") {
    loopback_server server(
        {{400, R"({"error":{"message":"max_tokens is too large","type":"invalid"}})", {}, 0ms},
         ok("never")});
    http_chat_client client(fast_config(server.base_url()));
    const http_error e = expect_http_error([&] { client.generate({"p"}, {}); });
    CHECK(e.status() == 400);
    CHECK(e.attempts() == 1);
    CHECK(contains(e.what(), "HTTP 400"));
    CHECK(contains(e.what(), "max_tokens is too large"));
    CHECK(server.requests().size() == 1);
  }
  SUBCASE("plain text, truncated") {
    loopback_server server({{404, "no such route " + long_tail, {}, 0ms}});
    http_chat_client client(fast_config(server.base_url()));
    const http_error e = expect_http_error([&] { client.generate({"p"}, {}); });
    CHECK(e.status() == 404);
    CHECK(contains(e.what(), "no such route"));
    CHECK(std::string(e.what()).size() < 600);
    CHECK(server.requests().size() == 1);
  }
}

TEST_CASE("http_chat: a server slower than the timeout is retried, then fails") {
  scripted_response slow = ok("too late");
  slow.delay = 1500ms;
  loopback_server server({slow});
  auto cfg = fast_config(server.base_url());
  cfg.timeout = 150ms;
  cfg.max_retries = 1;
  http_chat_client client(cfg);
  const auto t0 = clock_type::now();
  const http_error e = expect_http_error([&] { client.generate({"p"}, {}); });
  const double took = ms_since(t0);
  CHECK(e.status() == 0);
  CHECK(e.attempts() == 2);
  CHECK(contains(e.what(), "after 2 attempts"));
  CHECK(contains(e.what(), "curl error 28"));
  CHECK(took >= 280.0);
  CHECK(took < 1400.0);
  CHECK(server.requests().size() == 2);
}

TEST_CASE("http_chat: connection refused is retried, then fails") {
  const int port = loopback_server::closed_port();
  http_chat_client client(fast_config("http://127.0.0.1:" + std::to_string(port) + "/v1"));
  const http_error e = expect_http_error([&] { client.generate({"p"}, {}); });
  CHECK(e.status() == 0);
  CHECK(e.attempts() == 3);
  CHECK(contains(e.what(), "after 3 attempts"));
  CHECK(contains(e.what(), "curl error 7"));
}

TEST_CASE("http_chat: malformed and incomplete responses are clear errors") {
  struct bad_case {
    std::string body;
    std::string expect;
  };
  const std::vector<bad_case> cases = {
      {"{\"choices\": [", "is not valid JSON"},
      {"", "is not valid JSON"},
      {std::string("\x00\xff\xfe garbage", 11), "is not valid JSON"},
      {R"({"object":"chat.completion"})", "\"choices\""},
      {"[]", "not a JSON object"},
      {"null", "not a JSON object"},
      {R"({"choices":null})", "choices[0]"},
      {R"({"choices":[]})", "choices[0]"},
      {R"({"choices":[1]})", "choices[0]"},
      {R"({"choices":[{}]})", "choices[0].message"},
      {R"({"choices":[{"message":"hi"}]})", "choices[0].message"},
      {R"({"choices":[{"message":{"role":"assistant"}}]})", "choices[0].message.content"},
      {R"({"choices":[{"message":{"content":null}}]})", "choices[0].message.content"},
      {R"({"choices":[{"message":{"content":5}}]})", "choices[0].message.content"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    loopback_server server({{200, c.body, {}, 0ms}});
    http_chat_client client(fast_config(server.base_url()));
    const http_error e = expect_http_error([&] { client.generate({"p"}, {}); });
    CHECK(contains(e.what(), c.expect));
    CHECK(e.status() == 200);
    CHECK(e.attempts() == 1);
    CHECK(server.requests().size() == 1);  // not retried
  }
}

TEST_CASE("http_chat: option_log_probs reads the top log-probs of the first token") {
  // "A" and " A" are the same option after trimming (log-sum-exp); "b" is not "B"
  // (case-sensitive); entries without a numeric log-prob or a string token are ignored.
  const auto with_lp = nlohmann::json::parse(R"({"choices": [{
      "index": 0,
      "message": {"role": "assistant", "content": "A"},
      "logprobs": {"content": [{
          "token": "A", "logprob": -0.7,
          "top_logprobs": [
              {"token": "A", "logprob": -0.7},
              {"token": " A", "logprob": -1.5},
              {"token": "B", "logprob": -2.0},
              {"token": "b", "logprob": -0.1},
              {"token": "C", "logprob": "oops"},
              {"token": 3, "logprob": -0.5},
              {"token": "E", "logprob": -0.9},
              {"token": "E", "logprob": -3.0}]}]}}]})");
  loopback_server server({{200, with_lp.dump(), {}, 0ms}});
  http_chat_client client(fast_config(server.base_url()));
  const auto lp = client.option_log_probs({"Which is better?"}, {"A", "B", " C ", "D", " ", "E\n"});
  REQUIRE(lp.size() == 1);
  REQUIRE(lp[0].size() == 6);
  CHECK(lp[0][0] == doctest::Approx(std::log(std::exp(-0.7) + std::exp(-1.5))));
  CHECK(lp[0][1] == doctest::Approx(-2.0));
  CHECK(std::isinf(lp[0][2]));  // its only entry has no numeric log-prob
  CHECK(lp[0][2] < 0.0f);
  CHECK(std::isinf(lp[0][3]));
  CHECK(std::isinf(lp[0][4]));  // blank option
  CHECK(lp[0][5] == doctest::Approx(std::log(std::exp(-0.9) + std::exp(-3.0))));

  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 1);
  const auto j = nlohmann::json::parse(reqs[0].body);
  CHECK(j.at("max_tokens") == 1);
  CHECK(j.at("temperature") == 0);
  CHECK(j.at("logprobs") == true);
  CHECK(j.at("top_logprobs") == 20);
  CHECK(j.at("model") == "test-model");
  CHECK(j.at("messages").back().at("content") == "Which is better?");
}

TEST_CASE("http_chat: option_log_probs without log-probs gives -infinity") {
  const std::vector<std::string> bodies = {
      chat_body("A"),  // no logprobs field
      R"({"choices":[{"message":{"content":"A"},"logprobs":null}]})",
      R"({"choices":[{"message":{"content":"A"},"logprobs":{"content":[]}}]})",
      R"({"choices":[{"message":{"content":"A"},"logprobs":{"content":[7]}}]})",
      R"({"choices":[{"message":{"content":"A"},"logprobs":{"content":[{"top_logprobs":{}}]}}]})",
      R"({"choices":[{"logprobs":{"content":[{"top_logprobs":[1,null,{"token":"A"}]}]}}]})",
  };
  for (const auto& body : bodies) {
    CAPTURE(body);
    loopback_server server({{200, body, {}, 0ms}});
    http_chat_client client(fast_config(server.base_url()));
    const auto lp = client.option_log_probs({"q1", "q2"}, {"A", "B"});
    REQUIRE(lp.size() == 2);
    for (const auto& row : lp) {
      REQUIRE(row.size() == 2);
      CHECK(row[0] == -std::numeric_limits<float>::infinity());
      CHECK(row[1] == -std::numeric_limits<float>::infinity());
    }
  }
  // No choices at all is an error, not -infinity.
  loopback_server server({{200, R"({"error":null})", {}, 0ms}});
  http_chat_client client(fast_config(server.base_url()));
  const http_error e = expect_http_error([&] { client.option_log_probs({"q"}, {"A"}); });
  CHECK(contains(e.what(), "\"choices\""));
}

TEST_CASE("http_chat: parallel requests keep the prompts' order") {
  // The server answers each prompt with its own text reversed, a little late.
  loopback_server server([](const rlhf_test::received_request& r, std::size_t) {
    const std::string p = nlohmann::json::parse(r.body)["messages"][0]["content"];
    scripted_response s = ok(std::string(p.rbegin(), p.rend()));
    s.delay = 50ms;
    return s;
  });
  auto cfg = fast_config(server.base_url());
  cfg.max_parallel = 4;
  http_chat_client client(cfg);
  std::vector<std::string> prompts;
  prompts.reserve(12);
  for (int i = 0; i < 12; ++i) prompts.push_back("prompt-" + std::to_string(i));
  const auto t0 = clock_type::now();
  const auto out = client.generate(prompts, {});
  const double took = ms_since(t0);
  REQUIRE(out.size() == prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    CHECK(out[i] == std::string(prompts[i].rbegin(), prompts[i].rend()));
  }
  CHECK(server.requests().size() == prompts.size());
  CHECK(client.stats().requests == prompts.size());
  CHECK(took < 450.0);  // overlapped: in turn it would take at least 12 × 50 ms

  // A failure is reported when parallel too, and stops the remaining prompts.
  loopback_server failing({{400, R"({"error":"bad prompt"})", {}, 0ms}});
  cfg.base_url = failing.base_url();
  http_chat_client client2(cfg);
  const http_error e = expect_http_error([&] { client2.generate(prompts, {}); });
  CHECK(contains(e.what(), "bad prompt"));
  CHECK(failing.requests().size() <= 4);
}

TEST_CASE("http_chat: bad configuration is a config_error") {
  http_chat_config c;
  c.base_url = "ftp://example";
  CHECK_THROWS_AS(http_chat_client{c}, rlhf::config_error);
  c.base_url = "http://127.0.0.1:1/v1";
  c.timeout = 0ms;
  CHECK_THROWS_AS(http_chat_client{c}, rlhf::config_error);
  c.timeout = 100ms;
  c.max_retries = -1;
  CHECK_THROWS_AS(http_chat_client{c}, rlhf::config_error);
  c.max_retries = 0;
  c.max_parallel = 0;
  CHECK_THROWS_AS(http_chat_client{c}, rlhf::config_error);
  c.max_parallel = 1;
  CHECK_NOTHROW(http_chat_client{c});
  // http_error is an rlhf::error.
  CHECK_THROWS_AS(throw http_error("x", 500, 3), rlhf::error);
}
