// The exact path kernel on tiny nets: exactness for GD, SGD, a cross-entropy head, weight decay and tanh; the piece
// finder catching a pattern change inside a step; attributions summing to the change; a crude quadrature failing.
#include <doctest/doctest.h>
#include <omp.h>

#include "kernels/epk.h"
#include "kernels/quadrature.h"
#include "nn/model.h"
#include "tests/helpers.h"

namespace ks {

namespace {

struct Trained {
  std::unique_ptr<Sequential> model;
  std::vector<Tensor> theta0;
  TrainResult result;
  Dataset train, test;
  TrainOptions options;
};

Trained train_toy(const std::string& spec, int64_t outputs, const TrainOptions& options, const std::string& kind = "moons", int64_t count = 48) {
  Trained t;
  Dataset data = make_toy_dataset({kind, count + 24, 0.1, 11});
  if (outputs > 2) {
    // Three classes: split the positive class by the sign of the first coordinate.
    for (int64_t n = 0; n < data.size(); ++n)
      if (data.labels[static_cast<size_t>(n)] == 1 && data.inputs[n * 2] > 0.5) data.labels[static_cast<size_t>(n)] = 2;
  }
  std::vector<int64_t> first, rest;
  for (int64_t n = 0; n < data.size(); ++n) (n < count ? first : rest).push_back(n);
  t.train = data.subset(first);
  t.test = data.subset(rest);
  const ModelOptions architecture{spec, {2}, outputs, InitKind::he_normal, 5};
  t.model = build_model(architecture);
  t.theta0 = initial_parameters(*t.model, architecture);
  t.options = options;
  t.result = train(*t.model, t.theta0, t.train, t.test, options);
  return t;
}

EpkResult run_epk(Trained& t, const EpkOptions& options = {}) {
  TrainingRecord record{&t.train, &t.result.steps, t.options.weight_decay, t.options.loss};
  return exact_path_kernel(*t.model, t.theta0, t.test.inputs, record, options);
}

const KernelMachine& machine(const EpkResult& result, PathKernel kind) {
  for (const KernelMachine& m : result.machines)
    if (m.kind == kind) return m;
  throw std::logic_error("no machine");
}

TrainOptions sgd(int64_t epochs, int64_t batch, double lr) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.learning_rate = lr;
  o.seed = 2;
  return o;
}

}  // namespace

TEST_CASE("Gauss-Legendre rules integrate polynomials of degree 2n-1 exactly, and sign changes are found") {
  for (int64_t n = 1; n <= 6; ++n) {
    const QuadratureRule rule = gauss_legendre(n, 0.25, 1.5);
    for (int64_t degree = 0; degree <= 2 * n - 1; ++degree) {
      double total = 0.0;
      for (size_t q = 0; q < rule.nodes.size(); ++q) total += rule.weights[q] * std::pow(rule.nodes[q], static_cast<double>(degree));
      const double exact = (std::pow(1.5, degree + 1.0) - std::pow(0.25, degree + 1.0)) / (degree + 1.0);
      CHECK(std::abs(total - exact) <= 1e-14 * exact);
    }
    // Degree 2n is not integrated exactly: the check above can fail.
    double total = 0.0;
    for (size_t q = 0; q < rule.nodes.size(); ++q) total += rule.weights[q] * std::pow(rule.nodes[q], 2.0 * n);
    CHECK(std::abs(total - (std::pow(1.5, 2.0 * n + 1) - std::pow(0.25, 2.0 * n + 1)) / (2.0 * n + 1)) > 1e-6);
  }
  // (u − 0.3)(u + 0.5)(u − 0.9)(u + 0.7)(u − 0.95), from its values at Chebyshev points: five sign changes.
  const ChebyshevInterpolator interpolator(5);
  const std::vector<double> expected{-0.7, -0.5, 0.3, 0.9, 0.95};
  std::vector<double> values;
  for (double u : chebyshev_points(5)) {
    double p = 1.0;
    for (double r : expected) p *= u - r;
    values.push_back(p);
  }
  double coefficients[6];
  interpolator.coefficients(values.data(), 1, coefficients);
  const std::vector<double> roots = sign_changes(coefficients, 5);
  REQUIRE(roots.size() == expected.size());
  for (size_t k = 0; k < roots.size(); ++k) CHECK(std::abs(roots[k] - expected[k]) < 1e-13);
  // (u − 0.2)² touches zero without a sign change: no breakpoint (up to a rounding-split pair within 1e-7).
  double touching[3] = {0.04, -0.4, 1.0};
  for (double root : sign_changes(touching, 2)) CHECK(std::abs(root - 0.2) < 1e-7);
  // c_0 dominating means no root at all.
  double far[3] = {3.0, 1.0, 1.0};
  CHECK(sign_changes(far, 2).empty());
}

