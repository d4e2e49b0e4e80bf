// `kernelscope epk`: replays a run, rewrites its network as exact-path-kernel machine on test inputs, and writes the
// per-input outputs, attributions, the EPK matrix and summary.json; prints one error row per kernel. The maths is kernels/epk.h's.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/checks.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "datasets/npy.h"
#include "kernels/epk.h"
#include "nn/model.h"
#include "nn/run.h"

namespace ks::cli {

namespace {

struct EpkCommandOptions {
  std::string run, kernel = "all", out, method = "auto", quadrature = "auto";
  int64_t test_size = 0, top_k = 5;
  bool overwrite = false, no_kernel_matrix = false;
};

bool same_bits(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].shape() != b[k].shape() || std::memcmp(a[k].data(), b[k].data(), sizeof(double) * static_cast<size_t>(a[k].numel())) != 0) return false;
  return true;
}

std::string yes_no(bool value) { return value ? "yes" : "NO"; }

// outputs_<kernel>.npy (and the weight-decay columns) per machine; returns their summary entries.
nlohmann::json write_machines(const std::filesystem::path& dir, const EpkResult& result, bool weight_decay) {
  const int64_t M = result.final.dim(0), C = result.outputs;
  nlohmann::json kernels = nlohmann::json::object();
  for (const KernelMachine& machine : result.machines) {
    const std::string name = path_kernel_name(machine.kind);
    write_npy(dir / ("outputs_" + name + ".npy"), machine.outputs);
    if (weight_decay) write_npy(dir / ("weight_decay_" + name + ".npy"), machine.weight_decay);
    int64_t agreeing = 0;
    for (int64_t m = 0; m < M; ++m) agreeing += decision(machine.outputs.data() + m * C, C) == decision(result.final.data() + m * C, C);
    kernels[name] = {{"max_abs_error", machine.max_abs_error},
                     {"max_rel_error", machine.max_rel_error},
                     {"decisions_agree", machine.decisions_agree},
                     {"agreeing_decisions", agreeing},
                     {"max_step_residual", machine.step_residual_known ? nlohmann::json(machine.max_step_residual) : nlohmann::json(nullptr)},
                     {"outputs", "outputs_" + name + ".npy"}};
  }
  return kernels;
}

// attributions.npy, epk_kernel.npy and the top-k per test input, for the output the network decides on (the only output
// when C = 1); -1 pads missing entries. Returns the first five inputs' lists for the summary.
nlohmann::json write_attributions(const std::filesystem::path& dir, const EpkResult& result, int64_t k) {
  nlohmann::json top = nlohmann::json::array();
  if (result.attributions.empty()) return top;
  write_npy(dir / "attributions.npy", result.attributions);
  if (!result.kernel.empty()) write_npy(dir / "epk_kernel.npy", result.kernel);
  const int64_t M = result.final.dim(0), C = result.outputs;
  std::vector<int64_t> positive(static_cast<size_t>(M * k), -1), negative(static_cast<size_t>(M * k), -1);
  std::vector<double> positive_values(static_cast<size_t>(M * k), 0.0), negative_values(static_cast<size_t>(M * k), 0.0);
  for (int64_t m = 0; m < M; ++m) {
    const int64_t output = C == 1 ? 0 : decision(result.final.data() + m * C, C);
    const TopAttributions t = top_attributions(result.attributions, m, output, k);
    for (size_t j = 0; j < t.positive.size(); ++j) {
      positive[static_cast<size_t>(m * k) + j] = t.positive[j];
      positive_values[static_cast<size_t>(m * k) + j] = t.positive_values[j];
    }
    for (size_t j = 0; j < t.negative.size(); ++j) {
      negative[static_cast<size_t>(m * k) + j] = t.negative[j];
      negative_values[static_cast<size_t>(m * k) + j] = t.negative_values[j];
    }
    if (m < 5) top.push_back({{"test_position", m}, {"output", output}, {"positive", t.positive}, {"positive_values", t.positive_values},
                              {"negative", t.negative}, {"negative_values", t.negative_values}});
  }
  write_npy(dir / "top_positive.npy", positive, {M, k});
  write_npy(dir / "top_negative.npy", negative, {M, k});
  write_npy(dir / "top_positive_values.npy", Tensor({M, k}, positive_values));
  write_npy(dir / "top_negative_values.npy", Tensor({M, k}, negative_values));
  return top;
}

