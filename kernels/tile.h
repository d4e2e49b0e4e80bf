// Tiles of traced samples (signals, plus the Jacobian rows of layers contracted by GEMM) and the kernel block between two.
// Internal to kernels/: the NTK Gram and the exact path kernel share it. Tiles may come from different parameters.
#pragma once

#include "kernels/ntk.h"

namespace ks {

struct Tile {
  int64_t first = 0, samples = 0, rows = 0;  // rows = samples · outputs
  Trace trace;
  MatrixRowMajor jacobian;  // (rows, Jacobian-path parameters)
  std::vector<KernelMethod> methods;
};

// Structured contraction or Jacobian GEMM for one layer on inputs of this shape: the cheaper by the layer's own cost
// model, unless one is requested.
KernelMethod choose_method(const Layer& layer, const Shape& input, KernelMethod requested);
// A tile from a trace with signals; first is the position of its first sample in the caller's set. Without
// form_jacobian the Jacobian-path layers keep their signals and no rows are formed (block then adds only the structured
// layers; the caller sums those layers' gradients itself, as the exact path kernel does).
Tile tile_from_trace(Trace trace, int64_t first, KernelMethod requested, bool form_jacobian = true);
// The Jacobian-path layers' columns: where each layer starts in a tile's rows (−1 for structured layers), and the width.
struct JacobianColumns {
  std::vector<int64_t> offsets;
  int64_t width = 0;
};
JacobianColumns jacobian_columns(const Tile& tile);
double tile_bytes(const Tile& tile);
// ⟨∇θ f_c(a_n), ∇θ f_d(b_k)⟩ for every row pair: (a.rows, b.rows), row n·C + c. Both tiles must use the same methods.
MatrixRowMajor block(const Tile& a, const Tile& b);

}  // namespace ks
