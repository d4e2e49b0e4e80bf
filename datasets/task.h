// Tasks: which classes (a binary pair, a subset, or all), relabelled in the order listed, with deterministic balanced subsampling.
// It does not load files (loaders.h) nor transform images.
#pragma once

#include <string>
#include <vector>

#include "datasets/loaders.h"

namespace ks {

struct TaskOptions {
  std::vector<int> classes;  // source class ids; empty = all. For a pair, the first is the negative class (label 0).
  int64_t train_size = 0;    // 0 = every sample of those classes
  int64_t test_size = 0;
};

struct Task {
  Dataset train, test;  // labels 0..k-1 in the order of TaskOptions::classes
  int64_t class_count = 0;
  bool binary() const { return class_count == 2; }
  int64_t outputs() const { return binary() ? 1 : class_count; }
};

std::vector<int> parse_classes(const std::string& text);  // "3,8" or "all" (empty)
// Throws std::runtime_error naming the class and the split when a class is absent or too small for the size asked.
Task make_task(const DataSplit& split, const TaskOptions& options);

}  // namespace ks
