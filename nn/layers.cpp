// The layer types' forward passes, parameter lists and PyTorch-style descriptions.
// No initialisation here: parameters start at zero and model.cpp draws them.
#include "nn/layers.h"

#include <sstream>

namespace ks {

Dense::Dense(DenseOptions options)
    : weight(parameter(Tensor({options.out_features, options.in_features}))),
      bias(options.bias ? parameter(Tensor({options.out_features})) : nullptr),
      options_(options) {}

Var Dense::forward(const Var& input) const {
  const Var effective = options_.weight_multiplier == 1.0 ? weight : scale(weight, options_.weight_multiplier);
  return linear(input, effective, bias);
}

std::vector<NamedParameter> Dense::parameters() const {
  std::vector<NamedParameter> named{{"weight", weight}};
  if (bias) named.emplace_back("bias", bias);
  return named;
}

std::string Dense::describe() const {
  return "Linear(" + std::to_string(options_.in_features) + ", " + std::to_string(options_.out_features) + ")";
}

Conv2d::Conv2d(Conv2dLayerOptions options)
    : weight(parameter(Tensor({options.out_channels, options.in_channels, options.kernel, options.kernel}))),
      bias(options.bias ? parameter(Tensor({options.out_channels})) : nullptr),
      options_(options) {}

Var Conv2d::forward(const Var& input) const {
  const Var effective = options_.weight_multiplier == 1.0 ? weight : scale(weight, options_.weight_multiplier);
  return conv2d(input, effective, bias, {options_.stride, options_.padding});
}

std::vector<NamedParameter> Conv2d::parameters() const {
  std::vector<NamedParameter> named{{"weight", weight}};
  if (bias) named.emplace_back("bias", bias);
  return named;
}

std::string Conv2d::describe() const {
  std::ostringstream out;
  out << "Conv2d(" << options_.in_channels << ", " << options_.out_channels << ", " << options_.kernel
      << ", stride=" << options_.stride << ", padding=" << options_.padding << ")";
  return out.str();
}

std::string activation_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::relu: return "relu";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::softplus: return "softplus";
  }
  return "?";
}

Var Activation::forward(const Var& input) const {
  switch (kind_) {
    case ActivationKind::relu: return relu(input);
    case ActivationKind::tanh: return tanh(input);
    case ActivationKind::softplus: return softplus(input);
  }
  return input;
}

std::string Activation::describe() const {
  switch (kind_) {
    case ActivationKind::relu: return "ReLU()";
    case ActivationKind::tanh: return "Tanh()";
    case ActivationKind::softplus: return "Softplus()";
  }
  return "?";
}

std::string MaxPool2d::describe() const {
  return "MaxPool2d(" + std::to_string(options_.kernel) + ", " + std::to_string(options_.stride) + ")";
}

std::string AvgPool2d::describe() const {
  return "AvgPool2d(" + std::to_string(options_.kernel) + ", " + std::to_string(options_.stride) + ")";
}

Var Sequential::forward(const Var& input) const {
  Var x = input;
  for (const auto& layer : layers_) x = layer->forward(x);
  return x;
}

std::vector<NamedParameter> Sequential::parameters() const {
  std::vector<NamedParameter> named;
  for (size_t i = 0; i < layers_.size(); ++i)
    for (auto& [name, var] : layers_[i]->parameters()) named.emplace_back(std::to_string(i) + "." + name, var);
  return named;
}

std::vector<Var> Sequential::parameter_vars() const {
  std::vector<Var> vars;
  for (auto& named : parameters()) vars.push_back(named.second);
  return vars;
}

int64_t Sequential::parameter_count() const {
  int64_t count = 0;
  for (auto& named : parameters()) count += named.second->value.numel();
  return count;
}

std::string Sequential::describe() const {
  std::ostringstream out;
  out << "Sequential(\n";
  for (size_t i = 0; i < layers_.size(); ++i) out << "  (" << i << "): " << layers_[i]->describe() << "\n";
  out << ")";
  return out.str();
}

}  // namespace ks
