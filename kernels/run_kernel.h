// A kernel of a trained run as `kernelscope kernel` and the Python module compute it: the parameters a kind names
// (θ_0, θ_T, a replayed θ_S), the first samples of the training or test set, the tangent or conjugate Gram. It writes nothing.
#pragma once

#include <functional>
#include <string>

#include "kernels/ntk.h"
#include "nn/run.h"

namespace ks {

struct RunKernelOptions {
  std::string kind = "ntk-init";  // ntk-init, after, conjugate-init, conjugate-after, or step:S (the NTK at θ_S)
  std::string rows = "train", cols = "train";
  int64_t limit = 0;  // the first `limit` samples of each set (0: all)
  KernelMethod method = KernelMethod::automatic;
  bool trace_outputs = false, cosine = false;
  double memory_budget_bytes = NtkOptions{}.memory_budget_bytes;  // the Gram's resident per-sample gradients
  std::function<void(int64_t done, int64_t total)> progress;  // the tangent Gram's blocks
};

// Throws std::invalid_argument naming the option (as the program's flag: --kind, --rows, --cols) and its value.
Tensor run_kernel(const Run& run, const RunKernelOptions& options);

}  // namespace ks
