// Tiled tangent-kernel Grams. Tiles hold a fixed number of samples (independent of N and of the thread count);
// OpenMP runs over tiles and tile pairs, each block written by one thread, Eigen single-threaded inside: the bits
// do not depend on OMP_NUM_THREADS. Jacobian-path layers are contracted with one GEMM per block.
#include "kernels/ntk.h"

#include "kernels/tile.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>
#include <stdexcept>

namespace ks {

namespace {

// Tiles per group (see Group below).
constexpr int64_t kGroupTiles = 8;

// The tile of samples [first, first + kTileSamples) traced in sub-batches of rows_per_tile samples, so each layer's
// values stay in cache between the layers (a tile of 32 images of a conv net would spill them), its Jacobian-path rows
// written at `rows` (width values each). The sub-batch size is fixed by the network: bits depend on neither N nor the
// thread count.
Tile trace_tile(const Sequential& model, const Parameters& theta, const Tensor& inputs, int64_t first, KernelMethod requested,
                double* rows, int64_t width) {
  const int64_t end = std::min(first + kTileSamples, inputs.dim(0)), step = rows_per_tile(model, inputs);
  const int64_t C = output_count(model, inputs);
  std::vector<Tile> parts;
  for (int64_t begin = first; begin < end; begin += step) {
    const int64_t count = std::min(step, end - begin);
    double* at = width > 0 ? rows + (begin - first) * C * width : nullptr;  // no rows when every layer is structured
    parts.push_back(tile_into_rows(trace_network(model, theta, sample_rows(inputs, begin, count)), begin, requested, at, width));
  }
  return join_tiles(std::move(parts));
}

// The Jacobian-path columns' width, from the layers' cost models (which do not depend on the batch).
int64_t jacobian_width(const Sequential& model, const Tensor& inputs, KernelMethod requested) {
  Shape sample = inputs.shape();
  sample.erase(sample.begin());
  const std::vector<KernelMethod> methods = chosen_methods(model, sample, requested);
  int64_t width = 0;
  for (size_t l = 0, k = 0; l < model.layers().size(); ++l)
    if (model.layers()[l]->parameterised() && methods[k++] == KernelMethod::jacobian) width += model.layer_parameter_size(l);
  return width;
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

// One Gram computation: the two sample sets, θ, the Jacobian-path width and where the blocks go.
struct GramJob {
  const Sequential& model;
  const Parameters& theta;
  const Tensor& rows;
  const Tensor& columns;
  bool symmetric;
  const NtkOptions& options;
  int64_t jacobian_width;
  Tensor& gram;
};

// Up to kGroupTiles consecutive tiles of one sample set and their Jacobian-path rows stacked in one matrix, each tile
// writing its rows in place as it is traced. Groups meet in one GEMM per pair: each side is packed once for 256 rows
// of the other (a 32-row side would be packed again for every product, and the packing would cost as much as the
// product). Groups start on fixed boundaries, so the GEMM shapes, and the bits, depend on neither the memory budget
// nor the thread count.
struct Group {
  int64_t first_tile = 0;
  std::vector<Tile> tiles;  // their structured layers' signals
  MatrixRowMajor jacobian;  // (Σ tile rows, jacobian_width)
};

int64_t group_count(int64_t tiles) { return (tiles + kGroupTiles - 1) / kGroupTiles; }

// Group g of a sample set, its tiles traced in parallel.
Group build_group(const GramJob& job, const Tensor& inputs, int64_t g) {
  const int64_t N = inputs.dim(0), C = output_count(job.model, inputs);
  Group group;
  group.first_tile = g * kGroupTiles;
  const int64_t count = std::min(kGroupTiles, tile_count(N) - group.first_tile);
  const int64_t first_sample = group.first_tile * kTileSamples, end_sample = std::min(N, (group.first_tile + count) * kTileSamples);
  group.jacobian = MatrixRowMajor((end_sample - first_sample) * C, job.jacobian_width);  // every entry written by a tile
  group.tiles.resize(static_cast<size_t>(count));
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < count; ++t) {
    const int64_t first = (group.first_tile + t) * kTileSamples;
    double* rows = job.jacobian_width > 0 ? group.jacobian.data() + (first - first_sample) * C * job.jacobian_width : nullptr;
    group.tiles[static_cast<size_t>(t)] = trace_tile(job.model, job.theta, inputs, first, job.options.method, rows, job.jacobian_width);
  }
  return group;
}

double group_bytes(const Group& group) {
  double bytes = 8.0 * static_cast<double>(group.jacobian.size());
  for (const Tile& tile : group.tiles) bytes += tile_bytes(tile);
  return bytes;
}

// Groups of a sample set from first_group on, while they fit half the memory budget (one group at least).
std::vector<Group> build_panel(const GramJob& job, const Tensor& inputs, int64_t first_group) {
  std::vector<Group> panel;
  double bytes = 0.0;
  const int64_t groups = group_count(tile_count(inputs.dim(0)));
  while (first_group + static_cast<int64_t>(panel.size()) < groups && (panel.empty() || bytes < job.options.memory_budget_bytes / 2)) {
    panel.push_back(build_group(job, inputs, first_group + static_cast<int64_t>(panel.size())));
    bytes += group_bytes(panel.back());
  }
  return panel;
}

// Two groups' blocks: one GEMM for the Jacobian-path layers, then each tile pair's structured layers; blocks are placed
// (and mirrored) in the Gram. On the diagonal of a symmetric Gram only tile pairs i <= j are placed. Returns the
// tile pairs placed.
int64_t contract_groups(const GramJob& job, const Group& row_group, const Group& column_group) {
  const bool diagonal = job.symmetric && row_group.first_tile == column_group.first_tile;
  MatrixRowMajor product;  // (row group rows, column group rows)
  if (job.jacobian_width > 0 && diagonal) {
    // Only the upper triangle is read below: half the multiply-adds of the full product.
    product.setZero(row_group.jacobian.rows(), column_group.jacobian.rows());
    product.triangularView<Eigen::Upper>() += row_group.jacobian * column_group.jacobian.transpose();
  } else if (job.jacobian_width > 0) {
    product.noalias() = row_group.jacobian * column_group.jacobian.transpose();
  }
  int64_t placed = 0;
  for (int64_t i = 0, row = 0; i < static_cast<int64_t>(row_group.tiles.size()); ++i) {
    const Tile& a = row_group.tiles[static_cast<size_t>(i)];
    for (int64_t j = 0, column = 0; j < static_cast<int64_t>(column_group.tiles.size()); ++j) {
      const Tile& b = column_group.tiles[static_cast<size_t>(j)];
      if (!diagonal || i <= j) {
        MatrixRowMajor K = block(a, b);  // the structured layers (the tiles' Jacobian rows are in the groups)
        if (product.size()) K += product.block(row, column, a.rows, b.rows);
        if (diagonal && i == j) K = K.triangularView<Eigen::Upper>().toDenseMatrix().selfadjointView<Eigen::Upper>();
        place(job.gram, K, a, b, job.options.trace_outputs, job.symmetric && !(diagonal && i == j));
        ++placed;
      }
      column += b.rows;
    }
    row += a.rows;
  }
  return placed;
}

using GroupPairs = std::vector<std::pair<const Group*, const Group*>>;

void contract_pairs(const GramJob& job, const GroupPairs& pairs, const std::function<void(int64_t)>& report) {
#pragma omp parallel for schedule(dynamic)
  for (size_t p = 0; p < pairs.size(); ++p) report(contract_groups(job, *pairs[p].first, *pairs[p].second));
}

// A panel of row groups against every column group: the pairs inside the panel (symmetric), then panels of the column
// groups beyond it (or of all of them), each built once, every pair in one parallel loop.
void contract_panel(const GramJob& job, const std::vector<Group>& panel, const std::function<void(int64_t)>& report) {
  GroupPairs pairs;
  if (job.symmetric)
    for (size_t h = 0; h < panel.size(); ++h)
      for (size_t g = 0; g <= h; ++g) pairs.emplace_back(&panel[g], &panel[h]);
  contract_pairs(job, pairs, report);
  const int64_t column_groups = group_count(tile_count(job.columns.dim(0)));
  for (int64_t first = job.symmetric ? panel.back().first_tile / kGroupTiles + 1 : 0; first < column_groups;) {
    const std::vector<Group> columns = build_panel(job, job.columns, first);
    pairs.clear();
    for (const Group& column : columns)
      for (const Group& row : panel) pairs.emplace_back(&row, &column);
    contract_pairs(job, pairs, report);
    first += static_cast<int64_t>(columns.size());
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
  if (tiles_a == 0 || tiles_b == 0) return gram;
  const GramJob job{model, theta, inputs_a, other, symmetric, options, jacobian_width(model, inputs_a, options.method), gram};
  const int64_t total_blocks = symmetric ? tiles_a * (tiles_a + 1) / 2 : tiles_a * tiles_b;
  int64_t done_blocks = 0;
  const std::function<void(int64_t)> report = [&](int64_t blocks) {
#pragma omp critical(kernelscope_progress)
    {
      done_blocks += blocks;
      if (options.progress) options.progress(done_blocks, total_blocks);
    }
  };
  // Panels of row groups that fit the memory budget; each panel streams every column group once.
  for (int64_t first_group = 0; first_group < group_count(tiles_a);) {
    const std::vector<Group> panel = build_panel(job, inputs_a, first_group);
    contract_panel(job, panel, report);
    first_group += static_cast<int64_t>(panel.size());
  }
  return gram;
}

Tensor ntk_diagonal(const Sequential& model, const Parameters& theta, const Tensor& inputs, const NtkOptions& options) {
  const int64_t tiles = tile_count(inputs.dim(0));
  const int64_t width = tiles ? jacobian_width(model, inputs, options.method) : 0;
  std::vector<Tensor> parts(static_cast<size_t>(tiles));
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t samples = std::min(kTileSamples, inputs.dim(0) - t * kTileSamples);
    MatrixRowMajor rows(samples * output_count(model, inputs), width);  // every entry written by the tile
    Tile tile = trace_tile(model, theta, inputs, t * kTileSamples, options.method, rows.data(), width);
    tile.jacobian = std::move(rows);
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
