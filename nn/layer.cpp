// The small mechanics every layer kind shares (weight drawing, the multiplier, per-row t scaling) and Sequential.
// No layer kind's own arithmetic is here: that is in nn/layers/<kind>.cpp.
#include "nn/layers.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <sstream>

#include "autodiff/random.h"

namespace ks {

void draw_weight(Tensor& w, int64_t fan_in, int64_t fan_out, InitKind init, Rng& rng) {
  const double glorot_limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  const double he_std = std::sqrt(2.0 / static_cast<double>(fan_in));
  for (int64_t i = 0; i < w.numel(); ++i) {
    switch (init) {
      case InitKind::glorot_uniform: w[i] = rng.uniform(-glorot_limit, glorot_limit); break;
      case InitKind::he_normal: w[i] = he_std * rng.normal(); break;
      case InitKind::ntk: w[i] = rng.normal(); break;
    }
  }
}

ScaledWeight scaled_weight(const Tensor& weight, double multiplier) {
  ScaledWeight w;
  if (multiplier == 1.0) {
    w.values = weight.data();
  } else {
    w.scaled = weight;
    w.scaled.vector() *= multiplier;
    w.values = w.scaled.data();
  }
  return w;
}

void add_scaled_rows(double* out, const double* extra, const std::vector<double>& t, int64_t rows, int64_t size, int64_t group) {
  for (int64_t r = 0; r < rows; ++r) {
    const double scale = t[static_cast<size_t>(r / group)];
    for (int64_t k = 0; k < size; ++k) out[r * size + k] += scale * extra[r * size + k];
  }
}

// The obvious form, and the reference the kinds' own GEMM forms are tested against: every row, then its weighted sum.
void Layer::gradient_sums(const LayerSignals& s, int64_t rows_per_sample, const MatrixRowMajor& coefficients, double* sums,
                          int64_t sum_stride, int64_t offset) const {
  const int64_t rows = s.delta.dim(0), P = s.parameter_size;
  if (P == 0) return;
  MatrixRowMajor gradient = MatrixRowMajor::Zero(rows, P);
  gradient_rows(s, rows_per_sample, gradient.data(), P, 0);
  for (int64_t g = 0; g < coefficients.rows(); ++g)
    Eigen::Map<Eigen::RowVectorXd>(sums + g * sum_stride + offset, P).noalias() += coefficients.row(g) * gradient;
}

Shape with_batch(Shape shape, int64_t batch) {
  shape[0] = batch;
  return shape;
}

void layer_shape_error(const Layer& layer, const Shape& input) {
  throw ShapeError(layer.describe() + " cannot take an input of shape " + shape_string(input));
}

void Sequential::add(std::unique_ptr<Layer> layer) { add(std::move(layer), {static_cast<int64_t>(layers_.size()) - 1}); }

void Sequential::add(std::unique_ptr<Layer> layer, std::vector<int64_t> sources) {
  const auto index = static_cast<int64_t>(layers_.size());
  if (sources.empty()) throw std::invalid_argument("Sequential: layer " + std::to_string(index) + " reads nothing");
  if (last_reader_.empty()) last_reader_.push_back(kNotRead), skipped_.push_back(false);  // the network's input
  for (size_t k = 0; k < sources.size(); ++k) {
    const int64_t source = sources[k];
    const auto earlier = sources.begin() + static_cast<int64_t>(k);
    if (source < kNetworkInput || source >= index || std::find(sources.begin(), earlier, source) != earlier)
      throw std::invalid_argument("Sequential: layer " + std::to_string(index) + " cannot read layer " + std::to_string(source) +
                                  " (sources are earlier layers, or -1 for the input, each once)");
  }
  for (int64_t source : sources) {
    last_reader_[static_cast<size_t>(source + 1)] = index;
    if (source != index - 1) skipped_[static_cast<size_t>(source + 1)] = true;
  }
  last_reader_.push_back(kNotRead);
  skipped_.push_back(false);
  sources_.push_back(std::move(sources));
  const std::vector<NamedShape> own = layer->parameter_shapes();
  first_parameter_.push_back(static_cast<int64_t>(shapes_.size()));
  layer_tensors_.push_back(static_cast<int64_t>(own.size()));
  int64_t values = 0;
  for (const NamedShape& p : own) {
    names_.push_back(std::to_string(layers_.size()) + "." + p.name);
    shapes_.push_back(p.shape);
    values += shape_numel(p.shape);
  }
  layer_values_.push_back(values);
  values_ += values;
  layers_.push_back(std::move(layer));
}

Tensor add_tensors(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) throw ShapeError("cannot add outputs of shapes " + shape_string(a.shape()) + " and " + shape_string(b.shape()));
  Tensor sum = Tensor::uninitialised(a.shape());  // every value written below
  for (int64_t i = 0; i < a.numel(); ++i) sum[i] = a[i] + b[i];
  return sum;
}

