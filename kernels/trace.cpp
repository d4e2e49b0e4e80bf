// The trace driver: a flat loop over the layers forward (apply or apply_segment), then the (N·C)-row signal backward in
// reverse (pull_back), llm.c style. It asks each layer through the contract and knows no layer kind.
#include "kernels/trace.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace ks {

Tensor sample_rows(const Tensor& inputs, int64_t first, int64_t count) {
  const int64_t row_size = inputs.dim(0) ? inputs.numel() / inputs.dim(0) : 0;
  return Tensor(with_batch(inputs.shape(), count),
                AlignedBuffer(inputs.data() + first * row_size, inputs.data() + (first + count) * row_size));
}

Tensor gather_rows(const Tensor& inputs, const std::vector<int64_t>& samples) {
  const int64_t size = inputs.numel() / inputs.dim(0);
  Tensor rows = Tensor::uninitialised(with_batch(inputs.shape(), static_cast<int64_t>(samples.size())));  // every row is copied in
  for (size_t r = 0; r < samples.size(); ++r) std::copy_n(inputs.data() + samples[r] * size, size, rows.data() + static_cast<int64_t>(r) * size);
  return rows;
}

int64_t output_count(const Sequential& model, const Tensor& inputs) {
  if (inputs.dim(0) == 0) return 0;
  const Shape out = model.output_shape(with_batch(inputs.shape(), 1));
  if (out.size() != 2) throw ShapeError("the network's output must be (N, C), it gives " + shape_string(out));
  return out[1];
}

