// SGD training with every step recorded (learning rate, batch, loss), bit-exact replay of a recorded trajectory, and evaluation.
// It does not write files (run.h does) and never threads across samples in a way that changes bits: results do not depend on OMP_NUM_THREADS.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "nn/layers.h"
#include "nn/optimizer.h"

namespace ks {

enum class LossKind { logistic, cross_entropy, mse };
LossKind parse_loss(const std::string& name);
std::string loss_name(LossKind kind);
// Logistic for one output, cross-entropy for several.
LossKind default_loss(int64_t outputs);

struct TrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 32;          // >= the training set size means full-batch gradient descent
  double learning_rate = 0.05;
  int64_t lr_step_epochs = 0;       // step schedule: multiply by lr_gamma every this many epochs (0 = constant)
  double lr_gamma = 0.1;
  bool lr_cosine = false;           // cosine annealing over all steps to lr_min, instead of the step schedule
  double lr_min = 0.0;
  int64_t warmup_steps = 0;         // linear warm-up: the first K steps at (s + 1)/K of the scheduled rate
  double weight_decay = 0.0;        // θ ← θ − η (∇L + λ θ)
  LossKind loss = LossKind::logistic;
  uint64_t seed = 0;                // the shuffling seed
  int64_t checkpoint_every = 0;     // 0 = no intermediate checkpoints
  bool augment = false;             // random rotations within ±15° and 1-pixel shifts, drawn per step from the seed
  bool keras_augment = false;       // with augment: Long's Keras augmentation instead (rotations within ±15° only)
  OptimizerOptions optimizer;       // plain SGD unless chosen
  // Training to a loss target, as Long's run_ak_experiment.py: 10 epochs, then chunks of 20, 40, … until the training
  // loss after a chunk is at most loss_target, or max_epochs are done (epochs is then unused). 0: off.
  double loss_target = 0.0;
  int64_t max_epochs = 1000;
};
// Whether `epochs_done` ends one of Long's chunks (10, 30, 70, 150, …): where a loss target is checked.
bool loss_target_chunk_end(int64_t epochs_done);

struct StepRecord {
  double learning_rate = 0.0;
  std::vector<int64_t> batch;  // positions in the training set
  double loss = 0.0;           // the batch loss before the step
};

struct EpochMetrics {
  int64_t epoch = 0;
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
};

struct Evaluation {
  double loss = 0, accuracy = 0;
  Tensor outputs;  // (N, outputs)
};

// The mean loss of the network with these parameter Vars on inputs with labels (the graph is kept, so backward can follow).
Var batch_loss(const Sequential& model, const std::vector<Var>& parameters, const Tensor& inputs, const std::vector<int>& labels, LossKind loss);
Var loss_of_outputs(const Var& outputs, const std::vector<int>& labels, LossKind loss);  // outputs (N, outputs)
Tensor gather_inputs(const Dataset& data, const std::vector<int64_t>& positions);

// Training-time augmentation: step s's batch is transformed by datasets/transform.h's augment_images(seed, stream s), so
// training, replay and the exact path kernel all see the same images.
struct Augmentation {
  bool enabled = false;
  uint64_t seed = 0;
  bool keras = false;  // keras_augment_images (rotation only, Long's) instead of augment_images
};
inline Augmentation augmentation_of(const TrainOptions& options) { return {options.augment, options.seed, options.keras_augment}; }
// The inputs step `step` trains on: the batch, augmented when augmentation is on.
Tensor step_inputs(const Dataset& data, const std::vector<int64_t>& batch, int64_t step, const Augmentation& augmentation);
std::vector<int> gather_labels(const Dataset& data, const std::vector<int64_t>& positions);

// The loss above which training counts as diverged (the losses of logistic, cross-entropy and MSE heads start near 1).
constexpr double kDivergedLoss = 1e8;

// One step of the optimizer on the batch at θ, updating θ and the optimizer's state in place; returns the batch loss.
// Training and replay call exactly this. Throws std::runtime_error naming the step when the loss or a parameter is NaN
// or infinite.
struct StepContext {
  double learning_rate = 0.0, weight_decay = 0.0;
  LossKind loss = LossKind::logistic;
  int64_t step = 0;
  Augmentation augmentation;
  OptimizerOptions optimizer;
};
double optimizer_step(const Sequential& model, Parameters& theta, OptimizerState& state, const Dataset& data, const std::vector<int64_t>& batch,
                      const StepContext& context);
// One plain SGD step, θ ← θ − η(∇L + λθ): optimizer_step with SGD (no state). The EPK calls exactly this.
double sgd_step(const Sequential& model, Parameters& theta, const Dataset& data, const std::vector<int64_t>& batch, double learning_rate,
                double weight_decay, LossKind loss, int64_t step, const Augmentation& augmentation = {});

// The class decision of one row of outputs: the sign for one output, the argmax (first on ties) for several.
int64_t decision(const double* outputs, int64_t count);

Evaluation evaluate(const Sequential& model, const Parameters& theta, const Dataset& data, LossKind loss);

struct TrainCallbacks {
  std::function<void(int64_t step, int64_t total_steps, int64_t epoch, double loss)> on_step;
  std::function<void(const EpochMetrics&)> on_epoch;
  // θ_step and the optimizer's state before that step (empty for plain SGD): what replay from the checkpoint needs.
  std::function<void(int64_t step, const Parameters& parameters, const OptimizerState& state)> on_checkpoint;
};

struct TrainResult {
  std::vector<StepRecord> steps;
  std::vector<EpochMetrics> metrics;
  Parameters final_parameters;  // θ_T
  OptimizerState final_state;   // the optimizer's state after the last step
};

// The learning rate of step `step` (0-based, in epoch `epoch`, of total_steps): the step schedule
// (PyTorch's StepLR per epoch) or cosine annealing per step, η_min + (η − η_min)(1 + cos(π s / S))/2 (CosineAnnealingLR
// stepped per batch, T_max = S), times the warm-up factor (s + 1)/K for s < K (LinearLR from 1/K over K − 1 steps).
double scheduled_learning_rate(const TrainOptions& options, int64_t step, int64_t epoch, int64_t total_steps);

// Trains from θ_0 (left as it is) and returns θ_T with the recorded steps.
TrainResult train(const Sequential& model, const Parameters& theta0, const Dataset& train_set, const Dataset& test_set, const TrainOptions& options,
                  const TrainCallbacks& callbacks = {});

// How a recorded trajectory's steps are redone: the run's weight decay, loss, augmentation and update rule.
struct ReplayOptions {
  double weight_decay = 0.0;
  LossKind loss = LossKind::logistic;
  Augmentation augmentation;
  OptimizerOptions optimizer;
};
// Replays steps [first_step, last_step) of a recorded trajectory in place: θ and the optimizer's state go from step
// first_step's (a checkpoint's, or θ_0 with an empty state) to step last_step's, bit for bit as training made them.
void replay_steps(const Sequential& model, Parameters& theta, OptimizerState& state, const Dataset& train_set, const std::vector<StepRecord>& steps,
                  int64_t first_step, int64_t last_step, const ReplayOptions& options);
// replay_steps from θ (θ_first_step) with an empty optimizer state, returning θ_last_step. An optimizer with state
// (momentum, Adam) needs its state from a checkpoint after step 0, so from here it replays from step 0 only.
Parameters replay(const Sequential& model, const Parameters& theta, const Dataset& train_set, const std::vector<StepRecord>& steps, int64_t first_step,
            int64_t last_step, double weight_decay, LossKind loss, const Augmentation& augmentation = {}, const OptimizerOptions& optimizer = {});

}  // namespace ks
