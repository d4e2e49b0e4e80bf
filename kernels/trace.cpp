// Batched forward with saved layer inputs, and the (N·C)-row backward of output signals through Dense, Conv2d,
// activations, pooling and Flatten, written with the primitive ops of autodiff/ops.h (no tape: the structure is known).
// Gradients per sample are then outer products (Dense) or Δ times that sample's im2col patches (Conv2d).
#include "kernels/trace.h"

#include <algorithm>
#include <stdexcept>
#include <typeinfo>
#include <vector>

namespace ks {

namespace {

Tensor effective_weight(const Tensor& weight, double multiplier) {
  Tensor scaled = weight;
  if (multiplier != 1.0) scaled.vector() *= multiplier;
  return scaled;
}

// Per-layer state kept from the forward for the signal backward.
struct ForwardRecord {
  const Layer* layer;
  Tensor input, output;           // output kept only where the backward reads it (tanh)
  int64_t output_size = 0;        // per sample
  std::vector<int64_t> argmax;  // MaxPool2d
};

Shape with_batch(Shape shape, int64_t batch) {
  shape[0] = batch;
  return shape;
}

}  // namespace

int64_t flat_parameter_count(const Sequential& model) { return model.parameter_count(); }

Tensor sample_rows(const Tensor& inputs, int64_t first, int64_t count) {
  const int64_t row_size = inputs.dim(0) ? inputs.numel() / inputs.dim(0) : 0;
  Shape shape = inputs.shape();
  shape[0] = count;
  return Tensor(shape, AlignedBuffer(inputs.data() + first * row_size, inputs.data() + (first + count) * row_size));
}

int64_t output_count(const Sequential& model, const Tensor& inputs) {
  if (inputs.dim(0) == 0) return 0;
  Shape probe = inputs.shape();
  probe[0] = 1;
  return trace_network(model, Tensor(probe, 0.0), false).outputs;
}

namespace {

// The weight (times its multiplier) and bias of parameterised layer `index` at the segment's base or direction.
// The weight is copied only when a multiplier must be applied.
struct LayerWeights {
  Tensor scaled;
  const double* weight = nullptr;
  const double* bias = nullptr;
};

LayerWeights weights_of(const Tensor& weight, const Var& bias, double multiplier, const std::vector<Tensor>* values, int64_t index) {
  const Tensor* source = &weight;
  const double* bias_values = bias ? bias->value.data() : nullptr;
  if (values) {
    source = &(*values)[static_cast<size_t>(index)];
    if (source->shape() != weight.shape())
      throw ShapeError("trace_segment: parameter " + std::to_string(index) + " is " + shape_string(source->shape()) + ", the model's is " + shape_string(weight.shape()));
    bias_values = bias ? (*values)[static_cast<size_t>(index + 1)].data() : nullptr;
  }
  LayerWeights w;
  w.bias = bias_values;
  if (multiplier == 1.0) {
    w.weight = source->data();
  } else {
    w.scaled = effective_weight(*source, multiplier);
    w.weight = w.scaled.data();
  }
  return w;
}

// out[n] += t_n · extra[n] for rows of `size` values, row n using the t of sample n / group.
void add_scaled_rows(double* out, const double* extra, const std::vector<double>& t, int64_t rows, int64_t size, int64_t group) {
  for (int64_t r = 0; r < rows; ++r) {
    const double scale = t[static_cast<size_t>(r / group)];
    for (int64_t k = 0; k < size; ++k) out[r * size + k] += scale * extra[r * size + k];
  }
}

// Row n of the first parameterised layer's output from the segment's cache: base + t_n·direction of its distinct input.
bool cached_first_layer(const Segment* segment, int64_t parameter_index, Tensor& output) {
  if (!segment || parameter_index != 0 || !segment->first_base) return false;
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

// The forward, then (with signals) the backward of the identity signal. A segment, when given, sets the parameters;
// stop_layer >= 0 stops the forward before that layer and returns its input as trace.output.
Trace run_trace(const Sequential& model, const Tensor& inputs, const Segment* segment, bool with_signals, int64_t stop_layer) {
  const int64_t N = inputs.dim(0);
  if (segment) {
    if (!segment->base || !segment->direction) throw std::invalid_argument("trace_segment: the segment needs a base and a direction");
    if (static_cast<int64_t>(segment->t.size()) != N)
      throw ShapeError("trace_segment: " + std::to_string(segment->t.size()) + " values of t for " + std::to_string(N) + " samples");
    const size_t count = model.parameters().size();
    if (segment->base->size() != count || segment->direction->size() != count)
      throw ShapeError("trace_segment: the segment has " + std::to_string(segment->base->size()) + " and " + std::to_string(segment->direction->size()) +
                       " parameter tensors, the model " + std::to_string(count));
  }
  const std::vector<Tensor>* base = segment ? segment->base : nullptr;
  std::vector<ForwardRecord> records;
  std::vector<int64_t> parameter_indices;  // per record: the weight's index, or -1
  Tensor x = inputs;
  const bool keep_records = with_signals && stop_layer < 0;
  Tensor features;  // the last Dense layer's input, when no records are kept
  int64_t parameter_index = 0, layer_index = 0;
  for (const auto& owned : model.layers()) {
    if (layer_index++ == stop_layer) {
      Trace stopped;
      stopped.samples = N;
      stopped.output = x;
      return stopped;
    }
    const Layer* layer = owned.get();
    ForwardRecord record{layer, std::move(x), {}, {}};
    const Tensor& input = record.input;
    int64_t record_parameter = -1;
    if (auto* dense = dynamic_cast<const Dense*>(layer)) {
      const DenseOptions& o = dense->options();
      if (input.rank() != 2 || input.dim(1) != o.in_features)
        throw ShapeError("trace: " + dense->describe() + " got input " + shape_string(input.shape()));
      record.output = Tensor::uninitialised({N, o.out_features});  // every row is written below
      if (cached_first_layer(segment, parameter_index, record.output)) {
      } else {
      const LayerWeights w = weights_of(dense->weight->value, dense->bias, o.weight_multiplier, base, parameter_index);
      linear_forward(record.output.data(), input.data(), w.weight, w.bias, N, o.in_features, o.out_features);
      }
      if (segment && !(parameter_index == 0 && segment->first_base)) {
        const LayerWeights d = weights_of(dense->weight->value, dense->bias, o.weight_multiplier, segment->direction, parameter_index);
        Tensor extra({N, o.out_features});
        linear_forward(extra.data(), input.data(), d.weight, d.bias, N, o.in_features, o.out_features);
        add_scaled_rows(record.output.data(), extra.data(), segment->t, N, o.out_features, 1);
      }
      record_parameter = parameter_index;
      parameter_index += dense->bias ? 2 : 1;
      if (!keep_records) features = input;
    } else if (auto* conv = dynamic_cast<const Conv2d*>(layer)) {
      const Conv2dLayerOptions& o = conv->options();
      if (input.rank() != 4 || input.dim(1) != o.in_channels) throw ShapeError("trace: " + conv->describe() + " got input " + shape_string(input.shape()));
      Conv2dGeometry g{N, o.in_channels, input.dim(2), input.dim(3), o.out_channels, o.kernel, o.stride, o.padding};
      record.output = Tensor::uninitialised({N, g.out_channels, g.out_height(), g.out_width()});  // every value is written below
      const LayerWeights w = weights_of(conv->weight->value, conv->bias, o.weight_multiplier, base, parameter_index);
      if (cached_first_layer(segment, parameter_index, record.output)) {
      } else if (segment) {
        // Base and direction as one convolution with 2·O output channels: the patches are gathered once.
        const LayerWeights d = weights_of(conv->weight->value, conv->bias, o.weight_multiplier, segment->direction, parameter_index);
        const int64_t O = g.out_channels, patch = g.patch_size(), spatial = g.out_height() * g.out_width();
        std::vector<double> weights(static_cast<size_t>(2 * O * patch)), biases(static_cast<size_t>(2 * O), 0.0);
        std::copy_n(w.weight, O * patch, weights.begin());
        std::copy_n(d.weight, O * patch, weights.begin() + O * patch);
        if (w.bias) std::copy_n(w.bias, O, biases.begin());
        if (d.bias) std::copy_n(d.bias, O, biases.begin() + O);
        Conv2dGeometry both = g;
        both.out_channels = 2 * O;
        Tensor pair({N, 2 * O, g.out_height(), g.out_width()});
        conv2d_forward(pair.data(), input.data(), weights.data(), w.bias ? biases.data() : nullptr, both);
        for (int64_t n = 0; n < N; ++n) {
          const double t = segment->t[static_cast<size_t>(n)];
          const double* from = pair.data() + n * 2 * O * spatial;
          double* out = record.output.data() + n * O * spatial;
          for (int64_t k = 0; k < O * spatial; ++k) out[k] = from[k] + t * from[O * spatial + k];
        }
      } else {
        conv2d_forward(record.output.data(), input.data(), w.weight, w.bias, g);
      }
      record_parameter = parameter_index;
      parameter_index += conv->bias ? 2 : 1;
    } else if (auto* pool = dynamic_cast<const MaxPool2d*>(layer)) {
      Pool2dGeometry g{input.dim(0), input.dim(1), input.dim(2), input.dim(3), pool->options().kernel, pool->options().stride};
      record.output = Tensor({g.batch, g.channels, g.out_height(), g.out_width()});
      record.argmax.resize(static_cast<size_t>(record.output.numel()));
      maxpool2d_forward(record.output.data(), record.argmax.data(), input.data(), g);
    } else if (auto* activation = dynamic_cast<const Activation*>(layer); activation && activation->kind() == ActivationKind::relu) {
      record.output = Tensor::uninitialised(input.shape());
      relu_forward(record.output.data(), input.data(), input.numel());
    } else if (dynamic_cast<const Flatten*>(layer) || dynamic_cast<const Activation*>(layer) || dynamic_cast<const AvgPool2d*>(layer)) {
      record.output = layer->forward(constant(input))->value;
    } else {
      throw std::invalid_argument("trace: layer " + layer->describe() + " is not supported by the per-sample gradient engine");
    }
    // Only a backward needs the records; a forward alone hands each output on without a copy.
    if (!keep_records) {
      x = std::move(record.output);
      continue;
    }
    record.output_size = record.output.numel() / std::max<int64_t>(N, 1);
    // Only tanh's backward reads a layer's output; any other output lives on only as the next layer's input.
    const auto* activation = dynamic_cast<const Activation*>(layer);
    if (activation && activation->kind() == ActivationKind::tanh) x = record.output;
    else x = std::move(record.output);
    records.push_back(std::move(record));
    parameter_indices.push_back(record_parameter);
  }
  if (x.rank() != 2) throw ShapeError("trace: the network's output must be (N, C), got " + shape_string(x.shape()));
  Trace trace;
  trace.samples = N;
  trace.outputs = x.dim(1);
  trace.output = x;
  trace.features = std::move(features);
  const int64_t C = trace.outputs, rows = N * C;
  for (auto it = records.rbegin(); it != records.rend(); ++it)
    if (dynamic_cast<const Dense*>(it->layer)) {
      trace.features = it->input;  // the last Dense's input
      break;
    }
  if (!with_signals) return trace;

  // The identity signal: row n·C + c is e_c.
  Tensor signal({rows, C});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) signal[(n * C + c) * C + c] = 1.0;
  std::vector<LayerSignals> reversed;
  // Below the first parameterised layer no signal is needed: the backward stops there.
  size_t first_parameterised = records.size();
  for (size_t position = 0; position < records.size(); ++position)
    if (parameter_indices[position] >= 0) {
      first_parameterised = position;
      break;
    }
  for (size_t position = records.size(); position-- > first_parameterised;) {
    ForwardRecord* it = &records[position];
    const Layer* layer = it->layer;
    const int64_t in_size = it->input.numel() / N, out_size = it->output_size;
    Tensor previous(with_batch(it->input.shape(), rows));
    if (auto* dense = dynamic_cast<const Dense*>(layer)) {
      const DenseOptions& o = dense->options();
      LayerSignals s;
      s.layer = layer;
      s.parameter_index = parameter_indices[position];
      s.multiplier = o.weight_multiplier;
      s.weight_size = o.in_features * o.out_features;
      s.bias_size = dense->bias ? o.out_features : 0;
      s.input = std::move(it->input);  // the records are walked once, backwards: the signals take what they need
      s.delta = std::move(signal);
      const int64_t index = s.parameter_index;
      reversed.push_back(std::move(s));
      const Tensor& upstream = reversed.back().delta;
      if (position == first_parameterised) break;
      const LayerWeights w = weights_of(dense->weight->value, dense->bias, o.weight_multiplier, base, index);
      linear_backward(previous.data(), nullptr, nullptr, upstream.data(), nullptr, w.weight, rows, o.in_features, o.out_features);
      if (segment) {
        const LayerWeights d = weights_of(dense->weight->value, dense->bias, o.weight_multiplier, segment->direction, index);
        Tensor extra(previous.shape());
        linear_backward(extra.data(), nullptr, nullptr, upstream.data(), nullptr, d.weight, rows, o.in_features, o.out_features);
        add_scaled_rows(previous.data(), extra.data(), segment->t, rows, in_size, C);
      }
    } else if (auto* conv = dynamic_cast<const Conv2d*>(layer)) {
      const Conv2dLayerOptions& o = conv->options();
      LayerSignals s;
      s.layer = layer;
      s.parameter_index = parameter_indices[position];
      s.convolution = true;
      s.multiplier = o.weight_multiplier;
      s.weight_size = conv->weight->value.numel();
      s.bias_size = conv->bias ? o.out_channels : 0;
      s.geometry = Conv2dGeometry{N, o.in_channels, it->input.dim(2), it->input.dim(3), o.out_channels, o.kernel, o.stride, o.padding};
      s.input = std::move(it->input);  // the records are walked once, backwards: the signals take what they need
      s.delta = std::move(signal);
      Conv2dGeometry g = s.geometry;
      g.batch = rows;
      const int64_t index = s.parameter_index;
      reversed.push_back(std::move(s));
      const Tensor& upstream = reversed.back().delta;
      if (position == first_parameterised) break;
      const LayerWeights w = weights_of(conv->weight->value, conv->bias, o.weight_multiplier, base, index);
      if (segment) {
        // Row r pulls back through W_base + t·W_direction: one backward with 2·O channels, the signal stacked on t times
        // itself, does both in one GEMM and one col2im.
        const LayerWeights d = weights_of(conv->weight->value, conv->bias, o.weight_multiplier, segment->direction, index);
        const int64_t O = g.out_channels, patch = g.patch_size();
        std::vector<double> weights(static_cast<size_t>(2 * O * patch));
        std::copy_n(w.weight, O * patch, weights.begin());
        std::copy_n(d.weight, O * patch, weights.begin() + O * patch);
        Tensor stacked({rows, 2 * O, g.out_height(), g.out_width()});
        for (int64_t r = 0; r < rows; ++r) {
          const double t = segment->t[static_cast<size_t>(r / C)];
          const double* from = upstream.data() + r * out_size;
          double* to = stacked.data() + r * 2 * out_size;
          std::copy_n(from, out_size, to);
          for (int64_t k = 0; k < out_size; ++k) to[out_size + k] = t * from[k];
        }
        Conv2dGeometry both = g;
        both.out_channels = 2 * O;
        conv2d_backward(previous.data(), nullptr, nullptr, stacked.data(), nullptr, weights.data(), both);
      } else {
        conv2d_backward(previous.data(), nullptr, nullptr, upstream.data(), nullptr, w.weight, g);
      }
    } else if (auto* activation = dynamic_cast<const Activation*>(layer)) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = r / C;
        const double* in = it->input.data() + n * in_size;
        const double* out = it->output.numel() ? it->output.data() + n * out_size : nullptr;  // kept for tanh only
        const double* d = signal.data() + r * out_size;
        double* target = previous.data() + r * in_size;
        switch (activation->kind()) {
          case ActivationKind::relu: relu_backward(target, d, in, in_size); break;
          case ActivationKind::tanh: tanh_backward(target, d, out, in_size); break;
          case ActivationKind::softplus: softplus_backward(target, d, in, in_size); break;
        }
      }
    } else if (dynamic_cast<const MaxPool2d*>(layer)) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = r / C;
        for (int64_t o = 0; o < out_size; ++o) {
          const int64_t source = it->argmax[static_cast<size_t>(n * out_size + o)] - n * in_size;
          previous[r * in_size + source] += signal[r * out_size + o];
        }
      }
    } else if (auto* pool = dynamic_cast<const AvgPool2d*>(layer)) {
      const Tensor& x = it->input;
      (void)pool;
      Var probe = parameter(Tensor(with_batch(x.shape(), 1)));
      // Average pooling is linear and the same for every row: pull each row back through a one-sample graph.
      for (int64_t r = 0; r < rows; ++r) {
        probe->grad = Tensor();
        Var y = layer->forward(probe);
        Tensor seed(y->shape(), std::vector<double>(signal.data() + r * out_size, signal.data() + (r + 1) * out_size));
        backward(y, seed);
        std::copy_n(probe->grad.data(), in_size, previous.data() + r * in_size);
      }
    } else {  // Flatten: the same numbers in a new shape
      previous.values() = signal.values();
    }
    signal = std::move(previous);
  }
  // Parameter offsets in state_dict order.
  trace.layers.assign(std::make_move_iterator(reversed.rbegin()), std::make_move_iterator(reversed.rend()));
  int64_t offset = 0;
  for (LayerSignals& s : trace.layers) {
    s.parameter_offset = offset;
    offset += s.weight_size + s.bias_size;
  }
  return trace;
}

}  // namespace