LayerWeights Sequential::weights(const Parameters& theta, size_t layer) const {
  const int64_t count = layer_tensors_[layer];
  return count ? LayerWeights{theta.data() + first_parameter_[layer], count} : LayerWeights{};
}

void Sequential::check_parameters(const Parameters& theta, const std::string& who) const {
  if (theta.size() != shapes_.size())
    throw ShapeError(who + ": the network has " + std::to_string(shapes_.size()) + " parameter tensors, θ has " + std::to_string(theta.size()));
  for (size_t k = 0; k < shapes_.size(); ++k)
    if (theta[k].shape() != shapes_[k])
      throw ShapeError(who + ": parameter " + names_[k] + " is " + shape_string(shapes_[k]) + ", θ has " + shape_string(theta[k].shape()));
}

std::vector<Shape> Sequential::input_shapes(const Shape& input) const {
  std::vector<Shape> values{input}, inputs;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const std::vector<int64_t>& from = sources_[l];
    const Shape& shape = values[static_cast<size_t>(from[0] + 1)];
    for (int64_t source : from)
      if (values[static_cast<size_t>(source + 1)] != shape)
        throw ShapeError("layer " + std::to_string(l) + " (" + layers_[l]->describe() + ") sums outputs of shapes " + shape_string(shape) + " and " +
                         shape_string(values[static_cast<size_t>(source + 1)]));
    inputs.push_back(shape);
    values.push_back(layers_[l]->output_shape(shape));
  }
  return inputs;
}

Shape Sequential::output_shape(const Shape& input) const {
  if (layers_.empty()) return input;
  return layers_.back()->output_shape(input_shapes(input).back());
}

Var Sequential::forward(const Var& input, const std::vector<Var>& parameters) const {
  if (parameters.size() != shapes_.size())
    throw ShapeError("forward: the network has " + std::to_string(shapes_.size()) + " parameter tensors, got " + std::to_string(parameters.size()));
  std::vector<Var> values{input};
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Var x = gather_input(l, values, [](const Var& a, const Var& b) { return ks::add(a, b); });
    values.push_back(layers_[l]->forward(x, parameters.data() + first_parameter_[l]));
  }
  return values.back();
}

Tensor Sequential::apply(const Parameters& theta, const Tensor& input) const {
  check_parameters(theta, "apply");
  std::vector<Tensor> values{input};
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Tensor x = gather_input(l, values, add_tensors);
    values.push_back(layers_[l]->apply(x, weights(theta, l), nullptr));
  }
  return values.back();
}

std::string Sequential::describe() const {
  std::ostringstream out;
  out << "Sequential(\n";
  for (size_t i = 0; i < layers_.size(); ++i) {
    out << "  (" << i << "): " << layers_[i]->describe();
    if (!chained(i)) {  // a sum of earlier outputs: name them
      out << "  <- sum of";
      for (int64_t source : sources_[i]) out << (source == kNetworkInput ? std::string(" input") : " (" + std::to_string(source) + ")");
    }
    out << "\n";
  }
  out << ")";
  return out.str();
}

}  // namespace ks
