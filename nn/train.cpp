// SGD, replay and evaluation. Bit-reproducibility comes from doing every step through one function (sgd_step),
// from the seeded shuffle, and from ops whose parallel parts write disjoint outputs and reduce in a fixed order.
#include "nn/train.h"
#include "autodiff/math.h"

#include "datasets/transform.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "autodiff/random.h"
#include "nn/model.h"

namespace ks {

LossKind parse_loss(const std::string& name) {
  if (name == "logistic") return LossKind::logistic;
  if (name == "cross-entropy" || name == "cross_entropy") return LossKind::cross_entropy;
  if (name == "mse") return LossKind::mse;
  throw std::invalid_argument("unknown loss '" + name + "' (use logistic, cross-entropy or mse)");
}

std::string loss_name(LossKind kind) {
  switch (kind) {
    case LossKind::logistic: return "logistic";
    case LossKind::cross_entropy: return "cross-entropy";
    case LossKind::mse: return "mse";
  }
  return "?";
}

LossKind default_loss(int64_t outputs) { return outputs == 1 ? LossKind::logistic : LossKind::cross_entropy; }

Tensor gather_inputs(const Dataset& data, const std::vector<int64_t>& positions) {
  Shape shape = data.inputs.shape();
  const int64_t row = data.size() ? data.inputs.numel() / data.size() : 0;
  shape[0] = static_cast<int64_t>(positions.size());
  Tensor out(shape);
  for (size_t k = 0; k < positions.size(); ++k)
    std::copy_n(data.inputs.data() + positions[k] * row, row, out.data() + static_cast<int64_t>(k) * row);
  return out;
}

Tensor step_inputs(const Dataset& data, const std::vector<int64_t>& batch, int64_t step, const Augmentation& augmentation) {
  Tensor inputs = gather_inputs(data, batch);
  if (!augmentation.enabled) return inputs;
  if (inputs.rank() != 4) throw std::invalid_argument("augmentation needs images (N, C, H, W); the training inputs are " + shape_string(inputs.shape()));
  if (augmentation.keras) return keras_augment_images(inputs, augmentation.seed, static_cast<uint64_t>(step));
  return augment_images(inputs, augmentation.seed, static_cast<uint64_t>(step));
}

std::vector<int> gather_labels(const Dataset& data, const std::vector<int64_t>& positions) {
  std::vector<int> labels;
  for (int64_t p : positions) labels.push_back(data.labels[static_cast<size_t>(p)]);
  return labels;
}

// MSE targets: ±1 for a single output, one-hot for several.
static Tensor mse_targets(const std::vector<int>& labels, int64_t outputs) {
  Tensor targets({static_cast<int64_t>(labels.size()), outputs});
  for (size_t n = 0; n < labels.size(); ++n) {
    if (outputs == 1) targets[static_cast<int64_t>(n)] = labels[n] == 1 ? 1.0 : -1.0;
    else targets[static_cast<int64_t>(n) * outputs + labels[n]] = 1.0;
  }
  return targets;
}

Var batch_loss(const Sequential& model, const std::vector<Var>& parameters, const Tensor& inputs, const std::vector<int>& labels, LossKind loss) {
  return loss_of_outputs(model.forward(constant(inputs), parameters), labels, loss);
}

Var loss_of_outputs(const Var& outputs, const std::vector<int>& labels, LossKind loss) {
  const int64_t count = outputs->value.dim(1);
  switch (loss) {
    case LossKind::logistic:
      if (count != 1) throw std::invalid_argument("logistic loss needs one output, the model has " + std::to_string(count));
      return logistic_loss(outputs, labels);
    case LossKind::cross_entropy:
      if (count == 1) throw std::invalid_argument("cross-entropy needs one output per class, and a two-class task has one output: use --loss logistic or mse");
      return cross_entropy(outputs, labels);
    case LossKind::mse: return mse_loss(outputs, mse_targets(labels, count));
  }
  throw std::logic_error("loss_of_outputs: unknown loss");
}

namespace {

// θ's tensors lent to the tape as parameter leaves for one step, and given back whatever happens (no copy of θ).
struct LentParameters {
  Parameters& theta;
  std::vector<Var> vars;
  explicit LentParameters(Parameters& t) : theta(t) {
    for (Tensor& tensor : theta) vars.push_back(parameter(std::move(tensor)));
  }
  ~LentParameters() {
    for (size_t k = 0; k < vars.size(); ++k) theta[k] = std::move(vars[k]->value);
  }
};

}  // namespace

double optimizer_step(const Sequential& model, Parameters& theta, OptimizerState& state, const Dataset& data, const std::vector<int64_t>& batch,
                      const StepContext& c) {
  model.check_parameters(theta, "optimizer_step");
  Parameters gradient;
  double loss_value = 0.0;
  {
    LentParameters lent(theta);
    Var value = batch_loss(model, lent.vars, step_inputs(data, batch, c.step, c.augmentation), gather_labels(data, batch), c.loss);
    loss_value = value->value[0];
    // A loss this large is no longer training (the losses here start near 1): stop as for NaN, naming the step.
    if (!std::isfinite(loss_value) || loss_value > kDivergedLoss)
      throw std::runtime_error("training diverged: the loss is " + std::to_string(loss_value) + " at step " + std::to_string(c.step) +
                               " (try a smaller --lr)");
    backward(value);
    for (const Var& p : lent.vars) gradient.push_back(p->grad.empty() ? Tensor(p->value.shape()) : std::move(p->grad));
  }
  optimizer_update(c.optimizer, state, theta, gradient, c.learning_rate, c.weight_decay);
  for (const Tensor& t : theta)
    if (!std::isfinite(t.vector().sum()))
      throw std::runtime_error("training diverged: a parameter became NaN or infinite at step " + std::to_string(c.step) + " (try a smaller --lr)");
  return loss_value;
}

double sgd_step(const Sequential& model, Parameters& theta, const Dataset& data, const std::vector<int64_t>& batch, double learning_rate,
                double weight_decay, LossKind loss, int64_t step, const Augmentation& augmentation) {
  OptimizerState none;
  return optimizer_step(model, theta, none, data, batch, {learning_rate, weight_decay, loss, step, augmentation, {}});
}

int64_t decision(const double* outputs, int64_t count) {
  if (count == 1) return outputs[0] > 0.0 ? 1 : 0;
  return std::max_element(outputs, outputs + count) - outputs;
}

Evaluation evaluate(const Sequential& model, const Parameters& theta, const Dataset& data, LossKind loss) {
  constexpr int64_t chunk = 256;  // fixed, so results do not depend on the set's size
  Evaluation result;
  double loss_sum = 0.0;
  int64_t correct = 0;
  for (int64_t first = 0; first < data.size(); first += chunk) {
    std::vector<int64_t> positions;
    for (int64_t n = first; n < std::min(first + chunk, data.size()); ++n) positions.push_back(n);
    const std::vector<int> labels = gather_labels(data, positions);
    Var outputs = constant(model.apply(theta, gather_inputs(data, positions)));
    const int64_t count = outputs->value.dim(1);
    if (result.outputs.empty()) result.outputs = Tensor({data.size(), count});
    std::copy_n(outputs->value.data(), outputs->value.numel(), result.outputs.data() + first * count);
    Var loss_value = loss_of_outputs(outputs, labels, loss);
    loss_sum += loss_value->value[0] * static_cast<double>(positions.size());
    for (size_t k = 0; k < positions.size(); ++k) {
      const double* row = outputs->value.data() + static_cast<int64_t>(k) * count;
      const int predicted = static_cast<int>(decision(row, count));
      correct += predicted == labels[k];
    }
  }
  result.loss = loss_sum / static_cast<double>(data.size());
  result.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
  return result;
}

double scheduled_learning_rate(const TrainOptions& o, int64_t step, int64_t epoch, int64_t total_steps) {
  double rate = o.learning_rate;
  if (o.lr_cosine) {
    const double progress = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(total_steps, 1));
    rate = o.lr_min + (o.learning_rate - o.lr_min) * (1.0 + math::cos(3.14159265358979323846 * progress)) / 2.0;
  } else if (o.lr_step_epochs > 0) {
    rate *= math::pow(o.lr_gamma, epoch / o.lr_step_epochs);
  }
  if (step < o.warmup_steps) rate *= static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  return rate;
}

