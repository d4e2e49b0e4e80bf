// The exact path kernel's rows: a test input at a point t of step s's segment, evaluated against the step's batch
// (kernel rows K_s(x(t), x_i), directional derivatives, outputs) in fixed tiles. Internal to kernels/epk/.
#pragma once

#include <vector>

#include "kernels/epk/integrate.h"
#include "kernels/tile.h"
#include "nn/train.h"

namespace ks {

constexpr int64_t kRowsPerTile = kTileSamples;  // quadrature rows per tile: the one tile size (fixed: bits do not depend on threads)

// Per row: the kernel against the batch (C, b·C) and the directional derivatives along v_0 and v_1.
struct RowValues {
  MatrixRowMajor kernel;             // (rows·C, b·C)
  Tensor output;                     // (rows, C)
  Tensor along_first, along_second;  // (rows·C), empty when not asked
};
// What every row of one step is evaluated against.
struct StepBatch {
  const Segment* segment = nullptr;  // the step's segment (base, direction, first-layer cache)
  const std::vector<Tile>* tiles = nullptr;  // the batch traced at θ_s
  int64_t batch_rows = 0, outputs = 0;
  KernelMethod method = KernelMethod::automatic;
};
RowValues evaluate_rows(const Sequential& model, const Tensor& inputs, const StepBatch& batch, const std::vector<QuadratureRow>& rows,
                        const Parameters* first, const Parameters* second);

Parameters difference(const Parameters& after, const Parameters& before);
// −η ∂L/∂f_i for the batch outputs (b, C), through the training's own loss code.
Tensor loss_coefficients(const Tensor& outputs, const std::vector<int>& labels, LossKind loss, double learning_rate);
// The batch traced at θ in tiles of kRowsPerTile samples; outputs receives f(x_i; θ), (b, C).
std::vector<Tile> batch_tiles(const Sequential& model, const Parameters& theta, const Tensor& inputs, KernelMethod method, Tensor& outputs);

// Per test input, the quadrature of one step: Σ_rows w·(kernel row, directional derivatives), reduced in row order.
struct StepIntegral {
  std::vector<MatrixRowMajor> kernel;   // per input (C, b·C)
  Tensor along_theta, along_direction;  // (M, C)
};
StepIntegral empty_integral(int64_t inputs, int64_t outputs, int64_t batch_rows);
// integral[row.sample] += row.weight · (the row's kernel block and directional derivatives), in row order.
void add_rows(StepIntegral& integral, const std::vector<QuadratureRow>& rows, const RowValues& values, int64_t outputs);

}  // namespace ks

