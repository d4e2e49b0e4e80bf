// `kernelscope study`: Long's after-kernel protocol end to end. Trains (through `train`), computes the NTK and conjugate
// kernel at θ_0 and θ_T, fits hard-margin SVMs on each, compares the kernels and measures invariance; writes one table.
// The mathematics is the library's (kernels/ntk.h, svm.h, metrics.h, invariance.h); this file runs the stages and reports.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/checks.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "datasets/npy.h"
#include "datasets/transform.h"
#include "kernels/invariance.h"
#include "kernels/metrics.h"
#include "kernels/after_kernel.h"
#include "kernels/ntk.h"
#include "kernels/svm.h"
#include "nn/run.h"
#include "render/html.h"
#include "render/claims.h"
#include "render/study_table.h"

namespace ks::cli {

namespace {

struct StudyOptions {
  TrainCommandOptions train;
  std::string out;
  bool overwrite = false, scale_kernel = false, no_kernel_files = false;
  double svm_c = 1e6;
  int64_t invariance_size = 200;
  int64_t rank_size = 0;  // effective ranks on this many evenly spaced training points (0: all of them)
  double memory_budget_gb = NtkOptions{}.memory_budget_bytes / 1e9;
  int64_t seeds = 1;  // independent runs: seeds seed, seed + 1, ...; every number reported as mean ± standard error
  std::vector<double> learning_rates;  // Long's learning-rate study: each rate in lr-R/, all trained to --loss-target
  std::vector<std::string> combine;    // finished studies whose seeds are summarised together (nothing is trained)
};

// One kernel at one point of training: its train Gram, its test-versus-train block, and the SVM on it.
struct KernelResult {
  std::string name;  // "ntk" or "conjugate"
  bool after = false;
  Tensor train, test;
  SvmModel svm;
  double test_accuracy = 0.0;
};

struct Invariance {
  double shift = 0, rotation = 0, zoom = 0, globality = 0, patch_shuffle = 0;
};

// The patch shuffle's grid and permutation: 4 × 4 patches (7 × 7 pixels on MNIST, 8 × 8 on CIFAR-10), one fixed
// permutation for every image and run, so the scores compare.
constexpr int64_t kShuffleGrid = 4;
constexpr uint64_t kShuffleSeed = 2021;

Invariance measure_invariance(const Sequential& model, const Parameters& theta, const Tensor& images) {
  const int64_t size = images.dim(2);
  Invariance v;
  v.shift = 0.5 * (invariance_score(model, theta, images, translate_images(images, 1, 0)) + invariance_score(model, theta, images, translate_images(images, 0, 1)));
  v.rotation = 0.5 * (invariance_score(model, theta, images, rotate_images(images, 0.25)) + invariance_score(model, theta, images, rotate_images(images, -0.25)));
  v.zoom = invariance_score(model, theta, images, zoom_images(images, size - 2));
  v.globality = invariance_score(model, theta, images, swap_quadrants(images));
  if (images.dim(2) % kShuffleGrid == 0 && images.dim(3) % kShuffleGrid == 0)
    v.patch_shuffle = invariance_score(model, theta, images, shuffle_patches(images, kShuffleGrid, kShuffleSeed));
  return v;
}

class Stages {
 public:
  explicit Stages(int total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  void begin(const std::string& what) {
    std::fprintf(stderr, "study [%d/%d] %s (%.0f s so far)\n", ++current_, total_, what.c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  int total_, current_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Everything the study computed, before anything is rendered or written.
struct StudyResult {
  std::vector<KernelResult> kernels;  // ntk init, conjugate init, ntk after, conjugate after
  double network_accuracy[2] = {0, 0};
  nlohmann::json metrics;
  Invariance invariance[2];
  int64_t invariance_count = 0;  // 0: the inputs are not images
};

const KernelResult& find(const std::vector<KernelResult>& kernels, const std::string& name, bool after) {
  for (const KernelResult& k : kernels)
    if (k.name == name && k.after == after) return k;
  throw std::logic_error("study: missing kernel " + name);
}

// The after-kernel protocol on the NTK (library), plus the conjugate kernel and its SVMs.
void study_kernels(const Run& run, const StudyOptions& o, StudyResult& result) {
  const Tensor &train_inputs = run.task.train.inputs, &test_inputs = run.task.test.inputs;
  AfterKernelOptions protocol;
  protocol.svm.C = o.svm_c;
  protocol.memory_budget_bytes = o.memory_budget_gb * 1e9;
  protocol.svm.scale_by_mean_norm = o.scale_kernel;
  protocol.progress = [](const std::string& label) {  // one progress bar per Gram
    auto progress = std::make_shared<std::unique_ptr<Progress>>();
    return std::function<void(int64_t, int64_t)>([progress, label](int64_t done, int64_t total) {
      if (!*progress) *progress = std::make_unique<Progress>(label, total);
      (*progress)->update(done);
      if (done == total) (*progress)->done();
    });
  };
  const AfterKernelResult tangent = after_kernel_protocol(*run.model, run.theta0, run.thetaT, run.task.train, run.task.test, run.config.training.loss, protocol);
  std::vector<KernelResult> conjugates;
  for (const AfterKernelSide* side : {&tangent.initial, &tangent.after}) {
    const Parameters& theta = side->after ? run.thetaT : run.theta0;
    result.network_accuracy[side->after] = side->network_accuracy;
    result.kernels.push_back({"ntk", side->after, side->train_gram, side->test_gram, side->svm, side->svm_accuracy});
    conjugates.push_back({"conjugate", side->after, conjugate_kernel(*run.model, theta, train_inputs, nullptr), conjugate_kernel(*run.model, theta, test_inputs, &train_inputs), {}, 0});
  }
  const std::vector<SvmModel> svms = fit_svms({&conjugates[0].train, &conjugates[1].train}, run.task.train.labels, protocol.svm);  // both at once
  for (size_t k = 0; k < conjugates.size(); ++k) {
    conjugates[k].svm = svms[k];
    conjugates[k].test_accuracy = svm_accuracy(conjugates[k].svm, conjugates[k].test, run.task.test.labels);
    result.kernels.push_back(std::move(conjugates[k]));
  }
}

// The Gram's principal block on `size` evenly spaced training points (all of them for 0 or size >= N). An
// eigenvalue problem is 4/3·N³ memory-bound flops (minutes at 12,000 points); Long's code measures the effective rank
// on a sample (its --effective_rank_sample_size), and evenly spaced points keep both classes whatever the order.
Tensor spectrum_sample(const Tensor& gram, int64_t size) {  // gram: (N, N)
  const int64_t n = gram.dim(0);
  if (size <= 0 || size >= n) return gram;
  Tensor block({size, size});
  for (int64_t i = 0; i < size; ++i)
    for (int64_t j = 0; j < size; ++j) block[i * size + j] = gram[(i * n / size) * n + j * n / size];
  return block;
}

nlohmann::json kernel_metrics(const std::vector<KernelResult>& kernels, const std::vector<int>& train_labels, int64_t rank_size) {
  nlohmann::json metrics;
  std::vector<Tensor> samples;  // ntk init, conjugate init, ntk after, conjugate after
  for (bool after : {false, true})
    for (const char* name : {"ntk", "conjugate"}) samples.push_back(spectrum_sample(find(kernels, name, after).train, rank_size));
  // The four spectra at once (an eigenvalue problem each, single-threaded: minutes apiece at 12,000 points).
  const std::vector<EffectiveRank> ranks = effective_ranks({&samples[0], &samples[1], &samples[2], &samples[3]});
  metrics["effective_rank_points"] = samples[0].dim(0);
  for (bool after : {false, true}) {
    const KernelResult &tangent = find(kernels, "ntk", after), &conjugate = find(kernels, "conjugate", after);
    const EffectiveRank &rank = ranks[after ? 2 : 0], &conjugate_rank = ranks[after ? 3 : 1];
    metrics[after ? "after" : "init"] = {
        {"alignment_conjugate_ntk", kernel_alignment(conjugate.train, tangent.train)},
        {"cka_conjugate_ntk", centered_kernel_alignment(conjugate.train, tangent.train)},
        {"target_alignment_ntk", target_alignment(tangent.train, train_labels)},
        {"target_alignment_conjugate", target_alignment(conjugate.train, train_labels)},
        {"effective_rank_ntk", {{"trace_over_max", rank.trace_ratio}, {"spectral_entropy", rank.entropy}}},
        {"effective_rank_conjugate", {{"trace_over_max", conjugate_rank.trace_ratio}, {"spectral_entropy", conjugate_rank.entropy}}}};
  }
  metrics["kernel_distance_ntk_init_after"] = kernel_distance(find(kernels, "ntk", false).train, find(kernels, "ntk", true).train);
  return metrics;
}

void study_invariance(const Run& run, const StudyOptions& o, StudyResult& result) {
  result.invariance_count = std::min(o.invariance_size, run.task.test.size());
  std::vector<int64_t> first;
  for (int64_t n = 0; n < result.invariance_count; ++n) first.push_back(n);
  const Tensor sample = gather_inputs(run.task.test, first);
  for (bool after : {false, true}) result.invariance[after] = measure_invariance(*run.model, after ? run.thetaT : run.theta0, sample);
}

// The epochs trained (with a loss target, not --epochs) and the training loss after the last, from the run's metrics.json.
std::pair<int64_t, double> epochs_trained(const Run& run) {
  const std::filesystem::path file = run.directory / "metrics.json";
  try {
    nlohmann::json metrics;
    std::ifstream(file) >> metrics;
    const nlohmann::json& epochs = metrics.at("epochs");
    return {static_cast<int64_t>(epochs.size()), epochs.back().at("train_loss").get<double>()};
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(file.string() + ": no per-epoch training loss (" + error.what() + "); train the run again");
  }
}

// results.json: everything the table shows, so the table (here and in `report`) is made from it alone.
nlohmann::json study_json(const Run& run, const StudyOptions& o, const StudyResult& result) {
  const char* stage[2] = {"init", "after"};
  const auto [epochs, final_loss] = epochs_trained(run);
  nlohmann::json results = {{"model", run.config.model.spec},
                            {"classes", run.task.train.class_names},
                            {"train_size", run.task.train.size()},
                            {"test_size", run.task.test.size()},
                            {"epochs", epochs},
                            {"loss_target", run.config.training.loss_target},
                            {"augment", run.config.training.augment},
                            {"augmentation", run.config.training.augment ? (run.config.training.keras_augment ? "Keras (rotations)" : "rotations and shifts") : "none"},
                            {"network_test_accuracy", {{"init", result.network_accuracy[0]}, {"after", result.network_accuracy[1]}}},
                            {"final_train_loss", final_loss},
                            {"learning_rate", run.config.training.learning_rate},
                            {"svm_c", o.svm_c},
                            {"svm_kernel_scaled_by_mean_norm", o.scale_kernel},
                            {"metrics", result.metrics},
                            {"seconds", 0.0}};
  for (const KernelResult& k : result.kernels)
    results["svm"][k.name][stage[k.after]] = {{"test_accuracy", k.test_accuracy},
                                              {"support_vectors", k.svm.support_vectors},
                                              {"margin", k.svm.margin},
                                              {"separated", k.svm.separated()},
                                              {"training_errors", k.svm.training_errors},
                                              {"converged", k.svm.converged}};
  if (result.invariance_count > 0) {
    results["invariance"]["images"] = result.invariance_count;
    for (int after : {0, 1})
      results["invariance"][stage[after]] = {{"shift", result.invariance[after].shift}, {"rotation", result.invariance[after].rotation},
                                             {"zoom", result.invariance[after].zoom}, {"quadrant_swap", result.invariance[after].globality},
                                             {"patch_shuffle", result.invariance[after].patch_shuffle}};
  }
  return results;
}

// Trains through `train` into DIR/run and loads it; the SVMs need two classes and test samples.
Run study_training(StudyOptions& o, const std::filesystem::path& dir) {
  o.train.out = (dir / "run").string();
  o.train.out_label = (std::filesystem::path(o.out) / "run").string();  // what the user will find, not the temporary name
  o.train.overwrite = false;
  if (run_train(o.train) != 0) throw std::runtime_error("study: training failed");
  Run run = load_run(dir / "run");
  if (!run.task.binary())
    throw std::invalid_argument("study: the SVMs need two classes, the task has " + std::to_string(run.task.class_count) + " (use --classes A,B)");
  if (run.task.test.size() == 0) throw std::invalid_argument("study: the task has no test samples");
  return run;
}

// Keys that describe the study rather than measure it: kept from the first seed's results, not summarised.
bool descriptive(const std::string& key) {
  static const std::set<std::string> keys{"model", "classes", "train_size", "test_size", "augment", "augmentation", "svm_c", "svm_kernel_scaled_by_mean_norm",
                                          "images", "seconds", "seed", "learning_rate", "loss_target", "effective_rank_points"};
  return keys.count(key) > 0;
}

// Several seeds' values at one place of results.json as one: a number becomes {mean, se, values} (se: the sample
// standard deviation over √runs, as Long's code), a flag {all, count, runs}; objects recurse; anything else is the first's.
nlohmann::json summarise_values(const std::vector<const nlohmann::json*>& values) {
  const nlohmann::json& first = *values.front();
  if (first.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : first.items()) {
      std::vector<const nlohmann::json*> same{&value};
      for (size_t k = 1; k < values.size(); ++k)
        if (values[k]->contains(key)) same.push_back(&values[k]->at(key));
      out[key] = descriptive(key) ? value : summarise_values(same);
    }
    return out;
  }
  const double n = static_cast<double>(values.size());
  if (first.is_boolean()) {
    int64_t count = 0;
    for (const nlohmann::json* v : values) count += v->get<bool>();
    return {{"all", count == static_cast<int64_t>(values.size())}, {"count", count}, {"runs", values.size()}};
  }
  if (!first.is_number()) return first;
  double sum = 0.0, squares = 0.0;
  nlohmann::json all = nlohmann::json::array();
  for (const nlohmann::json* v : values) sum += v->get<double>(), all.push_back(*v);
  const double mean = sum / n;
  for (const nlohmann::json* v : values) squares += (v->get<double>() - mean) * (v->get<double>() - mean);
  const double se = values.size() > 1 ? std::sqrt(squares / (n - 1.0)) / std::sqrt(n) : 0.0;
  return {{"mean", mean}, {"se", se}, {"values", all}};
}

nlohmann::json summarise_seeds(const std::vector<nlohmann::json>& runs) {
  std::vector<const nlohmann::json*> values;
  for (const nlohmann::json& run : runs) values.push_back(&run);
  nlohmann::json out = summarise_values(values);
  out.erase("seed");
  out["seeds"] = nlohmann::json::array();
  for (const nlohmann::json& run : runs) out["seeds"].push_back(run.at("seed"));
  out["runs"] = runs;
  return out;
}

// One seed's study in `dir`: train into dir/run, the kernels and SVMs, metrics, invariance; its kernels as .npy there.
nlohmann::json study_seed(StudyOptions o, const std::filesystem::path& dir, Stages& stages) {
  stages.begin("training " + o.train.arch + " on " + o.train.data + " classes " + o.train.classes + ", seed " + std::to_string(o.train.seed));
  const Run run = study_training(o, dir);
  stages.begin("kernels and hard-margin SVMs (libsvm, C = " + number(o.svm_c, "%g") + (o.scale_kernel ? ", kernels scaled by the mean training norm" : "") +
               "): NTK and conjugate kernel at θ_0 and θ_T on " + std::to_string(run.task.train.size()) + " training and " +
               std::to_string(run.task.test.size()) + " test samples");
  StudyResult result;
  study_kernels(run, o, result);
  stages.begin("kernel metrics");
  result.metrics = kernel_metrics(result.kernels, run.task.train.labels, o.rank_size);
  if (run.task.test.inputs.rank() == 4) {
    stages.begin("invariance of the NTK on " + std::to_string(std::min(o.invariance_size, run.task.test.size())) +
                 " test images: shift, rotation, zoom, quadrant swap, patch shuffle");
    study_invariance(run, o, result);
  } else {
    stages.begin("invariance skipped: the inputs are not images");
  }
  if (!o.no_kernel_files)
    for (const KernelResult& k : result.kernels) {
      const std::string base = k.name + (k.after ? "_after" : "_init");
      write_npy(dir / (base + "_train.npy"), k.train);
      write_npy(dir / (base + "_test_train.npy"), k.test);
    }
  nlohmann::json results = study_json(run, o, result);
  results["seed"] = o.train.seed;
  return results;
}

// One configuration's seeds in `dir` (dir itself for one seed, else dir/seed-S): one seed's results, or their summary.
nlohmann::json study_seeds(const StudyOptions& o, const std::filesystem::path& dir, Stages& stages) {
  std::vector<nlohmann::json> runs;
  for (int64_t k = 0; k < o.seeds; ++k) {
    StudyOptions one = o;
    one.train.seed = o.train.seed + static_cast<uint64_t>(k);
    const std::string name = o.seeds == 1 ? "" : "seed-" + std::to_string(one.train.seed);
    std::filesystem::create_directories(dir / name);
    one.out = (std::filesystem::path(o.out) / name).string();
    runs.push_back(study_seed(one, dir / name, stages));
  }
  return o.seeds == 1 ? runs.front() : summarise_seeds(runs);
}

nlohmann::json claims_json(const std::vector<Claim>& claims) {
  nlohmann::json out = nlohmann::json::array();
  for (const Claim& c : claims) out.push_back({{"claim", c.claim}, {"evidence", c.evidence}, {"verdict", c.verdict}});
  return out;
}

// Long's learning-rate study: every rate's seeds in lr-R/, one row per rate, and claim (6).
nlohmann::json learning_rate_study(const StudyOptions& o, const std::filesystem::path& dir, Stages& stages, std::string& markdown) {
  std::vector<double> rates = o.learning_rates;
  std::sort(rates.begin(), rates.end());
  std::vector<nlohmann::json> per_rate;
  for (double rate : rates) {
    StudyOptions one = o;
    one.train.lr = rate;
    const std::string name = "lr-" + number(rate, "%g");
    one.out = (std::filesystem::path(o.out) / name).string();
    per_rate.push_back(study_seeds(one, dir / name, stages));
    std::ofstream(dir / name / "results.md") << study_table_markdown(study_table(per_rate.back())) << "\n" << claims_markdown(study_claims(per_rate.back()));
  }
  const std::vector<Claim> claims = learning_rate_claims(rates, per_rate);
  markdown = learning_rate_table_markdown(rates, per_rate) + "\n" + claims_markdown(claims);
  return {{"learning_rates", rates}, {"by_learning_rate", per_rate}, {"claims", claims_json(claims)}};
}

// What every seed summarised together must share: the settings that make them runs of one study.
const char* const kSameStudyKeys[] = {"model", "classes", "train_size", "test_size", "augmentation", "learning_rate",
                                      "loss_target", "svm_c", "svm_kernel_scaled_by_mean_norm"};

nlohmann::json read_json_file(const std::filesystem::path& file, const std::string& why) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument("study --combine: " + file.string() + " cannot be read (" + why + ")");
  try {
    nlohmann::json json;
    in >> json;
    return json;
  } catch (const nlohmann::json::exception& error) {
    throw std::invalid_argument("study --combine: " + file.string() + " is not JSON (" + error.what() + ")");
  }
}

// One seed of a finished study: its results, and every setting that must agree with the other seeds', flattened to
// JSON pointers. results.json does not hold all of them (batch size, epochs, optimizer, data source, invariance images,
// effective-rank points), so the run's own config.json is read too, without its seeds and without the data files'
// paths on the machine that ran it (which may differ from one machine to the next for the same data).
struct StudySeed {
  nlohmann::json results;
  nlohmann::json settings;  // {"/training/batch_size": 32, ...}
};

nlohmann::json seed_settings(const nlohmann::json& run, const std::filesystem::path& config_file) {
  nlohmann::json config = read_json_file(config_file, "each seed's run/config.json tells its training settings, which must agree");
  try {
    config.at("training").erase("seed");
    config.at("model").erase("seed");
    config.at("data").erase("toy_seed");  // the toy data's seed is the run's --seed
    config.at("data").erase("train_files");
    config.at("data").erase("test_files");
  } catch (const nlohmann::json::exception& error) {
    throw std::invalid_argument("study --combine: " + config_file.string() + " is not a run's config.json (" + error.what() + ")");
  }
  nlohmann::json settings = config.flatten();
  for (const char* key : kSameStudyKeys) settings["/results/" + std::string(key)] = run.at(key);
  for (const char* pointer : {"/invariance/images", "/metrics/effective_rank_points"}) {
    const nlohmann::json::json_pointer at(pointer);
    settings["/results" + std::string(pointer)] = run.contains(at) ? run.at(at) : nlohmann::json();
  }
  return settings;
}

// The seeds of one finished study directory: its runs (several seeds, each in seed-S/) or itself (one seed).
std::vector<StudySeed> seeds_of_study(const std::filesystem::path& directory) {
  const std::filesystem::path file = directory / "results.json";
  const nlohmann::json results = read_json_file(file, "a directory `kernelscope study` wrote?");
  if (results.contains("by_learning_rate")) throw std::invalid_argument("study --combine: " + file.string() + " is a learning-rate study; combine the lr-R/ directories of one rate instead");
  const bool several = results.contains("runs");
  std::vector<StudySeed> seeds;
  for (const nlohmann::json& run : several ? results.at("runs") : nlohmann::json::array({results})) {
    if (!run.is_object() || !run.contains("seed")) throw std::invalid_argument("study --combine: " + file.string() + " holds a run without a \"seed\"");
    for (const char* key : kSameStudyKeys)
      if (!run.contains(key)) throw std::invalid_argument("study --combine: " + file.string() + " has no \"" + key + "\"");
    const std::filesystem::path run_directory = several ? directory / ("seed-" + run.at("seed").dump()) / "run" : directory / "run";
    seeds.push_back({run, seed_settings(run, run_directory / "config.json")});
  }
  return seeds;
}

// Refuses two seeds whose settings differ, naming the first setting that does and both directories.
void check_same_study(const StudySeed& a, const std::string& a_origin, const StudySeed& b, const std::string& b_origin) {
  nlohmann::json keys = a.settings;
  keys.update(b.settings);  // the union of both seeds' settings
  for (const auto& item : keys.items()) {
    const nlohmann::json left = a.settings.value(item.key(), nlohmann::json("(absent)"));
    const nlohmann::json right = b.settings.value(item.key(), nlohmann::json("(absent)"));
    if (left != right)
      throw std::invalid_argument("study --combine: \"" + item.key() + "\" is " + left.dump() + " in " + a_origin + " but " + right.dump() + " in " +
                                  b_origin + ": not runs of one study");
  }
}

// Several finished studies of the same configuration (seeds run apart, on other days or machines) summarised as one
// study of all their seeds: the same table and claims as `--seeds K` would give for those seeds.
int combine_studies(const StudyOptions& o) {
  if (o.combine.size() < 2) throw std::invalid_argument("study --combine: give two or more study directories, got " + std::to_string(o.combine.size()));
  RunWriter writer(o.out, {"study", o.overwrite, std::vector<std::filesystem::path>(o.combine.begin(), o.combine.end())});
  std::vector<StudySeed> seeds;
  std::vector<std::string> origin;  // the directory each seed came from, for the messages
  double seconds = 0.0;
  for (const std::string& directory : o.combine) {
    for (StudySeed& seed : seeds_of_study(directory)) {
      for (size_t k = 0; k < seeds.size(); ++k) {
        if (seeds[k].results.at("seed") == seed.results.at("seed"))
          throw std::invalid_argument("study --combine: seed " + seed.results.at("seed").dump() + " is in both " + origin[k] + " and " + directory);
        check_same_study(seeds[k], origin[k], seed, directory);
      }
      seeds.push_back(std::move(seed));
      origin.push_back(directory);
    }
    seconds += read_json_file(std::filesystem::path(directory) / "results.json", "read a moment ago").value("seconds", 0.0);
  }
  std::vector<nlohmann::json> runs;
  for (StudySeed& seed : seeds) runs.push_back(std::move(seed.results));
  nlohmann::json results = summarise_seeds(runs);
  const std::vector<Claim> claims = study_claims(results);
  results["claims"] = claims_json(claims);
  results["combined_from"] = o.combine;
  results["seconds"] = seconds;  // the sources' own compute time, summed
  const std::string markdown = study_table_markdown(study_table(results)) + "\n" + claims_markdown(claims);
  std::ofstream(writer.directory() / "results.json") << results.dump(2) << "\n";
  std::ofstream(writer.directory() / "results.md") << markdown;
  writer.finish();
  std::printf("%s\n%zu seeds of %zu studies written to %s (results.md, results.json)\n", markdown.c_str(), runs.size(), o.combine.size(), o.out.c_str());
  return 0;
}

int run_study(StudyOptions o) {
  if (!o.combine.empty()) return combine_studies(o);
  RunWriter writer(o.out, {"study", o.overwrite, {}});
  const std::filesystem::path dir = writer.directory();
  const int64_t configurations = std::max<int64_t>(1, static_cast<int64_t>(o.learning_rates.size()));
  Stages stages(static_cast<int>(4 * o.seeds * configurations + 1));
  nlohmann::json results;
  std::string markdown;
  if (o.learning_rates.empty()) {
    results = study_seeds(o, dir, stages);
    const std::vector<Claim> claims = study_claims(results);
    results["claims"] = claims_json(claims);
    markdown = study_table_markdown(study_table(results)) + "\n" + claims_markdown(claims);
  } else {
    results = learning_rate_study(o, dir, stages, markdown);
  }
  stages.begin("writing the results");
  results["seconds"] = stages.seconds();
  std::ofstream(dir / "results.json") << results.dump(2) << "\n";
  std::ofstream(dir / "results.md") << markdown;
  writer.finish();
  std::printf("%s\nwritten to %s (results.md, results.json%s) in %.0f s\n", markdown.c_str(), o.out.c_str(),
              o.no_kernel_files ? "" : ", the kernels as .npy", results["seconds"].get<double>());
  return 0;
}

}  // namespace

Command register_study(CLI::App& app) {
  auto o = std::make_shared<StudyOptions>();
  // A study's defaults: sizes whose Grams and SVMs finish in minutes on two cores.
  o->train.classes = "3,8";
  o->train.train_size = 1000;
  o->train.test_size = 500;
  CLI::App* cmd = app.add_subcommand("study", "After-kernel study (Long 2021): train, then SVMs on the NTK and conjugate kernel at init and after, kernel metrics, invariance");
  add_training_options(cmd, o->train);
  cmd->add_option("--svm-c", o->svm_c, "SVM C: large for a hard margin")->check(finite_number(false))->capture_default_str();
  cmd->add_flag("--scale-kernel", o->scale_kernel, "Divide each kernel by its mean training K(x, x) before the SVM (as Long)");
  cmd->add_option("--invariance-size", o->invariance_size, "Test images used for the invariance scores")->check(whole_number(1))->capture_default_str();
  cmd->add_option("--effective-rank-size", o->rank_size,
                  "Effective ranks on this many evenly spaced training points, a principal block of the Gram (0: all; as Long's --effective_rank_sample_size)")
      ->check(whole_number(0))
      ->capture_default_str();
  cmd->add_option("--seeds", o->seeds, "Independent runs (seeds --seed, --seed + 1, ...): every number as mean ± standard error (Long: 5)")
      ->check(whole_number(1))
      ->capture_default_str();
  cmd->add_option("--learning-rates", o->learning_rates,
                  "Long's learning-rate study: each rate (comma-separated) trained with --loss-target, a row per rate, claim (6)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  add_memory_budget_option(cmd, o->memory_budget_gb);
  cmd->add_flag("--no-kernel-files", o->no_kernel_files, "Do not write the kernels as .npy");
  CLI::Option* combine =
      cmd->add_option("--combine", o->combine,
                      "Summarise the seeds of finished study directories (comma-separated; run apart, the same settings) as one study; trains nothing")
          ->delimiter(',');
  cmd->add_option("--out", o->out, "Output directory (written under a temporary name, renamed when complete)")->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  // With --combine every setting comes from the combined studies: any other option given would be silently unused.
  CLI::Option* data = cmd->get_option("--data");
  data->required(false);  // required unless --combine, checked below
  cmd->callback([cmd, combine, data] {
    if (combine->count() == 0) {
      if (data->count() == 0) throw CLI::RequiredError("--data");
      return;
    }
    for (const CLI::Option* option : cmd->get_options())
      if (option != combine && option->count() > 0 && option->get_name() != "--out" && option->get_name() != "--overwrite" && option->get_name() != "--help")
        throw CLI::ValidationError(option->get_name(), "is not used with --combine (each study's own settings are); leave it out");
  });
  return {cmd, [o] { return run_study(*o); }};
}

}  // namespace ks::cli
