// The exact path kernel's piece finder: where along a segment θ_s + t·Δθ_s a network's ReLU signs or max-pool winners
// change. It asks each layer for its PieceInfo (nn/layer.h) and knows no layer kind; it integrates nothing.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "kernels/trace.h"

namespace ks {

// What the piece finder needs to know about one nonlinear layer.
struct NonlinearLayer {
  int64_t layer = 0;       // index into model.layers()
  bool max_pool = false;
  int64_t degree = 0;      // degree in t of the layer's input on a piece: the parameterised layers before it
  int64_t kernel = 0, stride = 0;  // max-pool window
};

struct PieceShape {
  std::vector<NonlinearLayer> nonlinear;
  int64_t parameterised = 0;  // D: on a piece, the output is a polynomial of degree D in t
  bool piecewise_polynomial = true;
};
PieceShape analyse_pieces(const Sequential& model);

// A run of one input's final pieces, in order, handed to the caller as the sweep finishes them, with every
// parameterised layer's output on them: points inside these pieces can then be evaluated without a forward pass.
struct PieceLeaf {
  int64_t sample = 0;
  std::vector<std::pair<double, double>> pieces;  // [a, b], in order
  // Parameterised layer `layer`'s output at points t, each inside one of the pieces: (t.size(), ...), interpolated from
  // the sweep's values on the piece (a polynomial there: exact to rounding). It holds those values, so it may be called
  // after the visit, from any thread.
  std::function<Tensor(int64_t layer, const std::vector<double>& t)> outputs_at;
};
using PieceLeafVisitor = std::function<void(const PieceLeaf&)>;

// Sorted piece bounds [0, ..., 1] per input between which every ReLU sign and max-pool winner stays fixed. With a
// visitor, each run of final pieces is also handed to it as it is found, in order per input; inputs may run in
// parallel, so the visitor must only touch its input's state.
std::vector<std::vector<double>> find_pieces(const Sequential& model, const PieceShape& network, const Tensor& inputs,
                                             const Segment& segment, const PieceLeafVisitor* visit = nullptr);

}  // namespace ks
