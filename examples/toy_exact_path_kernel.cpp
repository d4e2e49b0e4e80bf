// Example: train a small ReLU network on two moons with SGD, then rewrite it exactly as a kernel machine (the exact path
// kernel of Bell et al. 2023) and check it. It writes no files; `kernelscope epk` does the same from a run directory.
//
// The identity: for every input x,
//   f(x; θ_T) = f(x; θ_0) + Σ_steps Σ_{i in batch} a_{i,s} K_s(x, x_i),
//   a_{i,s} = −(η/b) ℓ'(f(x_i; θ_s), y_i),   K_s(x, x_i) = ⟨∫₀¹ ∇f(x; θ_s + t(θ_{s+1} − θ_s)) dt, ∇f(x_i; θ_s)⟩.
// Along one step the ReLU network is piecewise polynomial in t, so the integral is computed exactly piece by piece.
#include <cstdio>

#include "datasets/dataset.h"
#include "kernels/epk.h"
#include "nn/model.h"
#include "nn/train.h"

int main() {
  using namespace ks;
  // 1. Data: 300 training and 100 test points of two interleaved half-moons.
  const Dataset train_set = make_toy_dataset({"moons", 300, 0.1, /*seed=*/0});
  const Dataset test_set = make_toy_dataset({"moons", 100, 0.1, /*seed=*/1});

  // 2. A 2-16-16-1 ReLU network and mini-batch SGD; every step's batch is recorded so the training can be replayed.
  const ModelOptions architecture{"mlp:16-16", {2}, 1, InitKind::he_normal, /*seed=*/0};
  const auto model = build_model(architecture);
  const Parameters theta0 = initial_parameters(*model, architecture);
  TrainOptions options;
  options.epochs = 5;
  options.batch_size = 30;
  options.learning_rate = 0.3;
  const TrainResult trained = train(*model, theta0, train_set, test_set, options);
  std::printf("trained %zu SGD steps; test accuracy %.1f%%\n", trained.steps.size(), 100 * trained.metrics.back().test_accuracy);

  // 3. From θ_0, replay the steps and accumulate the kernel terms for every test input.
  const TrainingRecord record{&train_set, &trained.steps, options.weight_decay, options.loss};
  const EpkResult result = exact_path_kernel(*model, theta0, test_set.inputs, record);

  // 4. The exact path kernel reproduces the network to rounding; the approximate kernels do not.
  std::printf("%-10s %14s %14s %10s\n", "kernel", "max abs error", "max rel error", "decisions");
  for (const KernelMachine& machine : result.machines)
    std::printf("%-10s %14.2e %14.2e %10s\n", path_kernel_name(machine.kind).c_str(), machine.max_abs_error, machine.max_rel_error,
                machine.decisions_agree ? "all agree" : "some differ");
  std::printf("%lld pieces between ReLU switches, %lld Gauss-Legendre nodes\n", static_cast<long long>(result.quadrature.pieces),
              static_cast<long long>(result.quadrature.nodes));

  // 5. Attributions: each training point's exact share of f(x; θ_T) − f(x; θ_0) for the first test point.
  const TopAttributions top = top_attributions(result.attributions, 0, 0, 3);
  std::printf("test point 0: f went from %.4f to %.4f; the training points that pushed it most:\n", result.initial[0], result.final[0]);
  for (size_t k = 0; k < top.positive.size(); ++k)
    std::printf("  up:   training point %3lld at (%+.2f, %+.2f), share %+.4f\n", static_cast<long long>(top.positive[k]),
                train_set.inputs[top.positive[k] * 2], train_set.inputs[top.positive[k] * 2 + 1], top.positive_values[k]);
  for (size_t k = 0; k < top.negative.size(); ++k)
    std::printf("  down: training point %3lld at (%+.2f, %+.2f), share %+.4f\n", static_cast<long long>(top.negative[k]),
                train_set.inputs[top.negative[k] * 2], train_set.inputs[top.negative[k] * 2 + 1], top.negative_values[k]);
  return result.machines[0].max_rel_error < 1e-12 && result.machines[0].decisions_agree ? 0 : 1;
}
