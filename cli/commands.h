// The subcommands of the kernelscope program: each registers its options on the CLI11 app and returns how to run.
// No work happens at registration; the chosen command's run() does it.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ks::cli {

// What `train` takes; `study` takes the same and trains through run_train.
struct TrainCommandOptions {
  std::string data, classes = "all", arch = "mlp:512-512", init = "glorot-uniform", loss;
  std::string train_images, train_labels, test_images, test_labels;
  int64_t epochs = 5, batch = 32, train_size = 0, test_size = 0, lr_step_epochs = 0, checkpoint_every = 0, resize = 0;
  double lr = 0.05, lr_gamma = 0.1, weight_decay = 0.0;
  uint64_t seed = 0;
  std::string out;
  bool overwrite = false, quiet = false, augment = false;
};
void add_training_options(CLI::App* cmd, TrainCommandOptions& options);  // everything but --out, --overwrite, --quiet
int run_train(const TrainCommandOptions& options);

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command register_demo(CLI::App& app);
Command register_train(CLI::App& app);
Command register_kernel(CLI::App& app);
Command register_epk(CLI::App& app);
Command register_study(CLI::App& app);
Command register_svm(CLI::App& app);

inline std::vector<Command> register_commands(CLI::App& app) {
  return {register_demo(app), register_train(app), register_kernel(app), register_epk(app), register_study(app), register_svm(app)};
}

}  // namespace ks::cli
