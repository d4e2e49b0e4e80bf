// The 2-d convolution layer kind through the layer contract, with its fast paths: on a segment each sample's weight at
// its own t (segment apply and pull-back), per-sample gradient rows δ·patchesᵀ, the structured block. No GEMM code here.
#include <algorithm>

#include "autodiff/random.h"
#include "nn/layers.h"

namespace ks {

namespace {

class Conv2d : public Layer {
 public:
  explicit Conv2d(Conv2dLayerOptions o) : o_(o) {}
  std::string kind() const override { return "conv2d"; }
  std::string describe() const override {
    return "Conv2d(" + std::to_string(o_.in_channels) + ", " + std::to_string(o_.out_channels) + ", " + std::to_string(o_.kernel) +
           ", stride=" + std::to_string(o_.stride) + ", padding=" + std::to_string(o_.padding) + ")";
  }
  std::vector<NamedShape> parameter_shapes() const override {
    std::vector<NamedShape> shapes{{"weight", {o_.out_channels, o_.in_channels, o_.kernel, o_.kernel}}};
    if (o_.bias) shapes.push_back({"bias", {o_.out_channels}});
    return shapes;
  }
  // The one description of this layer's convolution on an input batch of `batch` samples.
  Conv2dGeometry geometry(const Shape& input, int64_t batch) const {
    if (input.size() != 4 || input[1] != o_.in_channels || input[2] + 2 * o_.padding < o_.kernel || input[3] + 2 * o_.padding < o_.kernel)
      layer_shape_error(*this, input);
    return {batch, o_.in_channels, input[2], input[3], o_.out_channels, o_.kernel, o_.stride, o_.padding};
  }
  Shape output_shape(const Shape& input) const override {
    const Conv2dGeometry g = geometry(input, input[0]);
    return {input[0], g.out_channels, g.out_height(), g.out_width()};
  }
  void initialise(Tensor* tensors, InitKind init, Rng& rng) const override {
    const int64_t area = o_.kernel * o_.kernel;
    draw_weight(tensors[0], o_.in_channels * area, o_.out_channels * area, init, rng);
  }

  Var forward(const Var& input, const Var* parameters) const override {
    const Var effective = o_.weight_multiplier == 1.0 ? parameters[0] : scale(parameters[0], o_.weight_multiplier);
    return conv2d(input, effective, o_.bias ? parameters[1] : nullptr, {o_.stride, o_.padding});
  }

  Tensor apply(const Tensor& input, LayerWeights w, ForwardState*) const override {
    const Conv2dGeometry g = geometry(input.shape(), input.dim(0));
    Tensor out = Tensor::uninitialised(output_shape(input.shape()));  // every value is written by conv2d_forward
    const ScaledWeight weight = scaled_weight(w[0], o_.weight_multiplier);
    conv2d_forward(out.data(), input.data(), weight.values, w.bias_or_null(1), g);
    return out;
  }

  // Row n at W_base + t_n·W_direction: the sample's own weight is formed (O·patch values, against O·patch·HW for the
  // product), then one convolution of O channels, half the arithmetic of convolving base and direction apart.
  Tensor apply_segment(const Tensor& input, const LayerSegment& segment, ForwardState*) const override {
    const int64_t N = input.dim(0);
    const Conv2dGeometry g = geometry(input.shape(), 1);
    const int64_t image = g.in_channels * g.height * g.width, out_size = g.out_channels * g.out_height() * g.out_width();
    Tensor out = Tensor::uninitialised(output_shape(input.shape()));  // every value is written by conv2d_forward_sample
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const SampleWeight w = weight_at(segment, (*segment.t)[static_cast<size_t>(n)]);
      conv2d_forward_sample(out.data() + n * out_size, input.data() + n * image, w.weight.data(), o_.bias ? w.bias.data() : nullptr, g);
    }
    return out;
  }

