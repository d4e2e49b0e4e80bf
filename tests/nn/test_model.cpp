// Architecture specs build exactly the PyTorch Sequential they name, with state_dict names, and initialise as documented.
// Training is tested in test_train.cpp.
#include <doctest/doctest.h>

#include "nn/model.h"
#include "tests/helpers.h"

namespace ks {

static std::vector<std::string> names_of(const Sequential& model) {
  std::vector<std::string> names;
  for (auto& named : model.parameters()) names.push_back(named.first);
  return names;
}

TEST_CASE("mlp:512-512 is Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear) with PyTorch names") {
  auto model = build_model({"mlp:512-512", {1, 28, 28}, 1, InitKind::glorot_uniform, 0});
  CHECK(names_of(*model) == std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"});
  CHECK(model->parameter_count() == 784 * 512 + 512 + 512 * 512 + 512 + 512 + 1);
  CHECK(model->parameters()[0].second->value.shape() == Shape{512, 784});
  CHECK(model->describe().find("(2): ReLU()") != std::string::npos);
}

TEST_CASE("vgg:16 is the after-kernel paper's VGG-like net") {
  auto model = build_model({"vgg:16", {3, 32, 32}, 1, InitKind::glorot_uniform, 0});
  CHECK(names_of(*model) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias",
                                                     "7.weight", "7.bias", "11.weight", "11.bias"});
  CHECK(model->parameters()[6].second->value.shape() == Shape{32, 32, 3, 3});
  CHECK(model->parameters()[8].second->value.shape() == Shape{1, 32 * 8 * 8});
  Var out = model->forward(constant(Tensor({2, 3, 32, 32}, 0.5)));
  CHECK(out->shape() == Shape{2, 1});
  auto same = build_model({"conv:16,16,M,32,32,M", {3, 32, 32}, 1, InitKind::glorot_uniform, 0});
  CHECK(same->describe() == model->describe());
}

TEST_CASE("activation suffix, multi-class head and NTK parameterisation") {
  auto model = build_model({"mlp:8/tanh", {2}, 3, InitKind::ntk, 1});
  CHECK(model->describe().find("Tanh()") != std::string::npos);
  Var out = model->forward(constant(Tensor({4, 2}, 1.0)));
  CHECK(out->shape() == Shape{4, 3});
  // NTK: weights are N(0,1) draws, the forward multiplies by 1/sqrt(fan_in).
  auto* dense = dynamic_cast<Dense*>(model->layers()[1].get());
  REQUIRE(dense);
  CHECK(dense->options().weight_multiplier == doctest::Approx(1 / std::sqrt(2.0)));
}

TEST_CASE("Glorot-uniform stays within its limit and zero biases; the same seed gives the same bits") {
  auto a = build_model({"mlp:300", {100}, 1, InitKind::glorot_uniform, 7});
  auto b = build_model({"mlp:300", {100}, 1, InitKind::glorot_uniform, 7});
  auto c = build_model({"mlp:300", {100}, 1, InitKind::glorot_uniform, 8});
  const Tensor& w = a->parameters()[0].second->value;
  const double limit = std::sqrt(6.0 / 400.0);
  CHECK(w.vector().maxCoeff() <= limit);
  CHECK(w.vector().minCoeff() >= -limit);
  CHECK(w.vector().maxCoeff() > 0.95 * limit);
  CHECK(a->parameters()[1].second->value.vector().norm() == 0.0);
  CHECK(test::bit_equal(w, b->parameters()[0].second->value));
  CHECK_FALSE(test::bit_equal(w, c->parameters()[0].second->value));
  auto he = build_model({"mlp:2000", {500}, 1, InitKind::he_normal, 7});
  const Tensor& hw = he->parameters()[0].second->value;
  CHECK(std::sqrt(hw.vector().squaredNorm() / hw.numel()) == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.01));
}

TEST_CASE("bad specs say what is wrong") {
  CHECK_THROWS_WITH_AS(build_model({"mlp:12-x", {4}, 1}), doctest::Contains("'x' is not a width"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"resnet:18", {4}, 1}), doctest::Contains("unknown family"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"vgg:8", {4}, 1}), doctest::Contains("image inputs"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"mlp:8/gelu", {4}, 1}), doctest::Contains("unknown activation"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"conv:4,M,M,M", {1, 4, 4}, 1}), doctest::Contains("max-pool"), std::invalid_argument);
}

}  // namespace ks
