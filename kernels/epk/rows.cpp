// Quadrature rows of the exact path kernel evaluated in tiles of kRowsPerTile rows, in parallel; each row's bits depend
// only on its tile. The batch's tiles and coefficients at θ_s. No step loop here (epk.cpp has it).
#include "kernels/epk/rows.h"

#include <algorithm>

namespace ks {

RowValues evaluate_rows(const Sequential& model, const Tensor& inputs, const StepBatch& batch, const std::vector<QuadratureRow>& rows,
                        const Parameters* first, const Parameters* second) {
  const Segment& segment_template = *batch.segment;
  const int64_t C = batch.outputs, batch_rows = batch.batch_rows;
  const int64_t R = static_cast<int64_t>(rows.size());
  RowValues values;
  values.kernel = MatrixRowMajor::Zero(R * C, batch_rows);
  values.output = Tensor({R, C});
  if (first) values.along_first = Tensor({R * C});
  if (second) values.along_second = Tensor({R * C});
  const int64_t tiles = (R + kRowsPerTile - 1) / kRowsPerTile;
#pragma omp parallel for schedule(dynamic)
  for (int64_t tile_index = 0; tile_index < tiles; ++tile_index) {
    const int64_t begin = tile_index * kRowsPerTile, end = std::min(R, begin + kRowsPerTile);
    Segment segment = segment_template;
    for (int64_t r = begin; r < end; ++r) {
      segment.samples.push_back(rows[static_cast<size_t>(r)].sample);
      segment.t.push_back(rows[static_cast<size_t>(r)].t);
    }
    Trace trace = trace_segment(model, gather_rows(inputs, segment.samples), segment);
    std::copy_n(trace.output.data(), trace.output.numel(), values.output.data() + begin * C);
    if (first) {
      const Tensor product = jacobian_vector_product(trace, *first);
      std::copy_n(product.data(), product.numel(), values.along_first.data() + begin * C);
    }
    if (second) {
      const Tensor product = jacobian_vector_product(trace, *second, &segment);
      std::copy_n(product.data(), product.numel(), values.along_second.data() + begin * C);
    }
    const Tile tile = tile_from_trace(std::move(trace), begin, batch.method);
    int64_t column = 0;
    for (const Tile& other : *batch.tiles) {
      values.kernel.block(begin * C, column, tile.rows, other.rows) = block(tile, other);
      column += other.rows;
    }
  }
  return values;
}

Parameters difference(const Parameters& after, const Parameters& before) {
  Parameters out;
  for (size_t k = 0; k < after.size(); ++k) {
    Tensor d(after[k].shape());
    for (int64_t i = 0; i < d.numel(); ++i) d[i] = after[k][i] - before[k][i];
    out.push_back(std::move(d));
  }
  return out;
}

// −η ∂L/∂f_i for the batch outputs (b, C), through the training's own loss code.
Tensor loss_coefficients(const Tensor& outputs, const std::vector<int>& labels, LossKind loss, double learning_rate) {
  Var f = parameter(outputs);
  backward(loss_of_outputs(f, labels, loss));
  Tensor a = f->grad;
  for (int64_t i = 0; i < a.numel(); ++i) a[i] *= -learning_rate;
  return a;
}

std::vector<Tile> batch_tiles(const Sequential& model, const Parameters& theta, const Tensor& inputs, KernelMethod method, Tensor& outputs) {
  const int64_t N = inputs.dim(0), count = (N + kRowsPerTile - 1) / kRowsPerTile;
  std::vector<Tile> tiles(static_cast<size_t>(count));
  std::vector<Tensor> parts(static_cast<size_t>(count));
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < count; ++k) {
    std::vector<int64_t> samples;
    for (int64_t n = k * kRowsPerTile; n < std::min(N, (k + 1) * kRowsPerTile); ++n) samples.push_back(n);
    Trace trace = trace_network(model, theta, gather_rows(inputs, samples));
    parts[static_cast<size_t>(k)] = trace.output;
    tiles[static_cast<size_t>(k)] = tile_from_trace(std::move(trace), k * kRowsPerTile, method);
  }
  const int64_t C = parts.front().dim(1);
  outputs = Tensor({N, C});
  for (int64_t k = 0; k < count; ++k) std::copy_n(parts[static_cast<size_t>(k)].data(), parts[static_cast<size_t>(k)].numel(), outputs.data() + k * kRowsPerTile * C);
  return tiles;
}

StepIntegral empty_integral(int64_t M, int64_t C, int64_t batch_rows) {
  StepIntegral integral;
  integral.kernel.assign(static_cast<size_t>(M), MatrixRowMajor::Zero(C, batch_rows));
  integral.along_theta = Tensor({M, C});
  integral.along_direction = Tensor({M, C});
  return integral;
}

void add_rows(StepIntegral& integral, const std::vector<QuadratureRow>& rows, const RowValues& values, int64_t C) {
  for (size_t r = 0; r < rows.size(); ++r) {
    const QuadratureRow& row = rows[r];
    integral.kernel[static_cast<size_t>(row.sample)] += row.weight * values.kernel.middleRows(static_cast<int64_t>(r) * C, C);
    for (int64_t c = 0; c < C; ++c) {
      if (!values.along_first.empty()) integral.along_theta[row.sample * C + c] += row.weight * values.along_first[static_cast<int64_t>(r) * C + c];
      if (!values.along_second.empty()) integral.along_direction[row.sample * C + c] += row.weight * values.along_second[static_cast<int64_t>(r) * C + c];
    }
  }
}

}  // namespace ks
