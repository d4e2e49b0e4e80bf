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
  // A run's own record: its training set, steps, weight decay, loss and augmentation (the run must outlive it).
  static TrainingRecord from(const Run& run);
};

enum class PathQuadrature {
  automatic,  // breakpoints + exact Gauss–Legendre for ReLU/max-pool nets, adaptive Gauss–Legendre otherwise
  crude,      // one node at t = 1/2, no breakpoints: deliberately inexact, so tests can see exactness fail
};

struct EpkOptions {
  std::vector<PathKernel> kernels{PathKernel::exact, PathKernel::ntk_init, PathKernel::after, PathKernel::domingos};
  KernelMethod method = KernelMethod::automatic;
  PathQuadrature quadrature = PathQuadrature::automatic;
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
};

struct QuadratureReport {
  std::string mode;              // "breakpoints + Gauss-Legendre", "adaptive Gauss-Legendre", "crude"
  int64_t nodes_per_piece = 0;   // piecewise-polynomial nets: the nodes the gradient's degree needs
  int64_t pieces = 0, nodes = 0;  // summed over inputs and steps
  int64_t breakpoints = 0;       // pieces − segments
  int64_t max_pieces = 0;        // most pieces on one (input, step) segment
  double max_segment_residual = 0.0;  // max |f(x;θ_s+1) − f(x;θ_s) − ⟨∫∇f dt, Δθ_s⟩|: the quadrature's own check
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

// The k training points with the largest positive and the most negative attribution to output `output` of test input m.
struct TopAttributions {
  std::vector<int64_t> positive, negative;  // training-set positions
  std::vector<double> positive_values, negative_values;
};
TopAttributions top_attributions(const Tensor& attributions, int64_t input, int64_t output, int64_t k);


}  // namespace ks