namespace {

// What one pass needs: the weights (θ, or a segment's base and direction) and where to stop.
struct Pass {
  const Sequential& model;
  const Parameters& base;
  const Segment* segment;
  bool keep_states;
  int64_t stop_layer;  // >= 0: stop before this layer and return its input as the output
};

struct ForwardRecords {
  std::vector<ForwardState> states;  // per layer, kept for the backward
  Tensor output, features;
  bool stopped = false;
};

LayerSegment layer_segment(const Pass& pass, size_t l) {
  return {pass.model.weights(*pass.segment->base, l), pass.model.weights(*pass.segment->direction, l), &pass.segment->t};
}

// Row n of the first parameterised layer's output from the segment's cache: base + t_n·direction of its distinct input.
bool cached_first_layer(const Segment* segment, int64_t first_parameter, const Layer& layer, const Tensor& input, Tensor& output) {
  if (!segment || first_parameter != 0 || !segment->first_base || segment->first_base->empty()) return false;
  output = Tensor::uninitialised(layer.output_shape(input.shape()));
  const int64_t N = output.dim(0), size = output.numel() / N;
  if (!segment->first_direction || static_cast<int64_t>(segment->samples.size()) != N || segment->first_base->numel() / segment->first_base->dim(0) != size)
    throw ShapeError("trace_segment: the first-layer cache does not match the rows");
  for (int64_t n = 0; n < N; ++n) {
    const int64_t sample = segment->samples[static_cast<size_t>(n)];
    const double* a = segment->first_base->data() + sample * size;
    const double* d = segment->first_direction->data() + sample * size;
    const double t = segment->t[static_cast<size_t>(n)];
    double* out = output.data() + n * size;
    for (int64_t k = 0; k < size; ++k) out[k] = a[k] + t * d[k];
  }
  return true;
}

// Rows [outputs_row, outputs_row + N) of the output the segment gives for layer l, when it gives one.
bool given_output(const Segment* segment, size_t l, const Layer& layer, const Tensor& input, Tensor& output) {
  if (!segment || l >= segment->outputs.size() || !segment->outputs[l]) return false;
  Tensor& all = *segment->outputs[l];
  const Shape shape = layer.output_shape(input.shape());
  const int64_t N = input.dim(0), size = N ? shape_numel(shape) / N : 0;
  if (with_batch(all.shape(), N) != shape || segment->outputs_row + N > all.dim(0))
    throw ShapeError("trace_segment: the given outputs of layer " + std::to_string(l) + " do not match its rows");
  if (segment->outputs_row == 0 && all.dim(0) == N) {
    output = std::move(all);
    return true;
  }
  output = Tensor::uninitialised(shape);  // copied in whole
  std::copy_n(all.data() + segment->outputs_row * size, N * size, output.data());
  return true;
}

// Layer l on its input: at θ, or row n at the segment's t_n (from the first-layer cache where the segment has one).
Tensor apply_layer(const Pass& pass, size_t l, const Tensor& input, ForwardState* keep) {
  const Layer& layer = *pass.model.layers()[l];
  const bool parameterised = layer.parameterised();
  Tensor output;
  if (parameterised && given_output(pass.segment, l, layer, input, output)) return output;
  if (parameterised && cached_first_layer(pass.segment, pass.model.first_parameter(l), layer, input, output)) return output;
  if (pass.segment && parameterised) return layer.apply_segment(input, layer_segment(pass, l), keep);
  return layer.apply(input, pass.model.weights(pass.base, l), keep);
}

ForwardRecords forward_pass(const Pass& pass, Tensor x) {
  ForwardRecords records;
  const auto& layers = pass.model.layers();
  std::vector<Tensor> values;  // values[k + 1]: layer k's output, kept while a later layer reads it
  values.push_back(std::move(x));
  for (size_t l = 0; l < layers.size(); ++l) {
    ForwardState state;
    state.input = pass.model.gather_input(l, values, add_tensors);
    if (static_cast<int64_t>(l) == pass.stop_layer) {
      records.output = std::move(state.input);
      records.stopped = true;
      return records;
    }
    const Layer& layer = *layers[l];
    ForwardState* keep = pass.keep_states ? &state : nullptr;
    values.push_back(apply_layer(pass, l, state.input, keep));
    if (layer.parameterised() && !pass.keep_states) records.features = state.input;
    if (pass.keep_states) records.states.push_back(std::move(state));
  }
  records.output = std::move(values.back());
  if (pass.keep_states)
    for (size_t l = layers.size(); l-- > 0;)
      if (layers[l]->parameterised()) {
        records.features = records.states[l].input;  // the last parameterised layer's input
        break;
      }
  return records;
}

// The identity signal (row n·C + c is e_c) pulled back layer by layer down to the first parameterised layer; a layer
// reading several outputs adds its input signal into each (in reverse order, so every reader has added before a layer
// is pulled back).
std::vector<LayerSignals> signal_backward(const Pass& pass, std::vector<ForwardState>& states, int64_t N, int64_t C) {
  const auto& layers = pass.model.layers();
  std::vector<Tensor> signals(layers.size());  // at each layer's output
  signals.back() = Tensor({N * C, C});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) signals.back()[(n * C + c) * C + c] = 1.0;
  size_t first = layers.size();  // below the first parameterised layer no signal is needed
  for (size_t l = 0; l < layers.size(); ++l)
    if (layers[l]->parameterised()) {
      first = l;
      break;
    }
  std::vector<LayerSignals> reversed;
  for (size_t l = layers.size(); l-- > first;) {
    const Layer& layer = *layers[l];
    Tensor signal = std::move(signals[l]);
    if (signal.empty()) throw std::logic_error("trace: layer " + std::to_string(l) + "'s output reaches no output of the network");
    if (l != first) {
      LayerSegment segment;
      if (pass.segment) segment = layer_segment(pass, l);
      Tensor previous = layer.pull_back(signal, C, states[l], pass.model.weights(pass.base, l), pass.segment ? &segment : nullptr);
      const std::vector<int64_t>& from = pass.model.sources(l);
      for (size_t k = 0; k < from.size(); ++k) {
        if (from[k] == Sequential::kNetworkInput) continue;
        Tensor& into = signals[static_cast<size_t>(from[k])];
        if (!into.empty()) into = add_tensors(into, previous);
        else if (k + 1 == from.size()) into = std::move(previous);
        else into = previous;
      }
    }
    if (layer.parameterised()) {
      LayerSignals s;
      s.layer = &layer;
      s.parameter_index = pass.model.first_parameter(l);
      s.parameter_tensors = pass.model.weights(pass.base, l).count;
      s.parameter_size = pass.model.layer_parameter_size(l);
      s.input = std::move(states[l].input);  // the states are walked once, backwards: the signals take what they need
      s.delta = std::move(signal);
      reversed.push_back(std::move(s));
    }
  }
  std::vector<LayerSignals> out(std::make_move_iterator(reversed.rbegin()), std::make_move_iterator(reversed.rend()));
  int64_t offset = 0;  // offsets in state_dict order
  for (LayerSignals& s : out) {
    s.parameter_offset = offset;
    offset += s.parameter_size;
  }
  return out;
}

void check_segment(const Sequential& model, const Segment& segment, int64_t N) {
  if (!segment.base || !segment.direction) throw std::invalid_argument("trace_segment: the segment needs a base and a direction");
  if (static_cast<int64_t>(segment.t.size()) != N)
    throw ShapeError("trace_segment: " + std::to_string(segment.t.size()) + " values of t for " + std::to_string(N) + " samples");
  model.check_parameters(*segment.base, "trace_segment (base)");
  model.check_parameters(*segment.direction, "trace_segment (direction)");
}

Trace run_trace(const Pass& pass, const Tensor& inputs, bool with_signals) {
  const int64_t N = inputs.dim(0);
  ForwardRecords records = forward_pass(pass, inputs);
  Trace trace;
  trace.samples = N;
  if (records.stopped) {
    trace.output = std::move(records.output);
    return trace;
  }
  if (records.output.rank() != 2) throw ShapeError("trace: the network's output must be (N, C), got " + shape_string(records.output.shape()));
  trace.outputs = records.output.dim(1);
  trace.output = std::move(records.output);
  trace.features = std::move(records.features);
  if (with_signals) trace.layers = signal_backward(pass, records.states, N, trace.outputs);
  return trace;
}

}  // namespace

Trace trace_network(const Sequential& model, const Parameters& theta, const Tensor& inputs, bool with_signals) {
  model.check_parameters(theta, "trace");
  return run_trace(Pass{model, theta, nullptr, with_signals, -1}, inputs, with_signals);
}

