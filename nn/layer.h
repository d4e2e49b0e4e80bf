// The layer contract: everything kernelscope knows about one layer kind, implemented in that kind's own file in nn/layers/
// (after dlib's EXAMPLE_COMPUTATIONAL_LAYER_). A layer holds no parameters: θ is an argument (Parameters), never state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/functions.h"

namespace ks {

class Rng;
enum class InitKind { glorot_uniform, he_normal, ntk };

// θ: one tensor per parameter, in the network's state_dict order.
using Parameters = std::vector<Tensor>;

// One layer's slice of θ (its tensors in its own order: weight, then bias), or empty for a layer without parameters.
struct LayerWeights {
  const Tensor* tensors = nullptr;
  int64_t count = 0;
  const Tensor& operator[](int64_t k) const { return tensors[k]; }
  const double* bias_or_null(int64_t index) const { return index < count ? tensors[index].data() : nullptr; }
};

// The layer's part of a straight segment θ_s + t·Δθ_s, with its own t for every sample (row) of the batch.
struct LayerSegment {
  LayerWeights base, direction;
  const std::vector<double>* t = nullptr;  // one per sample
};

// What apply keeps for pull_back: the input always, the output or argmax only where the kind needs them.
struct ForwardState {
  Tensor input;                 // (N, ...)
  Tensor output;                // kept only by kinds whose pull-back reads it (tanh)
  std::vector<int64_t> argmax;  // max-pooling's winners
};

// What a parameterised layer saw in one traced batch of N samples with C outputs: the input and the backprop signal
// Δ = ∂f_c(x_n)/∂(layer output) of row n·C + c. Gradient rows and structured Gram blocks are built from these alone.
class Layer;
struct LayerSignals {
  const Layer* layer = nullptr;
  int64_t parameter_index = 0;   // the layer's first tensor in θ
  int64_t parameter_offset = 0;  // where that tensor starts in the flat state_dict-ordered vector
  int64_t parameter_tensors = 0; // the layer's tensors in θ (weight, bias)
  int64_t parameter_size = 0;    // the layer's values, all tensors
  Tensor input;                  // (N, ...)
  Tensor delta;                  // (N·C, ...output)
};

// How the exact path kernel's piece finder treats a layer on a segment θ_s + t·Δθ_s (Bell et al. 2023).
enum class PieceRole {
  linear,         // no parameters, linear in its input: the polynomial degree in t passes through (flatten, avg-pool)
  parameterised,  // affine in its input and in θ: raises the degree in t by one (dense, conv)
  relu_like,      // piecewise linear with breakpoints where an input unit changes sign
  max_window,     // a window's winner can change where two candidates cross
  smooth,         // not piecewise polynomial: the EPK integrates it adaptively
};
struct PieceInfo {
  PieceRole role = PieceRole::linear;
  int64_t kernel = 0, stride = 0;  // max_window's window
};

// Cost per pair of samples of the two exact kernel methods for one parameterised layer.
struct KernelCost {
  double structured = 0.0;  // the structured contraction (Novak et al. 2022)
  double jacobian = 0.0;    // the Jacobian-row GEMM: the gradient row's width
};

struct NamedShape {
  std::string name;  // "weight", "bias"
  Shape shape;
};

class Layer {
 public:
  virtual ~Layer() = default;
  // ---- description -------------------------------------------------------------------------
  virtual std::string kind() const = 0;      // the registry's name: "dense", "conv2d", ...
  virtual std::string describe() const = 0;  // as PyTorch prints it, e.g. "Linear(784, 512)"
  virtual std::vector<NamedShape> parameter_shapes() const { return {}; }
  // requires: input is (N, ...) as the layer accepts, else throws ShapeError naming the layer. ensures: (N, ...output).
  virtual Shape output_shape(const Shape& input) const = 0;
  // Draws this layer's initial values into its tensors (biases stay zero) from rng, in state_dict order.
  virtual void initialise(Tensor* tensors, InitKind init, Rng& rng) const {}
  // ---- training: the forward on the tape; parameters are this layer's Vars --------------------
  virtual Var forward(const Var& input, const Var* parameters) const = 0;
  // ---- tape-less, batched -----------------------------------------------------------------
  // ensures: the same values as forward, bit for bit. state, when given, receives what pull_back needs.
  virtual Tensor apply(const Tensor& input, LayerWeights weights, ForwardState* state) const = 0;
  // Row n at base + t_n·direction. Layers without parameters apply as usual.
  virtual Tensor apply_segment(const Tensor& input, const LayerSegment& segment, ForwardState* state) const {
    return apply(input, {}, state);
  }
  // The signal (rows, ...output) pulled back to (rows, ...input); row r belongs to sample r / rows_per_sample. With a
  // segment, row r pulls back through base + t·direction of its sample.
  virtual Tensor pull_back(const Tensor& signal, int64_t rows_per_sample, const ForwardState& state, LayerWeights weights,
                           const LayerSegment* segment) const = 0;
  // ---- parameterised kinds only ---------------------------------------------------------------
  // Per-sample gradient rows: row r of signals.delta's ∂/∂θ_layer into rows + r·row_stride + offset (the layer's values).
  virtual void gradient_rows(const LayerSignals& signals, int64_t rows_per_sample, double* rows, int64_t row_stride,
                             int64_t offset) const {}
  // Weighted sums of gradient rows: sums + g·sum_stride + offset += Σ_r coefficients(g, r) · (row r's ∂/∂θ_layer), for
  // every group g; coefficients is (groups, rows). The default forms the rows; kinds override it with GEMMs over all rows
  // at once (the exact path kernel's path-integrated gradients per test input).
  virtual void gradient_sums(const LayerSignals& signals, int64_t rows_per_sample, const MatrixRowMajor& coefficients, double* sums,
                             int64_t sum_stride, int64_t offset) const;
  // K(r, q) += ⟨∂f_r/∂θ_layer, ∂f_q/∂θ_layer⟩ for every row pair of two traced tiles, without forming the rows.
  virtual void structured_block(const LayerSignals& a, const LayerSignals& b, int64_t rows_per_sample, MatrixRowMajor& K) const {}
  virtual KernelCost cost(const Shape& input) const { return {}; }
  // ---- the piece finder ----------------------------------------------------------------------
  virtual PieceInfo piece() const = 0;
  bool parameterised() const { return piece().role == PieceRole::parameterised; }  // the generic test checks it matches the shapes
};

// ---- the registry: every layer kind, with an example the generic layer test runs ------------------------
struct LayerKindEntry {
  std::string name;                                 // Layer::kind()
  std::function<std::unique_ptr<Layer>()> example;  // a small instance of the kind
  Shape example_input;                              // one batch the example accepts, (N, ...)
};
const std::vector<LayerKindEntry>& layer_kinds();

// Shared by the kinds' files: a Glorot-uniform, He-normal or NTK-standard-normal weight, from rng.
void draw_weight(Tensor& weight, int64_t fan_in, int64_t fan_out, InitKind init, Rng& rng);
// The weight times the layer's multiplier (the NTK parameterisation), copied only when the multiplier is not 1.
struct ScaledWeight {
  Tensor scaled;
  const double* values = nullptr;
};
ScaledWeight scaled_weight(const Tensor& weight, double multiplier);
// out[r] += t_{r / rows_per_sample} · extra[r] for rows of `size` values.
void add_scaled_rows(double* out, const double* extra, const std::vector<double>& t, int64_t rows, int64_t size,
                     int64_t rows_per_sample);
// (N, ...) → (N, ...) with the batch axis replaced.
Shape with_batch(Shape shape, int64_t batch);
[[noreturn]] void layer_shape_error(const Layer& layer, const Shape& input);

}  // namespace ks
