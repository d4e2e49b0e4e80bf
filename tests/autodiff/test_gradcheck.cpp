// The generic gradient checker: every differentiable op against central finite differences, with a random upstream gradient.
// It also checks that backward adds into an existing gradient. It does not test speed or the conv fast path (test_conv.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "autodiff/functions.h"
#include "tests/helpers.h"

namespace ks {
namespace {

struct OpCase {
  std::string op;  // the Node::op it exercises
  std::string description;
  std::vector<Shape> input_shapes;
  std::function<Var(const std::vector<Var>&)> build;
  // Optional: reshape the random inputs (keep relu inputs off the kink, make max-pool windows tie-free).
  std::function<void(std::vector<Tensor>&, Rng&)> prepare = nullptr;
};

// Values at least 0.05 from zero, so a ±1e-6 step never crosses a relu kink.
void away_from_zero(std::vector<Tensor>& inputs, Rng& rng) {
  for (Tensor& t : inputs)
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = (rng.uniform() < 0.5 ? -1.0 : 1.0) * rng.uniform(0.05, 1.0);
}

// Distinct values spaced 0.01 apart, shuffled, so no max-pool window has a near tie.
void distinct_values(std::vector<Tensor>& inputs, Rng& rng) {
  Tensor& t = inputs[0];
  std::vector<int64_t> order = rng.permutation(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = 0.01 * static_cast<double>(order[static_cast<size_t>(i)]) - 0.3;
}

const std::vector<int> kBinaryLabels{0, 1, 1, 0, 1};
const std::vector<int> kClassLabels{2, 0, 3, 1, 2};

std::vector<OpCase> op_table() {
  auto first = [](const std::vector<Var>& v) { return v[0]; };
  (void)first;
  return {
      {"matmul", "(4,3) x (3,5)", {{4, 3}, {3, 5}}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"linear", "with bias", {{4, 3}, {5, 3}, {5}}, [](auto& v) { return linear(v[0], v[1], v[2]); }},
      {"linear", "no bias", {{2, 6}, {3, 6}}, [](auto& v) { return linear(v[0], v[1], nullptr); }},
      {"add", "same shape", {{3, 4}, {3, 4}}, [](auto& v) { return add(v[0], v[1]); }},
      {"add", "bias broadcast", {{2, 3, 4}, {4}}, [](auto& v) { return add(v[0], v[1]); }},
      {"sub", "bias broadcast", {{3, 4}, {4}}, [](auto& v) { return sub(v[0], v[1]); }},
      {"mul", "same shape", {{3, 4}, {3, 4}}, [](auto& v) { return mul(v[0], v[1]); }},
      {"mul", "bias broadcast", {{2, 2, 3}, {2, 3}}, [](auto& v) { return mul(v[0], v[1]); }},
      {"scale", "by 0.37", {{3, 4}}, [](auto& v) { return scale(v[0], 0.37); }},
      {"sum", "all values", {{3, 4}}, [](auto& v) { return sum(v[0]); }},
      {"mean", "all values", {{3, 4}}, [](auto& v) { return mean(v[0]); }},
      {"reshape", "flatten", {{2, 3, 2, 2}}, [](auto& v) { return flatten(v[0]); }},
      {"relu", "off the kink", {{4, 5}}, [](auto& v) { return relu(v[0]); }, away_from_zero},
      {"tanh", "", {{4, 5}}, [](auto& v) { return tanh(v[0]); }},
      {"sigmoid", "", {{4, 5}}, [](auto& v) { return sigmoid(v[0]); }},
      {"softplus", "", {{4, 5}}, [](auto& v) { return softplus(v[0]); }},
      {"conv2d", "3x3 pad 1", {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}},
       [](auto& v) { return conv2d(v[0], v[1], v[2], {1, 1}); }},
      {"conv2d", "stride 2 no bias", {{2, 2, 7, 6}, {3, 2, 3, 3}},
       [](auto& v) { return conv2d(v[0], v[1], nullptr, {2, 0}); }},
      {"conv2d", "5x5 stride 2 pad 2", {{1, 2, 6, 6}, {2, 2, 5, 5}, {2}},
       [](auto& v) { return conv2d(v[0], v[1], v[2], {2, 2}); }},
      {"maxpool2d", "2x2", {{2, 3, 4, 6}}, [](auto& v) { return maxpool2d(v[0], {2, 2}); }, distinct_values},
      {"maxpool2d", "3x3 stride 2", {{1, 2, 7, 7}}, [](auto& v) { return maxpool2d(v[0], {3, 2}); }, distinct_values},
      {"avgpool2d", "2x2", {{2, 3, 4, 6}}, [](auto& v) { return avgpool2d(v[0], {2, 2}); }},
      {"logistic_loss", "(N)", {{5}}, [](auto& v) { return logistic_loss(v[0], kBinaryLabels); }},
      {"logistic_loss", "(N,1) large logits", {{5, 1}},
       [](auto& v) { return logistic_loss(v[0], kBinaryLabels); },
       [](std::vector<Tensor>& t, Rng& rng) { for (int64_t i = 0; i < 5; ++i) t[0][i] = rng.uniform(-30, 30); }},
      {"cross_entropy", "4 classes", {{5, 4}}, [](auto& v) { return cross_entropy(v[0], kClassLabels); }},
      {"mse_loss", "", {{5, 3}},
       [](auto& v) {
         Rng rng(7);
         return mse_loss(v[0], test::random_tensor({5, 3}, rng));
       }},
  };
}

double upstream_dot(const Var& out, const Tensor& upstream) { return out->value.vector().dot(upstream.vector()); }

TEST_CASE("every differentiable op is in the gradient checker's table") {
  std::vector<std::string> covered;
  for (const OpCase& c : op_table()) covered.push_back(c.op);
  for (const std::string& op : differentiable_ops()) {
    INFO("op missing from the table: " << op);
    CHECK(std::find(covered.begin(), covered.end(), op) != covered.end());
  }
}

TEST_CASE("backward matches central differences and adds into existing gradients, for every op") {
  Rng rng(2024);
  for (const OpCase& c : op_table()) {
    std::vector<Tensor> values;
    for (const Shape& s : c.input_shapes) values.push_back(test::random_tensor(s, rng));
    if (c.prepare) c.prepare(values, rng);
    std::vector<Var> inputs;
    for (const Tensor& v : values) inputs.push_back(parameter(v));
    Var out = c.build(inputs);
    REQUIRE(out->op == c.op);
    const Tensor upstream = test::random_tensor(out->shape(), rng);
    // Pre-existing gradients: backward must add to them, not overwrite them.
    std::vector<Tensor> previous;
    for (const Var& in : inputs) {
      previous.push_back(test::random_tensor(in->shape(), rng));
      in->grad = previous.back();
    }
    backward(out, upstream);
    const double step = 1e-6;
    for (size_t k = 0; k < inputs.size(); ++k) {
      Tensor analytic = inputs[k]->grad;
      analytic.vector() -= previous[k].vector();
      Tensor numeric(values[k].shape());
      for (int64_t i = 0; i < values[k].numel(); ++i) {
        std::vector<Var> plus, minus;
        for (size_t j = 0; j < values.size(); ++j) {
          Tensor p = values[j], m = values[j];
          if (j == k) {
            p[i] += step;
            m[i] -= step;
          }
          plus.push_back(constant(p));
          minus.push_back(constant(m));
        }
        numeric[i] = (upstream_dot(c.build(plus), upstream) - upstream_dot(c.build(minus), upstream)) / (2 * step);
      }
      INFO(c.op << " (" << c.description << "), input " << k << " " << shape_string(values[k].shape()));
      CHECK(numeric.vector().norm() > 0.0);
      CHECK(test::relative_error(analytic, numeric) < 1e-7);
    }
  }
}

TEST_CASE("a node without a backward fails loudly, naming the op") {
  Var x = parameter(Tensor({2}, 1.0));
  Var broken = make_node("mystery_op", Tensor({1}, 2.0), {x}, nullptr);
  try {
    backward(broken);
    FAIL("backward through an op without backward did not throw");
  } catch (const std::logic_error& error) {
    CHECK(std::string(error.what()).find("mystery_op") != std::string::npos);
  }
}

TEST_CASE("parameter gradients accumulate across backward calls until zero_grad") {
  Rng rng(3);
  Var w = parameter(test::random_tensor({3, 2}, rng));
  Var x = constant(test::random_tensor({4, 2}, rng));
  backward(sum(linear(x, w, nullptr)));
  const Tensor once = w->grad;
  backward(sum(linear(x, w, nullptr)));
  Tensor twice = once;
  twice.vector() *= 2.0;
  CHECK(test::relative_error(w->grad, twice) < 1e-15);
  zero_grad({w});
  CHECK(w->grad.vector().norm() == 0.0);
}

TEST_CASE("a deep chain runs backward without recursion") {
  Var x = parameter(Tensor({1}, 0.5));
  Var y = x;
  for (int i = 0; i < 200000; ++i) y = scale(y, 1.0);
  backward(y);
  CHECK(x->grad[0] == 1.0);
}

}  // namespace
}  // namespace ks
