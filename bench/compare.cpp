// Benchmark, kernelscope's side of the comparison with PyTorch/functorch and LibTorch (bench/run drives it): prepares
// one-epoch run directories and the arrays the peers load, then times one task per process. Prints JSON; never asserts a time.
//
//   bench_compare WORKDIR prepare                  inputs.npy, train_labels.npy and case.json beside WORKDIR/CASE/run, the
//                                                  one-epoch runs bench/run trains (mlp:512-512 on MNIST 3 vs 8, vgg:16 on
//                                                  CIFAR automobile vs truck)
//   bench_compare WORKDIR parts [REPEATS]          the GEMM-bound parts alone (dense, conv), one line each
//   bench_compare WORKDIR CASE TASK [REPEATS]      CASE mlp|vgg|long|resnet|smooth; TASK epoch | jacobian | gram:N | epk:M | gemm
//
// Each task runs in its own process so that its peak memory (ru_maxrss) is its own. The results it writes (the Gram, the
// first Jacobian rows) are what the peers must reproduce within 1e-10 before their time counts.
#include <omp.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/common.h"
#include "datasets/npy.h"
#include "kernels/epk.h"
#include "kernels/ntk.h"
#include "kernels/trace.h"
#include "nn/run.h"
#include "autodiff/ops.h"
#include "autodiff/random.h"

using namespace ks;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string name, spec;
};

const std::vector<Case>& cases() {
  // long: Long's VGG size (the width his code picks for 10⁵ parameters) on MNIST 3 vs 8, trained only by bench/run --long.
  // resnet: resnet9:8 (the optimizer check against torch.optim and the EPK of a momentum run).
  // smooth: the mlp with tanh, where Gauss–Legendre keeps its order along a step (the quadrature comparison's fair case).
  static const std::vector<Case> all{{"mlp", "mlp:512-512"}, {"vgg", "vgg:16"}, {"long", "vgg:38"}, {"resnet", "resnet9:8"},
                                     {"smooth", "mlp:512-512/tanh"}};
  return all;
}

const Case& find_case(const std::string& name) {
  for (const Case& c : cases())
    if (c.name == name) return c;
  throw std::invalid_argument("bench_compare: unknown case '" + name + "' (mlp, vgg, long, resnet or smooth)");
}

// The training inputs followed by the test inputs: the pool every task takes its first N from.
Tensor input_pool(const Run& run) {
  const Dataset& train = run.task.train;
  const Dataset& test = run.task.test;
  Shape shape = train.inputs.shape();
  shape[0] = train.size() + test.size();
  std::vector<double> values(train.inputs.data(), train.inputs.data() + train.inputs.numel());
  values.insert(values.end(), test.inputs.data(), test.inputs.data() + test.inputs.numel());
  return Tensor(shape, std::move(values));
}

Tensor first_rows(const Tensor& pool, int64_t count) {
  if (count > pool.dim(0))
    throw std::invalid_argument("bench_compare: asked for " + std::to_string(count) + " inputs, the run has " + std::to_string(pool.dim(0)));
  return sample_rows(pool, 0, count);
}

// Two (M, C) tensors stacked as (2, M, C).
Tensor concatenate_rows(const Tensor& a, const Tensor& b) {
  Tensor out({2, a.dim(0), a.dim(1)});
  std::copy_n(a.data(), a.numel(), out.data());
  std::copy_n(b.data(), b.numel(), out.data() + a.numel());
  return out;
}

// bench/run trains the runs with `kernelscope train`; this writes what the peers load beside each.
void prepare(const fs::path& work) {
  for (const Case& c : cases()) {
    const fs::path directory = work / c.name;
    if (!fs::exists(directory / "run")) continue;  // a case bench/run was not asked to train
    const Run run = load_run(directory / "run");
    write_npy(directory / "inputs.npy", input_pool(run));
    std::vector<int64_t> labels(run.task.train.labels.begin(), run.task.train.labels.end());
    write_npy(directory / "train_labels.npy", labels);
    nlohmann::json info{{"spec", c.spec}, {"train", run.task.train.size()}, {"test", run.task.test.size()},
                        {"parameters", run.model->parameter_count()}, {"steps", run.steps.size()},
                        {"learning_rate", run.config.training.learning_rate}};
    std::ofstream(directory / "case.json") << info.dump(2) << "\n";
    std::cerr << c.name << ": " << info.dump() << "\n";
  }
}