TEST_CASE("the EPK reproduces a ReLU net trained by full-batch GD and by SGD to float64 rounding") {
  for (int64_t batch : {int64_t{1000}, int64_t{8}}) {
    INFO("batch " << batch);
    Trained t = train_toy("mlp:16-16", 1, sgd(3, batch, 0.5));
    const EpkResult result = run_epk(t);
    const KernelMachine& exact = machine(result, PathKernel::exact);
    MESSAGE("batch " << batch << ": exact rel " << exact.max_rel_error << ", abs " << exact.max_abs_error << "; pieces " << result.quadrature.pieces
                     << " nodes " << result.quadrature.nodes << " residual " << result.quadrature.max_segment_residual);
    CHECK(exact.max_rel_error < 1e-12);
    CHECK(exact.decisions_agree);
    CHECK(result.quadrature.breakpoints > 0);
    for (PathKernel kind : {PathKernel::ntk_init, PathKernel::after, PathKernel::domingos}) {
      INFO(path_kernel_name(kind));
      CHECK(machine(result, kind).max_abs_error > 1e3 * exact.max_abs_error);
    }
  }
}

}  // namespace ks

namespace ks {

namespace {

double largest_magnitude(const Tensor& t) { return t.vector().cwiseAbs().maxCoeff(); }

// Exactness in the norm-wise sense: the largest error against the largest output.
void check_exact(const EpkResult& result, double bound = 1e-13) {
  const KernelMachine& exact = machine(result, PathKernel::exact);
  INFO("exact abs " << exact.max_abs_error << " rel " << exact.max_rel_error << " scale " << largest_magnitude(result.final));
  CHECK(exact.max_abs_error <= bound * largest_magnitude(result.final));
  CHECK(exact.decisions_agree);
}

}  // namespace

TEST_CASE("the EPK is exact for a cross-entropy head, for MSE and with weight decay in its own column") {
  SUBCASE("three classes, cross-entropy") {
    TrainOptions o = sgd(2, 8, 0.4);
    o.loss = LossKind::cross_entropy;
    Trained t = train_toy("mlp:12-12", 3, o);
    const EpkResult result = run_epk(t);
    CHECK(result.outputs == 3);
    check_exact(result);
    CHECK(machine(result, PathKernel::domingos).max_abs_error > 1e3 * machine(result, PathKernel::exact).max_abs_error);
  }
  SUBCASE("mean squared error") {
    TrainOptions o = sgd(2, 8, 0.2);
    o.loss = LossKind::mse;
    Trained t = train_toy("mlp:12", 1, o);
    check_exact(run_epk(t));
  }
  SUBCASE("weight decay") {
    TrainOptions o = sgd(2, 8, 0.4);
    o.weight_decay = 0.05;
    Trained t = train_toy("mlp:16-16", 1, o);
    const EpkResult result = run_epk(t);
    check_exact(result);
    for (const KernelMachine& m : result.machines) CHECK(largest_magnitude(m.weight_decay) > 0.0);
    // Without its column the machine misses: the term is real and it is not hidden in the kernel.
    const KernelMachine& exact = machine(result, PathKernel::exact);
    Tensor without = exact.outputs;
    without.vector() -= exact.weight_decay.vector();
    CHECK((without.vector() - result.final.vector()).cwiseAbs().maxCoeff() > 1e6 * exact.max_abs_error);
  }
}

TEST_CASE("attributions sum to each test output's change, and the EPK matrix carries the same terms") {
  Trained t = train_toy("mlp:16-16", 1, sgd(2, 8, 0.5));
  const EpkResult result = run_epk(t);
  const int64_t M = result.final.dim(0), N = t.train.size();
  REQUIRE(result.attributions.shape() == Shape({M, N, 1}));
  REQUIRE(result.kernel.shape() == Shape({M, N}));
  for (int64_t m = 0; m < M; ++m) {
    double total = 0.0, scale = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      total += result.attributions[m * N + n];
      scale += std::abs(result.attributions[m * N + n]);
    }
    const double change = result.final[m] - result.initial[m];
    CHECK(std::abs(total - change) <= 1e-13 * std::max(scale, 1.0));
  }
  // Top-k lists are sorted and signed.
  const TopAttributions top = top_attributions(result.attributions, 0, 0, 3);
  for (size_t j = 0; j + 1 < top.positive_values.size(); ++j) CHECK(top.positive_values[j] >= top.positive_values[j + 1]);
  for (double v : top.positive_values) CHECK(v > 0.0);
  for (double v : top.negative_values) CHECK(v < 0.0);
}

