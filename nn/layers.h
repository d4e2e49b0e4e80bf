// Layers: small types with forward and parameters(), configured by options structs, and Sequential to chain them.
// They do not train (train.h) nor parse specs (model.h); parameter names follow PyTorch's state_dict.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/functions.h"

namespace ks {

using NamedParameter = std::pair<std::string, Var>;

class Layer {
 public:
  virtual ~Layer() = default;
  virtual Var forward(const Var& input) const = 0;
  virtual std::vector<NamedParameter> parameters() const { return {}; }
  virtual std::string describe() const = 0;  // as PyTorch prints it, e.g. "Linear(784, 512)"
};

struct DenseOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool bias = true;
  // The NTK parameterisation multiplies the weight by 1/sqrt(fan_in) in the forward pass; 1 otherwise.
  double weight_multiplier = 1.0;
};

class Dense : public Layer {
 public:
  explicit Dense(DenseOptions options);
  Var forward(const Var& input) const override;
  std::vector<NamedParameter> parameters() const override;
  std::string describe() const override;
  const DenseOptions& options() const { return options_; }
  Var weight, bias;  // (out, in), (out)

 private:
  DenseOptions options_;
};

struct Conv2dLayerOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t padding = 1;
  bool bias = true;
  double weight_multiplier = 1.0;
};

class Conv2d : public Layer {
 public:
  explicit Conv2d(Conv2dLayerOptions options);
  Var forward(const Var& input) const override;
  std::vector<NamedParameter> parameters() const override;
  std::string describe() const override;
  const Conv2dLayerOptions& options() const { return options_; }
  Var weight, bias;  // (out, in, k, k), (out)

 private:
  Conv2dLayerOptions options_;
};

enum class ActivationKind { relu, tanh, softplus };
std::string activation_name(ActivationKind kind);

class Activation : public Layer {
 public:
  explicit Activation(ActivationKind kind) : kind_(kind) {}
  Var forward(const Var& input) const override;
  std::string describe() const override;
  ActivationKind kind() const { return kind_; }

 private:
  ActivationKind kind_;
};

struct PoolOptions {
  int64_t kernel = 2;
  int64_t stride = 2;
};

class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(PoolOptions options) : options_(options) {}
  Var forward(const Var& input) const override { return maxpool2d(input, {options_.kernel, options_.stride}); }
  std::string describe() const override;
  const PoolOptions& options() const { return options_; }

 private:
  PoolOptions options_;
};

class AvgPool2d : public Layer {
 public:
  explicit AvgPool2d(PoolOptions options) : options_(options) {}
  Var forward(const Var& input) const override { return avgpool2d(input, {options_.kernel, options_.stride}); }
  std::string describe() const override;

 private:
  PoolOptions options_;
};

class Flatten : public Layer {
 public:
  Var forward(const Var& input) const override { return flatten(input); }
  std::string describe() const override { return "Flatten()"; }
};

class Sequential {
 public:
  void add(std::unique_ptr<Layer> layer) { layers_.push_back(std::move(layer)); }
  Var forward(const Var& input) const;
  // Every parameter as "<layer index>.<name>", in state_dict order.
  std::vector<NamedParameter> parameters() const;
  std::vector<Var> parameter_vars() const;
  int64_t parameter_count() const;
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  std::string describe() const;

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
};

}  // namespace ks
