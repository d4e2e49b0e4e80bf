// The piece finder: on a piece where the earlier layers' patterns are fixed, a layer's input is a polynomial of known
// degree in t; it is sampled at Chebyshev points, interpolated, and its sign or winner changes found to full precision.
#include "kernels/epk/pieces.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/epk.h"
#include "kernels/quadrature.h"

namespace ks {

namespace {

constexpr int64_t kPieceFinderRows = 96;  // rows per forward while finding breakpoints

// Roots in (-1, 1) of unit polynomials given by values at Chebyshev points, mapped to t in (a, b).
void relu_roots(const double* values, int64_t units, const ChebyshevInterpolator& interpolator, double a, double b, std::vector<double>& roots) {
  const int64_t degree = interpolator.degree();
  std::vector<double> coefficients(static_cast<size_t>(degree + 1));
  for (int64_t u = 0; u < units; ++u) {
    interpolator.coefficients(values + u, units, coefficients.data());
    for (double root : sign_changes(coefficients.data(), degree)) roots.push_back(a + 0.5 * (root + 1.0) * (b - a));
  }
}

// Where a max-pool window's winner changes: crossings of two candidates on the window's upper envelope.
void pool_roots(const double* values, int64_t size, const Shape& shape, const NonlinearLayer& pool,
                const ChebyshevInterpolator& interpolator, double a, double b, std::vector<double>& roots) {
  const int64_t channels = shape[1], height = shape[2], width = shape[3];
  const int64_t out_height = (height - pool.kernel) / pool.stride + 1, out_width = (width - pool.kernel) / pool.stride + 1;
  const int64_t degree = interpolator.degree(), terms = degree + 1, window = pool.kernel * pool.kernel;
  std::vector<double> coefficients(static_cast<size_t>(window * terms)), difference(static_cast<size_t>(terms));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t oy = 0; oy < out_height; ++oy)
      for (int64_t ox = 0; ox < out_width; ++ox) {
        double scale = 0.0;
        for (int64_t ky = 0; ky < pool.kernel; ++ky)
          for (int64_t kx = 0; kx < pool.kernel; ++kx) {
            const int64_t position = (c * height + oy * pool.stride + ky) * width + ox * pool.stride + kx;
            double* target = coefficients.data() + (ky * pool.kernel + kx) * terms;
            interpolator.coefficients(values + position, size, target);
            for (int64_t k = 0; k < terms; ++k) scale = std::max(scale, std::abs(target[k]));
          }
        for (int64_t p = 0; p < window; ++p)
          for (int64_t q = p + 1; q < window; ++q) {
            for (int64_t k = 0; k < terms; ++k) difference[static_cast<size_t>(k)] = coefficients[static_cast<size_t>(p * terms + k)] - coefficients[static_cast<size_t>(q * terms + k)];
            for (double root : sign_changes(difference.data(), degree)) {
              double best = -std::numeric_limits<double>::infinity();
              for (int64_t k = 0; k < window; ++k) best = std::max(best, evaluate_polynomial(coefficients.data() + k * terms, degree, root));
              const double crossing = evaluate_polynomial(coefficients.data() + p * terms, degree, root);
              // Crossings below the envelope do not change the winner; a loose test only adds harmless pieces.
              if (crossing >= best - 1e-10 * scale) roots.push_back(a + 0.5 * (root + 1.0) * (b - a));
            }
          }
      }
}

}  // namespace

PieceShape analyse_pieces(const Sequential& model) {
  PieceShape shape;
  for (size_t l = 0; l < model.layers().size(); ++l) {
    const PieceInfo piece = model.layers()[l]->piece();
    const int64_t index = static_cast<int64_t>(l);
    switch (piece.role) {
      case PieceRole::parameterised: ++shape.parameterised; break;
      case PieceRole::relu_like: shape.nonlinear.push_back({index, false, shape.parameterised, 0, 0}); break;
      case PieceRole::max_window: shape.nonlinear.push_back({index, true, shape.parameterised, piece.kernel, piece.stride}); break;
      case PieceRole::smooth: shape.piecewise_polynomial = false; break;
      case PieceRole::linear: break;
    }
  }
  return shape;
}