nlohmann::json epk_summary(const EpkCommandOptions& o, const Run& run, const EpkResult& result, bool replay_matches, const nlohmann::json& kernels,
                           const nlohmann::json& top) {
  const QuadratureReport& q = result.quadrature;
  const bool stateful = run.config.training.optimizer.kind != OptimizerKind::sgd;
  // With a rule that carries state, step s's gradients act through every later step: the kernel holds that (README).
  const std::string attributions = stateful ? "(M, N, C) c_i(x) = sum_s g_is <Psi_s(x), grad f(x_i; theta_s)>, g_is = dL_s/df(x_i); sums over i to "
                                              "outputs_exact - network_initial (minus weight decay)"
                                            : "(M, N, C) c_i(x) = sum_s a_is K_s(x, x_i); sums over i to outputs_exact - network_initial (minus weight decay)";
  const std::string kernel = stateful ? "(M*C, N*C) sum_s <Psi_s(x), grad f(x_i; theta_s)>, Psi_s the rule's backward accumulation, rows m*C+c"
                                      : "(M*C, N*C) K_EPK(x, x_i) = sum_s K_s(x, x_i), rows m*C+c";
  return {{"run", std::filesystem::absolute(o.run).string()},
          {"model", run.config.model.spec},
          {"parameters", run.model->parameter_count()},
          {"steps", result.steps},
          {"test_inputs", result.final.dim(0)},
          {"training_points", run.task.train.size()},
          {"outputs", result.outputs},
          {"loss", loss_name(run.config.training.loss)},
          {"weight_decay", run.config.training.weight_decay},
          {"optimizer", optimizer_name(run.config.training.optimizer.kind)},
          {"replay_matches_run", replay_matches},
          {"kernels", kernels},
          {"quadrature", {{"mode", q.mode}, {"nodes_per_piece", q.nodes_per_piece}, {"pieces", q.pieces}, {"breakpoints", q.breakpoints},
                          {"nodes", q.nodes}, {"max_pieces_per_segment", q.max_pieces}, {"max_segment_residual", q.max_segment_residual},
                          {"piece_seconds", q.piece_seconds}}},
          {"seconds", result.seconds},
          {"training_seconds", result.training_seconds},
          {"top_attributions", top},
          {"files", {{"network_final.npy", "(M, C) f(x; theta_T), the network"},
                     {"network_initial.npy", "(M, C) f(x; theta_0)"},
                     {"outputs_<kernel>.npy", "(M, C) the kernel machine's reproduction of network_final"},
                     {"attributions.npy", attributions},
                     {"epk_kernel.npy", kernel},
                     {"coefficients.npy", "(N, C) sum_s a_is per training point, a_is = -eta_s dL_s/df(x_i)"},
                     {"top_positive.npy / top_negative.npy", "(M, k) training positions (train_indices.npy order) by attribution, -1 padded"}}}};
}

void print_table(const EpkCommandOptions& o, const Run& run, const EpkResult& result, const nlohmann::json& kernels) {
  const int64_t M = result.final.dim(0);
  std::printf("EPK of %s (%s, %lld steps) on %lld test inputs: the network against each kernel machine\n", o.run.c_str(),
              run.config.model.spec.c_str(), static_cast<long long>(result.steps), static_cast<long long>(M));
  std::printf("  %-10s %15s %15s %17s %19s\n", "kernel", "max abs error", "max rel error", "decisions agree", "max step residual");
  for (const KernelMachine& machine : result.machines) {
    const std::string name = path_kernel_name(machine.kind);
    // The fixed kernels' decay terms are not per step; under a rule with state no machine's terms are.
    char residual[32] = "(weight decay)";
    if (run.config.training.optimizer.kind != OptimizerKind::sgd) std::snprintf(residual, sizeof residual, "(not per step)");
    if (machine.step_residual_known) std::snprintf(residual, sizeof residual, "%.3e", machine.max_step_residual);
    std::printf("  %-10s %15.3e %15.3e %12s %lld/%lld %19s\n", name.c_str(), machine.max_abs_error, machine.max_rel_error,
                yes_no(machine.decisions_agree).c_str(), static_cast<long long>(kernels[name]["agreeing_decisions"].get<int64_t>()),
                static_cast<long long>(M), residual);
  }
  const QuadratureReport& q = result.quadrature;
  if (q.nodes > 0)
    std::printf("quadrature: %s, %lld pieces (%lld breakpoints), %lld nodes, max per-step residual %.3e\n", q.mode.c_str(),
                static_cast<long long>(q.pieces), static_cast<long long>(q.breakpoints), static_cast<long long>(q.nodes), q.max_segment_residual);
  std::printf("time: %.2f s (%.1fx the replayed training's %.2f s", result.seconds,
              result.training_seconds > 0 ? result.seconds / result.training_seconds : 0.0, result.training_seconds);
  if (q.breakpoints > 0) std::printf("; finding breakpoints %.2f s", q.piece_seconds);
  std::printf("); written to %s\n", o.out.c_str());
}