TEST_CASE("the piece finder finds a ReLU switching inside a step, in the first and in a deeper layer") {
  // f(x) = v·relu(w x + b) + c with one hidden unit; along the segment only b moves: b(t) = −0.5 + t.
  const test::Network network_ = test::network({"mlp:1", {1}, 1, InitKind::glorot_uniform, 0});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  std::vector<Tensor> base = theta, direction;
  base[0][0] = 1.0;   // w
  base[1][0] = -0.5;  // b
  base[2][0] = 2.0;   // v
  base[3][0] = 0.0;   // c
  for (const Tensor& p : base) direction.emplace_back(p.shape());
  direction[1][0] = 1.0;
  Segment segment{&base, &direction, {}, {}, nullptr, nullptr};
  const Tensor inputs({3, 1}, std::vector<double>{0.2, 0.9, -1.0});
  const std::vector<std::vector<double>> pieces = path_pieces(*model, inputs, segment);
  REQUIRE(pieces[0].size() == 3);
  CHECK(pieces[0][1] == doctest::Approx(0.3).epsilon(1e-15));  // 0.2 − 0.5 + t = 0
  CHECK(pieces[1] == std::vector<double>{0.0, 1.0});             // positive throughout
  CHECK(pieces[2] == std::vector<double>{0.0, 1.0});             // negative throughout

  // Two hidden layers, both weights moving: the second layer's input is quadratic in t on the first layer's piece.
  const test::Network deep_network = test::network({"mlp:1-1", {1}, 1, InitKind::glorot_uniform, 0});
  const auto& deep = deep_network.model;
  std::vector<Tensor> b2 = deep_network.theta, d2;
  for (Tensor& p : b2) p.fill(0.0);
  for (const Tensor& p : b2) d2.emplace_back(p.shape());
  b2[0][0] = 1.0;  // w1: z1 = x (t-independent, positive for x = 1)
  b2[2][0] = 1.0;  // w2
  d2[2][0] = 1.0;  // w2(t) = 1 + t
  b2[3][0] = -1.5;  // b2
  d2[3][0] = 0.0;
  d2[0][0] = 1.0;  // w1(t) = 1 + t: z2 = (1 + t)² − 1.5, zero at t = sqrt(1.5) − 1
  Segment deep_segment{&b2, &d2, {}, {}, nullptr, nullptr};
  const std::vector<std::vector<double>> deep_pieces = path_pieces(*deep, Tensor({1, 1}, std::vector<double>{1.0}), deep_segment);
  REQUIRE(deep_pieces[0].size() == 3);
  CHECK(std::abs(deep_pieces[0][1] - (std::sqrt(1.5) - 1.0)) < 1e-15);
}

TEST_CASE("a crude quadrature (one node, no breakpoints) is clearly inexact, so the exactness checks can fail") {
  Trained t = train_toy("mlp:16-16", 1, sgd(3, 8, 0.5));
  const EpkResult good = run_epk(t);
  EpkOptions crude;
  crude.kernels = {PathKernel::exact};
  crude.quadrature = {PathQuadrature::gauss_legendre, 1};
  const EpkResult bad = run_epk(t, crude);
  CHECK(machine(bad, PathKernel::exact).max_abs_error > 1e4 * machine(good, PathKernel::exact).max_abs_error);
  // Too few nodes per piece is also inexact for a deeper net (degree 2 gradient needs 2 nodes).
  EpkOptions one_node;
  one_node.kernels = {PathKernel::exact};
  one_node.extra_nodes = -1;
  CHECK(machine(run_epk(t, one_node), PathKernel::exact).max_abs_error > 1e3 * machine(good, PathKernel::exact).max_abs_error);
}

TEST_CASE("a tanh net is reproduced with adaptive Gauss-Legendre") {
  Trained t = train_toy("mlp:16-16/tanh", 1, sgd(2, 8, 0.5));
  const EpkResult result = run_epk(t);
  CHECK(result.quadrature.mode == "adaptive Gauss-Legendre");
  CHECK(result.quadrature.nodes > 0);
  check_exact(result);
  MESSAGE("tanh: exact rel " << machine(result, PathKernel::exact).max_rel_error << ", nodes " << result.quadrature.nodes << ", pieces " << result.quadrature.pieces);
}