  Tensor pull_back(const Tensor& signal, int64_t C, const ForwardState& state, LayerWeights w,
                   const LayerSegment* segment) const override {
    const int64_t rows = signal.dim(0);
    Conv2dGeometry g = geometry(state.input.shape(), rows);
    if (!segment) {
      Tensor previous(with_batch(state.input.shape(), rows));  // conv2d_backward adds into it
      const ScaledWeight weight = scaled_weight(w[0], o_.weight_multiplier);
      conv2d_backward(previous.data(), nullptr, nullptr, signal.data(), nullptr, weight.values, g);
      return previous;
    }
    Tensor previous = Tensor::uninitialised(with_batch(state.input.shape(), rows));  // every row is assigned below
    // Row r pulls back through its sample's W_base + t·W_direction, formed once per sample, transposed as it is formed
    // (the input gradient reads Wᵀ; no separate transpose pass).
    const int64_t image = g.in_channels * g.height * g.width, out_size = g.out_channels * g.out_height() * g.out_width();
    const int64_t samples = (rows + C - 1) / C;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < samples; ++n) {
      const SampleWeight sample = weight_at(*segment, (*segment->t)[static_cast<size_t>(n)], WeightLayout::transposed);
      for (int64_t r = n * C; r < std::min(rows, (n + 1) * C); ++r)
        conv2d_backward_input_sample_transposed(previous.data() + r * image, signal.data() + r * out_size, sample.weight.data(), g,
                                                Accumulate::assign);
    }
    return previous;
  }

  void gradient_rows(const LayerSignals& s, int64_t C, double* jacobian, int64_t stride, int64_t offset) const override;
  void gradient_sums(const LayerSignals& s, int64_t C, const MatrixRowMajor& coefficients, double* sums, int64_t sum_stride,
                     int64_t offset) const override;
  void structured_block(const LayerSignals& a, const LayerSignals& b, int64_t C, MatrixRowMajor& K) const override;
  template <class Visit>
  void for_each_row_with_patches(const LayerSignals& s, int64_t C, const Visit& visit) const;  // see below

  // Per pair of samples: HW²·(O + patch) for the structured form against the gradient row's width.
  KernelCost cost(const Shape& input) const override {
    const Conv2dGeometry g = geometry(input, 1);
    const double spatial = static_cast<double>(g.out_height() * g.out_width());
    const double width = static_cast<double>(g.out_channels * g.patch_size() + (o_.bias ? g.out_channels : 0));
    return {spatial * spatial * static_cast<double>(g.out_channels + g.patch_size()), width};
  }
  PieceInfo piece() const override { return {PieceRole::parameterised}; }

 private:
  // The weight (times the multiplier) and bias at base + t·direction, for one sample of a segment, in the calling
  // thread's scratch (valid until its next call): no allocation per sample. Transposed: Wᵀ, (C·k·k, O), each entry
  // the same expression as stored.
  struct SampleWeight {
    std::vector<double>& weight;
    std::vector<double>& bias;
  };
  enum class WeightLayout { as_stored, transposed };
  SampleWeight weight_at(const LayerSegment& segment, double t, WeightLayout layout = WeightLayout::as_stored) const {
    thread_local std::vector<double> weight, bias;
    const Tensor &w = segment.base[0], &d = segment.direction[0];
    const int64_t O = o_.out_channels, patch = w.numel() / O;
    scratch_at_least(weight, w.numel());  // the conv layers share it: grown, not refilled
    if (layout == WeightLayout::as_stored)
      for (int64_t i = 0; i < w.numel(); ++i) weight[static_cast<size_t>(i)] = o_.weight_multiplier * (w[i] + t * d[i]);
    else
      for (int64_t k = 0; k < patch; ++k)  // written in order, read O rows apart
        for (int64_t o = 0; o < O; ++o) weight[static_cast<size_t>(k * O + o)] = o_.weight_multiplier * (w[o * patch + k] + t * d[o * patch + k]);
    bias.clear();
    if (o_.bias)
      for (int64_t o = 0; o < o_.out_channels; ++o) bias.push_back(segment.base[1][o] + t * segment.direction[1][o]);
    return {weight, bias};
  }
  Conv2dLayerOptions o_;
};

// Every signal row r with ∂f_r/∂Wᵀ = P_n Δ_rᵀ (patch, O), from its sample's patches P_n (made once per sample, kept in
// cache): the one walk the gradient rows and their weighted sums share. visit(r, that gradient, Δ_r (O, HW)).
template <class Visit>
void Conv2d::for_each_row_with_patches(const LayerSignals& s, int64_t C, const Visit& visit) const {
  const int64_t samples = s.input.dim(0), rows = s.delta.dim(0);
  const Conv2dGeometry g = geometry(s.input.shape(), samples);
  const int64_t spatial = g.out_height() * g.out_width(), image = g.in_channels * g.height * g.width;
  MatrixRowMajor transposed(g.patch_size(), g.out_channels);
  for (int64_t n = 0; n < samples; ++n) {
    const Conv2dPatches patches = conv2d_patches(s.input.data() + n * image, g);
    for (int64_t r = n * C; r < std::min(rows, (n + 1) * C); ++r) {
      const double* delta = s.delta.data() + r * g.out_channels * spatial;
      conv2d_weight_gradient_from_patches(transposed.data(), patches, delta, g);
      visit(r, transposed, ConstMatrixMap(delta, g.out_channels, spatial));
    }
  }
}

