// The generic layer test (after dlib's test_layer): every registered layer kind must honour the whole contract of
// nn/layer.h against the tape and against central finite differences. A kind built by a spec but not registered fails.
#include <doctest/doctest.h>

#include <set>

#include "nn/model.h"
#include "tests/helpers.h"

namespace ks {

namespace {

constexpr int64_t kRowsPerSample = 2;  // C: two output signals per sample, as a two-output network sends back

double dot(const double* a, const double* b, int64_t n) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += a[i] * b[i];
  return total;
}

double max_abs(const Tensor& t) { return t.numel() ? t.vector().cwiseAbs().maxCoeff() : 0.0; }

// One kind's example with random weights, input and signals.
struct Example {
  std::unique_ptr<Layer> layer;
  Parameters theta, direction;
  Tensor input, signal;  // (N, ...), (N·C, ...output)
  LayerWeights weights() const { return {theta.data(), static_cast<int64_t>(theta.size())}; }
};

Example make_example(const LayerKindEntry& kind, Rng& rng) {
  Example e;
  e.layer = kind.example();
  for (const NamedShape& p : e.layer->parameter_shapes()) {
    e.theta.push_back(test::random_tensor(p.shape, rng));
    e.direction.push_back(test::random_tensor(p.shape, rng));
  }
  e.input = test::random_tensor(kind.example_input, rng);
  Shape signal = e.layer->output_shape(kind.example_input);
  signal[0] *= kRowsPerSample;
  e.signal = test::random_tensor(signal, rng);
  return e;
}

Tensor sample_of(const Tensor& batch, int64_t n) {
  const int64_t size = batch.numel() / batch.dim(0);
  return Tensor(with_batch(batch.shape(), 1), AlignedBuffer(batch.data() + n * size, batch.data() + (n + 1) * size));
}

// The tape: sample n alone, forward, and a backward of one signal row; returns ∂/∂input and ∂/∂θ.
std::pair<Tensor, Parameters> tape_backward(const Example& e, int64_t row) {
  const int64_t n = row / kRowsPerSample;
  Var x = parameter(sample_of(e.input, n));
  const std::vector<Var> vars = test::parameter_vars(e.theta);
  Var y = e.layer->forward(x, vars.data());
  const int64_t size = y->value.numel();
  backward(y, Tensor(y->shape(), AlignedBuffer(e.signal.data() + row * size, e.signal.data() + (row + 1) * size)));
  Parameters gradients;
  for (const Var& v : vars) gradients.push_back(v->grad.empty() ? Tensor(v->shape()) : v->grad);
  return {x->grad.empty() ? Tensor(x->shape()) : x->grad, gradients};
}

Parameters moved(const Parameters& theta, const Parameters& by, double t) {
  Parameters out = theta;
  for (size_t k = 0; k < out.size(); ++k) out[k].vector() += t * by[k].vector();
  return out;
}

}  // namespace

