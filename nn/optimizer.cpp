// The update rules of nn/optimizer.h, each written as PyTorch 1.13's torch.optim writes it (_single_tensor_sgd,
// _single_tensor_adam, AdamW's decoupled decay), element by element in the same order. No training loop here.
#include "nn/optimizer.h"

#include <cmath>
#include <stdexcept>

#include "autodiff/math.h"

namespace ks {

OptimizerKind parse_optimizer(const std::string& name) {
  for (OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::momentum, OptimizerKind::nesterov, OptimizerKind::adam, OptimizerKind::adamw})
    if (name == optimizer_name(kind)) return kind;
  throw std::invalid_argument("unknown optimizer '" + name + "' (use sgd, momentum, nesterov, adam or adamw)");
}

std::string optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd: return "sgd";
    case OptimizerKind::momentum: return "momentum";
    case OptimizerKind::nesterov: return "nesterov";
    case OptimizerKind::adam: return "adam";
    case OptimizerKind::adamw: return "adamw";
  }
  return "?";
}

std::vector<std::string> optimizer_buffer_names(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd: return {};
    case OptimizerKind::momentum:
    case OptimizerKind::nesterov: return {"momentum_buffer"};
    case OptimizerKind::adam:
    case OptimizerKind::adamw: return {"exp_avg", "exp_avg_sq"};
  }
  return {};
}

void check_optimizer(const OptimizerOptions& o) {
  auto refuse = [](const std::string& what, double value, const std::string& range) {
    throw std::invalid_argument("optimizer: " + what + " = " + std::to_string(value) + " is outside " + range);
  };
  if (!(o.momentum >= 0.0 && o.momentum < 1.0)) refuse("momentum", o.momentum, "[0, 1)");
  if (!(o.dampening >= 0.0 && o.dampening <= 1.0)) refuse("dampening", o.dampening, "[0, 1]");
  if (o.kind == OptimizerKind::nesterov && o.dampening != 0.0) refuse("dampening (Nesterov needs 0, as in PyTorch)", o.dampening, "{0}");
  if (!(o.beta1 >= 0.0 && o.beta1 < 1.0)) refuse("beta1", o.beta1, "[0, 1)");
  if (!(o.beta2 >= 0.0 && o.beta2 < 1.0)) refuse("beta2", o.beta2, "[0, 1)");
  if (!(o.epsilon > 0.0 && std::isfinite(o.epsilon))) refuse("epsilon", o.epsilon, "(0, inf)");
}

namespace {

void start_state(OptimizerState& state, const Parameters& theta, bool second) {
  if (!state.first.empty()) return;
  for (const Tensor& t : theta) {
    state.first.emplace_back(t.shape());
    if (second) state.second.emplace_back(t.shape());
  }
}

// _single_tensor_sgd: d = g + λθ; buf = d (first update) or μ·buf + (1 − dampening)·d; d = d + μ·buf (Nesterov) or buf.
void momentum_update(const OptimizerOptions& o, OptimizerState& state, Parameters& theta, const Parameters& gradient, double lr, double decay) {
  const bool first_update = state.first.empty();
  start_state(state, theta, false);
  for (size_t k = 0; k < theta.size(); ++k) {
    double* p = theta[k].data();
    double* buffer = state.first[k].data();
    const double* g = gradient[k].data();
    for (int64_t i = 0; i < theta[k].numel(); ++i) {
      const double d = decay != 0.0 ? g[i] + decay * p[i] : g[i];
      buffer[i] = first_update ? d : buffer[i] * o.momentum + (1.0 - o.dampening) * d;
      const double step = o.kind == OptimizerKind::nesterov ? d + o.momentum * buffer[i] : buffer[i];
      p[i] = p[i] + (-lr) * step;
    }
  }
}

// _single_tensor_adam (coupled decay: g + λθ) and AdamW (θ·(1 − ηλ) first, then Adam without decay).
void adam_update(const OptimizerOptions& o, OptimizerState& state, Parameters& theta, const Parameters& gradient, double lr, double decay) {
  start_state(state, theta, true);
  const int64_t t = state.updates + 1;
  const double correction1 = 1.0 - math::pow(o.beta1, t), correction2 = 1.0 - math::pow(o.beta2, t);
  const double step_size = lr / correction1, correction2_sqrt = std::sqrt(correction2);
  const bool decoupled = o.kind == OptimizerKind::adamw;
  for (size_t k = 0; k < theta.size(); ++k) {
    double* p = theta[k].data();
    double* m = state.first[k].data();
    double* v = state.second[k].data();
    const double* g = gradient[k].data();
    for (int64_t i = 0; i < theta[k].numel(); ++i) {
      if (decoupled) p[i] = p[i] * (1.0 - lr * decay);
      const double d = !decoupled && decay != 0.0 ? g[i] + decay * p[i] : g[i];
      m[i] = m[i] * o.beta1 + (1.0 - o.beta1) * d;
      v[i] = v[i] * o.beta2 + (1.0 - o.beta2) * (d * d);
      const double denominator = std::sqrt(v[i]) / correction2_sqrt + o.epsilon;
      p[i] = p[i] + (-step_size) * (m[i] / denominator);
    }
  }
}

}  // namespace

void optimizer_update(const OptimizerOptions& options, OptimizerState& state, Parameters& theta, const Parameters& gradient,
                      double learning_rate, double weight_decay) {
  switch (options.kind) {
    case OptimizerKind::sgd:
      for (size_t k = 0; k < theta.size(); ++k) {
        double* p = theta[k].data();
        const double* g = gradient[k].data();
        for (int64_t i = 0; i < theta[k].numel(); ++i) p[i] = p[i] - learning_rate * (g[i] + weight_decay * p[i]);
      }
      break;
    case OptimizerKind::momentum:
    case OptimizerKind::nesterov: momentum_update(options, state, theta, gradient, learning_rate, weight_decay); break;
    case OptimizerKind::adam:
    case OptimizerKind::adamw: adam_update(options, state, theta, gradient, learning_rate, weight_decay); break;
  }
  ++state.updates;
}

}  // namespace ks
