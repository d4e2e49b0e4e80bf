// Per-sample gradients from one batched forward and one (N·C)-row backward, against N·C single-sample tape backward passes
// and against central finite differences. Kernels built from them are tested in test_ntk.cpp.
#include <doctest/doctest.h>

#include "kernels/trace.h"
#include "nn/model.h"
#include "tests/helpers.h"

namespace ks {

// Row n·C + c of the Jacobian by the tape: one backward per sample and output.
static Tensor tape_jacobian(const Sequential& model, const Parameters& theta, const Tensor& inputs) {
  const int64_t N = inputs.dim(0), row_size = inputs.numel() / N;
  const auto params = test::parameter_vars(theta);
  const int64_t P = model.parameter_count();
  Shape one = inputs.shape();
  one[0] = 1;
  int64_t C = 0;
  std::vector<std::vector<double>> rows;
  for (int64_t n = 0; n < N; ++n) {
    Tensor x(one, std::vector<double>(inputs.data() + n * row_size, inputs.data() + (n + 1) * row_size));
    Var out = model.forward(constant(x), params);
    C = out->value.dim(1);
    for (int64_t c = 0; c < C; ++c) {
      zero_grad(params);
      Tensor seed(out->shape());
      seed[c] = 1.0;
      backward(model.forward(constant(x), params), seed);
      std::vector<double> row;
      for (const Var& p : params) row.insert(row.end(), p->grad.values().begin(), p->grad.values().end());
      rows.push_back(row);
    }
  }
  Tensor J({N * C, P});
  for (size_t r = 0; r < rows.size(); ++r) std::copy(rows[r].begin(), rows[r].end(), J.data() + static_cast<int64_t>(r) * P);
  return J;
}

using test::NetCase;

const std::vector<NetCase> kNets{
    {"mlp:7-5", {3}, 1, InitKind::glorot_uniform},
    {"mlp:6/tanh", {2, 2}, 3, InitKind::ntk},
    {"mlp:6/softplus", {4}, 2, InitKind::he_normal},
    {"conv:3,M,4", {2, 6, 6}, 1, InitKind::glorot_uniform},
    {"vgg:2", {3, 8, 8}, 3, InitKind::ntk},
    {"conv:3,R,M,R5", {2, 6, 6}, 2, InitKind::he_normal},  // residual sums, identity and 1x1 projection
    {"conv:R4,M", {2, 6, 6}, 1, InitKind::ntk},             // a block reading the network's input
    {"resnet9:1", {3, 8, 8}, 2, InitKind::glorot_uniform},
};

TEST_CASE("the batched Jacobian equals N·C single-sample tape backward passes within 1e-13") {
  Rng rng(17);
  for (const NetCase& net : kNets) {
    const test::Network network_ = test::network({net.spec, net.sample, net.outputs, net.init, 3});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    const Tensor inputs = test::random_inputs(net.sample, 5, rng);
    const Tensor fast = per_sample_jacobian(*model, theta, inputs), slow = tape_jacobian(*model, theta, inputs);
    INFO(net.spec);
    REQUIRE(fast.shape() == slow.shape());
    CHECK(fast.vector().norm() > 0.0);
    CHECK(test::relative_error(fast, slow) < 1e-13);
  }
}

TEST_CASE("the batched Jacobian matches central finite differences within 1e-7") {
  Rng rng(23);
  for (const NetCase& net : kNets) {
    const test::Network network_ = test::network({net.spec, net.sample, net.outputs, net.init, 4});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    const Tensor inputs = test::random_inputs(net.sample, 2, rng);
    const Tensor J = per_sample_jacobian(*model, theta, inputs);
    const auto params = test::parameter_vars(theta);
    const int64_t P = model->parameter_count(), rows = J.dim(0);
    Tensor numeric({rows, P});
    const double h = 1e-6;
    int64_t column = 0;
    for (const Var& p : params)
      for (int64_t i = 0; i < p->value.numel(); ++i, ++column) {
        const double saved = p->value[i];
        p->value[i] = saved + h;
        const Tensor plus = model->forward(constant(inputs), params)->value;
        p->value[i] = saved - h;
        const Tensor minus = model->forward(constant(inputs), params)->value;
        p->value[i] = saved;
        for (int64_t r = 0; r < rows; ++r) numeric[r * P + column] = (plus[r] - minus[r]) / (2 * h);
      }
    INFO(net.spec);
    CHECK(test::relative_error(J, numeric) < 1e-7);
  }
}

}  // namespace ks
