// The flatten layer kind through the layer contract: (N, ...) viewed as (N, features), the same numbers in a new shape.
// It has no parameters and is linear, so the piece finder passes the degree in t straight through.
#include "nn/layers.h"

namespace ks {

namespace {

class Flatten : public Layer {
 public:
  std::string kind() const override { return "flatten"; }
  std::string describe() const override { return "Flatten()"; }
  Shape output_shape(const Shape& input) const override {
    if (input.empty()) layer_shape_error(*this, input);
    return {input[0], input[0] ? shape_numel(input) / input[0] : 0};
  }
  Var forward(const Var& input, const Var*) const override { return flatten(input); }
  Tensor apply(const Tensor& input, LayerWeights, ForwardState*) const override { return input.reshaped(output_shape(input.shape())); }
  Tensor pull_back(const Tensor& signal, int64_t, const ForwardState& state, LayerWeights, const LayerSegment*) const override {
    return signal.reshaped(with_batch(state.input.shape(), signal.dim(0)));
  }
  PieceInfo piece() const override { return {PieceRole::linear}; }
};

}  // namespace

std::unique_ptr<Layer> make_flatten() { return std::make_unique<Flatten>(); }

}  // namespace ks
