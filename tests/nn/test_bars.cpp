// The accuracy bars on real data: mlp:512-512 on MNIST 3 vs 8 and vgg:16 on CIFAR-10 automobile vs truck.
// They read ../shared/datasets and are skipped, saying so, when it is absent.
#include <doctest/doctest.h>

#include <algorithm>

#include "nn/model.h"
#include "nn/train.h"
#include "datasets/task.h"
#include "tests/helpers.h"

namespace ks {

TEST_SUITE("no-sanitize") {

TEST_CASE("mlp:512-512 on MNIST 3 vs 8 reaches at least 94% test accuracy") {
  const auto root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets is absent");
    return;
  }
  const DataSplit split = load_source({"mnist:" + (root / "mnist").string()});
  const Task task = make_task(split, {{3, 8}, 0, 1000});
  CHECK(task.train.size() == 1976);
  CHECK(task.test.size() == 1000);
  // Three seeds: the median must reach the bar (single runs vary by about a point, as PyTorch's do).
  std::vector<double> accuracies;
  for (uint64_t seed : {0, 1, 2}) {
    const test::Network network_ = test::network({"mlp:512-512", {1, 28, 28}, 1, InitKind::glorot_uniform, seed});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    TrainOptions options;
    options.epochs = 5;
    options.batch_size = 32;
    options.learning_rate = 0.05;
    options.seed = seed;
    accuracies.push_back(train(*model, theta, task.train, task.test, options).metrics.back().test_accuracy);
    MESSAGE("seed " << seed << ": test accuracy " << accuracies.back());
  }
  std::sort(accuracies.begin(), accuracies.end());
  CHECK(accuracies[1] >= 0.94);
  CHECK(accuracies[0] >= 0.92);
}

TEST_CASE("vgg:16 on CIFAR-10 automobile vs truck is well above chance") {
  const auto root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets is absent");
    return;
  }
  const DataSplit split = load_source({"cifar10:" + (root / "cifar-10-batches-bin").string()});
  const Task task = make_task(split, {{1, 9}, 800, 180});
  const test::Network network_ = test::network({"vgg:16", {3, 32, 32}, 1, InitKind::glorot_uniform, 0});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  TrainOptions options;
  options.epochs = 4;
  options.batch_size = 32;
  options.learning_rate = 0.05;
  const double accuracy = train(*model, theta, task.train, task.test, options).metrics.back().test_accuracy;
  MESSAGE("vgg:16 automobile vs truck test accuracy " << accuracy);
  CHECK(accuracy >= 0.65);
}

}

}  // namespace ks
