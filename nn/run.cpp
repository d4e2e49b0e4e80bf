// Run directory layout, JSON config round trip, atomic writing and loading with completeness checks.
// The layout is documented in the README ("Run directories"); keep the two in step.
#include "nn/run.h"

#include <unistd.h>

#include <cmath>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "datasets/npy.h"

namespace ks {

namespace fs = std::filesystem;
using nlohmann::json;

json to_json(const RunConfig& c) {
  return json{
      {"format", "kernelscope-run-1"},
      {"data",
       {{"source", c.source.source},
        {"train_images", c.source.train_images.string()},
        {"train_labels", c.source.train_labels.string()},
        {"test_images", c.source.test_images.string()},
        {"test_labels", c.source.test_labels.string()},
        {"resize", c.source.resize},
        {"toy_points", c.source.toy_points},
        {"toy_seed", c.source.seed},
        {"classes", c.task.classes},
        {"train_size", c.task.train_size},
        {"test_size", c.task.test_size}}},
      {"model",
       {{"spec", c.model.spec},
        {"sample_shape", c.model.sample_shape},
        {"outputs", c.model.outputs},
        {"init", init_name(c.model.init)},
        {"seed", c.model.seed}}},
      {"training",
       {{"epochs", c.training.epochs},
        {"batch_size", c.training.batch_size},
        {"learning_rate", c.training.learning_rate},
        {"lr_step_epochs", c.training.lr_step_epochs},
        {"lr_gamma", c.training.lr_gamma},
        {"weight_decay", c.training.weight_decay},
        {"loss", loss_name(c.training.loss)},
        {"seed", c.training.seed},
        {"checkpoint_every", c.training.checkpoint_every},
        {"augment", c.training.augment},
        {"augmentation", c.training.augment ? (c.training.keras_augment ? "keras" : "rotations and shifts") : "none"},
        {"lr_cosine", c.training.lr_cosine},
        {"lr_min", c.training.lr_min},
        {"warmup_steps", c.training.warmup_steps},
        {"loss_target", c.training.loss_target},
        {"max_epochs", c.training.max_epochs},
        {"optimizer",
         {{"kind", optimizer_name(c.training.optimizer.kind)},
          {"momentum", c.training.optimizer.momentum},
          {"dampening", c.training.optimizer.dampening},
          {"beta1", c.training.optimizer.beta1},
          {"beta2", c.training.optimizer.beta2},
          {"epsilon", c.training.optimizer.epsilon}}}}},
  };
}

RunConfig run_config_from_json(const json& j) {
  RunConfig c;
  const json &data = j.at("data"), &model = j.at("model"), &training = j.at("training");
  c.source.source = data.at("source");
  c.source.train_images = data.value("train_images", "");
  c.source.train_labels = data.value("train_labels", "");
  c.source.test_images = data.value("test_images", "");
  c.source.test_labels = data.value("test_labels", "");
  c.source.resize = data.value("resize", 0);
  c.source.toy_points = data.value("toy_points", 400);
  c.source.seed = data.value("toy_seed", uint64_t{0});
  c.task.classes = data.at("classes").get<std::vector<int>>();
  c.task.train_size = data.at("train_size");
  c.task.test_size = data.at("test_size");
  c.model.spec = model.at("spec");
  c.model.sample_shape = model.at("sample_shape").get<Shape>();
  c.model.outputs = model.at("outputs");
  c.model.init = parse_init(model.at("init"));
  c.model.seed = model.at("seed");
  c.training.epochs = training.at("epochs");
  c.training.batch_size = training.at("batch_size");
  c.training.learning_rate = training.at("learning_rate");
  c.training.lr_step_epochs = training.at("lr_step_epochs");
  c.training.lr_gamma = training.at("lr_gamma");
  c.training.weight_decay = training.at("weight_decay");
  c.training.loss = parse_loss(training.at("loss"));
  c.training.seed = training.at("seed");
  c.training.checkpoint_every = training.at("checkpoint_every");
  c.training.augment = training.value("augment", false);
  // Absent in runs written before Keras's augmentation: then --augment meant ours.
  const std::string style = training.value("augmentation", std::string(c.training.augment ? "rotations and shifts" : "none"));
  if (style != "none" && style != "rotations and shifts" && style != "keras")
    throw std::invalid_argument("training.augmentation is '" + style + "' (none, rotations and shifts, or keras)");
  if ((style != "none") != c.training.augment)
    throw std::invalid_argument("training.augmentation '" + style + "' contradicts training.augment " + (c.training.augment ? "true" : "false"));
  c.training.keras_augment = style == "keras";
  c.training.lr_cosine = training.value("lr_cosine", false);  // absent in runs written before schedules other than step
  c.training.lr_min = training.value("lr_min", 0.0);
  c.training.warmup_steps = training.value("warmup_steps", int64_t{0});
  c.training.loss_target = training.value("loss_target", 0.0);  // absent in runs written before loss targets
  c.training.max_epochs = training.value("max_epochs", int64_t{1000});
  if (training.contains("optimizer")) {  // runs written before optimizers were recorded trained with plain SGD
    const json& o = training.at("optimizer");
    OptimizerOptions& optimizer = c.training.optimizer;
    optimizer.kind = parse_optimizer(o.at("kind"));
    optimizer.momentum = o.at("momentum");
    optimizer.dampening = o.at("dampening");
    optimizer.beta1 = o.at("beta1");
    optimizer.beta2 = o.at("beta2");
    optimizer.epsilon = o.at("epsilon");
    check_optimizer(optimizer);
  }
  return c;
}

void RunWriter::write_parameters(const std::string& subdirectory, const Sequential& model, const std::vector<Tensor>& values) const {
  const fs::path dir = directory() / subdirectory;
  fs::create_directories(dir);
  const std::vector<std::string>& names = model.parameter_names();
  for (size_t i = 0; i < names.size(); ++i) write_npy(dir / (names[i] + ".npy"), values[i]);
}


void write_trajectory(const fs::path& run_directory, const std::vector<StepRecord>& steps) {
  const fs::path dir = run_directory / "trajectory";
  fs::create_directories(dir);
  std::vector<double> rates, losses;
  std::vector<int64_t> offsets{0}, positions;
  for (const StepRecord& s : steps) {
    rates.push_back(s.learning_rate);
    losses.push_back(s.loss);
    positions.insert(positions.end(), s.batch.begin(), s.batch.end());
    offsets.push_back(static_cast<int64_t>(positions.size()));
  }
  write_npy(dir / "learning_rates.npy", rates);
  write_npy(dir / "losses.npy", losses);
  write_npy(dir / "batch_offsets.npy", offsets);
  write_npy(dir / "batch_positions.npy", positions);
}

// Every value checked, so a damaged trajectory is named here and never read out of bounds later.
std::vector<StepRecord> read_trajectory(const fs::path& run_directory, int64_t training_points) {
  const fs::path dir = run_directory / "trajectory";
  const Tensor rates = read_npy(dir / "learning_rates.npy"), losses = read_npy(dir / "losses.npy");
  const std::vector<int64_t> offsets = read_npy_int64(dir / "batch_offsets.npy"), positions = read_npy_int64(dir / "batch_positions.npy");
  const auto count = static_cast<size_t>(rates.numel());
  if (losses.numel() != rates.numel() || offsets.size() != count + 1 || offsets.back() != static_cast<int64_t>(positions.size()))
    throw std::runtime_error(dir.string() + ": trajectory arrays disagree in length (incomplete run directory?)");
  auto damaged = [&](const std::string& file, size_t entry, const std::string& value, const std::string& why) {
    return std::runtime_error((dir / file).string() + ": entry " + std::to_string(entry) + " is " + value + ", " + why + "; the run directory is damaged: train it again");
  };
  if (offsets[0] != 0) throw damaged("batch_offsets.npy", 0, std::to_string(offsets[0]), "but the first batch starts at 0");
  for (size_t s = 0; s < count; ++s) {
    if (offsets[s + 1] <= offsets[s]) throw damaged("batch_offsets.npy", s + 1, std::to_string(offsets[s + 1]), "not above the previous (an empty or reversed step)");
    if (!(rates[static_cast<int64_t>(s)] > 0.0) || !std::isfinite(rates[static_cast<int64_t>(s)]))
      throw damaged("learning_rates.npy", s, std::to_string(rates[static_cast<int64_t>(s)]), "not a positive finite learning rate");
  }
  for (size_t k = 0; k < positions.size(); ++k)
    if (positions[k] < 0 || positions[k] >= training_points)
      throw damaged("batch_positions.npy", k, std::to_string(positions[k]), "outside the " + std::to_string(training_points) + " training points");
  std::vector<StepRecord> steps(count);
  for (size_t s = 0; s < count; ++s) {
    steps[s].learning_rate = rates[static_cast<int64_t>(s)];
    steps[s].loss = losses[static_cast<int64_t>(s)];
    steps[s].batch.assign(positions.begin() + offsets[s], positions.begin() + offsets[s + 1]);
  }
  return steps;
}

static Parameters read_parameters(const fs::path& dir, const Sequential& model) {
  Parameters values;
  const std::vector<std::string>& names = model.parameter_names();
  const std::vector<Shape>& shapes = model.parameter_shapes();
  for (size_t k = 0; k < names.size(); ++k) {
    Tensor value = read_npy(dir / (names[k] + ".npy"));
    if (value.shape() != shapes[k])
      throw std::runtime_error((dir / (names[k] + ".npy")).string() + ": shape " + shape_string(value.shape()) + " but the architecture needs " +
                               shape_string(shapes[k]));
    values.push_back(std::move(value));
  }
  return values;
}

Run load_run(const fs::path& directory) {
  if (!fs::is_directory(directory)) throw std::runtime_error(directory.string() + ": no such run directory (run `kernelscope train --out DIR` first)");
  for (const char* required : {"config.json", "metrics.json", "train_indices.npy", "test_indices.npy", "theta0", "thetaT", "trajectory"})
    if (!fs::exists(directory / required))
      throw std::runtime_error(directory.string() + ": incomplete run directory, " + required + " is missing");
  for (const char* file : {"config.json", "metrics.json", "train_indices.npy", "test_indices.npy"})
    if (!fs::is_regular_file(directory / file)) throw std::runtime_error((directory / file).string() + ": not a file; the run directory is damaged");
  Run run;
  run.directory = directory;
  try {
    std::ifstream config_file(directory / "config.json");
    run.config = run_config_from_json(json::parse(config_file));
  } catch (const json::exception& error) {
    throw std::runtime_error((directory / "config.json").string() + ": not a kernelscope run configuration (" + error.what() + "); train the run again");
  }
  const DataSplit split = load_source(run.config.source);
  run.task = make_task(split, run.config.task);
  const std::vector<int64_t> train_indices = read_npy_int64(directory / "train_indices.npy");
  const std::vector<int64_t> test_indices = read_npy_int64(directory / "test_indices.npy");
  if (train_indices != run.task.train.source_indices || test_indices != run.task.test.source_indices)
    throw std::runtime_error(directory.string() + ": the data at " + run.config.source.source +
                             " no longer gives the samples recorded in train_indices.npy / test_indices.npy");
  run.model = build_model(run.config.model);
  run.parameter_names = run.model->parameter_names();
  run.theta0 = read_parameters(directory / "theta0", *run.model);
  run.thetaT = read_parameters(directory / "thetaT", *run.model);
  run.steps = read_trajectory(directory, run.task.train.size());
  if (fs::exists(directory / "checkpoints"))
    for (const auto& entry : fs::directory_iterator(directory / "checkpoints")) {
      const std::string name = entry.path().filename().string(), digits = name.substr(std::min<size_t>(5, name.size()));
      if (name.rfind("step_", 0) != 0 || digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos)
        throw std::runtime_error(entry.path().string() + ": not a checkpoint name (step_NNNNNNNN); the run directory is damaged");
      const int64_t step = std::stoll(digits);
      if (step < 1 || step >= static_cast<int64_t>(run.steps.size()))
        throw std::runtime_error(entry.path().string() + ": step " + std::to_string(step) + " is outside the run's 1.." + std::to_string(run.steps.size() - 1));
      run.checkpoint_steps.push_back(step);
    }
  std::sort(run.checkpoint_steps.begin(), run.checkpoint_steps.end());
  return run;
}

std::string checkpoint_name(int64_t step) {
  char name[48];
  std::snprintf(name, sizeof name, "checkpoints/step_%08lld", static_cast<long long>(step));
  return name;
}

void RunWriter::write_checkpoint(int64_t step, const Sequential& model, const Parameters& theta, const OptimizerState& state,
                                 OptimizerKind optimizer) const {
  const std::string name = checkpoint_name(step);
  write_parameters(name, model, theta);
  const std::vector<std::string> buffers = optimizer_buffer_names(optimizer);
  for (size_t b = 0; b < buffers.size(); ++b) {
    const Parameters& values = b == 0 ? state.first : state.second;
    if (values.size() != theta.size()) throw std::logic_error("write_checkpoint: the optimizer's " + buffers[b] + " is not started");
    write_parameters(name + "/" + buffers[b], model, values);
  }
  std::ofstream(directory() / name / "optimizer.json")
      << json{{"optimizer", optimizer_name(optimizer)}, {"updates", state.updates}, {"buffers", buffers}}.dump(2) << "\n";
}

// Plain SGD carries no state: every checkpoint will do. Otherwise the checkpoint must hold the state after `step` updates.
bool Run::read_checkpoint_state(int64_t step, OptimizerState& state) const {
  const OptimizerKind kind = config.training.optimizer.kind;
  state = OptimizerState{};
  const fs::path dir = directory / checkpoint_name(step), file = dir / "optimizer.json";
  if (!fs::exists(file)) return kind == OptimizerKind::sgd;
  json record;
  try {
    std::ifstream in(file);
    record = json::parse(in);
    if (record.at("optimizer").get<std::string>() != optimizer_name(kind))
      throw std::runtime_error("the optimizer is " + record.at("optimizer").dump() + ", the run's is " + optimizer_name(kind));
    state.updates = record.at("updates").get<int64_t>();
  } catch (const std::exception& error) {
    throw std::runtime_error(file.string() + ": " + error.what() + "; the run directory is damaged");
  }
  if (state.updates != step)
    throw std::runtime_error(file.string() + ": updates = " + std::to_string(state.updates) + " at step " + std::to_string(step) + "; the run directory is damaged");
  const std::vector<std::string> buffers = optimizer_buffer_names(kind);
  if (!buffers.empty()) state.first = read_parameters(dir / buffers[0], *model);
  if (buffers.size() > 1) state.second = read_parameters(dir / buffers[1], *model);
  return true;
}

Parameters Run::read_checkpoint(int64_t step) const {
  return read_parameters(directory / checkpoint_name(step), *model);
}

Parameters Run::parameters_at(int64_t step) const {
  const auto total = static_cast<int64_t>(steps.size());
  if (step < 0 || step > total)
    throw std::out_of_range("step " + std::to_string(step) + " is outside this run's 0.." + std::to_string(total));
  if (step == 0) return theta0;
  if (step == total) return thetaT;
  Parameters theta = theta0;
  OptimizerState state;
  int64_t start = 0;
  for (auto c = checkpoint_steps.rbegin(); c != checkpoint_steps.rend(); ++c) {
    OptimizerState at_checkpoint;
    if (*c > step || !read_checkpoint_state(*c, at_checkpoint)) continue;
    start = *c;
    theta = read_checkpoint(start);
    state = std::move(at_checkpoint);
    break;
  }
  const TrainOptions& t = config.training;
  replay_steps(*model, theta, state, task.train, steps, start, step, {t.weight_decay, t.loss, augmentation_of(t), t.optimizer});
  return theta;
}

}  // namespace ks
