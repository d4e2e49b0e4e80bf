// The after-kernel protocol: Grams at θ_0 and θ_T, hard-margin SVMs, accuracies. study, demo and the example call it;
// they add their own tables and metrics on top.
#include "kernels/after_kernel.h"

namespace ks {

namespace {

AfterKernelSide one_side(const Sequential& model, const Parameters& theta, bool after, const Dataset& train, const Dataset& test, LossKind loss,
                         const AfterKernelOptions& options) {
  AfterKernelSide side;
  side.after = after;
  const std::string name = after ? "after kernel" : "initial NTK";
  auto gram = [&](const Tensor& rows, const Tensor* columns, const std::string& label) {
    NtkOptions ntk;
    ntk.method = options.method;
    if (options.progress) ntk.progress = options.progress(name + " " + label);
    return ntk_gram(model, theta, rows, columns, ntk);
  };
  side.train_gram = gram(train.inputs, nullptr, "train x train");
  side.test_gram = gram(test.inputs, &train.inputs, "test x train");
  side.svm = fit_svm(side.train_gram, train.labels, options.svm);
  side.svm_accuracy = svm_accuracy(side.svm, side.test_gram, test.labels);
  side.network_accuracy = evaluate(model, theta, test, loss).accuracy;
  return side;
}

}  // namespace

AfterKernelResult after_kernel_protocol(const Sequential& model, const Parameters& theta0, const Parameters& thetaT, const Dataset& train,
                                        const Dataset& test, LossKind loss, const AfterKernelOptions& options) {
  return {one_side(model, theta0, false, train, test, loss, options), one_side(model, thetaT, true, train, test, loss, options)};
}

}  // namespace ks
