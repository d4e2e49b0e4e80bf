// Example: the after kernel (P. M. Long, 2021) on an MNIST pair. Train a ReLU network, then fit hard-margin SVMs on its
// tangent kernel at initialisation and after training, and compare. Usage: example_after_kernel_mnist [MNIST_DIR] (default
// ../shared/datasets/mnist). It writes no files; `kernelscope study` runs the whole protocol.
#include <cstdio>
#include <string>

#include "datasets/loaders.h"
#include "datasets/task.h"
#include "kernels/metrics.h"
#include "kernels/after_kernel.h"
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
    const ModelOptions architecture{"mlp:256-256", {1, 28, 28}, 1, InitKind::glorot_uniform, /*seed=*/0};
    const auto model = build_model(architecture);
    const Parameters theta0 = initial_parameters(*model, architecture);
    TrainOptions options;
    options.epochs = 5;
    const TrainResult trained = train(*model, theta0, task.train, task.test, options);
    std::printf("network: test accuracy %.1f%%\n", 100 * trained.metrics.back().test_accuracy);

    // 3. The tangent kernel K(x, x') = ⟨∇θ f(x), ∇θ f(x')⟩ at θ_0 and at θ_T, and a hard-margin SVM on each.
    const AfterKernelResult protocol = after_kernel_protocol(*model, theta0, trained.final_parameters, task.train, task.test, options.loss);
    Tensor grams[2];
    for (const AfterKernelSide* side : {&protocol.initial, &protocol.after}) {
      grams[side->after] = side->train_gram;  // (train, train)
      std::printf("SVM on the %s kernel: test accuracy %.1f%%, %lld support vectors, margin %.3g%s\n", side->after ? "after " : "initial",
                  100 * side->svm_accuracy, static_cast<long long>(side->svm.support_vectors), side->svm.margin,
                  side->svm.separated() ? "" : " (training set not separated)");
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