// Multiply-adds of one sample's forward pass in the GEMMs (dense layers, and convolutions as im2col × weight). A training
// step does 3× this (forward, input gradient, weight gradient), 2 flops each.
double forward_multiply_adds(const Sequential& model, const Shape& sample) {
  Shape shape = sample;
  shape.insert(shape.begin(), 1);
  double total = 0.0;
  const std::vector<Shape> inputs = model.input_shapes(shape);
  for (size_t l = 0; l < model.layers().size(); ++l) {
    const Layer* layer = model.layers()[l].get();
    shape = inputs[l];
    const Shape out = layer->output_shape(shape);
    // A parameterised layer applies its weight once per output position: weight size × (outputs / output channels).
    if (layer->parameterised()) {
      const Shape weight = layer->parameter_shapes().front().shape;
      total += static_cast<double>(shape_numel(weight)) * static_cast<double>(shape_numel(out) / weight[0]);
    }
    shape = out;
  }
  return total;
}

// The GEMM-bound parts alone, at the shapes the tasks use, each timed over enough calls to last about 0.3 s: one JSON line each.
void time_parts(int repeats) {
  Rng rng(0);
  auto random = [&](const Shape& shape) {
    Tensor t(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(-1.0, 1.0);
    return t;
  };
  auto report = [&](const std::string& part, double flops, const std::function<void()>& call) {
    int64_t calls = 1;
    for (auto start = std::chrono::steady_clock::now(); std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 0.05; call()) calls++;
    calls = std::max<int64_t>(1, calls * 6);
    const bench::Timing t = bench::time_runs(repeats, [&] {
      for (int64_t c = 0; c < calls; ++c) call();
    });
    nlohmann::json line{{"case", "parts"}, {"task", "part"}, {"peer", "kernelscope"}, {"part", part}, {"gemm_flops", flops},
                        {"median", t.median / static_cast<double>(calls)}, {"min", t.min / static_cast<double>(calls)},
                        {"max", t.max / static_cast<double>(calls)}, {"threads", omp_get_max_threads()}};
    std::cout << line.dump() << std::endl;
  };
  const int64_t batch = 32;
  for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{{784, 512}, {512, 512}}) {
    const Tensor x = random({batch, in}), w = random({out, in}), b = random({out}), upstream = random({batch, out});
    Tensor y({batch, out}), dx({batch, in}), dw({out, in}), db({out});
    report("dense " + std::to_string(in) + "→" + std::to_string(out) + ", batch 32: forward, input and weight gradients", 6.0 * batch * in * out, [&] {
      linear_forward(y.data(), x.data(), w.data(), b.data(), batch, in, out);
      linear_backward(dx.data(), dw.data(), db.data(), upstream.data(), x.data(), w.data(), batch, in, out);
    });
  }
  for (const auto& [channels, size] : std::vector<std::pair<int64_t, int64_t>>{{16, 32}, {32, 16}}) {
    const Conv2dGeometry g{batch, channels, size, size, channels, 3, 1, 1};
    const Tensor x = random({batch, channels, size, size}), w = random({channels, channels, 3, 3}), b = random({channels});
    const Tensor upstream = random({batch, channels, size, size});
    Tensor y({batch, channels, size, size}), dx(x.shape()), dw(w.shape()), db({channels});
    report("conv " + std::to_string(channels) + "→" + std::to_string(channels) + " 3×3 on " + std::to_string(size) + "×" + std::to_string(size) +
               ", batch 32: forward, input and weight gradients (im2col + GEMM)",
           6.0 * batch * channels * channels * 9 * size * size, [&] {
             conv2d_forward(y.data(), x.data(), w.data(), b.data(), g);
             conv2d_backward(dx.data(), dw.data(), db.data(), upstream.data(), x.data(), w.data(), g);
           });
  }
}

