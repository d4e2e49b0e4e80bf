// Benchmark: the exact path kernel's cost as a ratio to the replayed training's own time, and how it scales with the
// test inputs M, the training steps T and the parameters P (MNIST 3 vs 8, ReLU MLPs; vgg:16 on CIFAR-10 with --vgg). Prints, never asserts.
#include <omp.h>

#include <cstring>

#include "bench/common.h"
#include "datasets/task.h"
#include "kernels/epk.h"
#include "nn/model.h"
#include "nn/train.h"

using namespace ks;

namespace {

struct Case {
  std::string spec;
  int64_t test_inputs, steps;
};

// Trains for `steps` SGD steps of batch 32 from θ_0 (seed 0), then times the EPK of the first M test inputs.
void run_case(const Task& task, const Shape& sample, const Case& c, int repeats) {
  const ModelOptions architecture{c.spec, sample, 1, InitKind::glorot_uniform, 0};
  auto model = build_model(architecture);
  const Parameters theta0 = initial_parameters(*model, architecture);
  TrainOptions training;
  training.epochs = (c.steps * 32 + task.train.size() - 1) / task.train.size();
  TrainResult trained = train(*model, theta0, task.train, task.test, training);
  if (static_cast<int64_t>(trained.steps.size()) < c.steps) throw std::runtime_error("bench_epk: not enough training steps");
  trained.steps.resize(static_cast<size_t>(c.steps));
  std::vector<int64_t> positions;
  for (int64_t m = 0; m < c.test_inputs; ++m) positions.push_back(m);
  const Tensor test = gather_inputs(task.test, positions);
  TrainingRecord record{&task.train, &trained.steps, 0.0, LossKind::logistic};
  EpkOptions options;
  options.kernels = {PathKernel::exact};
  options.keep_kernel = false;
  EpkResult result;
  std::vector<double> ratios;
  const bench::Timing t = bench::time_runs(repeats, [&] {
    result = exact_path_kernel(*model, theta0, test, record, options);
    ratios.push_back(result.seconds / result.training_seconds);
  });
  std::sort(ratios.begin(), ratios.end());
  const QuadratureReport& q = result.quadrature;
  std::printf("| %s | %lld | %lld | %lld | %.3f | %.3f | %.3f | %.4f | %.0f | %lld | %.1f | %.1f | %.1e |\n", c.spec.c_str(),
              static_cast<long long>(c.test_inputs), static_cast<long long>(c.steps), static_cast<long long>(model->parameter_count()),
              t.median, t.min, t.max, result.training_seconds, ratios[ratios.size() / 2], static_cast<long long>(q.nodes),
              static_cast<double>(q.pieces) / static_cast<double>(c.test_inputs * c.steps),
              1e3 * t.median / static_cast<double>(q.nodes), result.machines.front().max_rel_error);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  ks::keep_freed_memory();
  int repeats = 3;
  bool vgg = false;
  for (int a = 1; a < argc; ++a) {
    if (std::strcmp(argv[a], "--vgg") == 0) vgg = true;
    else repeats = std::atoi(argv[a]);
  }
  const auto root = bench::shared_datasets();
  std::printf("machine: %d threads; EPK (exact kernel only, no matrix kept) after T SGD steps of batch 32, on M test inputs\n", omp_get_max_threads());
  std::printf("| net | M | T | P | median s | min s | max s | training s | EPK / training | nodes | pieces per (input, step) | ms per node | max rel error |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const Task mnist = make_task(load_source({"mnist:" + (root / "mnist").string()}), {{3, 8}, 1024, 200});
  const Shape digit{1, 28, 28};
  // Scaling in M, then T, then P, each around mlp:512-512, M = 50, T = 32 (one epoch of 1,024 images).
  for (int64_t M : {25, 50, 100}) run_case(mnist, digit, {"mlp:512-512", M, 32}, repeats);
  for (int64_t T : {8, 16}) run_case(mnist, digit, {"mlp:512-512", 50, T}, repeats);
  for (const char* spec : {"mlp:128-128", "mlp:256-256", "mlp:1024-1024"}) run_case(mnist, digit, {spec, 50, 32}, repeats);
  if (vgg) {
    const Task cifar = make_task(load_source({"cifar10:" + (root / "cifar-10-batches-bin").string()}), {{1, 9}, 400, 50});
    for (int64_t M : {1, 2}) run_case(cifar, {3, 32, 32}, {"vgg:16", M, 4}, 1);
  }
  std::printf("peak memory: %.2f GB\n", bench::peak_memory_gb());
  return 0;
}
