// Checks for command-line values, with messages that say what is wanted and what was given (CLI11's own range checks
// print bounds of 300 digits). They only validate; parsing into the option's type stays CLI11's.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

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

}  // namespace ks::cli
