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
// The same tile with its Jacobian-path rows written straight into a caller's matrix (rows r of the tile at
// rows + r·row_stride, row_stride the Jacobian-path width): a group of tiles stacked with no copy and no zero fill.
Tile tile_into_rows(Trace trace, int64_t first, KernelMethod requested, double* rows, int64_t row_stride);
// The Jacobian-path layers' columns: where each layer starts in a tile's rows (−1 for structured layers), and the width.
struct JacobianColumns {
  std::vector<int64_t> offsets;
  int64_t width = 0;
};
JacobianColumns jacobian_columns(const Tile& tile);
double tile_bytes(const Tile& tile);
// Tiles of consecutive samples as one: their outputs, features and structured layers' signals end to end (the
// Jacobian-path layers' signals, dropped once their rows are written, stay empty).
Tile join_tiles(std::vector<Tile> parts);

// Samples (or rows) traced at once: fixed by the network (so bits do not depend on threads), and few when its layers
// are large, so the layer outputs stay in a core's cache between the layers' passes: 4 of a 16-channel 32 × 32 conv
// net (0.5 MB), where 32 spill to L3; 32 for an MLP, whose dense products want the rows.
int64_t rows_per_tile(const Sequential& model, const Tensor& inputs);
// ⟨∇θ f_c(a_n), ∇θ f_d(b_k)⟩ for every row pair: (a.rows, b.rows), row n·C + c. Both tiles must use the same methods.
MatrixRowMajor block(const Tile& a, const Tile& b);

}  // namespace ks
