// The small mechanics every layer kind shares (weight drawing, the multiplier, per-row t scaling) and Sequential.
// No layer kind's own arithmetic is here: that is in nn/layers/<kind>.cpp.
#include "nn/layers.h"

#include <cmath>
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

void Sequential::add(std::unique_ptr<Layer> layer) {
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

Shape Sequential::output_shape(const Shape& input) const {
  Shape shape = input;
  for (const auto& layer : layers_) shape = layer->output_shape(shape);
  return shape;
}

Var Sequential::forward(const Var& input, const std::vector<Var>& parameters) const {
  if (parameters.size() != shapes_.size())
    throw ShapeError("forward: the network has " + std::to_string(shapes_.size()) + " parameter tensors, got " + std::to_string(parameters.size()));
  Var x = input;
  for (size_t l = 0; l < layers_.size(); ++l) x = layers_[l]->forward(x, parameters.data() + first_parameter_[l]);
  return x;
}

Tensor Sequential::apply(const Parameters& theta, const Tensor& input) const {
  check_parameters(theta, "apply");
  Tensor x = input;
  for (size_t l = 0; l < layers_.size(); ++l) x = layers_[l]->apply(x, weights(theta, l), nullptr);
  return x;
}

std::string Sequential::describe() const {
  std::ostringstream out;
  out << "Sequential(\n";
  for (size_t i = 0; i < layers_.size(); ++i) out << "  (" << i << "): " << layers_[i]->describe() << "\n";
  out << ")";
  return out.str();
}

}  // namespace ks