Trace trace_segment(const Sequential& model, const Tensor& inputs, const Segment& segment, bool with_signals) {
  check_segment(model, segment, inputs.dim(0));
  return run_trace(Pass{model, *segment.base, &segment, with_signals, -1}, inputs, with_signals);
}

std::pair<Tensor, Tensor> first_layer_outputs(const Sequential& model, const Tensor& inputs, const Segment& segment) {
  int64_t first = 0;
  for (const auto& layer : model.layers()) {
    ++first;
    if (layer->parameterised()) break;
  }
  const int64_t stop = first >= static_cast<int64_t>(model.layers().size()) ? -1 : first;
  // The stopped pass returns layer `stop`'s input: the first parameterised layer's output only when it reads that alone.
  if (stop >= 0 && !model.chained(static_cast<size_t>(stop))) return {};
  // t = 0 on base gives the base outputs; the direction taken as its own base gives the direction's. (Through the
  // segment path, as the rows later combine them: base + 0·direction, the very same arithmetic.)
  Segment on_base{segment.base, segment.direction, std::vector<double>(static_cast<size_t>(inputs.dim(0)), 0.0), {}, nullptr, nullptr};
  Segment on_direction{segment.direction, segment.direction, on_base.t, {}, nullptr, nullptr};
  check_segment(model, on_base, inputs.dim(0));
  return {run_trace(Pass{model, *on_base.base, &on_base, false, stop}, inputs, false).output,
          run_trace(Pass{model, *on_direction.base, &on_direction, false, stop}, inputs, false).output};
}

Tensor segment_layer_input(const Sequential& model, const Tensor& inputs, const Segment& segment, int64_t layer) {
  if (layer < 0 || layer >= static_cast<int64_t>(model.layers().size()))
    throw std::out_of_range("segment_layer_input: layer " + std::to_string(layer) + " of " + std::to_string(model.layers().size()));
  check_segment(model, segment, inputs.dim(0));
  return run_trace(Pass{model, *segment.base, &segment, false, layer}, inputs, false).output;
}

Tensor segment_layer_output(const Sequential& model, int64_t layer, const Tensor& input, const Segment& segment) {
  if (layer < 0 || layer >= static_cast<int64_t>(model.layers().size()))
    throw std::out_of_range("segment_layer_output: layer " + std::to_string(layer) + " of " + std::to_string(model.layers().size()));
  if (static_cast<int64_t>(segment.t.size()) != input.dim(0))
    throw ShapeError("segment_layer_output: " + std::to_string(segment.t.size()) + " values of t for " + std::to_string(input.dim(0)) + " rows");
  return apply_layer(Pass{model, *segment.base, &segment, false, -1}, static_cast<size_t>(layer), input, nullptr);
}

Tensor jacobian_vector_product(const Trace& trace, const Parameters& v, const Segment* segment, const std::vector<bool>* only) {
  const int64_t N = trace.samples, C = trace.outputs;
  Tensor product({N * C});
  for (size_t l = 0; l < trace.layers.size(); ++l) {
    if (only && !(*only)[l]) continue;
    const LayerSignals& s = trace.layers[l];
    const LayerWeights weights{v.data() + s.parameter_index, s.parameter_tensors};
    // The layer's output under the weights v, per sample; its dot product with Δ is the row's directional derivative.
    Tensor response;
    if (segment && &v == segment->direction && segment->first_direction && !segment->first_direction->empty() && s.parameter_index == 0) {
      response = gather_rows(*segment->first_direction, segment->samples);
    } else {
      response = s.layer->apply(s.input, weights, nullptr);
    }
    const int64_t size = response.numel() / N;
    for (int64_t r = 0; r < N * C; ++r)
      product[r] += ConstVectorMap(s.delta.data() + r * size, size).dot(ConstVectorMap(response.data() + (r / C) * size, size));
  }
  return product;
}

void layer_jacobian(const LayerSignals& s, int64_t outputs, double* jacobian, int64_t row_stride, int64_t offset) {
  s.layer->gradient_rows(s, outputs, jacobian, row_stride, offset);
}

Tensor per_sample_jacobian(const Sequential& model, const Parameters& theta, const Tensor& inputs) {
  // Tiles of a fixed number of samples, traced and expanded in parallel: each row's bits depend only on its tile.
  const int64_t N = inputs.dim(0), P = model.parameter_count(), C = output_count(model, inputs);
  Tensor jacobian = Tensor::uninitialised({N * C, P});  // every entry is written by exactly one layer_jacobian call
  const int64_t tiles = (N + kTileSamples - 1) / kTileSamples;
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t first = t * kTileSamples;
    const Trace trace = trace_network(model, theta, sample_rows(inputs, first, std::min(kTileSamples, N - first)));
    for (const LayerSignals& s : trace.layers) layer_jacobian(s, C, jacobian.data() + first * C * P, P, s.parameter_offset);
  }
  return jacobian;
}

}  // namespace ks