void Conv2d::gradient_rows(const LayerSignals& s, int64_t C, double* jacobian, int64_t stride, int64_t offset) const {
  const int64_t O = o_.out_channels, patch = o_.in_channels * o_.kernel * o_.kernel;
  for_each_row_with_patches(s, C, [&](int64_t r, const MatrixRowMajor& transposed, const ConstMatrixMap& delta) {
    MatrixMap weight_gradient(jacobian + r * stride + offset, O, patch);
    weight_gradient.noalias() = transposed.transpose();
    if (o_.weight_multiplier != 1.0) weight_gradient *= o_.weight_multiplier;
    if (o_.bias) VectorMap(jacobian + r * stride + offset + O * patch, O) = delta.rowwise().sum();
  });
}

// Σ_r c_gr Δ_r P_nᵀ accumulated straight into each group's sum: every row with a coefficient adds its gradient scaled by
// it; no gradient row is written, zeroed or read back.
void Conv2d::gradient_sums(const LayerSignals& s, int64_t C, const MatrixRowMajor& coefficients, double* sums, int64_t sum_stride,
                           int64_t offset) const {
  const int64_t O = o_.out_channels, patch = o_.in_channels * o_.kernel * o_.kernel;
  for_each_row_with_patches(s, C, [&](int64_t r, const MatrixRowMajor& transposed, const ConstMatrixMap& delta) {
    for (int64_t group = 0; group < coefficients.rows(); ++group) {
      const double c = coefficients(group, r);
      if (c == 0.0) continue;
      MatrixMap(sums + group * sum_stride + offset, O, patch).noalias() += (c * o_.weight_multiplier) * transposed.transpose();
      if (o_.bias) VectorMap(sums + group * sum_stride + offset + O * patch, O) += c * delta.rowwise().sum();
    }
  });
}

// ⟨Δ_r Pᵀ_n, Δ_q Pᵀ_k⟩ = Σ (Δ_rᵀ Δ_q) ⊙ (P_nᵀ P_k): spatial × spatial products instead of gradient rows.
void Conv2d::structured_block(const LayerSignals& sa, const LayerSignals& sb, int64_t C, MatrixRowMajor& K) const {
  const double m2 = o_.weight_multiplier * o_.weight_multiplier, bias = o_.bias ? 1.0 : 0.0;
  const int64_t samples_a = sa.input.dim(0), samples_b = sb.input.dim(0);
  const Conv2dGeometry g = geometry(sa.input.shape(), samples_a);
  const int64_t spatial = g.out_height() * g.out_width(), image = g.in_channels * g.height * g.width;
  std::vector<MatrixRowMajor> columns_a(static_cast<size_t>(samples_a)), columns_b(static_cast<size_t>(samples_b));
  for (int64_t n = 0; n < samples_a; ++n) {
    columns_a[static_cast<size_t>(n)].resize(g.patch_size(), spatial);
    im2col(columns_a[static_cast<size_t>(n)].data(), sa.input.data() + n * image, g, spatial, 0);
  }
  for (int64_t n = 0; n < samples_b; ++n) {
    columns_b[static_cast<size_t>(n)].resize(g.patch_size(), spatial);
    im2col(columns_b[static_cast<size_t>(n)].data(), sb.input.data() + n * image, g, spatial, 0);
  }
  for (int64_t n = 0; n < samples_a; ++n)
    for (int64_t k = 0; k < samples_b; ++k) {
      const MatrixRowMajor patches = columns_a[static_cast<size_t>(n)].transpose() * columns_b[static_cast<size_t>(k)];  // (HW, HW)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t d = 0; d < C; ++d) {
          ConstMatrixMap da(sa.delta.data() + (n * C + c) * g.out_channels * spatial, g.out_channels, spatial);
          ConstMatrixMap db(sb.delta.data() + (k * C + d) * g.out_channels * spatial, g.out_channels, spatial);
          const MatrixRowMajor signals = da.transpose() * db;  // (HW, HW)
          K(n * C + c, k * C + d) += m2 * signals.cwiseProduct(patches).sum() + bias * signals.sum();
        }
    }
}

}  // namespace

std::unique_ptr<Layer> make_conv2d(Conv2dLayerOptions options) { return std::make_unique<Conv2d>(options); }

}  // namespace ks
