// The piece finder's hand-over: every final piece once and in order, with each parameterised layer's output on it
// interpolated from the sweep's values, against a direct forward at points inside the pieces.
#include <doctest/doctest.h>

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

}  // namespace

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
