// Checks for command-line values, with messages that say what is wanted and what was given (CLI11's own range checks
// print bounds of 300 digits). They only validate; parsing into the option's type stays CLI11's.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace ks::cli {

// A whole number of at least `least` (no sign, no exponent, no fraction, no overflow).
inline CLI::Validator whole_number(long long least) {
  return CLI::Validator(
      [least](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const unsigned long long value = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
        if (!digits || errno == ERANGE) return "must be a whole number of at least " + std::to_string(least) + ", got '" + text + "'";
        if (value < static_cast<unsigned long long>(least)) return "must be at least " + std::to_string(least) + ", got " + text;
        return "";
      },
      "INT >= " + std::to_string(least));
}

// A finite number above zero (or at least zero).
inline CLI::Validator finite_number(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        const bool number = !text.empty() && end && *end == '\0' && std::isfinite(value);
        if (!number || value < 0.0 || (!zero_allowed && value == 0.0))
          return std::string("must be a finite number ") + (zero_allowed ? "of at least 0" : "above 0") + ", got '" + text + "'";
        return "";
      },
      zero_allowed ? "NUMBER >= 0" : "NUMBER > 0");
}

// A memory budget in GB: a finite number above zero and no more than this machine's physical memory (a budget the
// machine cannot hold would end in swapping or the kernel's OOM killer, hours in).
inline CLI::Validator memory_budget_gb() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || !end || *end != '\0' || !std::isfinite(value) || value <= 0.0) return "must be a number of GB above 0, got '" + text + "'";
        const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        const double physical = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) / 1e9 : 0.0;
        if (physical > 0.0 && value > physical) {
          char message[160];
          std::snprintf(message, sizeof message, "%s GB is more than this machine's %.1f GB of memory", text.c_str(), physical);
          return message;
        }
        return "";
      },
      "GB > 0");
}

// --memory-budget, the same on every command that computes NTK Grams.
inline CLI::Option* add_memory_budget_option(CLI::App* cmd, double& gb) {
  return cmd
      ->add_option("--memory-budget", gb,
                   "GB of per-sample gradients an NTK Gram keeps resident; more re-traces fewer columns on large Grams (the kernel's bits do not change)")
      ->check(memory_budget_gb())
      ->capture_default_str();
}

}  // namespace ks::cli
