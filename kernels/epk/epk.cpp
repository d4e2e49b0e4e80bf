// The exact path kernel by streaming replay: per step, the batch's gradients at θ_s, one SGD step (the training's own
// function), and the test inputs' path-averaged gradients on θ_s + t·Δθ_s. Memory is O(P) plus the current step's rows;
// results do not depend on the thread count. The pieces, integrators, rows and machines are in their own files here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "kernels/epk.h"
#include "kernels/epk/integrate.h"
#include "kernels/epk/machines.h"
#include "kernels/epk/pieces.h"
#include "kernels/epk/rows.h"

namespace ks {

TrainingRecord TrainingRecord::from(const Run& run) {
  return {&run.task.train, &run.steps, run.config.training.weight_decay, run.config.training.loss, augmentation_of(run.config.training)};
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point from) { return std::chrono::duration<double>(Clock::now() - from).count(); }

// What the replay carries from step to step.
struct Replay {
  const Sequential& model;
  const Tensor& test_inputs;
  const TrainingRecord& record;
  const EpkOptions& options;
  PieceShape network;
  int64_t M = 0, N = 0, C = 0;
  bool want_exact = false, want_domingos = false, decay = false, crude = false;
  EpkResult result;
  Tensor exact_outputs, exact_decay, domingos_outputs, domingos_decay;
  Parameters decay_sum;     // Σ_s −η_s λ θ_s, for the weight-decay column of the fixed kernels
  Tensor previous_outputs;  // f(x;θ_s) on the test inputs
  Tensor previous_change;   // ⟨∫∇f dt, Δθ_{s−1}⟩, checked against f(θ_s) − f(θ_{s−1})
  bool have_change = false;
};

// One step: its batch traced at θ_s, the loss coefficients, and the segment θ_s + t·Δθ_s. Not movable once set up
// (the segment and the batch view point into it).
struct Step {
  const StepRecord* record = nullptr;
  Tensor a;  // (b, C): −η ∂L/∂f
  std::vector<Tile> tiles;
  int64_t b = 0;
  Parameters base, direction;
  std::pair<Tensor, Tensor> first_layer;
  Segment segment;
  StepBatch batch;
};

void check_inputs(const Tensor& test_inputs, const TrainingRecord& record) {
  if (!record.train || !record.steps) throw std::invalid_argument("exact_path_kernel: the training record needs a training set and steps");
  const Dataset& train = *record.train;
  if (test_inputs.rank() < 2 || test_inputs.dim(0) == 0) throw ShapeError("exact_path_kernel: no test inputs");
  if (train.size() == 0) throw ShapeError("exact_path_kernel: the training set is empty");
  if (test_inputs.numel() / test_inputs.dim(0) != train.inputs.numel() / train.size())
    throw ShapeError("exact_path_kernel: test inputs " + shape_string(test_inputs.shape()) + " do not match training inputs " + shape_string(train.inputs.shape()));
}

void start(Replay& r, const Parameters& theta0) {
  auto wants = [&](PathKernel kind) { return std::find(r.options.kernels.begin(), r.options.kernels.end(), kind) != r.options.kernels.end(); };
  r.want_exact = wants(PathKernel::exact);
  r.want_domingos = wants(PathKernel::domingos);
  r.decay = r.record.weight_decay != 0.0;
  r.crude = r.options.quadrature == PathQuadrature::crude;
  r.network = analyse_pieces(r.model);
  r.M = r.test_inputs.dim(0);
  r.N = r.record.train->size();
  const Trace initial = trace_network(r.model, theta0, r.test_inputs, false);
  r.C = initial.outputs;
  EpkResult& result = r.result;
  result.outputs = r.C;
  result.steps = static_cast<int64_t>(r.record.steps->size());
  result.initial = initial.output;
  result.coefficients = Tensor({r.N, r.C});
  if (r.want_exact) result.attributions = Tensor({r.M, r.N, r.C});
  if (r.want_exact && r.options.keep_kernel) result.kernel = Tensor({r.M * r.C, r.N * r.C});
  QuadratureReport& report = result.quadrature;
  report.mode = r.crude ? "crude (one node at t = 1/2)" : r.network.piecewise_polynomial ? "breakpoints + Gauss-Legendre" : "adaptive Gauss-Legendre";
  report.nodes_per_piece = r.crude ? 1 : r.network.piecewise_polynomial ? (r.network.parameterised + 1) / 2 + r.options.extra_nodes : r.options.smooth_nodes;
  r.exact_outputs = r.domingos_outputs = result.initial;
  r.exact_decay = Tensor({r.M, r.C});
  r.domingos_decay = Tensor({r.M, r.C});
  if (r.decay)
    for (const Tensor& t : theta0) r.decay_sum.emplace_back(t.shape());
  r.previous_outputs = result.initial;
  r.previous_change = Tensor({r.M, r.C});
}

// The batch at θ_s, its coefficients, then the training's own SGD step: θ becomes θ_{s+1}.
void begin_step(Replay& r, Parameters& theta, size_t s, Step& step) {
  const TrainingRecord& record = r.record;
  const StepRecord& recorded = (*record.steps)[s];
  step.record = &recorded;
  const Tensor batch_inputs = step_inputs(*record.train, recorded.batch, static_cast<int64_t>(s), record.augmentation);
  Tensor batch_outputs;
  step.tiles = batch_tiles(r.model, theta, batch_inputs, r.options.method, batch_outputs);
  step.b = batch_inputs.dim(0);
  step.a = loss_coefficients(batch_outputs, gather_labels(*record.train, recorded.batch), record.loss, recorded.learning_rate);
  for (int64_t i = 0; i < step.b; ++i)
    for (int64_t c = 0; c < r.C; ++c) r.result.coefficients[recorded.batch[static_cast<size_t>(i)] * r.C + c] += step.a[i * r.C + c];
  step.base = theta;
  const auto step_started = Clock::now();
  sgd_step(r.model, theta, *record.train, recorded.batch, recorded.learning_rate, record.weight_decay, record.loss, static_cast<int64_t>(s), record.augmentation);
  r.result.training_seconds += seconds_since(step_started);
  step.direction = difference(theta, step.base);
  if (r.decay)
    for (size_t k = 0; k < step.base.size(); ++k) r.decay_sum[k].vector() -= (recorded.learning_rate * record.weight_decay) * step.base[k].vector();
  step.segment.base = &step.base;
  step.segment.direction = &step.direction;
  step.first_layer = first_layer_outputs(r.model, r.test_inputs, step.segment);
  step.segment.first_base = &step.first_layer.first;
  step.segment.first_direction = &step.first_layer.second;
  step.batch = StepBatch{&step.segment, &step.tiles, step.b * r.C, r.C, r.options.method};
}

// outputs += Σ_i K(x, x_i)·a_i (+ the weight-decay term); the exact kernel also fills attributions and K_EPK.
void accumulate(Replay& r, const Step& step, const StepIntegral& integral, Tensor& outputs, Tensor& decay_column, bool exact) {
  const int64_t M = r.M, N = r.N, C = r.C;
  const double decay_rate = -step.record->learning_rate * r.record.weight_decay;
  for (int64_t m = 0; m < M; ++m) {
    const MatrixRowMajor& K = integral.kernel[static_cast<size_t>(m)];
    for (int64_t i = 0; i < step.b; ++i) {
      const int64_t position = step.record->batch[static_cast<size_t>(i)];
      for (int64_t c = 0; c < C; ++c) {
        double share = 0.0;
        for (int64_t d = 0; d < C; ++d) share += K(c, i * C + d) * step.a[i * C + d];
        outputs[m * C + c] += share;
        if (!exact) continue;
        r.result.attributions[(m * N + position) * C + c] += share;
        if (!r.result.kernel.empty())
          for (int64_t d = 0; d < C; ++d) r.result.kernel[(m * C + c) * N * C + position * C + d] += K(c, i * C + d);
      }
    }
    if (r.decay)
      for (int64_t c = 0; c < C; ++c) {
        const double term = decay_rate * integral.along_theta[m * C + c];
        decay_column[m * C + c] += term;
        outputs[m * C + c] += term;
      }
  }
}

// f(x;θ_s) at t = 0: the quadrature's own check against the previous step's integral, and Domingos' kernel.
void start_rows(Replay& r, const Step& step) {
  std::vector<QuadratureRow> rows;
  for (int64_t m = 0; m < r.M; ++m) rows.push_back({m, 0.0, 1.0});
  const RowValues start = evaluate_rows(r.model, r.test_inputs, step.batch, rows, r.decay ? &step.base : nullptr, nullptr);
  QuadratureReport& report = r.result.quadrature;
  if (r.have_change)
    for (int64_t k = 0; k < r.M * r.C; ++k)
      report.max_segment_residual = std::max(report.max_segment_residual, std::abs(start.output[k] - r.previous_outputs[k] - r.previous_change[k]));
  r.previous_outputs = start.output;
  if (!r.want_domingos) return;
  StepIntegral integral = empty_integral(r.M, r.C, step.b * r.C);
  add_rows(integral, rows, start, r.C);
  accumulate(r, step, integral, r.domingos_outputs, r.domingos_decay, false);
}

// Piecewise-polynomial nets: Gauss–Legendre on every piece between breakpoints (one node at 1/2 when crude).
void integrate_pieces(Replay& r, const Step& step, StepIntegral& integral) {
  QuadratureReport& report = r.result.quadrature;
  std::vector<std::vector<double>> bounds(static_cast<size_t>(r.M), std::vector<double>{0.0, 1.0});
  if (!r.crude) bounds = find_pieces(r.model, r.network, r.test_inputs, step.segment);
  for (const std::vector<double>& edges : bounds) {
    const int64_t pieces = static_cast<int64_t>(edges.size()) - 1;
    report.pieces += pieces;
    report.breakpoints += pieces - 1;
    report.max_pieces = std::max(report.max_pieces, pieces);
  }
  std::vector<QuadratureRow> rows;
  if (r.crude)
    for (int64_t m = 0; m < r.M; ++m) rows.push_back({m, 0.5, 1.0});
  else
    rows = piecewise_rows(bounds, report.nodes_per_piece);
  report.nodes += static_cast<int64_t>(rows.size());
  const RowValues values = evaluate_rows(r.model, r.test_inputs, step.batch, rows, r.decay ? &step.base : nullptr, &step.direction);
  add_rows(integral, rows, values, r.C);
}

// Smooth activations: adaptive Gauss–Legendre on the rows' (C, b·C + 2) blocks: kernel, along θ_s, along Δθ_s.
void integrate_adaptively(Replay& r, const Step& step, StepIntegral& integral) {
  const int64_t C = r.C, width = step.b * C;
  const RowIntegrand g = [&](const std::vector<QuadratureRow>& rows) {
    const RowValues values = evaluate_rows(r.model, r.test_inputs, step.batch, rows, r.decay ? &step.base : nullptr, &step.direction);
    MatrixRowMajor blocks = MatrixRowMajor::Zero(static_cast<int64_t>(rows.size()) * C, width + 2);
    blocks.leftCols(width) = values.kernel;
    for (int64_t k = 0; k < blocks.rows(); ++k) {
      if (!values.along_first.empty()) blocks(k, width) = values.along_first[k];
      blocks(k, width + 1) = values.along_second[k];
    }
    return blocks;
  };
  const AdaptiveIntegral found = adaptive_gauss_legendre(r.M, C, width + 2, g, {r.options.smooth_nodes, r.options.smooth_tolerance, 20});
  QuadratureReport& report = r.result.quadrature;
  report.nodes += found.nodes;
  for (int64_t m = 0; m < r.M; ++m) {
    const MatrixRowMajor& total = found.integrals[static_cast<size_t>(m)];
    integral.kernel[static_cast<size_t>(m)] = total.leftCols(width);
    for (int64_t c = 0; c < C; ++c) {
      integral.along_theta[m * C + c] = total(c, width);
      integral.along_direction[m * C + c] = total(c, width + 1);
    }
    report.pieces += found.pieces[static_cast<size_t>(m)];
    report.max_pieces = std::max(report.max_pieces, found.pieces[static_cast<size_t>(m)]);
  }
}

// After the last step: f(x;θ_T), the last residual, and every requested machine with its errors.
void finish(Replay& r, const Parameters& theta0, Parameters thetaT) {
  EpkResult& result = r.result;
  result.final = trace_network(r.model, thetaT, r.test_inputs, false).output;
  QuadratureReport& report = result.quadrature;
  if (r.want_exact && r.have_change)
    for (int64_t k = 0; k < r.M * r.C; ++k)
      report.max_segment_residual = std::max(report.max_segment_residual, std::abs(result.final[k] - r.previous_outputs[k] - r.previous_change[k]));
  const FixedKernelInputs fixed{r.model, r.test_inputs, r.record.train->inputs, result.initial, result.coefficients, r.decay ? &r.decay_sum : nullptr};
  for (PathKernel kind : r.options.kernels) {
    KernelMachine machine;
    switch (kind) {
      case PathKernel::exact: machine.outputs = r.exact_outputs, machine.weight_decay = r.exact_decay; break;
      case PathKernel::domingos: machine.outputs = r.domingos_outputs, machine.weight_decay = r.domingos_decay; break;
      case PathKernel::ntk_init: machine = fixed_kernel_machine(fixed, theta0, r.options.method); break;
      case PathKernel::after: machine = fixed_kernel_machine(fixed, thetaT, r.options.method); break;
    }
    machine.kind = kind;
    error_summary(machine, result.final);
    result.machines.push_back(std::move(machine));
  }
  result.final_parameters = std::move(thetaT);
}

}  // namespace

