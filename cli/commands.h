// The subcommands of the kernelscope program: each registers its options on the CLI11 app and returns how to run.
// No work happens at registration; the chosen command's run() does it.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/epk.h"
#include "nn/run.h"

namespace ks::cli {

// What `train` takes; `study` takes the same and trains through run_train.
struct TrainCommandOptions {
  std::string data, classes = "all", arch = "mlp:512-512", init = "glorot-uniform", loss;
  std::string train_images, train_labels, test_images, test_labels;
  int64_t epochs = 5, batch = 32, train_size = 0, test_size = 0, lr_step_epochs = 0, checkpoint_every = 0, resize = 0;
  double lr = 0.05, lr_gamma = 0.1, weight_decay = 0.0;
  std::string optimizer = "sgd", lr_schedule = "step";
  double lr_min = 0.0;
  int64_t warmup_steps = 0;
  int64_t num_parameters = 0;  // > 0: --arch mlp|vgg sized as Long's code sizes them
  double loss_target = 0.0;    // > 0: train in Long's chunks until the training loss reaches it
  int64_t max_epochs = 1000;
  double momentum = 0.9, dampening = 0.0, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  uint64_t seed = 0;
  std::string out;
  std::string out_label;  // how the final message names the run directory (default: out)
  bool overwrite = false, quiet = false, augment = false, keras_augment = false;
  // Called before every step when set; it throws to stop training (the run directory is then not written). The Python
  // module's train() checks for Ctrl-C here.
  std::function<void()> check_interrupt;
};
void add_training_options(CLI::App* cmd, TrainCommandOptions& options);  // everything but --out, --overwrite, --quiet
int run_train(const TrainCommandOptions& options);

// `report`'s sections for one run, shared with `demo`, which puts two runs and its SVM table on one page.
struct ReportOptions {
  std::string run, study, out;
  int64_t test_size = 20, top_k = 4, kernel_size = 60;
  int heading = 2;  // sections are <h2> (or <h3> under a demo part)
  bool overwrite = false;
};
struct RunReport {
  std::string html;
  EpkResult epk;  // on the first test_size test inputs
};
RunReport report_run_sections(const Run& run, const ReportOptions& options, const std::string& label);

void write_report(const std::string& out, bool overwrite, const std::string& page);  // out/report.html, renamed into place when complete

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
Command register_report(CLI::App& app);

inline std::vector<Command> register_commands(CLI::App& app) {
  return {register_demo(app), register_train(app), register_kernel(app), register_epk(app), register_study(app), register_svm(app), register_report(app)};
}

}  // namespace ks::cli