// epk:M or epk:M:QUADRATURE (exact, gauss-legendre:N, adaptive:TOL): the exact machine on the first M test inputs.
bench::Timing epk_task(const fs::path& directory, const Run& run, const Tensor& pool, const std::string& task, int repeats, nlohmann::json& result) {
  const Sequential& model = *run.model;
  const size_t colon = task.find(':', 4);
  const int64_t count = std::stoll(task.substr(4, colon == std::string::npos ? std::string::npos : colon - 4));
  const std::string mode = colon == std::string::npos ? "exact" : task.substr(colon + 1);
  std::vector<int64_t> positions;
  for (int64_t m = 0; m < count; ++m) positions.push_back(m);
  const Tensor test = gather_inputs(run.task.test, positions);
  const TrainingRecord record = TrainingRecord::from(run);
  EpkOptions options;
  options.kernels = {PathKernel::exact};
  options.keep_kernel = false;
  options.quadrature = parse_quadrature(mode);
  EpkResult epk;
  const bench::Timing timing = bench::time_runs(repeats, [&] { epk = exact_path_kernel(model, run.theta0, test, record, options); });
  const KernelMachine& exact = epk.machines.front();
  // What the peers are checked against and measured by: f(x;θ_0), f(x;θ_T) and this mode's reconstruction.
  write_npy(directory / ("epk_" + std::to_string(count) + "_network.npy"), concatenate_rows(epk.initial, epk.final));
  result["n"] = count;
  result["mode"] = mode;
  result["steps"] = epk.steps;
  result["nodes"] = epk.quadrature.nodes;
  result["pieces"] = epk.quadrature.pieces;
  result["piece_seconds"] = epk.quadrature.piece_seconds;
  result["breakpoints"] = epk.quadrature.breakpoints;
  result["max_rel_error"] = exact.max_rel_error;
  result["error_vs_largest"] = exact.max_abs_error / epk.final.vector().cwiseAbs().maxCoeff();
  result["max_step_residual"] = exact.max_step_residual;
  result["decisions_agree"] = exact.decisions_agree;
  result["training_seconds"] = epk.training_seconds;
  // One single-sample forward + backward (input and weight gradients): 3 GEMM passes of 2 flops per multiply-add.
  result["flops_per_node"] = 6.0 * forward_multiply_adds(model, Shape(pool.shape().begin() + 1, pool.shape().end()));
  return timing;
}

// pieces:M: every step's pieces on the first M test inputs, checked independently (check_pieces at the piece midpoints):
// breakpoints and spurious ones (no activation pattern change across them). A count, not a time.
void pieces_task(const Run& run, const std::string& task, nlohmann::json& result) {
  const int64_t count = std::stoll(task.substr(7));
  std::vector<int64_t> positions;
  for (int64_t m = 0; m < count; ++m) positions.push_back(m);
  const Tensor test = gather_inputs(run.task.test, positions);
  const TrainOptions& training = run.config.training;
  Parameters theta = run.theta0;
  int64_t breakpoints = 0, spurious = 0;
  for (size_t s = 0; s < run.steps.size(); ++s) {
    const Parameters base = theta;
    theta = replay(*run.model, base, run.task.train, run.steps, static_cast<int64_t>(s), static_cast<int64_t>(s) + 1, training.weight_decay,
                   training.loss, augmentation_of(training));
    Parameters direction = base;
    for (size_t k = 0; k < theta.size(); ++k) direction[k].vector() = theta[k].vector() - base[k].vector();
    const Segment segment{&base, &direction};
    const PieceCheck check = check_pieces(*run.model, test, segment, path_pieces(*run.model, test, segment));
    breakpoints += check.breakpoints;
    spurious += check.spurious;
  }
  result["n"] = count;
  result["breakpoints"] = breakpoints;
  result["spurious"] = spurious;
}

