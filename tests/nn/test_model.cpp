// Architecture specs build exactly the PyTorch Sequential they name, with state_dict names, and initialise as documented.
// Training is tested in test_train.cpp.
#include <doctest/doctest.h>

#include "nn/model.h"
#include "tests/helpers.h"

namespace ks {

static std::vector<std::string> names_of(const Sequential& model) { return model.parameter_names(); }

TEST_CASE("mlp:512-512 is Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear) with PyTorch names") {
  const test::Network network_ = test::network({"mlp:512-512", {1, 28, 28}, 1, InitKind::glorot_uniform, 0});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  CHECK(names_of(*model) == std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"});
  CHECK(model->parameter_count() == 784 * 512 + 512 + 512 * 512 + 512 + 512 + 1);
  CHECK(theta[0].shape() == Shape{512, 784});
  CHECK(model->describe().find("(2): ReLU()") != std::string::npos);
}

TEST_CASE("vgg:16 is the after-kernel paper's VGG-like net") {
  const test::Network network_ = test::network({"vgg:16", {3, 32, 32}, 1, InitKind::glorot_uniform, 0});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  CHECK(names_of(*model) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias",
                                                     "7.weight", "7.bias", "11.weight", "11.bias"});
  CHECK(theta[6].shape() == Shape{32, 32, 3, 3});
  CHECK(theta[8].shape() == Shape{1, 32 * 8 * 8});
  Var out = model->forward(constant(Tensor({2, 3, 32, 32}, 0.5)), test::parameter_vars(theta));
  CHECK(out->shape() == Shape{2, 1});
  auto same = build_model({"conv:16,16,M,32,32,M", {3, 32, 32}, 1, InitKind::glorot_uniform, 0});
  CHECK(same->describe() == model->describe());
}

TEST_CASE("activation suffix, multi-class head and NTK parameterisation") {
  const test::Network network_ = test::network({"mlp:8/tanh", {2}, 3, InitKind::ntk, 1});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  CHECK(model->describe().find("Tanh()") != std::string::npos);
  Var out = model->forward(constant(Tensor({4, 2}, 1.0)), test::parameter_vars(theta));
  CHECK(out->shape() == Shape{4, 3});
  // NTK: weights are N(0,1) draws, the forward multiplies by 1/sqrt(fan_in): one input in unit 0 gives w·x/sqrt(2).
  Tensor x({1, 2});
  x[0] = 1.0;
  Parameters zero_bias = theta;
  const Tensor hidden = model->layers()[1]->apply(x, model->weights(zero_bias, 1), nullptr);
  CHECK(hidden[0] == doctest::Approx(theta[0][0] / std::sqrt(2.0)));
}

TEST_CASE("Glorot-uniform stays within its limit and zero biases; the same seed gives the same bits") {
  const test::Network a = test::network({"mlp:300", {100}, 1, InitKind::glorot_uniform, 7});
  const test::Network b = test::network({"mlp:300", {100}, 1, InitKind::glorot_uniform, 7});
  const test::Network c = test::network({"mlp:300", {100}, 1, InitKind::glorot_uniform, 8});
  const Tensor& w = a.theta[0];
  const double limit = std::sqrt(6.0 / 400.0);
  CHECK(w.vector().maxCoeff() <= limit);
  CHECK(w.vector().minCoeff() >= -limit);
  CHECK(w.vector().maxCoeff() > 0.95 * limit);
  CHECK(a.theta[1].vector().norm() == 0.0);
  CHECK(test::bit_equal(w, b.theta[0]));
  CHECK_FALSE(test::bit_equal(w, c.theta[0]));
  const test::Network he = test::network({"mlp:2000", {500}, 1, InitKind::he_normal, 7});
  const Tensor& hw = he.theta[0];
  CHECK(std::sqrt(hw.vector().squaredNorm() / hw.numel()) == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.01));
}

