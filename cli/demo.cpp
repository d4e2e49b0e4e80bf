// `kernelscope demo`: trains a small ReLU network on a built-in 2D toy set and prints the loss falling and the accuracy.
// It is the README's first command; it does not read or write files.
#include <cstdio>
#include <memory>

#include "autodiff/functions.h"
#include "autodiff/random.h"
#include "cli/commands.h"
#include "datasets/dataset.h"

namespace ks::cli {

namespace {

struct DemoOptions {
  std::string toy = "moons";
  int64_t points = 400;
  int64_t hidden = 32;
  int64_t steps = 2000;
  double learning_rate = 0.5;
  uint64_t seed = 0;
};

Var glorot(int64_t out, int64_t in, Rng& rng) {
  const double limit = std::sqrt(6.0 / static_cast<double>(in + out));
  Tensor w({out, in});
  for (int64_t i = 0; i < w.numel(); ++i) w[i] = rng.uniform(-limit, limit);
  return parameter(w);
}

int run_demo(const DemoOptions& options) {
  Dataset data = make_toy_dataset({options.toy, options.points, 0.1, options.seed});
  Rng rng(options.seed + 1);
  std::vector<Var> params{glorot(options.hidden, 2, rng), parameter(Tensor({options.hidden})),
                          glorot(options.hidden, options.hidden, rng), parameter(Tensor({options.hidden})),
                          glorot(1, options.hidden, rng), parameter(Tensor({1}))};
  Var x = constant(data.inputs);
  auto forward = [&] {
    Var h = relu(linear(x, params[0], params[1]));
    h = relu(linear(h, params[2], params[3]));
    return linear(h, params[4], params[5]);
  };
  std::printf("kernelscope demo: a 2-%lld-%lld-1 ReLU network on %lld points of two %s, full-batch gradient descent\n",
              static_cast<long long>(options.hidden), static_cast<long long>(options.hidden),
              static_cast<long long>(options.points), options.toy.c_str());
  for (int64_t step = 0; step <= options.steps; ++step) {
    zero_grad(params);
    Var loss = logistic_loss(forward(), data.labels);
    if (step % (options.steps / 10) == 0) std::printf("  step %5lld  loss %.6f\n", static_cast<long long>(step), loss->value[0]);
    if (step == options.steps) break;
    backward(loss);
    for (const Var& p : params) p->value.vector() -= options.learning_rate * p->grad.vector();
  }
  Var logits = forward();
  int64_t correct = 0;
  for (int64_t n = 0; n < data.size(); ++n) correct += (logits->value[n] > 0) == (data.labels[static_cast<size_t>(n)] == 1);
  std::printf("training accuracy: %.1f%% (%lld of %lld)\n", 100.0 * correct / data.size(), static_cast<long long>(correct),
              static_cast<long long>(data.size()));
  return 0;
}

}  // namespace

Command register_demo(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand("demo", "Train a small network on a built-in 2D toy set and show the loss falling");
  demo->add_option("--toy", options->toy, "Toy set: moons or spirals")->check(CLI::IsMember({"moons", "spirals"}))->capture_default_str();
  demo->add_option("--points", options->points, "Number of points")->check(CLI::Range(10, 100000))->capture_default_str();
  demo->add_option("--steps", options->steps, "Gradient-descent steps")->check(CLI::Range(10, 1000000))->capture_default_str();
  demo->add_option("--seed", options->seed, "Random seed")->capture_default_str();
  return {demo, [options] { return run_demo(*options); }};
}

}  // namespace ks::cli
