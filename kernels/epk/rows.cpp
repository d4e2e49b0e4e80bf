// Quadrature rows of the exact path kernel evaluated in tiles of rows_per_tile rows, in parallel; each row's bits depend
// only on its tile. The batch's tiles and coefficients at θ_s. No step loop here (epk.cpp has it).
#include "kernels/epk/rows.h"

#include <algorithm>

#include <omp.h>

#include "kernels/quadrature.h"

namespace ks {

namespace {

// Σ weight · ∇θ f_c per (test input, output) over the tile's rows [begin, end), through the Jacobian-path layers'
// gradient_sums: one coefficient per (group, row), the row's quadrature weight.
TileSums tile_sums(const Tile& tile, const std::vector<QuadratureRow>& rows, int64_t begin, int64_t end) {
  const int64_t C = tile.trace.outputs;
  const JacobianColumns columns = jacobian_columns(tile);
  TileSums out;
  std::vector<int64_t> group_of;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t sample = rows[static_cast<size_t>(r)].sample;
    auto found = std::find(out.inputs.begin(), out.inputs.end(), sample);
    group_of.push_back(found - out.inputs.begin());
    if (found == out.inputs.end()) out.inputs.push_back(sample);
  }
  const int64_t groups = static_cast<int64_t>(out.inputs.size()) * C;
  MatrixRowMajor coefficients = MatrixRowMajor::Zero(groups, tile.rows);
  for (int64_t r = begin; r < end; ++r)
    for (int64_t c = 0; c < C; ++c) coefficients(group_of[static_cast<size_t>(r - begin)] * C + c, (r - begin) * C + c) = rows[static_cast<size_t>(r)].weight;
  out.sums = MatrixRowMajor::Zero(groups, columns.width);
  for (size_t l = 0; l < tile.trace.layers.size(); ++l) {
    if (columns.offsets[l] < 0) continue;
    const LayerSignals& s = tile.trace.layers[l];
    s.layer->gradient_sums(s, C, coefficients, out.sums.data(), columns.width, columns.offsets[l]);
  }
  return out;
}

}  // namespace

RowValues evaluate_rows(const Sequential& model, const Tensor& inputs, const StepBatch& batch, const std::vector<QuadratureRow>& rows,
                        const RowRequest& request) {
  const Segment& segment_template = *batch.segment;
  const int64_t C = batch.outputs, batch_rows = batch.batch_rows;
  const int64_t R = static_cast<int64_t>(rows.size());
  RowValues values;
  values.kernel = MatrixRowMajor::Zero(R * C, batch_rows);
  values.output = Tensor({R, C});
  if (request.first) values.along_first = Tensor({R * C});
  if (request.second) values.along_second = Tensor({R * C});
  const int64_t per_tile = rows_per_tile(model, inputs), tiles = (R + per_tile - 1) / per_tile;
  if (request.sum_jacobian) values.sums.resize(static_cast<size_t>(tiles));
#pragma omp parallel for schedule(dynamic)
  for (int64_t tile_index = 0; tile_index < tiles; ++tile_index) {
    const int64_t begin = tile_index * per_tile, end = std::min(R, begin + per_tile);
    Segment segment = segment_template;
    std::vector<Tensor> given(request.layer_outputs ? model.layers().size() : 0);
    for (size_t l = 0; l < given.size(); ++l) {
      if (model.layers()[l]->parameterised()) given[l] = request.layer_outputs(static_cast<int64_t>(l), begin, end);
      segment.outputs.push_back(given[l].empty() ? nullptr : &given[l]);
    }
    for (int64_t r = begin; r < end; ++r) {
      segment.samples.push_back(rows[static_cast<size_t>(r)].sample);
      segment.t.push_back(rows[static_cast<size_t>(r)].t);
    }
    Trace trace = trace_segment(model, gather_rows(inputs, segment.samples), segment);
    std::copy_n(trace.output.data(), trace.output.numel(), values.output.data() + begin * C);
    // Summed rows leave the Jacobian-path layers' directional derivatives to contract_sums, from the sums.
    std::vector<bool> structured;
    for (const LayerSignals& s : trace.layers) structured.push_back(choose_method(*s.layer, s.input.shape(), batch.method) != KernelMethod::jacobian);
    const std::vector<bool>* only = request.sum_jacobian ? &structured : nullptr;
    if (request.first) {
      const Tensor product = jacobian_vector_product(trace, *request.first, nullptr, only);
      std::copy_n(product.data(), product.numel(), values.along_first.data() + begin * C);
    }
    if (request.second) {
      const Tensor product = jacobian_vector_product(trace, *request.second, &segment, only);
      std::copy_n(product.data(), product.numel(), values.along_second.data() + begin * C);
    }
    const Tile tile = tile_from_trace(std::move(trace), begin, batch.method, !request.sum_jacobian);
    if (request.sum_jacobian) values.sums[static_cast<size_t>(tile_index)] = tile_sums(tile, rows, begin, end);
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
  const int64_t N = inputs.dim(0), count = (N + kTileSamples - 1) / kTileSamples;
  std::vector<Tile> tiles(static_cast<size_t>(count));
  std::vector<Tensor> parts(static_cast<size_t>(count));
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < count; ++k) {
    std::vector<int64_t> samples;
    for (int64_t n = k * kTileSamples; n < std::min(N, (k + 1) * kTileSamples); ++n) samples.push_back(n);
    Trace trace = trace_network(model, theta, gather_rows(inputs, samples));
    parts[static_cast<size_t>(k)] = trace.output;
    tiles[static_cast<size_t>(k)] = tile_from_trace(std::move(trace), k * kTileSamples, method);
  }
  const int64_t C = parts.front().dim(1);
  outputs = Tensor({N, C});
  for (int64_t k = 0; k < count; ++k) std::copy_n(parts[static_cast<size_t>(k)].data(), parts[static_cast<size_t>(k)].numel(), outputs.data() + k * kTileSamples * C);
  return tiles;
}

