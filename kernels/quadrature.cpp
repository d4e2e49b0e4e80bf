// Gauss–Legendre by Newton's method on the Legendre recurrence, Chebyshev interpolation by a precomputed inverse
// Vandermonde matrix, and sign changes by the derivative recursion. No adaptivity here: the EPK decides what to refine.
#include "kernels/quadrature.h"
#include "autodiff/math.h"
#include "autodiff/ops.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ks {

namespace {

constexpr double kPi = 3.14159265358979323846;

// P_n(x) and P_n'(x) by the three-term recurrence.
void legendre(int64_t n, double x, double& value, double& derivative) {
  double previous = 1.0, current = x;
  if (n == 0) {
    value = 1.0;
    derivative = 0.0;
    return;
  }
  for (int64_t k = 2; k <= n; ++k) {
    const double next = ((2.0 * static_cast<double>(k) - 1.0) * x * current - (static_cast<double>(k) - 1.0) * previous) / static_cast<double>(k);
    previous = current;
    current = next;
  }
  value = current;
  derivative = static_cast<double>(n) * (x * current - previous) / (x * x - 1.0);
}

}  // namespace

QuadratureRule gauss_legendre(int64_t n) {
  if (n < 1 || n > 64) throw std::invalid_argument("gauss_legendre: " + std::to_string(n) + " nodes (use 1 to 64)");
  QuadratureRule rule;
  rule.nodes.resize(static_cast<size_t>(n));
  rule.weights.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double x = math::cos(kPi * (static_cast<double>(i) + 0.75) / (static_cast<double>(n) + 0.5));
    double value = 0.0, derivative = 1.0;
    for (int iteration = 0; iteration < 100; ++iteration) {
      legendre(n, x, value, derivative);
      const double step = value / derivative;
      x -= step;
      if (std::abs(step) < 1e-17) break;
    }
    legendre(n, x, value, derivative);
    // Nodes on [-1, 1] in decreasing order; map to [0, 1] increasing.
    const size_t position = static_cast<size_t>(n - 1 - i);
    rule.nodes[position] = 0.5 * (1.0 + x);
    rule.weights[position] = 1.0 / ((1.0 - x * x) * derivative * derivative);  // 2/((1-x²)P'²), halved for [0, 1]
  }
  return rule;
}

QuadratureRule gauss_legendre(int64_t n, double a, double b) {
  QuadratureRule rule = gauss_legendre(n);
  for (size_t i = 0; i < rule.nodes.size(); ++i) {
    rule.nodes[i] = a + (b - a) * rule.nodes[i];
    rule.weights[i] *= b - a;
  }
  return rule;
}

std::vector<double> chebyshev_points(int64_t degree) {
  std::vector<double> points;
  for (int64_t j = 0; j <= degree; ++j)
    points.push_back(math::cos(kPi * (2.0 * static_cast<double>(j) + 1.0) / (2.0 * static_cast<double>(degree) + 2.0)));
  return points;
}

std::vector<double> chebyshev_points(int64_t degree, double a, double b) {
  std::vector<double> points = chebyshev_points(degree);
  for (double& u : points) u = a + 0.5 * (u + 1.0) * (b - a);
  return points;
}

ChebyshevInterpolator::ChebyshevInterpolator(int64_t degree) : degree_(degree) {
  if (degree < 0 || degree > 16) throw std::invalid_argument("ChebyshevInterpolator: degree " + std::to_string(degree) + " (use 0 to 16)");
  const std::vector<double> points = chebyshev_points(degree);
  const int64_t size = degree + 1;
  Eigen::MatrixXd vandermonde(size, size);
  for (int64_t j = 0; j < size; ++j)
    for (int64_t k = 0; k < size; ++k) vandermonde(j, k) = math::pow(points[static_cast<size_t>(j)], k);
  const Eigen::MatrixXd inverse = vandermonde.fullPivLu().inverse();
  inverse_.resize(static_cast<size_t>(size * size));
  for (int64_t k = 0; k < size; ++k)
    for (int64_t j = 0; j < size; ++j) inverse_[static_cast<size_t>(k * size + j)] = inverse(k, j);
}

