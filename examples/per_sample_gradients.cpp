// Example: per-sample gradients of a small ReLU network worked out by hand for its first dense layer, checked against the
// library's per_sample_jacobian. It does not train anything; read it top to bottom next to the chain rule.
//
// The network is f(x) = w2 · relu(W1 x + b1) + b2 with x in R^3 and 4 hidden units. For one sample x, write
//   z = W1 x + b1   (pre-activations),   h = relu(z),   f = w2 · h + b2.
// The chain rule gives, for the first layer's parameters,
//   ∂f/∂b1[j]    = w2[j] · relu'(z[j])              (call it delta[j])
//   ∂f/∂W1[j][k] = delta[j] · x[k]                  (an outer product: delta ⊗ x)
// That outer-product shape is why per-sample gradients of dense layers are cheap: no backward pass per sample is needed.
#include <cmath>
#include <cstdio>

#include "autodiff/graph.h"
#include "kernels/trace.h"
#include "nn/layers.h"
#include "nn/model.h"

int main() {
  using namespace ks;
  // "mlp:4" is Flatten, Dense(3, 4), ReLU, Dense(4, 1); parameters come in PyTorch state_dict order: 1.weight, 1.bias,
  // 3.weight, 3.bias.
  const ModelOptions options{"mlp:4", {3}, 1, InitKind::glorot_uniform, /*seed=*/7};
  const auto model = build_model(options);                      // the structure
  const Parameters theta = initial_parameters(*model, options);  // θ: a value, passed to whatever needs it
  const Tensor& W1 = theta[0];  // 1.weight (4, 3)
  const Tensor& b1 = theta[1];  // 1.bias (4)
  const Tensor& w2 = theta[2];  // 3.weight (1, 4)

  // Five samples, one per row.
  const int64_t samples = 5;
  Tensor inputs({samples, 3});
  for (int64_t i = 0; i < inputs.numel(); ++i) inputs[i] = std::sin(1.7 * static_cast<double>(i) + 0.3);

  // The library: one (samples, P) matrix of per-sample gradients, columns in state_dict order.
  const Tensor jacobian = per_sample_jacobian(*model, theta, inputs);
  const int64_t P = model->parameter_count();
  std::printf("per_sample_jacobian: %lld samples x %lld parameters\n", static_cast<long long>(samples), static_cast<long long>(P));

  double largest_difference = 0.0;
  for (int64_t n = 0; n < samples; ++n) {
    const double* x = inputs.data() + n * 3;
    for (int64_t j = 0; j < 4; ++j) {
      double z = b1[j];
      for (int64_t k = 0; k < 3; ++k) z += W1[j * 3 + k] * x[k];
      const double delta = z > 0 ? w2[j] : 0.0;  // relu'(z) is 1 above zero, 0 below
      // Columns 0..11 hold 1.weight (row-major, 4 x 3), columns 12..15 hold 1.bias.
      for (int64_t k = 0; k < 3; ++k) largest_difference = std::max(largest_difference, std::abs(delta * x[k] - jacobian[n * P + j * 3 + k]));
      largest_difference = std::max(largest_difference, std::abs(delta - jacobian[n * P + 12 + j]));
    }
  }
  std::printf("largest difference between the hand-written gradient and the library's: %.1e\n", largest_difference);

  // And the library's rows are what a plain backward pass gives, one sample at a time.
  double backward_difference = 0.0;
  for (int64_t n = 0; n < samples; ++n) {
    Tensor one({1, 3});
    for (int64_t k = 0; k < 3; ++k) one[k] = inputs[n * 3 + k];
    std::vector<Var> parameters;
    for (const Tensor& tensor : theta) parameters.push_back(parameter(tensor));
    backward(model->forward(constant(one), parameters));
    int64_t column = 0;
    for (const Var& parameter : parameters)
      for (int64_t i = 0; i < parameter->grad.numel(); ++i) backward_difference = std::max(backward_difference, std::abs(parameter->grad[i] - jacobian[n * P + column++]));
  }
  std::printf("largest difference from one backward pass per sample:                %.1e\n", backward_difference);
  const bool agree = largest_difference < 1e-14 && backward_difference < 1e-14;
  std::printf(agree ? "they agree to rounding.\n" : "they DISAGREE.\n");
  return agree ? 0 : 1;
}
