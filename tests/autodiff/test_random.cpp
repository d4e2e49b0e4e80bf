// The project's generator: reproducible streams, sane uniform and normal moments, and portable_log against libm.
// It does not test statistical quality beyond moments.
#include <doctest/doctest.h>

#include <cmath>

#include "tests/helpers.h"

namespace ks {

TEST_CASE("the same seed gives the same stream, a different seed a different one") {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const double x = a.normal(), y = b.normal();
    CHECK(std::memcmp(&x, &y, sizeof x) == 0);
    differs = differs || c.normal() != x;
  }
  CHECK(differs);
}

TEST_CASE("uniform and normal have the right moments") {
  Rng rng(1);
  const int count = 1000000;  // standard error of the variance about 0.0014
  double sum_u = 0, sum_n = 0, sum_n2 = 0;
  for (int i = 0; i < count; ++i) {
    const double u = rng.uniform();
    CHECK_FALSE((u < 0.0 || u >= 1.0));
    sum_u += u;
    const double z = rng.normal();
    sum_n += z;
    sum_n2 += z * z;
  }
  CHECK(std::abs(sum_u / count - 0.5) < 0.005);
  CHECK(std::abs(sum_n / count) < 0.01);
  CHECK(std::abs(sum_n2 / count - 1.0) < 0.01);
}

TEST_CASE("portable_log agrees with libm to about one ulp") {
  Rng rng(9);
  for (int i = 0; i < 100000; ++i) {
    const double x = std::exp(rng.uniform(-700, 700));
    const double reference = std::log(x);
    CHECK(std::abs(portable_log(x) - reference) <= 2.5e-16 * std::max(1.0, std::abs(reference)));
  }
  CHECK(portable_log(1.0) == 0.0);
  CHECK(std::isinf(portable_log(0.0)));
  CHECK(std::isnan(portable_log(-1.0)));
}

TEST_CASE("permutation is a permutation") {
  Rng rng(3);
  std::vector<int64_t> p = rng.permutation(1000);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
  CHECK(p != sorted);
}

}  // namespace ks
