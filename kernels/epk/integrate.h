// Integrators for path integrals ∫₀¹ g(t) dt of matrix-valued g, per sample: Gauss–Legendre on given pieces (exact for
// piecewise polynomials) and adaptive Gauss–Legendre (smooth g). Plain numerics: they know nothing about networks.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "autodiff/tensor.h"

namespace ks {

// One quadrature row: sample `sample` at t with weight `weight`.
struct QuadratureRow {
  int64_t sample;
  double t, weight;
};

// The rows of an n-node Gauss–Legendre rule on every piece [bounds[m][k], bounds[m][k+1]] of every sample, in order.
std::vector<QuadratureRow> piecewise_rows(const std::vector<std::vector<double>>& bounds, int64_t nodes);

// g on a batch of rows: one (height, width) block per row, stacked, (rows·height, width).
using RowIntegrand = std::function<MatrixRowMajor(const std::vector<QuadratureRow>& rows)>;

struct AdaptiveOptions {
  int64_t nodes = 8;         // Gauss–Legendre nodes per interval
  double tolerance = 1e-15;  // accept an interval when its halves change it by at most this, relative to its largest value
  int max_depth = 20;        // halvings at most
};
struct AdaptiveIntegral {
  std::vector<MatrixRowMajor> integrals;  // per sample, (height, width)
  std::vector<int64_t> pieces;            // per sample, the intervals accepted
  int64_t nodes = 0;                      // rows evaluated
};
// Halves every interval until its two halves agree with it; the halves' sum is accepted. Each round evaluates all
// samples' intervals in one call of g; a refined half's values are reused as the next round's parent.
AdaptiveIntegral adaptive_gauss_legendre(int64_t samples, int64_t height, int64_t width, const RowIntegrand& g,
                                         const AdaptiveOptions& options = {});

}  // namespace ks
