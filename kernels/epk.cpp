// The exact path kernel by streaming replay: per step, the batch's gradients at θ_s, one SGD step (the training's own
// function), and the test inputs' path-averaged gradients on θ_s + t·Δθ_s, found piece by piece. Memory is O(P) plus
// the current step's rows; results do not depend on the thread count (fixed tiles, reductions in row order).
#include "kernels/epk.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/quadrature.h"
#include "kernels/tile.h"
#include "nn/model.h"

namespace ks {

std::string path_kernel_name(PathKernel kind) {
  switch (kind) {
    case PathKernel::exact: return "exact";
    case PathKernel::ntk_init: return "ntk-init";
    case PathKernel::after: return "after";
    case PathKernel::domingos: return "domingos";
  }
  return "?";
}

PathKernel parse_path_kernel(const std::string& name) {
  for (PathKernel kind : {PathKernel::exact, PathKernel::ntk_init, PathKernel::after, PathKernel::domingos})
    if (name == path_kernel_name(kind)) return kind;
  throw std::invalid_argument("unknown path kernel '" + name + "' (use exact, ntk-init, after or domingos)");
}

int64_t decision(const double* outputs, int64_t count) {
  if (count == 1) return outputs[0] > 0.0 ? 1 : 0;
  return std::max_element(outputs, outputs + count) - outputs;
}

namespace {

constexpr int64_t kRowsPerTile = 32;     // quadrature rows contracted per tile (fixed: bits do not depend on threads)
constexpr int64_t kPieceFinderRows = 96;  // rows per forward while finding breakpoints

// What the piece finder needs to know about the network.
struct NonlinearLayer {
  int64_t layer = 0;       // index into model.layers()
  bool max_pool = false;
  int64_t degree = 0;      // degree in t of the layer's input on a piece: the parameterised layers before it
  int64_t kernel = 0, stride = 0;  // max-pool window
};

struct NetworkShape {
  std::vector<NonlinearLayer> nonlinear;
  int64_t parameterised = 0;  // D
  bool piecewise_polynomial = true;
};

NetworkShape analyse(const Sequential& model) {
  NetworkShape shape;
  int64_t index = 0;
  for (const auto& owned : model.layers()) {
    const Layer* layer = owned.get();
    if (dynamic_cast<const Dense*>(layer) || dynamic_cast<const Conv2d*>(layer)) {
      ++shape.parameterised;
    } else if (auto* activation = dynamic_cast<const Activation*>(layer)) {
      if (activation->kind() == ActivationKind::relu) shape.nonlinear.push_back({index, false, shape.parameterised, 0, 0});
      else shape.piecewise_polynomial = false;
    } else if (auto* pool = dynamic_cast<const MaxPool2d*>(layer)) {
      shape.nonlinear.push_back({index, true, shape.parameterised, pool->options().kernel, pool->options().stride});
    }
    ++index;
  }
  return shape;
}

Tensor rows_of(const Tensor& inputs, const std::vector<int64_t>& samples) {
  const int64_t size = inputs.numel() / inputs.dim(0);
  Shape shape = inputs.shape();
  shape[0] = static_cast<int64_t>(samples.size());
  Tensor rows(shape);
  for (size_t r = 0; r < samples.size(); ++r) std::copy_n(inputs.data() + samples[r] * size, size, rows.data() + static_cast<int64_t>(r) * size);
  return rows;
}

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

// Sorted piece bounds [0, ..., 1] of every input's activation pattern along base + t·direction, layer by layer: on a piece
// where the earlier layers' patterns are fixed, a layer's input is a polynomial of known degree in t, sampled at
// Chebyshev points, interpolated, and its sign changes (ReLU) or winner changes (max-pool) found to full precision.
std::vector<std::vector<double>> find_pieces(const Sequential& model, const NetworkShape& network, const Tensor& inputs, const Segment& segment_template) {
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
      const Tensor values = segment_layer_input(model, rows_of(inputs, segment.samples), segment, layer.layer);
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

// One quadrature row: a test input at a point of the segment and its weight.
struct QuadratureRow {
  int64_t sample;
  double t, weight;
};

// Per row: the kernel against the batch (C, b·C) and the directional derivatives along v_0 and v_1.
struct RowValues {
  MatrixRowMajor kernel;   // (rows·C, b·C)
  Tensor output;           // (rows, C)
  Tensor along_first, along_second;  // (rows·C), empty when not asked
};

RowValues evaluate_rows(const Sequential& model, const Tensor& inputs, const Segment& segment_template, const std::vector<QuadratureRow>& rows,
                        const std::vector<Tile>& batch_tiles, int64_t batch_rows, int64_t C, KernelMethod method,
                        const std::vector<Tensor>* first, const std::vector<Tensor>* second) {
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
    Trace trace = trace_segment(model, rows_of(inputs, segment.samples), segment);
    std::copy_n(trace.output.data(), trace.output.numel(), values.output.data() + begin * C);
    if (first) {
      const Tensor product = jacobian_vector_product(trace, *first);
      std::copy_n(product.data(), product.numel(), values.along_first.data() + begin * C);
    }
    if (second) {
      const Tensor product = jacobian_vector_product(trace, *second, &segment);
      std::copy_n(product.data(), product.numel(), values.along_second.data() + begin * C);
    }
    const Tile tile = tile_from_trace(std::move(trace), begin, method);
    int64_t column = 0;
    for (const Tile& batch : batch_tiles) {
      values.kernel.block(begin * C, column, tile.rows, batch.rows) = block(tile, batch);
      column += batch.rows;
    }
  }
  return values;
}

std::vector<Tensor> difference(const std::vector<Tensor>& after, const std::vector<Tensor>& before) {
  std::vector<Tensor> out;
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

std::vector<Tile> batch_tiles(const Sequential& model, const Tensor& inputs, KernelMethod method, Tensor& outputs) {
  const int64_t N = inputs.dim(0), count = (N + kRowsPerTile - 1) / kRowsPerTile;
  std::vector<Tile> tiles(static_cast<size_t>(count));
  std::vector<Tensor> parts(static_cast<size_t>(count));
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < count; ++k) {
    std::vector<int64_t> samples;
    for (int64_t n = k * kRowsPerTile; n < std::min(N, (k + 1) * kRowsPerTile); ++n) samples.push_back(n);
    Trace trace = trace_network(model, rows_of(inputs, samples));
    parts[static_cast<size_t>(k)] = trace.output;
    tiles[static_cast<size_t>(k)] = tile_from_trace(std::move(trace), k * kRowsPerTile, method);
  }
  const int64_t C = parts.front().dim(1);
  outputs = Tensor({N, C});
  for (int64_t k = 0; k < count; ++k) std::copy_n(parts[static_cast<size_t>(k)].data(), parts[static_cast<size_t>(k)].numel(), outputs.data() + k * kRowsPerTile * C);
  return tiles;
}

// Per test input, the quadrature of one step: Σ_rows w·(kernel row, directional derivatives), reduced in row order.
struct StepIntegral {
  std::vector<MatrixRowMajor> kernel;  // per input (C, b·C)
  Tensor along_theta, along_direction;  // (M, C)
};

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

void error_summary(KernelMachine& machine, const Tensor& network) {
  const int64_t M = network.dim(0), C = network.dim(1);
  machine.max_abs_error = 0.0;
  machine.max_rel_error = 0.0;
  machine.decisions_agree = true;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t c = 0; c < C; ++c) {
      const double truth = network[m * C + c], error = std::abs(machine.outputs[m * C + c] - truth);
      machine.max_abs_error = std::max(machine.max_abs_error, error);
      machine.max_rel_error = std::max(machine.max_rel_error, truth != 0.0 ? error / std::abs(truth) : error);
    }
    if (decision(machine.outputs.data() + m * C, C) != decision(network.data() + m * C, C)) machine.decisions_agree = false;
  }
}

}  // namespace

