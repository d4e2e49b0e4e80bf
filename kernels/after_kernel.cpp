// The after-kernel protocol: Grams at θ_0 and θ_T, hard-margin SVMs, accuracies. study, demo and the example call it;
// they add their own tables and metrics on top.
#include "kernels/after_kernel.h"

namespace ks {

namespace {

// One side's Grams (train × train, test × train) at θ; its SVM comes after, with the other side's.
AfterKernelSide side_grams(const Sequential& model, const Parameters& theta, bool after, const Dataset& train, const Dataset& test,
                           const AfterKernelOptions& options) {
  AfterKernelSide side;
  side.after = after;
  const std::string name = after ? "after kernel" : "initial NTK";
  auto gram = [&](const Tensor& rows, const Tensor* columns, const std::string& label) {
    NtkOptions ntk;
    ntk.method = options.method;
    ntk.memory_budget_bytes = options.memory_budget_bytes;
    if (options.progress) ntk.progress = options.progress(name + " " + label);
    return ntk_gram(model, theta, rows, columns, ntk);
  };
  side.train_gram = gram(train.inputs, nullptr, "train x train");
  side.test_gram = gram(test.inputs, &train.inputs, "test x train");
  return side;
}

}  // namespace

AfterKernelResult after_kernel_protocol(const Sequential& model, const Parameters& theta0, const Parameters& thetaT, const Dataset& train,
                                        const Dataset& test, LossKind loss, const AfterKernelOptions& options) {
  AfterKernelResult result{side_grams(model, theta0, false, train, test, options), side_grams(model, thetaT, true, train, test, options)};
  // The two SVMs at once: libsvm runs on one thread, and at 10⁴ points each takes minutes.
  const std::vector<SvmModel> svms = fit_svms({&result.initial.train_gram, &result.after.train_gram}, train.labels, options.svm);
  for (AfterKernelSide* side : {&result.initial, &result.after}) {
    side->svm = svms[side->after ? 1 : 0];
    side->svm_accuracy = svm_accuracy(side->svm, side->test_gram, test.labels);
    side->network_accuracy = evaluate(model, side->after ? thetaT : theta0, test, loss).accuracy;
  }
  return result;
}

}  // namespace ks
