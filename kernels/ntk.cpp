// Tiled tangent-kernel Grams. Tiles hold a fixed number of samples (independent of N and of the thread count);
// OpenMP runs over tiles and tile pairs, each block written by one thread, Eigen single-threaded inside: the bits
// do not depend on OMP_NUM_THREADS. Jacobian-path layers are contracted with one GEMM per block.
#include "kernels/ntk.h"

#include "kernels/tile.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ks {

namespace {

// Row tiles meet a column tile in groups of this many: one GEMM packs the column's per-sample gradients once for 256
// rows instead of once per 32. Panels end on group boundaries, so GEMM shapes (and bits) do not depend on the budget.
constexpr int64_t kGroupTiles = 8;

Tile make_tile(const Sequential& model, const Parameters& theta, const Tensor& inputs, int64_t first, KernelMethod requested) {
  return tile_from_trace(trace_network(model, theta, sample_rows(inputs, first, std::min(kTileSamples, inputs.dim(0) - first))), first, requested);
}

void place(Tensor& gram, const MatrixRowMajor& K, const Tile& a, const Tile& b, bool trace_outputs, bool mirror) {
  const int64_t C = a.trace.outputs;
  const int64_t columns = gram.dim(1);
  if (trace_outputs) {
    for (int64_t n = 0; n < a.samples; ++n)
      for (int64_t k = 0; k < b.samples; ++k) {
        double total = 0.0;
        for (int64_t c = 0; c < C; ++c) total += K(n * C + c, k * C + c);
        gram[(a.first + n) * columns + b.first + k] = total;
        if (mirror) gram[(b.first + k) * columns + a.first + n] = total;
      }
    return;
  }
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t q = 0; q < b.rows; ++q) {
      gram[(a.first * C + r) * columns + b.first * C + q] = K(r, q);
      if (mirror) gram[(b.first * C + q) * columns + a.first * C + r] = K(r, q);
    }
}

int64_t tile_count(int64_t samples) { return (samples + kTileSamples - 1) / kTileSamples; }

}  // namespace

std::string kernel_method_name(KernelMethod method) {
  switch (method) {
    case KernelMethod::automatic: return "auto";
    case KernelMethod::jacobian: return "jacobian";
    case KernelMethod::structured: return "structured";
  }
  return "?";
}

KernelMethod parse_kernel_method(const std::string& name) {
  for (KernelMethod method : {KernelMethod::automatic, KernelMethod::jacobian, KernelMethod::structured})
    if (name == kernel_method_name(method)) return method;
  throw std::invalid_argument("unknown kernel method '" + name + "' (use auto, jacobian or structured)");
}

std::vector<KernelMethod> chosen_methods(const Sequential& model, const Shape& sample_shape, KernelMethod requested) {
  Shape shape = sample_shape;
  shape.insert(shape.begin(), 1);
  const std::vector<Shape> inputs = model.input_shapes(shape);
  std::vector<KernelMethod> methods;
  for (size_t l = 0; l < model.layers().size(); ++l)
    if (model.layers()[l]->parameterised()) methods.push_back(choose_method(*model.layers()[l], inputs[l], requested));
  return methods;
}

