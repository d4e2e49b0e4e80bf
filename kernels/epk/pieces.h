// The exact path kernel's piece finder: where along a segment θ_s + t·Δθ_s a network's ReLU signs or max-pool winners
// change. It asks each layer for its PieceInfo (nn/layer.h) and knows no layer kind; it integrates nothing.
#pragma once

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

// Sorted piece bounds [0, ..., 1] per input between which every ReLU sign and max-pool winner stays fixed.
std::vector<std::vector<double>> find_pieces(const Sequential& model, const PieceShape& network, const Tensor& inputs,
                                             const Segment& segment);

}  // namespace ks
