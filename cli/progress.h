// A progress display on stderr: a redrawn bar when stderr is a terminal, a plain line every ~10% otherwise (logs, CI).
// It shows elapsed seconds, the rate and the time left at that rate; it measures nothing else.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace ks::cli {

class Progress {
 public:
  Progress(std::string label, int64_t total)
      : label_(std::move(label)), total_(total), terminal_(isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()) {}
  ~Progress() { done(); }

  void update(int64_t current, const std::string& note = "") {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int percent = total_ > 0 ? static_cast<int>(100 * current / total_) : 100;
    const std::string pace = rate(current, seconds);
    if (terminal_) {
      const int width = 30, filled = width * percent / 100;
      std::fprintf(stderr, "\r%s [%s%s] %3d%% %lld/%lld %.0fs%s %s\033[K", label_.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), percent, static_cast<long long>(current), static_cast<long long>(total_),
                   seconds, pace.c_str(), note.c_str());
      std::fflush(stderr);
    } else if (percent >= next_percent_ || current == total_) {
      std::fprintf(stderr, "%s: %d%% (%lld/%lld) %.1fs%s %s\n", label_.c_str(), percent, static_cast<long long>(current),
                   static_cast<long long>(total_), seconds, pace.c_str(), note.c_str());
      next_percent_ = percent + 10;
    }
    finished_ = false;
  }

  void done() {
    if (terminal_ && !finished_) std::fprintf(stderr, "\n");
    finished_ = true;
  }

 private:
  // ", 2.31/s, ~41s left" (or per item when slower than one a second), empty before the first item and in the first
  // tenth of a second: a rate over microseconds is noise (a first tile already in cache showed 10⁹/s).
  std::string rate(int64_t current, double seconds) const {
    if (current <= 0 || seconds < 0.1) return "";
    const double per_second = static_cast<double>(current) / seconds, left = static_cast<double>(total_ - current) / per_second;
    char text[96];
    if (per_second >= 1.0) std::snprintf(text, sizeof text, ", %.2f/s", per_second);
    else std::snprintf(text, sizeof text, ", %.1fs each", 1.0 / per_second);
    std::string out = text;
    if (current < total_) {
      std::snprintf(text, sizeof text, ", ~%.0fs left", left);
      out += text;
    }
    return out;
  }
  std::string label_;
  int64_t total_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  int next_percent_ = 0;
  bool finished_ = true;
};

}  // namespace ks::cli
