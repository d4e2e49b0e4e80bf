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
#include "nn/run.h"
#include "nn/train.h"

namespace ks::cli {

namespace {

struct KernelCommandOptions {
  std::string run, kind = "ntk-init", rows = "train", cols = "train", method = "auto", out;
  int64_t limit = 0;
  bool trace_outputs = false, cosine = false, overwrite = false;
};

Tensor first_samples(const Dataset& data, int64_t limit) {
  return sample_rows(data.inputs, 0, limit > 0 ? std::min(limit, data.size()) : data.size());
}

int run_kernel(const KernelCommandOptions& o) {
  OutputFile out(o.out, {"kernel", o.overwrite, {o.run}});  // an unwritable --out fails before any work
  const Run run = load_run(o.run);
  std::vector<Tensor> parameters;
  bool conjugate = false;
  if (o.kind == "ntk-init") parameters = run.theta0;
  else if (o.kind == "after") parameters = run.thetaT;
  else if (o.kind == "conjugate-init") parameters = run.theta0, conjugate = true;
  else if (o.kind == "conjugate-after") parameters = run.thetaT, conjugate = true;
  else if (o.kind.rfind("step:", 0) == 0) {
    const std::string digits = o.kind.substr(5);
    const bool whole = !digits.empty() && digits.size() < 13 && digits.find_first_not_of("0123456789") == std::string::npos;
    const int64_t step = whole ? std::stoll(digits) : -1;
    if (step < 0 || step > static_cast<int64_t>(run.steps.size()))
      throw std::runtime_error("--kind " + o.kind + ": this run has steps 0.." + std::to_string(run.steps.size()));
    parameters = run.parameters_at(step);
  } else {
    throw std::runtime_error("--kind " + o.kind + ": use ntk-init, after, conjugate-init, conjugate-after or step:S");
  }
  const Tensor rows = first_samples(o.rows == "train" ? run.task.train : run.task.test, o.limit);
  const Tensor cols = first_samples(o.cols == "train" ? run.task.train : run.task.test, o.limit);
  const bool same = o.rows == o.cols;

  NtkOptions options;
  options.method = parse_kernel_method(o.method);
  options.trace_outputs = o.trace_outputs;
  std::unique_ptr<Progress> progress;
  options.progress = [&](int64_t done, int64_t total) {
    if (!progress) progress = std::make_unique<Progress>("kernel", total);
    progress->update(done);
  };
  Tensor K;
  if (conjugate) {
    const Tensor fr = conjugate_features(*run.model, parameters, rows), fc = same ? fr : conjugate_features(*run.model, parameters, cols);
    K = feature_gram(fr, fc);
    if (o.cosine) {
      Tensor dr({fr.dim(0)}), dc({fc.dim(0)});
      dr.vector() = fr.matrix().rowwise().squaredNorm();
      dc.vector() = fc.matrix().rowwise().squaredNorm();
      K = cosine_normalise(K, dr, dc);
    }
  } else {
    K = ntk_gram(*run.model, parameters, rows, same ? nullptr : &cols, options);
    if (o.cosine) {
      const Tensor dr = ntk_diagonal(*run.model, parameters, rows, options), dc = same ? dr : ntk_diagonal(*run.model, parameters, cols, options);
      K = cosine_normalise(K, dr, dc);
    }
  }
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
  cmd->add_option("--out", o->out, "Output .npy file (float64, C order; written under a temporary name, renamed when complete)")->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it is an earlier float64 .npy");
  return {cmd, [o] { return run_kernel(*o); }};
}

}  // namespace ks::cli
