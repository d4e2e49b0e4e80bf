// kernelscope's own elementary functions against the C library's, in ulps, over the ranges the library uses them on;
// and the pinned GEMM blocking: products do not depend on the machine's cache sizes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "autodiff/math.h"
#include "autodiff/random.h"
#include "autodiff/tensor.h"

namespace ks {

namespace {

// The distance in representable doubles between a and b.
int64_t ulps(double a, double b) {
  if (a == b) return 0;
  int64_t ia, ib;
  std::memcpy(&ia, &a, 8);
  std::memcpy(&ib, &b, 8);
  if (ia < 0) ia = INT64_MIN - ia;
  if (ib < 0) ib = INT64_MIN - ib;
  return std::abs(ia - ib);
}

template <typename Ours, typename Theirs>
int64_t worst_ulps(Ours ours, Theirs theirs, double low, double high, int count) {
  Rng rng(5);
  int64_t worst = 0;
  for (int i = 0; i < count; ++i) {
    const double x = rng.uniform(low, high);
    worst = std::max(worst, ulps(ours(x), theirs(x)));
  }
  return worst;
}

}  // namespace

TEST_CASE("kernelscope's own exp, log, log1p, tanh, sin and cos are within 2 ulp of the C library's") {
  CHECK(worst_ulps(math::portable_exp, [](double x) { return std::exp(x); }, -700, 700, 20000) <= 2);
  CHECK(worst_ulps(math::portable_exp, [](double x) { return std::exp(x); }, -1, 1, 20000) <= 2);
  CHECK(worst_ulps(math::portable_log, [](double x) { return std::log(x); }, 1e-300, 1e300, 20000) <= 2);
  CHECK(worst_ulps(math::portable_log, [](double x) { return std::log(x); }, 0.5, 4, 20000) <= 2);
  CHECK(worst_ulps(math::portable_log1p, [](double x) { return std::log1p(x); }, 0, 1, 20000) <= 2);
  CHECK(worst_ulps(math::portable_log1p, [](double x) { return std::log1p(x); }, -0.09, 0.09, 20000) <= 2);
  CHECK(worst_ulps(math::portable_tanh, [](double x) { return std::tanh(x); }, -25, 25, 20000) <= 2);
  CHECK(worst_ulps(math::portable_tanh, [](double x) { return std::tanh(x); }, -0.01, 0.01, 20000) <= 2);
  CHECK(worst_ulps(math::portable_sin, [](double x) { return std::sin(x); }, -20, 20, 20000) <= 2);
  CHECK(worst_ulps(math::portable_cos, [](double x) { return std::cos(x); }, -20, 20, 20000) <= 2);
  CHECK(math::portable_exp(0.0) == 1.0);
  CHECK(math::portable_log(1.0) == 0.0);
  CHECK(math::portable_exp(-800.0) == 0.0);
  CHECK(std::isinf(math::portable_exp(800.0)));
  CHECK(math::integer_power(0.1, 3) == 0.1 * 0.1 * 0.1);
  CHECK(math::integer_power(2.0, -2) == 0.25);
  // A deliberately wrong function is far off: the measure can fail.
  CHECK(worst_ulps([](double x) { return std::exp(x) * (1 + 1e-14); }, [](double x) { return std::exp(x); }, -1, 1, 100) > 2);
}

TEST_CASE("GEMM bits do not depend on the machine's cache sizes: kernelscope pins Eigen's blocking") {
  Rng rng(3);
  MatrixRowMajor a(32, 3000), b(3000, 512);
  for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = rng.uniform(-1, 1);
  for (Eigen::Index i = 0; i < b.size(); ++i) b.data()[i] = rng.uniform(-1, 1);
  std::ptrdiff_t l1 = 0, l2 = 0, l3 = 0;
  Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1, &l2, &l3);
  CHECK(l1 == kPinnedCacheSizes[0]);
  CHECK(l2 == kPinnedCacheSizes[1]);
  CHECK(l3 == kPinnedCacheSizes[2]);
  const MatrixRowMajor pinned = a * b;
  // Other cache sizes give other bits (why the blocking must be pinned) ...
  Eigen::setCpuCacheSizes(16 * 1024, 256 * 1024, 2 * 1024 * 1024);
  const MatrixRowMajor other = a * b;
  pin_gemm_blocking();
  // ... and pinning again restores the bits.
  const MatrixRowMajor again = a * b;
  CHECK(std::memcmp(pinned.data(), other.data(), sizeof(double) * pinned.size()) != 0);
  CHECK(std::memcmp(pinned.data(), again.data(), sizeof(double) * pinned.size()) == 0);
}

}  // namespace ks