bool loss_target_chunk_end(int64_t epochs_done) {
  int64_t chunk = 10, total = 10;
  while (total < epochs_done) chunk *= 2, total += chunk;
  return total == epochs_done;
}

TrainResult train(const Sequential& model, const Parameters& theta0, const Dataset& train_set, const Dataset& test_set, const TrainOptions& options,
                  const TrainCallbacks& callbacks) {
  const bool to_target = options.loss_target > 0.0;
  const int64_t epoch_limit = to_target ? options.max_epochs : options.epochs;
  if (epoch_limit < 1 || options.batch_size < 1 || !(options.learning_rate > 0.0))
    throw std::invalid_argument("train: epochs, batch size and learning rate must be positive");
  if (to_target && options.lr_cosine)
    throw std::invalid_argument("train: a cosine schedule needs the number of steps, which a loss target leaves open: use the step schedule");
  check_optimizer(options.optimizer);
  if (options.warmup_steps < 0) throw std::invalid_argument("train: warmup_steps = " + std::to_string(options.warmup_steps) + " is negative");
  if (options.lr_cosine && !(options.lr_min >= 0.0 && options.lr_min <= options.learning_rate))
    throw std::invalid_argument("train: lr_min = " + std::to_string(options.lr_min) + " must lie in [0, the learning rate]");
  const int64_t N = train_set.size();
  if (N == 0) throw std::invalid_argument("train: the training set is empty");
  const int64_t batch_size = std::min(options.batch_size, N);
  const int64_t steps_per_epoch = (N + batch_size - 1) / batch_size;
  const int64_t total_steps = steps_per_epoch * epoch_limit;  // with a loss target: at most
  Rng shuffler(options.seed ^ 0x5EEDF00DULL);
  TrainResult result;
  Parameters& theta = result.final_parameters;
  theta = theta0;
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epoch_limit; ++epoch) {
    // Full-batch gradient descent keeps the natural order; mini-batches are reshuffled every epoch.
    const std::vector<int64_t> order = batch_size == N ? shuffler.permutation(0) : shuffler.permutation(N);
    for (int64_t first = 0; first < N; first += batch_size, ++step) {
      StepRecord record;
      const double learning_rate = scheduled_learning_rate(options, step, epoch, total_steps);
      record.learning_rate = learning_rate;
      for (int64_t k = first; k < std::min(first + batch_size, N); ++k)
        record.batch.push_back(batch_size == N ? k : order[static_cast<size_t>(k)]);
      if (options.checkpoint_every > 0 && step > 0 && step % options.checkpoint_every == 0 && callbacks.on_checkpoint)
        callbacks.on_checkpoint(step, theta, result.final_state);
      const StepContext context{learning_rate, options.weight_decay, options.loss, step, augmentation_of(options), options.optimizer};
      record.loss = optimizer_step(model, theta, result.final_state, train_set, record.batch, context);
      if (callbacks.on_step) callbacks.on_step(step + 1, total_steps, epoch, record.loss);
      result.steps.push_back(std::move(record));
    }
    EpochMetrics metrics;
    metrics.epoch = epoch + 1;
    const Evaluation on_train = evaluate(model, theta, train_set, options.loss);
    metrics.train_loss = on_train.loss;
    metrics.train_accuracy = on_train.accuracy;
    if (test_set.size() > 0) {
      const Evaluation on_test = evaluate(model, theta, test_set, options.loss);
      metrics.test_loss = on_test.loss;
      metrics.test_accuracy = on_test.accuracy;
    }
    if (callbacks.on_epoch) callbacks.on_epoch(metrics);
    result.metrics.push_back(metrics);
    if (to_target && loss_target_chunk_end(epoch + 1) && metrics.train_loss <= options.loss_target) break;
  }
  return result;
}

