// The kernel machines beside the exact path kernel: errors against the network and the fixed-kernel machines
// f(x;θ_0) + K(x, X)·α (+ the weight-decay column) with K the NTK at a given θ. Internal to kernels/epk/.
#pragma once

#include "kernels/epk.h"

namespace ks {

// Max absolute and relative error and decision agreement of machine.outputs against the network's outputs (M, C).
void error_summary(KernelMachine& machine, const Tensor& network);

// One step's share of the machines: its batch, a_{i,s} (b, C) and the network's change f(x;θ_s+1) − f(x;θ_s) (M, C).
struct StepTerms {
  const std::vector<int64_t>* batch = nullptr;
  Tensor a, change;
};

struct FixedKernelInputs {
  const Sequential& model;
  const Tensor& test_inputs;   // (M, ...)
  const Tensor& train_inputs;  // (N, ...)
  const Tensor& initial;       // (M, C): f(x;θ_0)
  const Tensor& coefficients;  // (N, C): Σ_s a_{i,s}
  const Parameters* decay_sum = nullptr;  // Σ_s −η_s λ θ_s, with weight decay
  const std::vector<StepTerms>* steps = nullptr;  // for the per-step residuals
};
KernelMachine fixed_kernel_machine(const FixedKernelInputs& inputs, const Parameters& theta, KernelMethod method);

}  // namespace ks
