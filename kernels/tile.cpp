// Tiles of traced samples and the kernel block between two of them: the shared core of the NTK Grams and the EPK.
// Nothing here loops over a dataset or chooses parameters; callers make the traces (at any point of parameter space).
#include "kernels/tile.h"

namespace ks {

// The layer's own cost model: the structured contraction per pair of rows against the Jacobian path's row width
// (which also pays to form the rows); ties go to the structured form.
KernelMethod choose_method(const Layer& layer, const Shape& input, KernelMethod requested) {
  if (requested != KernelMethod::automatic) return requested;
  const KernelCost cost = layer.cost(input);
  return cost.structured <= cost.jacobian ? KernelMethod::structured : KernelMethod::jacobian;
}

Tile tile_from_trace(Trace trace, int64_t first, KernelMethod requested, bool form_jacobian) {
  Tile tile;
  tile.first = first;
  tile.samples = trace.samples;
  tile.trace = std::move(trace);
  tile.rows = tile.samples * tile.trace.outputs;
  for (const LayerSignals& s : tile.trace.layers) tile.methods.push_back(choose_method(*s.layer, s.input.shape(), requested));
  const JacobianColumns columns = jacobian_columns(tile);
  if (columns.width == 0 || !form_jacobian) return tile;
  tile.jacobian = MatrixRowMajor::Zero(tile.rows, columns.width);
  for (size_t l = 0; l < tile.trace.layers.size(); ++l) {
    if (columns.offsets[l] < 0) continue;
    layer_jacobian(tile.trace.layers[l], tile.trace.outputs, tile.jacobian.data(), columns.width, columns.offsets[l]);
    tile.trace.layers[l].delta = Tensor();  // no longer needed: keep the resident panel small
    tile.trace.layers[l].input = Tensor();
  }
  return tile;
}

JacobianColumns jacobian_columns(const Tile& tile) {
  JacobianColumns columns;
  for (size_t l = 0; l < tile.trace.layers.size(); ++l) {
    const bool jacobian = tile.methods[l] == KernelMethod::jacobian;
    columns.offsets.push_back(jacobian ? columns.width : -1);
    if (jacobian) columns.width += tile.trace.layers[l].parameter_size;
  }
  return columns;
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
  for (size_t l = 0; l < a.trace.layers.size(); ++l)
    if (a.methods[l] == KernelMethod::structured) a.trace.layers[l].layer->structured_block(a.trace.layers[l], b.trace.layers[l], C, K);
  return K;
}

}  // namespace ks