Trace trace_network(const Sequential& model, const Tensor& inputs, bool with_signals) {
  return run_trace(model, inputs, nullptr, with_signals, -1);
}

Trace trace_segment(const Sequential& model, const Tensor& inputs, const Segment& segment, bool with_signals) {
  return run_trace(model, inputs, &segment, with_signals, -1);
}

std::pair<Tensor, Tensor> first_layer_outputs(const Sequential& model, const Tensor& inputs, const Segment& segment) {
  int64_t first = 0;
  for (const auto& layer : model.layers()) {
    ++first;
    if (dynamic_cast<const Dense*>(layer.get()) || dynamic_cast<const Conv2d*>(layer.get())) break;
  }
  // t = 0 on base gives the base outputs; the direction taken as its own base gives the direction's.
  Segment on_base{segment.base, segment.direction, std::vector<double>(static_cast<size_t>(inputs.dim(0)), 0.0), {}, nullptr, nullptr};
  Segment on_direction{segment.direction, segment.direction, on_base.t, {}, nullptr, nullptr};
  const bool whole = first >= static_cast<int64_t>(model.layers().size());
  return {run_trace(model, inputs, &on_base, false, whole ? -1 : first).output, run_trace(model, inputs, &on_direction, false, whole ? -1 : first).output};
}

