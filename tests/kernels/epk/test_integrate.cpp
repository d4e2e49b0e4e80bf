// The EPK's integrators on plain functions, with no network: Gauss–Legendre on pieces is exact for piecewise
// polynomials of the degree its nodes cover, and the adaptive rule reaches its tolerance on smooth functions.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/epk/integrate.h"

namespace ks {

TEST_CASE("Gauss-Legendre on pieces integrates a piecewise polynomial exactly, and too few nodes do not") {
  // g(t) = t^5 on [0, 0.3], then 1 - t^3 (a different polynomial: a breakpoint at 0.3), one sample.
  auto g = [](double t) { return t < 0.3 ? std::pow(t, 5) : 1.0 - t * t * t; };
  const double exact = std::pow(0.3, 6) / 6 + (0.7 - (1.0 - std::pow(0.3, 4)) / 4);
  auto integrate = [&](const std::vector<std::vector<double>>& bounds, int64_t nodes) {
    double total = 0.0;
    for (const QuadratureRow& row : piecewise_rows(bounds, nodes)) total += row.weight * g(row.t);
    return total;
  };
  CHECK(std::abs(integrate({{0.0, 0.3, 1.0}}, 3) - exact) < 1e-15);      // 3 nodes: exact to degree 5
  CHECK(std::abs(integrate({{0.0, 0.3, 1.0}}, 2) - exact) > 1e-6);       // 2 nodes: degree 3 only
  CHECK(std::abs(integrate({{0.0, 1.0}}, 3) - exact) > 1e-4);            // the breakpoint ignored
  const std::vector<QuadratureRow> rows = piecewise_rows({{0.0, 1.0}, {0.0, 0.5, 1.0}}, 2);
  CHECK(rows.size() == 6);
  CHECK(rows[0].sample == 0);
  CHECK(rows[5].sample == 1);
}

TEST_CASE("adaptive Gauss-Legendre integrates smooth matrix-valued functions per sample to its tolerance") {
  // Sample m: the (1, 2) block [exp(m t), sin(5 t)], whose integrals are known.
  const RowIntegrand g = [](const std::vector<QuadratureRow>& rows) {
    MatrixRowMajor values(static_cast<Eigen::Index>(rows.size()), 2);
    for (size_t r = 0; r < rows.size(); ++r) {
      values(static_cast<Eigen::Index>(r), 0) = std::exp(static_cast<double>(rows[r].sample) * rows[r].t);
      values(static_cast<Eigen::Index>(r), 1) = std::sin(5.0 * rows[r].t);
    }
    return values;
  };
  const AdaptiveIntegral result = adaptive_gauss_legendre(3, 1, 2, g, {8, 1e-15, 20});
  const double sine = (1.0 - std::cos(5.0)) / 5.0;
  CHECK(std::abs(result.integrals[0](0, 0) - 1.0) < 1e-15);
  CHECK(std::abs(result.integrals[1](0, 0) - (std::exp(1.0) - 1.0)) < 1e-14);
  CHECK(std::abs(result.integrals[2](0, 0) - (std::exp(2.0) - 1.0) / 2.0) < 1e-14);
  for (int m = 0; m < 3; ++m) CHECK(std::abs(result.integrals[static_cast<size_t>(m)](0, 1) - sine) < 1e-15);
  CHECK(result.nodes > 0);
  for (int64_t pieces : result.pieces) CHECK(pieces >= 2);
  // A loose tolerance stops early and is measurably less accurate: the check above can fail.
  const AdaptiveIntegral loose = adaptive_gauss_legendre(3, 1, 2, g, {2, 1e-2, 20});
  CHECK(std::abs(loose.integrals[2](0, 0) - (std::exp(2.0) - 1.0) / 2.0) > 1e-10);
}

}  // namespace ks