EpkResult exact_path_kernel(const Sequential& model, const Tensor& test_inputs, const TrainingRecord& record, const EpkOptions& options) {
  if (!record.train || !record.steps) throw std::invalid_argument("exact_path_kernel: the training record needs a training set and steps");
  const Dataset& train = *record.train;
  const std::vector<StepRecord>& steps = *record.steps;
  if (test_inputs.rank() < 2 || test_inputs.dim(0) == 0) throw ShapeError("exact_path_kernel: no test inputs");
  if (train.size() == 0) throw ShapeError("exact_path_kernel: the training set is empty");
  if (test_inputs.numel() / test_inputs.dim(0) != train.inputs.numel() / train.size())
    throw ShapeError("exact_path_kernel: test inputs " + shape_string(test_inputs.shape()) + " do not match training inputs " + shape_string(train.inputs.shape()));
  const auto started = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point from) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count(); };
  auto wants = [&](PathKernel kind) { return std::find(options.kernels.begin(), options.kernels.end(), kind) != options.kernels.end(); };
  const bool want_exact = wants(PathKernel::exact), want_domingos = wants(PathKernel::domingos);
  const bool decay = record.weight_decay != 0.0;

  const NetworkShape network = analyse(model);
  const int64_t M = test_inputs.dim(0), N = train.size();
  const std::vector<Tensor> theta0 = parameter_values(model);
  const Trace initial_trace = trace_network(model, test_inputs, false);
  const int64_t C = initial_trace.outputs;

  EpkResult result;
  result.outputs = C;
  result.steps = static_cast<int64_t>(steps.size());
  result.initial = initial_trace.output;
  result.coefficients = Tensor({N, C});
  if (want_exact) result.attributions = Tensor({M, N, C});
  if (want_exact && options.keep_kernel) result.kernel = Tensor({M * C, N * C});
  QuadratureReport& report = result.quadrature;
  const bool crude = options.quadrature == PathQuadrature::crude;
  report.mode = crude ? "crude (one node at t = 1/2)" : network.piecewise_polynomial ? "breakpoints + Gauss-Legendre" : "adaptive Gauss-Legendre";
  report.nodes_per_piece = crude ? 1 : network.piecewise_polynomial ? (network.parameterised + 1) / 2 + options.extra_nodes : options.smooth_nodes;

  Tensor exact_outputs = result.initial, exact_decay({M, C}), domingos_outputs = result.initial, domingos_decay({M, C});
  std::vector<Tensor> decay_sum;  // Σ_s −η_s λ θ_s, for the weight-decay column of the fixed kernels
  if (decay)
    for (const Tensor& t : theta0) decay_sum.emplace_back(t.shape());
  Tensor previous_outputs = result.initial;  // f(x;θ_s) on the test inputs
  Tensor previous_change({M, C});            // ⟨∫∇f dt, Δθ_{s−1}⟩, checked against f(θ_s) − f(θ_{s−1})
  bool have_change = false;

  for (size_t s = 0; s < steps.size(); ++s) {
    const StepRecord& step = steps[s];
    const Tensor batch_inputs = step_inputs(train, step.batch, static_cast<int64_t>(s), record.augmentation);
    Tensor batch_outputs;
    const std::vector<Tile> tiles = batch_tiles(model, batch_inputs, options.method, batch_outputs);
    const int64_t b = batch_inputs.dim(0);
    const Tensor a = loss_coefficients(batch_outputs, gather_labels(train, step.batch), record.loss, step.learning_rate);
    for (int64_t i = 0; i < b; ++i)
      for (int64_t c = 0; c < C; ++c) result.coefficients[step.batch[static_cast<size_t>(i)] * C + c] += a[i * C + c];

    const std::vector<Tensor> base = parameter_values(model);
    const auto step_started = std::chrono::steady_clock::now();
    sgd_step(model, train, step.batch, step.learning_rate, record.weight_decay, record.loss, static_cast<int64_t>(s), record.augmentation);
    result.training_seconds += seconds_since(step_started);
    const std::vector<Tensor> direction = difference(parameter_values(model), base);
    if (decay)
      for (size_t k = 0; k < base.size(); ++k) decay_sum[k].vector() -= (step.learning_rate * record.weight_decay) * base[k].vector();
    Segment segment;
    segment.base = &base;
    segment.direction = &direction;
    const std::pair<Tensor, Tensor> first_layer = first_layer_outputs(model, test_inputs, segment);
    segment.first_base = &first_layer.first;
    segment.first_direction = &first_layer.second;

    // The quadrature rows: one at t = 0 (f(x;θ_s) and Domingos' kernel), then the path integral's nodes.
    std::vector<QuadratureRow> start_rows;
    for (int64_t m = 0; m < M; ++m) start_rows.push_back({m, 0.0, 1.0});
    const RowValues start = evaluate_rows(model, test_inputs, segment, start_rows, tiles, b * C, C, options.method, decay ? &base : nullptr, nullptr);
    if (have_change)
      for (int64_t k = 0; k < M * C; ++k)
        report.max_segment_residual = std::max(report.max_segment_residual, std::abs(start.output[k] - previous_outputs[k] - previous_change[k]));
    previous_outputs = start.output;

    auto accumulate = [&](const StepIntegral& integral, Tensor& outputs, Tensor& decay_column, bool exact) {
      for (int64_t m = 0; m < M; ++m) {
        const MatrixRowMajor& K = integral.kernel[static_cast<size_t>(m)];
        for (int64_t i = 0; i < b; ++i) {
          const int64_t position = step.batch[static_cast<size_t>(i)];
          for (int64_t c = 0; c < C; ++c) {
            double share = 0.0;
            for (int64_t d = 0; d < C; ++d) share += K(c, i * C + d) * a[i * C + d];
            outputs[m * C + c] += share;
            if (exact) {
              result.attributions[(m * N + position) * C + c] += share;
              if (!result.kernel.empty())
                for (int64_t d = 0; d < C; ++d) result.kernel[(m * C + c) * N * C + position * C + d] += K(c, i * C + d);
            }
          }
        }
        if (decay)
          for (int64_t c = 0; c < C; ++c) {
            const double term = -step.learning_rate * record.weight_decay * integral.along_theta[m * C + c];
            decay_column[m * C + c] += term;
            outputs[m * C + c] += term;
          }
      }
    };
    auto empty_integral = [&]() {
      StepIntegral integral;
      integral.kernel.assign(static_cast<size_t>(M), MatrixRowMajor::Zero(C, b * C));
      integral.along_theta = Tensor({M, C});
      integral.along_direction = Tensor({M, C});
      return integral;
    };
    if (want_domingos) {
      StepIntegral integral = empty_integral();
      add_rows(integral, start_rows, start, C);
      accumulate(integral, domingos_outputs, domingos_decay, false);
    }
    if (!want_exact) continue;

    StepIntegral integral = empty_integral();
    if (crude || network.piecewise_polynomial) {
      std::vector<std::vector<double>> bounds;
      if (crude) bounds.assign(static_cast<size_t>(M), std::vector<double>{0.0, 1.0});
      else bounds = find_pieces(model, network, test_inputs, segment);
      std::vector<QuadratureRow> rows;
      for (int64_t m = 0; m < M; ++m) {
        const std::vector<double>& edges = bounds[static_cast<size_t>(m)];
        const int64_t pieces = static_cast<int64_t>(edges.size()) - 1;
        report.pieces += pieces;
        report.breakpoints += pieces - 1;
        report.max_pieces = std::max(report.max_pieces, pieces);
        for (int64_t k = 0; k < pieces; ++k) {
          const QuadratureRule rule = crude ? QuadratureRule{{0.5}, {1.0}} : gauss_legendre(report.nodes_per_piece, edges[static_cast<size_t>(k)], edges[static_cast<size_t>(k) + 1]);
          for (size_t q = 0; q < rule.nodes.size(); ++q) rows.push_back({m, rule.nodes[q], rule.weights[q]});
        }
      }
      report.nodes += static_cast<int64_t>(rows.size());
      const RowValues values = evaluate_rows(model, test_inputs, segment, rows, tiles, b * C, C, options.method, decay ? &base : nullptr, &direction);
      add_rows(integral, rows, values, C);
    } else {
      // Smooth activations: adaptive Gauss–Legendre, halving an interval until its two halves agree with it.
      struct Interval {
        int64_t sample;
        double a, b;
        int depth;
      };
      std::vector<Interval> active;
      for (int64_t m = 0; m < M; ++m) active.push_back({m, 0.0, 1.0, 0});
      std::vector<int64_t> pieces_of(static_cast<size_t>(M), 0);
      // Estimates of the parents, per active interval.
      auto rows_for = [&](const std::vector<Interval>& intervals) {
        std::vector<QuadratureRow> rows;
        for (const Interval& interval : intervals) {
          const QuadratureRule rule = gauss_legendre(options.smooth_nodes, interval.a, interval.b);
          for (size_t q = 0; q < rule.nodes.size(); ++q) rows.push_back({interval.sample, rule.nodes[q], rule.weights[q]});
        }
        return rows;
      };
      std::vector<QuadratureRow> parent_rows = rows_for(active);
      RowValues parent = evaluate_rows(model, test_inputs, segment, parent_rows, tiles, b * C, C, options.method, decay ? &base : nullptr, &direction);
      report.nodes += static_cast<int64_t>(parent_rows.size());
      const int64_t per = options.smooth_nodes;
      while (!active.empty()) {
        std::vector<Interval> halves;
        for (const Interval& interval : active) {
          const double middle = 0.5 * (interval.a + interval.b);
          halves.push_back({interval.sample, interval.a, middle, interval.depth + 1});
          halves.push_back({interval.sample, middle, interval.b, interval.depth + 1});
        }
        const std::vector<QuadratureRow> half_rows = rows_for(halves);
        const RowValues children = evaluate_rows(model, test_inputs, segment, half_rows, tiles, b * C, C, options.method, decay ? &base : nullptr, &direction);
        report.nodes += static_cast<int64_t>(half_rows.size());
        std::vector<Interval> refine;
        std::vector<QuadratureRow> refine_rows;
        std::vector<int64_t> refine_sources;
        for (size_t k = 0; k < active.size(); ++k) {
          // One estimate per interval: the weighted sum of its rows, as (C, b·C + 2) values.
          auto estimate = [&](const RowValues& values, int64_t first_row, const std::vector<QuadratureRow>& rows) {
            MatrixRowMajor e = MatrixRowMajor::Zero(C, b * C + 2);
            for (int64_t q = first_row; q < first_row + per; ++q) {
              const double w = rows[static_cast<size_t>(q)].weight;
              e.leftCols(b * C) += w * values.kernel.middleRows(q * C, C);
              for (int64_t c = 0; c < C; ++c) {
                if (!values.along_first.empty()) e(c, b * C) += w * values.along_first[q * C + c];
                e(c, b * C + 1) += w * values.along_second[q * C + c];
              }
            }
            return e;
          };
          const MatrixRowMajor coarse = estimate(parent, static_cast<int64_t>(k) * per, parent_rows);
          const MatrixRowMajor fine = estimate(children, static_cast<int64_t>(2 * k) * per, half_rows) + estimate(children, static_cast<int64_t>(2 * k + 1) * per, half_rows);
          const double scale = std::max(coarse.cwiseAbs().maxCoeff(), fine.cwiseAbs().maxCoeff());
          const bool converged = (fine - coarse).cwiseAbs().maxCoeff() <= options.smooth_tolerance * scale || active[k].depth >= 20;
          if (converged) {
            const int64_t m = active[k].sample;
            integral.kernel[static_cast<size_t>(m)] += fine.leftCols(b * C);
            for (int64_t c = 0; c < C; ++c) {
              integral.along_theta[m * C + c] += fine(c, b * C);
              integral.along_direction[m * C + c] += fine(c, b * C + 1);
            }
            pieces_of[static_cast<size_t>(m)] += 2;
          } else {
            for (int half = 0; half < 2; ++half) {
              refine.push_back(halves[2 * k + static_cast<size_t>(half)]);
              for (int64_t q = 0; q < per; ++q) refine_rows.push_back(half_rows[static_cast<size_t>((2 * k + static_cast<size_t>(half)) * static_cast<size_t>(per) + static_cast<size_t>(q))]);
              refine_sources.push_back(static_cast<int64_t>(2 * k) + half);
            }
          }
        }
        // The refined halves become parents; their estimates are the children's rows already computed.
        RowValues next;
        next.kernel = MatrixRowMajor(static_cast<int64_t>(refine_rows.size()) * C, b * C);
        next.along_first = children.along_first.empty() ? Tensor() : Tensor({static_cast<int64_t>(refine_rows.size()) * C});
        next.along_second = Tensor({static_cast<int64_t>(refine_rows.size()) * C});
        for (size_t k = 0; k < refine_sources.size(); ++k)
          for (int64_t q = 0; q < per; ++q) {
            const int64_t from = refine_sources[k] * per + q, to = static_cast<int64_t>(k) * per + q;
            next.kernel.middleRows(to * C, C) = children.kernel.middleRows(from * C, C);
            for (int64_t c = 0; c < C; ++c) {
              if (!next.along_first.empty()) next.along_first[to * C + c] = children.along_first[from * C + c];
              next.along_second[to * C + c] = children.along_second[from * C + c];
            }
          }
        active = std::move(refine);
        parent_rows = std::move(refine_rows);
        parent = std::move(next);
      }
      for (int64_t m = 0; m < M; ++m) {
        const int64_t pieces = pieces_of[static_cast<size_t>(m)];
        report.pieces += pieces;
        report.max_pieces = std::max(report.max_pieces, pieces);
      }
    }
    for (int64_t k = 0; k < M * C; ++k) previous_change[k] = integral.along_direction[k];
    have_change = true;
    accumulate(integral, exact_outputs, exact_decay, true);
    if (options.progress) options.progress(static_cast<int64_t>(s) + 1, static_cast<int64_t>(steps.size()));
  }

  const std::vector<Tensor> thetaT = parameter_values(model);
  result.final = trace_network(model, test_inputs, false).output;
  if (want_exact && have_change)
    for (int64_t k = 0; k < M * C; ++k)
      report.max_segment_residual = std::max(report.max_segment_residual, std::abs(result.final[k] - previous_outputs[k] - previous_change[k]));

  // The fixed kernels: f(x;θ_0) + K(x, X) α + the weight-decay column, with both gradients at θ_0 or at θ_T.
  Tensor train_inputs = train.inputs;
  auto fixed_kernel = [&](const std::vector<Tensor>& theta, KernelMachine& machine) {
    set_parameter_values(model, theta);
    NtkOptions ntk_options;
    ntk_options.method = options.method;
    const Tensor gram = ntk_gram(model, test_inputs, &train_inputs, ntk_options);
    machine.outputs = result.initial;
    machine.weight_decay = Tensor({M, C});
    for (int64_t r = 0; r < M * C; ++r) {
      double total = 0.0;
      for (int64_t q = 0; q < N * C; ++q) total += gram[r * N * C + q] * result.coefficients[q];
      machine.outputs[r] += total;
    }
    if (decay) {
      const Tensor product = jacobian_vector_product(trace_network(model, test_inputs), decay_sum);
      for (int64_t r = 0; r < M * C; ++r) {
        machine.weight_decay[r] = product[r];
        machine.outputs[r] += product[r];
      }
    }
  };
  for (PathKernel kind : options.kernels) {
    KernelMachine machine;
    machine.kind = kind;
    switch (kind) {
      case PathKernel::exact:
        machine.outputs = exact_outputs;
        machine.weight_decay = exact_decay;
        break;
      case PathKernel::domingos:
        machine.outputs = domingos_outputs;
        machine.weight_decay = domingos_decay;
        break;
      case PathKernel::ntk_init: fixed_kernel(theta0, machine); break;
      case PathKernel::after: fixed_kernel(thetaT, machine); break;
    }
    error_summary(machine, result.final);
    result.machines.push_back(std::move(machine));
  }
  set_parameter_values(model, thetaT);
  result.seconds = seconds_since(started);
  return result;
}

