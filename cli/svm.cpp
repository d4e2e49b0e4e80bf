// `kernelscope svm`: a hard-margin SVM on kernels written by `kernelscope kernel` (any kind: init, after, conjugate, step:S),
// with the labels of the run they came from. The SVM is kernels/svm.h's; this file reads, checks sizes and reports.
#include <cstdio>
#include <memory>

#include "cli/checks.h"
#include "cli/commands.h"
#include "datasets/npy.h"
#include "kernels/svm.h"
#include "nn/run.h"

namespace ks::cli {

namespace {

struct SvmCommandOptions {
  std::string run, train_kernel, test_kernel;
  double c = 1e6;
  bool scale_kernel = false;
};

// The first n labels of a set: kernels written with --limit n cover the first n samples.
std::vector<int> first_labels(const Dataset& data, int64_t n, const std::string& file) {
  if (n > data.size())
    throw std::runtime_error(file + ": " + std::to_string(n) + " rows but the run's set has only " + std::to_string(data.size()) + " samples");
  return std::vector<int>(data.labels.begin(), data.labels.begin() + n);
}

int run_svm(const SvmCommandOptions& o) {
  const Run run = load_run(o.run);
  if (!run.task.binary()) throw std::runtime_error(o.run + ": the SVM takes two classes; this run has " + std::to_string(run.task.class_count));
  const Tensor train = read_npy(o.train_kernel);
  if (train.rank() != 2) throw ShapeError(o.train_kernel + ": expected a 2-D kernel, got " + shape_string(train.shape()));
  SvmOptions options;
  options.C = o.c;
  options.scale_by_mean_norm = o.scale_kernel;
  const SvmModel model = [&] {
    try {
      return fit_svm(train, first_labels(run.task.train, train.dim(0), o.train_kernel), options);
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(o.train_kernel + ": " + error.what());
    }
  }();
  if (!model.converged)
    std::printf("WARNING: libsvm stopped at its iteration limit without converging; the numbers below are of an unconverged solution\n");
  std::printf("SVM on %s (%lld training points, C = %g%s): %lld support vectors, training margin %.4g, %s\n", o.train_kernel.c_str(),
              static_cast<long long>(train.dim(0)), o.c, o.scale_kernel ? ", scaled by the mean training norm" : "",
              static_cast<long long>(model.support_vectors), model.margin,
              model.separated() ? "the training set is separated" : ("the training set is NOT separated (" + std::to_string(model.training_errors) + " errors)").c_str());
  if (!o.test_kernel.empty()) {
    const Tensor test = read_npy(o.test_kernel);
    if (test.rank() != 2 || test.dim(1) != train.dim(0))
      throw ShapeError(o.test_kernel + ": expected (M, " + std::to_string(train.dim(0)) + ") test x train, got " + shape_string(test.shape()));
    double accuracy = 0.0;
    try {
      accuracy = svm_accuracy(model, test, first_labels(run.task.test, test.dim(0), o.test_kernel));
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(o.test_kernel + ": " + error.what());
    }
    std::printf("test accuracy on %lld points: %.2f%%\n", static_cast<long long>(test.dim(0)), 100 * accuracy);
  }
  return 0;
}

}  // namespace

Command register_svm(CLI::App& app) {
  auto o = std::make_shared<SvmCommandOptions>();
  CLI::App* cmd = app.add_subcommand("svm", "Hard-margin SVM (libsvm) on kernels written by `kernelscope kernel`, with the run's labels");
  cmd->add_option("--run", o->run, "Run directory the kernels were computed from (for the labels)")->required();
  cmd->add_option("--train-kernel", o->train_kernel, "(N, N) train x train kernel .npy")->required();
  cmd->add_option("--test-kernel", o->test_kernel, "(M, N) test x train kernel .npy: report test accuracy");
  cmd->add_option("--c", o->c, "C: large for a hard margin")->check(finite_number(false))->capture_default_str();
  cmd->add_flag("--scale-kernel", o->scale_kernel, "Divide the kernel by its mean training K(x, x) first (as Long 2021)");
  return {cmd, [o] { return run_svm(*o); }};
}

}  // namespace ks::cli
