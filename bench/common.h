// Helpers shared by the benchmarks: repeated timing (median, min, max), the machine's measured Eigen GEMM rate, peak memory.
// Benchmarks report ratios and rates; nothing here asserts a time.
#pragma once

#include <omp.h>
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

// One independent square 1024 product per thread, its operands made once: the work both GEMM-rate measures repeat.
struct ProductPerThread {
  static constexpr int64_t n = 1024;
  std::vector<MatrixRowMajor> a, b, c;
  ProductPerThread() : a(omp_get_max_threads()), b(a.size()), c(a.size()) {
    for (size_t t = 0; t < a.size(); ++t) {
      a[t] = MatrixRowMajor::Random(n, n);
      b[t] = MatrixRowMajor::Random(n, n);
      c[t] = MatrixRowMajor::Zero(n, n);
    }
  }
  void run() {
    const int threads = static_cast<int>(a.size());
#pragma omp parallel for schedule(static, 1)
    for (int t = 0; t < threads; ++t) c[t].noalias() = a[t] * b[t];
  }
  double flops() const { return static_cast<double>(a.size()) * 2.0 * n * n * n; }
};

// The machine's float64 GEMM limit for our kind of parallelism: one independent square 1024 product per thread at once
// (Eigen is single-threaded inside kernelscope), GFLOP/s summed over threads.
inline double eigen_gemm_gflops_all_threads() {
  ProductPerThread products;
  const Timing timing = time_runs(5, [&] { products.run(); });
  return products.flops() / timing.min / 1e9;
}

// The same products kept up on every thread for about `seconds`: total flops over the wall time, not the best round.
// A task of many seconds meets the machine as it is over those seconds (clock, power and hypervisor share with both
// cores busy), which a burst of five products can overstate; bench_compare measures this right before and after the
// long tasks so that their bounds use the rate of that moment.
inline double eigen_gemm_gflops_sustained(double seconds = 2.0) {
  ProductPerThread products;
  int64_t rounds = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    products.run();
    ++rounds;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return static_cast<double>(rounds) * products.flops() / elapsed / 1e9;
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
