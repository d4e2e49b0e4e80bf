// The residual block (two 3×3 convolutions with ReLU, added to the block's input or to its 1×1 projection) and the
// identity layer kind its sum lands on. The block is appended as primitive layers and a sum, so every kernel method,
// the piece finder and the generic layer test see only kinds they know; this file adds no arithmetic of its own.
#include "nn/layers.h"

namespace ks {

namespace {

// The layer a residual sum lands on: y = x. (The sum itself is the network's wiring: Sequential::add with sources.)
class Identity : public Layer {
 public:
  std::string kind() const override { return "identity"; }
  std::string describe() const override { return "Identity()"; }
  Shape output_shape(const Shape& input) const override {
    if (input.empty()) layer_shape_error(*this, input);
    return input;
  }
  Var forward(const Var& input, const Var*) const override { return input; }
  Tensor apply(const Tensor& input, LayerWeights, ForwardState*) const override { return input; }
  Tensor pull_back(const Tensor& signal, int64_t, const ForwardState&, LayerWeights, const LayerSegment*) const override { return signal; }
  PieceInfo piece() const override { return {PieceRole::linear}; }
};

}  // namespace

std::unique_ptr<Layer> make_identity() { return std::make_unique<Identity>(); }

// Layers b, b+1, b+2, b+3: conv 3×3 (stride), ReLU, conv 3×3, ReLU, reading layer b − 1; then, when the shape changes,
// b+4: a 1×1 projection conv (stride, no padding) reading layer b − 1; last the identity reading the branch's ReLU plus
// the skip (layer b − 1, or the projection). As in the fast CIFAR-10 ResNet (Page 2018), without BatchNorm.
void add_residual_block(Sequential& model, const ResidualBlockOptions& o) {
  const int64_t input = static_cast<int64_t>(model.layers().size()) - 1;  // kNetworkInput when the block comes first
  model.add(make_conv2d({o.in_channels, o.out_channels, 3, o.stride, 1, o.bias, o.branch_multiplier_first}));
  model.add(make_activation(ActivationKind::relu));
  model.add(make_conv2d({o.out_channels, o.out_channels, 3, 1, 1, o.bias, o.branch_multiplier_second}));
  model.add(make_activation(ActivationKind::relu));
  const int64_t branch = static_cast<int64_t>(model.layers().size()) - 1;
  int64_t skip = input;
  if (o.in_channels != o.out_channels || o.stride != 1) {
    model.add(make_conv2d({o.in_channels, o.out_channels, 1, o.stride, 0, o.bias, o.projection_multiplier}), {input});
    skip = static_cast<int64_t>(model.layers().size()) - 1;
  }
  model.add(make_identity(), {branch, skip});
}

}  // namespace ks
