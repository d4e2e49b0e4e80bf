// Tangent kernels: Jacobian and structured contraction agree, Grams are symmetric PSD, match J Jᵀ, and are bit-identical
// across thread counts; the conjugate kernel, the diagonal and cosine normalisation.
#include <doctest/doctest.h>
#include <omp.h>

#include "kernels/ntk.h"
#include "nn/model.h"
#include "tests/helpers.h"

namespace ks {

namespace {

using test::NetCase;

const std::vector<NetCase> kNets{
    {"mlp:16-8", {1, 4, 4}, 1, InitKind::glorot_uniform},
    {"mlp:9/tanh", {5}, 3, InitKind::ntk},
    {"vgg:2", {3, 8, 8}, 1, InitKind::glorot_uniform},
    {"conv:3,M,2", {1, 6, 6}, 2, InitKind::he_normal},
    {"conv:3,R,M,R5", {1, 6, 6}, 2, InitKind::he_normal},
    {"resnet9:1", {3, 8, 8}, 1, InitKind::ntk},
};

Tensor random_inputs(const Shape& sample, int64_t count, Rng& rng) { return test::random_inputs(sample, count, rng, 0.0, 1.0); }

}  // namespace

TEST_CASE("both contraction methods agree, match J Jᵀ, and give a symmetric positive semi-definite Gram") {
  Rng rng(31);
  for (const NetCase& net : kNets) {
    const test::Network network_ = test::network({net.spec, net.sample, net.outputs, net.init, 5});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    const Tensor x = random_inputs(net.sample, 70, rng);  // three tiles, the last partial
    const Tensor y = random_inputs(net.sample, 9, rng);
    NtkOptions jacobian_options, structured_options;
    jacobian_options.method = KernelMethod::jacobian;
    structured_options.method = KernelMethod::structured;
    const Tensor by_jacobian = ntk_gram(*model, theta, x, nullptr, jacobian_options);
    const Tensor by_structure = ntk_gram(*model, theta, x, nullptr, structured_options);
    const Tensor automatic = ntk_gram(*model, theta, x, nullptr);
    INFO(net.spec);
    CHECK(by_jacobian.shape() == Shape{70 * net.outputs, 70 * net.outputs});
    CHECK(test::relative_error(by_jacobian, by_structure) < 1e-12);
    CHECK(test::relative_error(by_jacobian, automatic) < 1e-12);
    const Tensor J = per_sample_jacobian(*model, theta, x);
    Tensor reference({J.dim(0), J.dim(0)});
    reference.matrix() = J.matrix() * J.matrix().transpose();
    CHECK(test::relative_error(automatic, reference) < 1e-12);
    // Exact symmetry and PSD.
    CHECK((automatic.matrix() - automatic.matrix().transpose()).cwiseAbs().maxCoeff() == 0.0);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(Eigen::MatrixXd(automatic.matrix()));
    CHECK(eigen.eigenvalues().minCoeff() >= -1e-10 * automatic.matrix().trace());
    // A cross Gram equals J_x J_yᵀ.
    const Tensor cross = ntk_gram(*model, theta, x, &y);
    const Tensor Jy = per_sample_jacobian(*model, theta, y);
    Tensor cross_reference({J.dim(0), Jy.dim(0)});
    cross_reference.matrix() = J.matrix() * Jy.matrix().transpose();
    CHECK(test::relative_error(cross, cross_reference) < 1e-12);
    // The diagonal alone and the trace reduction.
    const Tensor diagonal = ntk_diagonal(*model, theta, x);
    Tensor reference_diagonal({J.dim(0)});
    for (int64_t r = 0; r < J.dim(0); ++r) reference_diagonal[r] = reference[r * J.dim(0) + r];
    CHECK(test::relative_error(diagonal, reference_diagonal) < 1e-12);
    NtkOptions traced;
    traced.trace_outputs = true;
    const Tensor reduced = ntk_gram(*model, theta, x, &y, traced);
    const int64_t C = net.outputs;
    double worst = 0.0;
    for (int64_t n = 0; n < 70; ++n)
      for (int64_t k = 0; k < 9; ++k) {
        double total = 0;
        for (int64_t c = 0; c < C; ++c) total += cross_reference[(n * C + c) * 9 * C + k * C + c];
        worst = std::max(worst, std::abs(total - reduced[n * 9 + k]) / std::max(1e-300, std::abs(total)));
      }
    CHECK(worst < 1e-11);
  }
}

TEST_CASE("the Gram is bit-identical for 1, 2 and 4 threads") {
  Rng rng(41);
  const test::Network network_ = test::network({"vgg:2", {3, 8, 8}, 2, InitKind::glorot_uniform, 1});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  const Tensor x = random_inputs({3, 8, 8}, 100, rng);
  std::vector<Tensor> grams, diagonals, conjugates;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 4}) {
    omp_set_num_threads(threads);
    grams.push_back(ntk_gram(*model, theta, x, nullptr));
    diagonals.push_back(ntk_diagonal(*model, theta, x));
    conjugates.push_back(conjugate_kernel(*model, theta, x, nullptr));
  }
  omp_set_num_threads(saved);
  for (int k : {1, 2}) {
    CHECK(test::bit_equal(grams[0], grams[static_cast<size_t>(k)]));
    CHECK(test::bit_equal(diagonals[0], diagonals[static_cast<size_t>(k)]));
    CHECK(test::bit_equal(conjugates[0], conjugates[static_cast<size_t>(k)]));
  }
}

