// Tasks: class pairs relabelled in the order given, deterministic balanced subsets, and errors for absent or small classes.
// Loading is tested in test_loaders.cpp.
#include <doctest/doctest.h>

#include "datasets/task.h"

namespace ks {

static DataSplit toy_split() {
  DataSplit split;
  for (Dataset* d : {&split.train, &split.test}) {
    d->inputs = Tensor({12, 1});
    for (int n = 0; n < 12; ++n) {
      d->inputs[n] = n;
      d->labels.push_back(n % 4);  // 3 of each of classes 0..3
      d->source_indices.push_back(n);
    }
    d->class_names = {"a", "b", "c", "d"};
  }
  return split;
}

TEST_CASE("a pair: the first class is negative (0), the second positive (1); subsets are balanced and in file order") {
  const Task task = make_task(toy_split(), {{3, 1}, 4, 0});
  CHECK(task.binary());
  CHECK(task.outputs() == 1);
  CHECK(task.train.source_indices == std::vector<int64_t>{1, 3, 5, 7});
  CHECK(task.train.labels == std::vector<int>{1, 0, 1, 0});
  CHECK(task.test.size() == 6);
  CHECK(task.train.class_names == std::vector<std::string>{"d", "b"});
}

TEST_CASE("all classes, and clear errors") {
  CHECK(make_task(toy_split(), {{}, 0, 0}).class_count == 4);
  CHECK_THROWS_WITH(make_task(toy_split(), {{0, 7}, 0, 0}), doctest::Contains("class 7 does not exist"));
  CHECK_THROWS_WITH(make_task(toy_split(), {{0, 1}, 8, 0}), doctest::Contains("class 0 has 3 images in the training set"));
  CHECK(parse_classes("3,8") == std::vector<int>{3, 8});
  CHECK_THROWS_WITH(parse_classes("3,x"), doctest::Contains("'x'"));
  CHECK_THROWS_WITH(parse_classes("3,3"), doctest::Contains("twice"));
}

}  // namespace ks
