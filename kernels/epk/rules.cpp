// The backward-in-time exact path kernel for update rules with state (rules.h has the recursion): one forward replay
// keeps θ and the rule's state every K ≈ √T steps; each stretch is replayed again and walked in reverse. No SGD path here.
#include "kernels/epk/rules.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "autodiff/math.h"
#include "kernels/epk/integrate.h"
#include "kernels/epk/machines.h"
#include "kernels/epk/pieces.h"
#include "kernels/epk/rows.h"
#include "kernels/tile.h"

namespace ks {

RuleRecursion rule_recursion(const OptimizerOptions& o) {
  switch (o.kind) {
    case OptimizerKind::sgd: return {0.0, 0.0};
    case OptimizerKind::momentum: return {o.momentum, 0.0};
    case OptimizerKind::nesterov: return {o.momentum, 1.0};
    case OptimizerKind::adam:
    case OptimizerKind::adamw: return {o.beta1, 0.0};
  }
  return {};
}

double rule_alpha(const OptimizerOptions& o, int64_t step) {
  const double entering = step == 0 ? 1.0 : 1.0 - o.dampening;  // torch.optim starts the buffer with the gradient itself
  switch (o.kind) {
    case OptimizerKind::sgd: return 1.0;
    case OptimizerKind::momentum: return entering;
    case OptimizerKind::nesterov: return o.momentum * entering;
    case OptimizerKind::adam:
    case OptimizerKind::adamw: return 1.0 - o.beta1;
  }
  return 1.0;
}

namespace {


// θ-shaped values as one vector in state_dict order: the column order of the all-Jacobian tiles and of
// per_sample_jacobian.
Eigen::VectorXd flatten(const Parameters& values) {
  int64_t size = 0;
  for (const Tensor& t : values) size += t.numel();
  Eigen::VectorXd out(size);
  int64_t at = 0;
  for (const Tensor& t : values) out.segment(at, t.numel()) = t.vector(), at += t.numel();
  return out;
}

// P_j, from the rule's state after step j's update: η_j, or Adam's η_j / (c1 (√v_j / √c2 + ε)), the arithmetic of
// nn/optimizer.cpp's update.
Eigen::VectorXd step_metric(const OptimizerOptions& o, const OptimizerState& state, double learning_rate, int64_t P) {
  if (o.kind != OptimizerKind::adam && o.kind != OptimizerKind::adamw) return Eigen::VectorXd::Constant(P, learning_rate);
  const double correction1 = 1.0 - math::pow(o.beta1, state.updates), correction2 = 1.0 - math::pow(o.beta2, state.updates);
  const double step_size = learning_rate / correction1, correction2_sqrt = std::sqrt(correction2);
  const Eigen::VectorXd v = flatten(state.second);
  Eigen::VectorXd metric(P);
  for (int64_t i = 0; i < P; ++i) metric[i] = step_size / (std::sqrt(v[i]) / correction2_sqrt + o.epsilon);
  return metric;
}

// One kernel machine under the rule: R_{j+1} per test input (C, P), and its outputs.
struct Machine {
  PathKernel kind = PathKernel::exact;
  std::vector<MatrixRowMajor> carried;
  Tensor outputs, decay;                       // (M, C)
  const Parameters* fixed = nullptr;           // the fixed kernels' θ* (θ_0 or θ_T)
  std::vector<MatrixRowMajor> fixed_gradients;  // per test input (C, P): ∇f(x;θ*)
};

struct Snapshot {
  Parameters theta;
  OptimizerState state;
};

// What the backward walk carries.
struct Walk {
  const Sequential& model;
  const Tensor& test_inputs;
  const TrainingRecord& record;
  const EpkOptions& options;
  PieceShape network;
  bool exact_pieces = true;
  int64_t M = 0, N = 0, C = 0, P = 0, T = 0, stride = 1;
  bool decay = false;
  std::vector<Snapshot> snapshots;  // at steps 0, K, 2K, ...
  Parameters thetaT;
  std::vector<Machine> machines;
  EpkResult result;
  Tensor later_outputs;  // f(x;θ_{j+1}) while step j is walked
  int64_t walked = 0;
};

// One step as the machines see it.
struct RuleStep {
  int64_t index = 0;
  const StepRecord* record = nullptr;
  Tensor weights;                   // (b, C): ∂L/∂f at θ_j
  Eigen::VectorXd metric;           // P_j
  Eigen::VectorXd decay_direction;  // coupled decay: λθ_j, against Ψ_j; AdamW: −η_j λ θ_j, against X_j
  double alpha = 1.0;
};

StepContext context_of(const Walk& w, int64_t s) {
  const StepRecord& recorded = (*w.record.steps)[static_cast<size_t>(s)];
  return {recorded.learning_rate, w.record.weight_decay, w.record.loss, s, w.record.augmentation, w.record.optimizer};
}

void optimizer_step_at(Walk& w, Parameters& theta, OptimizerState& state, int64_t s) {
  const auto started = Clock::now();
  optimizer_step(w.model, theta, state, *w.record.train, (*w.record.steps)[static_cast<size_t>(s)].batch, context_of(w, s));
  w.result.training_seconds += seconds_since(started);
}

// The forward replay: θ_T, and θ with the rule's state every `stride` steps.
void replay_forward(Walk& w, const Parameters& theta0) {
  Parameters theta = theta0;
  OptimizerState state;
  for (int64_t s = 0; s < w.T; ++s) {
    if (s % w.stride == 0) w.snapshots.push_back({theta, state});
    optimizer_step_at(w, theta, state, s);
  }
  w.thetaT = std::move(theta);
}

// Steps [first, last) again from their snapshot: θ_first..θ_last and each step's metric.
struct Stretch {
  std::vector<Parameters> theta;
  std::vector<Eigen::VectorXd> metric;
};
Stretch replay_stretch(Walk& w, int64_t first, int64_t last) {
  const Snapshot& snapshot = w.snapshots[static_cast<size_t>(first / w.stride)];
  Stretch stretch;
  stretch.theta.push_back(snapshot.theta);
  OptimizerState state = snapshot.state;
  for (int64_t s = first; s < last; ++s) {
    Parameters theta = stretch.theta.back();
    optimizer_step_at(w, theta, state, s);
    stretch.metric.push_back(step_metric(w.record.optimizer, state, (*w.record.steps)[static_cast<size_t>(s)].learning_rate, w.P));
    stretch.theta.push_back(std::move(theta));
  }
  return stretch;
}

// Per test input, ∇f(x;θ) as (C, P).
std::vector<MatrixRowMajor> test_gradients(const Walk& w, const Parameters& theta) {
  const Tensor jacobian = per_sample_jacobian(w.model, theta, w.test_inputs);
  std::vector<MatrixRowMajor> out;
  for (int64_t m = 0; m < w.M; ++m) out.push_back(ConstMatrixMap(jacobian.data() + m * w.C * w.P, w.C, w.P));
  return out;
}

// Per test input, ∫₀¹∇f(x;θ_j + tΔθ_j)dt as (C, P), by breakpoints + Gauss–Legendre or N nodes, with the quadrature's
// own check |f(x;θ_j+1) − f(x;θ_j) − ⟨∫∇f, Δθ_j⟩| reported.
std::vector<MatrixRowMajor> path_gradients(Walk& w, const Parameters& base, const Parameters& direction, const std::vector<Tile>& tiles, int64_t b,
                                           const Tensor& start) {
  Segment segment;
  segment.base = &base;
  segment.direction = &direction;
  const std::pair<Tensor, Tensor> first = first_layer_outputs(w.model, w.test_inputs, segment);
  segment.first_base = &first.first;
  segment.first_direction = &first.second;
  QuadratureReport& report = w.result.quadrature;
  const StepBatch batch{&segment, &tiles, b * w.C, w.C, KernelMethod::jacobian};
  StepIntegral integral = empty_integral(w.M, w.C, b * w.C);
  const PieceQuadrature quadrature{w.exact_pieces ? &w.network : nullptr, report.nodes_per_piece};
  integrate_on_pieces(w.model, w.test_inputs, batch, RowRequest{nullptr, nullptr, true}, quadrature, integral, report);
  const Eigen::VectorXd along = flatten(direction);
  for (int64_t m = 0; m < w.M; ++m) {
    if (integral.sums[static_cast<size_t>(m)].cols() != w.P) throw std::logic_error("rule_path_kernel: the summed gradients do not span θ");
    for (int64_t c = 0; c < w.C; ++c) {
      const double change = w.later_outputs[m * w.C + c] - start[m * w.C + c];
      report.max_segment_residual = std::max(report.max_segment_residual, std::abs(change - integral.sums[static_cast<size_t>(m)].row(c).dot(along)));
    }
  }
  return std::move(integral.sums);
}

// One machine's share of step j: the recursion on its test side X_j, then Ψ_j against the training side's Jacobian rows.
void machine_step(Walk& w, Machine& machine, const RuleStep& step, const std::vector<MatrixRowMajor>& X, const std::vector<Tile>& train) {
  const RuleRecursion recursion = rule_recursion(w.record.optimizer);
  const bool decoupled = w.record.optimizer.kind == OptimizerKind::adamw, exact = machine.kind == PathKernel::exact;
  const int64_t C = w.C, N = w.N, b = static_cast<int64_t>(step.record->batch.size());
  const Eigen::VectorXd negative_metric = -step.metric;
  for (int64_t m = 0; m < w.M; ++m) {
    const MatrixRowMajor scaled = X[static_cast<size_t>(m)] * negative_metric.asDiagonal();  // (C, P): −P_j ⊙ X_j
    MatrixRowMajor& carried = machine.carried[static_cast<size_t>(m)];
    carried = carried.size() == 0 ? scaled : MatrixRowMajor(scaled + recursion.rho * carried);
    MatrixRowMajor psi = step.alpha * carried;
    if (recursion.gamma != 0.0) psi += recursion.gamma * scaled;
    MatrixRowMajor kernel(C, b * C);
    int64_t column = 0;
    for (const Tile& tile : train) kernel.middleCols(column, tile.rows).noalias() = psi * tile.jacobian.transpose(), column += tile.rows;
    for (int64_t i = 0; i < b; ++i) {
      const int64_t position = step.record->batch[static_cast<size_t>(i)];
      for (int64_t c = 0; c < C; ++c) {
        double share = 0.0;
        for (int64_t d = 0; d < C; ++d) share += kernel(c, i * C + d) * step.weights[i * C + d];
        machine.outputs[m * C + c] += share;
        if (!exact) continue;
        w.result.attributions[(m * N + position) * C + c] += share;
        if (!w.result.kernel.empty())
          for (int64_t d = 0; d < C; ++d) w.result.kernel[(m * C + c) * N * C + position * C + d] += kernel(c, i * C + d);
      }
    }
    if (!w.decay) continue;
    for (int64_t c = 0; c < C; ++c) {
      const double term = decoupled ? X[static_cast<size_t>(m)].row(c).dot(step.decay_direction) : psi.row(c).dot(step.decay_direction);
      machine.decay[m * C + c] += term;
      machine.outputs[m * C + c] += term;
    }
  }
}

// Step j walked: the batch at θ_j, the weights ∂L/∂f, and every machine's test and training sides.
void walk_step(Walk& w, int64_t j, const Parameters& theta, const Parameters& next, const Eigen::VectorXd& metric) {
  RuleStep step;
  step.index = j;
  step.record = &(*w.record.steps)[static_cast<size_t>(j)];
  step.metric = metric;
  step.alpha = rule_alpha(w.record.optimizer, j);
  const double rate = step.record->learning_rate;
  if (w.decay)
    step.decay_direction = w.record.optimizer.kind == OptimizerKind::adamw ? Eigen::VectorXd(-(rate * w.record.weight_decay) * flatten(theta))
                                                                           : Eigen::VectorXd(w.record.weight_decay * flatten(theta));
  const Tensor batch_inputs = step_inputs(*w.record.train, step.record->batch, j, w.record.augmentation);
  Tensor batch_outputs;
  const std::vector<Tile> tiles = batch_tiles(w.model, theta, batch_inputs, KernelMethod::jacobian, batch_outputs);
  const int64_t b = batch_inputs.dim(0);
  step.weights = loss_coefficients(batch_outputs, gather_labels(*w.record.train, step.record->batch), w.record.loss, -1.0);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t c = 0; c < w.C; ++c) w.result.coefficients[step.record->batch[static_cast<size_t>(i)] * w.C + c] -= rate * step.weights[i * w.C + c];
  const Tensor start = trace_network(w.model, theta, w.test_inputs, false).output;
  for (Machine& machine : w.machines) {
    if (machine.kind == PathKernel::exact) {
      machine_step(w, machine, step, path_gradients(w, theta, difference(next, theta), tiles, b, start), tiles);
    } else if (machine.kind == PathKernel::domingos) {
      machine_step(w, machine, step, test_gradients(w, theta), tiles);
    } else {
      Tensor unused;
      machine_step(w, machine, step, machine.fixed_gradients, batch_tiles(w.model, *machine.fixed, batch_inputs, KernelMethod::jacobian, unused));
    }
  }
  w.later_outputs = start;
  if (w.options.progress) w.options.progress(++w.walked, w.T);
}

// The quadrature in force: breakpoints + Gauss–Legendre, or N nodes; adaptive modes are the SGD path's only.
void choose_rule_quadrature(Walk& w) {
  const QuadratureChoice& choice = w.options.quadrature;
  const std::string rule = optimizer_name(w.record.optimizer.kind);
  QuadratureReport& report = w.result.quadrature;
  if (choice.mode == PathQuadrature::adaptive || (choice.mode == PathQuadrature::automatic && !w.network.piecewise_polynomial))
    throw std::invalid_argument("the exact path kernel of a " + rule + " run integrates with --quadrature exact (ReLU/max-pool nets) or gauss-legendre:N; "
                                "adaptive quadrature is not available for update rules with state");
  if (choice.mode == PathQuadrature::exact && !w.network.piecewise_polynomial)
    throw std::invalid_argument("--quadrature exact needs a ReLU/max-pool network (piecewise polynomial along a step): use gauss-legendre:N");
  w.exact_pieces = choice.mode != PathQuadrature::gauss_legendre;
  if (w.exact_pieces) {
    report.mode = "breakpoints + Gauss-Legendre";
    report.nodes_per_piece = (w.network.parameterised + 1) / 2 + w.options.extra_nodes;
  } else {
    report.mode = "Gauss-Legendre, " + std::to_string(choice.nodes) + " nodes per step";
    report.nodes_per_piece = choice.nodes;
  }
}

void start_walk(Walk& w, const Parameters& theta0) {
  w.network = analyse_pieces(w.model);
  choose_rule_quadrature(w);
  w.M = w.test_inputs.dim(0);
  w.N = w.record.train->size();
  w.P = w.model.parameter_count();
  w.T = static_cast<int64_t>(w.record.steps->size());
  w.stride = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(w.T)))));
  w.decay = w.record.weight_decay != 0.0;
  const Trace initial = trace_network(w.model, theta0, w.test_inputs, false);
  w.C = initial.outputs;
  EpkResult& result = w.result;
  result.outputs = w.C;
  result.steps = w.T;
  result.initial = initial.output;
  result.coefficients = Tensor({w.N, w.C});
  const auto wants = [&](PathKernel kind) { return std::find(w.options.kernels.begin(), w.options.kernels.end(), kind) != w.options.kernels.end(); };
  if (wants(PathKernel::exact)) result.attributions = Tensor({w.M, w.N, w.C});
  if (wants(PathKernel::exact) && w.options.keep_kernel) result.kernel = Tensor({w.M * w.C, w.N * w.C});
  for (PathKernel kind : w.options.kernels) {
    Machine machine;
    machine.kind = kind;
    machine.carried.resize(static_cast<size_t>(w.M));
    machine.outputs = result.initial;
    machine.decay = Tensor({w.M, w.C});
    w.machines.push_back(std::move(machine));
  }
}

}  // namespace

