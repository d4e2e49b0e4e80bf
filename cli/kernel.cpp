// `kernelscope kernel`: a tangent or conjugate kernel of a run at θ_0, θ_T or a replayed step, written as a float64 .npy.
// The kernel itself is kernels/ntk.h's; this file picks parameters and samples and writes the file atomically.
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/checks.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "datasets/npy.h"
#include "kernels/ntk.h"
#include "kernels/run_kernel.h"
#include "nn/run.h"
#include "nn/train.h"

namespace ks::cli {

namespace {

struct KernelCommandOptions {
  std::string run, kind = "ntk-init", rows = "train", cols = "train", method = "auto", out;
  int64_t limit = 0;
  double memory_budget_gb = NtkOptions{}.memory_budget_bytes / 1e9;
  bool trace_outputs = false, cosine = false, overwrite = false;
};

int run_kernel(const KernelCommandOptions& o) {
  OutputFile out(o.out, {"kernel", o.overwrite, {o.run}});  // an unwritable --out fails before any work
  const Run run = load_run(o.run);
  RunKernelOptions options;
  options.kind = o.kind;
  options.rows = o.rows;
  options.cols = o.cols;
  options.limit = o.limit;
  options.method = parse_kernel_method(o.method);
  options.trace_outputs = o.trace_outputs;
  options.cosine = o.cosine;
  options.memory_budget_bytes = o.memory_budget_gb * 1e9;
  std::unique_ptr<Progress> progress;
  options.progress = [&](int64_t done, int64_t total) {
    if (!progress) progress = std::make_unique<Progress>("kernel", total);
    progress->update(done);
  };
  const Tensor K = ks::run_kernel(run, options);
  if (progress) progress->done();
  write_npy(out.path(), K);
  out.finish();
  std::printf("%s kernel %s x %s: %s written to %s\n", o.kind.c_str(), o.rows.c_str(), o.cols.c_str(), shape_string(K.shape()).c_str(),
              o.out.c_str());
  return 0;
}

}  // namespace

Command register_kernel(CLI::App& app) {
  auto o = std::make_shared<KernelCommandOptions>();
  CLI::App* cmd = app.add_subcommand("kernel", "Compute a tangent or conjugate kernel of a trained run and write it as .npy");
  cmd->add_option("--run", o->run, "Run directory written by `kernelscope train`")->required();
  cmd->add_option("--kind", o->kind, "ntk-init, after, conjugate-init, conjugate-after, or step:S (NTK at θ_S, replayed)")->capture_default_str();
  cmd->add_option("--rows", o->rows, "Row samples: train or test (in train_indices.npy / test_indices.npy order)")
      ->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  cmd->add_option("--cols", o->cols, "Column samples: train or test")->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  cmd->add_option("--limit", o->limit, "Use only the first N samples of each set (0: all)")->check(whole_number(0))->capture_default_str();
  cmd->add_option("--method", o->method, "Contraction: auto (cost model), jacobian, structured")
      ->check(CLI::IsMember({"auto", "jacobian", "structured"}))->capture_default_str();
  cmd->add_flag("--trace-outputs", o->trace_outputs, "With C outputs, reduce each C×C block by its trace: (N, M) instead of (N·C, M·C)");
  cmd->add_flag("--cosine", o->cosine, "Cosine-normalise: K(x,x') / sqrt(K(x,x) K(x',x'))");
  add_memory_budget_option(cmd, o->memory_budget_gb);
  cmd->add_option("--out", o->out, "Output .npy file (float64, C order; written under a temporary name, renamed when complete)")->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it is an earlier float64 .npy");
  return {cmd, [o] { return run_kernel(*o); }};
}

}  // namespace ks::cli
