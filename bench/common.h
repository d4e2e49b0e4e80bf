// Helpers shared by the benchmarks: repeated timing (median, min, max), the machine's measured Eigen GEMM rate, peak memory.
// Benchmarks report ratios and rates; nothing here asserts a time.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <vector>

#include "autodiff/tensor.h"

namespace ks::bench {

struct Timing {
  double median, min, max;
};

inline Timing time_runs(int repeats, const std::function<void()>& work) {
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    work();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds[seconds.size() / 2], seconds.front(), seconds.back()};
}

// float64 GEMM rate of Eigen on one core (GFLOP/s), on square 1024 products; times the thread count is the machine's limit
// for work split over independent tiles.
inline double eigen_gemm_gflops() {
  const int64_t n = 1024;
  MatrixRowMajor a = MatrixRowMajor::Random(n, n), b = MatrixRowMajor::Random(n, n), c(n, n);
  const Timing t = time_runs(3, [&] { c.noalias() = a * b; });
  return 2.0 * n * n * n / t.min / 1e9;
}

inline double peak_memory_gb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0 / 1024.0;
}

inline std::filesystem::path shared_datasets() {
  if (const char* env = std::getenv("KERNELSCOPE_DATA")) return env;
  return std::filesystem::path(KERNELSCOPE_SOURCE_DIR) / ".." / "shared" / "datasets";
}

}  // namespace ks::bench
