// The elementwise activation layer kinds (ReLU, tanh, softplus) through the layer contract.
// ReLU is piecewise linear (the piece finder looks for sign changes); tanh and softplus are smooth.
#include "nn/layers.h"

#include <algorithm>

namespace ks {

std::string activation_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::relu: return "relu";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::softplus: return "softplus";
  }
  return "?";
}

namespace {

class Activation : public Layer {
 public:
  explicit Activation(ActivationKind kind) : kind_(kind) {}
  std::string kind() const override { return activation_name(kind_); }
  std::string describe() const override {
    switch (kind_) {
      case ActivationKind::relu: return "ReLU()";
      case ActivationKind::tanh: return "Tanh()";
      case ActivationKind::softplus: return "Softplus()";
    }
    return "?";
  }
  Shape output_shape(const Shape& input) const override { return input; }

  Var forward(const Var& input, const Var*) const override {
    switch (kind_) {
      case ActivationKind::relu: return relu(input);
      case ActivationKind::tanh: return tanh(input);
      case ActivationKind::softplus: return softplus(input);
    }
    return input;
  }

  // tanh's pull-back reads the output, so the state keeps it; the others read the input.
  Tensor apply(const Tensor& input, LayerWeights, ForwardState* state) const override {
    Tensor out = Tensor::uninitialised(input.shape());  // every value is written below
    switch (kind_) {
      case ActivationKind::relu: relu_forward(out.data(), input.data(), input.numel()); break;
      case ActivationKind::tanh: tanh_forward(out.data(), input.data(), input.numel()); break;
      case ActivationKind::softplus: softplus_forward(out.data(), input.data(), input.numel()); break;
    }
    if (state && kind_ == ActivationKind::tanh) state->output = out;
    return out;
  }

  Tensor pull_back(const Tensor& signal, int64_t C, const ForwardState& state, LayerWeights, const LayerSegment*) const override {
    const int64_t rows = signal.dim(0), N = state.input.dim(0), size = state.input.numel() / std::max<int64_t>(N, 1);
    Tensor previous = Tensor::uninitialised(with_batch(state.input.shape(), rows));  // every row written below
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / C;
      const double* in = state.input.data() + n * size;
      const double* d = signal.data() + r * size;
      double* target = previous.data() + r * size;
      if (kind_ != ActivationKind::relu) std::fill_n(target, size, 0.0);  // their backwards add
      switch (kind_) {
        // relu_backward into zeros, in one pass and without the zero fill: 0.0 + d keeps its bits (a −0 becomes +0).
        case ActivationKind::relu:
          for (int64_t i = 0; i < size; ++i) target[i] = in[i] > 0.0 ? 0.0 + d[i] : 0.0;
          break;
        case ActivationKind::tanh: tanh_backward(target, d, state.output.data() + n * size, size); break;
        case ActivationKind::softplus: softplus_backward(target, d, in, size); break;
      }
    }
    return previous;
  }

  PieceInfo piece() const override { return {kind_ == ActivationKind::relu ? PieceRole::relu_like : PieceRole::smooth}; }

 private:
  ActivationKind kind_;
};

}  // namespace

std::unique_ptr<Layer> make_activation(ActivationKind kind) { return std::make_unique<Activation>(kind); }

}  // namespace ks
