// Hard-margin SVM on precomputed kernels: separation, the dual solution against libsvm's own decision values, the margin
// against a geometric answer, and the bad-input errors.
#include <doctest/doctest.h>

#include <array>
#include <limits>

#include "kernels/svm.h"
#include "tests/helpers.h"

namespace ks {

namespace {

// Linear kernel of 2-D points.
Tensor linear_gram(const std::vector<std::array<double, 2>>& a, const std::vector<std::array<double, 2>>& b) {
  Tensor K({static_cast<int64_t>(a.size()), static_cast<int64_t>(b.size())});
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b.size(); ++j) K[static_cast<int64_t>(i * b.size() + j)] = a[i][0] * b[j][0] + a[i][1] * b[j][1] + 1.0;
  return K;
}

}  // namespace

TEST_CASE("the hard-margin SVM separates a separable set, its dual solution matches libsvm, and the margin is geometric") {
  Rng rng(3);
  std::vector<std::array<double, 2>> points;
  std::vector<int> labels;
  for (int i = 0; i < 60; ++i) {
    const int label = i % 2;
    // Two clouds either side of the line x = 0, at least 0.5 away from it.
    const double x = (label ? 1.0 : -1.0) * rng.uniform(0.5, 2.0), y = rng.uniform(-2.0, 2.0);
    points.push_back({x, y});
    labels.push_back(label);
  }
  const Tensor K = linear_gram(points, points);
  for (bool scale : {false, true}) {
    SvmOptions options;
    options.scale_by_mean_norm = scale;
    const SvmModel model = fit_svm(K, labels, options);
    CHECK(model.separated());
    CHECK(model.training_errors == 0);
    CHECK(model.support_vectors >= 2);
    CHECK(model.support_vectors < 60);
    // The direct evaluation of Σ c_i K(x, x_i) + b equals libsvm's decision values.
    const std::vector<double> direct = svm_decision(model, K);
    for (size_t i = 0; i < direct.size(); ++i) CHECK(direct[i] == doctest::Approx(model.libsvm_training_decisions[i]).epsilon(1e-9));
    CHECK(svm_accuracy(model, K, labels) == 1.0);
    // Hard margin: the closest points sit on f = ±1 (up to libsvm's tolerance).
    double closest = 1e300;
    for (size_t i = 0; i < direct.size(); ++i) closest = std::min(closest, (labels[i] ? 1.0 : -1.0) * direct[i]);
    CHECK(closest == doctest::Approx(1.0).epsilon(1e-3));
  }
  // Geometry: the plane x = 0 already has margin min |x|, so the best one has at least that; no plane can do better than
  // half the distance between the closest pair of opposite points.
  const SvmModel model = fit_svm(K, labels);
  double gap = 1e300, closest_pair = 1e300;
  for (size_t i = 0; i < points.size(); ++i) {
    gap = std::min(gap, std::abs(points[i][0]));
    for (size_t j = 0; j < points.size(); ++j)
      if (labels[i] != labels[j]) closest_pair = std::min(closest_pair, std::hypot(points[i][0] - points[j][0], points[i][1] - points[j][1]));
  }
  CHECK(model.margin >= gap * (1 - 1e-3));
  CHECK(model.margin <= 0.5 * closest_pair * (1 + 1e-3));
}

TEST_CASE("an inseparable training set is reported as not separated") {
  // The same point with both labels cannot be separated.
  std::vector<std::array<double, 2>> points{{1, 0}, {1, 0}, {-1, 0}, {0, 1}};
  const std::vector<int> labels{0, 1, 0, 1};
  SvmOptions options;
  options.C = 10.0;  // keeps libsvm quick on an infeasible hard-margin problem
  const SvmModel model = fit_svm(linear_gram(points, points), labels, options);
  CHECK_FALSE(model.separated());
  CHECK(model.training_errors >= 1);
}

TEST_CASE("SVM bad input: sizes, symmetry, labels, empty classes") {
  std::vector<std::array<double, 2>> points{{1, 0}, {-1, 0}, {0, 1}};
  const Tensor K = linear_gram(points, points);
  CHECK_THROWS_WITH(fit_svm(K, {0, 1}), doctest::Contains("2 labels for a kernel with 3 rows"));
  CHECK_THROWS_WITH(fit_svm(K, {0, 1, 2}), doctest::Contains("label 2 found"));
  CHECK_THROWS_WITH(fit_svm(K, {1, 1, 1}), doctest::Contains("class 0 is empty"));
  Tensor skew = K;
  skew[1] += 0.5;
  CHECK_THROWS_WITH(fit_svm(skew, {0, 1, 1}), doctest::Contains("not symmetric"));
  CHECK_THROWS_WITH(fit_svm(Tensor({3, 2}), {0, 1, 1}), doctest::Contains("must be square"));
  const SvmModel model = fit_svm(K, {0, 1, 1});
  CHECK_THROWS_WITH(svm_decision(model, Tensor({2, 4})), doctest::Contains("(M, 3)"));
}

}  // namespace ks

namespace ks {

TEST_CASE("a 4,000-point training Gram fits in libsvm's precomputed mode") {
  // Points in 20 dimensions labelled by a hyperplane with a gap: separable, so the hard margin must separate them.
  Rng rng(9);
  const int64_t N = 4000, D = 20;
  Tensor points({N, D});
  std::vector<int> labels;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t d = 0; d < D; ++d) points[n * D + d] = rng.uniform(-1.0, 1.0);
    const int label = points[n * D] > 0.0 ? 1 : 0;
    points[n * D] += label ? 0.2 : -0.2;
    labels.push_back(label);
  }
  Tensor K({N, N});
  K.matrix() = points.matrix() * points.matrix().transpose();
  K.matrix() = 0.5 * (K.matrix() + K.matrix().transpose()).eval();
  const SvmModel model = fit_svm(K, labels);
  CHECK(model.separated());
  CHECK(model.margin >= 0.2 * (1 - 1e-3));
  CHECK(svm_accuracy(model, K, labels) == 1.0);
}

}  // namespace ks

namespace ks {

TEST_CASE("fit_svms fits several SVMs at once, each bit for bit as fit_svm, and rethrows an error after the others") {
  Rng rng(8);
  std::vector<std::array<double, 2>> points;
  std::vector<int> labels;
  for (int i = 0; i < 40; ++i) {
    points.push_back({rng.uniform(-2.0, 2.0), rng.uniform(-2.0, 2.0)});
    labels.push_back(points.back()[0] + 0.3 * points.back()[1] > 0.0 ? 1 : 0);
  }
  const Tensor linear = linear_gram(points, points);
  Tensor squared = linear;  // a second, different kernel: the linear one squared entry by entry
  for (int64_t i = 0; i < squared.numel(); ++i) squared[i] = linear[i] * linear[i];
  const std::vector<SvmModel> both = fit_svms({&linear, &squared, &linear}, labels);
  REQUIRE(both.size() == 3);
  const Tensor* grams[] = {&linear, &squared, &linear};
  for (size_t k = 0; k < both.size(); ++k) {
    const SvmModel alone = fit_svm(*grams[k], labels);
    CHECK(both[k].coefficients == alone.coefficients);
    CHECK(both[k].bias == alone.bias);
    CHECK(both[k].support_vectors == alone.support_vectors);
  }
  CHECK(both[0].coefficients != both[1].coefficients);
  Tensor broken = linear;
  broken[5] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(fit_svms({&linear, &broken}, labels), doctest::Contains("non-finite value at (0, 5)"), std::invalid_argument);
}

}  // namespace ks
