// Gauss–Legendre on pieces and adaptive Gauss–Legendre for matrix-valued integrands, reduced in row order so the
// bits depend only on the rows. Nothing here knows what the integrand computes.
#include "kernels/epk/integrate.h"

#include <algorithm>

#include "kernels/quadrature.h"

namespace ks {

std::vector<QuadratureRow> piecewise_rows(const std::vector<std::vector<double>>& bounds, int64_t nodes) {
  std::vector<QuadratureRow> rows;
  for (size_t m = 0; m < bounds.size(); ++m) {
    const std::vector<double>& edges = bounds[m];
    for (size_t k = 0; k + 1 < edges.size(); ++k) {
      const QuadratureRule rule = gauss_legendre(nodes, edges[k], edges[k + 1]);
      for (size_t q = 0; q < rule.nodes.size(); ++q) rows.push_back({static_cast<int64_t>(m), rule.nodes[q], rule.weights[q]});
    }
  }
  return rows;
}

namespace {

struct Interval {
  int64_t sample;
  double a, b;
  int depth;
};

std::vector<QuadratureRow> rows_for(const std::vector<Interval>& intervals, int64_t nodes) {
  std::vector<QuadratureRow> rows;
  for (const Interval& interval : intervals) {
    const QuadratureRule rule = gauss_legendre(nodes, interval.a, interval.b);
    for (size_t q = 0; q < rule.nodes.size(); ++q) rows.push_back({interval.sample, rule.nodes[q], rule.weights[q]});
  }
  return rows;
}

// One interval's estimate: the weighted sum of its `nodes` rows, from first_row on.
MatrixRowMajor estimate(const MatrixRowMajor& values, const std::vector<QuadratureRow>& rows, int64_t first_row, int64_t nodes,
                        int64_t height) {
  MatrixRowMajor e = MatrixRowMajor::Zero(height, values.cols());
  for (int64_t q = first_row; q < first_row + nodes; ++q) e += rows[static_cast<size_t>(q)].weight * values.middleRows(q * height, height);
  return e;
}

// The round's state: the intervals still open, their rows and their values.
struct Round {
  std::vector<Interval> active;
  std::vector<QuadratureRow> rows;
  MatrixRowMajor values;
};

}  // namespace

AdaptiveIntegral adaptive_gauss_legendre(int64_t samples, int64_t height, int64_t width, const RowIntegrand& g,
                                         const AdaptiveOptions& options) {
  const int64_t per = options.nodes;
  AdaptiveIntegral result;
  result.integrals.assign(static_cast<size_t>(samples), MatrixRowMajor::Zero(height, width));
  result.pieces.assign(static_cast<size_t>(samples), 0);
  Round parent;
  for (int64_t m = 0; m < samples; ++m) parent.active.push_back({m, 0.0, 1.0, 0});
  parent.rows = rows_for(parent.active, per);
  parent.values = g(parent.rows);
  result.nodes += static_cast<int64_t>(parent.rows.size());
  while (!parent.active.empty()) {
    std::vector<Interval> halves;
    for (const Interval& interval : parent.active) {
      const double middle = 0.5 * (interval.a + interval.b);
      halves.push_back({interval.sample, interval.a, middle, interval.depth + 1});
      halves.push_back({interval.sample, middle, interval.b, interval.depth + 1});
    }
    const std::vector<QuadratureRow> half_rows = rows_for(halves, per);
    const MatrixRowMajor children = g(half_rows);
    result.nodes += static_cast<int64_t>(half_rows.size());
    Round next;
    std::vector<int64_t> sources;  // the refined halves' positions among the children
    for (size_t k = 0; k < parent.active.size(); ++k) {
      const int64_t left = static_cast<int64_t>(2 * k), right = left + 1;
      const MatrixRowMajor coarse = estimate(parent.values, parent.rows, static_cast<int64_t>(k) * per, per, height);
      const MatrixRowMajor fine = estimate(children, half_rows, left * per, per, height) + estimate(children, half_rows, right * per, per, height);
      const double scale = std::max(coarse.cwiseAbs().maxCoeff(), fine.cwiseAbs().maxCoeff());
      if ((fine - coarse).cwiseAbs().maxCoeff() <= options.tolerance * scale || parent.active[k].depth >= options.max_depth) {
        const int64_t m = parent.active[k].sample;
        result.integrals[static_cast<size_t>(m)] += fine;
        result.pieces[static_cast<size_t>(m)] += 2;
        continue;
      }
      for (int64_t half : {left, right}) {
        next.active.push_back(halves[static_cast<size_t>(half)]);
        for (int64_t q = 0; q < per; ++q) next.rows.push_back(half_rows[static_cast<size_t>(half * per + q)]);
        sources.push_back(half);
      }
    }
    // The refined halves become parents; their values are the children's rows already computed.
    next.values = MatrixRowMajor(static_cast<int64_t>(next.rows.size()) * height, width);
    for (size_t k = 0; k < sources.size(); ++k)
      next.values.middleRows(static_cast<int64_t>(k) * per * height, per * height) = children.middleRows(sources[k] * per * height, per * height);
    parent = std::move(next);
  }
  return result;
}

}  // namespace ks