TEST_CASE("every registered layer kind passes the generic layer test") {
  Rng rng(31);
  std::set<std::string> names;
  for (const LayerKindEntry& kind : layer_kinds()) {
    INFO("layer kind " << kind.name);
    CHECK(names.insert(kind.name).second);  // registered once
    Example e = make_example(kind, rng);
    const Layer& layer = *e.layer;
    CHECK(layer.kind() == kind.name);
    CHECK(layer.parameterised() == (layer.piece().role == PieceRole::parameterised));
    const int64_t N = e.input.dim(0), rows = e.signal.dim(0);

    // apply equals the tape forward, bit for bit, and has the shape the shape rule says.
    ForwardState state;
    state.input = e.input;
    const Tensor out = layer.apply(e.input, e.weights(), &state);
    CHECK(out.shape() == layer.output_shape(e.input.shape()));
    const std::vector<Var> vars = test::parameter_vars(e.theta);
    CHECK(test::bit_equal(out, layer.forward(constant(e.input), vars.data())->value));

    // pull_back and the gradient rows equal the tape's backward, row by row.
    const Tensor pulled = layer.pull_back(e.signal, kRowsPerSample, state, e.weights(), nullptr);
    CHECK(pulled.shape() == with_batch(e.input.shape(), rows));
    const int64_t P = [&] { int64_t p = 0; for (const Tensor& t : e.theta) p += t.numel(); return p; }();
    Tensor gradient_rows({rows, std::max<int64_t>(P, 1)});
    LayerSignals signals{&layer, 0, 0, static_cast<int64_t>(e.theta.size()), P, e.input, e.signal};
    if (P) layer.gradient_rows(signals, kRowsPerSample, gradient_rows.data(), P, 0);
    const int64_t in_size = e.input.numel() / N;
    for (int64_t r = 0; r < rows; ++r) {
      const auto [dinput, dtheta] = tape_backward(e, r);
      double input_error = 0.0, parameter_error = 0.0;
      for (int64_t i = 0; i < in_size; ++i) input_error = std::max(input_error, std::abs(pulled[r * in_size + i] - dinput[i]));
      int64_t column = 0;
      for (const Tensor& g : dtheta)
        for (int64_t i = 0; i < g.numel(); ++i, ++column) parameter_error = std::max(parameter_error, std::abs(gradient_rows[r * P + column] - g[i]));
      CHECK(input_error <= 1e-13 * std::max(1.0, max_abs(dinput)));
      CHECK(parameter_error <= 1e-12 * std::max(1.0, P ? max_abs(gradient_rows) : 0.0));
    }

    // Central finite differences along random directions of the input and of θ.
    const double h = 1e-6;
    const Tensor v = test::random_tensor(e.input.shape(), rng);
    Tensor plus = e.input, minus = e.input;
    plus.vector() += h * v.vector();
    minus.vector() -= h * v.vector();
    const Tensor change = [&] { Tensor d = layer.apply(plus, e.weights(), nullptr); d.vector() -= layer.apply(minus, e.weights(), nullptr).vector(); d.vector() /= 2 * h; return d; }();
    const int64_t out_size = out.numel() / N;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / kRowsPerSample;
      const double numeric = dot(e.signal.data() + r * out_size, change.data() + n * out_size, out_size);
      const double analytic = dot(pulled.data() + r * in_size, v.data() + n * in_size, in_size);
      CHECK(std::abs(numeric - analytic) <= 1e-7 * std::max(1.0, std::abs(analytic)));
    }
    if (!P) continue;
    const Parameters up = moved(e.theta, e.direction, h), down = moved(e.theta, e.direction, -h);
    Tensor theta_change = layer.apply(e.input, {up.data(), static_cast<int64_t>(up.size())}, nullptr);
    theta_change.vector() -= layer.apply(e.input, {down.data(), static_cast<int64_t>(down.size())}, nullptr).vector();
    theta_change.vector() /= 2 * h;
    Tensor u({P});
    for (int64_t k = 0, column = 0; k < static_cast<int64_t>(e.direction.size()); ++k)
      for (int64_t i = 0; i < e.direction[static_cast<size_t>(k)].numel(); ++i) u[column++] = e.direction[static_cast<size_t>(k)][i];
    for (int64_t r = 0; r < rows; ++r) {
      const double numeric = dot(e.signal.data() + r * out_size, theta_change.data() + (r / kRowsPerSample) * out_size, out_size);
      const double analytic = dot(gradient_rows.data() + r * P, u.data(), P);
      CHECK(std::abs(numeric - analytic) <= 1e-7 * std::max(1.0, std::abs(analytic)));
    }

    // The structured Gram block equals the contraction of gradient rows.
    MatrixRowMajor K = MatrixRowMajor::Zero(rows, rows);
    layer.structured_block(signals, signals, kRowsPerSample, K);
    const MatrixRowMajor contracted = gradient_rows.matrix() * gradient_rows.matrix().transpose();
    CHECK((K - contracted).cwiseAbs().maxCoeff() <= 1e-12 * std::max(1.0, contracted.cwiseAbs().maxCoeff()));

    // Weighted sums of gradient rows (some coefficients zero, as the EPK's groups have) equal the rows' weighted sums.
    MatrixRowMajor coefficients = MatrixRowMajor::Zero(3, rows);
    for (int64_t g = 0; g < 3; ++g)
      for (int64_t r = 0; r < rows; ++r)
        if ((r + g) % 3 != 0) coefficients(g, r) = rng.uniform(-1.0, 1.0);
    const int64_t stride = P + 5, offset = 2;
    MatrixRowMajor sums = MatrixRowMajor::Constant(3, stride, 0.5);
    layer.gradient_sums(signals, kRowsPerSample, coefficients, sums.data(), stride, offset);
    const MatrixRowMajor expected_sums = coefficients * gradient_rows.matrix();
    CHECK((sums.middleCols(offset, P).array() - 0.5 - expected_sums.array()).abs().maxCoeff() <= 1e-12 * std::max(1.0, expected_sums.cwiseAbs().maxCoeff()));
    CHECK((sums.leftCols(offset).array() == 0.5).all());
    CHECK((sums.rightCols(stride - offset - P).array() == 0.5).all());

    // The segment forms: row n at θ + t_n·Δθ, forward and pull-back, against apply and pull_back there.
    std::vector<double> t;
    for (int64_t n = 0; n < N; ++n) t.push_back(rng.uniform(0.0, 1.0));
    const LayerSegment segment{e.weights(), {e.direction.data(), static_cast<int64_t>(e.direction.size())}, &t};
    const Tensor along = layer.apply_segment(e.input, segment, nullptr);
    const Tensor pulled_along = layer.pull_back(e.signal, kRowsPerSample, state, e.weights(), &segment);
    for (int64_t n = 0; n < N; ++n) {
      const Parameters at = moved(e.theta, e.direction, t[static_cast<size_t>(n)]);
      const LayerWeights w{at.data(), static_cast<int64_t>(at.size())};
      const Tensor expected = layer.apply(sample_of(e.input, n), w, nullptr);
      for (int64_t i = 0; i < out_size; ++i) CHECK(std::abs(along[n * out_size + i] - expected[i]) <= 1e-13 * std::max(1.0, max_abs(expected)));
      const Tensor expected_pull = layer.pull_back(e.signal, kRowsPerSample, state, w, nullptr);
      for (int64_t r = n * kRowsPerSample; r < (n + 1) * kRowsPerSample; ++r)
        for (int64_t i = 0; i < in_size; ++i)
          CHECK(std::abs(pulled_along[r * in_size + i] - expected_pull[r * in_size + i]) <= 1e-13 * std::max(1.0, max_abs(expected_pull)));
    }
  }
}

