// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The bundled transformer (model/gpt.hpp) as a text_generator and an option_scorer
// (cai/generator.hpp), for critique/revision loops and AI judges run in-process.
//
//   generate(prompts (P), o)          chat_template::prompt_ids(prompt) per prompt, batched
//                                     model::generate (KV cache), decoded up to EOS
//   option_log_probs(prompts (P),     one cached forward over prompt ids + option ids
//                    options (K))     (P·K rows, right-padded): Σ log softmax(logits)[token]
//                                     over the option's tokens -> P × K
//
// Seeding: prompt p samples from the Philox stream (o.seed, fnv1a64(p)) (model/sampling.hpp),
// so its completion is a function of (seed, prompt text, model) alone: the same batched or
// alone, in any order (two copies of one prompt in a call get the same completion; vary the
// seed for several samples). A prompt too long for the context is cut at its start so that
// it and max_new_tokens (or the option) fit max_seq_len.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/cai/detail/text.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/core/config.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/sampling.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// A model::gpt (kept by reference) with its tokenizer and chat template; see the top of
/// this header.
template <class B, model::tokenizer Tok = model::byte_tokenizer>
class model_generator {
 public:
  /// `m` must outlive the generator. `batch_size`: rows per model call (memory).
  /// config_error when batch_size is 0.
  explicit model_generator(const model::gpt<B>& m, Tok tok = {}, model::chat_template tmpl = {},
                           std::size_t batch_size = 8)
      : m_(m), tok_(std::move(tok)), tmpl_(std::move(tmpl)), batch_size_(batch_size) {
    check_config(batch_size_ >= 1, "model_generator", "batch_size", ">= 1", batch_size_);
  }

  /// One completion per prompt (EOS dropped). config_error on options the model cannot
  /// honour (max_new_tokens 0 or >= max_seq_len, temperature < 0, top_p outside (0, 1]).
  std::vector<std::string> generate(const std::vector<std::string>& prompts,
                                    const generation_options& o) {
    constexpr const char* fn = "model_generator::generate";
    const index_t context = m_.config().max_seq_len;
    check_config(o.max_new_tokens >= 1 && static_cast<index_t>(o.max_new_tokens) < context, fn,
                 "max_new_tokens", rlhf::detail::concat("in [1, max_seq_len = ", context, ")"),
                 o.max_new_tokens);
    model::generation_config gc;
    gc.max_new_tokens = static_cast<index_t>(o.max_new_tokens);
    gc.sampling.temperature = o.temperature;
    gc.sampling.top_p = o.top_p;
    gc.sampling.seed = o.seed;
    model::validate(gc.sampling, fn);
    const auto eos = static_cast<std::int32_t>(tok_.eos_id());
    gc.stop_tokens = {eos};
    gc.pad_token = static_cast<std::int32_t>(tok_.pad_id());
    std::vector<std::string> out;
    out.reserve(prompts.size());
    for (std::size_t first = 0; first < prompts.size(); first += batch_size_) {
      const std::size_t count = std::min(batch_size_, prompts.size() - first);
      std::vector<std::vector<std::int32_t>> ids;
      gc.row_ids.clear();
      for (std::size_t i = first; i < first + count; ++i) {
        ids.push_back(prompt_ids(prompts[i], gc.max_new_tokens));
        gc.row_ids.push_back(row_id(prompts[i]));
      }
      const auto res = model::generate<B>(m_, ids, gc);
      const auto tokens = ops::to_host<B>(res.tokens);
      const index_t width = res.prompt_width + gc.max_new_tokens;
      for (std::size_t r = 0; r < count; ++r) {
        const auto* begin = tokens.data() + static_cast<index_t>(r) * width + res.prompt_width;
        std::vector<std::int32_t> completion(begin, begin + res.lengths[r]);
        if (!completion.empty() && completion.back() == eos) completion.pop_back();
        out.push_back(tok_.decode(std::span<const std::int32_t>(completion)));
      }
    }
    return out;
  }

