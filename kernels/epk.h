// The exact path kernel (Bell et al. 2023): a trained network's outputs rewritten, to float64 rounding, as
// f(x;θ_T) = f(x;θ_0) + Σ_s Σ_{i∈B_s} a_{i,s} K_s(x, x_i) (+ a weight-decay column), by replaying the training step by step;
// beside it the same expansion with the NTK at θ_0, the after kernel at θ_T and Domingos' discrete path kernel.
// θ_0 is an argument and nothing given is changed: the replayed θ_T comes back in the result. Parts: kernels/epk/.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kernels/ntk.h"
#include "nn/run.h"
#include "nn/train.h"

namespace ks {

enum class PathKernel { exact, ntk_init, after, domingos };
std::string path_kernel_name(PathKernel kind);  // "exact", "ntk-init", "after", "domingos"
PathKernel parse_path_kernel(const std::string& name);

// What the replay needs: the training set, the recorded steps, and the update rule's settings.
struct TrainingRecord {
  const Dataset* train = nullptr;
  const std::vector<StepRecord>* steps = nullptr;
  double weight_decay = 0.0;
  LossKind loss = LossKind::logistic;
  Augmentation augmentation;  // the training's, so each step's batch is the images it really trained on
  OptimizerOptions optimizer;  // the update rule; with state (momentum, Adam) the steps are walked backwards (epk/rules.h)
  // A run's own record: its training set, steps, weight decay, loss, augmentation and rule (the run must outlive it).
  static TrainingRecord from(const Run& run);
};

enum class PathQuadrature {
  automatic,       // exact for ReLU/max-pool nets; for smooth ones adaptive Gauss–Legendre on the kernel values (to 1e-15)
  exact,           // breakpoints + Gauss–Legendre: exact for piecewise-polynomial nets (refused for smooth ones)
  gauss_legendre,  // `nodes` Gauss–Legendre nodes per step, no breakpoints: cheap, inexact where a pattern changes
  adaptive,        // composite Gauss–Legendre, intervals doubled until the step's residual ≤ tolerance × the outputs' scale
};
struct QuadratureChoice {
  PathQuadrature mode = PathQuadrature::automatic;
  int64_t nodes = 0;       // gauss_legendre: nodes per step
  double tolerance = 0.0;  // adaptive: the residual |f(x;θ_s+1) − f(x;θ_s) − ⟨∫∇f dt, Δθ_s⟩| relative to max |f| over the step
};
// "auto", "exact", "gauss-legendre:N" (N ≥ 1) or "adaptive:TOL" (TOL > 0); throws std::invalid_argument naming the text.
QuadratureChoice parse_quadrature(const std::string& text);

struct EpkOptions {
  std::vector<PathKernel> kernels{PathKernel::exact, PathKernel::ntk_init, PathKernel::after, PathKernel::domingos};
  KernelMethod method = KernelMethod::automatic;
  QuadratureChoice quadrature;
  int64_t extra_nodes = 0;            // added to the nodes a piece's degree needs (piecewise-polynomial nets)
  int64_t smooth_nodes = 8;           // Gauss–Legendre nodes per interval for smooth activations
  double smooth_tolerance = 1e-15;    // accept an interval when halving changes its kernel values by at most this, relatively
  bool keep_kernel = true;            // K_EPK(x, x_i) = Σ_s K_s(x, x_i), (M·C, N·C)
  std::function<void(int64_t step, int64_t steps)> progress;
};

// One kernel machine's reproduction of the network on the test inputs.
struct KernelMachine {
  PathKernel kind = PathKernel::exact;
  Tensor outputs;        // (M, C): f(x;θ_0) + Σ training terms + the weight-decay column
  Tensor weight_decay;   // (M, C): the weight-decay column alone (zero without weight decay)
  double max_abs_error = 0.0, max_rel_error = 0.0;  // against the network's f(x;θ_T), over every input and output
  bool decisions_agree = false;                     // class decisions equal the network's for every input
  // max over steps, inputs and outputs of |f(x;θ_s+1) − f(x;θ_s) − the machine's step-s terms|: how far from exact each
  // step is. Unknown (false) for the fixed-kernel machines of a run with weight decay (their decay terms are not per step).
  double max_step_residual = 0.0;
  bool step_residual_known = true;
};

struct QuadratureReport {
  std::string mode;              // "breakpoints + Gauss-Legendre", "adaptive Gauss-Legendre", "Gauss-Legendre, 8 nodes per step", ...
  int64_t nodes_per_piece = 0;   // piecewise-polynomial nets: the nodes the gradient's degree needs
  int64_t pieces = 0, nodes = 0;  // summed over inputs and steps
  int64_t breakpoints = 0;       // pieces − segments
  int64_t max_pieces = 0;        // most pieces on one (input, step) segment
  double max_segment_residual = 0.0;  // max |f(x;θ_s+1) − f(x;θ_s) − ⟨∫∇f dt, Δθ_s⟩|: the quadrature's own check
  double piece_seconds = 0.0;         // wall time finding breakpoints (exact mode)
};

struct EpkResult {
  int64_t outputs = 0;
  Tensor initial, final;              // (M, C): the network's f(x;θ_0) and f(x;θ_T)
  std::vector<KernelMachine> machines;  // in the order of options.kernels
  Tensor attributions;                // (M, N, C): c_i(x) = Σ_s a_{i,s} K_s(x, x_i) (exact kernel)
  Tensor kernel;                      // (M·C, N·C): K_EPK, when kept
  Tensor coefficients;                // (N, C): Σ_s a_{i,s}, each training point's total loss-derivative weight
  QuadratureReport quadrature;
  int64_t steps = 0;
  Parameters final_parameters;        // θ_T as the replay reached it
  double seconds = 0.0, training_seconds = 0.0;  // the whole computation, and the SGD steps of the replay inside it
};

// Replays the record from θ_0 and evaluates every requested kernel machine on the test inputs.
// Throws when the network cannot be traced or an input's shape does not match.
EpkResult exact_path_kernel(const Sequential& model, const Parameters& theta0, const Tensor& test_inputs,
                            const TrainingRecord& record, const EpkOptions& options = {});

// The piece finder on its own: per input, the sorted bounds 0 = t_0 < … < t_k = 1 between which every ReLU sign and
// max-pool winner of the network along the segment stays fixed (piecewise-polynomial nets only; throws otherwise).
std::vector<std::vector<double>> path_pieces(const Sequential& model, const Tensor& inputs, const Segment& segment);

// An independent check of pieces found along a segment: the network is evaluated at every piece's midpoint, and a
// breakpoint is spurious when the activation patterns (every ReLU sign, every max-pool winner) on its two sides agree.
struct PieceCheck {
  int64_t breakpoints = 0, spurious = 0;
};
PieceCheck check_pieces(const Sequential& model, const Tensor& inputs, const Segment& segment, const std::vector<std::vector<double>>& bounds);

// The k training points with the largest positive and the most negative attribution to output `output` of test input m.
struct TopAttributions {
  std::vector<int64_t> positive, negative;  // training-set positions
  std::vector<double> positive_values, negative_values;
};
TopAttributions top_attributions(const Tensor& attributions, int64_t input, int64_t output, int64_t k);


}  // namespace ks
