// The built-in 2D toy sets (two moons, two spirals) for the demo and the tests, and Dataset::subset.
// They are not a benchmark: small, seeded and separable by a small network.
#include <cmath>
#include <stdexcept>

#include "autodiff/random.h"
#include "autodiff/math.h"
#include "datasets/dataset.h"

namespace ks {

Dataset Dataset::subset(const std::vector<int64_t>& positions) const {
  Dataset out;
  const int64_t row = size() ? inputs.numel() / size() : 0;
  Shape shape = inputs.shape();
  shape[0] = static_cast<int64_t>(positions.size());
  out.inputs = Tensor(shape);
  for (size_t k = 0; k < positions.size(); ++k) {
    const int64_t p = positions[k];
    if (p < 0 || p >= size())
      throw std::out_of_range("Dataset::subset: position " + std::to_string(p) + " outside [0, " +
                              std::to_string(size()) + ")");
    std::copy_n(inputs.data() + p * row, row, out.inputs.data() + static_cast<int64_t>(k) * row);
    out.labels.push_back(labels[static_cast<size_t>(p)]);
    out.source_indices.push_back(source_indices[static_cast<size_t>(p)]);
  }
  out.class_names = class_names;
  return out;
}

Dataset make_toy_dataset(const ToyOptions& options) {
  if (options.kind != "moons" && options.kind != "spirals")
    throw std::invalid_argument("toy dataset: unknown kind '" + options.kind + "' (use moons or spirals)");
  if (options.count < 2) throw std::invalid_argument("toy dataset: need at least 2 points");
  Rng rng(options.seed);
  Dataset data;
  data.inputs = Tensor({options.count, 2});
  data.class_names = {"0", "1"};
  const double pi = 3.14159265358979323846;
  for (int64_t n = 0; n < options.count; ++n) {
    const int label = static_cast<int>(n % 2);
    double x, y;
    if (options.kind == "moons") {
      const double angle = pi * rng.uniform();
      x = label ? 1.0 - math::cos(angle) : math::cos(angle);
      y = label ? 0.5 - math::sin(angle) : math::sin(angle);
    } else {
      const double t = 0.15 + 0.85 * rng.uniform();  // skip the tangled centre
      const double angle = 3.0 * pi * t + label * pi;
      x = t * math::cos(angle);
      y = t * math::sin(angle);
    }
    data.inputs[2 * n] = x + options.noise * rng.normal();
    data.inputs[2 * n + 1] = y + options.noise * rng.normal();
    data.labels.push_back(label);
    data.source_indices.push_back(n);
  }
  return data;
}

}  // namespace ks
