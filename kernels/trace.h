// Layer traces: one batched forward at θ (or along a segment θ_s + t·Δθ_s) that keeps each layer's state, and one batched
// backward of an (N·C)-row output signal that keeps each parameterised layer's Δ. A driver: every layer is asked through
// nn/layer.h's contract, so this file knows no layer kind. Per-sample gradients and tangent kernels are built from traces.
#pragma once

#include <utility>
#include <vector>

#include "nn/layers.h"

namespace ks {

struct Trace {
  int64_t samples = 0, outputs = 0;
  Tensor output;                     // (N, C)
  Tensor features;                   // (N, F): the input of the last parameterised layer (conjugate-kernel features)
  std::vector<LayerSignals> layers;  // the parameterised layers, in order (with signals only)
};

// Forward at θ on inputs (N, ...) and backward of the identity signal for every output: all C rows from one backward.
// With with_signals false, only the forward runs (output and features).
Trace trace_network(const Sequential& model, const Parameters& theta, const Tensor& inputs, bool with_signals = true);

// A straight segment in parameter space, θ(t) = base + t·direction, with its own t for every sample: one batched
// pass evaluates the network at many points of the segment; each layer's apply_segment combines base and direction,
// so no θ(t) is ever formed.
struct Segment {
  const Parameters* base = nullptr;
  const Parameters* direction = nullptr;  // the same shapes
  std::vector<double> t;                  // one per sample
  // Optional, for rows that repeat a few distinct inputs: row n is distinct input samples[n], and first_base and
  // first_direction hold the first parameterised layer's outputs on those inputs under base and under direction
  // (from first_layer_outputs), so that layer, often the largest, is not recomputed for every row.
  std::vector<int64_t> samples;
  const Tensor* first_base = nullptr;
  const Tensor* first_direction = nullptr;
  // Optional, for rows whose parameterised layers' outputs are already known (the piece finder's polynomials): by
  // layer index, (rows, ...) tensors or null; row n of this segment is row outputs_row + n of each. A layer given here is
  // not applied; a tensor holding exactly the segment's rows is moved into the trace, not copied (so used once).
  std::vector<Tensor*> outputs;
  int64_t outputs_row = 0;
};
// The first parameterised layer's outputs on distinct inputs under segment.base and under segment.direction (empty
// tensors, so no cache, when the layer after it reads a sum).
std::pair<Tensor, Tensor> first_layer_outputs(const Sequential& model, const Tensor& inputs, const Segment& segment);
Trace trace_segment(const Sequential& model, const Tensor& inputs, const Segment& segment, bool with_signals = true);
// The input of layer `layer` (an index into model.layers()) at every sample's point of the segment: a forward stopped there.
Tensor segment_layer_input(const Sequential& model, const Tensor& inputs, const Segment& segment, int64_t layer);

// Layer `layer` alone on rows of its input, row n at the segment's t_n (the first-layer cache read where the segment has
// one): the piece finder walks the network with it, one layer at a time.
Tensor segment_layer_output(const Sequential& model, int64_t layer, const Tensor& input, const Segment& segment);

// ⟨∂f_c(x_n)/∂θ, v⟩ for every row n·C + c of a trace with signals: (N·C). v is a Parameters-shaped direction.
// When v is the segment's own direction and the segment caches the first layer, that layer's response is read from it.
// With `only`, just the traced layers it marks contribute (the others' share is the caller's).
Tensor jacobian_vector_product(const Trace& trace, const Parameters& v, const Segment* segment = nullptr, const std::vector<bool>* only = nullptr);

// Samples per tile, fixed: per-sample results (Grams, Jacobians) then depend on neither N nor the thread count.
constexpr int64_t kTileSamples = 32;
// Samples [first, first + count) of a batch, as their own batch.
Tensor sample_rows(const Tensor& inputs, int64_t first, int64_t count);
// The listed samples of a batch, in order, as their own batch.
Tensor gather_rows(const Tensor& inputs, const std::vector<int64_t>& samples);
// The network's output count C for inputs shaped like these (0 for an empty batch), from the layers' shape rules.
int64_t output_count(const Sequential& model, const Tensor& inputs);

// Per-sample gradients of every output at θ for rows [0, N·C): (N·C, P), columns in state_dict order, row n·C + c.
Tensor per_sample_jacobian(const Sequential& model, const Parameters& theta, const Tensor& inputs);
// One traced layer's gradient rows into a (rows, width) matrix at column `offset` (used by tiles).
void layer_jacobian(const LayerSignals& signals, int64_t outputs, double* jacobian, int64_t row_stride, int64_t offset);

}  // namespace ks
