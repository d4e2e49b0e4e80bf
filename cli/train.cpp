// `kernelscope train`: loads a task, builds the network from its spec, trains with SGD and writes a run directory.
// The work is the library's (nn/train.h, nn/run.h); this file maps options to it and reports progress.
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/checks.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "datasets/npy.h"
#include "nn/run.h"

namespace ks::cli {

namespace {


// Analyses run from anywhere, so the config records the data directory as an absolute path.
std::string absolute_source(const std::string& source) {
  const size_t colon = source.find(':');
  if (colon == std::string::npos || source.compare(0, colon, "toy") == 0 || colon + 1 == source.size()) return source;
  const std::filesystem::path location(source.substr(colon + 1));
  if (!std::filesystem::exists(location)) return source;  // the loader will name it in its error
  return source.substr(0, colon + 1) + std::filesystem::canonical(location).string();
}

}  // namespace

// The update rule's settings from the command's options (the loss defaults by the task's output count).
// The folder a data source reads ("mnist:DIR" → DIR), which an output must never replace; empty for toy sets.
static std::filesystem::path source_directory(const std::string& source) {
  const size_t colon = source.find(':');
  if (colon == std::string::npos || source.compare(0, colon, "toy") == 0) return {};
  return source.substr(colon + 1);
}

static TrainOptions training_options(const TrainCommandOptions& o, const Task& task) {
  TrainOptions t;
  t.epochs = o.epochs;
  t.batch_size = o.batch;
  t.learning_rate = o.lr;
  t.lr_step_epochs = o.lr_step_epochs;
  t.lr_gamma = o.lr_gamma;
  if (o.lr_schedule != "step" && o.lr_schedule != "cosine")
    throw std::invalid_argument("--lr-schedule '" + o.lr_schedule + "': use step (with --lr-step-epochs; constant when 0) or cosine");
  t.lr_cosine = o.lr_schedule == "cosine";
  t.lr_min = o.lr_min;
  t.warmup_steps = o.warmup_steps;
  t.loss_target = o.loss_target;
  t.max_epochs = o.max_epochs;
  t.weight_decay = o.weight_decay;
  t.loss = o.loss.empty() ? default_loss(task.outputs()) : parse_loss(o.loss);
  t.seed = o.seed;
  t.checkpoint_every = o.checkpoint_every;
  t.augment = o.augment || o.keras_augment;
  t.keras_augment = o.keras_augment;
  t.optimizer.kind = parse_optimizer(o.optimizer);
  t.optimizer.momentum = o.momentum;
  t.optimizer.dampening = o.dampening;
  t.optimizer.beta1 = o.beta1;
  t.optimizer.beta2 = o.beta2;
  t.optimizer.epsilon = o.epsilon;
  check_optimizer(t.optimizer);
  return t;
}

// config.json: the run's configuration plus what was read (files, class names) and the parameter layout.
nlohmann::json recorded_config(const RunConfig& config, const DataSplit& split, const Task& task, const Sequential& model, int64_t num_parameters) {
  nlohmann::json json = to_json(config);
  json["data"]["train_files"] = split.train_files;
  json["data"]["test_files"] = split.test_files;
  json["data"]["class_names"] = task.train.class_names;
  if (num_parameters > 0) json["model"]["sized_for_parameters"] = num_parameters;  // Long's sizing asked for
  json["model"]["parameters"] = nlohmann::json::array();
  const std::vector<std::string>& names = model.parameter_names();
  const std::vector<Shape>& shapes = model.parameter_shapes();
  for (size_t k = 0; k < names.size(); ++k) json["model"]["parameters"].push_back({{"name", names[k]}, {"shape", shapes[k]}});
  return json;
}

int run_train(const TrainCommandOptions& o) {
  RunConfig config;
  config.source.source = absolute_source(o.data);
  // Recorded absolute, so analyses run from any folder find the same files.
  auto absolute = [](const std::string& file) { return file.empty() ? file : std::filesystem::absolute(file).lexically_normal().string(); };
  config.source.train_images = absolute(o.train_images);
  config.source.train_labels = absolute(o.train_labels);
  config.source.test_images = absolute(o.test_images);
  config.source.test_labels = absolute(o.test_labels);
  config.source.resize = o.resize;
  config.source.seed = o.seed;
  config.task.classes = parse_classes(o.classes);
  config.task.train_size = o.train_size;
  config.task.test_size = o.test_size;

  RunWriter writer(o.out, {"run", o.overwrite, {source_directory(config.source.source)}});  // fails early if --out exists
  const DataSplit split = load_source(config.source);
  const Task task = make_task(split, config.task);
  Shape sample_shape = task.train.inputs.shape();
  sample_shape.erase(sample_shape.begin());
  const std::string spec = o.num_parameters > 0 ? long_sized_spec(o.arch, sample_shape, o.num_parameters) : o.arch;
  if (o.num_parameters > 0 && !o.quiet)
    std::cerr << "kernelscope train: --arch " << o.arch << " --num-parameters " << o.num_parameters << " is " << spec << " (Long's sizing)\n";
  config.model = ModelOptions{spec, sample_shape, task.outputs(), parse_init(o.init), o.seed};
  config.training = training_options(o, task);

  auto model = build_model(config.model);
  if (!o.quiet)
    std::cerr << "kernelscope train: " << task.train.size() << " training and " << task.test.size() << " test samples, "
              << task.class_count << " classes, " << model->parameter_count() << " parameters\n"
              << model->describe() << "\n";
  const Parameters theta0 = initial_parameters(*model, config.model);
  writer.write_parameters("theta0", *model, theta0);

  std::unique_ptr<Progress> progress;
  TrainCallbacks callbacks;
  callbacks.on_step = [&](int64_t step, int64_t total, int64_t epoch, double loss) {
    if (o.check_interrupt) o.check_interrupt();
    if (o.quiet) return;
    if (!progress) progress = std::make_unique<Progress>("training", total);
    char note[64];
    std::snprintf(note, sizeof note, "epoch %lld loss %.4f", static_cast<long long>(epoch + 1), loss);
    progress->update(step, note);
  };
  callbacks.on_epoch = [&](const EpochMetrics& m) {
    if (o.quiet) return;
    if (progress) progress->done();
    std::fprintf(stderr, "epoch %lld: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%%\n", static_cast<long long>(m.epoch),
                 m.train_loss, 100 * m.train_accuracy, m.test_loss, 100 * m.test_accuracy);
  };
  callbacks.on_checkpoint = [&](int64_t step, const Parameters& values, const OptimizerState& state) {
    writer.write_checkpoint(step, *model, values, state, config.training.optimizer.kind);
  };
  const TrainResult result = train(*model, theta0, task.train, task.test, config.training, callbacks);

  const auto& dir = writer.directory();
  writer.write_parameters("thetaT", *model, result.final_parameters);
  write_trajectory(dir, result.steps);
  write_npy(dir / "train_indices.npy", task.train.source_indices);
  write_npy(dir / "test_indices.npy", task.test.source_indices);
  std::ofstream(dir / "config.json") << recorded_config(config, split, task, *model, o.num_parameters).dump(2) << "\n";
  nlohmann::json metrics = nlohmann::json::array();
  for (const EpochMetrics& m : result.metrics)
    metrics.push_back({{"epoch", m.epoch}, {"train_loss", m.train_loss}, {"train_accuracy", m.train_accuracy},
                       {"test_loss", m.test_loss}, {"test_accuracy", m.test_accuracy}});
  std::ofstream(dir / "metrics.json") << nlohmann::json{{"epochs", metrics}}.dump(2) << "\n";
  writer.finish();
  const EpochMetrics& last = result.metrics.back();
  std::printf("trained %s for %lld steps: test accuracy %.2f%% (train %.2f%%); run written to %s\n", config.model.spec.c_str(),
              static_cast<long long>(result.steps.size()), 100 * last.test_accuracy, 100 * last.train_accuracy, (o.out_label.empty() ? o.out : o.out_label).c_str());
  std::fflush(stdout);
  return 0;
}

void add_training_options(CLI::App* cmd, TrainCommandOptions& o) {
  cmd->add_option("--data", o.data, "Data source: mnist:DIR, fashion:DIR (default dir: Debian's), cifar10:DIR, folder:DIR, toy:moons|spirals")->required();
  cmd->add_option("--classes", o.classes, "Classes to use: a pair like 3,8 (first = negative), a list, or all")->capture_default_str();
  cmd->add_option("--arch", o.arch, "Architecture: mlp:H1-H2[/tanh|/softplus], vgg:W, resnet9:W, conv:32,32,M,64,64,M (R: a residual block, Rk: one to k channels); mlp or vgg with --num-parameters")->capture_default_str();
  cmd->add_option("--num-parameters", o.num_parameters, "With --arch mlp or vgg: the width Long's code picks for about P parameters (mlp: 4 hidden layers; vgg:W)")
      ->check(CLI::Range(int64_t{100}, int64_t{100000000}));
  cmd->add_option("--init", o.init, "Initialisation: glorot-uniform, he-normal, ntk")->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "Epochs")->check(whole_number(1))->capture_default_str();
  cmd->add_option("--batch", o.batch, "Mini-batch size (>= training size: full-batch gradient descent)")->check(whole_number(1))->capture_default_str();
  cmd->add_option("--lr", o.lr, "Learning rate")->check(finite_number(false))->capture_default_str();
  cmd->add_option("--lr-step-epochs", o.lr_step_epochs, "Step schedule: multiply the learning rate by --lr-gamma every N epochs (0: constant)")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--lr-gamma", o.lr_gamma, "Step schedule factor")->check(finite_number(false))->capture_default_str();
  cmd->add_option("--lr-schedule", o.lr_schedule, "step (--lr-step-epochs, --lr-gamma) or cosine (annealed per step to --lr-min over all steps)")
      ->capture_default_str();
  cmd->add_option("--lr-min", o.lr_min, "cosine: the final learning rate")->check(finite_number(true))->capture_default_str();
  cmd->add_option("--warmup-steps", o.warmup_steps, "Linear warm-up: step s < K runs at (s + 1)/K of the scheduled rate")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--loss-target", o.loss_target,
                  "Train as Long's code does: 10 epochs, then chunks of 20, 40, ... until the training loss is at most this (replaces --epochs)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-epochs", o.max_epochs, "With --loss-target: stop after this many epochs even if the target is not reached")
      ->check(whole_number(1))->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "Weight decay λ: added to the gradient (sgd, momentum, nesterov, adam), decoupled θ·(1 − ηλ) (adamw)")
      ->check(finite_number(true))
      ->capture_default_str();
  cmd->add_option("--optimizer", o.optimizer, "Update rule, as torch.optim: sgd, momentum, nesterov (SGD with momentum), adam, adamw")->capture_default_str();
  cmd->add_option("--momentum", o.momentum, "momentum, nesterov: μ in [0, 1)")->capture_default_str();
  cmd->add_option("--dampening", o.dampening, "momentum: dampening in [0, 1] (nesterov needs 0)")->capture_default_str();
  cmd->add_option("--beta1", o.beta1, "adam, adamw: β1 in [0, 1)")->capture_default_str();
  cmd->add_option("--beta2", o.beta2, "adam, adamw: β2 in [0, 1)")->capture_default_str();
  cmd->add_option("--epsilon", o.epsilon, "adam, adamw: ε > 0")->capture_default_str();
  cmd->add_option("--loss", o.loss, "Loss: logistic (default for 2 classes), cross-entropy (default for more), mse");
  cmd->add_option("--seed", o.seed, "Seed for initialisation and shuffling")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--train-size", o.train_size, "Balanced training subset size (0: all samples of the classes)")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--test-size", o.test_size, "Balanced test subset size (0: all)")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "Save θ every K steps so replay can start nearby (0: only θ_0 and θ_T)")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--resize", o.resize, "folder: resize every image to R x R")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--train-images", o.train_images, "IDX training images file (overrides the name found in DIR)");
  cmd->add_option("--train-labels", o.train_labels, "IDX training labels file");
  cmd->add_option("--test-images", o.test_images, "IDX test images file");
  cmd->add_option("--test-labels", o.test_labels, "IDX test labels file");
  CLI::Option* augment = cmd->add_flag("--augment", o.augment, "Augment each batch: random rotations within ±15° and 1-pixel shifts (images only; replayed exactly)");
  cmd->add_flag("--keras-augment", o.keras_augment,
                "Augment as Long's Keras code does: rotations within ±15°, edges repeated, no shifts (its width_shift_range=1 draws only 0)")
      ->excludes(augment);
}

Command register_train(CLI::App& app) {
  auto o = std::make_shared<TrainCommandOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Train a network (SGD, momentum, Nesterov, Adam, AdamW) and write a run directory that every analysis reads");
  add_training_options(cmd, *o);
  cmd->add_option("--out", o->out, "Run directory to create")->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  cmd->add_flag("--quiet", o->quiet, "No progress output");
  return {cmd, [o] { return run_train(*o); }};
}

}  // namespace ks::cli
