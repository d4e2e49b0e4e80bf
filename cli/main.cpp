// The kernelscope program: parses the command line with CLI11 and dispatches to one subcommand.
// Each subcommand's work lives in its own cli/<name>.cpp; this file only wires them up and reports errors.
#include <CLI/CLI.hpp>
#include <iostream>

#include "autodiff/tensor.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  ks::keep_freed_memory();
  CLI::App app{"kernelscope: train neural networks and look at them through their kernels (NTK, after kernel, exact path kernel)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kernelscope 0.1.0");
  std::vector<ks::cli::Command> commands = ks::cli::register_commands(app);
  // CLI11 would say "A subcommand is required" for a misspelt one: name it and list the commands instead.
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const ks::cli::Command& command : commands) {
      known = known || command.app->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + command.app->get_name();
    }
    if (!known) {
      std::cerr << "kernelscope: error: unknown command '" << argv[1] << "' (commands: " << names << "; see kernelscope --help)\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    for (const ks::cli::Command& command : commands)
      if (command.app->parsed()) return command.run();
  } catch (const ks::OutOfMemory& error) {
    std::cerr << "kernelscope: error: " << error.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "kernelscope: error: out of memory: a request could not be met; use fewer samples (--limit, --train-size, --test-size) or a smaller network\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "kernelscope: error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