  /// P × K: entry [p][k] = log P(options[k]'s tokens | prompt p's chat prompt), the sum of
  /// the model's log-softmax (temperature 1) over the option's tokens; 0 for an empty
  /// option. config_error when an option alone does not fit the context.
  std::vector<std::vector<float>> option_log_probs(const std::vector<std::string>& prompts,
                                                   const std::vector<std::string>& options) {
    constexpr const char* fn = "model_generator::option_log_probs";
    const index_t context = m_.config().max_seq_len;
    const index_t V = m_.config().vocab_size;
    std::vector<std::vector<std::int32_t>> opt_ids;
    for (std::size_t k = 0; k < options.size(); ++k) {
      opt_ids.push_back(tok_.encode(options[k]));
      check_config(static_cast<index_t>(opt_ids.back().size()) < context, fn,
                   rlhf::detail::concat("options[", k, "]'s length in tokens"),
                   rlhf::detail::concat("< max_seq_len = ", context), opt_ids.back().size());
    }
    std::vector<std::vector<float>> out(prompts.size(), std::vector<float>(options.size(), 0.0f));
    // Rows (p, k) with a non-empty option, scored batch_size at a time.
    std::vector<std::pair<std::size_t, std::size_t>> rows;
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      for (std::size_t k = 0; k < options.size(); ++k) {
        if (!opt_ids[k].empty()) rows.emplace_back(p, k);
      }
    }
    const auto pad = static_cast<std::int32_t>(tok_.pad_id());
    for (std::size_t first = 0; first < rows.size(); first += batch_size_) {
      const std::size_t count = std::min(batch_size_, rows.size() - first);
      std::vector<std::vector<std::int32_t>> seqs;
      std::vector<std::size_t> prompt_len;
      index_t T = 1;
      for (std::size_t r = first; r < first + count; ++r) {
        const auto& [p, k] = rows[r];
        auto s = prompt_ids(prompts[p], static_cast<index_t>(opt_ids[k].size()));
        prompt_len.push_back(s.size());
        s.insert(s.end(), opt_ids[k].begin(), opt_ids[k].end());
        T = std::max(T, static_cast<index_t>(s.size()));
        seqs.push_back(std::move(s));
      }
      const auto n = static_cast<index_t>(count);
      std::vector<std::int32_t> flat(static_cast<std::size_t>(n * T), pad);
      for (std::size_t r = 0; r < count; ++r) {
        std::copy(seqs[r].begin(), seqs[r].end(),
                  flat.begin() + static_cast<std::ptrdiff_t>(r) * T);
      }
      const auto tokens = ops::index_from_host<B>(std::span<const std::int32_t>(flat), shape{n, T});
      model::kv_cache<B> cache(m_.config(), n, T);
      typename B::tensor logits(shape{n, T, V});
      const std::vector<index_t> start(static_cast<std::size_t>(n), 0);
      model::gpt_forward_cached<B>(m_, cache, tokens, start, logits);
      const auto host = ops::to_host<B>(logits);
      for (std::size_t r = 0; r < count; ++r) {
        double lp = 0;
        for (std::size_t t = prompt_len[r]; t < seqs[r].size(); ++t) {
          const float* row = host.data() +
                             (static_cast<index_t>(r) * T + static_cast<index_t>(t) - 1) * V;
          lp += log_softmax_at(row, V, seqs[r][t]);
        }
        const auto& [p, k] = rows[first + r];
        out[p][k] = static_cast<float>(lp);
      }
    }
    return out;
  }

  /// The tokenizer.
  [[nodiscard]] const Tok& tokenizer() const noexcept { return tok_; }
  /// The chat template.
  [[nodiscard]] const model::chat_template& chat() const noexcept { return tmpl_; }

 private:
  /// The sampling row id of a prompt: its hash in [0, 2^31).
  static std::int32_t row_id(const std::string& prompt) {
    return static_cast<std::int32_t>(detail::fnv1a64(prompt) & 0x7fffffffu);
  }

  /// The chat prompt's ids, cut at the start to leave `room` positions of the context.
  [[nodiscard]] std::vector<std::int32_t> prompt_ids(const std::string& prompt,
                                                     index_t room) const {
    auto ids = tmpl_.prompt_ids(tok_, prompt);
    const auto keep = static_cast<std::size_t>(m_.config().max_seq_len - room);
    if (ids.size() > keep) ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(keep));
    return ids;
  }

  /// log softmax(row)[id] for a row of V logits, in double.
  static double log_softmax_at(const float* row, index_t V, std::int32_t id) {
    double mx = -std::numeric_limits<double>::infinity();
    for (index_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    double sum = 0;
    for (index_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
    return static_cast<double>(row[id]) - mx - std::log(sum);
  }

  const model::gpt<B>& m_;
  Tok tok_;
  model::chat_template tmpl_;
  std::size_t batch_size_;
};

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
