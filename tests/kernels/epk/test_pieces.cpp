// The piece finder's hand-over: every final piece once and in order, with each parameterised layer's output on it
// interpolated from the sweep's values, against a direct forward at points inside the pieces; its breakpoints against
// the activation patterns on a fine grid of t, where ReLU switches whole max-pool windows off.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "kernels/epk.h"
#include "kernels/epk/pieces.h"
#include "kernels/epk/rows.h"
#include "tests/helpers.h"

namespace ks {

namespace {

// Layer l's output on the rows of `at` (row n: input samples[n] at t[n]), by a forward pass.
Tensor direct_output(const Sequential& model, const Tensor& inputs, const Segment& at, int64_t l) {
  return segment_layer_output(model, l, segment_layer_input(model, gather_rows(inputs, at.samples), at, l), at);
}

// Row n's ReLU signs, or max-pool winners (the first of equal candidates), of the layer input `values` (rows, ...).
std::vector<int64_t> pattern_of_row(const Tensor& values, int64_t n, bool max_pool) {
  const int64_t size = values.numel() / values.dim(0);
  const double* x = values.data() + n * size;
  std::vector<int64_t> pattern;
  if (!max_pool) {
    for (int64_t i = 0; i < size; ++i) pattern.push_back(x[i] > 0.0);
    return pattern;
  }
  const int64_t channels = values.dim(1), height = values.dim(2), width = values.dim(3);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t oy = 0; oy + 1 < height; oy += 2)
      for (int64_t ox = 0; ox + 1 < width; ox += 2) {
        int64_t best = 0;
        double top = x[(c * height + oy) * width + ox];
        for (int64_t k = 1; k < 4; ++k) {
          const double value = x[(c * height + oy + k / 2) * width + ox + k % 2];
          if (value > top) best = k, top = value;
        }
        pattern.push_back(best);
      }
  return pattern;
}

}  // namespace

TEST_CASE("the piece finder puts a breakpoint between any two points of t whose activation patterns differ, also where ReLU switches max-pool windows off") {
  const test::Network network = test::network({"conv:4,M,4", {1, 6, 6}, 1, InitKind::he_normal, 5});
  const PieceShape shape = analyse_pieces(*network.model);
  Rng rng(23);
  const Tensor inputs = test::random_tensor({1, 1, 6, 6}, rng, 0.0, 1.0);
  Parameters base = network.theta, direction = network.theta;
  for (Tensor& d : direction)
    for (int64_t i = 0; i < d.numel(); ++i) d[i] = rng.normal() * 0.3;
  base[1].fill(-0.4);  // the first conv's biases: many units off, so whole pool windows are zero on long stretches
  Segment segment{&base, &direction};
  const std::vector<double> bounds = path_pieces(*network.model, inputs, segment)[0];
  CHECK(bounds.size() > 4);
  CHECK(check_pieces(*network.model, inputs, segment, {bounds}).spurious == 0);
  constexpr int64_t kGrid = 2001;
  Segment grid = segment;
  for (int64_t k = 0; k < kGrid; ++k) grid.t.push_back(static_cast<double>(k) / (kGrid - 1)), grid.samples.push_back(0);
  const Tensor rows = gather_rows(inputs, grid.samples);
  int64_t changes = 0, zero_windows = 0;
  for (const NonlinearLayer& layer : shape.nonlinear) {
    const Tensor values = segment_layer_input(*network.model, rows, grid, layer.layer);
    if (layer.max_pool) {  // (rows, C, H, W): windows whose four candidates are all switched off
      const int64_t height = values.dim(2), width = values.dim(3);
      for (int64_t plane = 0; plane < kGrid * values.dim(1); ++plane)
        for (int64_t oy = 0; oy + 1 < height; oy += 2)
          for (int64_t ox = 0; ox + 1 < width; ox += 2) {
            const double* corner = values.data() + (plane * height + oy) * width + ox;
            zero_windows += corner[0] == 0.0 && corner[1] == 0.0 && corner[width] == 0.0 && corner[width + 1] == 0.0;
          }
    }
    std::vector<int64_t> previous = pattern_of_row(values, 0, layer.max_pool);
    for (int64_t k = 1; k < kGrid; ++k) {
      std::vector<int64_t> current = pattern_of_row(values, k, layer.max_pool);
      if (current == previous) continue;
      ++changes;
      const double a = grid.t[static_cast<size_t>(k - 1)], b = grid.t[static_cast<size_t>(k)];
      const bool between = std::any_of(bounds.begin() + 1, bounds.end() - 1, [&](double x) { return x >= a && x <= b; });
      INFO("layer " << layer.layer << ", between t = " << a << " and " << b);
      CHECK(between);
      previous = std::move(current);
    }
  }
  CHECK(changes > 2);
  CHECK(zero_windows > 0);
}

TEST_CASE("the piece finder hands over every piece once, in order, with the parameterised outputs of a direct forward") {
  for (const char* spec : {"conv:3,M,4,A", "conv:3,R,M,R5"}) {
    INFO(spec);
    const test::Network network = test::network({spec, {1, 6, 6}, 1, InitKind::he_normal, 2});
    Rng rng(17);
    const Tensor inputs = test::random_tensor({2, 1, 6, 6}, rng, 0.0, 1.0);
    Parameters direction = network.theta;
    for (Tensor& d : direction)
      for (int64_t i = 0; i < d.numel(); ++i) d[i] = rng.normal() * 0.5;  // a long step: many pieces
    Segment segment{&network.theta, &direction};
    const PieceShape shape = analyse_pieces(*network.model);
    std::vector<std::vector<double>> handed(2, std::vector<double>{0.0});
    double worst = 0.0;
    int64_t checked = 0;
    const PieceLeafVisitor visit = [&](const PieceLeaf& leaf) {
      Segment at = segment;
      for (const auto& [a, b] : leaf.pieces) {
        CHECK(a == handed[static_cast<size_t>(leaf.sample)].back());
        handed[static_cast<size_t>(leaf.sample)].push_back(b);
        for (double u : {0.1, 0.5, 0.9}) at.t.push_back(a + u * (b - a)), at.samples.push_back(leaf.sample);
      }
      for (size_t l = 0; l < network.model->layers().size(); ++l) {
        if (!network.model->layers()[l]->parameterised()) continue;
        const Tensor given = leaf.outputs_at(static_cast<int64_t>(l), at.t);
        const Tensor direct = direct_output(*network.model, inputs, at, static_cast<int64_t>(l));
        REQUIRE(given.shape() == direct.shape());
        double scale = 0.0;
        for (int64_t i = 0; i < direct.numel(); ++i) scale = std::max(scale, std::abs(direct[i]));
        for (int64_t i = 0; i < direct.numel(); ++i) worst = std::max(worst, std::abs(given[i] - direct[i]) / scale);
        ++checked;
      }
    };
    const std::vector<std::vector<double>> bounds = find_pieces(*network.model, shape, inputs, segment, &visit);
    CHECK(handed == bounds);
    CHECK(bounds[0].size() > 4);
    CHECK(checked > 0);
    CHECK(worst < 1e-12);
  }
}

}  // namespace ks