nlohmann::json run_task(const fs::path& work, const Case& c, const std::string& task, int repeats) {
  const fs::path directory = work / c.name;
  const Run run = load_run(directory / "run");
  const Tensor pool = read_npy(directory / "inputs.npy");
  const Sequential& model = *run.model;
  nlohmann::json result{{"case", c.name}, {"task", task}, {"peer", "kernelscope"}, {"threads", omp_get_max_threads()}};
  bench::Timing timing{};
  // The long tasks' bounds are taken against the sustained GEMM rate measured right around them (see common.h).
  const bool long_task = task.rfind("gram:", 0) == 0 || task.rfind("epk:", 0) == 0;
  if (long_task) result["gemm_sustained_before"] = bench::eigen_gemm_gflops_sustained();
  if (task == "gemm") {
    const double rate = bench::eigen_gemm_gflops_all_threads();
    result["gflops"] = rate;
    timing = {0, 0, 0};
  } else if (task == "epoch") {
    Parameters final;
    timing = bench::time_runs(repeats, [&] {
      final = replay(model, run.theta0, run.task.train, run.steps, 0, static_cast<int64_t>(run.steps.size()), run.config.training.weight_decay,
                     run.config.training.loss, augmentation_of(run.config.training));
    });
    // The replayed epoch must be the recorded one, bit for bit.
    for (size_t i = 0; i < final.size(); ++i)
      if (final[i].vector() != run.thetaT[i].vector()) throw std::runtime_error("bench_compare: the replayed epoch differs from θ_T");
    result["images"] = run.task.train.size();
    const Shape sample(pool.shape().begin() + 1, pool.shape().end());
    result["gemm_flops"] = 6.0 * forward_multiply_adds(model, sample) * static_cast<double>(run.task.train.size());
  } else if (task == "jacobian") {
    const int64_t count = 256;
    const Tensor x = first_rows(pool, count);
    Tensor jacobian;
    timing = bench::time_runs(repeats, [&] { jacobian = per_sample_jacobian(model, run.theta0, x); });
    const int64_t P = jacobian.dim(1), check_rows = 8;
    write_npy(directory / "jacobian_check.npy", Tensor({check_rows, P}, std::vector<double>(jacobian.data(), jacobian.data() + check_rows * P)));
    result["n"] = count;
  } else if (task.rfind("gram:", 0) == 0) {
    const int64_t count = std::stoll(task.substr(5));
    const Tensor x = first_rows(pool, count);
    Tensor gram;
    timing = bench::time_runs(repeats, [&] { gram = ntk_gram(model, run.theta0, x, nullptr); });
    write_npy(directory / ("gram_" + std::to_string(count) + ".npy"), gram);
    result["n"] = count;
    // The Gram's floor: one forward + backward per (sample, output) for the per-sample gradients, then the symmetric
    // contraction of its NK rows, NK(NK+1)/2 · P multiply-adds, 2 flops each (the README's count).
    const Shape sample(pool.shape().begin() + 1, pool.shape().end());
    Shape one = sample;
    one.insert(one.begin(), 1);
    const double outputs = static_cast<double>(model.output_shape(one).back());
    const double rows = outputs * static_cast<double>(count), p = static_cast<double>(model.parameter_count());
    result["gemm_flops"] = 6.0 * forward_multiply_adds(model, sample) * rows + rows * (rows + 1) * p;
    const std::vector<KernelMethod> methods = chosen_methods(model, Shape(pool.shape().begin() + 1, pool.shape().end()), KernelMethod::automatic);
    result["methods"] = nlohmann::json::array();
    for (KernelMethod m : methods) result["methods"].push_back(m == KernelMethod::jacobian ? "jacobian" : "structured");
  } else if (task.rfind("epk:", 0) == 0) {
    timing = epk_task(directory, run, pool, task, repeats, result);
  } else if (task.rfind("pieces:", 0) == 0) {
    pieces_task(run, task, result);
  } else {
    throw std::invalid_argument("bench_compare: unknown task '" + task + "' (epoch, jacobian, gram:N, epk:M, pieces:M, gemm)");
  }
  if (long_task) result["gemm_sustained_after"] = bench::eigen_gemm_gflops_sustained();
  result["median"] = timing.median;
  result["min"] = timing.min;
  result["max"] = timing.max;
  result["repeats"] = repeats;
  result["peak_memory_gb"] = bench::peak_memory_gb();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  ks::keep_freed_memory();
  try {
    if (argc < 3) {
      std::cerr << "usage: bench_compare WORKDIR prepare | bench_compare WORKDIR CASE TASK [REPEATS]\n";
      return 2;
    }
    const fs::path work = argv[1];
    if (std::string(argv[2]) == "prepare") {
      prepare(work);
      return 0;
    }
    if (std::string(argv[2]) == "parts") {
      time_parts(argc > 3 ? std::atoi(argv[3]) : 3);
      return 0;
    }
    if (argc < 4) throw std::invalid_argument("bench_compare: give a CASE and a TASK");
    const int repeats = argc > 4 ? std::atoi(argv[4]) : 3;
    std::cout << run_task(work, find_case(argv[2]), argv[3], repeats).dump() << std::endl;
    return 0;
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }
}