EpkResult exact_path_kernel(const Sequential& model, const Parameters& theta0, const Tensor& test_inputs, const TrainingRecord& record,
                            const EpkOptions& options) {
  check_inputs(test_inputs, record);
  model.check_parameters(theta0, "exact_path_kernel");
  const auto started = Clock::now();
  Replay r{model, test_inputs, record, options, {}};
  start(r, theta0);
  Parameters theta = theta0;
  const size_t steps = record.steps->size();
  for (size_t s = 0; s < steps; ++s) {
    Step step;
    begin_step(r, theta, s, step);
    start_rows(r, step);
    if (!r.want_exact) continue;
    StepIntegral integral = empty_integral(r.M, r.C, step.b * r.C);
    if (r.crude || r.network.piecewise_polynomial) integrate_pieces(r, step, integral);
    else integrate_adaptively(r, step, integral);
    for (int64_t k = 0; k < r.M * r.C; ++k) r.previous_change[k] = integral.along_direction[k];
    r.have_change = true;
    accumulate(r, step, integral, r.exact_outputs, r.exact_decay, true);
    if (options.progress) options.progress(static_cast<int64_t>(s) + 1, static_cast<int64_t>(steps));
  }
  finish(r, theta0, std::move(theta));
  r.result.seconds = seconds_since(started);
  return std::move(r.result);
}

}  // namespace ks
