// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The options of the training subcommands as one table: each option has a snake_case name
// (the key of --config files and of the config.json a run writes), a --kebab-case flag, a
// kind, a default and a help line. Resolution: defaults, then the --config file, then the
// flags given on the command line; the result is one JSON object of final values.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace rlhf_cli {

/// A mistake in how the program was called: exit status 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What an option holds.
enum class kind { integer, unsigned_integer, real, text, path, boolean, choice, list };

/// One option of a subcommand.
struct option_def {
  std::string name;                  ///< snake_case key
  kind type = kind::text;            ///< value kind
  nlohmann::json value;              ///< default (null: none / derived, see help)
  std::string help;                  ///< one line
  std::vector<std::string> choices;  ///< kind::choice (and list items) when not empty
  std::string default_text;          ///< shown instead of the value when not empty
  bool required = false;             ///< must be set by the flag or the --config file
};

/// "per_device_train_batch_size" -> "--per-device-train-batch-size".
inline std::string flag_of(const std::string& name) {
  std::string f = "--" + name;
  for (auto& c : f) {
    if (c == '_') c = '-';
  }
  return f;
}

/// `v` as the shortest decimal that reads back as the same float (5e-05, not 4.99999e-05).
inline double short_float(float v) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}

/// The default as --help shows it.
inline std::string shown_default(const option_def& o) {
  if (!o.default_text.empty()) return o.default_text;
  if (o.value.is_null()) return "none";
  if (o.value.is_string())
    return o.value.get<std::string>().empty() ? "none" : o.value.get<std::string>();
  if (o.value.is_array()) {
    std::string s;
    for (const auto& v : o.value)
      s += (s.empty() ? "" : ",") + (v.is_string() ? v.get<std::string>() : v.dump());
    return s;
  }
  return o.value.dump();
}

/// The options of one subcommand and the strings CLI11 fills in.
class option_table {
 public:
  explicit option_table(std::vector<option_def> defs) : defs_(std::move(defs)) {}

  /// Registers every option on `app` (help text with its default).
  void add_to(CLI::App& app) {
    for (const auto& d : defs_) {
      std::string help = d.help;
      if (!d.choices.empty()) {
        std::string c;
        for (const auto& s : d.choices) c += (c.empty() ? "" : "|") + s;
        help += d.type == kind::list ? " (comma list of " + c + ")" : " (" + c + ")";
      }
      help += d.required ? " [required]" : " [default: " + shown_default(d) + "]";
      if (d.type == kind::boolean) {
        flags_[d.name] = false;
        auto* opt = app.add_flag(flag_of(d.name) + ",!" + "--no-" + flag_of(d.name).substr(2),
                                 flags_[d.name], help)
                        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        options_[d.name] = opt;
      } else {
        texts_[d.name] = "";
        static const char* const type_names[] = {"INT",  "UINT", "FLOAT", "TEXT",
                                                 "PATH", "BOOL", "NAME",  "LIST"};
        options_[d.name] = app.add_option(flag_of(d.name), texts_[d.name], help)
                               ->type_name(type_names[static_cast<int>(d.type)])
                               ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      }
    }
  }

