// A batch of N gives the same outputs and summed parameter gradients as N single-sample passes.
// This guards against ops that mix samples; it does not check gradients against finite differences.
#include <doctest/doctest.h>

#include "autodiff/functions.h"
#include "tests/helpers.h"

namespace ks {
namespace {

struct SmallConvNet {
  Var conv_weight, conv_bias, dense_weight, dense_bias;
  explicit SmallConvNet(Rng& rng)
      : conv_weight(parameter(test::random_tensor({3, 2, 3, 3}, rng, -0.5, 0.5))),
        conv_bias(parameter(test::random_tensor({3}, rng, -0.1, 0.1))),
        dense_weight(parameter(test::random_tensor({4, 3 * 3 * 3}, rng, -0.5, 0.5))),
        dense_bias(parameter(test::random_tensor({4}, rng, -0.1, 0.1))) {}
  std::vector<Var> parameters() const { return {conv_weight, conv_bias, dense_weight, dense_bias}; }
  Var forward(const Var& x) const {  // (N, 2, 6, 6) -> (N, 4)
    Var h = relu(conv2d(x, conv_weight, conv_bias, {1, 1}));
    h = avgpool2d(maxpool2d(h, {2, 2}), {1, 1});
    return linear(tanh(flatten(h)), dense_weight, dense_bias);
  }
};

TEST_CASE("a batch equals N single-sample passes: outputs and summed parameter gradients") {
  Rng rng(5);
  SmallConvNet net(rng);
  const int64_t N = 37;  // more than one conv chunk
  const Tensor inputs = test::random_tensor({N, 2, 6, 6}, rng);
  const std::vector<int> labels = [&] {
    std::vector<int> l;
    for (int64_t n = 0; n < N; ++n) l.push_back(static_cast<int>(rng.below(4)));
    return l;
  }();

  // Summed (not mean) loss so the batch gradient is the sum of the per-sample ones.
  Var batch_out = net.forward(constant(inputs));
  backward(scale(cross_entropy(batch_out, labels), static_cast<double>(N)));
  std::vector<Tensor> batch_grads;
  for (const Var& p : net.parameters()) batch_grads.push_back(p->grad);
  zero_grad(net.parameters());

  const int64_t size = inputs.numel() / N;
  Tensor single_outputs(batch_out->shape());
  for (int64_t n = 0; n < N; ++n) {
    Tensor x({1, 2, 6, 6}, std::vector<double>(inputs.data() + n * size, inputs.data() + (n + 1) * size));
    Var out = net.forward(constant(x));
    std::copy_n(out->value.data(), 4, single_outputs.data() + n * 4);
    backward(cross_entropy(out, {labels[static_cast<size_t>(n)]}));
  }
  CHECK(test::relative_error(batch_out->value, single_outputs) < 1e-13);
  for (size_t k = 0; k < batch_grads.size(); ++k) {
    INFO("parameter " << k);
    CHECK(test::relative_error(batch_grads[k], net.parameters()[k]->grad) < 1e-13);
  }
}

}  // namespace
}  // namespace ks