StepIntegral empty_integral(int64_t M, int64_t C, int64_t batch_rows) {
  StepIntegral integral;
  integral.kernel.assign(static_cast<size_t>(M), MatrixRowMajor::Zero(C, batch_rows));
  integral.along_theta = Tensor({M, C});
  integral.along_direction = Tensor({M, C});
  integral.sums.resize(static_cast<size_t>(M));
  return integral;
}

void add_rows(StepIntegral& integral, const std::vector<QuadratureRow>& rows, const RowValues& values, int64_t C) {
  for (const TileSums& tile : values.sums)
    for (size_t k = 0; k < tile.inputs.size(); ++k) {
      MatrixRowMajor& sum = integral.sums[static_cast<size_t>(tile.inputs[k])];
      if (sum.size() == 0) sum = MatrixRowMajor::Zero(C, tile.sums.cols());
      sum += tile.sums.middleRows(static_cast<int64_t>(k) * C, C);
    }
  for (size_t r = 0; r < rows.size(); ++r) {
    const QuadratureRow& row = rows[r];
    integral.kernel[static_cast<size_t>(row.sample)] += row.weight * values.kernel.middleRows(static_cast<int64_t>(r) * C, C);
    for (int64_t c = 0; c < C; ++c) {
      if (!values.along_first.empty()) integral.along_theta[row.sample * C + c] += row.weight * values.along_first[static_cast<int64_t>(r) * C + c];
      if (!values.along_second.empty()) integral.along_direction[row.sample * C + c] += row.weight * values.along_second[static_cast<int64_t>(r) * C + c];
    }
  }
}

double seconds_since(Clock::time_point from) { return std::chrono::duration<double>(Clock::now() - from).count(); }

namespace {

void count_pieces(const std::vector<std::vector<double>>& bounds, int64_t nodes_per_piece, QuadratureReport& report) {
  for (const std::vector<double>& edges : bounds) {
    const int64_t pieces = static_cast<int64_t>(edges.size()) - 1;
    report.pieces += pieces, report.breakpoints += pieces - 1, report.max_pieces = std::max(report.max_pieces, pieces);
    report.nodes += pieces * nodes_per_piece;
  }
}

// One input's rows waiting for evaluation, with the runs of pieces they came from: the sweep hands over a few pieces
// at a time, and tiles of rows are only busy (and balanced over the threads) in runs of several.
struct PendingRows {
  std::vector<QuadratureRow> rows;
  std::vector<std::pair<int64_t, PieceLeaf>> leaves;  // (first row, run of pieces), in row order
};
constexpr int64_t kPendingRows = 256;

// Layer `layer`'s outputs on rows [begin, end) of the pending rows, from the runs of pieces they lie on.
Tensor pending_outputs(const PendingRows& pending, int64_t layer, int64_t begin, int64_t end) {
  std::vector<Tensor> parts;
  for (size_t k = 0; k < pending.leaves.size(); ++k) {
    const int64_t first = pending.leaves[k].first;
    const int64_t last = k + 1 < pending.leaves.size() ? pending.leaves[k + 1].first : static_cast<int64_t>(pending.rows.size());
    if (last <= begin || first >= end) continue;
    std::vector<double> t;
    for (int64_t r = std::max(first, begin); r < std::min(last, end); ++r) t.push_back(pending.rows[static_cast<size_t>(r)].t);
    parts.push_back(pending.leaves[k].second.outputs_at(layer, t));
  }
  if (parts.size() == 1) return std::move(parts.front());
  const int64_t size = parts.front().numel() / parts.front().dim(0);
  Tensor out = Tensor::uninitialised(with_batch(parts.front().shape(), end - begin));  // every part copied in
  int64_t row = 0;
  for (const Tensor& part : parts) {
    std::copy_n(part.data(), part.numel(), out.data() + row * size);
    row += part.dim(0);
  }
  return out;
}

// The pending rows evaluated and summed into the integral, in order; then none are pending.
void flush(const Sequential& model, const Tensor& inputs, const StepBatch& batch, const RowRequest& request, PendingRows& pending,
           StepIntegral& integral) {
  if (pending.rows.empty()) return;
  RowRequest given = request;
  given.layer_outputs = [&pending](int64_t layer, int64_t begin, int64_t end) { return pending_outputs(pending, layer, begin, end); };
  add_rows(integral, pending.rows, evaluate_rows(model, inputs, batch, pending.rows, given), batch.outputs);
  pending = PendingRows();
}

// One run of an input's pieces: its Gauss–Legendre rows, pending.
void take_leaf(int64_t nodes, const PieceLeaf& leaf, PendingRows& pending) {
  pending.leaves.push_back({static_cast<int64_t>(pending.rows.size()), leaf});
  for (const auto& [a, b] : leaf.pieces) {
    const QuadratureRule rule = gauss_legendre(nodes, a, b);
    for (size_t q = 0; q < rule.nodes.size(); ++q) pending.rows.push_back({leaf.sample, rule.nodes[q], rule.weights[q]});
  }
}

}  // namespace

