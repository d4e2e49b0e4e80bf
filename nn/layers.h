// The layer kinds' options and factories (each kind's code is in nn/layers/<kind>.cpp) and Sequential, which chains them.
// No parameters live here: Sequential is structure only, θ is a Parameters value passed to every function that needs it.
#pragma once

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

class Sequential {
 public:
  void add(std::unique_ptr<Layer> layer);
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
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
  // (N, ...) in → (N, ...) out, from the layers' shape rules.
  Shape output_shape(const Shape& input) const;
  // The forward on the tape with the given parameter Vars (training).
  Var forward(const Var& input, const std::vector<Var>& parameters) const;
  // The forward without a tape at θ: the same bits as forward.
  Tensor apply(const Parameters& theta, const Tensor& input) const;

 private:
  // The parameter layout, fixed when a layer is added (layers are immutable), so traces never recompute it.
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<int64_t> first_parameter_, layer_tensors_, layer_values_;  // per layer
  std::vector<std::string> names_;
  std::vector<Shape> shapes_;
  int64_t values_ = 0;
};

}  // namespace ks
