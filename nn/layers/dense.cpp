// The dense (PyTorch Linear) layer kind through the layer contract: tape forward, batched and segment apply, pull-back,
// per-sample gradient rows δ⊗x and the structured Gram block (δ_a·δ_b)(m²·x_a·x_b + 1). Nothing else lives here.
#include <algorithm>

#include "autodiff/random.h"
#include "nn/layers.h"

namespace ks {

namespace {

class Dense : public Layer {
 public:
  explicit Dense(DenseOptions o) : o_(o) {}
  std::string kind() const override { return "dense"; }
  std::string describe() const override {
    return "Linear(" + std::to_string(o_.in_features) + ", " + std::to_string(o_.out_features) + ")";
  }
  std::vector<NamedShape> parameter_shapes() const override {
    std::vector<NamedShape> shapes{{"weight", {o_.out_features, o_.in_features}}};
    if (o_.bias) shapes.push_back({"bias", {o_.out_features}});
    return shapes;
  }
  Shape output_shape(const Shape& input) const override {
    if (input.size() != 2 || input[1] != o_.in_features) layer_shape_error(*this, input);
    return {input[0], o_.out_features};
  }
  void initialise(Tensor* tensors, InitKind init, Rng& rng) const override {
    draw_weight(tensors[0], o_.in_features, o_.out_features, init, rng);
  }

  Var forward(const Var& input, const Var* parameters) const override {
    const Var effective = o_.weight_multiplier == 1.0 ? parameters[0] : scale(parameters[0], o_.weight_multiplier);
    return linear(input, effective, o_.bias ? parameters[1] : nullptr);
  }

  Tensor apply(const Tensor& input, LayerWeights w, ForwardState*) const override {
    const int64_t N = output_shape(input.shape())[0];
    Tensor out = Tensor::uninitialised({N, o_.out_features});  // every value is written by linear_forward
    const ScaledWeight weight = scaled_weight(w[0], o_.weight_multiplier);
    linear_forward(out.data(), input.data(), weight.values, w.bias_or_null(1), N, o_.in_features, o_.out_features);
    return out;
  }

  // Base, then the direction's product added with each row's t: no θ(t) is formed.
  Tensor apply_segment(const Tensor& input, const LayerSegment& segment, ForwardState* state) const override {
    Tensor out = apply(input, segment.base, state);
    const int64_t N = out.dim(0);
    Tensor extra = apply(input, segment.direction, nullptr);
    add_scaled_rows(out.data(), extra.data(), *segment.t, N, o_.out_features, 1);
    return out;
  }

  Tensor pull_back(const Tensor& signal, int64_t C, const ForwardState& state, LayerWeights w,
                   const LayerSegment* segment) const override {
    const int64_t rows = signal.dim(0), I = o_.in_features, O = o_.out_features;
    Tensor previous(with_batch(state.input.shape(), rows));
    const ScaledWeight weight = scaled_weight(w[0], o_.weight_multiplier);
    linear_backward(previous.data(), nullptr, nullptr, signal.data(), nullptr, weight.values, rows, I, O);
    if (segment) {
      const ScaledWeight direction = scaled_weight(segment->direction[0], o_.weight_multiplier);
      Tensor extra(previous.shape());
      linear_backward(extra.data(), nullptr, nullptr, signal.data(), nullptr, direction.values, rows, I, O);
      add_scaled_rows(previous.data(), extra.data(), *segment->t, rows, I, C);
    }
    return previous;
  }

  void gradient_rows(const LayerSignals& s, int64_t C, double* jacobian, int64_t stride, int64_t offset) const override {
    const int64_t rows = s.delta.dim(0), O = o_.out_features, I = o_.in_features;
    for (int64_t r = 0; r < rows; ++r) {
      const double* delta = s.delta.data() + r * O;  // (O)
      const double* a = s.input.data() + (r / C) * I;  // (I)
      double* row = jacobian + r * stride + offset;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i) row[o * I + i] = o_.weight_multiplier * delta[o] * a[i];
      if (o_.bias)
        for (int64_t o = 0; o < O; ++o) row[O * I + o] = delta[o];
    }
  }

  // Σ_r c_gr δ_r ⊗ m·x_n = m·E_gᵀ X with E_g(n) = Σ_c c_g,nC+c δ_nC+c: one GEMM per group instead of the rows.
  void gradient_sums(const LayerSignals& s, int64_t C, const MatrixRowMajor& coefficients, double* sums, int64_t sum_stride,
                     int64_t offset) const override {
    const int64_t rows = s.delta.dim(0), samples = s.input.dim(0), O = o_.out_features, I = o_.in_features;
    MatrixRowMajor signals(samples, O);  // (samples, O): E_g
    for (int64_t group = 0; group < coefficients.rows(); ++group) {
      signals.setZero();
      for (int64_t r = 0; r < rows; ++r)
        if (coefficients(group, r) != 0.0) signals.row(r / C) += coefficients(group, r) * s.delta.matrix().row(r);
      MatrixMap(sums + group * sum_stride + offset, O, I).noalias() += o_.weight_multiplier * (signals.transpose() * s.input.matrix());
      if (o_.bias) Eigen::Map<Eigen::RowVectorXd>(sums + group * sum_stride + offset + O * I, O) += signals.colwise().sum();
    }
  }

  // ⟨δ_r ⊗ m·x_r, δ_q ⊗ m·x_q⟩ + ⟨δ_r, δ_q⟩ = (δ_r·δ_q)(m² x_r·x_q + 1).
  void structured_block(const LayerSignals& a, const LayerSignals& b, int64_t C, MatrixRowMajor& K) const override {
    const double m2 = o_.weight_multiplier * o_.weight_multiplier, bias = o_.bias ? 1.0 : 0.0;
    const MatrixRowMajor deltas = a.delta.matrix() * b.delta.matrix().transpose();  // (rows_a, rows_b)
    const MatrixRowMajor inputs = a.input.matrix() * b.input.matrix().transpose();  // (samples_a, samples_b)
    for (int64_t r = 0; r < K.rows(); ++r)
      for (int64_t q = 0; q < K.cols(); ++q) K(r, q) += deltas(r, q) * (m2 * inputs(r / C, q / C) + bias);
  }

  // Per pair of rows: O + I for the structured form against a gradient row of O·I (+O); ties go structured.
  KernelCost cost(const Shape&) const override {
    const double O = static_cast<double>(o_.out_features), I = static_cast<double>(o_.in_features);
    return {O + I, O * I + (o_.bias ? O : 0.0)};
  }
  PieceInfo piece() const override { return {PieceRole::parameterised}; }

 private:
  DenseOptions o_;
};

}  // namespace

std::unique_ptr<Layer> make_dense(DenseOptions options) { return std::make_unique<Dense>(options); }

}  // namespace ks