void ChebyshevInterpolator::coefficients(const double* values, int64_t stride, double* coefficients) const {
  const int64_t size = degree_ + 1;
  for (int64_t k = 0; k < size; ++k) {
    double total = 0.0;
    for (int64_t j = 0; j < size; ++j) total += inverse_[static_cast<size_t>(k * size + j)] * values[j * stride];
    coefficients[k] = total;
  }
}

void ChebyshevInterpolator::coefficients_of_columns(const double* values, int64_t columns, double* coefficients) const {
  coefficients_of_columns(values, columns, columns, coefficients);
}

void ChebyshevInterpolator::coefficients_of_columns(const double* values, int64_t stride, int64_t columns, double* coefficients) const {
  combine_rows({inverse_.data(), degree_ + 1, degree_ + 1, values, stride, coefficients, columns, columns});
}

// The conv path's register-tiled panel product: each output a sum from 0 in j order, as the plain loops.
void combine_rows(const RowCombination& product) {
  panel_product(product.out, product.matrix, product.rows,
                {product.outputs, product.inputs, product.columns, product.inputs, product.row_stride, product.out_stride});
}

void combine_rows(const double* matrix, int64_t outputs, int64_t inputs, const double* rows, int64_t columns, double* out) {
  combine_rows({matrix, outputs, inputs, rows, columns, out, columns, columns});
}

double evaluate_polynomial(const double* coefficients, int64_t degree, double u) {
  double value = coefficients[degree];
  for (int64_t k = degree - 1; k >= 0; --k) value = value * u + coefficients[k];
  return value;
}

std::vector<double> sign_changes(const double* coefficients, int64_t degree) {
  // Trailing exact zeros lower the degree.
  while (degree > 0 && coefficients[degree] == 0.0) --degree;
  if (degree == 0) return {};
  // |p(u) − c_0| ≤ Σ|c_k| on [-1, 1]: no root when c_0 dominates. Most units of a network leave here.
  double tail = 0.0;
  for (int64_t k = 1; k <= degree; ++k) tail += std::abs(coefficients[k]);
  if (std::abs(coefficients[0]) > tail) return {};
  if (degree == 1) {
    const double root = -coefficients[0] / coefficients[1];
    return root > -1.0 && root < 1.0 ? std::vector<double>{root} : std::vector<double>{};
  }
  std::vector<double> derivative(static_cast<size_t>(degree));
  for (int64_t k = 1; k <= degree; ++k) derivative[static_cast<size_t>(k - 1)] = static_cast<double>(k) * coefficients[k];
  // The polynomial is monotone between consecutive critical points, so each such interval holds at most one sign change.
  std::vector<double> bounds{-1.0};
  for (double critical : sign_changes(derivative.data(), degree - 1)) bounds.push_back(critical);
  bounds.push_back(1.0);
  std::vector<double> roots;
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    double low = bounds[i], high = bounds[i + 1];
    double value_low = evaluate_polynomial(coefficients, degree, low);
    const double value_high = evaluate_polynomial(coefficients, degree, high);
    if (!((value_low < 0.0 && value_high > 0.0) || (value_low > 0.0 && value_high < 0.0))) continue;
    for (;;) {
      const double middle = 0.5 * (low + high);
      if (middle <= low || middle >= high) break;
      const double value = evaluate_polynomial(coefficients, degree, middle);
      if (value == 0.0) {
        low = high = middle;
        break;
      }
      if ((value < 0.0) == (value_low < 0.0)) {
        low = middle;
        value_low = value;
      } else {
        high = middle;
      }
    }
    const double root = 0.5 * (low + high);
    if (root > -1.0 && root < 1.0) roots.push_back(root);
  }
  return roots;
}

}  // namespace ks
