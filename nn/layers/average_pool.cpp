// The 2-d average-pooling layer kind through the layer contract: a k×k window with stride k (`A`, `A3` in conv: specs),
// or global over a square image (`AG`, PyTorch's AdaptiveAvgPool2d(1)). Linear and parameter-free: pull-back is the adjoint.
#include "nn/layers.h"

namespace ks {

namespace {

class AveragePool : public Layer {
 public:
  explicit AveragePool(AveragePoolOptions o) : o_(o) {}
  std::string kind() const override { return "average_pool"; }
  std::string describe() const override {
    if (o_.global) return "AdaptiveAvgPool2d(1)";
    return "AvgPool2d(" + std::to_string(o_.kernel) + ", " + std::to_string(o_.stride) + ")";
  }
  // The one description of this pooling on an input batch; global pooling is one window over the whole image.
  Pool2dGeometry geometry(const Shape& input) const {
    if (input.size() != 4) layer_shape_error(*this, input);
    if (o_.global) {
      if (input[2] != input[3]) throw ShapeError(describe() + " needs a square image, got " + shape_string(input));
      return {input[0], input[1], input[2], input[3], input[2], input[2]};
    }
    if (input[2] < o_.kernel || input[3] < o_.kernel) layer_shape_error(*this, input);
    return {input[0], input[1], input[2], input[3], o_.kernel, o_.stride};
  }
  Shape output_shape(const Shape& input) const override {
    const Pool2dGeometry g = geometry(input);
    return {g.batch, g.channels, g.out_height(), g.out_width()};
  }
  Var forward(const Var& input, const Var*) const override {
    const Pool2dGeometry g = geometry(input->shape());
    return avgpool2d(input, {g.kernel, g.stride});
  }
  Tensor apply(const Tensor& input, LayerWeights, ForwardState*) const override {
    Tensor out = Tensor::uninitialised(output_shape(input.shape()));  // every value is written by avgpool2d_forward
    avgpool2d_forward(out.data(), input.data(), geometry(input.shape()));
    return out;
  }
  Tensor pull_back(const Tensor& signal, int64_t, const ForwardState& state, LayerWeights, const LayerSegment*) const override {
    Tensor previous(with_batch(state.input.shape(), signal.dim(0)));
    avgpool2d_backward(previous.data(), signal.data(), geometry(previous.shape()));
    return previous;
  }
  PieceInfo piece() const override { return {PieceRole::linear}; }

 private:
  AveragePoolOptions o_;
};

}  // namespace

std::unique_ptr<Layer> make_average_pool(AveragePoolOptions options) { return std::make_unique<AveragePool>(options); }

}  // namespace ks