int run_epk(const EpkCommandOptions& o) {
  const QuadratureChoice quadrature = parse_quadrature(o.quadrature);  // bad text refused before any work
  const Run run = load_run(o.run);
  const Dataset& test_set = run.task.test;
  const int64_t M = o.test_size > 0 ? std::min(o.test_size, test_set.size()) : test_set.size();
  if (M == 0) throw std::runtime_error(o.run + ": the run has no test inputs (train with --test-size > 0)");
  std::vector<int64_t> positions;
  for (int64_t m = 0; m < M; ++m) positions.push_back(m);
  const Dataset test = test_set.subset(positions);
  EpkOptions options;
  if (o.kernel != "all") options.kernels = {parse_path_kernel(o.kernel)};
  options.method = parse_kernel_method(o.method);
  options.keep_kernel = !o.no_kernel_matrix;
  options.quadrature = quadrature;
  Progress progress("epk", static_cast<int64_t>(run.steps.size()));
  options.progress = [&](int64_t step, int64_t) { progress.update(step); };
  RunWriter writer(o.out, {"epk", o.overwrite, {o.run}});  // everything is written to a temporary directory first and renamed when complete
  std::fprintf(stderr, "epk: %s, %lld training steps, %lld test inputs, %lld parameters\n", run.config.model.spec.c_str(),
               static_cast<long long>(run.steps.size()), static_cast<long long>(M), static_cast<long long>(run.model->parameter_count()));
  const EpkResult result = exact_path_kernel(*run.model, run.theta0, test.inputs, TrainingRecord::from(run), options);
  progress.done();
  const bool replay_matches = same_bits(result.final_parameters, run.thetaT);
  if (!replay_matches)
    std::fprintf(stderr, "epk: warning: the replayed θ_T differs from the run's theta_T (built with different floating-point settings?); "
                         "errors are measured against the replayed network\n");
  const std::filesystem::path dir = writer.directory();
  write_npy(dir / "test_indices.npy", test.source_indices);
  write_npy(dir / "network_initial.npy", result.initial);
  write_npy(dir / "network_final.npy", result.final);
  write_npy(dir / "coefficients.npy", result.coefficients);
  const nlohmann::json kernels = write_machines(dir, result, run.config.training.weight_decay != 0.0);
  const nlohmann::json top = write_attributions(dir, result, o.top_k);
  std::ofstream(dir / "summary.json") << epk_summary(o, run, result, replay_matches, kernels, top).dump(2) << "\n";
  writer.finish();
  print_table(o, run, result, kernels);
  return 0;
}

}  // namespace

Command register_epk(CLI::App& app) {
  auto o = std::make_shared<EpkCommandOptions>();
  CLI::App* cmd = app.add_subcommand("epk", "Rewrite a trained run as an exact path kernel machine and check it against the network");
  cmd->add_option("--run", o->run, "Run directory written by `kernelscope train`")->required();
  cmd->add_option("--test-size", o->test_size, "Use the first N test inputs of the run (0: all)")->capture_default_str()->check(whole_number(0));
  cmd->add_option("--top-k", o->top_k, "Training points to list per test input, positive and negative")->capture_default_str()->check(whole_number(1));
  cmd->add_option("--kernel", o->kernel, "exact, ntk-init, after, domingos, or all")
      ->check(CLI::IsMember({"exact", "ntk-init", "after", "domingos", "all"}))->capture_default_str();
  cmd->add_option("--method", o->method, "Kernel contraction: auto (cost model), jacobian, structured")
      ->check(CLI::IsMember({"auto", "jacobian", "structured"}))->capture_default_str();
  cmd->add_option("--quadrature", o->quadrature,
                  "auto (exact for ReLU/max-pool nets), exact (breakpoints + Gauss-Legendre), gauss-legendre:N (N ≤ 64 nodes per step), "
                  "adaptive:TOL (refined until each step's residual is below TOL relative to the outputs)")
      ->capture_default_str();
  cmd->add_flag("--no-kernel-matrix", o->no_kernel_matrix, "Do not keep or write the (M·C, N·C) EPK matrix");
  cmd->add_option("--out", o->out, "Output directory (written under a temporary name, renamed when complete)")->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  return {cmd, [o] { return run_epk(*o); }};
}

}  // namespace ks::cli