TEST_CASE("the EPK of a conv net with max-pooling is exact and gives the same bits with 1, 2 and 4 threads") {
  Rng rng(3);
  const Dataset data = test::pixel_threshold_dataset(rng, 30, 6, 0);
  const test::Network network_ = test::network({"conv:3,M,4", {1, 6, 6}, 1, InitKind::he_normal, 1});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  const TrainResult trained = train(*model, theta, data, data, sgd(2, 10, 0.3));
  const Tensor test = test::random_tensor({7, 1, 6, 6}, rng, 0.0, 1.0);
  TrainingRecord record{&data, &trained.steps, 0.0, LossKind::logistic};
  std::vector<EpkResult> results;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 4}) {
    omp_set_num_threads(threads);
    results.push_back(exact_path_kernel(*model, theta, test, record));
  }
  omp_set_num_threads(saved);
  check_exact(results[0]);
  CHECK(results[0].quadrature.breakpoints > 0);
  for (size_t k = 1; k < results.size(); ++k) {
    CHECK(test::bit_equal(results[k].attributions, results[0].attributions));
    CHECK(test::bit_equal(results[k].kernel, results[0].kernel));
    for (size_t j = 0; j < results[0].machines.size(); ++j) CHECK(test::bit_equal(results[k].machines[j].outputs, results[0].machines[j].outputs));
  }
}

TEST_CASE("with training-time augmentation (ours and Long's Keras one) the EPK replays the augmented batches and stays exact") {
  for (bool keras : {false, true}) {
  INFO((keras ? "Keras augmentation" : "rotations and shifts"));
  Rng rng(4);
  const Dataset data = test::pixel_threshold_dataset(rng, 24, 6, 14);
  const test::Network network_ = test::network({"conv:3,M", {1, 6, 6}, 1, InitKind::he_normal, 1});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  TrainOptions options = sgd(2, 8, 0.3);
  options.augment = true;
  options.keras_augment = keras;
  const TrainResult trained = train(*model, theta, data, data, options);
  const Parameters& thetaT = trained.final_parameters;
  const Tensor test = test::random_tensor({5, 1, 6, 6}, rng, 0.0, 1.0);
  TrainingRecord record{&data, &trained.steps, 0.0, LossKind::logistic, augmentation_of(options)};
  const EpkResult result = exact_path_kernel(*model, theta, test, record);
  check_exact(result);
  for (size_t k = 0; k < thetaT.size(); ++k) CHECK(test::bit_equal(result.final_parameters[k], thetaT[k]));
  // Ignoring the augmentation replays another trajectory: the network it ends at is not the trained one.
  TrainingRecord plain{&data, &trained.steps, 0.0, LossKind::logistic};
  CHECK_FALSE(test::bit_equal(exact_path_kernel(*model, theta, test, plain).final_parameters[0], thetaT[0]));
  // And the other augmentation's images are other images too.
  TrainingRecord other{&data, &trained.steps, 0.0, LossKind::logistic, {true, options.seed, !keras}};
  CHECK_FALSE(test::bit_equal(exact_path_kernel(*model, theta, test, other).final_parameters[0], thetaT[0]));
  }
}

TEST_CASE("a layer kind added through the contract alone (average pooling, k x k and global) keeps the EPK exact") {
  Rng rng(9);
  const Dataset data = test::pixel_threshold_dataset(rng, 24, 8, 27);
  const test::Network network_ = test::network({"conv:3,A,4,AG", {1, 8, 8}, 1, InitKind::he_normal, 2});
  const TrainResult trained = train(*network_.model, network_.theta, data, data, sgd(2, 8, 0.5));
  const Tensor test = test::random_tensor({4, 1, 8, 8}, rng, 0.0, 1.0);
  const TrainingRecord record{&data, &trained.steps, 0.0, LossKind::logistic};
  const EpkResult result = exact_path_kernel(*network_.model, network_.theta, test, record);
  check_exact(result);
  CHECK(result.quadrature.breakpoints > 0);  // ReLUs switch along the way: the piece finder was needed
  const EpkResult crude = exact_path_kernel(*network_.model, network_.theta, test, record, [] {
    EpkOptions o;
    o.quadrature = {PathQuadrature::gauss_legendre, 1};
    return o;
  }());
  CHECK(machine(crude, PathKernel::exact).max_abs_error > 1e3 * machine(result, PathKernel::exact).max_abs_error);
}

}  // namespace ks