EpkResult rule_path_kernel(const Sequential& model, const Parameters& theta0, const Tensor& test_inputs, const TrainingRecord& record,
                           const EpkOptions& options) {
  const auto started = Clock::now();
  Walk w{model, test_inputs, record, options, {}};
  start_walk(w, theta0);
  replay_forward(w, theta0);
  for (Machine& machine : w.machines) {
    if (machine.kind == PathKernel::ntk_init) machine.fixed = &theta0;
    if (machine.kind == PathKernel::after) machine.fixed = &w.thetaT;
    if (machine.fixed) machine.fixed_gradients = test_gradients(w, *machine.fixed);
  }
  w.result.final = trace_network(model, w.thetaT, test_inputs, false).output;
  w.later_outputs = w.result.final;
  for (int64_t first = (w.T - 1) / w.stride * w.stride; first >= 0 && w.T > 0; first -= w.stride) {
    const int64_t last = std::min(w.T, first + w.stride);
    const Stretch stretch = replay_stretch(w, first, last);
    for (int64_t j = last - 1; j >= first; --j)
      walk_step(w, j, stretch.theta[static_cast<size_t>(j - first)], stretch.theta[static_cast<size_t>(j - first + 1)], stretch.metric[static_cast<size_t>(j - first)]);
  }
  for (Machine& machine : w.machines) {
    KernelMachine out;
    out.kind = machine.kind;
    out.outputs = std::move(machine.outputs);
    out.weight_decay = std::move(machine.decay);
    // A step's gradients act over every later step, so no machine has per-step terms; the exact one reports the
    // quadrature's own per-step check instead.
    out.step_residual_known = machine.kind == PathKernel::exact;
    out.max_step_residual = out.step_residual_known ? w.result.quadrature.max_segment_residual : 0.0;
    error_summary(out, w.result.final);
    w.result.machines.push_back(std::move(out));
  }
  w.result.final_parameters = std::move(w.thetaT);
  w.result.seconds = seconds_since(started);
  return std::move(w.result);
}

}  // namespace ks
