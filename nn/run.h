// Run directories: what `kernelscope train` writes (config, indices, θ_0, θ_T, trajectory, checkpoints, metrics) and how analyses read it back.
// Writing goes to a temporary sibling renamed when complete; reading refuses a directory that is missing or incomplete.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

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

// Creates DIR.partial-<pid> beside DIR; finish() renames it to DIR. Destroyed unfinished, it removes the partial directory.
class RunWriter {
 public:
  RunWriter(std::filesystem::path final_directory, bool overwrite);
  ~RunWriter();
  const std::filesystem::path& directory() const { return partial_; }
  void write_parameters(const std::string& subdirectory, const Sequential& model, const std::vector<Tensor>& values) const;
  void finish();

 private:
  std::filesystem::path final_, partial_;
  bool finished_ = false;
};

std::string checkpoint_name(int64_t step);  // "checkpoints/step_00000100"
void write_trajectory(const std::filesystem::path& run_directory, const std::vector<StepRecord>& steps);
std::vector<StepRecord> read_trajectory(const std::filesystem::path& run_directory);

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

  // θ_s, replayed from the nearest checkpoint at or before s (θ_0 if none); s in [0, steps.size()].
  Parameters parameters_at(int64_t step) const;
  Parameters read_checkpoint(int64_t step) const;
};

Run load_run(const std::filesystem::path& directory);

}  // namespace ks