TEST_CASE("bad specs say what is wrong") {
  CHECK_THROWS_WITH_AS(build_model({"mlp:12-x", {4}, 1}), doctest::Contains("'x' is not a width"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"resnet:18", {4}, 1}), doctest::Contains("unknown family"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"vgg:8", {4}, 1}), doctest::Contains("image inputs"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"mlp:8/gelu", {4}, 1}), doctest::Contains("unknown activation"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"conv:4,M,M,M", {1, 4, 4}, 1}), doctest::Contains("max-pool"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"conv:4,R/tanh", {1, 4, 4}, 1}), doctest::Contains("residual blocks use ReLU"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"resnet9:x", {3, 8, 8}, 1}), doctest::Contains("'x' is not a width"), std::invalid_argument);
}

TEST_CASE("resnet9:W is the fast CIFAR-10 ResNet's layout without BatchNorm, with residual sums and PyTorch names") {
  const auto model = build_model({"resnet9:8", {3, 32, 32}, 1});
  CHECK(model->layers().size() == 24);
  CHECK(model->output_shape({5, 3, 32, 32}) == Shape{5, 1});
  // prep 3→8, layer1 8→16 + pool + residual(16), layer2 16→32 + pool, layer3 32→64 + pool + residual(64), global pool, head.
  const std::vector<std::string> expected{"0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias", "7.weight", "7.bias",
                                          "10.weight", "10.bias", "13.weight", "13.bias", "16.weight", "16.bias", "18.weight", "18.bias",
                                          "23.weight", "23.bias"};
  CHECK(model->parameter_names() == expected);
  CHECK(model->parameter_shapes()[4] == Shape{16, 16, 3, 3});
  CHECK(model->parameter_shapes()[16] == Shape{1, 64});
  CHECK(model->sources(9) == std::vector<int64_t>{8, 4});  // the identity sums the branch's ReLU and the block's input
  CHECK(model->layers()[9]->kind() == "identity");
  CHECK(model->describe().find("(9): Identity()  <- sum of (8) (4)") != std::string::npos);
  // A block changing the width projects its input by a 1x1 convolution.
  const auto projected = build_model({"conv:4,R6", {1, 6, 6}, 1});
  CHECK(projected->parameter_shapes()[6] == Shape{6, 4, 1, 1});
  CHECK(projected->sources(6) == std::vector<int64_t>{1});
  CHECK(projected->sources(7) == std::vector<int64_t>{5, 6});
}

TEST_CASE("a layer may read only earlier layers, each once") {
  Sequential model;
  model.add(make_identity());
  CHECK_THROWS_WITH_AS(model.add(make_identity(), {1}), doctest::Contains("cannot read layer 1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(model.add(make_identity(), {0, 0}), doctest::Contains("cannot read layer 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(model.add(make_identity(), {}), doctest::Contains("reads nothing"), std::invalid_argument);
  model.add(make_flatten());
  model.add(make_identity(), {1, Sequential::kNetworkInput});
  CHECK(model.sources(1) == std::vector<int64_t>{0});  // the refused layers left nothing behind
  CHECK_THROWS_WITH_AS(model.output_shape({2, 3, 2}), doctest::Contains("sums outputs of shapes"), ShapeError);
}

}  // namespace ks

namespace ks {

TEST_CASE("--num-parameters picks the widths Long's code picks: MLP 94 / 32 and VGG 38 / 37 for 10^5 on MNIST / CIFAR") {
  CHECK(long_sized_spec("mlp", {1, 28, 28}, 100000) == "mlp:94-94-94-94");
  CHECK(long_sized_spec("mlp", {3, 32, 32}, 100000) == "mlp:32-32-32-32");
  CHECK(long_sized_spec("vgg", {1, 28, 28}, 100000) == "vgg:38");
  CHECK(long_sized_spec("vgg", {3, 32, 32}, 100000) == "vgg:37");
  // His counts are approximate; the nets built are what PyTorch would count.
  CHECK(build_model({"vgg:38", {1, 28, 28}, 1})->parameter_count() == 95267);
  CHECK(build_model({"mlp:94-94-94-94", {1, 28, 28}, 1})->parameter_count() == 100675);
  CHECK_THROWS_WITH_AS(long_sized_spec("conv", {1, 28, 28}, 100000), doctest::Contains("'conv'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(long_sized_spec("vgg", {10}, 100000), doctest::Contains("square images"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(long_sized_spec("mlp", {10}, 5), doctest::Contains("outside"), std::invalid_argument);
}

}  // namespace ks