Tensor segment_layer_input(const Sequential& model, const Tensor& inputs, const Segment& segment, int64_t layer) {
  if (layer < 0 || layer >= static_cast<int64_t>(model.layers().size()))
    throw std::out_of_range("segment_layer_input: layer " + std::to_string(layer) + " of " + std::to_string(model.layers().size()));
  return run_trace(model, inputs, &segment, false, layer).output;
}

Tensor jacobian_vector_product(const Trace& trace, const std::vector<Tensor>& v, const Segment* segment) {
  const int64_t N = trace.samples, C = trace.outputs;
  Tensor product({N * C});
  for (const LayerSignals& s : trace.layers) {
    const Tensor& weight = v.at(static_cast<size_t>(s.parameter_index));
    if (weight.numel() != s.weight_size) throw ShapeError("jacobian_vector_product: parameter " + std::to_string(s.parameter_index) + " has " + std::to_string(weight.numel()) + " values, the layer " + std::to_string(s.weight_size));
    const double* bias = s.bias_size ? v.at(static_cast<size_t>(s.parameter_index + 1)).data() : nullptr;
    const Tensor scaled = effective_weight(weight, s.multiplier);
    // The layer's output under the weights v, per sample; its dot product with Δ is the row's directional derivative.
    Tensor response;
    if (segment && &v == segment->direction && segment->first_direction && s.parameter_index == 0) {
      const Tensor& cache = *segment->first_direction;
      const int64_t size = cache.numel() / cache.dim(0);
      Shape shape = cache.shape();
      shape[0] = N;
      response = Tensor(shape);
      for (int64_t n = 0; n < N; ++n) std::copy_n(cache.data() + segment->samples[static_cast<size_t>(n)] * size, size, response.data() + n * size);
    } else if (!s.convolution) {
      const int64_t O = s.delta.dim(1), I = s.input.dim(1);
      response = Tensor({N, O});
      linear_forward(response.data(), s.input.data(), scaled.data(), bias, N, I, O);
    } else {
      response = Tensor({N, s.geometry.out_channels, s.geometry.out_height(), s.geometry.out_width()});
      conv2d_forward(response.data(), s.input.data(), scaled.data(), bias, s.geometry);
    }
    const int64_t size = response.numel() / N;
    for (int64_t r = 0; r < N * C; ++r)
      product[r] += ConstVectorMap(s.delta.data() + r * size, size).dot(ConstVectorMap(response.data() + (r / C) * size, size));
  }
  return product;
}


