// Dataset: inputs, integer labels and where each sample came from, as every loader and task returns them.
// It does not load files (loaders.cpp does) nor pick tasks (task.cpp does).
#pragma once

#include <string>
#include <vector>

#include "autodiff/tensor.h"

namespace ks {

struct Dataset {
  Tensor inputs;                        // (N, C, H, W) for images, (N, D) for vectors; pixels in [0, 1]
  std::vector<int> labels;              // (N), in [0, classes)
  std::vector<int64_t> source_indices;  // (N) positions in the source files as read
  std::vector<std::string> class_names;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  // The rows at `positions`, in that order.
  Dataset subset(const std::vector<int64_t>& positions) const;
};

// Two interleaved spirals or two moons in 2D, labels 0/1 alternating, seeded.
struct ToyOptions {
  std::string kind = "moons";  // "moons" or "spirals"
  int64_t count = 200;
  double noise = 0.1;
  uint64_t seed = 0;
};
Dataset make_toy_dataset(const ToyOptions& options);

}  // namespace ks
