// Helpers shared by the tests: random tensors, relative errors, finite differences, and paths to the shared data.
// Not a test framework: doctest is; these only keep the test files short.
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <filesystem>
#include <functional>
#include <string>

#include "autodiff/graph.h"
#include "autodiff/random.h"
#include "datasets/dataset.h"
#include "nn/model.h"

namespace ks::test {

inline Tensor random_tensor(const Shape& shape, Rng& rng, double low = -1.0, double high = 1.0) {
  Tensor t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(low, high);
  return t;
}

// A small network for kernel tests: spec, one sample's shape, outputs, initialisation.
struct NetCase {
  std::string spec;
  Shape sample;
  int64_t outputs;
  InitKind init;
};

// A fresh folder under the temporary directory, removed with everything in it when the test ends.
struct ScratchDirectory {
  std::filesystem::path dir;
  explicit ScratchDirectory(const std::string& name)
      : dir(std::filesystem::temp_directory_path() / ("kernelscope-" + name + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~ScratchDirectory() { std::filesystem::remove_all(dir); }
};

// A network's structure and its θ_0, as build_model and initial_parameters give them.
// count random images (1, size, size), labelled by whether one pixel is above 1/2.
inline Dataset pixel_threshold_dataset(Rng& rng, int count, int64_t size, int64_t pixel) {
  Dataset data;
  data.inputs = random_tensor({count, 1, size, size}, rng, 0.0, 1.0);
  for (int n = 0; n < count; ++n) {
    data.labels.push_back(data.inputs[n * size * size + pixel] > 0.5 ? 1 : 0);
    data.source_indices.push_back(n);
  }
  return data;
}

struct Network {
  std::unique_ptr<Sequential> model;
  Parameters theta;
};
inline Network network(const ModelOptions& options) {
  Network net;
  net.model = build_model(options);
  net.theta = initial_parameters(*net.model, options);
  return net;
}

// θ as tape leaves (copies) for a forward and backward on the tape.
inline std::vector<Var> parameter_vars(const Parameters& theta) {
  std::vector<Var> vars;
  for (const Tensor& tensor : theta) vars.push_back(parameter(tensor));
  return vars;
}

// count random inputs of a sample shape, uniform in [low, high).
inline Tensor random_inputs(const Shape& sample, int64_t count, Rng& rng, double low = -1.0, double high = 1.0) {
  Shape shape = sample;
  shape.insert(shape.begin(), count);
  return random_tensor(shape, rng, low, high);
}

// count images of shape `sample` with pixels uniform in [0, 1) and label n % classes.
inline Dataset random_image_dataset(const Shape& sample, int64_t count, int classes, Rng& rng) {
  Dataset data;
  data.inputs = random_inputs(sample, count, rng, 0.0, 1.0);
  for (int64_t n = 0; n < count; ++n) {
    data.labels.push_back(static_cast<int>(n % classes));
    data.source_indices.push_back(n);
  }
  return data;
}

// Norm-wise relative difference ‖a − b‖ / max(‖a‖, ‖b‖); 0 when both are zero.
inline double relative_error(const Tensor& a, const Tensor& b) {
  const double scale = std::max(a.vector().norm(), b.vector().norm());
  return scale == 0.0 ? 0.0 : (a.vector() - b.vector()).norm() / scale;
}

inline bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(&a.data()[i], &b.data()[i], sizeof(double)) != 0) return false;
  return true;
}

// The shared real data folder (../shared/datasets from the source tree), or empty when absent.
inline std::filesystem::path shared_datasets() {
  if (const char* env = std::getenv("KERNELSCOPE_DATA")) return env;
  std::filesystem::path path = std::filesystem::path(KERNELSCOPE_SOURCE_DIR) / ".." / "shared" / "datasets";
  return std::filesystem::exists(path) ? std::filesystem::canonical(path) : std::filesystem::path();
}

// Runs the kernelscope program with arguments; its exit code and everything it printed (stdout and stderr).
struct CommandResult {
  int exit_code;
  std::string output;
};
inline CommandResult run_cli(const std::string& arguments) {
  const std::filesystem::path log = std::filesystem::temp_directory_path() / ("kernelscope-cli-" + std::to_string(getpid()) + ".log");
  const int status = std::system((std::string(KERNELSCOPE_CLI_PATH) + " " + arguments + " > " + log.string() + " 2>&1").c_str());
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  std::filesystem::remove(log);
  return {WEXITSTATUS(status), text.str()};
}

}  // namespace ks::test