void integrate_on_pieces(const Sequential& model, const Tensor& inputs, const StepBatch& batch, const RowRequest& request,
                         const PieceQuadrature& quadrature, StepIntegral& integral, QuadratureReport& report) {
  const int64_t M = inputs.dim(0), nodes = quadrature.nodes_per_piece;
  std::vector<std::vector<double>> bounds(static_cast<size_t>(M), std::vector<double>{0.0, 1.0});
  if (!quadrature.network) {
    const std::vector<QuadratureRow> rows = piecewise_rows(bounds, nodes);
    add_rows(integral, rows, evaluate_rows(model, inputs, batch, rows, request), batch.outputs);
    count_pieces(bounds, nodes, report);
    return;
  }
  std::vector<PendingRows> pending(static_cast<size_t>(M));  // per input: inputs may sweep in parallel
  std::vector<double> row_seconds(static_cast<size_t>(M), 0.0);
  const PieceLeafVisitor visit = [&](const PieceLeaf& leaf) {
    const auto started = Clock::now();
    PendingRows& mine = pending[static_cast<size_t>(leaf.sample)];
    take_leaf(nodes, leaf, mine);
    if (static_cast<int64_t>(mine.rows.size()) >= kPendingRows) flush(model, inputs, batch, request, mine, integral);
    row_seconds[static_cast<size_t>(leaf.sample)] += seconds_since(started);
  };
  const auto started = Clock::now();
  bounds = find_pieces(model, *quadrature.network, inputs, *batch.segment, &visit);
  // The sweep's own share of the wall time: the rows' time spread over the inputs swept at once.
  const double concurrent = static_cast<double>(M > 1 ? std::min<int64_t>(M, omp_get_max_threads()) : 1);
  double rows = 0.0;
  for (double seconds : row_seconds) rows += seconds;
  report.piece_seconds += std::max(0.0, seconds_since(started) - rows / concurrent);
  for (PendingRows& rest : pending) flush(model, inputs, batch, request, rest, integral);  // in input order
  count_pieces(bounds, nodes, report);
}

namespace {

// v's values on the Jacobian-path layers, in the summed gradients' column order.
Eigen::VectorXd jacobian_part(const Tile& tile, const Parameters& v) {
  const JacobianColumns columns = jacobian_columns(tile);
  Eigen::VectorXd out(columns.width);
  for (size_t l = 0; l < tile.trace.layers.size(); ++l) {
    if (columns.offsets[l] < 0) continue;
    const LayerSignals& s = tile.trace.layers[l];
    int64_t at = columns.offsets[l];
    for (int64_t k = s.parameter_index; k < s.parameter_index + s.parameter_tensors; ++k)
      for (int64_t i = 0; i < v[static_cast<size_t>(k)].numel(); ++i) out[at++] = v[static_cast<size_t>(k)][i];
  }
  return out;
}

}  // namespace

void contract_sums(StepIntegral& integral, const StepBatch& batch, const RowRequest& request) {
  const Tile& layout = batch.tiles->front();
  const Eigen::VectorXd first = request.first ? jacobian_part(layout, *request.first) : Eigen::VectorXd();
  const Eigen::VectorXd second = request.second ? jacobian_part(layout, *request.second) : Eigen::VectorXd();
  for (size_t m = 0; m < integral.sums.size(); ++m) {
    const MatrixRowMajor& sums = integral.sums[m];
    if (sums.size() == 0) continue;
    int64_t column = 0;
    for (const Tile& other : *batch.tiles) {
      integral.kernel[m].middleCols(column, other.rows).noalias() += sums * other.jacobian.transpose();
      column += other.rows;
    }
    for (int64_t c = 0; c < sums.rows(); ++c) {
      const int64_t at = static_cast<int64_t>(m) * sums.rows() + c;
      if (request.first) integral.along_theta[at] += sums.row(c).dot(first);
      if (request.second) integral.along_direction[at] += sums.row(c).dot(second);
    }
    integral.sums[m] = MatrixRowMajor();
  }
}

}  // namespace ks
