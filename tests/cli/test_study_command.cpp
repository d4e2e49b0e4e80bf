// `kernelscope study` end to end on a small MNIST pair: every stage runs, the table and JSON hold what the issue names,
// the SVM accuracies match the written kernels, and a task with three classes is refused.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "datasets/npy.h"
#include "kernels/metrics.h"
#include "kernels/svm.h"
#include "nn/run.h"
#include "render/claims.h"
#include "render/study_table.h"
#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

TEST_CASE("kernelscope study runs the after-kernel protocol and writes one results table; svm refits its kernels") {
  const fs::path root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets not found");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-study-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string data = "mnist:" + (root / "mnist").string();
  test::CommandResult result = test::run_cli("study --data " + data + " --classes 3,8 --arch vgg:4 --epochs 1 --train-size 120 --test-size 60 --invariance-size 20 --out " + (dir / "s").string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  for (const char* row : {"network test accuracy", "SVM test accuracy, NTK", "SVM test accuracy, conjugate kernel", "alignment of conjugate kernel with NTK",
                          "invariance to 1-pixel shifts", "invariance to ±0.25 rad rotations", "invariance to zoom", "quadrant-swap score", "patch-shuffle score"})
    CHECK(result.output.find(row) != std::string::npos);
  CHECK(fs::exists(dir / "s" / "results.md"));
  CHECK(result.output.find("kernelscope-partial") == std::string::npos);  // the user is told final paths, never temporary ones
  CHECK(fs::exists(dir / "s" / "run" / "config.json"));

  nlohmann::json json;
  std::ifstream(dir / "s" / "results.json") >> json;
  for (const char* kernel : {"ntk", "conjugate"})
    for (const char* stage : {"init", "after"}) {
      INFO(kernel << " " << stage);
      const auto& svm = json["svm"][kernel][stage];
      CHECK(svm["test_accuracy"].get<double>() > 0.5);
      CHECK(svm["support_vectors"].get<int64_t>() > 0);
      // The accuracy follows from the written kernels: refit and compare.
      const Run run = load_run(dir / "s" / "run");
      const std::string base = std::string(kernel) + "_" + stage;
      const SvmModel model = fit_svm(read_npy(dir / "s" / (base + "_train.npy")), run.task.train.labels);
      CHECK(svm_accuracy(model, read_npy(dir / "s" / (base + "_test_train.npy")), run.task.test.labels) == svm["test_accuracy"].get<double>());
      for (const char* measure : {"shift", "rotation", "zoom", "quadrant_swap", "patch_shuffle"}) {
        const double score = json["invariance"][stage][measure].get<double>();
        CHECK(score > 0.0);
        CHECK(score < 1.0);
      }
    }
  CHECK(json["metrics"]["init"]["alignment_conjugate_ntk"].get<double>() > 0.0);
  // The table is made from results.json alone: results.md is its Markdown form, the report shows the same rows from it.
  std::stringstream markdown;
  markdown << std::ifstream(dir / "s" / "results.md").rdbuf();
  CHECK(markdown.str() == study_table_markdown(study_table(json)) + "\n" + claims_markdown(study_claims(json)));
  result = test::run_cli("report --run " + (dir / "s" / "run").string() + " --study " + (dir / "s").string() + " --test-size 2 --out " + (dir / "r").string());
  REQUIRE(result.exit_code == 0);
  std::stringstream page;
  page << std::ifstream(dir / "r" / "report.html").rdbuf();
  CHECK(page.str().find(study_table_html(study_table(json))) != std::string::npos);
  // A results.json that is not a study's is refused, naming the file and the key.
  fs::create_directories(dir / "fake");
  std::ofstream(dir / "fake" / "results.json") << R"({"model": "mlp:8"})";
  result = test::run_cli("report --run " + (dir / "s" / "run").string() + " --study " + (dir / "fake").string() + " --test-size 2 --out " + (dir / "r2").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("results.json") != std::string::npos);
  CHECK(result.output.find("classes") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "r2"));

  // `kernelscope svm` on the written after kernel reports the study's accuracy; a non-square training kernel is refused.
  const std::string s = (dir / "s").string();
  result = test::run_cli("svm --run " + s + "/run --train-kernel " + s + "/ntk_after_train.npy --test-kernel " + s + "/ntk_after_test_train.npy");
  CHECK(result.exit_code == 0);
  char expected[64];
  std::snprintf(expected, sizeof expected, "%.2f%%", 100 * json["svm"]["ntk"]["after"]["test_accuracy"].get<double>());
  CHECK(result.output.find(expected) != std::string::npos);
  result = test::run_cli("svm --run " + s + "/run --train-kernel " + s + "/ntk_after_test_train.npy");
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("must be square") != std::string::npos);

  result = test::run_cli("study --data " + data + " --classes 1,2,3 --arch mlp:8 --epochs 1 --train-size 30 --test-size 30 --out " + (dir / "t").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("the SVMs need two classes") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "t"));
  fs::remove_all(dir);
}

}  // namespace ks

