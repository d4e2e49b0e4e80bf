// The exact path kernel of runs trained with momentum, Nesterov, Adam and AdamW (weight decay, a cosine schedule):
// exact reconstruction, attributions that add up, agreement with the SGD path when μ = 0, a crude quadrature failing.
#include <doctest/doctest.h>
#include <omp.h>

#include "kernels/epk.h"
#include "tests/helpers.h"

namespace ks {

namespace {

struct RuleRun {
  test::Network network;
  Dataset data;
  TrainOptions options;
  TrainResult trained;
  Tensor test_inputs;
  RuleRun(const std::string& spec, OptimizerOptions optimizer, double weight_decay, Shape sample, int64_t outputs = 1) {
    network = test::network({spec, sample, outputs, InitKind::he_normal, 3});
    Rng rng(11);
    data = sample.size() == 3 ? test::pixel_threshold_dataset(rng, 24, sample[1], 7) : make_toy_dataset({"moons", 40, 0.1, 4});
    options.epochs = 2;
    options.batch_size = 8;
    options.learning_rate = optimizer.kind == OptimizerKind::adam || optimizer.kind == OptimizerKind::adamw ? 0.02 : 0.1;
    options.weight_decay = weight_decay;
    options.lr_cosine = true;
    options.lr_min = 0.1 * options.learning_rate;
    options.optimizer = optimizer;
    if (outputs > 1) options.loss = LossKind::cross_entropy;
    trained = train(*network.model, network.theta, data, data, options);
    Shape batch = sample;
    batch.insert(batch.begin(), 3);
    test_inputs = test::random_tensor(batch, rng, 0.0, 1.0);
  }
  TrainingRecord record() const { return {&data, &trained.steps, options.weight_decay, options.loss, {}, options.optimizer}; }
  EpkResult epk(QuadratureChoice quadrature = {}, std::vector<PathKernel> kernels = {PathKernel::exact}) const {
    EpkOptions epk_options;
    epk_options.quadrature = quadrature;
    epk_options.kernels = std::move(kernels);
    return exact_path_kernel(*network.model, network.theta, test_inputs, record(), epk_options);
  }
};

OptimizerOptions rule(OptimizerKind kind) {
  OptimizerOptions o;
  o.kind = kind;
  if (kind == OptimizerKind::momentum) o.dampening = 0.1;
  return o;
}

double largest(const Tensor& t) { return t.vector().cwiseAbs().maxCoeff(); }
double largest_gap(const Tensor& a, const Tensor& b) { return (a.vector() - b.vector()).cwiseAbs().maxCoeff(); }

// Σ_i c_i(x) + the weight-decay column = f(x;θ_T) − f(x;θ_0), as the machine's outputs say.
double attribution_gap(const EpkResult& result) {
  const KernelMachine& exact = result.machines.front();
  const int64_t M = result.initial.dim(0), C = result.outputs, N = result.attributions.dim(1);
  double gap = 0.0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c) {
      double total = exact.weight_decay[m * C + c];
      for (int64_t n = 0; n < N; ++n) total += result.attributions[(m * N + n) * C + c];
      gap = std::max(gap, std::abs(total - (result.final[m * C + c] - result.initial[m * C + c])));
    }
  return gap;
}

}  // namespace

TEST_CASE("the EPK of momentum, Nesterov, Adam and AdamW runs (weight decay, cosine schedule) is exact, and its attributions add up") {
  for (OptimizerKind kind : {OptimizerKind::momentum, OptimizerKind::nesterov, OptimizerKind::adam, OptimizerKind::adamw}) {
    INFO(optimizer_name(kind));
    const RuleRun run("mlp:8-8", rule(kind), 1e-2, {2});
    const EpkResult result = run.epk();
    const KernelMachine& exact = result.machines.front();
    CHECK(exact.max_rel_error <= 1e-12);
    CHECK(result.quadrature.max_segment_residual <= 1e-12 * largest(result.final));
    CHECK(attribution_gap(result) <= 1e-12 * largest(result.final));
    CHECK(largest(exact.weight_decay) > 1e-6);  // the decay column is really there
    for (size_t k = 0; k < run.trained.final_parameters.size(); ++k) CHECK(test::bit_equal(result.final_parameters[k], run.trained.final_parameters[k]));
    // The crude quadrature is not exact: one node per step misses the path's curvature.
    CHECK(run.epk(QuadratureChoice{PathQuadrature::gauss_legendre, 1, 0.0}).machines.front().max_rel_error > 1e-8);
  }
}

TEST_CASE("the rule EPK on a residual conv net with several outputs is exact, and its approximate machines are defined") {
  const RuleRun run("conv:3,R,M,R4", rule(OptimizerKind::adamw), 1e-2, {1, 6, 6}, 2);
  const EpkResult result = run.epk({}, {PathKernel::exact, PathKernel::ntk_init, PathKernel::after, PathKernel::domingos});
  REQUIRE(result.machines.size() == 4);
  CHECK(result.machines[0].max_rel_error <= 1e-12);
  CHECK(attribution_gap(result) <= 1e-12 * largest(result.final));
  for (size_t k = 1; k < 4; ++k) {
    INFO(path_kernel_name(result.machines[k].kind));
    CHECK(result.machines[k].max_rel_error > 1e-8);  // approximations, not the identity
    CHECK(std::isfinite(result.machines[k].max_rel_error));
  }
}

TEST_CASE("momentum with μ = 0 is SGD: the backward walk agrees with the SGD path's forward streaming") {
  OptimizerOptions zero = rule(OptimizerKind::momentum);
  zero.momentum = 0.0;
  zero.dampening = 0.0;
  const RuleRun run("mlp:8-8", zero, 1e-2, {2});
  TrainingRecord as_sgd = run.record();
  as_sgd.optimizer = {};
  EpkOptions options;
  options.kernels = {PathKernel::exact, PathKernel::domingos, PathKernel::ntk_init};
  const EpkResult walked = exact_path_kernel(*run.network.model, run.network.theta, run.test_inputs, run.record(), options);
  const EpkResult streamed = exact_path_kernel(*run.network.model, run.network.theta, run.test_inputs, as_sgd, options);
  const double scale = largest(streamed.final);
  CHECK(largest_gap(walked.final, streamed.final) == 0.0);
  for (size_t k = 0; k < options.kernels.size(); ++k) {
    INFO(path_kernel_name(options.kernels[k]));
    CHECK(largest_gap(walked.machines[k].outputs, streamed.machines[k].outputs) <= 1e-13 * scale);
  }
  CHECK(largest_gap(walked.attributions, streamed.attributions) <= 1e-13 * scale);
  CHECK(largest_gap(walked.coefficients, streamed.coefficients) <= 1e-15);
}

TEST_CASE("the rule EPK gives the same bits for 1 and 2 threads") {
  const RuleRun run("conv:3,M,4", rule(OptimizerKind::nesterov), 0.0, {1, 6, 6});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const EpkResult one = run.epk();
  omp_set_num_threads(2);
  const EpkResult two = run.epk();
  omp_set_num_threads(threads);
  CHECK(test::bit_equal(one.attributions, two.attributions));
  CHECK(test::bit_equal(one.machines.front().outputs, two.machines.front().outputs));
}

TEST_CASE("the rule EPK refuses adaptive quadrature by name") {
  const RuleRun run("mlp:4", rule(OptimizerKind::adam), 0.0, {2});
  CHECK_THROWS_WITH_AS(run.epk(QuadratureChoice{PathQuadrature::adaptive, 0, 1e-6}), doctest::Contains("adam run"), std::invalid_argument);
}

}  // namespace ks
