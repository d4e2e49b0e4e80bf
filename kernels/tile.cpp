// Tiles of traced samples and the kernel block between two of them: the shared core of the NTK Grams and the EPK.
// Nothing here loops over a dataset or chooses parameters; callers make the traces (at any point of parameter space).
#include "kernels/tile.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ks {

// The layer's own cost model: the structured contraction per pair of rows against the Jacobian path's row width
// (which also pays to form the rows); ties go to the structured form.
KernelMethod choose_method(const Layer& layer, const Shape& input, KernelMethod requested) {
  if (requested != KernelMethod::automatic) return requested;
  const KernelCost cost = layer.cost(input);
  return cost.structured <= cost.jacobian ? KernelMethod::structured : KernelMethod::jacobian;
}

namespace {

Tile traced_tile(Trace trace, int64_t first, KernelMethod requested) {
  Tile tile;
  tile.first = first;
  tile.samples = trace.samples;
  tile.trace = std::move(trace);
  tile.rows = tile.samples * tile.trace.outputs;
  for (const LayerSignals& s : tile.trace.layers) tile.methods.push_back(choose_method(*s.layer, s.input.shape(), requested));
  return tile;
}

// Every Jacobian-path layer writes all of its columns of every row (the layer contract), so the rows need no zeroing.
void write_rows(Tile& tile, const JacobianColumns& columns, double* rows) {
  for (size_t l = 0; l < tile.trace.layers.size(); ++l) {
    if (columns.offsets[l] < 0) continue;
    layer_jacobian(tile.trace.layers[l], tile.trace.outputs, rows, columns.width, columns.offsets[l]);
    tile.trace.layers[l].delta = Tensor();  // no longer needed: keep the resident panel small
    tile.trace.layers[l].input = Tensor();
  }
}

}  // namespace

Tile tile_from_trace(Trace trace, int64_t first, KernelMethod requested, bool form_jacobian) {
  Tile tile = traced_tile(std::move(trace), first, requested);
  const JacobianColumns columns = jacobian_columns(tile);
  if (columns.width == 0 || !form_jacobian) return tile;
  tile.jacobian = MatrixRowMajor(tile.rows, columns.width);
  write_rows(tile, columns, tile.jacobian.data());
  return tile;
}

Tile tile_into_rows(Trace trace, int64_t first, KernelMethod requested, double* rows, int64_t row_stride) {
  Tile tile = traced_tile(std::move(trace), first, requested);
  const JacobianColumns columns = jacobian_columns(tile);
  if (columns.width != row_stride)
    throw std::logic_error("tile_into_rows: the tile's Jacobian-path width " + std::to_string(columns.width) + " is not the rows' " + std::to_string(row_stride));
  if (columns.width > 0) write_rows(tile, columns, rows);
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

int64_t rows_per_tile(const Sequential& model, const Tensor& inputs) {
  constexpr int64_t kTileBytes = 512 * 1024;
  int64_t largest = 1;  // values of the largest layer input or output per row
  const std::vector<Shape> shapes = model.input_shapes(with_batch(inputs.shape(), 1));
  for (const Shape& shape : shapes) largest = std::max(largest, shape_numel(shape));
  largest = std::max(largest, shape_numel(model.output_shape(with_batch(inputs.shape(), 1))));
  return std::clamp<int64_t>(kTileBytes / (largest * static_cast<int64_t>(sizeof(double))), 4, kTileSamples);
}

namespace {

Tensor join_rows(const std::vector<const Tensor*>& parts) {
  if (parts.empty() || parts.front()->empty()) return Tensor();
  int64_t rows = 0, size = parts.front()->numel() / parts.front()->dim(0);
  for (const Tensor* part : parts) rows += part->dim(0);
  Shape shape = parts.front()->shape();
  shape[0] = rows;
  Tensor joined = Tensor::uninitialised(shape);  // every row is copied in
  double* into = joined.data();
  for (const Tensor* part : parts) into = std::copy_n(part->data(), part->dim(0) * size, into);
  return joined;
}

}  // namespace

Tile join_tiles(std::vector<Tile> parts) {
  if (parts.size() == 1) return std::move(parts.front());
  Tile joined = std::move(parts.front());
  std::vector<const Tensor*> outputs{&joined.trace.output}, features{&joined.trace.features};
  for (size_t k = 1; k < parts.size(); ++k) {
    joined.samples += parts[k].samples;
    joined.rows += parts[k].rows;
    outputs.push_back(&parts[k].trace.output);
    features.push_back(&parts[k].trace.features);
  }
  joined.trace.samples = joined.samples;
  joined.trace.output = join_rows(outputs);
  joined.trace.features = join_rows(features);
  for (size_t l = 0; l < joined.trace.layers.size(); ++l) {
    std::vector<const Tensor*> inputs{&joined.trace.layers[l].input}, deltas{&joined.trace.layers[l].delta};
    for (size_t k = 1; k < parts.size(); ++k) {
      inputs.push_back(&parts[k].trace.layers[l].input);
      deltas.push_back(&parts[k].trace.layers[l].delta);
    }
    joined.trace.layers[l].input = join_rows(inputs);
    joined.trace.layers[l].delta = join_rows(deltas);
  }
  return joined;
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
