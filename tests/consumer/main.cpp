// The README's library example: train a small ReLU net on two moons, then rewrite it exactly as a kernel machine and
// compare with the NTK at initialisation. Exit code 1 when the exact path kernel does not reproduce the network.
#include <kernelscope.h>

#include <cstdio>

int main() {
  using namespace ks;
  const Dataset train_set = make_toy_dataset({"moons", 200, 0.1, /*seed=*/0});
  const Dataset test_set = make_toy_dataset({"moons", 50, 0.1, /*seed=*/1});

  const ModelOptions architecture{"mlp:16-16", {2}, 1, InitKind::he_normal, /*seed=*/0};
  const auto model = build_model(architecture);                      // structure only
  const Parameters theta0 = initial_parameters(*model, architecture);  // θ is a value you pass around
  TrainOptions options;
  options.epochs = 3;
  options.learning_rate = 0.3;
  const TrainResult trained = train(*model, theta0, train_set, test_set, options);

  const Tensor gram = ntk_gram(*model, theta0, test_set.inputs, &train_set.inputs);  // (50, 200), NTK at θ_0
  const TrainingRecord record{&train_set, &trained.steps, options.weight_decay, options.loss};
  const EpkResult epk = exact_path_kernel(*model, theta0, test_set.inputs, record);
  std::printf("NTK at θ_0: %lld x %lld; test accuracy %.1f%%\n", static_cast<long long>(gram.dim(0)),
              static_cast<long long>(gram.dim(1)), 100 * trained.metrics.back().test_accuracy);
  for (const KernelMachine& machine : epk.machines)
    std::printf("%-9s max relative error %.1e, decisions %s\n", path_kernel_name(machine.kind).c_str(), machine.max_rel_error,
                machine.decisions_agree ? "agree" : "differ");
  return epk.machines.front().max_rel_error < 1e-10 ? 0 : 1;
}
