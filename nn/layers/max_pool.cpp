// The 2-d max-pooling layer kind through the layer contract: winners kept by apply, signals routed back to them,
// and the window the piece finder watches for a change of winner. No padding; ties go to the first in row-major order.
#include "nn/layers.h"

namespace ks {

namespace {

class MaxPool : public Layer {
 public:
  explicit MaxPool(PoolOptions o) : o_(o) {}
  std::string kind() const override { return "max_pool"; }
  std::string describe() const override { return "MaxPool2d(" + std::to_string(o_.kernel) + ", " + std::to_string(o_.stride) + ")"; }
  // The one description of this pooling on an input batch.
  Pool2dGeometry geometry(const Shape& input) const {
    if (input.size() != 4 || input[2] < o_.kernel || input[3] < o_.kernel) layer_shape_error(*this, input);
    return {input[0], input[1], input[2], input[3], o_.kernel, o_.stride};
  }
  Shape output_shape(const Shape& input) const override {
    const Pool2dGeometry g = geometry(input);
    return {g.batch, g.channels, g.out_height(), g.out_width()};
  }
  Var forward(const Var& input, const Var*) const override { return maxpool2d(input, {o_.kernel, o_.stride}); }

  Tensor apply(const Tensor& input, LayerWeights, ForwardState* state) const override {
    const Pool2dGeometry g = geometry(input.shape());
    Tensor out = Tensor::uninitialised(output_shape(input.shape()));  // maxpool2d_forward writes every window
    std::vector<int64_t> argmax(static_cast<size_t>(out.numel()));
    maxpool2d_forward(out.data(), argmax.data(), input.data(), g);
    if (state) state->argmax = std::move(argmax);
    return out;
  }

  Tensor pull_back(const Tensor& signal, int64_t C, const ForwardState& state, LayerWeights, const LayerSegment*) const override {
    const int64_t rows = signal.dim(0), N = state.input.dim(0);
    const int64_t in_size = state.input.numel() / N, out_size = signal.numel() / std::max<int64_t>(rows, 1);
    Tensor previous(with_batch(state.input.shape(), rows));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / C;
      for (int64_t o = 0; o < out_size; ++o) {
        const int64_t source = state.argmax[static_cast<size_t>(n * out_size + o)] - n * in_size;
        previous[r * in_size + source] += signal[r * out_size + o];
      }
    }
    return previous;
  }

  PieceInfo piece() const override { return {PieceRole::max_window, o_.kernel, o_.stride}; }

 private:
  PoolOptions o_;
};

}  // namespace

std::unique_ptr<Layer> make_max_pool(PoolOptions options) { return std::make_unique<MaxPool>(options); }

}  // namespace ks
