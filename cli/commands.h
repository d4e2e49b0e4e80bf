// The subcommands of the kernelscope program: each registers its options on the CLI11 app and returns how to run.
// No work happens at registration; the chosen command's run() does it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace ks::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command register_demo(CLI::App& app);
Command register_train(CLI::App& app);
Command register_kernel(CLI::App& app);
Command register_epk(CLI::App& app);

inline std::vector<Command> register_commands(CLI::App& app) {
  return {register_demo(app), register_train(app), register_kernel(app), register_epk(app)};
}

}  // namespace ks::cli
