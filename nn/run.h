// Run directories: what `kernelscope train` writes (config, indices, θ_0, θ_T, trajectory, checkpoints, metrics) and how analyses read it back.
// Writing goes to a temporary sibling renamed when complete; reading refuses a directory that is missing or incomplete.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "datasets/output.h"
#include "datasets/task.h"
#include "nn/model.h"
#include "nn/train.h"

namespace ks {

// Everything needed to redo a run.
struct RunConfig {
  SourceOptions source;
  TaskOptions task;
  ModelOptions model;  // sample_shape and outputs are filled in from the task
  TrainOptions training;
};
nlohmann::json to_json(const RunConfig& config);
RunConfig run_config_from_json(const nlohmann::json& json);

// A directory output (datasets/output.h's rules: a temporary name renamed into place when complete, a marker, a lock,
// never replacing what kernelscope did not write) with the run's parameter files.
class RunWriter {
 public:
  RunWriter(std::filesystem::path final_directory, OutputOptions options) : output_(std::move(final_directory), std::move(options)) {}
  const std::filesystem::path& directory() const { return output_.directory(); }
  const std::filesystem::path& final_path() const { return output_.final_path(); }
  void write_parameters(const std::string& subdirectory, const Sequential& model, const std::vector<Tensor>& values) const;
  // checkpoints/step_N: θ_N as write_parameters, and the optimizer's state: optimizer.json (the rule and its update
  // count) and one subdirectory per buffer under torch.optim's name (momentum_buffer/, exp_avg/, exp_avg_sq/).
  void write_checkpoint(int64_t step, const Sequential& model, const Parameters& theta, const OptimizerState& state,
                        OptimizerKind optimizer) const;
  void finish() { output_.finish(); }

 private:
  OutputDirectory output_;
};

std::string checkpoint_name(int64_t step);  // "checkpoints/step_00000100"
void write_trajectory(const std::filesystem::path& run_directory, const std::vector<StepRecord>& steps);
// Throws naming the file, the entry and its value when the trajectory is damaged (positions outside [0, training_points)).
std::vector<StepRecord> read_trajectory(const std::filesystem::path& run_directory, int64_t training_points);

// A finished run, with its task rebuilt from the config and checked against the recorded indices.
struct Run {
  std::filesystem::path directory;
  RunConfig config;
  Task task;
  std::unique_ptr<Sequential> model;  // the structure, built from the config (θ is never stored in it)
  Parameters theta0, thetaT;
  std::vector<StepRecord> steps;
  std::vector<int64_t> checkpoint_steps;  // sorted
  std::vector<std::string> parameter_names;

  // θ_s, replayed from the nearest checkpoint at or before s that has what the optimizer needs (θ_0 if none);
  // s in [0, steps.size()].
  Parameters parameters_at(int64_t step) const;
  Parameters read_checkpoint(int64_t step) const;
  // The optimizer's state at checkpoint `step`; false when the checkpoint has none (runs written before it was kept),
  // so replay must start earlier. Throws naming the file when it is there but damaged.
  bool read_checkpoint_state(int64_t step, OptimizerState& state) const;
};

Run load_run(const std::filesystem::path& directory);

}  // namespace ks
