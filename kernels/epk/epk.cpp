// The exact path kernel by streaming replay: per step, the batch's gradients at θ_s, one SGD step (the training's own
// function), and the test inputs' path-averaged gradients on θ_s + t·Δθ_s. Memory is O(P) plus the current step's rows;
// results do not depend on the thread count. The pieces, integrators, rows and machines are in their own files here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <list>
#include <stdexcept>

#include "kernels/epk.h"
#include "kernels/epk/integrate.h"
#include "kernels/epk/machines.h"
#include "kernels/epk/pieces.h"
#include "kernels/epk/rows.h"
#include "kernels/epk/rules.h"
#include "kernels/quadrature.h"

namespace ks {

TrainingRecord TrainingRecord::from(const Run& run) {
  const TrainOptions& t = run.config.training;
  return {&run.task.train, &run.steps, t.weight_decay, t.loss, augmentation_of(t), t.optimizer};
}

namespace {

// What the replay carries from step to step.
struct Replay {
  const Sequential& model;
  const Tensor& test_inputs;
  const TrainingRecord& record;
  const EpkOptions& options;
  PieceShape network;
  PathQuadrature quadrature = PathQuadrature::exact;  // the mode in force (automatic resolved)
  int64_t M = 0, N = 0, C = 0;
  bool want_exact = false, want_domingos = false, want_fixed = false, decay = false;
  EpkResult result;
  Tensor exact_outputs, exact_decay, domingos_outputs, domingos_decay;
  double exact_residual = 0.0, domingos_residual = 0.0;  // the step machines' largest per-step residuals
  Parameters decay_sum;     // Σ_s −η_s λ θ_s, for the weight-decay column of the fixed kernels
  Tensor previous_outputs;  // f(x;θ_s) on the test inputs
  std::vector<StepTerms> step_terms;  // per step, for the fixed kernels' residuals
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
  Tensor end, change;  // (M, C): f(x;θ_s+1) and f(x;θ_s+1) − f(x;θ_s)
};

void check_inputs(const Tensor& test_inputs, const TrainingRecord& record) {
  if (!record.train || !record.steps) throw std::invalid_argument("exact_path_kernel: the training record needs a training set and steps");
  const Dataset& train = *record.train;
  if (test_inputs.rank() < 2 || test_inputs.dim(0) == 0) throw ShapeError("exact_path_kernel: no test inputs");
  if (train.size() == 0) throw ShapeError("exact_path_kernel: the training set is empty");
  if (test_inputs.numel() / test_inputs.dim(0) != train.inputs.numel() / train.size())
    throw ShapeError("exact_path_kernel: test inputs " + shape_string(test_inputs.shape()) + " do not match training inputs " + shape_string(train.inputs.shape()));
}

// The mode in force and its report line: automatic is exact for piecewise-polynomial nets, kernel-adaptive otherwise.
void choose_quadrature(Replay& r) {
  const QuadratureChoice& choice = r.options.quadrature;
  QuadratureReport& report = r.result.quadrature;
  const bool polynomial = r.network.piecewise_polynomial;
  const int64_t degree_nodes = (r.network.parameterised + 1) / 2 + r.options.extra_nodes;
  r.quadrature = choice.mode == PathQuadrature::automatic && polynomial ? PathQuadrature::exact : choice.mode;
  if (r.quadrature == PathQuadrature::exact && !polynomial)
    throw std::invalid_argument("--quadrature exact needs a ReLU/max-pool network (piecewise polynomial along a step); this one has smooth "
                                "activations: use auto, adaptive:TOL or gauss-legendre:N");
  char text[96];
  switch (r.quadrature) {
    case PathQuadrature::exact: report.mode = "breakpoints + Gauss-Legendre", report.nodes_per_piece = degree_nodes; break;
    case PathQuadrature::automatic: report.mode = "adaptive Gauss-Legendre", report.nodes_per_piece = r.options.smooth_nodes; break;
    case PathQuadrature::gauss_legendre:
      std::snprintf(text, sizeof text, "Gauss-Legendre, %lld nodes per step", static_cast<long long>(choice.nodes));
      report.mode = text, report.nodes_per_piece = choice.nodes;
      break;
    case PathQuadrature::adaptive:
      std::snprintf(text, sizeof text, "adaptive Gauss-Legendre to residual %.3g", choice.tolerance);
      report.mode = text, report.nodes_per_piece = polynomial ? degree_nodes : r.options.smooth_nodes;
      break;
  }
}

void start(Replay& r, const Parameters& theta0) {
  auto wants = [&](PathKernel kind) { return std::find(r.options.kernels.begin(), r.options.kernels.end(), kind) != r.options.kernels.end(); };
  r.want_exact = wants(PathKernel::exact);
  r.want_domingos = wants(PathKernel::domingos);
  r.want_fixed = wants(PathKernel::ntk_init) || wants(PathKernel::after);
  r.decay = r.record.weight_decay != 0.0;
  r.network = analyse_pieces(r.model);
  choose_quadrature(r);
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
  r.exact_outputs = r.domingos_outputs = result.initial;
  r.exact_decay = Tensor({r.M, r.C});
  r.domingos_decay = Tensor({r.M, r.C});
  if (r.decay)
    for (const Tensor& t : theta0) r.decay_sum.emplace_back(t.shape());
  r.previous_outputs = result.initial;
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
  step.end = trace_network(r.model, theta, r.test_inputs, false).output;
  step.change = Tensor({r.M, r.C});
  for (int64_t k = 0; k < r.M * r.C; ++k) step.change[k] = step.end[k] - r.previous_outputs[k];
  if (r.decay)
    for (size_t k = 0; k < step.base.size(); ++k) r.decay_sum[k].vector() -= (recorded.learning_rate * record.weight_decay) * step.base[k].vector();
  step.segment.base = &step.base;
  step.segment.direction = &step.direction;
  step.first_layer = first_layer_outputs(r.model, r.test_inputs, step.segment);
  step.segment.first_base = &step.first_layer.first;
  step.segment.first_direction = &step.first_layer.second;
  step.batch = StepBatch{&step.segment, &step.tiles, step.b * r.C, r.C, r.options.method};
}

// outputs += Σ_i K(x, x_i)·a_i (+ the weight-decay term); the exact kernel also fills attributions and K_EPK. Returns
// the step's residual: max |f(x;θ_s+1) − f(x;θ_s) − the terms added|.
double accumulate(Replay& r, const Step& step, const StepIntegral& integral, Tensor& outputs, Tensor& decay_column, bool exact) {
  const int64_t M = r.M, N = r.N, C = r.C;
  const double decay_rate = -step.record->learning_rate * r.record.weight_decay;
  double residual = 0.0;
  for (int64_t m = 0; m < M; ++m) {
    const MatrixRowMajor& K = integral.kernel[static_cast<size_t>(m)];
    std::vector<double> terms(static_cast<size_t>(C), 0.0);
    for (int64_t i = 0; i < step.b; ++i) {
      const int64_t position = step.record->batch[static_cast<size_t>(i)];
      for (int64_t c = 0; c < C; ++c) {
        double share = 0.0;
        for (int64_t d = 0; d < C; ++d) share += K(c, i * C + d) * step.a[i * C + d];
        outputs[m * C + c] += share;
        terms[static_cast<size_t>(c)] += share;
        if (!exact) continue;
        r.result.attributions[(m * N + position) * C + c] += share;
        if (!r.result.kernel.empty())
          for (int64_t d = 0; d < C; ++d) r.result.kernel[(m * C + c) * N * C + position * C + d] += K(c, i * C + d);
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      if (r.decay) {
        const double term = decay_rate * integral.along_theta[m * C + c];
        decay_column[m * C + c] += term;
        outputs[m * C + c] += term;
        terms[static_cast<size_t>(c)] += term;
      }
      residual = std::max(residual, std::abs(step.change[m * C + c] - terms[static_cast<size_t>(c)]));
    }
  }
  return residual;
}

// Domingos' discrete path kernel: both gradients at θ_s (the rows at t = 0), no integral.
void domingos_step(Replay& r, const Step& step) {
  std::vector<QuadratureRow> rows;
  for (int64_t m = 0; m < r.M; ++m) rows.push_back({m, 0.0, 1.0});
  const RowValues start = evaluate_rows(r.model, r.test_inputs, step.batch, rows, {r.decay ? &step.base : nullptr, nullptr});
  StepIntegral integral = empty_integral(r.M, r.C, step.b * r.C);
  add_rows(integral, rows, start, r.C);
  r.domingos_residual = std::max(r.domingos_residual, accumulate(r, step, integral, r.domingos_outputs, r.domingos_decay, false));
}

// exact: Gauss–Legendre on every piece between breakpoints; gauss-legendre:N: one piece, N nodes.
void integrate_pieces(Replay& r, const Step& step, StepIntegral& integral) {
  const RowRequest request{r.decay ? &step.base : nullptr, &step.direction, true};
  const PieceQuadrature quadrature{r.quadrature == PathQuadrature::exact ? &r.network : nullptr, r.result.quadrature.nodes_per_piece};
  integrate_on_pieces(r.model, r.test_inputs, step.batch, request, quadrature, integral, r.result.quadrature);
  contract_sums(integral, step.batch, request);
}

// Smooth activations: adaptive Gauss–Legendre on the rows' (C, b·C + 2) blocks: kernel, along θ_s, along Δθ_s.
void integrate_adaptively(Replay& r, const Step& step, StepIntegral& integral) {
  const int64_t C = r.C, width = step.b * C;
  const RowIntegrand g = [&](const std::vector<QuadratureRow>& rows) {
    const RowValues values = evaluate_rows(r.model, r.test_inputs, step.batch, rows, {r.decay ? &step.base : nullptr, &step.direction});
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

// adaptive:TOL. Each interval [a, b] of an input's step knows f at its ends, so its own residual
// |f(b) − f(a) − ⟨∫_a^b ∇f dt, Δθ_s⟩| is known; the sum over intervals bounds the step's residual. Intervals whose residual
// is above their share are halved (the largest at least) until the sum is at most TOL × max |f| at the step's ends.
struct Interval {
  double a, b;
  std::vector<double> fa, fb;  // (C): f at the ends
  MatrixRowMajor kernel;       // (C, b·C)
  std::vector<double> along_theta, along_direction;
  double residual = 0.0;
};

// n-node Gauss–Legendre on every fresh interval of every input, in one batched evaluation; sets their residuals.
void integrate_intervals(Replay& r, const Step& step, std::vector<std::vector<Interval*>>& fresh) {
  const int64_t C = r.C, n = r.result.quadrature.nodes_per_piece;
  std::vector<QuadratureRow> rows;
  std::vector<Interval*> owner;
  for (int64_t m = 0; m < r.M; ++m)
    for (Interval* interval : fresh[static_cast<size_t>(m)]) {
      const QuadratureRule rule = gauss_legendre(n, interval->a, interval->b);
      for (size_t q = 0; q < rule.nodes.size(); ++q) rows.push_back({m, rule.nodes[q], rule.weights[q]}), owner.push_back(interval);
      interval->kernel = MatrixRowMajor::Zero(C, step.b * C);
      interval->along_theta.assign(static_cast<size_t>(C), 0.0);
      interval->along_direction.assign(static_cast<size_t>(C), 0.0);
    }
  r.result.quadrature.nodes += static_cast<int64_t>(rows.size());
  const RowValues values = evaluate_rows(r.model, r.test_inputs, step.batch, rows, {r.decay ? &step.base : nullptr, &step.direction});
  for (size_t j = 0; j < rows.size(); ++j) {
    Interval& interval = *owner[j];
    const double w = rows[j].weight;
    interval.kernel += w * values.kernel.middleRows(static_cast<int64_t>(j) * C, C);
    for (int64_t c = 0; c < C; ++c) {
      if (!values.along_first.empty()) interval.along_theta[static_cast<size_t>(c)] += w * values.along_first[static_cast<int64_t>(j) * C + c];
      interval.along_direction[static_cast<size_t>(c)] += w * values.along_second[static_cast<int64_t>(j) * C + c];
    }
  }
  for (Interval* interval : owner) {
    interval->residual = 0.0;
    for (int64_t c = 0; c < C; ++c)
      interval->residual = std::max(interval->residual, std::abs(interval->fb[static_cast<size_t>(c)] - interval->fa[static_cast<size_t>(c)] -
                                                                 interval->along_direction[static_cast<size_t>(c)]));
  }
}

// Halves the listed intervals: f at their midpoints from one forward pass, then the halves integrated.
void halve(Replay& r, const Step& step, std::vector<std::list<Interval>>& intervals, std::vector<std::vector<std::list<Interval>::iterator>>& split) {
  Segment at = step.segment;
  at.t.clear();
  at.samples.clear();
  for (int64_t m = 0; m < r.M; ++m)
    for (auto it : split[static_cast<size_t>(m)]) at.t.push_back(0.5 * (it->a + it->b)), at.samples.push_back(m);
  if (at.t.empty()) return;
  const Tensor middle = trace_segment(r.model, gather_rows(r.test_inputs, at.samples), at, false).output;
  std::vector<std::vector<Interval*>> fresh(static_cast<size_t>(r.M));
  int64_t row = 0;
  for (int64_t m = 0; m < r.M; ++m)
    for (auto it : split[static_cast<size_t>(m)]) {
      const std::vector<double> fm(middle.data() + row * r.C, middle.data() + (row + 1) * r.C);
      ++row;
      const double mid = 0.5 * (it->a + it->b);
      auto left = intervals[static_cast<size_t>(m)].insert(it, Interval{it->a, mid, it->fa, fm, {}, {}, {}, 0.0});
      it->a = mid, it->fa = fm;
      fresh[static_cast<size_t>(m)].push_back(&*left);
      fresh[static_cast<size_t>(m)].push_back(&*it);
    }
  integrate_intervals(r, step, fresh);
}

void integrate_to_residual(Replay& r, const Step& step, StepIntegral& integral) {
  constexpr size_t kMostIntervals = 1 << 14;
  const int64_t C = r.C;
  std::vector<std::list<Interval>> intervals(static_cast<size_t>(r.M));
  std::vector<std::vector<Interval*>> fresh(static_cast<size_t>(r.M));
  std::vector<double> budget(static_cast<size_t>(r.M), 0.0);
  for (int64_t m = 0; m < r.M; ++m) {
    const double* start = r.previous_outputs.data() + m * C;
    const double* end = step.end.data() + m * C;
    intervals[static_cast<size_t>(m)].push_back(Interval{0.0, 1.0, {start, start + C}, {end, end + C}, {}, {}, {}, 0.0});
    fresh[static_cast<size_t>(m)].push_back(&intervals[static_cast<size_t>(m)].back());
    for (int64_t c = 0; c < C; ++c) budget[static_cast<size_t>(m)] = std::max({budget[static_cast<size_t>(m)], std::abs(start[c]), std::abs(end[c])});
    budget[static_cast<size_t>(m)] *= r.options.quadrature.tolerance;
  }
  integrate_intervals(r, step, fresh);
  for (bool refining = true; refining;) {
    refining = false;
    std::vector<std::vector<std::list<Interval>::iterator>> split(static_cast<size_t>(r.M));
    for (int64_t m = 0; m < r.M; ++m) {
      std::list<Interval>& list = intervals[static_cast<size_t>(m)];
      double total = 0.0;
      auto worst = list.begin();
      for (auto it = list.begin(); it != list.end(); ++it) total += it->residual, worst = it->residual > worst->residual ? it : worst;
      if (total <= budget[static_cast<size_t>(m)] || list.size() >= kMostIntervals) continue;
      const double share = budget[static_cast<size_t>(m)] / static_cast<double>(list.size());
      for (auto it = list.begin(); it != list.end(); ++it)
        if (it->residual > share || it == worst) split[static_cast<size_t>(m)].push_back(it);
      refining = true;
    }
    halve(r, step, intervals, split);
  }
  QuadratureReport& report = r.result.quadrature;
  for (int64_t m = 0; m < r.M; ++m) {
    for (const Interval& interval : intervals[static_cast<size_t>(m)]) {
      integral.kernel[static_cast<size_t>(m)] += interval.kernel;
      for (int64_t c = 0; c < C; ++c) {
        integral.along_theta[m * C + c] += interval.along_theta[static_cast<size_t>(c)];
        integral.along_direction[m * C + c] += interval.along_direction[static_cast<size_t>(c)];
      }
    }
    const int64_t count = static_cast<int64_t>(intervals[static_cast<size_t>(m)].size());
    report.pieces += count;
    report.max_pieces = std::max(report.max_pieces, count);
  }
}

// The exact machine's step: the integral in the mode in force, its own check, then the terms.
void exact_step(Replay& r, const Step& step) {
  StepIntegral integral = empty_integral(r.M, r.C, step.b * r.C);
  switch (r.quadrature) {
    case PathQuadrature::exact:
    case PathQuadrature::gauss_legendre: integrate_pieces(r, step, integral); break;
    case PathQuadrature::adaptive: integrate_to_residual(r, step, integral); break;
    case PathQuadrature::automatic: integrate_adaptively(r, step, integral); break;
  }
  QuadratureReport& report = r.result.quadrature;
  for (int64_t k = 0; k < r.M * r.C; ++k)
    report.max_segment_residual = std::max(report.max_segment_residual, std::abs(step.change[k] - integral.along_direction[k]));
  r.exact_residual = std::max(r.exact_residual, accumulate(r, step, integral, r.exact_outputs, r.exact_decay, true));
}

// After the last step: f(x;θ_T), the last residual, and every requested machine with its errors.
void finish(Replay& r, const Parameters& theta0, Parameters thetaT) {
  EpkResult& result = r.result;
  result.final = trace_network(r.model, thetaT, r.test_inputs, false).output;
  const FixedKernelInputs fixed{r.model, r.test_inputs, r.record.train->inputs, result.initial, result.coefficients, r.decay ? &r.decay_sum : nullptr,
                                &r.step_terms};
  for (PathKernel kind : r.options.kernels) {
    KernelMachine machine;
    switch (kind) {
      case PathKernel::exact: machine.outputs = r.exact_outputs, machine.weight_decay = r.exact_decay, machine.max_step_residual = r.exact_residual; break;
      case PathKernel::domingos:
        machine.outputs = r.domingos_outputs, machine.weight_decay = r.domingos_decay, machine.max_step_residual = r.domingos_residual;
        break;
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
  if (record.optimizer.kind != OptimizerKind::sgd) return rule_path_kernel(model, theta0, test_inputs, record, options);
  const auto started = Clock::now();
  Replay r{model, test_inputs, record, options, {}};
  start(r, theta0);
  Parameters theta = theta0;
  const size_t steps = record.steps->size();
  for (size_t s = 0; s < steps; ++s) {
    Step step;
    begin_step(r, theta, s, step);
    if (r.want_domingos) domingos_step(r, step);
    if (r.want_fixed) r.step_terms.push_back({&step.record->batch, step.a, step.change});
    if (r.want_exact) exact_step(r, step);
    r.previous_outputs = step.end;
    if (options.progress) options.progress(static_cast<int64_t>(s) + 1, static_cast<int64_t>(steps));
  }
  finish(r, theta0, std::move(theta));
  r.result.seconds = seconds_since(started);
  return std::move(r.result);
}

}  // namespace ks
