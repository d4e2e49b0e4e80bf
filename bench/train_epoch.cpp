// Benchmark: one training epoch of vgg:16 on 2,000 CIFAR-10 images (batch 32) and of mlp:512-512 on MNIST 3 vs 8, in images/s.
// Not a test: it prints, it does not assert.
#include <omp.h>

#include "autodiff/random.h"
#include "bench/common.h"
#include "datasets/task.h"
#include "nn/model.h"
#include "nn/train.h"

using namespace ks;

int main(int argc, char** argv) {
  ks::keep_freed_memory();
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 3;
  const auto root = bench::shared_datasets();
  const Task cifar = make_task(load_source({"cifar10:" + (root / "cifar-10-batches-bin").string()}), {{}, 2000, 0});
  const Task mnist = make_task(load_source({"mnist:" + (root / "mnist").string()}), {{3, 8}, 0, 0});
  std::printf("threads: %d\n| task | images | median s | min s | max s | images/s |\n|---|---|---|---|---|---|\n", omp_get_max_threads());
  struct Case {
    const char* spec;
    const Task* task;
  };
  for (const Case& c : {Case{"vgg:16", &cifar}, Case{"mlp:512-512", &mnist}}) {
    Shape sample = c.task->train.inputs.shape();
    sample.erase(sample.begin());
    const bench::Timing t = bench::time_runs(repeats, [&] {
      const ModelOptions architecture{c.spec, sample, c.task->outputs(), InitKind::glorot_uniform, 0};
      auto model = build_model(architecture);
      Parameters theta = initial_parameters(*model, architecture);
      TrainOptions options;
      options.epochs = 1;
      options.batch_size = 32;
      options.loss = default_loss(c.task->outputs());
      const int64_t N = c.task->train.size();
      const std::vector<int64_t> order = Rng(0).permutation(N);
      for (int64_t first = 0; first < N; first += 32) {
        std::vector<int64_t> batch(order.begin() + first, order.begin() + std::min<int64_t>(first + 32, N));
        sgd_step(*model, theta, c.task->train, batch, 0.01, 0.0, options.loss, first / 32);
      }
    });
    std::printf("| epoch %s | %lld | %.2f | %.2f | %.2f | %.0f |\n", c.spec, static_cast<long long>(c.task->train.size()), t.median, t.min,
                t.max, static_cast<double>(c.task->train.size()) / t.median);
  }
  return 0;
}
