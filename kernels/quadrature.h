// Quadrature and polynomial tools for path integrals: Gauss–Legendre rules, interpolation at Chebyshev points, and
// every real root of a low-degree polynomial in an interval. Scalar numerics only: nothing here knows about networks.
#pragma once

#include <cstdint>
#include <vector>

namespace ks {

// The n-point Gauss–Legendre rule on [0, 1]: exact for polynomials of degree up to 2n − 1.
struct QuadratureRule {
  std::vector<double> nodes, weights;
};
QuadratureRule gauss_legendre(int64_t n);
// The same rule mapped to [a, b].
QuadratureRule gauss_legendre(int64_t n, double a, double b);

// The d + 1 Chebyshev points of the first kind, cos((2j + 1)π / (2d + 2)), on [-1, 1]; interior, so a piece's
// end points (where an earlier layer switches) are never sampled.
std::vector<double> chebyshev_points(int64_t degree);
// The points mapped to [a, b].
std::vector<double> chebyshev_points(int64_t degree, double a, double b);

// out = matrix · rows on `columns` columns of row-major arrays whose rows lie a stride apart, each sum started at 0 and
// taken in order j = 0..inputs−1 (the bits of the plain loops), in register tiles of outputs × columns (the panel
// product): each row vector loaded feeds several outputs, each sum is stored once. Interpolation's one product:
// coefficients and resampling.
struct RowCombination {
  const double* matrix = nullptr;  // (outputs, inputs)
  int64_t outputs = 0, inputs = 0;
  const double* rows = nullptr;  // (inputs, columns), rows row_stride apart
  int64_t row_stride = 0;
  double* out = nullptr;  // (outputs, columns), rows out_stride apart
  int64_t out_stride = 0;
  int64_t columns = 0;
};
void combine_rows(const RowCombination& product);
// The dense case: rows (inputs, columns) → out (outputs, columns).
void combine_rows(const double* matrix, int64_t outputs, int64_t inputs, const double* rows, int64_t columns, double* out);

// Monomial coefficients c_0..c_d in u ∈ [-1, 1] of the polynomial through values at chebyshev_points(d).
// The inverse Vandermonde matrix is computed once per degree; well-conditioned for the degrees of networks (≤ 12).
class ChebyshevInterpolator {
 public:
  explicit ChebyshevInterpolator(int64_t degree);
  int64_t degree() const { return degree_; }
  // values: d + 1 values spaced by stride; coefficients: d + 1 outputs.
  void coefficients(const double* values, int64_t stride, double* coefficients) const;
  // Every column's coefficients at once: values (d + 1, columns) → coefficients (d + 1, columns), the same sums in
  // the same order as coefficients() per column, run along the columns so they vectorise (bit-equal to it where
  // multiply-adds are not contracted, as in the portable build; a native build may fuse one form and not the other).
  void coefficients_of_columns(const double* values, int64_t columns, double* coefficients) const;
  // The same for `columns` columns of values whose rows lie `stride` apart; coefficients (d + 1, columns) dense.
  void coefficients_of_columns(const double* values, int64_t stride, int64_t columns, double* coefficients) const;

 private:
  int64_t degree_;
  std::vector<double> inverse_;  // (d + 1, d + 1) row-major
};

double evaluate_polynomial(const double* coefficients, int64_t degree, double u);

// Every point in the open interval (-1, 1) where the polynomial changes sign, in increasing order, each to full
// precision (bisection between consecutive critical points, found recursively from the derivative). Roots where
// the sign does not change (even multiplicity) are not breakpoints and are not returned.
std::vector<double> sign_changes(const double* coefficients, int64_t degree);

}  // namespace ks