TEST_CASE("a tight memory budget (several panels) gives the same Gram") {
  Rng rng(43);
  const test::Network network_ = test::network({"mlp:8", {6}, 1, InitKind::glorot_uniform, 1});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  const Tensor x = random_inputs({6}, 130, rng);
  NtkOptions tight;
  tight.memory_budget_bytes = 1.0;
  tight.method = KernelMethod::jacobian;
  NtkOptions roomy;
  roomy.method = KernelMethod::jacobian;
  CHECK(test::bit_equal(ntk_gram(*model, theta, x, nullptr, tight), ntk_gram(*model, theta, x, nullptr, roomy)));
}

TEST_CASE("the conjugate kernel of resnet9 is φφᵀ of its globally pooled features, which the head maps to the output") {
  Rng rng(53);
  const test::Network network = test::network({"resnet9:1", {3, 8, 8}, 1, InitKind::he_normal, 2});
  const Tensor x = random_inputs({3, 8, 8}, 9, rng);
  const Tensor features = conjugate_features(*network.model, network.theta, x);
  REQUIRE(features.shape() == Shape{9, 8});
  const Tensor output = network.model->apply(network.theta, x);
  const Parameters& theta = network.theta;
  for (int64_t n = 0; n < 9; ++n) {
    double f = theta.back()[0];  // the head's bias, then its weight against the pooled features
    for (int64_t k = 0; k < 8; ++k) f += theta[theta.size() - 2][k] * features[n * 8 + k];
    CHECK(f == doctest::Approx(output[n]).epsilon(1e-14));
  }
  const Tensor K = conjugate_kernel(*network.model, theta, x, nullptr);
  Tensor reference({9, 9});
  reference.matrix() = features.matrix() * features.matrix().transpose();
  CHECK(test::relative_error(K, reference) < 1e-14);
}

TEST_CASE("conjugate kernel is φφᵀ of the last hidden layer; cosine normalisation puts ones on the diagonal") {
  Rng rng(47);
  const test::Network network_ = test::network({"mlp:12-7", {4}, 1, InitKind::glorot_uniform, 2});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  const Tensor x = random_inputs({4}, 40, rng);
  const Tensor features = conjugate_features(*model, theta, x);
  CHECK(features.shape() == Shape{40, 7});
  // The features are the last hidden activations: relu(...) ≥ 0 and the final layer maps them to the output.
  CHECK(features.vector().minCoeff() >= 0.0);
  const Tensor K = conjugate_kernel(*model, theta, x, nullptr);
  Tensor reference({40, 40});
  reference.matrix() = features.matrix() * features.matrix().transpose();
  CHECK(test::relative_error(K, reference) < 1e-14);
  const Tensor diagonal = ntk_diagonal(*model, theta, x);
  const Tensor cosine = cosine_normalise(ntk_gram(*model, theta, x, nullptr), diagonal, diagonal);
  for (int64_t n = 0; n < 40; ++n) CHECK(cosine[n * 40 + n] == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(cosine.vector().cwiseAbs().maxCoeff() <= 1.0 + 1e-12);
}

TEST_CASE("the cost model takes the structured path for dense layers and the Jacobian path for early convolutions") {
  const auto model = build_model({"vgg:16", {3, 32, 32}, 1, InitKind::glorot_uniform, 0});
  const auto methods = chosen_methods(*model, {3, 32, 32}, KernelMethod::automatic);
  REQUIRE(methods.size() == 5);
  CHECK(methods[0] == KernelMethod::jacobian);
  CHECK(methods[4] == KernelMethod::structured);
}

}  // namespace ks
