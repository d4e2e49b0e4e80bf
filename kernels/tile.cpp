// Tiles of traced samples and the kernel block between two of them: the shared core of the NTK Grams and the EPK.
// Nothing here loops over a dataset or chooses parameters; callers make the traces (at any point of parameter space).
#include "kernels/tile.h"

namespace ks {

// Structured cost per pair of rows against the Jacobian path's; the Jacobian path also pays to form the rows.
KernelMethod choose_method(const LayerSignals& s, KernelMethod requested) {
  if (requested != KernelMethod::automatic) return requested;
  if (!s.convolution) return KernelMethod::structured;  // O + I against O·I
  const double spatial = static_cast<double>(s.geometry.out_height() * s.geometry.out_width());
  const double structured = spatial * spatial * static_cast<double>(s.geometry.out_channels + s.geometry.patch_size());
  const double jacobian = static_cast<double>(s.weight_size + s.bias_size);
  return structured < jacobian ? KernelMethod::structured : KernelMethod::jacobian;
}

Tile tile_from_trace(Trace trace, int64_t first, KernelMethod requested) {
  Tile tile;
  tile.first = first;
  tile.samples = trace.samples;
  tile.trace = std::move(trace);
  tile.rows = tile.samples * tile.trace.outputs;
  int64_t jacobian_width = 0;
  for (const LayerSignals& s : tile.trace.layers) {
    tile.methods.push_back(choose_method(s, requested));
    if (tile.methods.back() == KernelMethod::jacobian) jacobian_width += s.weight_size + s.bias_size;
  }
  if (jacobian_width > 0) {
    tile.jacobian = MatrixRowMajor::Zero(tile.rows, jacobian_width);
    int64_t offset = 0;
    for (size_t l = 0; l < tile.trace.layers.size(); ++l) {
      if (tile.methods[l] != KernelMethod::jacobian) continue;
      LayerSignals placed = tile.trace.layers[l];
      placed.parameter_offset = offset;
      layer_jacobian(placed, tile.trace.outputs, tile.jacobian.data(), jacobian_width);
      offset += placed.weight_size + placed.bias_size;
      tile.trace.layers[l].delta = Tensor();  // no longer needed: keep the resident panel small
      tile.trace.layers[l].input = Tensor();
    }
  }
  return tile;
}

double tile_bytes(const Tile& tile) {
  double bytes = static_cast<double>(tile.jacobian.size());
  for (const LayerSignals& s : tile.trace.layers) bytes += static_cast<double>(s.delta.numel() + s.input.numel());
  return 8.0 * bytes;
}

MatrixRowMajor block(const Tile& a, const Tile& b) {
  const int64_t C = a.trace.outputs;
  MatrixRowMajor K = MatrixRowMajor::Zero(a.rows, b.rows);
  if (a.jacobian.size() > 0) K.noalias() += a.jacobian * b.jacobian.transpose();
  for (size_t l = 0; l < a.trace.layers.size(); ++l) {
    if (a.methods[l] != KernelMethod::structured) continue;
    const LayerSignals &sa = a.trace.layers[l], &sb = b.trace.layers[l];
    const double m2 = sa.multiplier * sa.multiplier, bias = sa.bias_size ? 1.0 : 0.0;
    if (!sa.convolution) {
      const MatrixRowMajor deltas = sa.delta.matrix() * sb.delta.matrix().transpose();  // (rows_a, rows_b)
      const MatrixRowMajor inputs = sa.input.matrix() * sb.input.matrix().transpose();  // (samples_a, samples_b)
      for (int64_t r = 0; r < a.rows; ++r)
        for (int64_t q = 0; q < b.rows; ++q) K(r, q) += deltas(r, q) * (m2 * inputs(r / C, q / C) + bias);
      continue;
    }
    const Conv2dGeometry& g = sa.geometry;
    const int64_t spatial = g.out_height() * g.out_width(), image = g.in_channels * g.height * g.width;
    std::vector<MatrixRowMajor> columns_a(static_cast<size_t>(a.samples)), columns_b(static_cast<size_t>(b.samples));
    for (int64_t n = 0; n < a.samples; ++n) {
      columns_a[static_cast<size_t>(n)].resize(g.patch_size(), spatial);
      im2col(columns_a[static_cast<size_t>(n)].data(), sa.input.data() + n * image, g, spatial, 0);
    }
    for (int64_t n = 0; n < b.samples; ++n) {
      columns_b[static_cast<size_t>(n)].resize(g.patch_size(), spatial);
      im2col(columns_b[static_cast<size_t>(n)].data(), sb.input.data() + n * image, g, spatial, 0);
    }
    for (int64_t n = 0; n < a.samples; ++n)
      for (int64_t k = 0; k < b.samples; ++k) {
        const MatrixRowMajor patches = columns_a[static_cast<size_t>(n)].transpose() * columns_b[static_cast<size_t>(k)];  // (HW, HW)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t d = 0; d < C; ++d) {
            ConstMatrixMap da(sa.delta.data() + (n * C + c) * g.out_channels * spatial, g.out_channels, spatial);
            ConstMatrixMap db(sb.delta.data() + (k * C + d) * g.out_channels * spatial, g.out_channels, spatial);
            const MatrixRowMajor signals = da.transpose() * db;  // (HW, HW)
            K(n * C + c, k * C + d) += m2 * signals.cwiseProduct(patches).sum() + bias * signals.sum();
          }
      }
  }
  return K;
}

}  // namespace ks
