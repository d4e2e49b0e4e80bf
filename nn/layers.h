// The layer kinds' options and factories (each kind's code is in nn/layers/<kind>.cpp) and Sequential, which chains them.
// No parameters live here: Sequential is structure only, θ is a Parameters value passed to every function that needs it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/layer.h"

namespace ks {

struct DenseOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
  // The NTK parameterisation multiplies the weight by 1/sqrt(fan_in) in the forward pass; 1 otherwise.
  double weight_multiplier = 1.0;
};
std::unique_ptr<Layer> make_dense(DenseOptions options);

struct Conv2dLayerOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t padding = 1;
  bool bias = true;
  double weight_multiplier = 1.0;
};
std::unique_ptr<Layer> make_conv2d(Conv2dLayerOptions options);

enum class ActivationKind { relu, tanh, softplus };
std::string activation_name(ActivationKind kind);
std::unique_ptr<Layer> make_activation(ActivationKind kind);

struct PoolOptions {
  int64_t kernel = 2;
  int64_t stride = 2;
};
std::unique_ptr<Layer> make_max_pool(PoolOptions options);
// Average pooling: a k×k window with a stride, or global (the whole image, as AdaptiveAvgPool2d(1)).
struct AveragePoolOptions {
  int64_t kernel = 2;
  int64_t stride = 2;
  bool global = false;
};
std::unique_ptr<Layer> make_average_pool(AveragePoolOptions options);
std::unique_ptr<Layer> make_flatten();
// y = x: the layer a residual sum lands on.
std::unique_ptr<Layer> make_identity();

// A residual block, appended to `model` after its current last layer (the block's input): nn/layers/residual.cpp.
struct ResidualBlockOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t stride = 1;  // of the first convolution and the projection
  bool bias = true;
  // The NTK parameterisation's 1/sqrt(fan_in) per convolution (1 otherwise).
  double branch_multiplier_first = 1.0, branch_multiplier_second = 1.0, projection_multiplier = 1.0;
};
class Sequential;
void add_residual_block(Sequential& model, const ResidualBlockOptions& options);

// The network: layers in order, each reading the previous layer's output, or (residual nets) the sum of some earlier
// layers' outputs. Every driver walks it the same way, llm.c style: a flat loop forward, the signals backward in
// reverse, a layer's input gradient added into each layer it reads (dlib's rule: backward adds into input gradients).
class Sequential {
 public:
  static constexpr int64_t kNetworkInput = -1;  // a source: the network's own input
  static constexpr int64_t kNotRead = INT64_MAX;  // last_reader of an output no layer reads (the network's output)
  void add(std::unique_ptr<Layer> layer);  // reads the previous layer's output
  // Reads the sum of these earlier layers' outputs (kNetworkInput: the network's input), e.g. a residual connection.
  // Throws std::invalid_argument when a source is not an earlier layer or is repeated.
  void add(std::unique_ptr<Layer> layer, std::vector<int64_t> sources);
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  const std::vector<int64_t>& sources(size_t layer) const { return sources_[layer]; }
  bool chained(size_t layer) const { return sources_[layer].size() == 1 && sources_[layer][0] == static_cast<int64_t>(layer) - 1; }
  // The last layer that reads layer `source`'s output (kNetworkInput: the input); layers().size() for the network's output.
  int64_t last_reader(int64_t source) const { return last_reader_[static_cast<size_t>(source + 1)]; }
  // Whether a layer other than source + 1 reads it: the walks must keep that output.
  bool read_later(int64_t source) const { return skipped_[static_cast<size_t>(source + 1)]; }
  std::string describe() const;
  // Every parameter as "<layer index>.<name>", in state_dict order, with its shape.
  const std::vector<std::string>& parameter_names() const { return names_; }
  const std::vector<Shape>& parameter_shapes() const { return shapes_; }
  int64_t parameter_tensors() const { return static_cast<int64_t>(shapes_.size()); }
  int64_t parameter_count() const { return values_; }  // values, all tensors
  int64_t layer_parameter_size(size_t layer) const { return layer_values_[layer]; }  // layer l's values, all its tensors
  // Layer l's slice of θ; θ must have the network's shapes (check_parameters).
  LayerWeights weights(const Parameters& theta, size_t layer) const;
  int64_t first_parameter(size_t layer) const { return first_parameter_[layer]; }
  // Throws ShapeError naming the parameter when θ does not fit the network.
  void check_parameters(const Parameters& theta, const std::string& who) const;
  // (N, ...) in → (N, ...) out, from the layers' shape rules; throws ShapeError naming the layers whose sum mismatches.
  Shape output_shape(const Shape& input) const;
  // Every layer's input shape for a network input of this shape.
  std::vector<Shape> input_shapes(const Shape& input) const;
  // The forward on the tape with the given parameter Vars (training).
  Var forward(const Var& input, const std::vector<Var>& parameters) const;
  // The forward without a tape at θ: the same bits as forward.
  Tensor apply(const Parameters& theta, const Tensor& input) const;

  // Layer l's input from values[k + 1] = layer k's output (values[0]: the network's input): its one source, or the sum
  // of its sources in the order given. A value no later layer reads is moved out, not copied.
  template <class T, class Add>
  T gather_input(size_t l, std::vector<T>& values, const Add& add) const {
    const std::vector<int64_t>& from = sources_[l];
    auto take = [&](int64_t source) -> T {
      T& value = values[static_cast<size_t>(source + 1)];
      if (last_reader(source) == static_cast<int64_t>(l)) return std::move(value);
      return value;
    };
    T sum = take(from[0]);
    for (size_t k = 1; k < from.size(); ++k) sum = add(sum, take(from[k]));
    return sum;
  }

 private:
  // The parameter layout, fixed when a layer is added (layers are immutable), so traces never recompute it.
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::vector<int64_t>> sources_;
  std::vector<int64_t> last_reader_;  // per value: the input, then each layer's output
  std::vector<bool> skipped_;         // per value: read by a layer other than the next
  std::vector<int64_t> first_parameter_, layer_tensors_, layer_values_;  // per layer
  std::vector<std::string> names_;
  std::vector<Shape> shapes_;
  int64_t values_ = 0;
};

// a + b, element by element (the sum at a layer reading several outputs); throws ShapeError when the shapes differ.
Tensor add_tensors(const Tensor& a, const Tensor& b);

}  // namespace ks
