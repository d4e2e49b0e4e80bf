// `kernelscope demo`: the README's first command. Trains small ReLU networks on a 2D toy set and on a real image pair
// (Fashion-MNIST from Debian, or MNIST with --data), shows that the exact path kernel machine reproduces every output while
// the NTK and Domingos' kernel do not, and compares SVMs on the initial and the after kernel. It writes no files.
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "datasets/loaders.h"
#include "datasets/task.h"
#include "kernels/epk.h"
#include "kernels/svm.h"
#include "nn/model.h"
#include "nn/train.h"

namespace ks::cli {

namespace {

struct DemoOptions {
  std::string data = "fashion:";  // Debian's dataset-fashion-mnist
  std::string classes = "7,9";    // sneaker vs ankle boot
  uint64_t seed = 0;
};

void print_machines(const EpkResult& result, int64_t inputs) {
  std::printf("    %-36s %14s %14s %18s\n", "kernel machine", "max abs error", "max rel error", "decisions agree");
  const char* names[] = {"exact path kernel (Bell et al. 2023)", "NTK at initialisation", "after kernel (NTK at the end)", "Domingos' discrete path kernel"};
  for (const KernelMachine& m : result.machines) {
    int64_t agreeing = 0;
    const int64_t C = result.outputs;
    for (int64_t n = 0; n < inputs; ++n) agreeing += decision(m.outputs.data() + n * C, C) == decision(result.final.data() + n * C, C);
    std::printf("    %-36s %14.2e %14.2e %11lld of %lld\n", names[static_cast<int>(m.kind)], m.max_abs_error, m.max_rel_error,
                static_cast<long long>(agreeing), static_cast<long long>(inputs));
  }
  std::printf("    (%lld pieces between ReLU switches, %lld Gauss-Legendre nodes, in %.1f s)\n",
              static_cast<long long>(result.quadrature.pieces), static_cast<long long>(result.quadrature.nodes), result.seconds);
}

// Trains, then rewrites the network as kernel machines on the first test inputs.
EpkResult train_and_explain(Sequential& model, const Task& task, const TrainOptions& training, int64_t test_inputs) {
  const std::vector<Tensor> theta0 = parameter_values(model);
  const TrainResult trained = train(model, task.train, task.test, training);
  std::printf("    trained %lld SGD steps: test accuracy %.1f%%\n", static_cast<long long>(trained.steps.size()), 100 * trained.metrics.back().test_accuracy);
  std::vector<int64_t> first;
  for (int64_t n = 0; n < std::min(test_inputs, task.test.size()); ++n) first.push_back(n);
  set_parameter_values(model, theta0);
  TrainingRecord record{&task.train, &trained.steps, training.weight_decay, training.loss};
  EpkOptions options;
  options.keep_kernel = false;
  return exact_path_kernel(model, gather_inputs(task.test, first), record, options);
}

int run_demo(const DemoOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  std::printf("kernelscope demo: a trained network is exactly a kernel machine.\n\n");

  std::printf("1. Two moons (2D toy set): a 2-32-32-1 ReLU network, mini-batch SGD, 10 epochs\n");
  Dataset moons = make_toy_dataset({"moons", 600, 0.15, o.seed});
  std::vector<int64_t> train_positions, test_positions;
  for (int64_t n = 0; n < moons.size(); ++n) (n < 400 ? train_positions : test_positions).push_back(n);
  Task toy;
  toy.train = moons.subset(train_positions);
  toy.test = moons.subset(test_positions);
  toy.class_count = 2;
  auto small = build_model({"mlp:32-32", {2}, 1, InitKind::he_normal, o.seed});
  TrainOptions toy_training;
  toy_training.epochs = 10;
  toy_training.batch_size = 40;
  toy_training.learning_rate = 0.3;
  toy_training.seed = o.seed;
  print_machines(train_and_explain(*small, toy, toy_training, toy.test.size()), toy.test.size());

  std::printf("\n2. Real images: %s classes %s, a 784-128-128-1 ReLU network, 2 epochs\n", o.data.c_str(), o.classes.c_str());
  SourceOptions source;
  source.source = o.data;
  const Task images = make_task(load_source(source), {parse_classes(o.classes), 600, 200});
  Shape sample = images.train.inputs.shape();
  sample.erase(sample.begin());
  auto network = build_model({"mlp:128-128", sample, 1, InitKind::glorot_uniform, o.seed});
  TrainOptions image_training;
  image_training.epochs = 2;
  image_training.seed = o.seed;
  const std::vector<Tensor> theta0 = parameter_values(*network);
  print_machines(train_and_explain(*network, images, image_training, 40), 40);
  const std::vector<Tensor> thetaT = parameter_values(*network);

  std::printf("\n3. The after kernel (Long 2021): hard-margin SVMs on the network's tangent kernel, same 600 training images\n");
  for (bool after : {false, true}) {
    set_parameter_values(*network, after ? thetaT : theta0);
    const Tensor train_gram = ntk_gram(*network, images.train.inputs, nullptr);
    const Tensor test_gram = ntk_gram(*network, images.test.inputs, &images.train.inputs);
    const SvmModel svm = fit_svm(train_gram, images.train.labels);
    std::printf("    %-26s test accuracy %.1f%%, %lld support vectors%s\n", after ? "NTK after training:" : "NTK at initialisation:",
                100 * svm_accuracy(svm, test_gram, images.test.labels), static_cast<long long>(svm.support_vectors),
                svm.separated() ? "" : " (training set NOT separated)");
  }
  std::printf("\nDone in %.0f s. Next: `kernelscope train`, then `kernelscope epk` and `kernelscope study` (see README.md).\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return 0;
}

}  // namespace

Command register_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand("demo", "Show a trained network rewritten exactly as a kernel machine, beside the NTK, Domingos' kernel and after-kernel SVMs");
  demo->add_option("--data", o->data, "Image source: fashion: (Debian's Fashion-MNIST) or mnist:DIR")->capture_default_str();
  demo->add_option("--classes", o->classes, "The image pair (first = negative)")->capture_default_str();
  demo->add_option("--seed", o->seed, "Seed for data, initialisation and shuffling")->capture_default_str();
  return {demo, [o] { return run_demo(*o); }};
}

}  // namespace ks::cli