  /// Defaults, then the JSON object of `config_file` (when not empty), then the flags given.
  [[nodiscard]] nlohmann::json resolve(const std::filesystem::path& config_file) const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& d : defs_) out[d.name] = d.value;
    if (!config_file.empty()) {
      std::ifstream in(config_file);
      if (!in) throw std::runtime_error(config_file.string() + ": cannot open the file");
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(config_file.string() + ": not valid JSON: " + e.what());
      }
      if (!j.is_object())
        throw std::runtime_error(config_file.string() + ": expected a JSON object");
      for (const auto& [k, v] : j.items()) {
        const option_def* d = find(k);
        if (d == nullptr) {
          throw std::runtime_error(config_file.string() + ": unknown option '" + k + "'");
        }
        out[k] = from_json(*d, v, config_file.string() + ": '" + k + "'");
      }
    }
    for (const auto& d : defs_) {
      const auto* opt = options_.at(d.name);
      if (opt->count() == 0) continue;
      if (d.type == kind::boolean) {
        out[d.name] = flags_.at(d.name);
      } else {
        out[d.name] = from_text(d, texts_.at(d.name));
      }
    }
    for (const auto& d : defs_) {
      if (d.required && (out[d.name].is_null() || out[d.name] == "")) {
        throw usage_error(flag_of(d.name) + " is required (on the command line or in --config)");
      }
    }
    return out;
  }

 private:
  [[nodiscard]] const option_def* find(const std::string& name) const {
    for (const auto& d : defs_) {
      if (d.name == name) return &d;
    }
    return nullptr;
  }

  static void check_choice(const option_def& d, const std::string& s, const std::string& where) {
    if (d.choices.empty()) return;
    for (const auto& c : d.choices) {
      if (c == s) return;
    }
    std::string c;
    for (const auto& x : d.choices) c += (c.empty() ? "" : ", ") + x;
    throw usage_error(where + ": '" + s + "' is not one of " + c);
  }

  /// A flag's text as the option's JSON value (usage_error when it is not one).
  static nlohmann::json from_text(const option_def& d, const std::string& s) {
    const std::string where = flag_of(d.name);
    auto bad = [&](const char* what) {
      return usage_error(where + ": expected " + what + ", got '" + s + "'");
    };
    switch (d.type) {
      case kind::integer:
      case kind::unsigned_integer: {
        if (s.empty()) throw bad("an integer");
        char* end = nullptr;
        errno = 0;
        if (d.type == kind::unsigned_integer) {
          if (s[0] == '-') throw bad("a non-negative integer");
          const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
          if (errno != 0 || *end != '\0') throw bad("a non-negative integer");
          return static_cast<std::uint64_t>(v);
        }
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (errno != 0 || *end != '\0') throw bad("an integer");
        return static_cast<std::int64_t>(v);
      }
      case kind::real: {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || errno != 0 || *end != '\0') throw bad("a number");
        return v;
      }
      case kind::boolean:
        if (s == "true" || s == "1") return true;
        if (s == "false" || s == "0") return false;
        throw bad("true or false");
      case kind::choice: check_choice(d, s, where); return s;
      case kind::list: {
        nlohmann::json arr = nlohmann::json::array();
        std::size_t start = 0;
        while (start <= s.size()) {
          const auto comma = s.find(',', start);
          const std::string item = s.substr(
              start, comma == std::string::npos ? std::string::npos : comma - start);
          if (item.empty()) throw bad("a comma-separated list without empty items");
          check_choice(d, item, where);
          arr.push_back(item);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        return arr;
      }
      case kind::text:
      case kind::path: return s;
    }
    return s;
  }

  /// A --config file's value, type-checked (runtime_error naming the file and key).
  static nlohmann::json from_json(const option_def& d, const nlohmann::json& v,
                                  const std::string& where) {
    auto bad = [&](const char* what) {
      return std::runtime_error(where + ": expected " + what + ", got " + v.dump());
    };
    if (v.is_null()) return v;
    switch (d.type) {
      case kind::integer:
        if (!v.is_number_integer()) throw bad("an integer");
        return v;
      case kind::unsigned_integer:
        if (!v.is_number_unsigned()) throw bad("a non-negative integer");
        return v;
      case kind::real:
        if (!v.is_number()) throw bad("a number");
        return v.get<double>();
      case kind::boolean:
        if (!v.is_boolean()) throw bad("true or false");
        return v;
      case kind::list: {
        nlohmann::json arr = v.is_string() ? nlohmann::json::array({v}) : v;
        if (!arr.is_array()) throw bad("a list of names");
        for (const auto& x : arr) {
          if (!x.is_string()) throw bad("a list of names");
          try {
            check_choice(d, x.get<std::string>(), where);
          } catch (const usage_error& e) {
            throw std::runtime_error(e.what());
          }
        }
        return arr;
      }
      case kind::choice:
        if (!v.is_string()) throw bad("a name");
        try {
          check_choice(d, v.get<std::string>(), where);
        } catch (const usage_error& e) {
          throw std::runtime_error(e.what());
        }
        return v;
      case kind::text:
      case kind::path:
        if (!v.is_string()) throw bad("a string");
        return v;
    }
    return v;
  }

  std::vector<option_def> defs_;
  std::map<std::string, std::string> texts_;
  std::map<std::string, bool> flags_;
  std::map<std::string, CLI::Option*> options_;
};

}  // namespace rlhf_cli