// Sorted piece bounds [0, ..., 1] of every input's activation pattern along base + t·direction, layer by layer: on a piece
// where the earlier layers' patterns are fixed, a layer's input is a polynomial of known degree in t, sampled at
// Chebyshev points, interpolated, and its sign changes (ReLU) or winner changes (max-pool) found to full precision.
std::vector<std::vector<double>> find_pieces(const Sequential& model, const PieceShape& network, const Tensor& inputs, const Segment& segment_template) {
  const int64_t M = inputs.dim(0);
  std::vector<std::vector<double>> bounds(static_cast<size_t>(M), std::vector<double>{0.0, 1.0});
  for (const NonlinearLayer& layer : network.nonlinear) {
    const ChebyshevInterpolator interpolator(layer.degree);
    const int64_t points = layer.degree + 1;
    struct Group {
      int64_t sample;
      double a, b;
    };
    std::vector<Group> groups;
    for (int64_t m = 0; m < M; ++m) {
      const std::vector<double>& edges = bounds[static_cast<size_t>(m)];
      for (size_t k = 0; k + 1 < edges.size(); ++k) groups.push_back({m, edges[k], edges[k + 1]});
    }
    const int64_t groups_per_chunk = std::max<int64_t>(1, kPieceFinderRows / points);
    const int64_t chunks = (static_cast<int64_t>(groups.size()) + groups_per_chunk - 1) / groups_per_chunk;
    std::vector<std::vector<double>> roots(groups.size());
#pragma omp parallel for schedule(dynamic)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t first = chunk * groups_per_chunk, last = std::min<int64_t>(first + groups_per_chunk, static_cast<int64_t>(groups.size()));
      Segment segment = segment_template;
      for (int64_t g = first; g < last; ++g)
        for (double t : chebyshev_points(layer.degree, groups[static_cast<size_t>(g)].a, groups[static_cast<size_t>(g)].b)) {
          segment.samples.push_back(groups[static_cast<size_t>(g)].sample);
          segment.t.push_back(t);
        }
      const Tensor values = segment_layer_input(model, gather_rows(inputs, segment.samples), segment, layer.layer);
      const int64_t size = values.numel() / values.dim(0);
      for (int64_t g = first; g < last; ++g) {
        const Group& group = groups[static_cast<size_t>(g)];
        const double* block = values.data() + (g - first) * points * size;
        std::vector<double>& found = roots[static_cast<size_t>(g)];
        if (layer.max_pool) pool_roots(block, size, values.shape(), layer, interpolator, group.a, group.b, found);
        else relu_roots(block, size, interpolator, group.a, group.b, found);
      }
    }
    // Merge in group order; bounds closer than a few ulps are one breakpoint.
    std::vector<std::vector<double>> merged(static_cast<size_t>(M));
    for (size_t g = 0; g < groups.size(); ++g) {
      std::vector<double>& edges = merged[static_cast<size_t>(groups[g].sample)];
      if (edges.empty()) edges.push_back(groups[g].a);
      std::vector<double>& found = roots[g];
      std::sort(found.begin(), found.end());
      for (double t : found)
        if (t - edges.back() > 4e-16 && groups[g].b - t > 4e-16) edges.push_back(t);
      edges.push_back(groups[g].b);
    }
    bounds = std::move(merged);
  }
  return bounds;
}

std::vector<std::vector<double>> path_pieces(const Sequential& model, const Tensor& inputs, const Segment& segment) {
  const PieceShape network = analyse_pieces(model);
  if (!network.piecewise_polynomial) throw std::invalid_argument("path_pieces: the network has smooth activations; it is not piecewise polynomial along a segment");
  Segment plain = segment;
  plain.first_base = plain.first_direction = nullptr;
  return find_pieces(model, network, inputs, plain);
}

}  // namespace ks