TEST_CASE("every layer kind a spec builds is registered, so the generic layer test covers it") {
  std::set<std::string> registered;
  for (const LayerKindEntry& kind : layer_kinds()) registered.insert(kind.name);
  for (const ModelOptions& options : std::vector<ModelOptions>{{"mlp:4-3", {5}, 2}, {"mlp:4/tanh", {5}, 1}, {"mlp:4/softplus", {5}, 1},
                                                               {"vgg:2", {3, 8, 8}, 1}, {"conv:2,A,3,A3", {1, 12, 12}, 1}, {"conv:2,M,3,AG", {1, 8, 8}, 1},
                                                               {"conv:2,R,R3", {1, 6, 6}, 1}, {"resnet9:1", {3, 8, 8}, 1}}) {
    const auto model = build_model(options);
    for (const auto& layer : model->layers()) {
      INFO(options.spec << ": " << layer->describe());
      CHECK(registered.count(layer->kind()) == 1);
    }
  }
}

TEST_CASE("average pooling: k x k and global in conv: specs, as PyTorch's AvgPool2d and AdaptiveAvgPool2d(1)") {
  const auto model = build_model({"conv:2,A,3,AG", {1, 8, 8}, 1});
  CHECK(model->describe().find("(2): AvgPool2d(2, 2)") != std::string::npos);
  CHECK(model->describe().find("(5): AdaptiveAvgPool2d(1)") != std::string::npos);
  CHECK(model->output_shape({4, 1, 8, 8}) == Shape{4, 1});
  CHECK(model->parameter_names().back() == "7.bias");
  CHECK_THROWS_WITH_AS(build_model({"conv:2,AG", {1, 8, 6}, 1}), doctest::Contains("square image"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_model({"conv:2,A9", {1, 8, 8}, 1}), doctest::Contains("average pool"), std::invalid_argument);
  // A global pool averages each channel: constant images give their constant.
  const auto pool = make_average_pool({0, 0, true});
  const Tensor images({2, 3, 4, 4}, 0.25);
  const Tensor pooled = pool->apply(images, {}, nullptr);
  CHECK(pooled.shape() == Shape{2, 3, 1, 1});
  CHECK(pooled[5] == 0.25);
}

}  // namespace ks
