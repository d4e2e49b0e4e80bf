// Long's after-kernel protocol (P. M. Long, 2021) as one library call: the tangent kernel at θ_0 and at θ_T on a
// training and a test set, a hard-margin SVM on each, and its test accuracy beside the network's. It trains nothing.
#pragma once

#include <functional>
#include <string>

#include "datasets/dataset.h"
#include "kernels/ntk.h"
#include "kernels/svm.h"
#include "nn/train.h"

namespace ks {

struct AfterKernelOptions {
  KernelMethod method = KernelMethod::automatic;
  double memory_budget_bytes = NtkOptions{}.memory_budget_bytes;  // each Gram's resident per-sample gradients
  SvmOptions svm;
  // One call per Gram: its label ("initial NTK train x train", ...) and a progress callback for it (may be empty).
  std::function<std::function<void(int64_t, int64_t)>(const std::string& label)> progress;
};

// One side of the protocol: θ_0 ("initial NTK") or θ_T ("after kernel").
struct AfterKernelSide {
  bool after = false;
  Tensor train_gram, test_gram;  // (N, N), (M, N)
  SvmModel svm;
  double svm_accuracy = 0.0;      // the SVM's on the test set
  double network_accuracy = 0.0;  // the network's own at that θ
};
struct AfterKernelResult {
  AfterKernelSide initial, after;
};

AfterKernelResult after_kernel_protocol(const Sequential& model, const Parameters& theta0, const Parameters& thetaT,
                                        const Dataset& train, const Dataset& test, LossKind loss,
                                        const AfterKernelOptions& options = {});

}  // namespace ks
