// Example: the after kernel (P. M. Long, 2021) on an MNIST pair. Train a ReLU network, then fit hard-margin SVMs on its
// tangent kernel at initialisation and after training, and compare. Usage: example_after_kernel_mnist [MNIST_DIR] (default
// ../shared/datasets/mnist). It writes no files; `kernelscope study` runs the whole protocol.
#include <cstdio>
#include <string>

#include "datasets/loaders.h"
#include "datasets/task.h"
#include "kernels/metrics.h"
#include "kernels/ntk.h"
#include "kernels/svm.h"
#include "nn/model.h"
#include "nn/train.h"

int main(int argc, char** argv) {
  using namespace ks;
  try {
    // 1. MNIST 3 vs 8: 500 training and 300 test images, balanced. Label 0 is the digit 3, label 1 the digit 8.
    SourceOptions source;
    source.source = "mnist:" + std::string(argc > 1 ? argv[1] : "../shared/datasets/mnist");
    const Task task = make_task(load_source(source), {{3, 8}, 500, 300});

    // 2. The network, and its parameters at initialisation, kept to compute the initial kernel later.
    const auto model = build_model({"mlp:256-256", {1, 28, 28}, 1, InitKind::glorot_uniform, /*seed=*/0});
    const std::vector<Tensor> theta0 = parameter_values(*model);
    TrainOptions options;
    options.epochs = 5;
    const TrainResult trained = train(*model, task.train, task.test, options);
    const std::vector<Tensor> thetaT = parameter_values(*model);
    std::printf("network: test accuracy %.1f%%\n", 100 * trained.metrics.back().test_accuracy);

    // 3. The tangent kernel K(x, x') = ⟨∇θ f(x), ∇θ f(x')⟩ at θ_0 and at θ_T, and an SVM on each.
    Tensor grams[2];
    for (int stage = 0; stage < 2; ++stage) {
      set_parameter_values(*model, stage == 0 ? theta0 : thetaT);
      grams[stage] = ntk_gram(*model, task.train.inputs, nullptr);                         // (train, train)
      const Tensor test_gram = ntk_gram(*model, task.test.inputs, &task.train.inputs);  // (test, train)
      const SvmModel svm = fit_svm(grams[stage], task.train.labels);
      std::printf("SVM on the %s kernel: test accuracy %.1f%%, %lld support vectors, margin %.3g%s\n", stage == 0 ? "initial" : "after ",
                  100 * svm_accuracy(svm, test_gram, task.test.labels), static_cast<long long>(svm.support_vectors), svm.margin,
                  svm.separated() ? "" : " (training set not separated)");
    }

    // 4. How much did the kernel move? Long's observation: training changes it, and aligns it with the labels.
    std::printf("alignment between the initial and the after kernel: %.4f\n", kernel_alignment(grams[0], grams[1]));
    std::printf("target alignment y'Ky/(|K| |y|^2), initial -> after: %.4f -> %.4f\n", target_alignment(grams[0], task.train.labels),
                target_alignment(grams[1], task.train.labels));
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
}
