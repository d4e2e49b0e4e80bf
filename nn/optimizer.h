// The update rules training can use, with PyTorch's semantics (torch.optim SGD with momentum, dampening and Nesterov;
// Adam; AdamW), so a run matches torch.optim on the same batches. Pure arithmetic on θ, its gradient and the state.
#pragma once

#include <string>
#include <vector>

#include "nn/layer.h"

namespace ks {

enum class OptimizerKind { sgd, momentum, nesterov, adam, adamw };
OptimizerKind parse_optimizer(const std::string& name);  // throws std::invalid_argument naming the text
std::string optimizer_name(OptimizerKind kind);

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::sgd;
  double momentum = 0.9;    // momentum, nesterov: μ
  double dampening = 0.0;   // momentum: the buffer adds (1 − dampening)·g (Nesterov needs 0, as in PyTorch)
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // adam, adamw
};
// Throws std::invalid_argument naming the value when a hyper-parameter is outside its range.
void check_optimizer(const OptimizerOptions& options);

// What the rule carries from step to step: the momentum buffer (SGD) or the first moment (Adam) in `first`, the second
// moment in `second`, and the number of updates done. Empty tensors until the first update, as in PyTorch.
struct OptimizerState {
  int64_t updates = 0;
  Parameters first, second;
};

// The state's buffers under torch.optim's names (momentum_buffer; exp_avg, exp_avg_sq), in the order first, second:
// what a checkpoint stores. Empty for plain SGD.
std::vector<std::string> optimizer_buffer_names(OptimizerKind kind);
// θ ← θ − (the rule's step) for gradient g = ∇L at θ (without weight decay: the rule adds λθ itself, coupled for SGD
// and Adam, decoupled for AdamW). Plain SGD is θ − η(g + λθ), the arithmetic sgd_step always did.
void optimizer_update(const OptimizerOptions& options, OptimizerState& state, Parameters& theta, const Parameters& gradient,
                      double learning_rate, double weight_decay);

}  // namespace ks