namespace {

// One Gram computation: the two sample sets, θ and where the blocks go.
struct GramJob {
  const Sequential& model;
  const Parameters& theta;
  const Tensor& rows;
  const Tensor& columns;
  bool symmetric;
  const NtkOptions& options;
  Tensor& gram;
};

// Row tiles from panel_start on, while they fit the memory budget (whole groups at least), built in parallel batches
// of a fixed count, so which thread builds which does not matter.
std::vector<Tile> build_panel(const GramJob& job, int64_t panel_start, int64_t tiles) {
  std::vector<Tile> panel;
  double bytes = 0.0;
  while (panel_start + static_cast<int64_t>(panel.size()) < tiles &&
         (panel.empty() || panel.size() % kGroupTiles != 0 || bytes < job.options.memory_budget_bytes / 2)) {
    const int64_t batch = std::min<int64_t>(8, tiles - panel_start - static_cast<int64_t>(panel.size()));
    std::vector<Tile> built(static_cast<size_t>(batch));
    const int64_t base = panel_start + static_cast<int64_t>(panel.size());
#pragma omp parallel for schedule(dynamic)
    for (int64_t t = 0; t < batch; ++t)
      built[static_cast<size_t>(t)] = make_tile(job.model, job.theta, job.rows, (base + t) * kTileSamples, job.options.method);
    for (Tile& tile : built) {
      bytes += tile_bytes(tile);
      panel.push_back(std::move(tile));
    }
  }
  return panel;
}

// The panel's Jacobian-path rows, stacked by group of tiles (the tiles give theirs up: memory stays one copy).
std::vector<MatrixRowMajor> stack_groups(std::vector<Tile>& panel) {
  std::vector<MatrixRowMajor> groups;
  for (int64_t first_tile = 0; first_tile < static_cast<int64_t>(panel.size()); first_tile += kGroupTiles) {
    const int64_t last_tile = std::min<int64_t>(first_tile + kGroupTiles, static_cast<int64_t>(panel.size()));
    int64_t rows = 0;
    for (int64_t t = first_tile; t < last_tile; ++t) rows += panel[static_cast<size_t>(t)].jacobian.rows();
    MatrixRowMajor group(rows, rows ? panel[static_cast<size_t>(first_tile)].jacobian.cols() : 0);
    for (int64_t t = first_tile, row = 0; t < last_tile; ++t) {
      MatrixRowMajor& own = panel[static_cast<size_t>(t)].jacobian;
      if (own.size()) group.middleRows(row, own.rows()) = own;
      row += own.rows();
      own = MatrixRowMajor();
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

// Column tile j against every row tile of the panel: one GEMM per group for the Jacobian-path layers, then each
// tile pair's structured layers; blocks are placed (and mirrored) in the Gram.
void contract_column(const GramJob& job, const std::vector<Tile>& panel, const std::vector<MatrixRowMajor>& groups, int64_t panel_start, int64_t j) {
  const int64_t panel_end = panel_start + static_cast<int64_t>(panel.size());
  const bool resident = job.symmetric && j < panel_end;
  Tile column = resident ? Tile() : make_tile(job.model, job.theta, job.columns, j * kTileSamples, job.options.method);
  const Tile& b = resident ? panel[static_cast<size_t>(j - panel_start)] : column;
  MatrixRowMajor column_jacobian;  // b's Jacobian-path rows
  if (resident) {
    const int64_t local = j - panel_start, group = local / kGroupTiles;
    if (groups[static_cast<size_t>(group)].size())
      column_jacobian = groups[static_cast<size_t>(group)].middleRows((local % kGroupTiles) * kTileSamples * b.trace.outputs, b.rows);
  } else {
    column_jacobian = std::move(column.jacobian);
  }
  for (size_t group = 0; group < groups.size(); ++group) {
    const int64_t group_first = panel_start + static_cast<int64_t>(group) * kGroupTiles;
    if (job.symmetric && group_first > j) break;
    MatrixRowMajor group_block;  // (group rows, b.rows): one GEMM for the whole group
    if (column_jacobian.size()) group_block.noalias() = groups[group] * column_jacobian.transpose();
    for (int64_t i = group_first; i < std::min(group_first + kGroupTiles, panel_end); ++i) {
      if (job.symmetric && i > j) continue;
      const Tile& a = panel[static_cast<size_t>(i - panel_start)];
      MatrixRowMajor K = block(a, b);  // the structured layers (the Jacobian rows have moved to the groups)
      if (group_block.size()) K += group_block.middleRows((i - group_first) * kTileSamples * a.trace.outputs, a.rows);
      if (job.symmetric && i == j) K = K.triangularView<Eigen::Upper>().toDenseMatrix().selfadjointView<Eigen::Upper>();
      place(job.gram, K, a, b, job.options.trace_outputs, job.symmetric && i != j);
    }
  }
}

}  // namespace

Tensor ntk_gram(const Sequential& model, const Parameters& theta, const Tensor& inputs_a, const Tensor* inputs_b, const NtkOptions& options) {
  const bool symmetric = inputs_b == nullptr;
  const Tensor& other = symmetric ? inputs_a : *inputs_b;
  if (inputs_a.rank() != other.rank() || inputs_a.numel() / std::max<int64_t>(inputs_a.dim(0), 1) != other.numel() / std::max<int64_t>(other.dim(0), 1))
    throw ShapeError("ntk_gram: input sets " + shape_string(inputs_a.shape()) + " and " + shape_string(other.shape()) + " differ in sample shape");
  model.check_parameters(theta, "ntk_gram");
  const int64_t tiles_a = tile_count(inputs_a.dim(0)), tiles_b = tile_count(other.dim(0));
  const int64_t scale = options.trace_outputs ? 1 : output_count(model, inputs_a);
  Tensor gram({inputs_a.dim(0) * scale, other.dim(0) * scale});
  const GramJob job{model, theta, inputs_a, other, symmetric, options, gram};
  const int64_t total_blocks = symmetric ? tiles_a * (tiles_a + 1) / 2 : tiles_a * tiles_b;
  int64_t done_blocks = 0;
  // Panels of row tiles that fit the memory budget; each panel streams every column tile once.
  for (int64_t panel_start = 0; panel_start < tiles_a;) {
    std::vector<Tile> panel = build_panel(job, panel_start, tiles_a);
    const std::vector<MatrixRowMajor> groups = stack_groups(panel);
    const int64_t panel_end = panel_start + static_cast<int64_t>(panel.size());
#pragma omp parallel for schedule(dynamic)
    for (int64_t j = symmetric ? panel_start : 0; j < tiles_b; ++j) {
      contract_column(job, panel, groups, panel_start, j);
#pragma omp critical(kernelscope_progress)
      {
        done_blocks += symmetric ? std::min(j, panel_end - 1) - panel_start + 1 : panel_end - panel_start;
        if (options.progress) options.progress(done_blocks, total_blocks);
      }
    }
    panel_start = panel_end;
  }
  return gram;
}

Tensor ntk_diagonal(const Sequential& model, const Parameters& theta, const Tensor& inputs, const NtkOptions& options) {
  const int64_t tiles = tile_count(inputs.dim(0));
  std::vector<Tensor> parts(static_cast<size_t>(tiles));
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles; ++t) {
    const Tile tile = make_tile(model, theta, inputs, t * kTileSamples, options.method);
    const MatrixRowMajor K = block(tile, tile);
    const int64_t C = tile.trace.outputs;
    Tensor part({options.trace_outputs ? tile.samples : tile.rows});
    for (int64_t r = 0; r < tile.rows; ++r) part[options.trace_outputs ? r / C : r] += K(r, r);
    parts[static_cast<size_t>(t)] = std::move(part);
  }
  AlignedBuffer values;
  for (const Tensor& part : parts) values.insert(values.end(), part.values().begin(), part.values().end());
  const auto count = static_cast<int64_t>(values.size());
  return Tensor({count}, std::move(values));
}

Tensor conjugate_features(const Sequential& model, const Parameters& theta, const Tensor& inputs) {
  const int64_t tiles = tile_count(inputs.dim(0));
  std::vector<Tensor> parts(static_cast<size_t>(tiles));
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t first = t * kTileSamples;
    parts[static_cast<size_t>(t)] = trace_network(model, theta, sample_rows(inputs, first, std::min(kTileSamples, inputs.dim(0) - first)), false).features;
  }
  const int64_t F = parts.front().dim(1);
  Tensor features({inputs.dim(0), F});
  for (int64_t t = 0; t < tiles; ++t) std::copy_n(parts[static_cast<size_t>(t)].data(), parts[static_cast<size_t>(t)].numel(), features.data() + t * kTileSamples * F);
  return features;
}

Tensor conjugate_kernel(const Sequential& model, const Parameters& theta, const Tensor& inputs_a, const Tensor* inputs_b) {
  const Tensor a = conjugate_features(model, theta, inputs_a);
  return feature_gram(a, inputs_b ? conjugate_features(model, theta, *inputs_b) : a);
}

Tensor feature_gram(const Tensor& a, const Tensor& b) {
  Tensor gram({a.dim(0), b.dim(0)});
  // Row by row, so each entry's summation does not depend on the set sizes (no size-dependent GEMM blocking).
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < a.dim(0); ++n)
    for (int64_t k = 0; k < b.dim(0); ++k)
      gram[n * b.dim(0) + k] = a.matrix().row(n).dot(b.matrix().row(k));
  return gram;
}

Tensor cosine_normalise(const Tensor& gram, const Tensor& diagonal_rows, const Tensor& diagonal_columns) {
  if (gram.rank() != 2 || diagonal_rows.numel() != gram.dim(0) || diagonal_columns.numel() != gram.dim(1))
    throw ShapeError("cosine_normalise: Gram " + shape_string(gram.shape()) + " with diagonals " + shape_string(diagonal_rows.shape()) +
                     " and " + shape_string(diagonal_columns.shape()));
  Tensor out(gram.shape());
  for (int64_t r = 0; r < gram.dim(0); ++r)
    for (int64_t c = 0; c < gram.dim(1); ++c)
      out[r * gram.dim(1) + c] = gram[r * gram.dim(1) + c] / std::sqrt(diagonal_rows[r] * diagonal_columns[c]);
  return out;
}

}  // namespace ks
