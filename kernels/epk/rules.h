// The exact path kernel of a run trained with an update rule that carries state (momentum, Nesterov, Adam, AdamW):
// the steps walked backwards in time, so each step's batch gradients meet every later displacement they shaped.
// Internal to kernels/epk/; plain SGD keeps the forward streaming of epk.cpp. It does not do adaptive quadrature.
#pragma once

#include "kernels/epk.h"

namespace ks {

// Every step j's displacement is Δθ_j = −P_j ⊙ Σ_{i ≤ j} w_{j,i} d_i (+ AdamW's −η_j λ θ_j), with d_i the batch gradient
// (plus λθ_i for coupled decay) and P_j the step's metric: η_j for SGD with momentum, η_j / (c1 (√v̂_j + ε)) for Adam.
// With X_j(x) the test side (∫∇f(x;θ_j + tΔθ_j)dt for the exact kernel) the backward recursion
//   R_j = −P_j ⊙ X_j + ρ R_{j+1},   Ψ_j = α_j R_j + γ (−P_j ⊙ X_j)
// gives Ψ_j(x) = Σ_{s ≥ j} −P_s w_{s,j} X_s(x), and training point i's share of step j is a_{i,j}⟨Ψ_j(x), ∇f(x_i;θ_j)⟩.
struct RuleRecursion {
  double rho = 0.0;    // μ (momentum, Nesterov) or β1 (Adam); 0 is plain SGD
  double gamma = 0.0;  // 1 for Nesterov (its step adds the fresh gradient again), else 0
};
RuleRecursion rule_recursion(const OptimizerOptions& optimizer);
// α_j: the weight of step j's gradient in the buffer it enters (PyTorch's first momentum update skips dampening).
double rule_alpha(const OptimizerOptions& optimizer, int64_t step);

EpkResult rule_path_kernel(const Sequential& model, const Parameters& theta0, const Tensor& test_inputs, const TrainingRecord& record,
                           const EpkOptions& options);

}  // namespace ks
