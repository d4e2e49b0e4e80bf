// Benchmark: NTK Gram of mlp:512-512 on 1,000 MNIST images and of vgg:16 on 200 and 1,000 CIFAR-10 images, with wall time,
// the GEMM part's rate against the measured Eigen GEMM rate, and peak memory. Not a test: it prints, it does not assert.
#include <omp.h>

#include "bench/common.h"
#include "datasets/task.h"
#include "kernels/ntk.h"
#include "nn/model.h"
#include "nn/train.h"

using namespace ks;

static Tensor first(const Dataset& data, int64_t count) {
  std::vector<int64_t> positions;
  for (int64_t n = 0; n < count; ++n) positions.push_back(n);
  return gather_inputs(data, positions);
}

int main(int argc, char** argv) {
  ks::keep_freed_memory();
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 3;
  const int threads = omp_get_max_threads();
  const double gemm_core = bench::eigen_gemm_gflops();
  std::printf("machine: %d threads, Eigen float64 GEMM %.1f GFLOP/s per core (%.1f for all)\n", threads, gemm_core, gemm_core * threads);
  std::printf("| task | N | P | median s | min s | max s | GEMM GFLOP/s | fraction of GEMM rate | fwd+bwd s | bound s | ratio to bound |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  const auto root = bench::shared_datasets();

  const Task mnist = make_task(load_source({"mnist:" + (root / "mnist").string()}), {{3, 8}, 1000, 0});
  const Task cifar = make_task(load_source({"cifar10:" + (root / "cifar-10-batches-bin").string()}), {{1, 9}, 1000, 0});
  struct Case {
    const char* spec;
    const Task* task;
    Shape sample;
    int64_t count;
  };
  for (const Case& c : {Case{"mlp:512-512", &mnist, {1, 28, 28}, 1000}, Case{"vgg:16", &cifar, {3, 32, 32}, 200}, Case{"vgg:16", &cifar, {3, 32, 32}, 1000}}) {
    const ModelOptions architecture{c.spec, c.sample, 1, InitKind::glorot_uniform, 0};
    auto model = build_model(architecture);
    const Parameters theta = initial_parameters(*model, architecture);
    std::vector<Var> parameters;
    for (const Tensor& tensor : theta) parameters.push_back(parameter(tensor));
    const Tensor x = first(c.task->train, c.count);
    const auto methods = chosen_methods(*model, c.sample, KernelMethod::automatic);
    // GEMM work of the Jacobian path: N² · P_jacobian (symmetric: half), 2 flops each.
    int64_t jacobian_parameters = 0;
    size_t layer = 0;
    const std::vector<std::string> names = model->parameter_names();
    for (size_t k = 0; k < names.size(); ++k) {
      if (methods[layer] == KernelMethod::jacobian) jacobian_parameters += theta[k].numel();
      if (names[k].find("bias") != std::string::npos) ++layer;
    }
    const double gemm_flops = static_cast<double>(c.count) * static_cast<double>(c.count) * static_cast<double>(jacobian_parameters);
    const bench::Timing t = bench::time_runs(repeats, [&] { ntk_gram(*model, theta, x, nullptr); });
    // The bound of the issue: one batched forward+backward over the images, plus the Gram GEMM at the machine's rate.
    const bench::Timing pass = bench::time_runs(repeats, [&] {
      for (int64_t first_sample = 0; first_sample < c.count; first_sample += 32) {
        std::vector<int64_t> positions;
        for (int64_t n = first_sample; n < std::min<int64_t>(first_sample + 32, c.count); ++n) positions.push_back(n);
        Var loss = batch_loss(*model, parameters, gather_inputs(c.task->train, positions), gather_labels(c.task->train, positions), LossKind::logistic);
        backward(loss);
      }
    });
    const double bound = pass.median + (gemm_flops > 0 ? gemm_flops / (gemm_core * threads * 1e9) : 0.0);
    const double rate = gemm_flops / t.median / 1e9;
    std::printf("| NTK Gram %s | %lld | %lld | %.3f | %.3f | %.3f | %.1f | %.2f | %.3f | %.3f | %.2f |\n", c.spec,
                static_cast<long long>(c.count), static_cast<long long>(model->parameter_count()), t.median, t.min, t.max, rate,
                rate / (gemm_core * threads), pass.median, bound, t.median / bound);
  }
  std::printf("peak memory: %.2f GB\n", bench::peak_memory_gb());
  return 0;
}