std::vector<std::vector<double>> path_pieces(const Sequential& model, const Tensor& inputs, const Segment& segment) {
  const NetworkShape network = analyse(model);
  if (!network.piecewise_polynomial) throw std::invalid_argument("path_pieces: the network has smooth activations; it is not piecewise polynomial along a segment");
  Segment plain = segment;
  plain.first_base = plain.first_direction = nullptr;
  return find_pieces(model, network, inputs, plain);
}

TopAttributions top_attributions(const Tensor& attributions, int64_t input, int64_t output, int64_t k) {
  if (attributions.rank() != 3) throw ShapeError("top_attributions: attributions must be (M, N, C), got " + shape_string(attributions.shape()));
  const int64_t N = attributions.dim(1), C = attributions.dim(2);
  std::vector<std::pair<double, int64_t>> values;
  for (int64_t n = 0; n < N; ++n) values.emplace_back(attributions[(input * N + n) * C + output], n);
  // Ties broken by position, so the order is reproducible.
  std::sort(values.begin(), values.end(), [](const auto& x, const auto& y) { return x.first != y.first ? x.first > y.first : x.second < y.second; });
  TopAttributions top;
  for (int64_t j = 0; j < std::min(k, N) && values[static_cast<size_t>(j)].first > 0.0; ++j) {
    top.positive.push_back(values[static_cast<size_t>(j)].second);
    top.positive_values.push_back(values[static_cast<size_t>(j)].first);
  }
  for (int64_t j = 0; j < std::min(k, N) && values[static_cast<size_t>(N - 1 - j)].first < 0.0; ++j) {
    top.negative.push_back(values[static_cast<size_t>(N - 1 - j)].second);
    top.negative_values.push_back(values[static_cast<size_t>(N - 1 - j)].first);
  }
  return top;
}

}  // namespace ks