namespace ks {

TEST_CASE("kernelscope study --seeds K: independent runs, each as a one-seed study gives it, summarised as mean ± standard error") {
  const fs::path root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets not found");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-study-seeds-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string common = "study --data mnist:" + (root / "mnist").string() + " --classes 3,8 --arch vgg:4 --epochs 1 --train-size 64 --test-size 32 --invariance-size 8 ";
  test::CommandResult result = test::run_cli(common + "--seed 4 --seeds 3 --no-kernel-files --out " + (dir / "three").string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(result.output.find("3 seeds: mean ± standard error") != std::string::npos);
  nlohmann::json json;
  std::ifstream(dir / "three" / "results.json") >> json;
  CHECK(json["seeds"] == nlohmann::json::array({4, 5, 6}));
  REQUIRE(json["runs"].size() == 3);
  for (int seed : {4, 5, 6}) CHECK(fs::exists(dir / "three" / ("seed-" + std::to_string(seed)) / "run" / "config.json"));
  // The middle seed's numbers are those of a study with that seed alone.
  result = test::run_cli(common + "--seed 5 --no-kernel-files --out " + (dir / "one").string());
  REQUIRE(result.exit_code == 0);
  nlohmann::json one;
  std::ifstream(dir / "one" / "results.json") >> one;
  CHECK(one["svm"]["ntk"]["after"]["test_accuracy"] == json["runs"][1]["svm"]["ntk"]["after"]["test_accuracy"]);
  CHECK(one["invariance"]["after"]["patch_shuffle"] == json["runs"][1]["invariance"]["after"]["patch_shuffle"]);
  // Every number: the mean of the runs' values and Long's standard error, sd (n − 1) / √n.
  for (const char* path : {"/svm/ntk/after/test_accuracy", "/invariance/init/shift", "/metrics/after/cka_conjugate_ntk"}) {
    INFO(path);
    const nlohmann::json::json_pointer at(path);
    std::vector<double> values;
    for (const nlohmann::json& run : json["runs"]) values.push_back(run[at].get<double>());
    const double mean = (values[0] + values[1] + values[2]) / 3.0;
    double squares = 0.0;
    for (double v : values) squares += (v - mean) * (v - mean);
    CHECK(json[at]["mean"].get<double>() == doctest::Approx(mean).epsilon(1e-14));
    CHECK(json[at]["se"].get<double>() == doctest::Approx(std::sqrt(squares / 2.0) / std::sqrt(3.0)).epsilon(1e-12));
  }
  std::stringstream markdown;
  markdown << std::ifstream(dir / "three" / "results.md").rdbuf();
  CHECK(markdown.str() == study_table_markdown(study_table(json)) + "\n" + claims_markdown(study_claims(json)));
  CHECK(markdown.str().find(" ± ") != std::string::npos);

  // Seeds run apart and combined give the summary of running them together; a repeated seed, another configuration or
  // a training option beside --combine are refused, naming what differs.
  for (int seed : {4, 6}) REQUIRE(test::run_cli(common + "--seed " + std::to_string(seed) + " --no-kernel-files --out " + (dir / std::to_string(seed)).string()).exit_code == 0);
  result = test::run_cli("study --combine " + (dir / "4").string() + "," + (dir / "one").string() + "," + (dir / "6").string() + " --out " + (dir / "combined").string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  nlohmann::json combined;
  std::ifstream(dir / "combined" / "results.json") >> combined;
  CHECK(combined["seeds"] == nlohmann::json::array({4, 5, 6}));
  for (const char* key : {"svm", "metrics", "invariance", "network_test_accuracy", "claims"}) {
    INFO(key);
    CHECK(combined[key] == json[key]);
  }
  result = test::run_cli("study --combine " + (dir / "three").string() + "," + (dir / "one").string() + " --out " + (dir / "twice").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("seed 5 is in both") != std::string::npos);
  CHECK(!fs::exists(dir / "twice"));
  const std::string other = "study --data mnist:" + (root / "mnist").string() + " --classes 3,8 --arch vgg:4 --epochs 1 --train-size 48 --test-size 32 --invariance-size 8 ";
  REQUIRE(test::run_cli(other + "--seed 9 --no-kernel-files --out " + (dir / "other").string()).exit_code == 0);
  result = test::run_cli("study --combine " + (dir / "one").string() + "," + (dir / "other").string() + " --out " + (dir / "mixed").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("\"/data/train_size\" is 64") != std::string::npos);
  // Settings results.json does not hold are read from each seed's run/config.json: another batch size is refused too,
  // and a seed whose config.json is missing cannot be checked, so it is refused.
  REQUIRE(test::run_cli(common + "--seed 7 --batch 16 --no-kernel-files --out " + (dir / "batch16").string()).exit_code == 0);
  result = test::run_cli("study --combine " + (dir / "one").string() + "," + (dir / "batch16").string() + " --out " + (dir / "mixed").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("\"/training/batch_size\" is 32") != std::string::npos);
  fs::create_directories(dir / "bare");
  fs::copy_file(dir / "6" / "results.json", dir / "bare" / "results.json");
  result = test::run_cli("study --combine " + (dir / "4").string() + "," + (dir / "bare").string() + " --out " + (dir / "mixed").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find((dir / "bare" / "run" / "config.json").string() + " cannot be read") != std::string::npos);
  CHECK(!fs::exists(dir / "mixed"));
  result = test::run_cli("study --combine " + (dir / "4").string() + "," + (dir / "6").string() + " --arch vgg:8 --out " + (dir / "unused").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("--arch") != std::string::npos);
  CHECK(result.output.find("not used with --combine") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace ks

namespace ks {

TEST_CASE("kernelscope study --learning-rates: each rate to the loss target in lr-R/, one row per rate, and the claims judged") {
  const fs::path root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets not found");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-study-rates-" + std::to_string(getpid()));
  fs::remove_all(dir);
  test::CommandResult result = test::run_cli("study --data mnist:" + (root / "mnist").string() +
                                             " --classes 3,8 --arch mlp:16-16 --loss-target 0.3 --max-epochs 20 --train-size 64 --test-size 32 "
                                             "--invariance-size 8 --seeds 2 --learning-rates 0.1,0.01 --no-kernel-files --out " + (dir / "s").string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  nlohmann::json json;
  std::ifstream(dir / "s" / "results.json") >> json;
  CHECK(json["learning_rates"] == nlohmann::json::array({0.01, 0.1}));  // smallest first
  REQUIRE(json["by_learning_rate"].size() == 2);
  CHECK(json["by_learning_rate"][0]["runs"][0]["learning_rate"] == 0.01);
  CHECK(fs::exists(dir / "s" / "lr-0.1" / "seed-1" / "run" / "config.json"));
  CHECK(fs::exists(dir / "s" / "lr-0.01" / "results.md"));
  REQUIRE(json["claims"].size() == 1);
  CHECK(json["claims"][0]["claim"].get<std::string>().find("(6)") == 0);
  CHECK(result.output.find("| 0.01 | 20 ± 0 |") != std::string::npos);  // the small rate ran to --max-epochs 20
  CHECK(result.output.find("above the target 0.3") != std::string::npos);
  // One rate's own study table holds claims (1) to (5).
  std::stringstream own;
  own << std::ifstream(dir / "s" / "lr-0.1" / "results.md").rdbuf();
  CHECK(own.str().find("(1) after some epochs") != std::string::npos);
  CHECK(own.str().find("(3) the MLP's after kernel is less global") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("kernelscope study --effective-rank-size S: the ranks of the Gram's block on S evenly spaced training points") {
  const fs::path root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets not found");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-study-rank-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string common = "study --data mnist:" + (root / "mnist").string() + " --classes 3,8 --arch mlp:8 --epochs 1 --train-size 60 --test-size 20 --invariance-size 4 ";
  test::CommandResult result = test::run_cli(common + "--effective-rank-size 25 --out " + (dir / "s").string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(result.output.find("effective rank of NTK (trace/λmax, entropy, 25 training points)") != std::string::npos);
  nlohmann::json json;
  std::ifstream(dir / "s" / "results.json") >> json;
  CHECK(json["metrics"]["effective_rank_points"].get<int64_t>() == 25);
  for (const char* kernel : {"ntk", "conjugate"})
    for (const char* stage : {"init", "after"}) {
      INFO(kernel << " " << stage);
      const Tensor gram = read_npy(dir / "s" / (std::string(kernel) + "_" + stage + "_train.npy"));  // (60, 60)
      Tensor block({25, 25});
      for (int64_t i = 0; i < 25; ++i)
        for (int64_t j = 0; j < 25; ++j) block[i * 25 + j] = gram[(i * 60 / 25) * 60 + j * 60 / 25];
      const EffectiveRank expected = effective_rank(block), whole = effective_rank(gram);
      const nlohmann::json& rank = json["metrics"][stage][std::string("effective_rank_") + kernel];
      CHECK(rank["trace_over_max"].get<double>() == expected.trace_ratio);
      CHECK(rank["spectral_entropy"].get<double>() == expected.entropy);
      CHECK(rank["spectral_entropy"].get<double>() != whole.entropy);  // a sample, not the whole Gram
    }
  // 0 (the default) and any size beyond the training set: the whole Gram, and the table says nothing of a sample.
  result = test::run_cli(common + "--effective-rank-size 600 --out " + (dir / "t").string());
  REQUIRE(result.exit_code == 0);
  CHECK(result.output.find("effective rank of NTK (trace/λmax, entropy)") != std::string::npos);
  std::ifstream(dir / "t" / "results.json") >> json;
  CHECK(json["metrics"]["effective_rank_points"].get<int64_t>() == 60);
  CHECK(json["metrics"]["init"]["effective_rank_ntk"]["spectral_entropy"].get<double>() == effective_rank(read_npy(dir / "t" / "ntk_init_train.npy")).entropy);
  result = test::run_cli(common + "--effective-rank-size -3 --out " + (dir / "u").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("--effective-rank-size") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace ks
