// Layer traces: one batched forward that keeps each parameterised layer's input, and one batched backward of an (N·C)-row
// output signal that keeps each layer's backprop signal Δ. Per-sample gradients and tangent kernels are built from these.
// It covers the layer types of nn/layers.h only; anything else is refused with the layer named.
#pragma once

#include <vector>

#include "nn/layers.h"

namespace ks {

// What one parameterised layer (Dense or Conv2d) saw for a batch of N inputs with C outputs.
struct LayerSignals {
  const Layer* layer = nullptr;
  bool convolution = false;
  double multiplier = 1.0;        // the forward's weight multiplier (NTK parameterisation)
  int64_t parameter_offset = 0;   // where this layer's weight starts in the flat state_dict-ordered vector
  int64_t parameter_index = 0;    // the weight's index in Sequential::parameters(); the bias, if any, follows it
  int64_t weight_size = 0, bias_size = 0;
  Tensor input;                   // Dense: (N, I); Conv2d: (N, C_in, H, W)
  Tensor delta;                   // ∂f_c(x_n)/∂(layer output), row n·C + c: Dense (N·C, O); Conv2d (N·C, O, Ho, Wo)
  Conv2dGeometry geometry;        // Conv2d only, batch = N
};

struct Trace {
  int64_t samples = 0, outputs = 0;
  Tensor output;                  // (N, C)
  Tensor features;                // (N, F): the input of the final Dense layer (conjugate-kernel features)
  std::vector<LayerSignals> layers;
};

// Forward on inputs (N, ...) and backward of the identity signal for every output: all C rows from one backward.
// With with_signals false, only the forward runs (output and features).
Trace trace_network(const Sequential& model, const Tensor& inputs, bool with_signals = true);

// A straight segment in parameter space, θ(t) = base + t·direction, with its own t for every sample: one batched
// pass evaluates the network at many points of the segment. Each parameterised layer runs twice (on base and on
// direction) and combines out = out_base + t·out_direction, so no θ(t) is ever formed.
struct Segment {
  const std::vector<Tensor>* base = nullptr;       // per parameter, in Sequential::parameters() order
  const std::vector<Tensor>* direction = nullptr;  // the same shapes
  std::vector<double> t;                           // one per sample
  // Optional, for rows that repeat a few distinct inputs: row n is distinct input samples[n], and first_base and
  // first_direction hold the first parameterised layer's outputs on those inputs under base and under direction
  // (from first_layer_outputs), so that layer, often the largest, is not recomputed for every row.
  std::vector<int64_t> samples;
  const Tensor* first_base = nullptr;
  const Tensor* first_direction = nullptr;
};
// The first parameterised layer's outputs on distinct inputs under segment.base and under segment.direction.
std::pair<Tensor, Tensor> first_layer_outputs(const Sequential& model, const Tensor& inputs, const Segment& segment);
Trace trace_segment(const Sequential& model, const Tensor& inputs, const Segment& segment, bool with_signals = true);
// The input of layer `layer` (an index into model.layers()) at every sample's point of the segment: a forward stopped there.
Tensor segment_layer_input(const Sequential& model, const Tensor& inputs, const Segment& segment, int64_t layer);

// ⟨∂f_c(x_n)/∂θ, v⟩ for every row n·C + c of a trace with signals: (N·C). v is per parameter, in parameters() order.
// When v is the segment's own direction and the segment caches the first layer, that layer's response is read from it.
Tensor jacobian_vector_product(const Trace& trace, const std::vector<Tensor>& v, const Segment* segment = nullptr);

int64_t flat_parameter_count(const Sequential& model);

// Samples per tile, fixed: per-sample results (Grams, Jacobians) then depend on neither N nor the thread count.
constexpr int64_t kTileSamples = 32;
// Samples [first, first + count) of a batch, as their own batch.
Tensor sample_rows(const Tensor& inputs, int64_t first, int64_t count);
// The network's output count C, from a forward of one sample shaped like the inputs' (0 for an empty batch).
int64_t output_count(const Sequential& model, const Tensor& inputs);

// Per-sample gradients of every output for rows [0, N·C): (N·C, P), columns in state_dict order, row n·C + c.
Tensor per_sample_jacobian(const Sequential& model, const Tensor& inputs);
// The same for one layer's slice into a (rows, P) matrix at the layer's offset (used by tiles).
void layer_jacobian(const LayerSignals& signals, int64_t outputs, double* jacobian, int64_t row_stride);

}  // namespace ks