void replay_steps(const Sequential& model, Parameters& theta, OptimizerState& state, const Dataset& train_set, const std::vector<StepRecord>& steps,
                  int64_t first_step, int64_t last_step, const ReplayOptions& options) {
  if (first_step < 0 || last_step > static_cast<int64_t>(steps.size()) || first_step > last_step)
    throw std::out_of_range("replay: steps [" + std::to_string(first_step) + ", " + std::to_string(last_step) +
                            ") outside the recorded " + std::to_string(steps.size()));
  if (options.optimizer.kind != OptimizerKind::sgd && first_step != 0 && state.updates != first_step)
    throw std::invalid_argument("replay: a " + optimizer_name(options.optimizer.kind) + " run from step " + std::to_string(first_step) +
                                " needs the optimizer's state after " + std::to_string(first_step) + " updates, got " + std::to_string(state.updates));
  for (int64_t s = first_step; s < last_step; ++s) {
    const StepRecord& record = steps[static_cast<size_t>(s)];
    const StepContext context{record.learning_rate, options.weight_decay, options.loss, s, options.augmentation, options.optimizer};
    optimizer_step(model, theta, state, train_set, record.batch, context);
  }
}

Parameters replay(const Sequential& model, const Parameters& start, const Dataset& train_set, const std::vector<StepRecord>& steps, int64_t first_step,
            int64_t last_step, double weight_decay, LossKind loss, const Augmentation& augmentation, const OptimizerOptions& optimizer) {
  Parameters theta = start;
  OptimizerState state;
  replay_steps(model, theta, state, train_set, steps, first_step, last_step, {weight_decay, loss, augmentation, optimizer});
  return theta;
}

}  // namespace ks