void layer_jacobian(const LayerSignals& s, int64_t outputs, double* jacobian, int64_t row_stride) {
  const int64_t rows = s.delta.dim(0);
  if (!s.convolution) {
    const int64_t O = s.delta.dim(1), I = s.input.dim(1);
    for (int64_t r = 0; r < rows; ++r) {
      const double* delta = s.delta.data() + r * O;
      const double* a = s.input.data() + (r / outputs) * I;
      double* row = jacobian + r * row_stride + s.parameter_offset;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i) row[o * I + i] = s.multiplier * delta[o] * a[i];
      if (s.bias_size)
        for (int64_t o = 0; o < O; ++o) row[O * I + o] = delta[o];
    }
    return;
  }
  const Conv2dGeometry& g = s.geometry;
  const int64_t spatial = g.out_height() * g.out_width(), image = g.in_channels * g.height * g.width;
  MatrixRowMajor columns(g.patch_size(), spatial);
  int64_t current = -1;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / outputs;
    if (n != current) {
      im2col(columns.data(), s.input.data() + n * image, g, spatial, 0);
      current = n;
    }
    ConstMatrixMap delta(s.delta.data() + r * g.out_channels * spatial, g.out_channels, spatial);
    MatrixMap weight_gradient(jacobian + r * row_stride + s.parameter_offset, g.out_channels, g.patch_size());
    weight_gradient.noalias() = delta * columns.transpose();
    if (s.multiplier != 1.0) weight_gradient *= s.multiplier;
    if (s.bias_size) VectorMap(jacobian + r * row_stride + s.parameter_offset + s.weight_size, g.out_channels) = delta.rowwise().sum();
  }
}

Tensor per_sample_jacobian(const Sequential& model, const Tensor& inputs) {
  // Tiles of a fixed number of samples, traced and expanded in parallel: each row's bits depend only on its tile.
  const int64_t N = inputs.dim(0), P = flat_parameter_count(model), C = output_count(model, inputs);
  // Every entry is written by exactly one layer_jacobian call below.
  Tensor jacobian = Tensor::uninitialised({N * C, P});
  const int64_t tiles = (N + kTileSamples - 1) / kTileSamples;
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t first = t * kTileSamples;
    const Trace trace = trace_network(model, sample_rows(inputs, first, std::min(kTileSamples, N - first)));
    for (const LayerSignals& s : trace.layers) layer_jacobian(s, C, jacobian.data() + first * C * P, P);
  }
  return jacobian;
}

}  // namespace ks
