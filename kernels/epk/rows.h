// The exact path kernel's rows: a test input at a point t of step s's segment, evaluated against the step's batch
// (kernel rows K_s(x(t), x_i), directional derivatives, outputs) in fixed tiles. Internal to kernels/epk/.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "kernels/epk.h"
#include "kernels/epk/integrate.h"
#include "kernels/epk/pieces.h"
#include "kernels/tile.h"
#include "nn/train.h"

namespace ks {

// What evaluate_rows computes besides each row's output.
struct RowRequest {
  const Parameters* first = nullptr;   // directional derivatives along it (v_0), when given
  const Parameters* second = nullptr;  // and along v_1
  // Instead of each row's kernel through the Jacobian-path layers, the rows' weighted gradient sums per test input
  // (RowValues::sums), contracted with the batch once per step (contract_sums): the rows' kernel then holds only the
  // structured layers. For a sum over rows only, as the breakpoint and fixed-node quadratures are.
  bool sum_jacobian = false;
  // Optional: the parameterised layers' outputs already known for rows [begin, end), (end − begin, ...), asked per
  // tile from the tile's thread; not set: every layer is applied.
  std::function<Tensor(int64_t layer, int64_t begin, int64_t end)> layer_outputs;
};
// Per tile of rows, Σ_rows weight · ∇θ f_c over the Jacobian-path layers, one row per (test input of the tile, output).
struct TileSums {
  std::vector<int64_t> inputs;  // the tile's test inputs, in order of first row
  MatrixRowMajor sums;          // (inputs·C, Jacobian width)
};
// Per row: the kernel against the batch (C, b·C) and the directional derivatives along v_0 and v_1.
struct RowValues {
  MatrixRowMajor kernel;             // (rows·C, b·C)
  Tensor output;                     // (rows, C)
  Tensor along_first, along_second;  // (rows·C), empty when not asked
  std::vector<TileSums> sums;        // per tile, with sum_jacobian
};
// What every row of one step is evaluated against.
struct StepBatch {
  const Segment* segment = nullptr;  // the step's segment (base, direction, first-layer cache)
  const std::vector<Tile>* tiles = nullptr;  // the batch traced at θ_s
  int64_t batch_rows = 0, outputs = 0;
  KernelMethod method = KernelMethod::automatic;
};
RowValues evaluate_rows(const Sequential& model, const Tensor& inputs, const StepBatch& batch, const std::vector<QuadratureRow>& rows,
                        const RowRequest& request);

Parameters difference(const Parameters& after, const Parameters& before);
// −η ∂L/∂f_i for the batch outputs (b, C), through the training's own loss code.
Tensor loss_coefficients(const Tensor& outputs, const std::vector<int>& labels, LossKind loss, double learning_rate);
// The batch traced at θ in tiles of kTileSamples samples; outputs receives f(x_i; θ), (b, C).
std::vector<Tile> batch_tiles(const Sequential& model, const Parameters& theta, const Tensor& inputs, KernelMethod method, Tensor& outputs);

// Per test input, the quadrature of one step: Σ_rows w·(kernel row, directional derivatives), reduced in row order.
struct StepIntegral {
  std::vector<MatrixRowMajor> kernel;   // per input (C, b·C)
  Tensor along_theta, along_direction;  // (M, C)
  std::vector<MatrixRowMajor> sums;     // per input (C, Jacobian width): the rows' summed gradients, before contract_sums
};
StepIntegral empty_integral(int64_t inputs, int64_t outputs, int64_t batch_rows);
// integral[row.sample] += row.weight · (the row's kernel block and directional derivatives), in row order.
// integral.sums[input] += each tile's sums, in tile order.
void add_rows(StepIntegral& integral, const std::vector<QuadratureRow>& rows, const RowValues& values, int64_t outputs);
// One step's rows on pieces, summed into `integral` (add_rows) and counted in `report`. With a piece shape, the
// breakpoints and Gauss–Legendre on every piece, each run of pieces evaluated as the piece finder hands it over, the
// nodes' parameterised outputs interpolated from its polynomials instead of a forward pass; without, one piece per input.
struct PieceQuadrature {
  const PieceShape* network = nullptr;  // null: no breakpoints
  int64_t nodes_per_piece = 0;
};
void integrate_on_pieces(const Sequential& model, const Tensor& inputs, const StepBatch& batch, const RowRequest& request,
                         const PieceQuadrature& quadrature, StepIntegral& integral, QuadratureReport& report);

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point from);

// kernel[input] += sums[input] · (the batch's Jacobian rows)ᵀ: the one contraction per step of the summed gradients.
// With the request's directions, along_theta and along_direction gain the summed gradients' share the same way.
void contract_sums(StepIntegral& integral, const StepBatch& batch, const RowRequest& request);

}  // namespace ks

