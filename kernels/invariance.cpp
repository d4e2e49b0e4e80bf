// Paired NTK cosines from tiles of 32 images and their transforms: three small kernel blocks per tile pair, of which only
// the diagonals are kept. Tiles are fixed in size and results written per image, so bits do not depend on the thread count.
#include "kernels/invariance.h"

#include <algorithm>
#include <cmath>

#include "kernels/tile.h"

namespace ks {

namespace {

constexpr int64_t kImagesPerTile = kTileSamples;

// Σ_c K_cc(n, n) from a block with C outputs per sample.
double traced_diagonal(const MatrixRowMajor& K, int64_t n, int64_t C) {
  double total = 0.0;
  for (int64_t c = 0; c < C; ++c) total += K(n * C + c, n * C + c);
  return total;
}

}  // namespace

Tensor paired_ntk_cosines(const Sequential& model, const Parameters& theta, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.rank() < 2) throw ShapeError("paired_ntk_cosines: images " + shape_string(a.shape()) + " and transformed " + shape_string(b.shape()) + " must have the same shape");
  const int64_t N = a.dim(0), tiles = (N + kImagesPerTile - 1) / kImagesPerTile;
  Tensor cosines({N});
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t begin = t * kImagesPerTile, end = std::min(N, begin + kImagesPerTile);
    const Tile first = tile_from_trace(trace_network(model, theta, sample_rows(a, begin, end - begin)), begin, KernelMethod::automatic);
    const Tile second = tile_from_trace(trace_network(model, theta, sample_rows(b, begin, end - begin)), begin, KernelMethod::automatic);
    const int64_t C = first.trace.outputs;
    const MatrixRowMajor cross = block(first, second), own_first = block(first, first), own_second = block(second, second);
    for (int64_t n = 0; n < end - begin; ++n) {
      const double norms = traced_diagonal(own_first, n, C) * traced_diagonal(own_second, n, C);
      cosines[begin + n] = norms > 0.0 ? traced_diagonal(cross, n, C) / std::sqrt(norms) : 0.0;
    }
  }
  return cosines;
}

double invariance_score(const Sequential& model, const Parameters& theta, const Tensor& images, const Tensor& transformed) {
  const Tensor cosines = paired_ntk_cosines(model, theta, images, transformed);
  double total = 0.0;
  for (int64_t n = 0; n < cosines.numel(); ++n) total += cosines[n];
  return total / static_cast<double>(cosines.numel());
}

}  // namespace ks
